"""Peak resident memory: measured, rising with a real allocation, resettable on Linux."""

import gc

import numpy as np
import pytest

from sensing.resources import peak_rss_mb, reset_peak_rss

ALLOCATION_MB = 200


def test_peak_rss_is_positive() -> None:
    peak = peak_rss_mb()
    assert isinstance(peak, float)
    assert 1.0 < peak < 1e6


def test_peak_rises_with_a_touched_allocation_and_resets_after_freeing() -> None:
    if not reset_peak_rss():
        pytest.skip("this platform cannot reset the peak RSS (the lifetime peak may hide the allocation)")
    before = peak_rss_mb()
    block = np.ones(ALLOCATION_MB * 2**20 // 8)  # np.ones writes every page
    during = peak_rss_mb()
    assert during - before >= 0.75 * ALLOCATION_MB
    del block
    gc.collect()
    assert reset_peak_rss()
    after = peak_rss_mb()
    assert after < during - 0.75 * ALLOCATION_MB
    assert peak_rss_mb() >= after  # the new window only grows
