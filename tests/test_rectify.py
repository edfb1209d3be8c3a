"""Rectification geometry on synthetic rigs, the valid-rectangle search, the map cache, real pairs."""

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from calibration.camera import StereoCalibration
from calibration.rectify import Rectifier, largest_valid_rectangle, rectify_maps, stereo_rectify
from sensing.capture import load_capture
from sensing.errors import CalibrationError

from conftest import rotation_xyz_deg

#: Rigs with a 1-degree relative rotation about each axis and a 0.06 m baseline.
RIGS = {
    "pinhole_barrel": {"model": "pinhole"},
    "pinhole_pincushion": {"model": "pinhole", "distortion": (0.15, 0.02, 1e-3, -5e-4, 0.0)},
    "fisheye": {"model": "fisheye"},
}
BASELINE_M = 0.06
#: Iterate the point undistortion to convergence, so the test measures the rectification, not it.
UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)


@pytest.fixture(params=sorted(RIGS))
def rig(request, make_calibration) -> StereoCalibration:
    return make_calibration(**RIGS[request.param], right_R_left=rotation_xyz_deg(1, 1, 1), baseline_m=BASELINE_M)


def _project(camera, X: np.ndarray, R: np.ndarray, T: np.ndarray) -> np.ndarray:
    """(N, 2) raw pixels of the (N, 3) left-frame points ``X`` in a camera at ``R X + T``."""
    rvec = cv2.Rodrigues(R)[0]
    if camera.model == "fisheye":
        pixels, _ = cv2.fisheye.projectPoints(X.reshape(-1, 1, 3), rvec, T.reshape(3, 1), camera.K, camera.D)
    else:
        pixels, _ = cv2.projectPoints(X, rvec, T, camera.K, camera.D)
    return pixels.reshape(-1, 2)


def _rectify_points(camera, pixels: np.ndarray, R: np.ndarray, P: np.ndarray) -> np.ndarray:
    undistort = cv2.fisheye.undistortPoints if camera.model == "fisheye" else cv2.undistortPoints
    return undistort(pixels.reshape(-1, 1, 2), camera.K, camera.D, R=R, P=P, criteria=UNDISTORT_CRITERIA).reshape(-1, 2)


def _inside(pixels: np.ndarray, camera) -> np.ndarray:
    return (pixels >= 0).all(axis=1) & (pixels[:, 0] <= camera.width - 1) & (pixels[:, 1] <= camera.height - 1)


