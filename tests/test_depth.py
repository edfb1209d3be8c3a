"""Metric depth from disparity and its 16-bit millimetre encoding."""

import numpy as np
import pytest

from sensing.depth import depth_from_disparity, depth_to_millimetres
from sensing.types import DepthMap, DisparityMap


def test_depth_is_focal_times_baseline_over_disparity() -> None:
    values = np.array([[8.0, 20.0, 0.5], [100.0, 2.5, 64.0]], np.float32)
    depth = depth_from_disparity(DisparityMap(values, np.ones(values.shape, bool)), focal_px=300.0, baseline_m=0.06)
    assert depth.depth_m.dtype == np.float32
    assert depth.valid.all()
    np.testing.assert_allclose(depth.depth_m, 18.0 / values, rtol=1e-6)
    assert depth.depth_m[0, 0] == pytest.approx(2.25)


def test_invalid_zero_and_negative_disparities_have_no_depth() -> None:
    values = np.array([[10.0, 0.0, -3.0, 5e-4, 10.0]], np.float32)
    valid = np.array([[True, True, True, True, False]])
    depth = depth_from_disparity(DisparityMap(values, valid), focal_px=500.0, baseline_m=0.1)
    np.testing.assert_array_equal(depth.valid, [[True, False, False, False, False]])
    assert depth.depth_m[0, 0] == pytest.approx(5.0)
    assert np.all(np.isposinf(depth.depth_m[0, 1:]))


def test_millimetres_round_clip_and_mark_unknown_as_zero() -> None:
    metres = np.array([[1.2346, 2.0, 0.0001, 70.0, np.inf, 3.0]], np.float32)
    valid = np.array([[True, True, True, True, False, False]])
    millimetres = depth_to_millimetres(DepthMap(metres, valid))
    assert millimetres.dtype == np.uint16
    # 0.1 mm is known depth: at least 1 so it is not read back as "unknown".
    np.testing.assert_array_equal(millimetres, [[1235, 2000, 1, 65535, 0, 0]])


def test_millimetres_round_trip_through_depth_from_disparity() -> None:
    disparity = DisparityMap(np.array([[18.0, 0.0]], np.float32), np.array([[True, True]]))
    depth = depth_from_disparity(disparity, focal_px=300.0, baseline_m=0.06)
    np.testing.assert_array_equal(depth_to_millimetres(depth), [[1000, 0]])
