"""CPU rendering of a layered depth image for a virtual camera, and camera paths.

Each layer is *backward* warped: for every target pixel q the source p = A + B d with
``d = D(p)`` is solved per pixel for the scalar disparity d (D: the layer's disparity, sampled at the
nearest pixel with ``cv2.remap`` so the two sides of an edge never blend into a false solution).
The solve starts from the nearest disparity that lands near q (a z-buffered forward splat of the
4x max-pooled disparity), so where two surfaces land on q the nearer one is found; two plain
fixed-point steps ``d <- D(A + B d)`` then three secant steps (fast on the steep slopes at
silhouettes) follow. Where it does not settle (a disoccluded gap: it jumps between the two sides of
an edge) the layer is transparent; the residual in px fades the alpha out between
``CONVERGED_PX`` and ``2 * CONVERGED_PX``, which antialiases the cut. Colour and alpha are sampled
bilinearly at the solution. Layers are composited by their warped disparity, nearest first
("over"); where all layers leave a pixel partly uncovered, the last layer (the background plate,
filled everywhere) shows through at full alpha, and pixels that no layer covers by half (gaps no
band reached) take the nearest covered pixel of their row on the background side.
"""

import math
from collections.abc import Sequence

import cv2
import numpy as np

from sensing.errors import ConfigError
from sensing.novel_view.fill import background_sources_in_row
from sensing.novel_view.types import CameraPose, ImageLayer, LayeredDepthImage

#: Plain fixed-point iterations per layer and frame (they pick the nearest surface's basin) ...
FIXED_POINT_ITERATIONS = 2
#: ... then secant iterations on the scalar disparity (fast on steep slopes, e.g. at silhouettes).
SECANT_ITERATIONS = 3
#: Residual (px) below which a target pixel counts as converged (alpha 1); alpha 0 at twice it.
CONVERGED_PX = 0.5
#: A later layer must be nearer by this much (px of disparity, plus 2 %) to cover an earlier one.
TIE_PX = 0.5
#: Largest forward motion, as a fraction of the depth of the nearest point (keeps 1 - tz d / f > 0).
MAX_DOLLY_FRACTION = 0.8
#: Camera paths of :func:`camera_path`.
PATHS = ("circle", "swing", "dolly")
#: Factor by which the disparity is max-pooled before the per-frame forward splat (speed).
_POOL = 4
#: Splat cells below this received nothing.
_NOTHING = -1e30


def render_view(ldi: LayeredDepthImage, pose: CameraPose, *, focal_px: float | None = None) -> np.ndarray:
    """The view of a virtual camera at ``pose``: (H, W, 3) uint8 BGR.

    ``focal_px`` (default: the image's larger side, a 53 degree field of view) only matters for
    ``pose.tz``. Functional form of :class:`LayerRenderer` (which keeps per-image precomputation).
    """
    return LayerRenderer(ldi, focal_px=focal_px).render(pose)


def render_novel_right(
    image: np.ndarray, disparity: np.ndarray, *, confidence: np.ndarray | None = None
) -> np.ndarray:
    """Synthesise the right view of a rectified pair from the left view and its disparity.

    Parameters
    ----------
    image : (H, W, 3) uint8 BGR left view
    disparity : (H, W) float left-view disparity in px (``x_right = x_left - d``); non-finite = unknown
    confidence : optional (H, W) float in [0, 1], see :func:`layered_depth_from_disparity`
    Returns
    -------
    (H, W, 3) uint8 BGR: the render at ``CameraPose(tx=-1)`` of the layers cut for ``max_shift=1``
    """
    from sensing.novel_view.layers import layered_depth_from_disparity

    ldi = layered_depth_from_disparity(image, disparity, confidence=confidence, max_shift=1.0)
    return render_view(ldi, CameraPose(tx=-1.0))