def test_rectified_rows_agree_and_disparity_gives_metric_depth(rig: StereoCalibration) -> None:
    rect = stereo_rectify(rig, long_side_px=800)
    rng = np.random.default_rng(7)
    z = rng.uniform(1.0, 5.0, 400)
    X = np.stack([rng.uniform(-0.6, 0.6, z.size) * z, rng.uniform(-0.45, 0.45, z.size) * z, z], axis=1)
    raw_left = _project(rig.left, X, np.eye(3), np.zeros(3))
    raw_right = _project(rig.right, X, rig.R, rig.T)
    seen = _inside(raw_left, rig.left) & _inside(raw_right, rig.right)
    assert seen.sum() > 300

    left = _rectify_points(rig.left, raw_left[seen], rect.R1, rect.P1)
    right = _rectify_points(rig.right, raw_right[seen], rect.R2, rect.P2)

    assert np.abs(left[:, 1] - right[:, 1]).max() < 0.01
    disparity = left[:, 0] - right[:, 0]
    depth = rect.focal_px * BASELINE_M / disparity
    z_rectified = (X[seen] @ rect.R1.T)[:, 2]
    np.testing.assert_allclose(depth, z_rectified, rtol=1e-3)
    assert rect.baseline_m == pytest.approx(BASELINE_M, rel=1e-9)
    # Q reprojects (x, y, d) to the same metric point.
    homogeneous = np.column_stack([left, disparity, np.ones(len(left))]) @ rect.Q.T
    np.testing.assert_allclose(homogeneous[:, :3] / homogeneous[:, 3:], X[seen] @ rect.R1.T, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("long_side_px", [320, 640, 1000])
def test_rectified_views_follow_the_requested_resolution_and_hold_only_valid_pixels(
    rig: StereoCalibration, long_side_px: int
) -> None:
    """``long_side_px`` is the full sensor's long side at processing resolution; the views are
    the valid crop of that, so a little smaller."""
    rect = stereo_rectify(rig, long_side_px=long_side_px)
    scale = long_side_px / max(rig.left.size_wh)
    assert rect.focal_px == pytest.approx(min(rig.left.fx, rig.left.fy, rig.right.fx, rig.right.fy) * scale)
    width, height = rect.size_wh
    assert 0.75 * long_side_px <= width <= long_side_px
    assert 0.75 * 0.75 * long_side_px <= height <= 0.75 * long_side_px
    for camera, R, P in ((rig.left, rect.R1, rect.P1), (rig.right, rect.R2, rect.P2)):
        map_x, map_y = cv2.convertMaps(*rectify_maps(camera, R, P, rect.size_wh), cv2.CV_32FC1)
        assert map_x.shape == (height, width)
        # Every output pixel samples the raw image (half a pixel of slack from the resize).
        assert map_x.min() >= -0.5 and map_x.max() <= camera.width - 0.5
        assert map_y.min() >= -0.5 and map_y.max() <= camera.height - 0.5


@pytest.mark.parametrize("long_side_px", [320, 1000])
def test_an_ideal_rig_keeps_the_whole_view(make_calibration, long_side_px: int) -> None:
    calib = make_calibration(distortion=())
    calib = replace(calib, right=calib.left)  # identical distortion-free cameras, R = I: nothing to crop
    rect = stereo_rectify(calib, long_side_px=long_side_px)
    assert rect.size_wh == (long_side_px, long_side_px * 3 // 4)
    # The views are the camera's image resized, pixel centres kept aligned.
    np.testing.assert_allclose(rect.P1[:, :3], calib.left.scaled(long_side_px / 640).K, atol=1e-9)


def test_strongly_converging_wide_rig_still_rectifies(make_calibration) -> None:
    """At 30 degrees toe-in the barrel polynomial folds back for rays outside the lens's view;
    those rays must not count as seen (they once made the common region look empty)."""
    rig = make_calibration(right_R_left=rotation_xyz_deg(0, 30, 0))
    rect = stereo_rectify(rig, long_side_px=640)
    map_x, map_y = cv2.convertMaps(*rectify_maps(rig.right, rect.R2, rect.P2, rect.size_wh), cv2.CV_32FC1)
    # Undistorting where each rectified pixel samples must lead back to that pixel (no fold-over).
    height, width = map_x.shape
    ys, xs = np.mgrid[0:height:8, 0:width:8]
    raw = np.stack([map_x[ys, xs], map_y[ys, xs]], axis=-1).reshape(-1, 2).astype(np.float64)
    back = _rectify_points(rig.right, raw, rect.R2, rect.P2)
    assert np.abs(back - np.stack([xs.ravel(), ys.ravel()], axis=1)).max() < 0.5


def test_cameras_without_overlap_are_rejected(make_calibration) -> None:
    rig = make_calibration(distortion=(), right_R_left=rotation_xyz_deg(0, 80, 0))
    with pytest.raises(CalibrationError, match="share only"):
        stereo_rectify(rig, long_side_px=640)


def _assert_inside(valid: np.ndarray, box: tuple[int, int, int, int]) -> int:
    x0, y0, x1, y1 = box
    assert 0 <= x0 <= x1 <= valid.shape[1] and 0 <= y0 <= y1 <= valid.shape[0]
    assert valid[y0:y1, x0:x1].all()
    return (x1 - x0) * (y1 - y0)


def test_largest_valid_rectangle_on_simple_masks() -> None:
    assert largest_valid_rectangle(np.ones((40, 60), bool)) == (0, 0, 60, 40)
    assert largest_valid_rectangle(np.zeros((40, 60), bool)) == (0, 0, 0, 0)
    block = np.zeros((40, 60), bool)
    block[7:20, 5:30] = True
    assert largest_valid_rectangle(block) == (5, 7, 30, 20)


def test_largest_valid_rectangle_in_a_disc() -> None:
    ys, xs = np.mgrid[:200, :300]
    radius = 80
    disc = (xs - 150) ** 2 + (ys - 100) ** 2 <= radius**2
    area = _assert_inside(disc, largest_valid_rectangle(disc))
    assert area >= 0.95 * 2 * radius**2  # the inscribed square


def test_largest_valid_rectangle_in_an_l_shape() -> None:
    shape = np.zeros((100, 120), bool)
    shape[:, :30] = True  # vertical arm, 3000 px
    shape[70:, :] = True  # horizontal arm, 3600 px
    area = _assert_inside(shape, largest_valid_rectangle(shape))
    assert area >= 3000


@pytest.mark.parametrize("hole", [np.s_[20, 30], np.s_[10:40, 40], np.s_[5:8, 60:70]])
def test_largest_valid_rectangle_excludes_interior_holes(hole) -> None:
    valid = np.ones((50, 80), bool)
    valid[hole] = False
    area = _assert_inside(valid, largest_valid_rectangle(valid))
    assert area >= 0.4 * valid.size


def test_rectifier_caches_per_calibration_and_size(make_calibration) -> None:
    rectifier = Rectifier(max_entries=2)
    first = rectifier.rectification(make_calibration(), long_side_px=320)
    assert rectifier.rectification(make_calibration(), long_side_px=320) is first  # equal, not identical, input
    other_size = rectifier.rectification(make_calibration(), long_side_px=400)
    assert other_size is not first and other_size[0].focal_px == pytest.approx(400 / 320 * first[0].focal_px)
    other_rig = rectifier.rectification(make_calibration(baseline_m=0.08), long_side_px=320)
    assert other_rig[0].baseline_m == pytest.approx(0.08)
    # Two entries kept: the least recently used one (the first) was evicted and is recomputed.
    assert rectifier.rectification(make_calibration(), long_side_px=320) is not first


@pytest.mark.parametrize(
    "image",
    [np.full((480, 640, 3), 90, np.uint8), np.full((480, 640), 3000, np.uint16)],
    ids=["bgr8", "grey16"],
)
def test_rectify_pair_keeps_layout_and_dtype(make_calibration, image: np.ndarray) -> None:
    left, right, rect = Rectifier().rectify_pair(image, image, make_calibration(), long_side_px=320)
    for view in (left, right):
        assert view.shape[:2] == (rect.size_wh[1], rect.size_wh[0]) and view.shape[2:] == image.shape[2:]
        assert view.dtype == image.dtype
        assert (view == image.flat[0]).all()  # only valid pixels: nothing black leaks in from the border


@pytest.mark.shared_data
def test_rectify_real_euroc_pair_aligns_rows(euroc_mav0: Path) -> None:
    capture = load_capture(euroc_mav0)
    left, right, rect = Rectifier().rectify_pair(capture.left, capture.right, capture.calibration, long_side_px=640)
    assert 600 <= rect.size_wh[0] <= 640 and left.shape == right.shape == rect.size_wh[::-1]
    assert left.dtype == capture.left.dtype == np.uint8

    def median_row_offset(a: np.ndarray, b: np.ndarray) -> float:
        orb = cv2.ORB_create(2000)
        (keys_a, desc_a), (keys_b, desc_b) = orb.detectAndCompute(a, None), orb.detectAndCompute(b, None)
        pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(desc_a, desc_b, k=2)
        good = [m for m, n in pairs if m.distance < 0.75 * n.distance]
        assert len(good) > 100
        return float(np.median([abs(keys_a[m.queryIdx].pt[1] - keys_b[m.trainIdx].pt[1]) for m in good]))

    assert median_row_offset(left, right) < 0.5
    assert median_row_offset(capture.left, capture.right) > 3.0  # the raw pair really is misaligned
