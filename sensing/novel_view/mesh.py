"""Textured triangle mesh of a layered depth image, simplified where the surface is flat; glTF export.

Each layer becomes one :class:`MeshPart`: a vertex at every pixel centre the layer covers
(alpha > 0.5) and two triangles per cell of 2x2 pixel centres. A triangle across a cut depth edge
(or stretched over a smeared one) is cut loose: laid flat at the background's depth on vertices of
its own, so foreground and background separate when the viewpoint moves while the reference view
keeps no hole. Two triangles replace many for a square block of cells whose disparity they
reproduce within a tolerance (a quadtree, biggest blocks first). Flat in disparity is flat in 3D:
the inverse depth of a plane is affine in image coordinates, so the test is exact for slanted
planes too, and a triangle renders the same disparity as the linear interpolation of its corners.
Vertices along the border of a merged block are moved onto that border's straight line, so the
finer neighbours' T-junctions lie on the big triangles' edges and leave no cracks.

Convention: vertices in the reference camera's OpenCV frame: x right, y down, z forward along the
optical axis, origin at the camera centre, pixel centres on integers with the principal point at
the image centre. Depth is relative: ``z = d_near / max(d, d_near / max_depth)`` with ``d_near``
the 99th percentile of layer 0's disparity, so the nearest surfaces sit at z = 1 and the farthest
(and the sky) at most at ``max_depth``. Texture coordinates follow glTF: (0, 0) is the top-left
corner of the texture, v down. :func:`write_glb` turns the frame into glTF's (y up, z backwards:
a 180 degree rotation about x) and adds a camera at the reference view.
"""

import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from sensing.checks import check_shape
from sensing.errors import InputError, ShapeError
from sensing.fileio import write_bytes_atomic
from sensing.novel_view.types import ImageLayer, LayeredDepthImage

DEFAULT_HFOV_DEG = 60.0  # horizontal field of view assumed when no focal length is given
NEAR_PERCENTILE = 99.0  # of layer 0's disparity: the disparity that maps to depth 1
MIN_ALPHA = 0.5  # a layer pixel gets geometry when its alpha is above this
_NEAR_SAMPLES = 65536  # disparities sampled for the percentile (exact below that count)
SEAM_RADIUS_PX = 3  # a cut triangle is laid at the farthest disparity within this radius (smeared ramps)


@dataclass(frozen=True, eq=False)
class MeshPart:
    """The triangles of one layer of a layered depth image.

    vertices : (N, 3) float32, reference camera frame (OpenCV: x right, y down, z forward),
        units of the near distance (see the module docstring)
    uv : (N, 2) float32 texture coordinates in [0, 1]; (0, 0) the top-left corner of ``texture``
    faces : (M, 3) uint32 indices into ``vertices``, counter-clockwise as seen from the camera
    texture : (h, w, 3) uint8 BGR, the layer's colours cropped to the bounding box of its vertices
    layer : index of the layer in the LDI
    """

    vertices: np.ndarray
    uv: np.ndarray
    faces: np.ndarray
    texture: np.ndarray
    layer: int


@dataclass(frozen=True, eq=False)
class TexturedMesh:
    """A textured triangle mesh of a layered depth image, one part per non-empty layer.

    parts : the layers' meshes, nearest layer first
    size_hw : the reference view's size in pixels
    focal_px : focal length of the reference view in pixels (principal point at the image centre)
    near_disparity : the layer-0 disparity that maps to depth 1 (input disparity units)
    pivot_depth : median depth of layer 0 (near-distance units): where a viewer orbits
    dense_vertices, dense_faces : counts of the unsimplified pixel-grid mesh (same cuts)
    """

    parts: tuple[MeshPart, ...]
    size_hw: tuple[int, int]
    focal_px: float
    near_disparity: float
    pivot_depth: float
    dense_vertices: int
    dense_faces: int

    @property
    def disparity_baseline(self) -> float:
        """Camera shift (near-distance units) that moves a point by its disparity in pixels.

        For stereo disparity this is the stereo baseline in the mesh's units.
        """
        return self.near_disparity / self.focal_px

    @property
    def vertex_count(self) -> int:
        return sum(len(part.vertices) for part in self.parts)

    @property
    def face_count(self) -> int:
        return sum(len(part.faces) for part in self.parts)


