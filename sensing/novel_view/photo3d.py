"""The "3D photo": layers, fill and a camera path rendered from one image and its disparity, timed.

Hook for further steps (the mesh export, the viewer): :func:`render_path` returns the layered depth
image it rendered (``Photo3D.ldi``) and its step timings (``Photo3D.timings_ms``), so a caller can
export that LDI and add its own timing under another key.
"""

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sensing.errors import InputError
from sensing.fileio import read_image, read_pfm
from sensing.novel_view.layers import cut_layers, layered_depth_from_cut
from sensing.novel_view.render import LayerRenderer, camera_path
from sensing.novel_view.types import CameraPose, LayeredDepthImage

#: 16-bit PNG disparity maps follow the KITTI convention: value / 256 px, 0 = unknown.
PNG16_DISPARITY_SCALE = 256.0


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
    renderer = LayerRenderer(ldi)
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
