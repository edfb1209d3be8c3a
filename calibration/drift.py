"""Calibration drift: the rotation of the right camera against its factory pose.

Convention (as ``report.json`` states it): the actual left-to-right rotation is
``R_actual = R_drift @ R_factory``; ``R_drift`` is a rotation of the right camera about its own
optical centre, expressed in the right camera's axes, so ``T_actual = R_drift @ T_factory``
and the optical centres (the baseline) stay where the factory put them. A drift is written
as a rotation vector in degrees ``[x, y, z]`` = ``[pitch, yaw, roll]``.

The simulator (:func:`perturb_capture`) applies a known drift to a capture's right image
and keeps the factory calibration, so benchmarks and tests know the truth.
"""

from dataclasses import replace

import cv2
import numpy as np

from calibration.camera import CameraModel, StereoCalibration
from sensing.types import StereoCapture


def rotation_from_rotvec_deg(rotvec_deg: np.ndarray | list[float]) -> np.ndarray:
    """(3,) rotation vector in degrees -> (3, 3) float64 rotation matrix."""
    return cv2.Rodrigues(np.radians(np.asarray(rotvec_deg, dtype=np.float64)).reshape(3, 1))[0]


def rotvec_deg_from_rotation(R: np.ndarray) -> np.ndarray:
    """(3, 3) rotation -> (3,) float64 rotation vector in degrees."""
    return np.degrees(cv2.Rodrigues(np.asarray(R, dtype=np.float64))[0].ravel())


def apply_drift(calib: StereoCalibration, R_drift: np.ndarray) -> StereoCalibration:
    """The calibration after the right camera turned by ``R_drift`` (3, 3) about its centre."""
    return replace(calib, R=R_drift @ calib.R, T=R_drift @ calib.T)


def rotate_camera_image(image: np.ndarray, camera: CameraModel, R_drift: np.ndarray) -> np.ndarray:
    """What ``camera`` sees after turning by ``R_drift`` about its optical centre.

    Each output pixel looks along a ray r of the turned camera, which is ``R_drift.T @ r`` in
    the original camera's frame; the original image is sampled there (bilinear, lens
    distortion included, so it works for distorted pinhole and fisheye cameras alike).
    Pixels whose ray falls outside the original image are black. For an undistorted pinhole
    camera this is the homography ``K R_drift K^-1``.

    image : (H, W[, C]) uint8 or uint16 at ``camera``'s resolution; returns the same shape and dtype.
    """
    u, v = np.meshgrid(np.arange(camera.width, dtype=np.float64), np.arange(camera.height, dtype=np.float64))
    rays = camera.unproject(np.stack([u.ravel(), v.ravel()], axis=1))
    source = camera.project(rays @ R_drift)  # row-wise R_drift.T @ r
    maps = source.reshape(camera.height, camera.width, 2).astype(np.float32)
    return cv2.remap(image, maps, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def perturb_capture(capture: StereoCapture, rotvec_deg: np.ndarray | list[float]) -> StereoCapture:
    """The capture a drifted rig would take: right image turned by ``rotvec_deg`` ([pitch, yaw,
    roll] degrees, right-camera axes), factory calibration kept; the truth (composed with any
    earlier simulated drift) goes into ``meta["simulated_drift_rotvec_deg"]``."""
    R_drift = rotation_from_rotvec_deg(rotvec_deg)
    right = rotate_camera_image(capture.right, capture.calibration.right, R_drift)
    # A capture drifted before carries its truth; the drifts compose.
    total = R_drift @ rotation_from_rotvec_deg(capture.meta.get("simulated_drift_rotvec_deg", [0.0, 0.0, 0.0]))
    meta = {**capture.meta, "simulated_drift_rotvec_deg": [round(float(a), 9) for a in rotvec_deg_from_rotation(total)]}
    return replace(capture, right=right, meta=meta)
