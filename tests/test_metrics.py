"""Disparity metrics on hand-made arrays with known answers."""

import math

import numpy as np
import pytest

from benchmarks.metrics import bad_pixel_rate, density, end_point_error
from sensing.errors import ShapeError

INF = np.inf
GT = np.array([[10.0, 10.0, 10.0], [10.0, 10.0, INF]], dtype=np.float32)
# errors: 0, 1.5, 3, missing, 0.5; the last pixel has no ground truth
PRED = np.array([[10.0, 11.5, 7.0], [INF, 10.5, 3.0]], dtype=np.float32)


def test_bad_pixel_rate_counts_missing_predictions_as_errors() -> None:
    assert bad_pixel_rate(PRED, GT, 1.0) == pytest.approx(3 / 5)
    assert bad_pixel_rate(PRED, GT, 2.0) == pytest.approx(2 / 5)
    assert bad_pixel_rate(PRED, GT, 4.0) == pytest.approx(1 / 5)


def test_end_point_error_averages_predicted_pixels_only() -> None:
    assert end_point_error(PRED, GT) == pytest.approx((0 + 1.5 + 3 + 0.5) / 4)


def test_density_is_fraction_of_evaluated_pixels_predicted() -> None:
    assert density(PRED, GT) == pytest.approx(4 / 5)


def test_evaluated_mask_restricts_pixels() -> None:
    keep = np.array([[True, False, True], [True, False, True]])
    assert bad_pixel_rate(PRED, GT, 2.0, evaluated=keep) == pytest.approx(2 / 3)
    assert end_point_error(PRED, GT, evaluated=keep) == pytest.approx(1.5)
    assert density(PRED, GT, evaluated=keep) == pytest.approx(2 / 3)


def test_nothing_predicted_gives_nan_epe_and_full_error() -> None:
    empty = np.full_like(GT, INF)
    assert math.isnan(end_point_error(empty, GT))
    assert bad_pixel_rate(empty, GT, 2.0) == 1.0
    assert density(empty, GT) == 0.0


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ShapeError):
        bad_pixel_rate(PRED, GT[:, :2], 2.0)
    with pytest.raises(ShapeError):
        end_point_error(PRED, GT, evaluated=np.ones((3, 3), bool))
    with pytest.raises(ShapeError):
        density(PRED[None], GT)
