"""Matcher registry, disparity range rounding, and SGBM on a pair with known disparity."""

import numpy as np
import pytest
from synthetic import FOREGROUND_RECT_XYXY, LayeredPair, make_layered_pair, matchable_mask

from sensing.errors import ConfigError, ShapeError
from sensing.stereo import MATCHERS, SgbmMatcher, build_matcher, network_input, right_disparity, round_up_disparities

#: Search range used on the synthetic pair (disparities 8 and 20 px).
MAX_DISPARITY_PX = 32
#: The left border strip that an unpadded SGBM cannot match (x < numDisparities).
BORDER_PX = 20


@pytest.fixture(scope="module")
def pair() -> LayeredPair:
    return make_layered_pair()


def test_build_matcher_by_name_returns_configured_sgbm() -> None:
    matcher = build_matcher("sgbm", block_size=7, pad_left=False)
    assert isinstance(matcher, SgbmMatcher)
    assert matcher.name == "sgbm"
    assert (matcher.block_size, matcher.pad_left) == (7, False)


def test_unknown_matcher_lists_the_available_ones() -> None:
    with pytest.raises(ConfigError, match="unknown stereo method 'nope'") as caught:
        build_matcher("nope")
    for name in MATCHERS:
        assert repr(name) in str(caught.value)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"no_such_option": 1}, "bad parameters for stereo method 'sgbm'"),
        ({"block_size": 4}, "block_size must be a positive odd number"),
        ({"block_size": 0}, "block_size must be a positive odd number"),
        ({"mode": "fast"}, "sgbm mode must be one of"),
    ],
)
def test_bad_matcher_parameters_raise_config_error(params: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_matcher("sgbm", **params)


@pytest.mark.parametrize(
    "requested, expected", [(0, 16), (1, 16), (16, 16), (16.01, 32), (51.4, 64), (64, 64), (190, 192)]
)
def test_round_up_disparities_to_multiple_of_16(requested: float, expected: int) -> None:
    assert round_up_disparities(requested) == expected


def test_sgbm_recovers_known_disparity(pair: LayeredPair) -> None:
    disparity = build_matcher("sgbm").match(pair.left, pair.right, max_disparity_px=MAX_DISPARITY_PX)
    assert disparity.size_hw == pair.disparity.shape
    assert disparity.values_px.dtype == np.float32
    assert np.all(np.isinf(disparity.values_px[~disparity.valid]))
    evaluated = matchable_mask(pair)
    correct = disparity.valid & (np.abs(disparity.values_px - pair.disparity) <= 2.0)
    bad_2 = 1.0 - correct[evaluated].mean()
    assert bad_2 < 0.05
    # Both layers are found, not just the dominant background.
    foreground = evaluated & (pair.disparity == 20)
    assert np.median(disparity.values_px[foreground & disparity.valid]) == pytest.approx(20.0, abs=0.25)


def test_padding_gives_the_left_border_strip_disparities(pair: LayeredPair) -> None:
    strip = np.zeros(pair.disparity.shape, bool)
    strip[:, :BORDER_PX] = True
    strip &= matchable_mask(pair)  # x >= 8: the match lies inside the right view
    padded = SgbmMatcher(pad_left=True).match(pair.left, pair.right, max_disparity_px=MAX_DISPARITY_PX)
    unpadded = SgbmMatcher(pad_left=False).match(pair.left, pair.right, max_disparity_px=MAX_DISPARITY_PX)
    assert padded.valid[strip].mean() > 0.95
    assert np.abs(padded.values_px[strip & padded.valid] - pair.disparity[strip & padded.valid]).max() <= 1.0
    assert not unpadded.valid[:, :BORDER_PX].any()
    # Away from the border both agree: padding only adds the strip.
    assert unpadded.valid[:, MAX_DISPARITY_PX:].mean() > 0.9


def test_right_disparity_is_positive_at_the_right_view_positions(pair: LayeredPair) -> None:
    x0, y0, x1, y1 = FOREGROUND_RECT_XYXY
    right = right_disparity(build_matcher("sgbm"), pair.left, pair.right, max_disparity_px=MAX_DISPARITY_PX)
    assert right.size_hw == pair.disparity.shape
    assert np.all(right.values_px[right.valid] >= 0)
    # The rectangle sits 20 px further left in the right view.
    inner = (slice(y0 + 5, y1 - 5), slice(x0 - 20 + 5, x1 - 20 - 5))
    assert right.valid[inner].mean() > 0.95
    assert np.median(right.values_px[inner][right.valid[inner]]) == pytest.approx(20.0, abs=0.25)
    # Right of it, past the band only the right camera sees, the background is at 8 px.
    background = (slice(y0 + 5, y1 - 5), slice(x1 - 8 + 5, x1 + 20))
    assert np.median(right.values_px[background][right.valid[background]]) == pytest.approx(8.0, abs=0.25)


@pytest.mark.parametrize(
    "make_right",
    [
        lambda left: left[:, :-1],
        lambda left: left.astype(np.uint16),
    ],
    ids=["different-shape", "different-dtype"],
)
def test_mismatched_or_malformed_views_raise_shape_error(pair: LayeredPair, make_right) -> None:
    with pytest.raises(ShapeError):
        build_matcher("sgbm").match(pair.left, make_right(pair.left), max_disparity_px=MAX_DISPARITY_PX)


def test_two_channel_pair_raises_shape_error(pair: LayeredPair) -> None:
    left = np.ascontiguousarray(pair.left[:, :, :2])
    with pytest.raises(ShapeError, match="3 channels"):
        build_matcher("sgbm").match(left, left.copy(), max_disparity_px=MAX_DISPARITY_PX)


def test_uint16_pair_raises_shape_error(pair: LayeredPair) -> None:
    left, right = (image.astype(np.uint16) * 257 for image in (pair.left, pair.right))
    with pytest.raises(ShapeError, match="uint8"):
        build_matcher("sgbm").match(left, right, max_disparity_px=MAX_DISPARITY_PX)


def test_network_input_is_a_contiguous_float_nchw_copy() -> None:
    image = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    tensor = network_input(image)
    assert tensor.shape == (1, 3, 5, 7) and tensor.dtype == np.float32
    assert tensor.flags["C_CONTIGUOUS"]
    assert np.array_equal(tensor[0, 2], image[:, :, 2].astype(np.float32))
    as_bytes = network_input(image, np.uint8)
    assert as_bytes.dtype == np.uint8 and as_bytes.flags["C_CONTIGUOUS"] and np.array_equal(as_bytes, tensor)
