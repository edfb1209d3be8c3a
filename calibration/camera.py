"""Camera models and the stereo calibration that travels through the pipeline.

Convention: pixel centres on integers, origin top-left, x right, y down; camera frames
are x right, y down, z forward (OpenCV). ``R``, ``T`` map left-camera coordinates to
right-camera coordinates: ``X_right = R @ X_left + T`` (metres), as ``cv2.stereoCalibrate``.
"""

from dataclasses import dataclass, field, replace
from typing import Literal

import cv2
import numpy as np

from sensing.errors import CalibrationError

CameraKind = Literal["pinhole", "fisheye"]
#: Distortion vector lengths OpenCV accepts for each model.
DISTORTION_LENGTHS: dict[str, tuple[int, ...]] = {
    "pinhole": (0, 4, 5, 8, 12, 14),
    "fisheye": (0, 4),
}
#: Shortest baseline (metres) that still gives usable disparities.
MIN_BASELINE_M = 1e-3


@dataclass(frozen=True)
class CameraModel:
    """Intrinsics of one camera.

    ``model="pinhole"``: radial-tangential distortion in OpenCV order
    (k1, k2, p1, p2[, k3[, k4, k5, k6[, s1..s4[, tx, ty]]]]), may be empty.
    ``model="fisheye"``: equidistant projection with Kannala-Brandt k1..k4.
    Focal lengths and principal point in pixels at ``width`` x ``height``.
    """

    model: CameraKind
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    distortion: tuple[float, ...] = ()

    @property
    def K(self) -> np.ndarray:
        """(3, 3) float64 camera matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def D(self) -> np.ndarray:
        """(N,) float64 distortion vector; zeros(4) for a fisheye without coefficients."""
        if self.model == "fisheye" and not self.distortion:
            return np.zeros(4)
        return np.asarray(self.distortion, dtype=np.float64)

    @property
    def size_wh(self) -> tuple[int, int]:
        return (self.width, self.height)

    def scaled(self, scale: float) -> "CameraModel":
        """The same camera for an image resized by ``scale`` (pixel centres kept aligned)."""
        return replace(
            self,
            width=int(round(self.width * scale)),
            height=int(round(self.height * scale)),
            fx=self.fx * scale,
            fy=self.fy * scale,
            cx=(self.cx + 0.5) * scale - 0.5,
            cy=(self.cy + 0.5) * scale - 0.5,
        )

    def unproject(self, points_px: np.ndarray) -> np.ndarray:
        """Rays through pixels: (N, 2) float pixel coordinates -> (N, 3) float64 unit vectors
        in the camera frame, the lens distortion removed."""
        points = np.asarray(points_px, dtype=np.float64).reshape(-1, 1, 2)
        criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 20, 1e-10)
        if self.model == "fisheye":
            normalised = cv2.fisheye.undistortPoints(points, self.K, self.D, criteria=criteria)
        else:
            normalised = cv2.undistortPoints(points, self.K, self.D, criteria=criteria)
        rays = np.concatenate([normalised.reshape(-1, 2), np.ones((len(points), 1))], axis=1)
        return rays / np.linalg.norm(rays, axis=1, keepdims=True)

    def project(self, rays: np.ndarray) -> np.ndarray:
        """Pixels of camera-frame directions: (N, 3) with z > 0 -> (N, 2) float64 pixel
        coordinates, the lens distortion applied."""
        rays = np.asarray(rays, dtype=np.float64).reshape(-1, 1, 3)
        zero = np.zeros(3)
        if self.model == "fisheye":
            pixels, _ = cv2.fisheye.projectPoints(rays, zero, zero, self.K, self.D)
        else:
            pixels, _ = cv2.projectPoints(rays, zero, zero, self.K, self.D)
        return pixels.reshape(-1, 2)

    def validate(self, name: str = "camera") -> None:
        """Raise :class:`CalibrationError` naming the first impossible value."""
        if self.model not in DISTORTION_LENGTHS:
            raise CalibrationError(f"{name}.model must be 'pinhole' or 'fisheye', got {self.model!r}")
        for key in ("width", "height"):
            value = getattr(self, key)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
                raise CalibrationError(f"{name}.{key} must be a positive integer, got {value!r}")
        for key in ("fx", "fy", "cx", "cy"):
            value = getattr(self, key)
            if not isinstance(value, (int, float, np.floating)) or not np.isfinite(value):
                raise CalibrationError(f"{name}.{key} must be a finite number, got {value!r}")
        for key in ("fx", "fy"):
            if getattr(self, key) <= 0:
                raise CalibrationError(f"{name}.{key} must be positive, got {getattr(self, key)}")
        if not (-0.5 * self.width <= self.cx <= 1.5 * self.width) or not (
            -0.5 * self.height <= self.cy <= 1.5 * self.height
        ):
            raise CalibrationError(
                f"{name} principal point ({self.cx}, {self.cy}) is far outside the "
                f"{self.width}x{self.height} image"
            )
        allowed = DISTORTION_LENGTHS[self.model]
        if len(self.distortion) not in allowed:
            raise CalibrationError(
                f"{name}.distortion for model {self.model!r} must have one of {allowed} "
                f"coefficients, got {len(self.distortion)}"
            )
        if not np.all(np.isfinite(np.asarray(self.distortion, dtype=np.float64))):
            raise CalibrationError(f"{name}.distortion contains NaN or inf: {list(self.distortion)}")


@dataclass(frozen=True, eq=False)
class StereoCalibration:
    """Factory (or corrected) calibration of a left/right rig.

    left, right : intrinsics of each camera at its native resolution
    R : (3, 3) float64 rotation, left-camera to right-camera coordinates
    T : (3,) float64 translation in metres, ``X_right = R @ X_left + T``
    """

    left: CameraModel
    right: CameraModel
    R: np.ndarray = field(default_factory=lambda: np.eye(3))
    T: np.ndarray = field(default_factory=lambda: np.array([-0.06, 0.0, 0.0]))

    def __post_init__(self) -> None:
        for key in ("R", "T"):
            array = np.array(getattr(self, key), dtype=np.float64)
            array.setflags(write=False)
            object.__setattr__(self, key, array)

    @property
    def baseline_m(self) -> float:
        """Distance between the two optical centres in metres."""
        return float(np.linalg.norm(self.T))

    def validate(self) -> None:
        """Raise :class:`CalibrationError` on the first impossible value, saying what it is."""
        self.left.validate("left")
        self.right.validate("right")
        if self.R.shape != (3, 3):
            raise CalibrationError(f"R must be 3x3, got shape {list(self.R.shape)}")
        if self.T.shape != (3,):
            raise CalibrationError(f"T must have 3 entries, got shape {list(self.T.shape)}")
        if not np.all(np.isfinite(self.R)):
            raise CalibrationError("R contains NaN or inf")
        if not np.all(np.isfinite(self.T)):
            raise CalibrationError("T contains NaN or inf")
        orthogonality = float(np.abs(self.R.T @ self.R - np.eye(3)).max())
        if orthogonality > 1e-3 or np.linalg.det(self.R) < 0:
            raise CalibrationError(
                f"R is not a rotation (|R^T R - I| = {orthogonality:.2g}, det = {np.linalg.det(self.R):.3f})"
            )
        if self.baseline_m < MIN_BASELINE_M:
            raise CalibrationError(
                f"baseline |T| = {self.baseline_m * 1000:.3f} mm is degenerate (T is in metres; "
                f"need at least {MIN_BASELINE_M * 1000:.0f} mm)"
            )
        # The right camera's centre in left coordinates is C = -R^T T; for a left/right rig it
        # lies mostly along +x of the left camera.
        centre = -self.R.T @ self.T
        if abs(centre[0]) < max(abs(centre[1]), abs(centre[2])):
            raise CalibrationError(
                f"the baseline is not horizontal (right camera centre at {np.round(centre, 4).tolist()} m "
                "in left-camera coordinates); only left/right rigs are supported"
            )
        if centre[0] < 0:
            raise CalibrationError(
                f"the right camera sits {abs(centre[0]):.3f} m to the LEFT of the left camera "
                "(T[0] > 0): left and right are swapped in the calibration"
            )
