"""Confidence cues: low in occlusions, on flat and on repetitive texture; high where matches are sound."""

import numpy as np
import pytest
from synthetic import LayeredPair, make_layered_pair, matchable_mask, smooth_texture

from sensing.confidence import left_right_consistency, stereo_confidence, texture, uniqueness
from sensing.config import ConfidenceConfig
from sensing.stereo import build_matcher, right_disparity
from sensing.types import ConfidenceMap, DisparityMap

MAX_DISPARITY_PX = 32
DEFAULTS = ConfidenceConfig()


def confidence_of(pair: LayeredPair) -> tuple[DisparityMap, ConfidenceMap]:
    """SGBM disparity of ``pair`` and its confidence with the default settings."""
    matcher = build_matcher("sgbm")
    left = matcher.match(pair.left, pair.right, max_disparity_px=MAX_DISPARITY_PX)
    right = right_disparity(matcher, pair.left, pair.right, max_disparity_px=MAX_DISPARITY_PX)
    confidence = stereo_confidence(
        pair.left,
        pair.right,
        left,
        right,
        max_disparity_px=MAX_DISPARITY_PX,
        lr_tolerance_px=DEFAULTS.lr_tolerance_px,
        uniqueness_margin=DEFAULTS.uniqueness_margin,
        uniqueness_weight=DEFAULTS.uniqueness_weight,
        texture_grey_levels=DEFAULTS.texture_grey_levels,
    )
    return left, confidence


@pytest.fixture(scope="module")
def pair() -> LayeredPair:
    return make_layered_pair()


def test_confidence_is_low_in_the_occluded_band_and_high_elsewhere(pair: LayeredPair) -> None:
    disparity, confidence = confidence_of(pair)
    values = confidence.values
    assert values.shape == pair.disparity.shape and values.dtype == np.float32
    assert values.min() >= 0.0 and values.max() <= 1.0
    assert pair.occluded.sum() == 12 * 100  # (20 - 8) px wide, as tall as the rectangle
    assert values[pair.occluded].mean() < 0.3
    assert values[matchable_mask(pair)].mean() > 0.6
    # Hardly any occluded pixel passes the pipeline's threshold, matched by SGBM or not.
    assert (values[pair.occluded] >= DEFAULTS.threshold).mean() < 0.05
    assert set(confidence.cues) == {"left_right", "uniqueness", "texture"}
    assert np.all(values[~disparity.valid] == 0.0)


def test_textureless_region_gets_low_texture_and_confidence() -> None:
    pair = make_layered_pair()
    # A flat grey patch on the background plane, painted consistently into both views.
    y0, y1, x0, x1 = 20, 60, 40, 110
    pair.left[y0:y1, x0:x1] = 128
    pair.right[y0:y1, x0 - 8 : x1 - 8] = 128
    _, confidence = confidence_of(pair)
    inner = (slice(y0 + 4, y1 - 4), slice(x0 + 4, x1 - 4))
    assert confidence.cues["texture"][inner].max() < 0.05
    assert confidence.values[inner].max() < 0.05
    assert texture(smooth_texture(60, 80), grey_levels=DEFAULTS.texture_grey_levels)[4:-4, 4:-4].mean() > 0.9


def test_left_right_consistency_on_hand_made_maps() -> None:
    height, width = 4, 12
    ones = np.ones((height, width), bool)
    left = DisparityMap(np.full((height, width), 3.0, np.float32), ones)
    agreeing = DisparityMap(np.full((height, width), 3.0, np.float32), ones)
    consistency = left_right_consistency(left, agreeing, tolerance_px=2.0)
    assert consistency.dtype == np.float32
    np.testing.assert_array_equal(consistency[:, 3:], 1.0)
    np.testing.assert_array_equal(consistency[:, :3], 0.0)  # matches fall left of the right view

    right_values = np.full((height, width), 3.0, np.float32)
    right_values[:, 5] = 5.0  # 2 px off: seen from left x = 8
    right_values[:, 6] = 6.5  # 3.5 px off: seen from left x = 9
    right_values[:, 7] = 4.0  # 1 px off: seen from left x = 10, half the tolerance
    right_valid = ones.copy()
    right_valid[:, 8] = False  # no right disparity: seen from left x = 11
    consistency = left_right_consistency(left, DisparityMap(right_values, right_valid), tolerance_px=2.0)
    np.testing.assert_array_equal(consistency[:, 8], 0.0)
    np.testing.assert_array_equal(consistency[:, 9], 0.0)
    np.testing.assert_allclose(consistency[:, 10], 0.5)
    np.testing.assert_array_equal(consistency[:, 11], 0.0)
    np.testing.assert_array_equal(consistency[:, 3:8], 1.0)


def test_left_right_consistency_is_zero_without_a_left_match() -> None:
    valid = np.ones((3, 10), bool)
    valid[1] = False
    left = DisparityMap(np.full((3, 10), 2.0, np.float32), valid)
    right = DisparityMap(np.full((3, 10), 2.0, np.float32), np.ones((3, 10), bool))
    consistency = left_right_consistency(left, right, tolerance_px=1.0)
    np.testing.assert_array_equal(consistency[1], 0.0)
    np.testing.assert_array_equal(consistency[[0, 2], 2:], 1.0)


def test_uniqueness_is_low_on_periodic_texture() -> None:
    height, width, shift_px, period_px = 60, 160, 12, 8
    columns = np.arange(width + shift_px)
    stripes = np.where((columns % period_px) < period_px // 2, 200, 50).astype(np.uint8)
    periodic = np.broadcast_to(stripes[None, :, None], (height, width + shift_px, 3))
    random = smooth_texture(height, width + shift_px, seed=3)
    true_disparity = DisparityMap(np.full((height, width), float(shift_px), np.float32), np.ones((height, width), bool))
    scores = {}
    for name, scene in (("periodic", periodic), ("random", random)):
        right = np.ascontiguousarray(scene[:, shift_px:])
        left = np.ascontiguousarray(scene[:, :width])  # left(x) = right(x - shift_px)
        cue = uniqueness(
            left, right, true_disparity, max_disparity_px=MAX_DISPARITY_PX, margin=DEFAULTS.uniqueness_margin
        )
        scores[name] = float(cue[5:-5, MAX_DISPARITY_PX:-5].mean())
    # The true shift and the shift one period away cost the same on stripes.
    assert scores["periodic"] < 0.1
    assert scores["random"] > 0.8
