"""The drift model and simulator: rotation vectors, drifted calibrations, turned camera images.

Convention (calibration/drift.py): ``R_actual = R_drift @ R_factory``; a drift is a rotation
vector in degrees [pitch, yaw, roll] about the right camera's x, y, z axes.
"""

import dataclasses

import cv2
import numpy as np
import pytest

from calibration.camera import CameraModel
from calibration.drift import (
    apply_drift,
    perturb_capture,
    rotate_camera_image,
    rotation_from_rotvec_deg,
    rotvec_deg_from_rotation,
)
from calibration.rectify import rectify_view, stereo_rectify
from sensing.types import StereoCapture
from synthetic import make_synthetic_capture, smooth_texture

from conftest import rotation_xyz_deg

#: An ideal pinhole camera (no distortion) at 320 x 240.
PINHOLE = CameraModel("pinhole", 320, 240, 300.0, 300.0, 159.5, 119.5, ())
DRIFT_DEG = [0.8, -0.5, 1.2]


def _interior(image: np.ndarray, margin: int) -> np.ndarray:
    return image[margin:-margin, margin:-margin]


def _blob(camera: CameraModel, centre_xy: np.ndarray, sigma_px: float = 2.0) -> np.ndarray:
    """(H, W) uint16 Gaussian spot at sub-pixel ``centre_xy`` (a point feature)."""
    ys, xs = np.mgrid[0 : camera.height, 0 : camera.width].astype(np.float64)
    spot = np.exp(-((xs - centre_xy[0]) ** 2 + (ys - centre_xy[1]) ** 2) / (2 * sigma_px**2))
    return np.rint(60000 * spot).astype(np.uint16)


def _centroid(image: np.ndarray) -> np.ndarray:
    weights = image.astype(np.float64)
    ys, xs = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    return np.array([(weights * xs).sum(), (weights * ys).sum()]) / weights.sum()


# --- rotation vectors --------------------------------------------------------------------------------


def test_rotvec_round_trip() -> None:
    rng = np.random.default_rng(0)
    for rotvec in rng.uniform(-10, 10, (50, 3)):
        R = rotation_from_rotvec_deg(rotvec)
        assert R.shape == (3, 3) and R.dtype == np.float64
        np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-12)
        assert np.linalg.det(R) == pytest.approx(1.0)
        np.testing.assert_allclose(rotvec_deg_from_rotation(R), rotvec, atol=1e-9)
    np.testing.assert_allclose(rotation_from_rotvec_deg([0, 0, 0]), np.eye(3))
    np.testing.assert_allclose(rotvec_deg_from_rotation(np.eye(3)), np.zeros(3))


@pytest.mark.parametrize(("axis", "index"), [("pitch", 0), ("yaw", 1), ("roll", 2)])
def test_rotvec_components_are_rotations_about_the_camera_axes(axis: str, index: int) -> None:
    rotvec = np.zeros(3)
    rotvec[index] = 7.0
    expected = rotation_xyz_deg(*rotvec)  # a single-axis rotation
    np.testing.assert_allclose(rotation_from_rotvec_deg(rotvec), expected, atol=1e-12)
    np.testing.assert_allclose(rotation_from_rotvec_deg(list(rotvec)) @ np.eye(3)[index], np.eye(3)[index], atol=1e-12)
    # Right-handed: a quarter turn about x takes y to z (pitch), about y takes z to x (yaw), about z takes x to y (roll).
    quarter = np.zeros(3)
    quarter[index] = 90.0
    axes = np.eye(3)
    np.testing.assert_allclose(rotation_from_rotvec_deg(quarter) @ axes[(index + 1) % 3], axes[(index + 2) % 3], atol=1e-12)


# --- drifted calibration -----------------------------------------------------------------------------


