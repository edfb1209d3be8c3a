"""Latency of the 3D photo at 640x480: layer cut + background fill + mesh + the first frame, and
each further frame.

The input is scikit-image's Motorcycle (Middlebury 2014, the demo scene) left view with its
ground-truth disparity (unknown pixels left unknown), centre-cropped to 4:3 and resized to 640x480
(disparity scaled with the width). OpenCV runs on ``threads`` threads. After one warm-up run,
every repeat times the whole chain on fresh arrays and renders ``frames`` poses of a circle path
(radius 0.5, layers prepared for that shift).

Steps between the fill and the first frame: ``extra_steps`` — {name: callable(LayeredDepthImage)},
by default :data:`DEFAULT_EXTRA_STEPS` (the mesh, :func:`mesh_from_layers`) — each timed on every
repeat's layers, reported as ``<name>`` (median/p10/p90 ms) and counted in ``first_frame``.
"""

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from sensing.novel_view.layers import cut_layers, layered_depth_from_cut
from sensing.novel_view.mesh import mesh_from_layers
from sensing.novel_view.render import LayerRenderer, camera_path
from sensing.novel_view.types import LayeredDepthImage
from sensing.resources import allocator_setting, host_description

#: Size (W, H) at which the 3D photo is timed.
BENCH_SIZE_WH = (640, 480)
#: Camera path radius (px of parallax per px of disparity) of the timed frames.
BENCH_RADIUS = 0.5
#: Latency targets (ms): cut + fill + extra steps (the mesh) + first frame, and each further frame.
FIRST_FRAME_TARGET_MS = 250.0
FRAME_TARGET_MS = 20.0
#: Steps timed between the fill and the first frame unless the caller names others.
DEFAULT_EXTRA_STEPS: dict[str, Callable[[LayeredDepthImage], Any]] = {"mesh": mesh_from_layers}


def bench_inputs(size_wh: tuple[int, int] = BENCH_SIZE_WH) -> tuple[np.ndarray, np.ndarray]:
    """The Motorcycle left view (H, W, 3) uint8 BGR and its disparity (H, W) float32 px (``inf``
    unknown) at ``size_wh``, centre-cropped to its aspect."""
    from skimage import data

    from sensing.demo_capture import demo_ground_truth

    rgb = data.stereo_motorcycle()[0]
    disparity = demo_ground_truth()
    height, width = disparity.shape
    target_w, target_h = size_wh
    crop_w = min(width, round(height * target_w / target_h))
    crop_h = min(height, round(width * target_h / target_w))
    x0, y0 = (width - crop_w) // 2, (height - crop_h) // 2
    image = cv2.resize(
        np.ascontiguousarray(rgb[y0 : y0 + crop_h, x0 : x0 + crop_w, ::-1]), size_wh, interpolation=cv2.INTER_AREA
    )
    scale = target_w / crop_w
    resized = cv2.resize(disparity[y0 : y0 + crop_h, x0 : x0 + crop_w], size_wh, interpolation=cv2.INTER_NEAREST)
    return image, (resized * scale).astype(np.float32)