def camera_path(path: str, frames: int, *, radius: float = 0.5) -> tuple[CameraPose, ...]:
    """``frames`` poses of a looping camera path around the reference view.

    path : ``circle`` (the camera circles in the image plane, radius ``radius``), ``swing`` (left and
        right, amplitude ``radius``) or ``dolly`` (forward to ``4 * radius`` baselines and back)
    radius : px of parallax per px of disparity; keep it within the layers' ``max_shift``
    Raises :class:`ConfigError` for an unknown path, ``frames < 1`` or a negative radius.
    """
    if path not in PATHS:
        raise ConfigError(f"unknown camera path {path!r}; available: {list(PATHS)}")
    if frames < 1:
        raise ConfigError(f"frames must be at least 1, got {frames}")
    if not (radius >= 0 and math.isfinite(radius)):
        raise ConfigError(f"radius must be a non-negative number, got {radius}")
    angles = [2 * math.pi * index / frames for index in range(frames)]
    if path == "circle":
        return tuple(CameraPose(tx=radius * math.cos(a), ty=radius * math.sin(a)) for a in angles)
    if path == "swing":
        return tuple(CameraPose(tx=radius * math.sin(a)) for a in angles)
    return tuple(CameraPose(tz=4 * radius * (1 - math.cos(a)) / 2) for a in angles)