@pytest.mark.parametrize("factory_deg", [(0, 0, 0), (1.0, -0.7, 2.0)])
def test_apply_drift_turns_the_right_camera_about_its_centre(make_calibration, factory_deg) -> None:
    calib = make_calibration(right_R_left=rotation_xyz_deg(*factory_deg))
    R_drift = rotation_from_rotvec_deg(DRIFT_DEG)
    drifted = apply_drift(calib, R_drift)
    np.testing.assert_allclose(drifted.R, R_drift @ calib.R, atol=1e-15)
    np.testing.assert_allclose(rotvec_deg_from_rotation(drifted.R @ calib.R.T), DRIFT_DEG, atol=1e-9)
    # The right camera's centre in left coordinates, C = -R^T T, and so the baseline, stay put.
    np.testing.assert_allclose(-drifted.R.T @ drifted.T, -calib.R.T @ calib.T, atol=1e-15)
    assert drifted.baseline_m == pytest.approx(calib.baseline_m, rel=1e-12)
    assert drifted.left == calib.left and drifted.right == calib.right
    drifted.validate()
    # The factory calibration itself is untouched, and no drift changes nothing.
    np.testing.assert_array_equal(calib.R, rotation_xyz_deg(*factory_deg))
    same = apply_drift(calib, np.eye(3))
    np.testing.assert_allclose(same.R, calib.R, atol=1e-15)
    np.testing.assert_allclose(same.T, calib.T, atol=1e-15)


# --- turned camera images ------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["pinhole", "fisheye"])
def test_rotating_by_the_identity_keeps_the_image(make_calibration, model: str) -> None:
    camera = make_calibration(model, width=320, height=240, focal_px=220.0).right
    image = smooth_texture(240, 320, seed=4)
    turned = rotate_camera_image(image, camera, np.eye(3))
    assert turned.shape == image.shape and turned.dtype == image.dtype
    difference = np.abs(turned.astype(int) - image.astype(int))
    assert _interior(difference, 2).max() <= 1


def test_undistorted_pinhole_rotation_is_the_homography_k_r_k_inverse() -> None:
    image = smooth_texture(PINHOLE.height, PINHOLE.width, seed=5, blur_sigma_px=2.0)
    R_drift = rotation_from_rotvec_deg(DRIFT_DEG)
    turned = rotate_camera_image(image, PINHOLE, R_drift)
    H = PINHOLE.K @ R_drift @ np.linalg.inv(PINHOLE.K)
    expected = cv2.warpPerspective(image, H, PINHOLE.size_wh, flags=cv2.INTER_LINEAR)
    # Interior: away from the black border where the turned view leaves the original frame.
    difference = _interior(np.abs(turned.astype(int) - expected.astype(int)), 12)
    assert difference.max() <= 1 and difference.mean() < 0.05


def test_point_feature_moves_where_the_homography_says() -> None:
    R_drift = rotation_from_rotvec_deg(DRIFT_DEG)
    H = PINHOLE.K @ R_drift @ np.linalg.inv(PINHOLE.K)
    for start in (np.array([100.3, 80.6]), np.array([230.0, 170.25]), np.array([159.5, 119.5])):
        turned = rotate_camera_image(_blob(PINHOLE, start), PINHOLE, R_drift)
        mapped = H @ np.append(start, 1.0)
        np.testing.assert_allclose(_centroid(turned), mapped[:2] / mapped[2], atol=0.02)


@pytest.mark.parametrize("model", ["pinhole", "fisheye"])
def test_distorted_camera_pixel_of_a_ray_moves_to_the_projection_of_the_turned_ray(make_calibration, model) -> None:
    """Lens distortion included: the spot seen along ray r is seen at project(R_drift @ r) after the turn."""
    camera = make_calibration(model, width=320, height=240, focal_px=220.0).right  # strong distortion
    R_drift = rotation_from_rotvec_deg([1.0, 1.5, -2.0])
    for start in (np.array([60.4, 45.7]), np.array([250.2, 200.9]), np.array([165.0, 125.0])):
        ray = camera.unproject(start[None])[0]
        expected = camera.project((R_drift @ ray)[None])[0]
        turned = rotate_camera_image(_blob(camera, start), camera, R_drift)
        np.testing.assert_allclose(_centroid(turned), expected, atol=0.02)
    # A plain homography K R K^-1 would be wrong by a clear margin off the centre.
    far = np.array([20.0, 20.0])
    H = camera.K @ R_drift @ np.linalg.inv(camera.K)
    naive = H @ np.append(far, 1.0)
    exact = camera.project((R_drift @ camera.unproject(far[None])[0])[None])[0]
    assert np.linalg.norm(naive[:2] / naive[2] - exact) > 0.5


