"""Bit depth and colour layout, resolution reduction with its calibration, exposure matching."""

import cv2
import numpy as np
import pytest

from sensing.preprocess import match_exposure, preprocess_capture, reduce_for_processing, to_uint8_bgr, white_level
from sensing.types import StereoCapture

from synthetic import smooth_texture


def test_to_uint8_bgr_keeps_8_bit_colour_and_expands_grey() -> None:
    colour = smooth_texture(30, 40, seed=3)
    np.testing.assert_array_equal(to_uint8_bgr(colour, white_level=255), colour)
    grey = colour[:, :, 1].copy()
    expanded = to_uint8_bgr(grey, white_level=255)
    assert expanded.shape == (30, 40, 3) and expanded.dtype == np.uint8
    for channel in range(3):
        np.testing.assert_array_equal(expanded[:, :, channel], grey)


def test_to_uint8_bgr_maps_white_level_to_255() -> None:
    twelve_bit = np.array([[0, 2048, 4095, 5000]], np.uint16)
    converted = to_uint8_bgr(twelve_bit, white_level=4095)
    assert converted.dtype == np.uint8 and converted.shape == (1, 4, 3)
    # 2048·255/4095 = 127.5 rounds to 128; above the white level saturates.
    np.testing.assert_array_equal(converted[0, :, 0], [0, 128, 255, 255])


@pytest.mark.parametrize(
    ("brightest", "dtype", "expected"),
    [
        (255, np.uint8, 255.0),
        (17, np.uint8, 255.0),  # an 8-bit image is 8-bit however dark
        (0, np.uint16, 255.0),
        (200, np.uint16, 255.0),
        (1000, np.uint16, 1023.0),  # 10 bit
        (1023, np.uint16, 1023.0),
        (1024, np.uint16, 2047.0),
        (4000, np.uint16, 4095.0),  # 12 bit
        (65535, np.uint16, 65535.0),
    ],
)
def test_white_level_is_the_smallest_covering_bit_depth(brightest: int, dtype, expected: float) -> None:
    image = np.zeros((4, 4), dtype)
    image[1, 2] = brightest
    assert white_level(image) == expected


def test_white_level_covers_both_views() -> None:
    left = np.full((4, 4), 900, np.uint16)
    right = np.full((4, 4), 3000, np.uint16)
    assert white_level(left, right) == white_level(right, left) == 4095.0
    assert white_level(np.zeros((4, 4), np.uint8), right) == 4095.0


def test_12_bit_data_is_not_darkened() -> None:
    image = smooth_texture(30, 40, seed=4).astype(np.uint16) * 16  # 0..4080 in a 16-bit container
    converted = to_uint8_bgr(image, white_level=white_level(image))
    assert converted.max() >= 250
    np.testing.assert_allclose(converted[:, :, 0], image[:, :, 0] / 4095 * 255, atol=0.5)


def test_reduction_is_skipped_near_processing_resolution(make_calibration) -> None:
    calib = make_calibration(width=640, height=480)
    left = right = np.zeros((480, 640, 3), np.uint8)
    reduced = reduce_for_processing(left, right, calib, long_side_px=320)  # scale 0.5: the remap handles it
    assert reduced[0] is left and reduced[1] is right and reduced[2] is calib


def _blob(height: int, width: int, centre_xy: np.ndarray, sigma_px: float) -> np.ndarray:
    ys, xs = np.mgrid[:height, :width]
    blob = np.exp(-((xs - centre_xy[0]) ** 2 + (ys - centre_xy[1]) ** 2) / (2 * sigma_px**2))
    return np.repeat((blob * 60000).astype(np.uint16)[:, :, None], 3, axis=2)


def _centroid(image: np.ndarray) -> np.ndarray:
    weights = image[:, :, 0].astype(np.float64)
    ys, xs = np.mgrid[: image.shape[0], : image.shape[1]]
    return np.array([(xs * weights).sum(), (ys * weights).sum()]) / weights.sum()