def bench_render(
    *,
    repeats: int = 20,
    frames: int = 12,
    threads: int = 2,
    extra_steps: dict[str, Callable[[LayeredDepthImage], Any]] | None = None,
    on_repeat: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Time cut, fill, the extra steps, renderer set-up, the first frame and ``frames - 1`` further
    frames per repeat.

    ``extra_steps`` None times :data:`DEFAULT_EXTRA_STEPS` (the mesh); ``{}`` none.
    Returns JSON-ready results: per step median/p10/p90 ms, ``first_frame`` (cut + fill + extra
    steps + set-up + first frame, per repeat) and ``frame`` (every further frame of every repeat),
    and whether the medians meet :data:`FIRST_FRAME_TARGET_MS` and :data:`FRAME_TARGET_MS`.
    """
    if repeats < 1 or frames < 2:
        raise ValueError(f"need repeats >= 1 and frames >= 2, got {repeats}, {frames}")
    load_before = os.getloadavg()[0]
    image, disparity = bench_inputs()
    poses = camera_path("circle", frames, radius=BENCH_RADIUS)
    extra_steps = DEFAULT_EXTRA_STEPS if extra_steps is None else extra_steps
    times: dict[str, list[float]] = {key: [] for key in ("cut", "fill", "prepare", "first_frame", "frame", *extra_steps)}
    previous_threads = cv2.getNumThreads()
    cv2.setNumThreads(threads)
    try:
        for index in range(-1, repeats):  # -1: warm-up
            run: dict[str, float] = {}
            start = time.perf_counter()
            cut = cut_layers(disparity, max_shift=BENCH_RADIUS)
            run["cut"] = time.perf_counter()
            ldi = layered_depth_from_cut(image, cut)
            run["fill"] = time.perf_counter()
            extra_ms = {}
            for name, step in extra_steps.items():
                begin = time.perf_counter()
                step(ldi)
                extra_ms[name] = 1000.0 * (time.perf_counter() - begin)
            run["extra"] = time.perf_counter()
            renderer = LayerRenderer(ldi)
            run["prepare"] = time.perf_counter()
            renderer.render(poses[0])
            first = time.perf_counter()
            frame_ms = []
            for pose in poses[1:]:
                begin = time.perf_counter()
                renderer.render(pose)
                frame_ms.append(1000.0 * (time.perf_counter() - begin))
            if index < 0:
                continue
            times["cut"].append(1000.0 * (run["cut"] - start))
            times["fill"].append(1000.0 * (run["fill"] - run["cut"]))
            times["prepare"].append(1000.0 * (run["prepare"] - run["extra"]))
            times["first_frame"].append(1000.0 * (first - start))
            times["frame"].extend(frame_ms)
            for name, ms in extra_ms.items():
                times[name].append(ms)
            if on_repeat is not None:
                on_repeat(index)
    finally:
        cv2.setNumThreads(previous_threads)
    results: dict[str, Any] = {
        "input": "scikit-image stereo_motorcycle left view + ground-truth disparity, cropped 4:3",
        "size_wh": list(BENCH_SIZE_WH),
        "layers": len(ldi.layers),
        "band_fraction": round(float((ldi.layers[-1].alpha > 0).mean()) if len(ldi.layers) > 1 else 0.0, 4),
        "radius": BENCH_RADIUS,
        "first_frame_steps": ["cut", "fill", *extra_steps, "prepare", "first frame"],
        "threads": threads,
        "allocator": allocator_setting(),
        "host": host_description(),
        "repeats": repeats,
        "frames_per_repeat": frames,
        "opencv_version": cv2.__version__,
        # Other processes on the machine inflate the timings: the 1-minute load average before and after.
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "cpu_count": os.cpu_count(),
    }
    results |= {key: _summary(values) for key, values in times.items()}
    results["first_frame_target_ms"] = FIRST_FRAME_TARGET_MS
    results["frame_target_ms"] = FRAME_TARGET_MS
    results["first_frame_within_target"] = results["first_frame"]["median_ms"] <= FIRST_FRAME_TARGET_MS
    results["frame_within_target"] = results["frame"]["median_ms"] <= FRAME_TARGET_MS
    return results


def format_render_bench(results: dict[str, Any]) -> str:
    """A short aligned table of :func:`bench_render`'s results."""
    width, height = results["size_wh"]
    extra = [key for key, row in results.items() if isinstance(row, dict) and key not in _LABELS]
    rows = [
        ("cut", _LABELS["cut"]),
        ("fill", _LABELS["fill"]),
        *((key, key) for key in extra),
        ("prepare", _LABELS["prepare"]),
        ("first_frame", " + ".join(["cut", "fill", *extra, "first frame"])),
        ("frame", _LABELS["frame"]),
    ]
    label_width = max(28, 2 + max(len(label) for _, label in rows))
    lines = [
        (
            f"3D photo at {width}x{height}, {results['layers']} layers, {results['threads']} threads, "
            f"{results['repeats']} runs x {results['frames_per_repeat']} frames"
        ),
        f"{'step':<{label_width}}{'median ms':>10}{'p10 ms':>9}{'p90 ms':>9}",
    ]
    for key, label in rows:
        row = results[key]
        lines.append(f"{label:<{label_width}}{row['median_ms']:>10.1f}{row['p10_ms']:>9.1f}{row['p90_ms']:>9.1f}")
    first_ok, frame_ok = (("within" if results[key] else "OVER") for key in ("first_frame_within_target", "frame_within_target"))
    lines.append(
        f"targets: first frame {results['first_frame_target_ms']:.0f} ms ({first_ok}), "
        f"further frame {results['frame_target_ms']:.0f} ms ({frame_ok})"
    )
    return "\n".join(lines)


#: Table labels of the fixed steps (extra steps show under their own names).
_LABELS = {
    "cut": "layer cut",
    "fill": "background fill",
    "prepare": "renderer set-up",
    "first_frame": "cut + fill + first frame",
    "frame": "each further frame",
}


def _summary(times_ms: list[float]) -> dict[str, float]:
    p10, p90 = np.percentile(times_ms, [10, 90])
    return {"median_ms": round(statistics.median(times_ms), 2), "p10_ms": round(float(p10), 2), "p90_ms": round(float(p90), 2)}
