"""Preprocessing of a raw capture: bit depth, colour layout, resolution and exposure.

Undistortion and rectification to the processing resolution happen in one remap in the
``rectify`` stage (:mod:`calibration.rectify`); here the raw views are brought to 8-bit BGR,
reduced by area averaging when the processing resolution is far below the sensor's (so the
remap does not alias), and the right view's exposure is matched to the left's.
"""

from dataclasses import replace

import cv2
import numpy as np
from skimage.exposure import match_histograms

from calibration.camera import StereoCalibration
from sensing.pair_checks import check_distinct, check_exposure
from sensing.types import PreparedPair, StereoCapture


def to_uint8_bgr(image: np.ndarray, *, white_level: float) -> np.ndarray:
    """(H, W) or (H, W, 3) uint8/uint16 -> (H, W, 3) uint8 BGR, ``white_level`` mapping to 255."""
    if image.dtype != np.uint8 or white_level != 255:
        image = cv2.convertScaleAbs(image, alpha=255.0 / white_level)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return image


def white_level(*images: np.ndarray) -> float:
    """The sensor's full-scale value: 255 for 8 bit; for 16-bit containers the smallest
    2^k - 1 (k = 8..16) covering the brightest pixel, so 10- and 12-bit data are not darkened."""
    if all(image.dtype == np.uint8 for image in images):
        return 255.0
    brightest = max(int(image.max()) for image in images)
    bits = max(8, int(np.ceil(np.log2(brightest + 1))))
    return float(2 ** min(bits, 16) - 1)


def reduce_for_processing(
    left: np.ndarray, right: np.ndarray, calib: StereoCalibration, *, long_side_px: int
) -> tuple[np.ndarray, np.ndarray, StereoCalibration]:
    """Area-average both views when the processing resolution is below half the sensor's.

    The rectifying remap then resamples by at most 2x, which bilinear sampling handles
    without aliasing. Returns the views and the calibration rescaled to their new size.
    """
    scale = long_side_px / max(calib.left.width, calib.left.height)
    if scale >= 0.5:
        return left, right, calib
    pre_scale = 2 * scale
    cameras = [calib.left.scaled(pre_scale), calib.right.scaled(pre_scale)]
    left, right = (
        cv2.resize(image, cam.size_wh, interpolation=cv2.INTER_AREA) for image, cam in zip((left, right), cameras)
    )
    return left, right, replace(calib, left=cameras[0], right=cameras[1])


def match_exposure(left: np.ndarray, right: np.ndarray, *, method: str) -> tuple[np.ndarray, dict]:
    """Bring the right view's brightness and contrast to the left's.

    Parameters
    ----------
    left, right : (H, W, 3) uint8 BGR
    method : ``gain_offset`` (per channel: right' = gain·right + offset matching the robust
        mean and spread of the left, from the 5th and 95th percentiles), ``histogram``
        (scikit-image histogram matching), or ``none``
    Returns
    -------
    right' : (H, W, 3) uint8; info : method and the mean gain and offset (grey levels)
    """
    if method == "none":
        return right, {"method": "none"}
    if method == "histogram":
        matched = match_histograms(right, left, channel_axis=-1)
        return np.clip(np.round(matched), 0, 255).astype(np.uint8), {"method": "histogram"}
    if method != "gain_offset":
        raise ValueError(f"method must be 'gain_offset', 'histogram' or 'none', got {method!r}")
    low_l, high_l = np.percentile(left.reshape(-1, 3), [5, 95], axis=0)
    low_r, high_r = np.percentile(right.reshape(-1, 3), [5, 95], axis=0)
    gain = np.clip((high_l - low_l) / np.maximum(high_r - low_r, 1.0), 0.2, 5.0)
    offset = low_l - gain * low_r
    lut = np.clip(np.round(np.arange(256)[:, None] * gain + offset), 0, 255).astype(np.uint8)
    matched = np.stack([cv2.LUT(right[:, :, c], lut[:, c]) for c in range(3)], axis=2)
    return matched, {"method": "gain_offset", "gain": round(float(gain.mean()), 4), "offset": round(float(offset.mean()), 2)}


def preprocess_capture(capture: StereoCapture, *, long_side_px: int, photometric: str) -> PreparedPair:
    """Raw capture -> 8-bit BGR views with matched exposure at (about) processing resolution.

    Raises :class:`StageError` for a black or saturated view or two identical views (checked
    before the exposure matching, which would otherwise stretch a black frame into noise).
    """
    level = white_level(capture.left, capture.right)
    left, right, calib = reduce_for_processing(
        to_uint8_bgr(capture.left, white_level=level),
        to_uint8_bgr(capture.right, white_level=level),
        capture.calibration,
        long_side_px=long_side_px,
    )
    check_exposure(left, right)
    check_distinct(left, right)
    right, info = match_exposure(left, right, method=photometric)
    return PreparedPair(left, right, calib, {**info, "white_level": level})
