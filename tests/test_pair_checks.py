"""Pair sanity checks: black, saturated, identical and swapped views stop with a clear reason."""

import numpy as np
import pytest
from synthetic import LayeredPair, make_layered_pair

from sensing.errors import StageError
from calibration.online import match_features, to_grey
from sensing.pair_checks import check_distinct, check_exposure, check_not_swapped


@pytest.fixture(scope="module")
def pair() -> LayeredPair:
    return make_layered_pair()


@pytest.mark.parametrize("side", ["left", "right"])
def test_black_view_raises_naming_the_view(pair: LayeredPair, side: str) -> None:
    dark = np.random.default_rng(1).integers(0, 10, pair.left.shape, dtype=np.uint8)  # all below 10
    views = {"left": pair.left, "right": pair.right, side: dark}
    with pytest.raises(StageError, match=f"the {side} view is black"):
        check_exposure(views["left"], views["right"])


@pytest.mark.parametrize("side", ["left", "right"])
def test_saturated_view_raises_naming_the_view(pair: LayeredPair, side: str) -> None:
    bright = np.random.default_rng(2).integers(246, 256, pair.left.shape, dtype=np.uint8)
    views = {"left": pair.left, "right": pair.right, side: bright}
    with pytest.raises(StageError, match=f"the {side} view is saturated"):
        check_exposure(views["left"], views["right"])


def test_dim_but_textured_view_passes_exposure_check(pair: LayeredPair) -> None:
    dim = (pair.left // 8).astype(np.uint8)  # grey levels 0..31: dark, not black
    check_exposure(dim, pair.right)
    check_exposure(pair.left, pair.right)


def test_identical_views_raise(pair: LayeredPair) -> None:
    with pytest.raises(StageError, match="identical"):
        check_distinct(pair.left, pair.left.copy())


def test_slightly_different_views_pass(pair: LayeredPair) -> None:
    noise = np.random.default_rng(3).normal(0.0, 3.0, pair.left.shape)
    noisy = np.clip(pair.left + noise, 0, 255).astype(np.uint8)
    check_distinct(pair.left, noisy)


def test_views_of_different_sizes_are_not_identical(pair: LayeredPair) -> None:
    # A rig whose right sensor has twice the resolution: not a copied frame, and no crash.
    check_distinct(pair.left, np.repeat(np.repeat(pair.left, 2, axis=0), 2, axis=1))


def _row_aligned_disparities(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    matches = match_features(to_grey(left), to_grey(right))
    same_row = np.abs(matches.left_px[:, 1] - matches.right_px[:, 1]) <= 2.0
    return matches.left_px[same_row, 0] - matches.right_px[same_row, 0]


def test_swapped_views_raise_and_correct_order_passes(pair: LayeredPair) -> None:
    offsets = _row_aligned_disparities(pair.left, pair.right)
    assert offsets.size >= 20
    assert np.median(offsets) == pytest.approx(8.0, abs=1.0)  # the background's disparity
    check_not_swapped(offsets)
    with pytest.raises(StageError, match="swapped"):
        check_not_swapped(_row_aligned_disparities(pair.right, pair.left))


def test_too_few_matches_are_not_called_swapped() -> None:
    check_not_swapped(np.full(10, -5.0))  # below the 20 matches needed to judge
    check_not_swapped(np.zeros(0))
