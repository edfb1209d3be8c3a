"""CameraModel / StereoCalibration: validation messages, scaling, frozen arrays."""

from dataclasses import replace

import numpy as np
import pytest

from calibration.camera import CameraModel, StereoCalibration
from sensing.errors import CalibrationError

from conftest import rotation_xyz_deg

CAMERA = CameraModel("pinhole", 640, 480, 500.0, 498.0, 319.5, 239.5, (-0.1, 0.01, 0.0, 0.0, 0.0))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"fx": float("nan")}, "camera.fx must be a finite number"),
        ({"cy": float("inf")}, "camera.cy must be a finite number"),
        ({"fx": 0.0}, "camera.fx must be positive"),
        ({"fy": -500.0}, "camera.fy must be positive"),
        ({"width": 0}, "camera.width must be a positive integer"),
        ({"height": 480.0}, "camera.height must be a positive integer"),
        ({"model": "omni"}, "camera.model must be 'pinhole' or 'fisheye'"),
        ({"cx": 5000.0}, "principal point (5000.0, 239.5) is far outside"),
        ({"distortion": (0.1, 0.2, 0.3)}, "must have one of (0, 4, 5, 8, 12, 14) coefficients, got 3"),
        ({"model": "fisheye"}, "for model 'fisheye' must have one of (0, 4) coefficients, got 5"),
        ({"distortion": (0.1, float("nan"), 0.0, 0.0)}, "camera.distortion contains NaN"),
    ],
)
def test_camera_validate_names_the_bad_value(changes: dict, message: str) -> None:
    with pytest.raises(CalibrationError) as error:
        replace(CAMERA, **changes).validate()
    assert message in str(error.value)


def test_camera_validate_uses_the_given_name() -> None:
    with pytest.raises(CalibrationError, match=r"^right\.fx must be positive"):
        replace(CAMERA, fx=-1.0).validate("right")


def test_valid_cameras_pass() -> None:
    CAMERA.validate()
    replace(CAMERA, distortion=()).validate()
    replace(CAMERA, model="fisheye", distortion=(0.01, 0.0, 0.0, 0.0)).validate()


def test_fisheye_without_coefficients_has_four_zero_distortion() -> None:
    camera = replace(CAMERA, model="fisheye", distortion=())
    np.testing.assert_array_equal(camera.D, np.zeros(4))
    assert replace(CAMERA, distortion=()).D.shape == (0,)
    np.testing.assert_array_equal(CAMERA.K, [[500.0, 0, 319.5], [0, 498.0, 239.5], [0, 0, 1]])


@pytest.mark.parametrize("scale", [0.5, 0.25, 2.0])
def test_scaled_keeps_pixel_centres_aligned(scale: float) -> None:
    """A ray hits pixel u at full size and (u + 0.5)·s - 0.5 in the image resized by s."""
    scaled = CAMERA.scaled(scale)
    assert scaled.size_wh == (round(640 * scale), round(480 * scale))
    assert scaled.distortion == CAMERA.distortion
    rays = np.array([[0.1, -0.2, 1.0], [-0.3, 0.25, 1.0], [0.0, 0.0, 1.0]]).T
    full = (CAMERA.K @ rays)[:2]
    small = (scaled.K @ rays)[:2]
    np.testing.assert_allclose(small, (full + 0.5) * scale - 0.5, atol=1e-9)
    scaled.validate()


def test_scaled_by_one_is_identity() -> None:
    assert CAMERA.scaled(1.0) == CAMERA


def test_synthetic_rig_is_valid(make_calibration) -> None:
    for model in ("pinhole", "fisheye"):
        calib = make_calibration(model, right_R_left=rotation_xyz_deg(1, 1, 1))
        calib.validate()
        assert calib.baseline_m == pytest.approx(0.06)


def test_arrays_are_read_only_copies() -> None:
    R = np.eye(3)
    T = np.array([-0.06, 0.0, 0.0])
    calib = StereoCalibration(CAMERA, CAMERA, R, T)
    T[0] = 1.0  # the caller's array changing later must not change the calibration
    assert calib.T[0] == -0.06
    with pytest.raises(ValueError):
        calib.R[0, 0] = 2.0


def _rig(R=None, T=None) -> StereoCalibration:
    return StereoCalibration(CAMERA, CAMERA, np.eye(3) if R is None else R, [-0.06, 0, 0] if T is None else T)


