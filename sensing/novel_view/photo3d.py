"""The "3D photo": layers, fill and a camera path rendered from one image and its disparity, timed.

:func:`render_path` returns the frames, the layered depth image it rendered (``Photo3D.ldi``) and
its step timings (``Photo3D.timings_ms``). :func:`write_photo3d` adds the mesh export and the viewer
and writes the three files of a pipeline run's 3D photo (:data:`PHOTO3D_FILES`).
"""

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sensing.errors import InputError
from sensing.fileio import read_image, read_pfm, write_bytes_atomic
from sensing.novel_view.layers import cut_layers, layered_depth_from_cut
from sensing.novel_view.mesh import glb_from_mesh, mesh_from_layers
from sensing.novel_view.render import LayerRenderer, camera_path
from sensing.novel_view.types import CameraPose, LayeredDepthImage
from sensing.novel_view.video import write_mp4
from sensing.novel_view.viewer import write_viewer

#: 16-bit PNG disparity maps follow the KITTI convention: value / 256 px, 0 = unknown.
PNG16_DISPARITY_SCALE = 256.0
#: The files :func:`write_photo3d` writes: textured mesh, camera path video, viewer page.
PHOTO3D_FILES = ("photo3d.glb", "photo3d.mp4", "viewer.html")
#: Percentile of the known disparity taken as the nearest surface (robust to outliers).
NEAR_PERCENTILE = 99.0
#: Farthest depth, in units of the nearest surface's: smaller disparities (a relative map reaches 0
#: at its far end, stereo can be 0 or below at infinity) are raised to the near disparity / this.
MAX_DEPTH = 20.0
#: Latency target (ms) from the inputs to the first view: layers + fill + mesh + first frame.
FIRST_VIEW_TARGET_MS = 250.0


@dataclass(frozen=True, eq=False)
class Photo3D:
    """A rendered camera path.

    frames : (H, W, 3) uint8 BGR views, one per pose
    poses : the camera poses of the frames
    ldi : the layered depth image they were rendered from
    timings_ms : ``cut`` (layer cut), ``fill`` (background fill + layer assembly), ``prepare``
        (renderer set-up), ``first_frame`` (cut + fill + prepare + the first frame: the latency to
        the first view) and ``frames`` (list, each frame's render time)
    """

    frames: tuple[np.ndarray, ...]
    poses: tuple[CameraPose, ...]
    ldi: LayeredDepthImage
    timings_ms: dict[str, float | list[float]] = field(default_factory=dict)


def render_path(
    image: np.ndarray,
    disparity: np.ndarray,
    *,
    path: str = "circle",
    frames: int = 48,
    radius: float = 0.5,
    confidence: np.ndarray | None = None,
    max_shift: float | None = None,
    focal_px: float | None = None,
) -> Photo3D:
    """Cut ``image`` into layers by ``disparity`` and render ``frames`` views along ``path``.

    Parameters
    ----------
    image : (H, W, 3) or (H, W) uint8 BGR reference view
    disparity : (H, W) float relative disparity (larger = nearer, px of parallax per unit shift);
        non-finite = unknown
    path, frames, radius : the camera path (see :func:`sensing.novel_view.render.camera_path`)
    confidence : optional (H, W) float in [0, 1]
    max_shift : the largest shift the layers are prepared for (default: ``radius``, or twice it
        for ``dolly``, at least 0.25)
    focal_px : focal length in px, for ``dolly`` (default: see :class:`LayerRenderer`)
    Returns
    -------
    Photo3D : frames, poses, the layers and the step timings
    Raises :class:`InputError` on mismatched sizes or a disparity without any finite value.
    """
    check_pair(image, disparity)
    poses = camera_path(path, frames, radius=radius)
    if max_shift is None:
        max_shift = max(0.25, radius * (2.0 if path == "dolly" else 1.0))
    start = time.perf_counter()
    cut = cut_layers(disparity, confidence=confidence, max_shift=max_shift)
    cut_done = time.perf_counter()
    ldi = layered_depth_from_cut(image, cut)
    fill_done = time.perf_counter()
    renderer = LayerRenderer(ldi, focal_px=focal_px)
    prepared = time.perf_counter()
    rendered, frame_ms = [], []
    for pose in poses:
        begin = time.perf_counter()
        rendered.append(renderer.render(pose))
        frame_ms.append(1000.0 * (time.perf_counter() - begin))
    timings = {
        "cut": 1000.0 * (cut_done - start),
        "fill": 1000.0 * (fill_done - cut_done),
        "prepare": 1000.0 * (prepared - fill_done),
        "first_frame": 1000.0 * (prepared - start) + frame_ms[0],
        "frames": frame_ms,
    }
    return Photo3D(tuple(rendered), poses, ldi, timings)


