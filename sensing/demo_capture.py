"""A realistic raw glasses-like capture built from the Middlebury 2014 Motorcycle pair.

scikit-image ships the rectified pair at quarter size (741 x 500, block means of 4 x 4
pixels of the 2964 x 2000 originals). This module treats those views as the *ideal*
cameras, then adds what a real head-mounted rig delivers: lens distortion per camera and
a darker right exposure. The written ``calibration.json`` holds the ideal intrinsics and the
distortion, so undistorting the raw views gives back the ideal ones.

Convention: pixel centres on integers, origin top-left, y down; ``X_right = R X_left + T``
in metres (see :mod:`calibration.camera`).
"""

from pathlib import Path

import cv2
import numpy as np
from skimage import data

from calibration.camera import CameraModel, StereoCalibration
from calibration.io import save_calibration
from sensing.fileio import write_image_atomic, write_json_atomic

#: Published Middlebury 2014 Motorcycle calibration at full size (px; baseline 193.001 mm).
_FULL_WIDTH_PX, _FULL_HEIGHT_PX = 2964, 2000
_FULL_F_PX, _FULL_CY_PX = 3979.911, 1019.507
_FULL_CX_LEFT_PX, _FULL_CX_RIGHT_PX = 1244.772, 1369.115
_BASELINE_M = 0.193001
#: scikit-image's downscale factor (741 / 2964 = 500 / 2000).
_SCALE = 0.25
#: Mild radial-tangential distortion (k1, k2, p1, p2, k3) of each simulated lens.
_DISTORTION_LEFT = (-0.08, 0.02, 0.0005, -0.0003, 0.0)
_DISTORTION_RIGHT = (-0.07, 0.015, -0.0004, 0.0002, 0.0)
#: Right exposure 6 ms against 8 ms on the left; extra black level in grey levels.
_RIGHT_GAIN = 6.0 / 8.0
_RIGHT_OFFSET_GREY = 2.0
#: Display gamma used to go to and from linear intensity.
_GAMMA = 2.2
_META = {
    "left": {"exposure_ms": 8.0, "gain": 1.0},
    "right": {"exposure_ms": 6.0, "gain": 1.0},
    "temperature_c": 34.5,
    "timestamp_ns": 1_700_000_000_000_000_000,
    "source": "scikit-image stereo_motorcycle (Middlebury 2014 Motorcycle, quarter size)",
    "citation": "D. Scharstein et al., High-resolution stereo datasets with subpixel-accurate "
    "ground truth, GCPR 2014",
}


def demo_calibration() -> StereoCalibration:
    """Calibration of the simulated rig at 741 x 500 px.

    Returns
    -------
    StereoCalibration : the Middlebury intrinsics scaled by 1/4 with pixel centres kept
        aligned (``c' = (c + 0.5) / 4 - 0.5``, as block averaging does), the simulated lens
        distortion, ``R`` identity and ``T = [-0.193001, 0, 0]`` m. The principal points
        differ in x by Middlebury's ``doffs`` (31.086 px at this size).
    """
    cameras = [
        CameraModel(
            model="pinhole",
            width=_FULL_WIDTH_PX,
            height=_FULL_HEIGHT_PX,
            fx=_FULL_F_PX,
            fy=_FULL_F_PX,
            cx=cx,
            cy=_FULL_CY_PX,
            distortion=distortion,
        ).scaled(_SCALE)
        for cx, distortion in ((_FULL_CX_LEFT_PX, _DISTORTION_LEFT), (_FULL_CX_RIGHT_PX, _DISTORTION_RIGHT))
    ]
    return StereoCalibration(cameras[0], cameras[1], R=np.eye(3), T=np.array([-_BASELINE_M, 0.0, 0.0]))


def demo_ground_truth() -> np.ndarray:
    """Ground-truth disparity of the ideal (undistorted, Middlebury-rectified) left view.

    Returns
    -------
    (500, 741) float32 disparity in px, ``x_left - x_right`` between the ideal views;
        ``inf`` where unknown. Depth in metres is ``f * B / (d + doffs)`` with
        ``doffs = right.cx - left.cx`` of :func:`demo_calibration`.
    """
    disparity = data.stereo_motorcycle()[2]
    return np.where(np.isfinite(disparity), disparity, np.inf).astype(np.float32)


def build_demo_capture(folder: Path) -> Path:
    """Write a raw capture (distorted, unevenly exposed) of the Motorcycle scene.

    Parameters
    ----------
    folder : created if missing; receives ``left.png``, ``right.png`` ((500, 741, 3) uint8
        BGR raw sensor pixels), ``calibration.json`` and ``meta.json``.

    Returns
    -------
    Path : ``folder``. The output is deterministic: two builds give identical bytes.
    """
    folder = Path(folder)
    calib = demo_calibration()
    ideal_left, ideal_right, _ = data.stereo_motorcycle()
    raw_left = _distort(ideal_left, calib.left)
    raw_right = _expose(_distort(ideal_right, calib.right), gain=_RIGHT_GAIN, offset_grey=_RIGHT_OFFSET_GREY)
    write_image_atomic(folder / "left.png", cv2.cvtColor(raw_left, cv2.COLOR_RGB2BGR))
    write_image_atomic(folder / "right.png", cv2.cvtColor(raw_right, cv2.COLOR_RGB2BGR))
    save_calibration(calib, folder / "calibration.json")
    write_json_atomic(folder / "meta.json", _META)
    return folder


def _distort(ideal: np.ndarray, camera: CameraModel) -> np.ndarray:
    """Raw (H, W, C) uint8 image whose undistortion with ``camera`` gives ``ideal``.

    Each raw pixel samples the ideal image at its undistorted location, bicubically: a
    second bilinear pass (the consumer's undistortion) would otherwise blur the texture twice.
    """
    u, v = np.meshgrid(np.arange(camera.width, dtype=np.float64), np.arange(camera.height, dtype=np.float64))
    raw_px = np.stack([u.ravel(), v.ravel()], axis=1)[:, None, :]
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 20, 1e-10)
    ideal_px = cv2.undistortPoints(raw_px, camera.K, camera.D, P=camera.K, criteria=criteria)
    maps = ideal_px.reshape(camera.height, camera.width, 2).astype(np.float32)
    return cv2.remap(ideal, maps, None, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def _expose(image: np.ndarray, *, gain: float, offset_grey: float) -> np.ndarray:
    """Scale linear intensity by ``gain``, add ``offset_grey`` grey levels, clip to uint8."""
    linear = (image.astype(np.float64) / 255.0) ** _GAMMA
    encoded = 255.0 * (gain * linear) ** (1.0 / _GAMMA) + offset_grey
    return np.clip(np.rint(encoded), 0, 255).astype(np.uint8)