@pytest.mark.parametrize(("long_side_px", "reduced_wh"), [(320, (640, 480)), (240, (480, 360))])
def test_reduction_scales_images_and_calibration_consistently(
    make_calibration, long_side_px: int, reduced_wh: tuple[int, int]
) -> None:
    """Views are reduced to twice the processing resolution, and a scene point's image in them
    is where the reduced calibration projects it."""
    calib = make_calibration(width=1280, height=960, focal_px=1000.0)
    point = np.array([[0.21, -0.13, 1.7]])
    views = []
    for camera, R, T in ((calib.left, np.eye(3), np.zeros(3)), (calib.right, calib.R, calib.T)):
        pixel = cv2.projectPoints(point, cv2.Rodrigues(R)[0], T, camera.K, camera.D)[0].ravel()
        views.append(_blob(960, 1280, pixel, sigma_px=6.0))

    left, right, reduced = reduce_for_processing(*views, calib, long_side_px=long_side_px)

    assert left.shape == right.shape == (reduced_wh[1], reduced_wh[0], 3) and left.dtype == np.uint16
    assert reduced.left.size_wh == reduced.right.size_wh == reduced_wh
    scale = reduced_wh[0] / 1280
    assert reduced.left.fx == pytest.approx(calib.left.fx * scale)
    assert reduced.right.fy == pytest.approx(calib.right.fy * scale)
    assert reduced.left.distortion == calib.left.distortion
    np.testing.assert_array_equal(reduced.R, calib.R)
    np.testing.assert_array_equal(reduced.T, calib.T)
    for image, camera, R, T in ((left, reduced.left, np.eye(3), np.zeros(3)), (right, reduced.right, calib.R, calib.T)):
        expected = cv2.projectPoints(point, cv2.Rodrigues(R)[0], T, camera.K, camera.D)[0].ravel()
        np.testing.assert_allclose(_centroid(image), expected, atol=0.02)


@pytest.fixture(scope="module")
def exposure_pair() -> tuple[np.ndarray, np.ndarray]:
    """A textured left view and the same view through gain 0.6 and offset 10 grey levels."""
    left = smooth_texture(120, 160, seed=5)
    right = np.round(0.6 * left.astype(np.float64) + 10).astype(np.uint8)
    assert np.abs(left.astype(float) - right).mean() > 30  # really different before matching
    return left, right


@pytest.mark.parametrize("method", ["gain_offset", "histogram"])
def test_match_exposure_brings_right_to_left(exposure_pair, method: str) -> None:
    left, right = exposure_pair
    matched, info = match_exposure(left, right, method=method)
    assert matched.shape == right.shape and matched.dtype == np.uint8
    assert info["method"] == method
    assert np.abs(matched.astype(float) - left).mean() < 3.0


def test_gain_offset_reports_the_inverse_transform(exposure_pair) -> None:
    _, info = match_exposure(*exposure_pair, method="gain_offset")
    assert info["gain"] == pytest.approx(1 / 0.6, abs=0.03)
    assert info["offset"] == pytest.approx(-10 / 0.6, abs=2.0)


def test_match_exposure_none_returns_right_unchanged(exposure_pair) -> None:
    left, right = exposure_pair
    matched, info = match_exposure(left, right, method="none")
    assert matched is right and info == {"method": "none"}


def test_match_exposure_rejects_unknown_method(exposure_pair) -> None:
    with pytest.raises(ValueError, match="method must be 'gain_offset', 'histogram' or 'none', got 'gamma'"):
        match_exposure(*exposure_pair, method="gamma")


def test_preprocess_capture_of_a_12_bit_grey_sensor(make_calibration) -> None:
    grey = [smooth_texture(960, 1280, seed=seed, blur_sigma_px=4.0)[:, :, 0].astype(np.uint16) * 16 for seed in (6, 7)]
    capture = StereoCapture(grey[0], grey[1], make_calibration(width=1280, height=960, focal_px=1000.0))
    prepared = preprocess_capture(capture, long_side_px=320, photometric="gain_offset")
    assert prepared.left.shape == prepared.right.shape == (480, 640, 3) and prepared.left.dtype == np.uint8
    assert prepared.calibration.left.size_wh == (640, 480)
    assert prepared.photometric["white_level"] == 4095.0 and prepared.photometric["method"] == "gain_offset"
    assert prepared.left.max() >= 240
