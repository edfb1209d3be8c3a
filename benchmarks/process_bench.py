"""Latency and memory of ``process`` at 640x480, per stage, against the device budgets.

The capture is the demo scene (Motorcycle with simulated distortion and exposure
difference) cropped to 4:3 and resized to 640x480, unless another capture is given. The
pipeline runs once to warm up (rectification maps are then cached, as in a running
device), then ``repeats`` times; plain OpenCV SGBM-3way on the same rectified pair is
timed in the same run as the reference.
"""

import logging
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from benchmarks.stereo_parity import plain_sgbm
from calibration.rectify import Rectifier
from sensing.capture import load_capture
from sensing.config import PipelineConfig, config_to_dict, load_device_profile
from sensing.demo_capture import build_demo_capture
from sensing.pipeline import STAGES, run_pipeline
from sensing.resources import allocator_setting, host_description, peak_rss_mb
from sensing.stereo import build_matcher
from sensing.types import StereoCapture

log = logging.getLogger(__name__)

BENCH_SIZE_WH = (640, 480)


def resize_capture(capture: StereoCapture, size_wh: tuple[int, int]) -> StereoCapture:
    """Centre-crop both views to the aspect of ``size_wh`` and resize them, adjusting intrinsics."""
    height, width = capture.left.shape[:2]
    target_w, target_h = size_wh
    crop_w = min(width, int(round(height * target_w / target_h)))
    crop_h = min(height, int(round(width * target_h / target_w)))
    x0, y0 = (width - crop_w) // 2, (height - crop_h) // 2
    scale = target_w / crop_w
    images = [
        cv2.resize(image[y0 : y0 + crop_h, x0 : x0 + crop_w], size_wh, interpolation=cv2.INTER_AREA)
        for image in (capture.left, capture.right)
    ]
    cameras = [
        replace(camera, width=crop_w, height=crop_h, cx=camera.cx - x0, cy=camera.cy - y0).scaled(scale)
        for camera in (capture.calibration.left, capture.calibration.right)
    ]
    cameras = [replace(camera, width=target_w, height=target_h) for camera in cameras]
    calibration = replace(capture.calibration, left=cameras[0], right=cameras[1])
    calibration.validate()
    return StereoCapture(images[0], images[1], calibration, capture.meta, f"{capture.source} resized to {target_w}x{target_h}")


def default_bench_capture() -> StereoCapture:
    """The demo capture at 640x480, read from files written by a child process.

    Building the demo capture loads scikit-image's io and colour modules, and with them
    scipy.linalg: about 38 MB of resident memory that a device, which reads its captures from
    files, never holds. Built here, they would count in every stage's peak memory.
    """
    with tempfile.TemporaryDirectory() as folder:
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as child:
            capture_dir = child.submit(build_demo_capture, Path(folder)).result()
        capture = load_capture(capture_dir)
    return resize_capture(capture, BENCH_SIZE_WH)