def mesh_from_layers(
    ldi: LayeredDepthImage,
    *,
    focal_px: float | None = None,
    max_depth: float = 20.0,
    flat_tolerance: float = 0.005,
    cut_jump: float = 0.03,
    max_stretch: float = 0.2,
    max_block_px: int = 32,
) -> TexturedMesh:
    """Triangulate every layer of ``ldi`` into one textured mesh in the reference camera frame.

    Parameters
    ----------
    ldi : layered depth image; pixels with alpha > 0.5 and a finite positive disparity get geometry
    focal_px : focal length of the reference view in pixels; None assumes a 60 degree horizontal
        field of view
    max_depth : farthest depth in near-distance units; smaller disparities are clamped to it
    flat_tolerance : largest disparity error of a merged block, as a fraction of the near
        disparity (0.005 moves a point by under 0.5 px when the viewpoint moves by 10 % of its
        depth at 640 px width); 0 merges only exactly planar blocks
    cut_jump : a triangle touching a pixel of ``ldi.edges`` is cut when its corners' disparities
        differ by more than this fraction of the largest: the cut between foreground and
        background (neighbours on the same surface differ far less)
    max_stretch : any triangle whose corners' disparities differ by more than this fraction of
        the largest is cut too: the ramps that stereo smears across an edge would otherwise
        stretch into a rubber sheet when the viewpoint moves. A cut triangle is not dropped but
        laid flat at the farthest depth within 3 px, so the seam stays closed in the reference
        view and moves with the background when the viewpoint moves
    max_block_px : side of the biggest merged block in pixels, a power of two; 1 disables merging
    Returns
    -------
    TexturedMesh : see the module docstring for frame and units
    Raises :class:`ShapeError` for inconsistent layers, :class:`InputError` when layer 0 covers
    no pixel or ``focal_px``, ``max_depth`` or the tolerances are out of range.
    """
    height, width = _check_ldi(ldi)
    if max_block_px < 1 or max_block_px > 1024 or max_block_px & (max_block_px - 1):
        raise InputError(f"max_block_px must be a power of two in [1, 1024], got {max_block_px}")
    if not max_depth > 1.0:
        raise InputError(f"max_depth must be above 1 (near-distance units), got {max_depth}")
    if not (flat_tolerance >= 0.0 and 0.0 < cut_jump <= 1.0 and 0.0 < max_stretch <= 1.0):
        raise InputError(
            f"need flat_tolerance >= 0 and cut_jump, max_stretch in (0, 1]; got {flat_tolerance}, {cut_jump}, {max_stretch}"
        )
    if focal_px is None:
        focal_px = 0.5 * width / math.tan(math.radians(DEFAULT_HFOV_DEG) / 2)
    if not (math.isfinite(focal_px) and focal_px > 0):
        raise InputError(f"focal_px must be positive, got {focal_px}")

    near = _near_disparity(ldi.layers[0])
    meshing = _LayerMesher(
        edges=ldi.edges.astype(bool, copy=False),
        near=near,
        floor=near / max_depth,
        focal_px=float(focal_px),
        flat_tolerance=flat_tolerance * near,
        cut_jump=cut_jump,
        max_stretch=max_stretch,
        block_sizes=tuple(1 << k for k in range(int(math.log2(max_block_px)), 0, -1)),
    )
    parts = []
    dense_vertices = dense_faces = 0
    pivot_depth = 1.0
    for index, layer in enumerate(ldi.layers):
        part, n_vertices, n_faces, median_disparity = meshing(layer, index)
        dense_vertices += n_vertices
        dense_faces += n_faces
        if index == 0 and median_disparity > 0:
            pivot_depth = near / median_disparity
        if len(part.faces):
            parts.append(part)
    return TexturedMesh(
        parts=tuple(parts),
        size_hw=(height, width),
        focal_px=float(focal_px),
        near_disparity=near,
        pivot_depth=float(pivot_depth),
        dense_vertices=dense_vertices,
        dense_faces=dense_faces,
    )


