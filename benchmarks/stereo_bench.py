"""Latency of the stereo network (``NetMatcher``, ONNX Runtime) against plain SGBM-3way at 640x480.

The pair is the 640x480 bench capture (:func:`benchmarks.process_bench.default_bench_capture`)
through the pipeline's ``preprocess`` and ``rectify`` stages, resized back to 640x480 (the
rectification crops to the area both views see), with the pipeline's search range. After two warm-up calls of each, every
repeat times the net's disparity (with the runtime's fills, by default of the out-of-view band
and the occluded pixels), the net's disparity + confidence path, plain OpenCV SGBM-3way
(:func:`benchmarks.stereo_parity.plain_sgbm`), and on their own the two background fills of
:mod:`sensing.visibility` on the network's raw output (both in the net's time already by
default), back to back, in a rotating order, so all see the same
machine load. OpenCV and ONNX Runtime get the same number of threads. With ``baseline_weights``,
a second export (e.g. the same weights before a graph change) is timed in the same rotation, with
the same settings, so the two exports are compared call by call rather than run by run.
"""

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from benchmarks.process_bench import default_bench_capture
from benchmarks.stereo_parity import plain_sgbm
from calibration.rectify import Rectifier
from sensing.config import PipelineConfig
from sensing.pipeline import rectify_online, search_range_px
from sensing.preprocess import preprocess_capture
from sensing.resources import allocator_setting, host_description
from sensing.stereo import DEFAULT_NET_WEIGHTS, NetMatcher, net_working_scale
from sensing.types import RectifiedPair, StereoCapture
from sensing.visibility import fill_occluded, fill_out_of_view

#: Untimed calls of each method before the timed repeats.
WARMUP_CALLS = 2

#: Timed methods, in the order of the first repeat.
METHODS = ("net", "net_confidence", "sgbm", "fill_out_of_view", "fill_occluded")
LABELS = {
    "net": "net (disparity)",
    "baseline_net": "baseline net",
    "net_confidence": "net + confidence",
    "sgbm": "plain SGBM-3way",
    "fill_out_of_view": "  out-of-view fill",
    "fill_occluded": "  occlusion fill",
}


def timed_methods(with_baseline: bool) -> tuple[str, ...]:
    """:data:`METHODS`, with ``baseline_net`` after ``net`` when a baseline export is timed."""
    return ("net", "baseline_net", *METHODS[1:]) if with_baseline else METHODS


#: Size (W, H) at which the matchers are timed, as the issue states the latency target.
BENCH_SIZE_WH = (640, 480)


def rectified_bench_pair(
    capture: StereoCapture | None = None, config: PipelineConfig | None = None
) -> tuple[RectifiedPair, int]:
    """The pipeline's rectified pair of ``capture`` (default: the 640x480 bench capture),
    resized to exactly :data:`BENCH_SIZE_WH` (rectification crops to the region both views
    see), and the pipeline's disparity search range for it (capped as the pipeline caps it)."""
    capture = capture if capture is not None else default_bench_capture()
    config = config or PipelineConfig()
    prepared = preprocess_capture(
        capture, long_side_px=config.preprocess.long_side_px, photometric=config.preprocess.photometric
    )
    rectified, _ = rectify_online(prepared, config, Rectifier())
    scale = BENCH_SIZE_WH[0] / rectified.size_hw[1]
    resized = replace(
        rectified,
        left=cv2.resize(rectified.left, BENCH_SIZE_WH, interpolation=cv2.INTER_LINEAR),
        right=cv2.resize(rectified.right, BENCH_SIZE_WH, interpolation=cv2.INTER_LINEAR),
        focal_px=rectified.focal_px * scale,
    )
    return resized, search_range_px(resized, config)


def _summary(times_ms: list[float]) -> dict[str, float]:
    p10, p90 = np.percentile(times_ms, [10, 90])
    return {
        "median_ms": round(statistics.median(times_ms), 2),
        "p10_ms": round(float(p10), 2),
        "p90_ms": round(float(p90), 2),
    }


