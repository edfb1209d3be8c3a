"""Latency of the mono network (:class:`sensing.mono.MonoEstimator`, ONNX Runtime) at 384x288.

The image is the left view of scikit-image's Middlebury Motorcycle pair, centre-cropped to
4:3 and area-resized to :data:`BENCH_SIZE_WH`. After :data:`WARMUP_CALLS` untimed calls, every
repeat times ``predict`` (resize, padding, inference, normalisation, resize back) and the
network alone (``session.run`` on the prepared, padded input) back to back, in alternating
order, so both see the same machine load.
"""

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from sensing.mono import DEFAULT_MONO_WEIGHTS, MonoEstimator
from sensing.resources import allocator_setting, host_description
from sensing.stereo import onnx_session

#: Size (W, H) at which the network is timed, as the issue states the latency target.
BENCH_SIZE_WH = (384, 288)
#: Latency target of ``predict`` (median, ms) on the device's CPU threads.
TARGET_MEDIAN_MS = 50.0
#: Untimed calls of each timed function before the repeats (the first inference allocates).
WARMUP_CALLS = 2

METHODS = ("predict", "network")
LABELS = {"predict": "predict (end to end)", "network": "network only (session.run)"}


def bench_image(size_wh: tuple[int, int] = BENCH_SIZE_WH) -> np.ndarray:
    """The Motorcycle left view centre-cropped to the aspect of ``size_wh`` and resized to it:
    (H, W, 3) uint8 BGR."""
    from skimage import data

    rgb = data.stereo_motorcycle()[0]
    height, width = rgb.shape[:2]
    target_w, target_h = size_wh
    crop_w = min(width, round(height * target_w / target_h))
    crop_h = min(height, round(width * target_h / target_w))
    x0, y0 = (width - crop_w) // 2, (height - crop_h) // 2
    crop = np.ascontiguousarray(rgb[y0 : y0 + crop_h, x0 : x0 + crop_w, ::-1])
    return cv2.resize(crop, size_wh, interpolation=cv2.INTER_AREA)


def bench_mono(
    *,
    weights: str | os.PathLike | None = None,
    repeats: int = 30,
    threads: int = 2,
    image: np.ndarray | None = None,
    on_repeat: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Time ``MonoEstimator.predict`` and the bare network; returns JSON-ready results.

    weights : ONNX file (None: the shipped ``models/weights/mono_glass_v1.onnx``); missing or
        bad weights raise :class:`sensing.errors.ConfigError` before anything is timed
    repeats : timed repeats (each times both once), at least 1
    threads : ONNX Runtime intra-op threads, at least 1
    image : (H, W[, 3]) uint8 image to time (default :func:`bench_image`, 384x288)
    on_repeat : called with the repeat's index after each repeat (progress)
    Returns medians, p10 and p90 in ms of ``predict`` and ``network``, and whether the median
    of ``predict`` meets :data:`TARGET_MEDIAN_MS`.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    weights = str(weights if weights is not None else DEFAULT_MONO_WEIGHTS)
    estimator = MonoEstimator(weights=weights, threads=threads)
    properties = estimator.properties
    image = bench_image() if image is None else image
    feed = {"image": estimator.network_input(image)}
    session = onnx_session(weights, threads, feed["image"].shape[2:])
    calls: dict[str, Callable[[], Any]] = {
        "predict": lambda: estimator.predict(image),
        "network": lambda: session.run(["disparity"], feed),
    }
    for _ in range(WARMUP_CALLS):
        for method in METHODS:
            calls[method]()
    times: dict[str, list[float]] = {method: [] for method in METHODS}
    for index in range(repeats):
        for method in METHODS if index % 2 == 0 else METHODS[::-1]:
            start = time.perf_counter()
            calls[method]()
            times[method].append(1000.0 * (time.perf_counter() - start))
        if on_repeat is not None:
            on_repeat(index)

    import onnxruntime

    results = {method: _summary(times[method]) for method in METHODS}
    return {
        "size_wh": [int(image.shape[1]), int(image.shape[0])],
        "network_input_hw": [int(feed["image"].shape[2]), int(feed["image"].shape[3])],
        "threads": threads,
        "allocator": allocator_setting(),
        "host": host_description(),
        "repeats": repeats,
        "warmup_calls": WARMUP_CALLS,
        "onnxruntime_version": onnxruntime.__version__,
        "weights": weights,
        "onnx_mb": round(os.path.getsize(weights) / 1e6, 3),
        "net_info": properties["info"],
        "predict": results["predict"],
        "network": results["network"],
        "target_median_ms": TARGET_MEDIAN_MS,
        "within_target": results["predict"]["median_ms"] <= TARGET_MEDIAN_MS,
    }


def format_mono_bench(results: dict[str, Any]) -> str:
    """A short aligned table of :func:`bench_mono`'s results."""
    width, height = results["size_wh"]
    in_h, in_w = results["network_input_hw"]
    lines = [
        f"mono network on a {width}x{height} image (network input {in_w}x{in_h}), "
        f"{results['threads']} threads, {results['repeats']} runs",
        f"{'':<28}{'median ms':>10}{'p10 ms':>9}{'p90 ms':>9}",
    ]
    for method in METHODS:
        row = results[method]
        lines.append(f"{LABELS[method]:<28}{row['median_ms']:>10.1f}{row['p10_ms']:>9.1f}{row['p90_ms']:>9.1f}")
    verdict = "within" if results["within_target"] else "OVER"
    lines.append(
        f"target: predict median <= {results['target_median_ms']:.0f} ms ({verdict}); "
        f"{Path(results['weights']).name}, {results['onnx_mb']:.2f} MB, onnxruntime {results['onnxruntime_version']}"
    )
    return "\n".join(lines)


def _summary(times_ms: list[float]) -> dict[str, float]:
    p10, p90 = np.percentile(times_ms, [10, 90])
    return {"median_ms": round(statistics.median(times_ms), 2), "p10_ms": round(float(p10), 2), "p90_ms": round(float(p90), 2)}
