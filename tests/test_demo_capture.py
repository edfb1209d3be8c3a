"""The demo capture: valid calibration, invertible distortion, exposures, determinism."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from calibration.io import load_calibration
from sensing.demo_capture import build_demo_capture, demo_ground_truth
from sensing.fileio import read_image

FILES = ("left.png", "right.png", "calibration.json", "meta.json")
#: Pixels near the border, where distortion pulls in replicated edge pixels, are not compared.
MARGIN_PX = 30


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_demo_capture(tmp_path_factory.mktemp("demo") / "capture")


def test_capture_loads_with_matching_sizes(capture: Path) -> None:
    assert sorted(p.name for p in capture.iterdir()) == sorted(FILES)
    calib = load_calibration(capture / "calibration.json")
    for name, camera in (("left", calib.left), ("right", calib.right)):
        image = read_image(capture / f"{name}.png")
        assert image.shape == (camera.height, camera.width, 3)
        assert image.dtype == np.uint8
    assert calib.baseline_m == pytest.approx(0.193001)
    assert calib.right.cx - calib.left.cx == pytest.approx(124.343 / 4)
    assert calib.left.fx == pytest.approx(3979.911 / 4)


@pytest.mark.parametrize("name", ["left", "right"])
def test_undistorting_raw_view_recovers_ideal(capture: Path, name: str) -> None:
    calib = load_calibration(capture / "calibration.json")
    camera = getattr(calib, name)
    raw = read_image(capture / f"{name}.png")
    ideal_rgb = data.stereo_motorcycle()[0 if name == "left" else 1]
    ideal = cv2.cvtColor(ideal_rgb, cv2.COLOR_RGB2BGR).astype(np.float64)
    recovered = cv2.undistort(raw, camera.K, camera.D).astype(np.float64)
    inner = np.s_[MARGIN_PX:-MARGIN_PX, MARGIN_PX:-MARGIN_PX]
    if name == "right":  # compare structure only: the right view is exposed differently
        recovered = recovered * ideal[inner].mean() / recovered[inner].mean()
    error = np.abs(recovered - ideal)[inner].mean()
    assert error < 3.0
    # The raw views are really distorted, not copies of the ideal ones.
    assert np.abs(raw.astype(np.float64) - ideal)[inner].mean() > 2 * error


def test_right_view_is_darker(capture: Path) -> None:
    left, right = (read_image(capture / f"{name}.png") for name in ("left", "right"))
    assert right.mean() < 0.95 * left.mean()
    meta = json.loads((capture / "meta.json").read_text())
    assert meta["right"]["exposure_ms"] < meta["left"]["exposure_ms"]
    assert isinstance(meta["timestamp_ns"], int)


def test_build_is_deterministic(capture: Path, tmp_path: Path) -> None:
    again = build_demo_capture(tmp_path / "new" / "capture")
    for name in FILES:
        assert (again / name).read_bytes() == (capture / name).read_bytes(), name


def test_ground_truth_matches_ideal_left_view(capture: Path) -> None:
    disparity = demo_ground_truth()
    calib = load_calibration(capture / "calibration.json")
    assert disparity.shape == (calib.left.height, calib.left.width)
    assert disparity.dtype == np.float32
    known = np.isfinite(disparity)
    assert not np.isnan(disparity).any()
    assert 0.5 < known.mean() < 1.0
    assert np.all(disparity[~known] == np.inf)
    assert 0 < disparity[known].min() and disparity[known].max() < 100
    # Sampling the ideal right view at x - d reproduces the ideal left view.
    left, right, _ = data.stereo_motorcycle()
    rows, cols = np.indices(disparity.shape, dtype=np.float32)
    map_x = np.where(known, cols - disparity, -1.0).astype(np.float32)
    warped = cv2.remap(right, map_x, rows, cv2.INTER_LINEAR)
    unwarped_error = np.abs(right.astype(np.float64) - left)[known].mean()
    assert np.abs(warped.astype(np.float64) - left)[known].mean() < 0.5 * unwarped_error