def bench_stereo(
    *,
    weights: str | None,
    repeats: int,
    threads: int,
    net_params: dict[str, Any] | None = None,
    capture: StereoCapture | None = None,
    config: PipelineConfig | None = None,
    on_repeat: Callable[[int], None] | None = None,
    baseline_weights: str | None = None,
) -> dict[str, Any]:
    """Time the net and plain SGBM-3way on the same rectified pair; returns JSON-ready results.

    weights : ONNX file of the net (None: the shipped :data:`sensing.stereo.DEFAULT_NET_WEIGHTS`);
        a missing file raises :class:`sensing.errors.ConfigError` before anything is timed
    repeats : timed repeats (each times every method once), at least 1
    threads : CPU threads of both ONNX Runtime and OpenCV
    net_params : the net's other settings (:class:`sensing.stereo.NetMatcher` fields such as
        ``scales`` or ``fill_occluded``; default: its defaults)
    capture, config : the capture (default: the 640x480 bench capture) and the pipeline
        settings of its preprocess, rectify and search range (default: the defaults)
    baseline_weights : another ONNX file to time as ``baseline_net`` (disparity, the same
        settings as the net) in the same rotation; adds ``net_to_baseline_ratio``
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    weights = str(weights) if weights is not None else str(DEFAULT_NET_WEIGHTS)
    net = NetMatcher(weights=weights, threads=threads, **(net_params or {}))
    baseline = None if baseline_weights is None else replace(net, weights=str(baseline_weights))
    properties = net.properties
    import onnxruntime

    capture = capture if capture is not None else default_bench_capture()
    rectified, max_disparity = rectified_bench_pair(capture, config)
    left, right = rectified.left, rectified.right
    raw = replace(net, fill_out_of_view=False, fill_occluded=False).match(left, right, max_disparity_px=max_disparity).values_px
    calls: dict[str, Callable[[], Any]] = {
        "net": lambda: net.match(left, right, max_disparity_px=max_disparity),
        "net_confidence": lambda: net.match_with_confidence(left, right, max_disparity_px=max_disparity),
        "sgbm": lambda: plain_sgbm(left, right, max_disparity),
        "fill_out_of_view": lambda: fill_out_of_view(raw),
        "fill_occluded": lambda: fill_occluded(raw),
    }
    methods = timed_methods(baseline is not None)
    if baseline is not None:
        calls["baseline_net"] = lambda: baseline.match(left, right, max_disparity_px=max_disparity)
    previous_threads = cv2.getNumThreads()
    cv2.setNumThreads(threads)
    try:
        for _ in range(WARMUP_CALLS):
            for method in methods:
                calls[method]()
        times: dict[str, list[float]] = {method: [] for method in methods}
        for index in range(repeats):
            shift = index % len(methods)
            for method in methods[shift:] + methods[:shift]:
                start = time.perf_counter()
                calls[method]()
                times[method].append((time.perf_counter() - start) * 1000.0)
            if on_repeat is not None:
                on_repeat(index)
    finally:
        cv2.setNumThreads(previous_threads)

    results = {method: _summary(times[method]) for method in methods}
    sgbm_median = statistics.median(times["sgbm"])
    height, width = left.shape[:2]
    net_scale = net_working_scale(max_disparity, properties["max_disparity_px"])
    comparison = {}
    if baseline is not None:
        comparison = {
            "baseline_weights": baseline.weights,
            "baseline_net": results["baseline_net"],
            "net_to_baseline_ratio": round(statistics.median(times["net"]) / statistics.median(times["baseline_net"]), 3),
        }
    return {
        "capture": capture.source,
        "input_size_wh": [int(capture.left.shape[1]), int(capture.left.shape[0])],
        "size_wh": [int(width), int(height)],
        "max_disparity_px": int(max_disparity),
        "threads": threads,
        "allocator": allocator_setting(),
        "host": host_description(),
        "repeats": repeats,
        "warmup_calls": WARMUP_CALLS,
        "onnxruntime_version": onnxruntime.__version__,
        "opencv_version": cv2.__version__,
        "weights": weights,
        "onnx_mb": round(os.path.getsize(weights) / 1e6, 3),
        "net_max_disparity_px": properties["max_disparity_px"],
        "net_stride": properties["stride"],
        "net_input_scale": round(net_scale, 4),
        "net_session": "fixed to the input size (sensing.stereo.onnx_session input_hw)",
        "net_info": properties["info"],
        "net": results["net"],
        "net_confidence": results["net_confidence"],
        "net_fills": {"fill_out_of_view": net.fill_out_of_view, "fill_occluded": net.fill_occluded},
        "net_scales": list(net.scales),
        "fill_out_of_view": results["fill_out_of_view"],
        "fill_occluded": results["fill_occluded"],
        "sgbm": {"name": "plain OpenCV SGBM-3way (benchmarks.stereo_parity.plain_sgbm)", **results["sgbm"]},
        "net_to_sgbm_ratio": round(statistics.median(times["net"]) / sgbm_median, 3),
        "net_confidence_to_sgbm_ratio": round(statistics.median(times["net_confidence"]) / sgbm_median, 3),
        **comparison,
    }


def format_stereo_bench(results: dict[str, Any]) -> str:
    """A short aligned table of :func:`bench_stereo`'s results."""
    width, height = results["size_wh"]
    in_w, in_h = results["input_size_wh"]
    lines = [
        (
            f"stereo on the rectified {width}x{height} pair of a {in_w}x{in_h} capture, "
            f"{results['max_disparity_px']} px search range, {results['threads']} threads, {results['repeats']} runs"
        ),
        f"{'method':<20}{'median ms':>10}{'p10 ms':>9}{'p90 ms':>9}",
    ]
    for method in timed_methods("baseline_net" in results):
        row = results[method]
        lines.append(f"{LABELS[method]:<20}{row['median_ms']:>10.1f}{row['p10_ms']:>9.1f}{row['p90_ms']:>9.1f}")
    scale = results["net_input_scale"]
    resized = f"; views resized x{scale:.3f}" if scale != 1.0 else "; full resolution"
    if results["net_scales"] != [1.0]:
        resized += f"; runs at scales {', '.join(f'{s:g}' for s in results['net_scales'])}"
    lines.append(
        f"net / SGBM (medians) = {results['net_to_sgbm_ratio']:.2f} "
        f"(with confidence {results['net_confidence_to_sgbm_ratio']:.2f})"
    )
    if "baseline_net" in results:
        lines.append(f"net / baseline net (medians) = {results['net_to_baseline_ratio']:.3f} (baseline: {results['baseline_weights']})")
    lines.append(
        f"net: {Path(results['weights']).name}, {results['onnx_mb']:.2f} MB, largest disparity "
        f"{results['net_max_disparity_px']:.0f} px{resized}; onnxruntime {results['onnxruntime_version']}, "
        f"OpenCV {results['opencv_version']}"
    )
    lines.append(f"host: {results['host']}")
    return "\n".join(lines)
