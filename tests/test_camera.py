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

