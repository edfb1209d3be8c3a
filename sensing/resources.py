"""Process memory: peak resident set size, resettable per stage on Linux.

Linux keeps the peak RSS (``VmHWM``) in ``/proc/self/status`` and resets it when ``5`` is
written to ``/proc/self/clear_refs``; elsewhere the process-lifetime peak from
``getrusage`` is reported, which is an upper bound for each stage.
"""

import resource
import sys
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


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