def write_photo3d(
    image: np.ndarray,
    disparity: np.ndarray,
    folder: str | os.PathLike,
    *,
    confidence: np.ndarray | None = None,
    focal_px: float | None = None,
    path: str = "circle",
    frames: int = 30,
    fps: float = 15.0,
    radius_px: float = 16.0,
) -> dict:
    """Write the 3D photo of ``image`` into ``folder``: :data:`PHOTO3D_FILES`, timed.

    Parameters
    ----------
    image : (H, W, 3) or (H, W) uint8 BGR reference (rectified left) view
    disparity : (H, W) float disparity of ``image``, px or relative (any positive scale, larger =
        nearer); non-finite = unknown (filled from the background side)
    folder : existing folder to write into (a caller's staging folder, for all or nothing)
    confidence : optional (H, W) float in [0, 1]; pixels below 0.25 count as unknown in the layer
        cut. Pass it only for a stereo disparity: a dense (fused or mono) map has no better
        estimate at its unconfident pixels than its own
    focal_px : focal length of ``image`` in px (mesh field of view and dolly); None assumes a
        60 degree horizontal field of view for the mesh
    path, frames, fps : camera path of the video (``circle``, ``swing`` or ``dolly``), its frame
        count and rate
    radius_px : path radius as the image motion (px) of the nearest surface: the disparity is
        rescaled so that its 99th percentile is ``radius_px`` and the path radius is 1 (the layers
        are cut for that shift, and the viewer reaches it at the page's edge)
    Returns
    -------
    dict, JSON-ready: ``files``, ``path``, ``frames``, ``fps``, ``radius_px``, ``disparity_scale``
    (the rescaling factor), ``layers``, ``mesh`` (vertex and face counts), ``timings_ms`` (``layers``,
    ``fill``, ``mesh``, ``prepare``, ``first_frame`` (its render only), ``frames`` (all frames),
    ``glb``, ``video``, ``viewer``), ``first_view_ms`` (layers + fill + mesh + renderer set-up +
    first frame) and ``first_view_within_target`` (:data:`FIRST_VIEW_TARGET_MS`).
    Raises :class:`InputError`, before writing anything, on mismatched sizes or a disparity with
    no finite positive value.
    Convention: the files are written in the order glb, mp4, html, each atomically.
    """
    check_pair(image, disparity)
    if not (radius_px > 0 and np.isfinite(radius_px)):
        raise ValueError(f"radius_px must be positive, got {radius_px}")
    scaled, scale = _parallax_disparity(disparity, radius_px)
    folder = Path(folder)
    photo = render_path(
        image, scaled, path=path, frames=frames, radius=1.0, confidence=confidence, focal_px=focal_px
    )
    begin = time.perf_counter()
    mesh = mesh_from_layers(photo.ldi, focal_px=focal_px, max_depth=MAX_DEPTH)
    mesh_ms = 1000.0 * (time.perf_counter() - begin)
    begin = time.perf_counter()
    glb = glb_from_mesh(mesh)
    write_bytes_atomic(folder / "photo3d.glb", glb)
    glb_done = time.perf_counter()
    write_mp4(folder / "photo3d.mp4", photo.frames, fps=fps)
    video_done = time.perf_counter()
    write_viewer(glb, folder / "viewer.html", max_shift=1.0)
    viewer_done = time.perf_counter()

    timings = photo.timings_ms
    first_render = timings["frames"][0]
    first_view = timings["first_frame"] + mesh_ms  # cut + fill + prepare + first frame, + mesh
    return {
        "files": list(PHOTO3D_FILES),
        "path": path,
        "frames": len(photo.frames),
        "fps": float(fps),
        "radius_px": float(radius_px),
        "disparity_scale": round(scale, 6),
        "layers": len(photo.ldi.layers),
        "mesh": {"vertices": mesh.vertex_count, "faces": mesh.face_count, "glb_bytes": len(glb)},
        "timings_ms": {
            key: round(value, 2)
            for key, value in {
                "layers": timings["cut"],
                "fill": timings["fill"],
                "mesh": mesh_ms,
                "prepare": timings["prepare"],
                "first_frame": first_render,
                "frames": float(sum(timings["frames"])),
                "glb": 1000.0 * (glb_done - begin),
                "video": 1000.0 * (video_done - glb_done),
                "viewer": 1000.0 * (viewer_done - video_done),
            }.items()
        },
        "first_view_ms": round(first_view, 2),
        "first_view_target_ms": FIRST_VIEW_TARGET_MS,
        "first_view_within_target": first_view <= FIRST_VIEW_TARGET_MS,
    }