@pytest.mark.parametrize(
    ("rig", "message"),
    [
        (lambda: _rig(R=1.1 * np.eye(3)), "R is not a rotation"),
        (lambda: _rig(R=np.diag([1.0, 1.0, -1.0])), "R is not a rotation"),  # a reflection
        (lambda: _rig(R=np.eye(2)), "R must be 3x3"),
        (lambda: _rig(T=[-0.06, 0.0]), "T must have 3 entries"),
        (lambda: _rig(R=np.full((3, 3), np.nan)), "R contains NaN"),
        (lambda: _rig(T=[np.nan, 0.0, 0.0]), "T contains NaN"),
        (lambda: _rig(T=[-1e-4, 0.0, 0.0]), "baseline |T| = 0.100 mm is degenerate"),
        (lambda: _rig(T=[0.0, -0.06, 0.0]), "the baseline is not horizontal"),
        (lambda: _rig(T=[-0.02, 0.0, -0.06]), "the baseline is not horizontal"),
        (lambda: _rig(T=[0.06, 0.0, 0.0]), "left and right are swapped"),
        (lambda: StereoCalibration(replace(CAMERA, fx=0.0), CAMERA), "left.fx must be positive"),
        (lambda: StereoCalibration(CAMERA, replace(CAMERA, distortion=(1.0,))), "right.distortion"),
    ],
)
def test_stereo_validate_names_the_problem(rig, message: str) -> None:
    with pytest.raises(CalibrationError) as error:
        rig().validate()
    assert message in str(error.value)



# --- unproject / project ---------------------------------------------------------------------------


def _pixel_grid(camera: CameraModel, columns: int = 33, rows: int = 25) -> np.ndarray:
    """(N, 2) pixels spread over the whole image, corners and borders included."""
    u, v = np.meshgrid(np.linspace(0, camera.width - 1, columns), np.linspace(0, camera.height - 1, rows))
    return np.stack([u.ravel(), v.ravel()], axis=1)


@pytest.mark.parametrize("model", ["pinhole", "fisheye"])
def test_unproject_then_project_is_the_identity(make_calibration, model: str) -> None:
    """Over the whole image of a strongly distorted lens, to well below a micro-pixel."""
    for camera in (make_calibration(model).left, make_calibration(model).right):
        pixels = _pixel_grid(camera)
        rays = camera.unproject(pixels)
        assert rays.shape == (len(pixels), 3) and rays.dtype == np.float64
        np.testing.assert_allclose(np.linalg.norm(rays, axis=1), 1.0, atol=1e-12)
        assert np.all(rays[:, 2] > 0)
        back = camera.project(rays)
        assert back.shape == pixels.shape and back.dtype == np.float64
        assert np.abs(back - pixels).max() < 1e-6


@pytest.mark.parametrize("model", ["pinhole", "fisheye"])
def test_project_then_unproject_gives_the_ray_back(make_calibration, model: str) -> None:
    camera = make_calibration(model).right
    rng = np.random.default_rng(0)
    # Directions within about 30 degrees of the axis (inside the 640 x 480 image at f = 404 px).
    directions = np.column_stack([rng.uniform(-0.55, 0.55, 200), rng.uniform(-0.4, 0.4, 200), np.ones(200)])
    pixels = camera.project(directions)
    assert np.all((pixels >= 0) & (pixels <= [camera.width - 1, camera.height - 1]))
    unit = directions / np.linalg.norm(directions, axis=1, keepdims=True)
    np.testing.assert_allclose(camera.unproject(pixels), unit, atol=1e-9)
    # Only the direction matters, not the length of the vector.
    np.testing.assert_allclose(camera.project(3.5 * directions), pixels, atol=1e-9)


@pytest.mark.parametrize("model", ["pinhole", "fisheye"])
def test_principal_point_is_the_optical_axis(make_calibration, model: str) -> None:
    camera = make_calibration(model).right
    np.testing.assert_allclose(camera.unproject(np.array([[camera.cx, camera.cy]])), [[0.0, 0.0, 1.0]], atol=1e-12)
    np.testing.assert_allclose(camera.project(np.array([[0.0, 0.0, 2.0]])), [[camera.cx, camera.cy]], atol=1e-9)


def test_undistorted_pinhole_projection_is_k_times_the_ray() -> None:
    camera = replace(CAMERA, distortion=())
    rays = np.array([[0.1, -0.2, 1.0], [-0.3, 0.25, 2.0], [0.0, 0.0, 1.0]])
    expected = (camera.K @ rays.T).T
    np.testing.assert_allclose(camera.project(rays), expected[:, :2] / expected[:, 2:], atol=1e-9)
    np.testing.assert_allclose(
        camera.unproject(expected[:, :2] / expected[:, 2:]), rays / np.linalg.norm(rays, axis=1, keepdims=True), atol=1e-12
    )


def test_distortion_bends_rays_towards_the_axis() -> None:
    """Barrel distortion (k1 < 0): a corner pixel looks further out than the ideal pinhole says."""
    ideal = replace(CAMERA, distortion=())
    corner = np.array([[0.0, 0.0]])
    distorted_ray, ideal_ray = CAMERA.unproject(corner)[0], ideal.unproject(corner)[0]
    assert distorted_ray[2] < ideal_ray[2]  # a larger angle off the optical axis
    assert np.sign(distorted_ray[0]) == np.sign(ideal_ray[0]) == -1
