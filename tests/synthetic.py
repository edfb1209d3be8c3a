"""Synthetic rectified stereo pairs with exactly known disparity, and a capture built from one.

The scene is two fronto-parallel textured planes: a background at ``background_px`` of
disparity and a rectangle in front of it at ``foreground_px``. Each plane has its own random
smooth texture, so the views agree exactly (integer shifts, no resampling):
``left(x, y) = right(x - d(x, y), y)`` wherever the left pixel is seen by the right camera.

Convention: (H, W, 3) uint8 BGR, pixel centres on integers, origin top-left; disparity
``x_left - x_right`` in pixels.
"""

from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from calibration.camera import CameraModel, StereoCalibration
from sensing.types import StereoCapture

#: Pinhole rig of :func:`make_synthetic_capture`: focal length (px) and baseline (m).
FOCAL_PX = 300.0
BASELINE_M = 0.06
#: Foreground rectangle of :func:`make_layered_pair` in left-view pixels (x0, y0, x1, y1), ends exclusive.
FOREGROUND_RECT_XYXY = (140, 70, 230, 170)


class LayeredPair(NamedTuple):
    """left, right : (H, W, 3) uint8 BGR rectified views
    disparity : (H, W) float32 ground-truth left-view disparity in px
    occluded : (H, W) bool, background pixels of the left view whose match in the right view
        is hidden behind the foreground (the band just left of the rectangle)
    """

    left: np.ndarray
    right: np.ndarray
    disparity: np.ndarray
    occluded: np.ndarray


def smooth_texture(height: int, width: int, *, seed: int = 0, blur_sigma_px: float = 1.5) -> np.ndarray:
    """(height, width, 3) uint8 BGR: Gaussian-blurred white noise stretched to the full grey range."""
    noise = np.random.default_rng(seed).normal(size=(height, width, 3)).astype(np.float32)
    blurred = cv2.GaussianBlur(noise, (0, 0), blur_sigma_px)
    low, high = np.percentile(blurred, [0.5, 99.5])
    return np.clip((blurred - low) / (high - low) * 255.0, 0, 255).astype(np.uint8)


def make_layered_pair(
    height: int = 240,
    width: int = 320,
    *,
    background_px: int = 8,
    foreground_px: int = 20,
    rect_xyxy: tuple[int, int, int, int] = FOREGROUND_RECT_XYXY,
    seed: int = 0,
) -> LayeredPair:
    """A background plane at ``background_px`` and a rectangle (left-view pixels
    ``x0 <= x < x1``, ``y0 <= y < y1``) at ``foreground_px``; see the module docstring.

    The background texture extends left of the right view's frame, so the left view is
    fully textured; its pixels with ``x < background_px`` are simply not seen by the right
    camera (out of frame, not counted as ``occluded``).
    """
    x0, y0, x1, y1 = rect_xyxy
    if not (foreground_px > background_px >= 0 and x0 - foreground_px >= 0 and x1 <= width and y1 <= height):
        raise ValueError(f"rectangle {rect_xyxy} at {foreground_px} px does not fit a {width}x{height} pair")
    margin = foreground_px
    background = smooth_texture(height, width + margin, seed=seed)
    foreground = smooth_texture(y1 - y0, x1 - x0, seed=seed + 1)

    # Scene column u of the background texture is seen at right x = u - margin, left x = u - margin + d.
    right = background[:, margin:].copy()
    right[y0:y1, x0 - foreground_px : x1 - foreground_px] = foreground
    left = background[:, margin - background_px : margin - background_px + width].copy()
    left[y0:y1, x0:x1] = foreground

    disparity = np.full((height, width), background_px, np.float32)
    disparity[y0:y1, x0:x1] = foreground_px
    occluded = np.zeros((height, width), bool)
    # Background at left x is at right x - background_px, hidden where that lies in the right
    # view's rectangle [x0 - fg, x1 - fg): left x in [x0 - (fg - bg), x1 - (fg - bg)), outside the rectangle.
    occluded[y0:y1, x0 - (foreground_px - background_px) : x0] = True
    return LayeredPair(left, right, disparity, occluded)


def matchable_mask(pair: LayeredPair) -> np.ndarray:
    """(H, W) bool: left pixels whose true match lies inside the right view and is not occluded."""
    xs = np.arange(pair.disparity.shape[1])[None, :]
    return ~pair.occluded & (xs - pair.disparity >= 0)


def pinhole_calibration(
    width: int = 320, height: int = 240, *, focal_px: float = FOCAL_PX, baseline_m: float = BASELINE_M
) -> StereoCalibration:
    """An ideal rectified rig: identical distortion-free pinholes, R = I, right camera at +x."""
    camera = CameraModel("pinhole", width, height, focal_px, focal_px, (width - 1) / 2, (height - 1) / 2, ())
    return StereoCalibration(camera, camera, np.eye(3), np.array([-baseline_m, 0.0, 0.0]))


def make_synthetic_capture(pair: LayeredPair | None = None, *, source: str = "synthetic") -> StereoCapture:
    """A :class:`StereoCapture` of ``pair`` (default :func:`make_layered_pair`) on :func:`pinhole_calibration`."""
    pair = pair or make_layered_pair()
    height, width = pair.left.shape[:2]
    return StereoCapture(pair.left, pair.right, pinhole_calibration(width, height), source=source)


def write_shifted_scene(folder: Path, *, height: int, width: int, shift_px: int) -> None:
    """A benchmark scene folder (left.png, right.png, disp_left.pfm, as under ``stereo/<dataset>/``):
    random smooth texture, the right view the left shifted by ``shift_px`` (integer), ground truth
    ``shift_px`` everywhere except the first ``shift_px`` columns (``inf``: outside the right view)."""
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, size=(height // 2, (width + shift_px) // 2, 3), dtype=np.uint8)
    texture = cv2.resize(noise, ((width + shift_px), height), interpolation=cv2.INTER_LINEAR)
    gt = np.full((height, width), float(shift_px), np.float32)
    gt[:, :shift_px] = np.inf
    folder.mkdir(parents=True)
    cv2.imwrite(str(folder / "left.png"), texture[:, :width])
    cv2.imwrite(str(folder / "right.png"), texture[:, shift_px:])
    cv2.imwrite(str(folder / "disp_left.pfm"), gt)
