"""Stereo rectification: undistort, row-align, crop to the valid region and resize, in one remap.

``stereo_rectify`` computes OpenCV's ``R1, R2, P1, P2, Q`` for a calibration such that both
rectified views hold only valid pixels (the largest rectangle both cameras see) at a
requested long side; ``rectify_maps`` turns one camera's part into remap tables, and
``rectify_pair`` applies them. ``Rectifier`` caches the maps per calibration.

Convention: after rectification both views share the intrinsics of ``P1`` (same focal length
and principal point, ``CALIB_ZERO_DISPARITY``), so a left pixel (x, y) at disparity d
is seen at (x - d, y) in the right view, and depth = f · B / d.
"""

import json
from collections import OrderedDict
from dataclasses import dataclass

import cv2
import numpy as np

from calibration.camera import CameraModel, StereoCalibration
from calibration.io import calibration_to_dict
from sensing.errors import CalibrationError

#: Smallest common valid region (fraction of the image area) accepted after rectification.
MIN_VALID_AREA_FRACTION = 0.2


@dataclass(frozen=True, eq=False)
class StereoRectification:
    """Rectifying rotations and projections of a calibrated pair (OpenCV names).

    R1, R2 : (3, 3) rotations from each camera's frame to its rectified frame
    P1, P2 : (3, 4) projections of the rectified cameras at ``size_wh``; ``P2[0, 3] = f·Tx``
    Q : (4, 4) disparity-to-depth reprojection matrix
    size_wh : (width, height) of the rectified views in pixels
    """

    R1: np.ndarray
    R2: np.ndarray
    P1: np.ndarray
    P2: np.ndarray
    Q: np.ndarray
    size_wh: tuple[int, int]

    @property
    def focal_px(self) -> float:
        return float(self.P1[0, 0])

    @property
    def baseline_m(self) -> float:
        return float(-self.P2[0, 3] / self.P2[0, 0])


def stereo_rectify(calib: StereoCalibration, *, long_side_px: int) -> StereoRectification:
    """Rectification of ``calib`` cropped to the common valid region, at ``long_side_px``.

    ``long_side_px`` is the long side the full sensor image would have at the processing
    resolution; the crop to the valid region then makes the views somewhat smaller, never
    upsampled.

    The rotations are OpenCV's (``cv2.stereoRectify``, which depends only on R and T); the
    projection is chosen here so that it works the same for pinhole and fisheye cameras:
    a provisional view at the cameras' smallest focal length is cropped to the largest
    rectangle that both undistorted views cover, then scaled to the requested size.
    """
    calib.validate()
    width, height = calib.left.size_wh
    R1, R2, _, _, _, _, _ = cv2.stereoRectify(
        calib.left.K, np.zeros(5), calib.right.K, np.zeros(5), (width, height), calib.R, calib.T.reshape(3, 1),
        flags=cv2.CALIB_ZERO_DISPARITY, alpha=-1,
    )
    focal = min(calib.left.fx, calib.left.fy, calib.right.fx, calib.right.fy)
    provisional = np.array([[focal, 0.0, (width - 1) / 2], [0.0, focal, (height - 1) / 2], [0.0, 0.0, 1.0]])
    covered = _valid_mask(calib.left, R1, provisional, (width, height)) & _valid_mask(
        calib.right, R2, provisional, (width, height)
    )
    x0, y0, x1, y1 = largest_valid_rectangle(covered)
    area = (x1 - x0) * (y1 - y0)
    if area < MIN_VALID_AREA_FRACTION * width * height:
        raise CalibrationError(
            f"after rectification the two views share only {100 * area / (width * height):.0f}% of the image; "
            "the calibration's R/T do not describe overlapping cameras"
        )
    scale = long_side_px / max(width, height)
    size_wh = (int(round((x1 - x0) * scale)), int(round((y1 - y0) * scale)))
    K = provisional.copy()
    K[0, 2] -= x0
    K[1, 2] -= y0
    K[:2] = K[:2] * scale
    K[0, 2] += (scale - 1) / 2
    K[1, 2] += (scale - 1) / 2
    tx = float((R2 @ calib.T)[0])
    P1 = np.hstack([K, np.zeros((3, 1))])
    P2 = np.hstack([K, np.array([[K[0, 0] * tx], [0.0], [0.0]])])
    Q = np.array(
        [[1, 0, 0, -K[0, 2]], [0, 1, 0, -K[1, 2]], [0, 0, 0, K[0, 0]], [0, 0, -1 / tx, 0]], dtype=np.float64
    )
    return StereoRectification(R1, R2, P1, P2, Q, size_wh)


