"""Peak resident memory: measured, rising with a real allocation, resettable on Linux; the C
allocator keeping freed blocks for reuse (in a child process: the setting is process-wide)."""

import gc
import os
import platform
import subprocess
import sys

import numpy as np
import pytest

from sensing.resources import host_description, peak_rss_mb, reset_peak_rss

ALLOCATION_MB = 200


def test_host_description_names_the_cpus_this_process_may_use() -> None:
    host = host_description()
    usable = int(host.split(" CPUs usable")[0].rsplit(", ", 1)[1])
    assert 1 <= usable <= (os.cpu_count() or 1)
    assert host.endswith(f"{platform.system()} {platform.machine()}")


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


FAULTS_CODE = """
import resource, numpy as np
from sensing.resources import allocator_setting, keep_freed_memory
def page_faults():
    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        maps = [np.ones((480, 640), np.float32) for _ in range(4)]
        del maps
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start
page_faults()
before = page_faults()
kept = keep_freed_memory()
page_faults()
print(before, page_faults(), kept, allocator_setting())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="keep_freed_memory tunes glibc's malloc only")
def test_kept_freed_memory_is_reused_without_page_faults() -> None:
    """Four 640x480 float32 maps made and freed ten times: 1.2 MB each, so glibc maps fresh pages
    for them every time by default (about 3000 page faults per round), and none once kept."""
    result = subprocess.run([sys.executable, "-c", FAULTS_CODE], capture_output=True, text=True, check=True)
    before, after, kept, description = result.stdout.split(maxsplit=3)
    assert kept == "True" and "mmap threshold 32 MiB" in description
    assert int(before) > 10 * 4 * 200  # most of the 300 pages of each map faulted in again
    assert int(after) < 50
