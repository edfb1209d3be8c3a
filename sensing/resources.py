"""Process memory: peak resident set size, resettable per stage on Linux, and the C allocator's
reuse of freed blocks.

Linux keeps the peak RSS (``VmHWM``) in ``/proc/self/status`` and resets it when ``5`` is
written to ``/proc/self/clear_refs``; elsewhere the process-lifetime peak from
``getrusage`` is reported, which is an upper bound for each stage.
"""

import ctypes
import os
import platform
import resource
import sys
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CPUINFO = Path("/proc/cpuinfo")
_CLEAR_REFS = Path("/proc/self/clear_refs")
#: ``mallopt`` parameter numbers of glibc's malloc.h.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_allocator_setting = "the C library's defaults"


def reset_peak_rss() -> bool:
    """Start a new peak-RSS window; False where the platform cannot (peaks then accumulate)."""
    try:
        _CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak resident set size in MiB since the last :func:`reset_peak_rss` (or process start)."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024.0


def keep_freed_memory(mmap_threshold_mb: int = 32, trim_threshold_mb: int = 64) -> bool:
    """Make glibc's malloc keep freed blocks for reuse instead of handing them back to the kernel.

    By default glibc serves a large request (a few 100 kB up, e.g. a 640x480 float32 map) with a
    fresh ``mmap`` and unmaps it when freed, and trims its heap when the free space at its top
    passes a dynamic threshold; either way the next array of that size is new memory, and the
    kernel zero-fills it one 4 kB page fault at a time. The pipeline makes many such arrays per
    capture. Fixing the thresholds (requests up to ``mmap_threshold_mb`` MiB come from the heap;
    it is trimmed only when ``trim_threshold_mb`` MiB lie free at its top) removes those faults:
    at 640x480, per call, 1111 for plain SGBM-3way, 139 for the stereo network with its band
    fill and 880 for the occlusion fill by default, none with the thresholds fixed (ad-hoc). In
    a busy hour, three runs each alternated with and without (benchmarks/results/process_runs/
    and bench_stereo_runs/malloc_keep_*): the fusion stage 17.1-18.9 against 19.3-22.6 ms, the
    occlusion fill 5.2-6.0 against 7.6-7.9 ms; the whole pipeline and the network alone moved
    within the machine's noise, and the peak RSS did not move (net pipeline 221.1-221.4 against
    220.9-221.3 MB). Freed blocks stay in the process, so its RSS falls less after a peak.

    Process-wide, so the command line calls it and a library does not; returns False (and
    changes nothing) where the C library is not glibc.
    """
    global _allocator_setting
    if platform.libc_ver()[0] != "glibc":
        return False
    mallopt = ctypes.CDLL(None).mallopt
    if not (mallopt(_M_MMAP_THRESHOLD, mmap_threshold_mb << 20) and mallopt(_M_TRIM_THRESHOLD, trim_threshold_mb << 20)):
        return False
    _allocator_setting = f"glibc malloc: mmap threshold {mmap_threshold_mb} MiB, trim threshold {trim_threshold_mb} MiB"
    return True


def allocator_setting() -> str:
    """The C allocator's setting in this process, for benchmark records: what
    :func:`keep_freed_memory` set, or "the C library's defaults"."""
    return _allocator_setting


def host_description() -> str:
    """The machine a benchmark ran on, for its record: CPU model, the logical CPUs this process
    may use and the platform, e.g. "AMD EPYC, 2 CPUs usable, Linux x86_64". Latencies measured
    on different hosts (or by different sessions on shared ones) are not comparable."""
    model = platform.processor() or "unknown CPU"
    try:
        for line in _CPUINFO.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model}, {usable} CPUs usable, {platform.system()} {platform.machine()}"