def rectify_maps(camera: CameraModel, R: np.ndarray, P: np.ndarray, size_wh: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Fixed-point remap tables (``CV_16SC2`` map and its interpolation table) for one camera."""
    if camera.model == "fisheye":
        return cv2.fisheye.initUndistortRectifyMap(camera.K, camera.D, R, P, size_wh, cv2.CV_16SC2)
    return cv2.initUndistortRectifyMap(camera.K, camera.D, R, P, size_wh, cv2.CV_16SC2)


def rectify_view(
    image: np.ndarray, camera: CameraModel, R: np.ndarray, P: np.ndarray, size_wh: tuple[int, int]
) -> np.ndarray:
    """Undistort and rectify one (H, W[, C]) view with a rotation ``R`` and projection ``P``
    (tables built for this call: for one-off rotations such as an online drift correction)."""
    return cv2.remap(image, *rectify_maps(camera, R, P, size_wh), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def largest_valid_rectangle(valid: np.ndarray) -> tuple[int, int, int, int]:
    """An axis-aligned rectangle (x0, y0, x1, y1), exclusive ends, holding only True pixels.

    Greedy: start from the bounding box of ``valid`` ((H, W) bool) and peel off whichever
    border row or column holds the largest fraction of invalid pixels until none remains;
    invalid pixels enclosed by a valid border are cut away with the smallest loss of area.
    Exact for the convex regions rectification produces; a good inner bound otherwise.
    """
    rows = np.flatnonzero(valid.any(axis=1))
    cols = np.flatnonzero(valid.any(axis=0))
    if rows.size == 0:
        return (0, 0, 0, 0)
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    while y1 > y0 and x1 > x0:
        window = valid[y0:y1, x0:x1]
        bad = {
            "top": 1 - window[0].mean(),
            "bottom": 1 - window[-1].mean(),
            "left": 1 - window[:, 0].mean(),
            "right": 1 - window[:, -1].mean(),
        }
        side = max(bad, key=bad.get)
        if bad[side] == 0:
            if window.all():
                break
            # Valid border around an invalid hole: keep the largest part beside the hole's bounding box.
            hole_rows = np.flatnonzero(~window.all(axis=1))
            hole_cols = np.flatnonzero(~window.all(axis=0))
            h, w = window.shape
            cuts = {
                (x0, y0, x1, y0 + hole_rows[0]): hole_rows[0] * w,
                (x0, y0 + hole_rows[-1] + 1, x1, y1): (h - hole_rows[-1] - 1) * w,
                (x0, y0, x0 + hole_cols[0], y1): hole_cols[0] * h,
                (x0 + hole_cols[-1] + 1, y0, x1, y1): (w - hole_cols[-1] - 1) * h,
            }
            x0, y0, x1, y1 = max(cuts, key=cuts.get)
            continue
        if side == "top":
            y0 += 1
        elif side == "bottom":
            y1 -= 1
        elif side == "left":
            x0 += 1
        else:
            x1 -= 1
    return (int(x0), int(y0), int(x1), int(y1))


def _valid_mask(camera: CameraModel, R: np.ndarray, K_new: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: rectified pixels of a ``K_new`` view that fall inside ``camera``'s image."""
    if camera.model == "fisheye":
        map_x, map_y = cv2.fisheye.initUndistortRectifyMap(camera.K, camera.D, R, K_new, size_wh, cv2.CV_32FC1)
    else:
        map_x, map_y = cv2.initUndistortRectifyMap(camera.K, camera.D, R, K_new, size_wh, cv2.CV_32FC1)
    # Half a pixel inside the border, so bilinear sampling never reads outside the image; the
    # tolerance keeps rounding noise (an exact identity map yields x = -3e-14) from dropping a column.
    eps = 1e-3
    inside = (
        (map_x >= -eps) & (map_x <= camera.width - 1 + eps) & (map_y >= -eps) & (map_y <= camera.height - 1 + eps)
    )
    # Rays beyond the angle where the distortion polynomial folds back also land inside the
    # image (mirrored content); they are not valid either.
    width, height = size_wh
    camera_from_pixel = R.T @ np.linalg.inv(K_new)
    max_angle = _max_monotonic_angle(camera)
    # The rays within max_angle of the axis form a convex cone, so when the view's four corners
    # lie inside it, every pixel does (the usual case: no per-pixel work).
    corners = np.array([[0, 0, 1], [width - 1, 0, 1], [0, height - 1, 1], [width - 1, height - 1, 1]]) @ camera_from_pixel.T
    if np.arctan2(np.hypot(corners[:, 0], corners[:, 1]), corners[:, 2]).max() < max_angle:
        return inside
    u = np.arange(width, dtype=np.float32)[None, :]
    v = np.arange(height, dtype=np.float32)[:, None]
    x, y, z = (row[0] * u + row[1] * v + row[2] for row in camera_from_pixel.astype(np.float32))  # (H, W) rays
    tan_max = np.float32(np.tan(min(max_angle, np.radians(89.9))))
    return inside & (z > 0) & (x * x + y * y < tan_max * tan_max * z * z)


def _max_monotonic_angle(camera: CameraModel) -> float:
    """Angle off the optical axis (radians) up to which the radial distortion is monotonic.

    Beyond it the distorted radius shrinks again, so rays far outside the field of view
    map back into the image. Tangential and thin-prism terms are ignored (they are small).
    """
    theta = np.linspace(0.0, np.radians(89.9), 4000)
    D = np.zeros(8)
    D[: min(len(camera.distortion), 8)] = camera.distortion[:8]
    if camera.model == "fisheye":
        k1, k2, k3, k4 = D[:4]
        t2 = theta**2
        radius = theta * (1 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4))))
    else:
        k1, k2, _, _, k3, k4, k5, k6 = D
        r = np.tan(theta)
        r2 = r**2
        radius = r * (1 + r2 * (k1 + r2 * (k2 + r2 * k3))) / (1 + r2 * (k4 + r2 * (k5 + r2 * k6)))
    folds = np.flatnonzero(np.diff(radius) <= 0)
    return float(theta[folds[0]]) if folds.size else float(np.pi / 2)