def bench_process(
    capture: StereoCapture,
    *,
    config: PipelineConfig | None = None,
    repeats: int = 20,
    on_repeat: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Time the pipeline and the plain-SGBM reference; returns the JSON-ready results."""
    config = config or PipelineConfig()
    profile = load_device_profile(config.device)
    rectifier = Rectifier()
    matcher = build_matcher(config.stereo.method, **config.stereo.params)
    warm = run_pipeline(capture, config, profile=profile, rectifier=rectifier, matcher=matcher)
    if not warm.ok:
        raise RuntimeError(f"the benchmark capture does not run through the pipeline: {warm.reasons}")
    # Only what the reference needs outlives the warm-up run (a whole result would count in the repeats' peak memory).
    rectified = warm.rectified.left, warm.rectified.right
    max_disparity = warm.details["stereo"]["max_disparity_px"]
    processing_size_wh = warm.details["rectification"]["size_wh"]
    del warm
    runs = []  # (stage records, total ms) only, for the same reason
    for index in range(repeats):
        run = run_pipeline(capture, config, profile=profile, rectifier=rectifier, matcher=matcher)
        runs.append((run.stages, run.total_ms))
        del run
        if on_repeat is not None:
            on_repeat(index)
    reference_ms = []
    for _ in range(repeats):
        start = time.perf_counter()
        plain_sgbm(*rectified, max_disparity)
        reference_ms.append((time.perf_counter() - start) * 1000.0)

    stages = {}
    for name in STAGES:
        times = [record.ms for stages_run, _ in runs for record in stages_run if record.name == name]
        peaks = [record.peak_rss_mb for stages_run, _ in runs for record in stages_run if record.name == name]
        budget = profile.stage_ms.get(name)
        median = statistics.median(times)
        stages[name] = {
            "median_ms": round(median, 2),
            "p90_ms": round(float(np.percentile(times, 90)), 2),
            "budget_ms": budget,
            "within_budget": None if budget is None else median <= budget,
            "peak_rss_mb": round(max(peaks), 1),
        }
    totals = [total for _, total in runs]
    total_median = statistics.median(totals)
    reference_median = statistics.median(reference_ms)
    peak = max(s["peak_rss_mb"] for s in stages.values())
    return {
        "capture": capture.source,
        "input_size_wh": [int(capture.left.shape[1]), int(capture.left.shape[0])],
        "processing_size_wh": processing_size_wh,
        "max_disparity_px": max_disparity,
        "device_profile": profile.name,
        "threads": profile.threads,
        "allocator": allocator_setting(),
        "host": host_description(),
        "repeats": repeats,
        "stages": stages,
        "total": {
            "median_ms": round(total_median, 2),
            "p90_ms": round(float(np.percentile(totals, 90)), 2),
            "budget_ms": profile.total_ms,
            "within_budget": total_median <= profile.total_ms,
        },
        "peak_rss_mb": {"max": round(peak, 1), "budget_mb": profile.peak_rss_mb, "within_budget": peak <= profile.peak_rss_mb},
        "process_peak_rss_mb": round(peak_rss_mb(), 1),
        "reference": {
            "name": "plain OpenCV SGBM-3way on the same rectified pair",
            "median_ms": round(reference_median, 2),
            "pipeline_to_reference_ratio": round(total_median / reference_median, 2),
        },
        "config": config_to_dict(config),
    }


def format_bench(results: dict[str, Any]) -> str:
    """A short table of the benchmark results."""
    lines = [
        f"process on {results['input_size_wh'][0]}x{results['input_size_wh'][1]} "
        f"(processing {results['processing_size_wh'][0]}x{results['processing_size_wh'][1]}, "
        f"{results['max_disparity_px']} disparities), profile {results['device_profile']}, "
        f"{results['threads']} threads, {results['repeats']} runs",
        f"{'stage':<12}{'median ms':>10}{'p90 ms':>9}{'budget':>9}{'peak MB':>9}  verdict",
    ]
    rows = list(results["stages"].items()) + [("total", results["total"])]
    for name, row in rows:
        verdict = {True: "within", False: "OVER", None: "-"}[row["within_budget"]]
        peak = f"{row['peak_rss_mb']:>9.1f}" if "peak_rss_mb" in row else f"{'':>9}"
        lines.append(f"{name:<12}{row['median_ms']:>10.1f}{row['p90_ms']:>9.1f}{row['budget_ms']:>9.0f}{peak}  {verdict}")
    memory = results["peak_rss_mb"]
    reference = results["reference"]
    lines.append(
        f"peak RSS {memory['max']:.1f} MB (budget {memory['budget_mb']:.0f} MB: "
        f"{'within' if memory['within_budget'] else 'OVER'})"
    )
    lines.append(
        f"reference: {reference['name']}: {reference['median_ms']:.1f} ms; pipeline / reference = "
        f"{reference['pipeline_to_reference_ratio']:.2f}"
    )
    return "\n".join(lines)