def _check_ldi(ldi: LayeredDepthImage) -> tuple[int, int]:
    if not ldi.layers:
        raise ShapeError("the layered depth image has no layers")
    height, width = ldi.size_hw
    if height < 2 or width < 2:
        raise ShapeError(f"the layered depth image is too small: {width}x{height} px")
    check_shape(ldi.edges, [height, width], name="ldi.edges")
    for index, layer in enumerate(ldi.layers):
        check_shape(layer.color, [height, width, 3], name=f"layers[{index}].color")
        check_shape(layer.disparity, [height, width], name=f"layers[{index}].disparity")
        check_shape(layer.alpha, [height, width], name=f"layers[{index}].alpha")
        if layer.color.dtype != np.uint8:
            raise ShapeError(f"layers[{index}].color must be uint8, got {layer.color.dtype}")
    return height, width


def _covered(layer: ImageLayer) -> np.ndarray:
    """(H, W) bool: the pixels of ``layer`` that get geometry."""
    disparity = layer.disparity
    with np.errstate(invalid="ignore"):
        return (layer.alpha > MIN_ALPHA) & np.isfinite(disparity) & (disparity > 0)


def _near_disparity(layer: ImageLayer) -> float:
    values = layer.disparity[_covered(layer)]
    if values.size == 0:
        raise InputError("layer 0 has no pixel with alpha > 0.5 and a positive finite disparity")
    if values.size > _NEAR_SAMPLES:
        values = values[:: values.size // _NEAR_SAMPLES]
    return float(np.percentile(values, NEAR_PERCENTILE))


@dataclass(frozen=True)
class _LayerMesher:
    """Meshes one layer at a time with settings shared by all layers (disparity units)."""

    edges: np.ndarray
    near: float
    floor: float
    focal_px: float
    flat_tolerance: float
    cut_jump: float
    max_stretch: float
    block_sizes: tuple[int, ...]

    def __call__(self, layer: ImageLayer, index: int) -> tuple[MeshPart, int, int, float]:
        """Return the part, the dense vertex and face counts and the median disparity."""
        height, width = layer.disparity.shape
        covered = _covered(layer)
        with np.errstate(invalid="ignore"):
            disparity = np.where(covered, np.maximum(layer.disparity, self.floor), self.floor)
        disparity = disparity.astype(np.float32)
        values = disparity[covered]
        median = float(np.median(values[:: max(1, values.size // _NEAR_SAMPLES)])) if values.size else 0.0

        cells = self._cell_triangles(disparity, covered)
        seam_faces, seam_disparity = self._seam(cells, disparity, covered)  # before snapping changes it
        merged_cells = np.zeros((height - 1, width - 1), bool)
        unmergeable = ~covered | cells.cut_pixels
        block_faces = [self._merge_blocks(disparity, unmergeable, merged_cells, size) for size in self.block_sizes]
        faces = np.concatenate(
            [*block_faces, _cell_faces(cells.upper & ~merged_cells, cells.lower & ~merged_cells, width)]
        )
        part = self._part(layer, index, disparity, faces, seam_faces, seam_disparity)
        return part, cells.dense_vertices, cells.dense_faces, median

    def _merge_blocks(
        self, disparity: np.ndarray, unmergeable: np.ndarray, merged_cells: np.ndarray, size: int
    ) -> np.ndarray:
        """Choose the free blocks of ``size`` x ``size`` cells that two triangles fit; (K*2, 3) faces.

        Updates ``merged_cells`` and snaps the chosen blocks' borders in ``disparity``.
        """
        height, width = disparity.shape
        n_y, n_x = (height - 1) // size, (width - 1) // size
        if n_y == 0 or n_x == 0:
            return np.zeros((0, 3), np.uint32)
        top = np.arange(n_y) * size
        left = np.arange(n_x) * size
        # blocks with no uncovered or cut pixel among their (size + 1)^2 corners, not yet merged
        bad = cv2.integral(unmergeable.view(np.uint8))
        y0, x0, y1, x1 = top[:, None], left[None, :], top[:, None] + size + 1, left[None, :] + size + 1
        n_bad = bad[y1, x1] - bad[y0, x1] - bad[y1, x0] + bad[y0, x0]
        candidate = (n_bad == 0) & ~merged_cells[y0, x0]
        block_y, block_x = np.nonzero(candidate)
        if block_y.size == 0:
            return np.zeros((0, 3), np.uint32)
        row, col = disparity.strides
        windows = np.lib.stride_tricks.as_strided(
            disparity, shape=(n_y, n_x, size + 1, size + 1), strides=(size * row, size * col, row, col), writeable=False
        )
        blocks = windows[block_y, block_x]  # (K, size + 1, size + 1) copy
        corners = blocks[:, [0, 0, -1, -1], [0, -1, 0, -1]]  # a top-left, b top-right, c bottom-left, d bottom-right
        fitted = np.einsum("kc,cyx->kyx", corners, _corner_weights(size))
        error = np.abs(blocks - fitted).max(axis=(1, 2))
        chosen = error <= self.flat_tolerance
        block_y, block_x, corners = block_y[chosen], block_x[chosen], corners[chosen]
        if block_y.size == 0:
            return np.zeros((0, 3), np.uint32)

        y, x = block_y * size, block_x * size
        mask = np.zeros((n_y, n_x), bool)
        mask[block_y, block_x] = True
        merged_cells[: n_y * size, : n_x * size] |= np.repeat(np.repeat(mask, size, axis=0), size, axis=1)
        self._snap_borders(disparity, y, x, corners, size)

        a = (y * width + x).astype(np.uint32)
        b, c = a + size, a + size * width
        d = c + size
        return np.concatenate([np.stack([a, d, b], axis=1), np.stack([a, c, d], axis=1)])

    @staticmethod
    def _snap_borders(disparity: np.ndarray, y: np.ndarray, x: np.ndarray, corners: np.ndarray, size: int) -> None:
        """Put the border pixels of the blocks at (y, x) on the lines between their corners."""
        t = np.linspace(0.0, 1.0, size + 1, dtype=np.float32)[None, :]
        steps = np.arange(size + 1)[None, :]
        a, b, c, d = (corners[:, k : k + 1] for k in range(4))
        y, x = y[:, None], x[:, None]
        disparity[y, x + steps] = a + t * (b - a)
        disparity[y + size, x + steps] = c + t * (d - c)
        disparity[y + steps, x] = a + t * (c - a)
        disparity[y + steps, x + size] = b + t * (d - b)

    def _cell_triangles(self, disparity: np.ndarray, covered: np.ndarray) -> "_Cells":
        """Sort each cell's two triangles into kept, cut and absent (see :class:`_Cells`)."""
        va, vb, vc, vd = _cell_corners(covered)
        upper = va & vd & vb
        lower = va & vc & vd
        cut_upper = np.zeros_like(upper)
        cut_lower = np.zeros_like(lower)
        cut_pixels = np.zeros_like(covered)
        # cheap screen: cells whose four corners differ little and touch no edge keep both triangles
        da, db, dc, dd = _cell_corners(disparity)
        high = np.maximum(np.maximum(da, db), np.maximum(dc, dd))
        low = np.minimum(np.minimum(da, db), np.minimum(dc, dd))
        ea, eb, ec, ed = _cell_corners(self.edges)
        spread = high - low
        suspect = np.nonzero(
            (upper | lower)
            & (((ea | eb | ec | ed) & (spread > self.cut_jump * high)) | (spread > self.max_stretch * high))
        )
        if suspect[0].size:
            da, db, dc, dd, ea, eb, ec, ed = (corner[suspect] for corner in (da, db, dc, dd, ea, eb, ec, ed))
            cut_upper[suspect] = upper[suspect] & self._is_cut(da, dd, db, ea | ed | eb)
            cut_lower[suspect] = lower[suspect] & self._is_cut(da, dc, dd, ea | ec | ed)
            upper &= ~cut_upper
            lower &= ~cut_lower
            at_cut = tuple(index[cut_upper[suspect] | cut_lower[suspect]] for index in suspect)
            for corner in _cell_corners(cut_pixels):
                corner[at_cut] = True
            cut_pixels &= self.edges
        used = np.zeros_like(covered)
        upper_any, lower_any = upper | cut_upper, lower | cut_lower
        either = upper_any | lower_any
        used[:-1, :-1] |= either
        used[1:, 1:] |= either
        used[:-1, 1:] |= upper_any
        used[1:, :-1] |= lower_any
        return _Cells(
            upper,
            lower,
            cut_upper,
            cut_lower,
            cut_pixels,
            int(used.sum()),
            int(either.sum() + (upper_any & lower_any).sum()),
        )

    def _is_cut(self, d0: np.ndarray, d1: np.ndarray, d2: np.ndarray, at_edge: np.ndarray) -> np.ndarray:
        high = np.maximum(np.maximum(d0, d1), d2)
        spread = high - np.minimum(np.minimum(d0, d1), d2)
        return (at_edge & (spread > self.cut_jump * high)) | (spread > self.max_stretch * high)

    @staticmethod
    def _seam(cells: "_Cells", disparity: np.ndarray, covered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The cut triangles as (K, 3) pixel-index faces and (K,) float32 disparity to lay them at.

        That is the farthest (smallest) covered disparity within ``SEAM_RADIUS_PX`` of a corner:
        the background beyond a ramp that stereo smeared across the edge.
        """
        faces = _cell_faces(cells.cut_upper, cells.cut_lower, disparity.shape[1])
        if len(faces) == 0:
            return faces, np.zeros(0, np.float32)
        window = np.ones((2 * SEAM_RADIUS_PX + 1,) * 2, np.uint8)
        background = cv2.erode(np.where(covered, disparity, np.float32(np.inf)), window)
        return faces, background.ravel()[faces].min(axis=1)

    def _part(
        self,
        layer: ImageLayer,
        index: int,
        disparity: np.ndarray,
        faces: np.ndarray,
        seam_faces: np.ndarray,
        seam_disparity: np.ndarray,
    ) -> MeshPart:
        """Gather the used pixels into vertices; seam triangles get their own flat vertices."""
        height, width = disparity.shape
        used = np.zeros(height * width, bool)
        used[faces.ravel()] = True
        pixel = np.flatnonzero(used)
        new_index = np.cumsum(used, dtype=np.int64) - 1
        faces = new_index[faces]
        # seam vertices: one per (pixel, disparity) pair, apart from the surface's own
        seam_key = (seam_faces.astype(np.int64) << 32) | np.repeat(seam_disparity, 3).view(np.uint32).reshape(-1, 3)
        seam_key, seam_index = np.unique(seam_key.ravel(), return_inverse=True)
        seam_pixel = seam_key >> 32
        seam_vertex_disparity = (seam_key & 0xFFFFFFFF).astype(np.uint32).view(np.float32)
        faces = np.concatenate([faces, pixel.size + seam_index.reshape(-1, 3)]).astype(np.uint32)
        vertex_disparity = np.concatenate([disparity.ravel()[pixel], seam_vertex_disparity])
        pixel = np.concatenate([pixel, seam_pixel])
        if pixel.size == 0:
            empty = np.zeros((0, 3), np.float32)
            return MeshPart(
                empty, np.zeros((0, 2), np.float32), np.zeros((0, 3), np.uint32), layer.color[:0, :0], index
            )

        y, x = np.divmod(pixel, width)
        depth = self.near / vertex_disparity
        vertices = np.empty((pixel.size, 3), np.float32)
        vertices[:, 0] = (x - 0.5 * (width - 1)) * depth / self.focal_px
        vertices[:, 1] = (y - 0.5 * (height - 1)) * depth / self.focal_px
        vertices[:, 2] = depth
        top, bottom, left, right = y.min(), y.max(), x.min(), x.max()
        texture = np.ascontiguousarray(layer.color[top : bottom + 1, left : right + 1])
        uv = np.empty((pixel.size, 2), np.float32)
        uv[:, 0] = (x - left + 0.5) / texture.shape[1]
        uv[:, 1] = (y - top + 0.5) / texture.shape[0]
        return MeshPart(vertices, uv, faces, texture, index)


@dataclass(frozen=True, eq=False)
class _Cells:
    """The triangles of the dense pixel grid of one layer.

    upper, lower : (H-1, W-1) bool, kept triangles: upper = (top-left, bottom-right, top-right),
        lower = (top-left, bottom-left, bottom-right) of each cell
    cut_upper, cut_lower : (H-1, W-1) bool, triangles across a cut (laid flat, see mesh_from_layers)
    cut_pixels : (H, W) bool, edge pixels (near side) of cut triangles: never inside a merged block
    dense_vertices, dense_faces : counts of the dense mesh
    """

    upper: np.ndarray
    lower: np.ndarray
    cut_upper: np.ndarray
    cut_lower: np.ndarray
    cut_pixels: np.ndarray
    dense_vertices: int
    dense_faces: int


def _cell_corners(grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Views of an (H, W) grid at each cell's top-left, top-right, bottom-left, bottom-right."""
    return grid[:-1, :-1], grid[:-1, 1:], grid[1:, :-1], grid[1:, 1:]


def _cell_faces(upper: np.ndarray, lower: np.ndarray, width: int) -> np.ndarray:
    """(M, 3) uint32 faces of the kept cell triangles; pixel index = y * width + x."""
    faces = []
    for keep, order in ((upper, (0, 3, 1)), (lower, (0, 2, 3))):
        y, x = np.nonzero(keep)
        a = (y * width + x).astype(np.uint32)
        corner = (a, a + 1, a + width, a + width + 1)
        faces.append(np.stack([corner[k] for k in order], axis=1))
    return np.concatenate(faces)


_WEIGHTS: dict[int, np.ndarray] = {}


def _corner_weights(size: int) -> np.ndarray:
    """(4, size+1, size+1) float32: the two-triangle interpolation from corners a, b, c, d.

    Split along the a-d diagonal: upper triangle (a, d, b) where x >= y, lower (a, c, d).
    """
    if size not in _WEIGHTS:
        r, t = np.meshgrid(np.linspace(0, 1, size + 1), np.linspace(0, 1, size + 1), indexing="ij")
        upper = t >= r
        weights = np.stack(
            [
                np.where(upper, 1 - t, 1 - r),  # a
                np.where(upper, t - r, 0),  # b
                np.where(upper, 0, r - t),  # c
                np.where(upper, r, t),  # d
            ]
        )
        _WEIGHTS[size] = weights.astype(np.float32)
    return _WEIGHTS[size]


# --- glTF binary -------------------------------------------------------------------------------

_FLOAT, _UINT32 = 5126, 5125  # glTF accessor component types
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963  # bufferView targets
_LINEAR, _CLAMP_TO_EDGE = 9729, 33071
_UNLIT = "KHR_materials_unlit"
_TEXTURE_FORMATS = {"jpeg": (".jpg", "image/jpeg"), "png": (".png", "image/png")}


def glb_from_mesh(mesh: TexturedMesh, *, texture_format: str = "jpeg", jpeg_quality: int = 90) -> bytes:
    """Encode ``mesh`` as a self-contained glTF 2.0 binary (.glb).

    Layout: one mesh, one primitive per part (POSITION float32 VEC3, TEXCOORD_0 float32 VEC2,
    uint32 indices, tightly packed), each with an unlit (KHR_materials_unlit), double-sided
    material whose base colour texture is the part's image embedded in the binary chunk; node 0
    holds the mesh, node 1 a perspective camera at the reference view. Positions are in glTF's
    frame (x right, y up, z backwards): the OpenCV-frame vertices rotated 180 degrees about x.
    ``scenes[0].extras.glassdepth`` holds focal_px, size_wh, the orbit pivot (glTF frame) and
    disparity_baseline (:attr:`TexturedMesh.disparity_baseline`).
    """
    import pygltflib as gl

    if texture_format not in _TEXTURE_FORMATS:
        raise InputError(f"texture_format must be one of {sorted(_TEXTURE_FORMATS)}, got {texture_format!r}")
    extension, mime = _TEXTURE_FORMATS[texture_format]
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if texture_format == "jpeg" else []
    blob = bytearray()

    def add_view(data: bytes, target: int | None = None) -> int:
        blob.extend(b"\0" * (-len(blob) % 4))
        views.append(gl.BufferView(buffer=0, byteOffset=len(blob), byteLength=len(data), target=target))
        blob.extend(data)
        return len(views) - 1

    views: list = []
    accessors, primitives, materials, textures, images = [], [], [], [], []
    for part in mesh.parts:
        positions = np.ascontiguousarray(part.vertices * np.array([1, -1, -1], np.float32), dtype=np.float32)
        uv = np.ascontiguousarray(part.uv, dtype=np.float32)
        indices = np.ascontiguousarray(part.faces, dtype=np.uint32)
        ok, encoded = cv2.imencode(extension, part.texture, params)
        if not ok:
            raise InputError(f"OpenCV could not encode a {part.texture.shape} texture as {texture_format}")
        base = len(accessors)
        accessors += [
            gl.Accessor(
                bufferView=add_view(positions.tobytes(), _ARRAY_BUFFER),
                componentType=_FLOAT,
                count=len(positions),
                type="VEC3",
                min=positions.min(axis=0).tolist(),
                max=positions.max(axis=0).tolist(),
            ),
            gl.Accessor(
                bufferView=add_view(uv.tobytes(), _ARRAY_BUFFER), componentType=_FLOAT, count=len(uv), type="VEC2"
            ),
            gl.Accessor(
                bufferView=add_view(indices.tobytes(), _ELEMENT_ARRAY_BUFFER),
                componentType=_UINT32,
                count=indices.size,
                type="SCALAR",
            ),
        ]
        images.append(gl.Image(bufferView=add_view(encoded.tobytes()), mimeType=mime, name=f"layer{part.layer}"))
        textures.append(gl.Texture(sampler=0, source=len(images) - 1))
        materials.append(
            gl.Material(
                name=f"layer{part.layer}",
                pbrMetallicRoughness=gl.PbrMetallicRoughness(
                    baseColorTexture=gl.TextureInfo(index=len(textures) - 1), metallicFactor=0.0, roughnessFactor=1.0
                ),
                doubleSided=True,
                extensions={_UNLIT: {}},
            )
        )
        primitives.append(
            gl.Primitive(
                attributes=gl.Attributes(POSITION=base, TEXCOORD_0=base + 1),
                indices=base + 2,
                material=len(materials) - 1,
                mode=gl.TRIANGLES,
            )
        )
    blob.extend(b"\0" * (-len(blob) % 4))

    height, width = mesh.size_hw
    extras = {
        "glassdepth": {
            "focal_px": mesh.focal_px,
            "size_wh": [width, height],
            "pivot": [0.0, 0.0, -mesh.pivot_depth],
            "disparity_baseline": mesh.disparity_baseline,
            "near_disparity": mesh.near_disparity,
        }
    }
    camera = gl.Camera(
        type="perspective",
        perspective=gl.Perspective(
            yfov=2.0 * math.atan(0.5 * height / mesh.focal_px), aspectRatio=width / height, znear=0.01, zfar=1000.0
        ),
    )
    gltf = gl.GLTF2(
        asset=gl.Asset(version="2.0", generator="glassdepth"),
        scene=0,
        scenes=[gl.Scene(nodes=[0, 1], extras=extras)],
        nodes=[gl.Node(mesh=0, name="layers"), gl.Node(camera=0, name="reference_view")],
        meshes=[gl.Mesh(primitives=primitives, name="ldi")],
        cameras=[camera],
        accessors=accessors,
        bufferViews=views,
        buffers=[gl.Buffer(byteLength=len(blob))],
        materials=materials,
        textures=textures,
        images=images,
        samplers=[gl.Sampler(magFilter=_LINEAR, minFilter=_LINEAR, wrapS=_CLAMP_TO_EDGE, wrapT=_CLAMP_TO_EDGE)],
        extensionsUsed=[_UNLIT],
    )
    gltf.set_binary_blob(bytes(blob))
    return b"".join(gltf.save_to_bytes())


def write_glb(
    mesh: TexturedMesh, path: str | os.PathLike, *, texture_format: str = "jpeg", jpeg_quality: int = 90
) -> Path:
    """Write ``mesh`` as a self-contained .glb file atomically (see :func:`glb_from_mesh`)."""
    return write_bytes_atomic(path, glb_from_mesh(mesh, texture_format=texture_format, jpeg_quality=jpeg_quality))


def mesh_summary(mesh: TexturedMesh) -> dict:
    """JSON-ready counts: vertices and faces, dense and simplified, per part."""
    return {
        "vertices": mesh.vertex_count,
        "faces": mesh.face_count,
        "dense_vertices": mesh.dense_vertices,
        "dense_faces": mesh.dense_faces,
        "parts": [{"layer": p.layer, "vertices": len(p.vertices), "faces": len(p.faces)} for p in mesh.parts],
        "focal_px": round(mesh.focal_px, 3),
        "pivot_depth": round(mesh.pivot_depth, 4),
    }


__all__ = ["MeshPart", "TexturedMesh", "glb_from_mesh", "mesh_from_layers", "mesh_summary", "write_glb"]