class Rectifier:
    """Rectifies pairs, computing the remap tables once per calibration and size (LRU cache)."""

    def __init__(self, *, max_entries: int = 4) -> None:
        self._cache: OrderedDict[str, tuple[StereoRectification, tuple, tuple]] = OrderedDict()
        self._max_entries = max_entries

    def rectification(self, calib: StereoCalibration, *, long_side_px: int) -> tuple[StereoRectification, tuple, tuple]:
        """The rectification of ``calib`` and the left and right remap tables, from cache if seen."""
        key = json.dumps([calibration_to_dict(calib), long_side_px])
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        rect = stereo_rectify(calib, long_side_px=long_side_px)
        entry = (
            rect,
            rectify_maps(calib.left, rect.R1, rect.P1, rect.size_wh),
            rectify_maps(calib.right, rect.R2, rect.P2, rect.size_wh),
        )
        self._cache[key] = entry
        if len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)
        return entry

    def rectify_pair(
        self, left: np.ndarray, right: np.ndarray, calib: StereoCalibration, *, long_side_px: int
    ) -> tuple[np.ndarray, np.ndarray, StereoRectification]:
        """Undistort and rectify one pair.

        Parameters
        ----------
        left, right : (H, W[, C]) images at ``calib``'s resolution
        Returns
        -------
        left, right : rectified (H', W'[, C]) images, same dtype, (W', H') = ``rect.size_wh``
        rect : the rectification used
        """
        rect, left_maps, right_maps = self.rectification(calib, long_side_px=long_side_px)
        left_r = cv2.remap(left, *left_maps, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        right_r = cv2.remap(right, *right_maps, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return left_r, right_r, rect
