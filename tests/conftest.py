"""Shared test helpers: a synthetic stereo rig, a capture-folder writer, the shared EuRoC data.

Fixtures hand out the factories; the plain function :func:`rotation_xyz_deg` is imported
directly (``from conftest import rotation_xyz_deg``).
"""

import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks.datasets import default_data_root
from calibration.camera import CameraModel, StereoCalibration
from calibration.io import save_calibration

#: Distortion of the synthetic rigs: moderate barrel (OpenCV k1, k2, p1, p2, k3) and Kannala-Brandt k1..k4.
PINHOLE_DISTORTION = (-0.25, 0.08, 1e-3, -5e-4, -0.01)
FISHEYE_DISTORTION = (0.05, -0.01, 2e-3, -5e-4)


def rotation_xyz_deg(rx: float, ry: float, rz: float) -> np.ndarray:
    """(3, 3) rotation Rz @ Ry @ Rx for angles in degrees about the x, y, z axes."""
    Rx, Ry, Rz = (cv2.Rodrigues(np.radians(angle) * axis)[0] for angle, axis in zip((rx, ry, rz), np.eye(3)))
    return Rz @ Ry @ Rx


def _calibration(
    model: str = "pinhole",
    *,
    width: int = 640,
    height: int = 480,
    focal_px: float = 400.0,
    distortion: tuple[float, ...] | None = None,
    right_R_left: np.ndarray | None = None,
    baseline_m: float = 0.06,
) -> StereoCalibration:
    """A left/right rig whose right camera centre sits ``baseline_m`` along the left camera's +x."""
    if distortion is None:
        distortion = PINHOLE_DISTORTION if model == "pinhole" else FISHEYE_DISTORTION
    R = np.eye(3) if right_R_left is None else right_R_left
    # The right camera differs a little: 1% longer focal length, principal point 3 px off.
    cx, cy = (width - 1) / 2, (height - 1) / 2
    cameras = [
        CameraModel(model, width, height, focal_px * s, focal_px * s, cx + d, cy - d, distortion)
        for s, d in ((1.0, 0.0), (1.01, 3.0))
    ]
    # X_right = R X_left + T with the right centre C = (B, 0, 0) in left coordinates: T = -R C.
    return StereoCalibration(cameras[0], cameras[1], R, -R @ np.array([baseline_m, 0.0, 0.0]))


@pytest.fixture
def make_calibration() -> Callable[..., StereoCalibration]:
    """Factory of synthetic :class:`StereoCalibration` (see :func:`_calibration` for options)."""
    return _calibration


def _write_capture(
    folder: Path,
    left: np.ndarray,
    right: np.ndarray,
    calib: StereoCalibration | None = None,
    *,
    meta: dict | None = None,
) -> Path:
    """Write ``left.png``, ``right.png``, ``calibration.json`` (default: a pinhole rig at the
    images' size) and, when given, ``meta.json`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, image in (("left", left), ("right", right)):
        if not cv2.imwrite(str(folder / f"{name}.png"), image):
            raise RuntimeError(f"cv2.imwrite failed for {name}.png")
    if calib is None:
        height, width = left.shape[:2]
        calib = _calibration(width=width, height=height, focal_px=0.8 * width)
    save_calibration(calib, folder / "calibration.json")
    if meta is not None:
        (folder / "meta.json").write_text(json.dumps(meta))
    return folder


@pytest.fixture
def write_capture() -> Callable[..., Path]:
    """Writer of capture folders (see :func:`_write_capture`)."""
    return _write_capture


@pytest.fixture(scope="session")
def euroc_mav0() -> Path:
    """The shared EuRoC V1_01_easy ``mav0`` folder; skips the test when the data is absent."""
    folder = default_data_root() / "captures" / "euroc_V1_01_easy" / "mav0"
    if not (folder / "cam0" / "sensor.yaml").is_file():
        pytest.skip(f"shared EuRoC capture not found at {folder} (set GLASSDEPTH_DATA)")
    return folder


@pytest.fixture(scope="session")
def mono_weights() -> str:
    """The shipped mono network's ONNX file."""
    from sensing.mono import DEFAULT_MONO_WEIGHTS

    return str(DEFAULT_MONO_WEIGHTS)