class LayerRenderer:
    """Renders one layered depth image for many poses, keeping what does not change per frame.

    ldi : the layers (see :class:`LayeredDepthImage`), all (H, W)
    focal_px : focal length in px for ``pose.tz`` (default: the larger image side)
    fixed_point_iterations, secant_iterations : iterations per layer and frame
    """

    def __init__(
        self,
        ldi: LayeredDepthImage,
        *,
        focal_px: float | None = None,
        fixed_point_iterations: int = FIXED_POINT_ITERATIONS,
        secant_iterations: int = SECANT_ITERATIONS,
    ):
        if not ldi.layers:
            raise ValueError("a layered depth image needs at least one layer")
        height, width = ldi.size_hw
        for index, layer in enumerate(ldi.layers):
            if layer.size_hw != (height, width) or layer.disparity.shape != (height, width):
                raise ValueError(f"layer {index} is not {width}x{height}")
        self.size_hw = (height, width)
        self.focal_px = float(focal_px) if focal_px is not None else float(max(height, width))
        self.fixed_point_iterations = fixed_point_iterations
        self.secant_iterations = secant_iterations
        self.layers = [_PreparedLayer(layer) for layer in ldi.layers]
        self._x = np.arange(width, dtype=np.float32)[None, :]
        self._y = np.arange(height, dtype=np.float32)[:, None]
        self._centre = ((width - 1) / 2.0, (height - 1) / 2.0)
        self._max_disparity = max(float(layer.disparity.max()) for layer in self.layers)
        # Target pixel -> its pooled cell (for the splatted initial disparity).
        self._cell_map_x = np.ascontiguousarray(np.broadcast_to(np.floor(self._x / _POOL), (height, width)))
        self._cell_map_y = np.ascontiguousarray(np.broadcast_to(np.floor(self._y / _POOL), (height, width)))

    def render(self, pose: CameraPose) -> np.ndarray:
        """(H, W, 3) uint8 BGR view at ``pose``."""
        motion = self._motion(pose)
        warped = [self._warp(layer, motion, plate=index > 0) for index, layer in enumerate(self.layers)]
        return _composite(warped)

    def _motion(self, pose: CameraPose) -> "_Motion":
        if not (pose.zoom > 0 and math.isfinite(pose.zoom)):
            raise ValueError(f"zoom must be a positive number, got {pose.zoom}")
        tz = pose.tz / self.focal_px
        if self._max_disparity > 0:
            tz = min(tz, MAX_DOLLY_FRACTION / self._max_disparity)
        return _Motion(pose.tx, pose.ty, tz, pose.zoom, self._centre, self._x, self._y)

    def _warp(self, layer: "_PreparedLayer", motion: "_Motion", *, plate: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Colour (H, W, 3) uint8, alpha (H, W) float32 and disparity (H, W) float32 of ``layer`` at the target.

        Solves ``d = D(A + B d)`` per target pixel (D: the layer's disparity, sampled at the nearest
        pixel so that the two sides of an edge never blend into a false solution). A background
        plate (filled, smooth) gets one iteration of each kind fewer.
        """
        ax, bx, ay, by = motion.inverse()
        height, width = self.size_hw
        splat = layer.splatted_disparity(motion)
        d = cv2.remap(splat, self._cell_map_x, self._cell_map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
        map_x = np.empty((height, width), np.float32)
        map_y = np.empty((height, width), np.float32)
        # Every per-iteration array lives in a buffer allocated once per layer and frame.
        sampled, residual, residual_before, previous, step, limit = (np.empty((height, width), np.float32) for _ in range(6))
        unchanged = np.empty((height, width), bool)

        def sample(d: np.ndarray) -> np.ndarray:
            _source(d, ax, bx, map_x)
            _source(d, ay, by, map_y)
            return cv2.remap(layer.disparity, map_x, map_y, cv2.INTER_NEAREST, dst=sampled, borderMode=cv2.BORDER_REPLICATE)

        fixed_point = max(1, self.fixed_point_iterations - plate)
        secant = max(0, self.secant_iterations - plate)
        for index in range(fixed_point + secant):
            np.subtract(sample(d), d, out=residual)
            if index < fixed_point:
                np.copyto(step, residual)
            else:
                # Secant on h(d) = D(A + B d) - d: step = -h (d - d') / (h - h'), at most 4 |h|;
                # a plain fixed-point step where h did not change.
                np.subtract(previous, d, out=step)
                step *= residual
                np.subtract(residual, residual_before, out=limit)
                np.equal(limit, 0, out=unchanged)
                with np.errstate(divide="ignore", invalid="ignore"):
                    np.divide(step, limit, out=step)
                np.copyto(step, residual, where=unchanged)
                np.abs(residual, out=limit)
                limit *= 4.0
                np.minimum(step, limit, out=step)
                np.negative(limit, out=limit)
                np.maximum(step, limit, out=step)
            np.copyto(previous, d)
            residual, residual_before = residual_before, residual
            d += step
        sampled = sample(d)
        # Residual: how far the source position is from consistent, in px.
        miss = np.abs(sampled - d)
        miss *= np.sqrt(bx * bx + by * by) * np.float32(-1.0 / CONVERGED_PX)
        miss += 2.0
        alpha = cv2.min(cv2.max(miss, 0.0), 1.0)
        color = cv2.remap(layer.color, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if layer.alpha is not None:
            alpha *= cv2.remap(layer.alpha, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return color, alpha, d.astype(np.float32, copy=False)


def _source(d: np.ndarray, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    np.multiply(d, b, out=out)
    out += a


class _Motion:
    """Where a pixel of disparity d moves: ``x' = cx + zoom ((x - cx) + tx d) / (1 - tz d)`` (tz per px)."""

    def __init__(self, tx, ty, tz, zoom, centre, x, y):
        self.tx, self.ty, self.tz, self.zoom = float(tx), float(ty), float(tz), float(zoom)
        self.cx, self.cy = centre
        self.x, self.y = x, y

    def forward(self, x: np.ndarray, y: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scale = self.zoom / (1.0 - self.tz * d)
        return self.cx + scale * ((x - self.cx) + self.tx * d), self.cy + scale * ((y - self.cy) + self.ty * d)

    def inverse(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Source of target pixel q as ``A + B d``: (Ax, Bx) rows (1, W), (Ay, By) columns (H, 1), float32."""
        ax = self.cx + (self.x - self.cx) / self.zoom
        ay = self.cy + (self.y - self.cy) / self.zoom
        bx = -(self.x - self.cx) * (self.tz / self.zoom) - self.tx
        by = -(self.y - self.cy) * (self.tz / self.zoom) - self.ty
        return (*(np.asarray(v, np.float32) for v in (ax, bx, ay, by)),)


class _PreparedLayer:
    """A layer's arrays in the form the renderer samples, and its max-pooled disparity."""

    def __init__(self, layer: ImageLayer):
        self.color = np.ascontiguousarray(layer.color)
        disparity = np.where(np.isfinite(layer.disparity), layer.disparity, 0).astype(np.float32)
        self.disparity = np.ascontiguousarray(disparity)
        self.alpha = None if bool((layer.alpha >= 1).all()) else np.ascontiguousarray(layer.alpha, dtype=np.float32)
        height, width = disparity.shape
        padded = cv2.copyMakeBorder(disparity, 0, -height % _POOL, 0, -width % _POOL, cv2.BORDER_REPLICATE)
        rows, columns = padded.shape[0] // _POOL, padded.shape[1] // _POOL
        self.pooled = padded.reshape(rows, _POOL, columns, _POOL).max(axis=(1, 3))
        centres = (_POOL - 1) / 2.0
        self.cell_x = (np.arange(columns, dtype=np.float32) * _POOL + centres)[None, :]
        self.cell_y = (np.arange(rows, dtype=np.float32) * _POOL + centres)[:, None]

    def splatted_disparity(self, motion: _Motion) -> np.ndarray:
        """(rows, columns) float32 on the pooled target grid: the nearest pooled disparity that lands
        in each cell (z-buffered forward splat, cracks closed by a 3x3 max filter; cells nothing
        lands on keep their own pooled disparity)."""
        target_x, target_y = motion.forward(self.cell_x, self.cell_y, self.pooled)
        rows, columns = self.pooled.shape
        column = np.floor(target_x / _POOL).astype(np.int64)
        row = np.floor(target_y / _POOL).astype(np.int64)
        inside = (column >= 0) & (column < columns) & (row >= 0) & (row < rows)
        splat = np.full(rows * columns, -np.inf, np.float32)  # below _NOTHING
        np.maximum.at(splat, (row * columns + column)[inside], self.pooled[inside])
        splat = cv2.dilate(splat.reshape(rows, columns), np.ones((3, 3), np.uint8))
        # Nothing landed (OpenCV pads the dilation with -FLT_MAX, not -inf): keep the own value.
        return np.where(splat > _NOTHING, splat, self.pooled).astype(np.float32)


def _composite(warped: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> np.ndarray:
    """Nearest-first "over" compositing of warped (colour, alpha, disparity) layers; the last layer
    fills what stays uncovered. The first layer wins ties within ``TIE_PX`` + 2 %."""
    if len(warped) == 1:
        color, alpha, disparity = warped[0]
        holes = alpha < 0.5
        if holes.any():
            color = color.copy()
            _fill_holes_from_row_background(color, holes, disparity)
        return color
    if len(warped) == 2:
        # Layer 1 in front: a1 c1 + (1 - a1) (a0 c0 + (1 - a0) c1); behind: a0 c0 + (1 - a0) c1.
        # Both are c1 + w (c0 - c1) with w = a0 (1 - a1 [layer 1 in front]).
        (color0, alpha0, disparity0), (color1, alpha1, disparity1) = warped
        front = disparity1 > disparity0 * 1.02 + TIE_PX
        weight0 = alpha0 * (1.0 - np.where(front, alpha1, 0.0).astype(np.float32))
        out = cv2.blendLinear(color0, color1, weight0, 1.0 - weight0)
        holes = (alpha0 < 0.5) & (alpha1 < 0.5)
        if holes.any():
            _fill_holes_from_row_background(out, holes, np.where(alpha0 >= 0.5, disparity0, disparity1))
        return out
    keys = np.stack([d * (1.02 if i == 0 else 1.0) + (TIE_PX if i == 0 else 0.0) for i, (_, _, d) in enumerate(warped)])
    alphas = np.stack([alpha for _, alpha, _ in warped])
    keys[alphas <= 0] = -np.inf
    order = np.argsort(-keys, axis=0, kind="stable")
    colors = np.stack([color for color, _, _ in warped]).astype(np.float32)
    out = np.zeros(colors.shape[1:], np.float32)
    remaining = np.ones(alphas.shape[1:], np.float32)
    for rank in range(len(warped)):
        index = order[rank]
        alpha = np.take_along_axis(alphas, index[None], axis=0)[0]
        color = np.take_along_axis(colors, index[None, :, :, None], axis=0)[0]
        weight = remaining * alpha
        out += weight[:, :, None] * color
        remaining -= weight
    out += remaining[:, :, None] * colors[-1]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _fill_holes_from_row_background(image: np.ndarray, holes: np.ndarray, disparity: np.ndarray) -> None:
    """In place: each hole pixel takes the nearest non-hole pixel of its row on the background side."""
    hole_at, source = background_sources_in_row(disparity, ~holes)
    found = source >= 0
    hole_at, source = hole_at[found], source[found]
    rows, columns = np.divmod(hole_at, holes.shape[1])
    image[rows, columns] = image[rows, source]