def _parallax_disparity(disparity: np.ndarray, radius_px: float) -> tuple[np.ndarray, float]:
    """``disparity`` rescaled so that its :data:`NEAR_PERCENTILE` is ``radius_px``, raised to at
    least ``radius_px / MAX_DEPTH`` where finite: ((H, W) float32, the scale factor)."""
    finite = np.isfinite(disparity)
    positive = disparity[finite & (np.where(finite, disparity, 0) > 0)]
    if positive.size == 0:
        raise InputError("disparity has no finite positive value: nothing to give depth to")
    near = float(np.percentile(positive, NEAR_PERCENTILE))
    scale = radius_px / near
    scaled = np.where(finite, np.maximum(np.where(finite, disparity, 0) * scale, radius_px / MAX_DEPTH), np.inf)
    return scaled.astype(np.float32), scale


def read_disparity(path: str | os.PathLike) -> np.ndarray:
    """A disparity map from a PFM (float32 px, non-finite = unknown) or a 16-bit PNG (KITTI:
    value / 256 px, 0 = unknown): (H, W) float32 with ``inf`` where unknown.

    Raises :class:`InputError` for a missing file, another format or a map with no finite value.
    """
    path = Path(path)
    if path.suffix.lower() == ".pfm":
        disparity = read_pfm(path)
    elif path.suffix.lower() == ".png":
        raw = read_image(path)
        if raw.dtype != np.uint16 or raw.ndim != 2:
            raise InputError(f"{path}: a PNG disparity must be single-channel 16-bit (KITTI: px * 256), got {raw.dtype} with {1 if raw.ndim == 2 else raw.shape[2]} channels")
        disparity = np.where(raw > 0, raw.astype(np.float32) / PNG16_DISPARITY_SCALE, np.inf).astype(np.float32)
    else:
        raise InputError(f"{path}: disparity must be a .pfm or 16-bit .png file")
    if not np.isfinite(disparity).any():
        raise InputError(f"{path}: disparity has no finite value")
    return np.where(np.isfinite(disparity), disparity, np.inf).astype(np.float32)


def check_pair(image: np.ndarray, disparity: np.ndarray) -> None:
    """Raise :class:`InputError` unless ``image`` and ``disparity`` have the same (H, W) and the
    disparity has a finite value."""
    if image.shape[:2] != disparity.shape[:2] or disparity.ndim != 2:
        raise InputError(
            f"image is {image.shape[1]}x{image.shape[0]} but disparity is "
            f"{disparity.shape[1] if disparity.ndim > 1 else '?'}x{disparity.shape[0]} (they must match)"
        )
    if not np.isfinite(disparity).any():
        raise InputError("disparity has no finite value")