def test_pixels_leaving_the_frame_are_black() -> None:
    image = np.full((PINHOLE.height, PINHOLE.width), 200, np.uint8)
    turned = rotate_camera_image(image, PINHOLE, rotation_from_rotvec_deg([0.0, 5.0, 0.0]))
    # Yaw of +5 deg shifts content by f tan(5 deg) = 26 px towards +x: the left strip is new, black.
    assert np.all(turned[:, :20] == 0)
    assert np.all(turned[5:-5, 40:-5] == 200)


def test_rectifying_with_the_drift_undone_gives_back_the_factory_view(make_calibration) -> None:
    """What the pipeline does after a reliable estimate: rectifying the drifted right image
    with ``R2 @ R_drift^T`` reproduces the factory-rectified right view."""
    calib = make_calibration(width=320, height=240, focal_px=220.0, right_R_left=rotation_xyz_deg(0.5, -0.3, 1.0))
    image = smooth_texture(240, 320, seed=6, blur_sigma_px=2.0)
    R_drift = rotation_from_rotvec_deg(DRIFT_DEG)
    drifted = rotate_camera_image(image, calib.right, R_drift)
    rect = stereo_rectify(calib, long_side_px=320)
    factory = rectify_view(image, calib.right, rect.R2, rect.P2, rect.size_wh)
    corrected = rectify_view(drifted, calib.right, rect.R2 @ R_drift.T, rect.P2, rect.size_wh)
    uncorrected = rectify_view(drifted, calib.right, rect.R2, rect.P2, rect.size_wh)
    error = _interior(np.abs(corrected.astype(int) - factory.astype(int)), 16)
    assert error.mean() < 2.0
    assert _interior(np.abs(uncorrected.astype(int) - factory.astype(int)), 16).mean() > 5 * error.mean()


# --- the simulator ---------------------------------------------------------------------------------------


def test_perturb_capture_turns_only_the_right_view_and_records_the_truth() -> None:
    capture = dataclasses.replace(make_synthetic_capture(), meta={"exposure_ms": 8.0})
    drifted = perturb_capture(capture, np.array(DRIFT_DEG))
    assert drifted.calibration is capture.calibration
    np.testing.assert_array_equal(drifted.left, capture.left)
    assert drifted.right.shape == capture.right.shape and drifted.right.dtype == capture.right.dtype
    expected = rotate_camera_image(capture.right, capture.calibration.right, rotation_from_rotvec_deg(DRIFT_DEG))
    np.testing.assert_array_equal(drifted.right, expected)
    assert not np.array_equal(drifted.right, capture.right)
    assert drifted.meta == {"exposure_ms": 8.0, "simulated_drift_rotvec_deg": DRIFT_DEG}
    assert all(type(a) is float for a in drifted.meta["simulated_drift_rotvec_deg"])
    assert capture.meta == {"exposure_ms": 8.0}  # the input capture is not modified
    assert drifted.source == capture.source


def test_perturbing_twice_records_the_composed_drift() -> None:
    twice = perturb_capture(perturb_capture(make_synthetic_capture(), [0.5, 0.0, 0.0]), [0.0, 0.0, 0.7])
    expected = rotvec_deg_from_rotation(rotation_from_rotvec_deg([0, 0, 0.7]) @ rotation_from_rotvec_deg([0.5, 0, 0]))
    np.testing.assert_allclose(twice.meta["simulated_drift_rotvec_deg"], expected, atol=1e-8)


def test_perturb_capture_by_zero_keeps_the_right_view() -> None:
    capture = make_synthetic_capture()
    still = perturb_capture(capture, [0.0, 0.0, 0.0])
    assert _interior(np.abs(still.right.astype(int) - capture.right.astype(int)), 2).max() <= 1
    assert still.meta["simulated_drift_rotvec_deg"] == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("channels", [None, 3])
def test_perturb_capture_keeps_16_bit_depth_and_shape(make_calibration, channels) -> None:
    calib = make_calibration(width=160, height=120, focal_px=130.0)
    texture = smooth_texture(120, 160, seed=7).astype(np.uint16) * 257
    views = [texture, texture[:, ::-1].copy()] if channels else [texture[:, :, 0].copy(), texture[:, ::-1, 0].copy()]
    capture = StereoCapture(views[0], views[1], calib)
    drifted = perturb_capture(capture, [0.5, 0.0, -0.4])
    assert drifted.right.dtype == np.uint16 and drifted.right.shape == views[1].shape
    assert drifted.left is capture.left
    # 16-bit values are kept, not squeezed into 8 bits.
    assert drifted.right.max() > 255 * 8
