"""Online rectification benchmark: simulated drift on the shared scenes, negative cases, a real
imperfect pair, and the stage time at 640x480.

Every rectified scene of ``<root>/stereo`` becomes a capture of an ideal pinhole rig
(:meth:`benchmarks.datasets.StereoScene.capture`) processed at its own resolution. Each is
drifted per axis (pitch, yaw, roll at 0.05, 0.2, 0.5, 1 and 2 degrees, random sign) and in
random directions (0.05 to 2 degrees), and run through the pipeline's ``preprocess`` and
``rectify`` stages.

Truth. The published pairs are not perfectly rectified themselves (MiddEval3 states a mean
vertical error of 0.23 px for Motorcycle; KITTI's pairs are off by about 0.3 px), so the
estimator's answer on the undrifted scene (the *reference*) is part of the truth for pitch
and roll: the error is that of ``R_est`` against ``R_truth · R_ref``. Yaw is scored twice:
against the simulated yaw alone (the ground-truth disparity defines the scene's yaw as zero)
and against ``R_truth · R_ref`` like the other axes. Only estimates reported as observed
count for yaw.

Residual vertical disparity is given twice: as measured (median |dy| of the inlier matches
after correction, so it includes feature noise), and geometric (median over a grid of the
image of the vertical offset between the applied correction and the true one).

SGBM bad-2 (errors over 2 px against the ground truth) on the corrected pair, the drifted
pair left uncorrected (None where the factory rectification alone stops the pipeline, e.g. a
toe-in that looks like swapped views), and the clean pair, with the same matcher and range.
"""

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from benchmarks.datasets import StereoScene, default_data_root, list_stereo_scenes, scene_calibration, search_range_px
from benchmarks.metrics import bad_pixel_rate
from benchmarks.process_bench import default_bench_capture
from calibration.drift import perturb_capture, rotation_from_rotvec_deg, rotvec_deg_from_rotation
from calibration.online import DriftEstimate, correct_right_points
from calibration.rectify import Rectifier
from sensing.config import PipelineConfig, config_to_dict, load_device_profile
from sensing.errors import StageError
from sensing.fileio import read_image
from sensing.pipeline import rectify_online
from sensing.preprocess import preprocess_capture, to_uint8_bgr
from sensing.resources import allocator_setting, host_description
from sensing.stereo import SgbmMatcher, round_up_disparities
from sensing.types import RectifiedPair, StereoCapture

AXES = ("pitch", "yaw", "roll")
MAGNITUDES_DEG = (0.05, 0.2, 0.5, 1.0, 2.0)
RANDOM_CASES = 5
#: Drift applied to the 640x480 capture whose rectify stage is timed.
TIMING_DRIFT_DEG = (0.5, 0.3, -0.4)
NEGATIVE_KINDS = ("unrelated", "identical", "black", "saturated", "textureless", "swapped")


@dataclass(frozen=True)
class StageOutcome:
    """The rectify stage on one capture: the pair and estimate, or why it stopped."""

    rectified: RectifiedPair | None
    drift: DriftEstimate | None
    stopped: str | None
    ms: float


def run_rectify_stage(capture: StereoCapture, config: PipelineConfig, rectifier: Rectifier) -> StageOutcome:
    """``preprocess`` then ``rectify`` at the capture's own resolution (long side unchanged)."""
    config = replace(config, preprocess=replace(config.preprocess, long_side_px=max(capture.left.shape[:2])))
    try:
        prepared = preprocess_capture(
            capture, long_side_px=config.preprocess.long_side_px, photometric=config.preprocess.photometric
        )
        start = time.perf_counter()
        rectified, drift = rectify_online(prepared, config, rectifier)
    except StageError as error:
        return StageOutcome(None, None, str(error), 0.0)
    return StageOutcome(rectified, drift, None, (time.perf_counter() - start) * 1000.0)


def drift_cases(rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    """Per-axis drifts at each magnitude with a random sign, then random directions."""
    cases = []
    for axis, name in enumerate(AXES):
        for magnitude in MAGNITUDES_DEG:
            rotvec = np.zeros(3)
            rotvec[axis] = magnitude * rng.choice([-1.0, 1.0])
            cases.append((name, rotvec))
    for _ in range(RANDOM_CASES):
        direction = rng.normal(size=3)
        magnitude = float(np.exp(rng.uniform(np.log(0.05), np.log(2.0))))
        cases.append(("random", direction / np.linalg.norm(direction) * magnitude))
    return cases


def negative_captures(scenes: list[StereoScene]) -> list[tuple[str, str, StereoCapture]]:
    """(kind, scene, capture) for every kind of :data:`NEGATIVE_KINDS` on every scene.

    unrelated: the scene's left view with the right view of a scene from another dataset
    (resized); identical: the left view twice; black / saturated: a right view at grey
    level 0 / 255; textureless: both views flat grey with independent sensor noise (σ = 2
    grey levels); swapped: left and right exchanged.
    """
    out = []
    rng = np.random.default_rng(7)
    for index, scene in enumerate(scenes):
        capture = scene.capture()
        left, right = capture.left, capture.right
        other = next(s for s in scenes[index + 1 :] + scenes[:index] if s.dataset != scene.dataset)
        foreign = cv2.resize(other.right(), (left.shape[1], left.shape[0]), interpolation=cv2.INTER_AREA)
        flat = [np.clip(128 + rng.normal(0, 2.0, left.shape), 0, 255).astype(np.uint8) for _ in range(2)]
        variants = {
            "unrelated": (left, foreign),
            "identical": (left, left.copy()),
            "black": (left, np.zeros_like(right)),
            "saturated": (left, np.full_like(right, 255)),
            "textureless": tuple(flat),
            "swapped": (right, left),
        }
        for kind in NEGATIVE_KINDS:
            views = variants[kind]
            out.append((kind, f"{scene.dataset}/{scene.name}", replace(capture, left=views[0], right=views[1])))
    return out


def geometric_residual_px(estimated: np.ndarray, truth: np.ndarray, K: np.ndarray, size_hw: tuple[int, int]) -> float:
    """Median over a 16x12 grid of the vertical offset (px) between undoing the estimated and
    the true drift (both (3, 3) rotations in the rectified right frame)."""
    u, v = np.meshgrid(np.linspace(0, size_hw[1] - 1, 16), np.linspace(0, size_hw[0] - 1, 12))
    grid = np.stack([u.ravel(), v.ravel()], axis=1)
    observed = correct_right_points(grid, K, truth.T)  # where the drifted camera shows each point
    return float(np.median(np.abs(correct_right_points(observed, K, estimated)[:, 1] - grid[:, 1])))


def sgbm_bad2(rectified: RectifiedPair, gt: np.ndarray, matcher: SgbmMatcher) -> float:
    """SGBM bad-2 (%) of a pair against the scene's ground truth, search range from the truth."""
    disparity = matcher.match(rectified.left, rectified.right, max_disparity_px=round_up_disparities(search_range_px(gt)))
    return 100.0 * bad_pixel_rate(disparity.values_px, gt, 2.0)


def bench_scene(
    scene: StereoScene, config: PipelineConfig, rng: np.random.Generator, *, with_sgbm: bool = True
) -> list[dict[str, Any]]:
    """All drift cases of one scene: truth, estimate, errors, residuals, verdict, bad-2."""
    rectifier, matcher = Rectifier(), SgbmMatcher()
    capture = scene.capture()
    reference = run_rectify_stage(capture, config, rectifier)
    if reference.stopped:
        raise RuntimeError(f"{scene.dataset}/{scene.name}: the undrifted scene stopped: {reference.stopped}")
    gt = scene.disparity_gt()
    factory = replace(config, rectification=replace(config.rectification, online=False))
    clean_bad2 = sgbm_bad2(run_rectify_stage(capture, factory, rectifier).rectified, gt, matcher) if with_sgbm else None
    K = reference.rectified.P1[:, :3]
    R_ref = reference.drift.rotation_rectified
    rows = []
    for kind, truth in drift_cases(rng):
        drifted = perturb_capture(capture, truth)
        outcome = run_rectify_stage(drifted, config, rectifier)
        row: dict[str, Any] = {
            "scene": f"{scene.dataset}/{scene.name}", "kind": kind, "truth_deg": truth.round(5).tolist(),
            "stopped": outcome.stopped,
        }
        if outcome.stopped is None:
            drift = outcome.drift
            R_truth = rotation_from_rotvec_deg(truth)  # rectified right frame = camera frame for these rigs
            error_vs_reference = rotvec_deg_from_rotation(drift.rotation_rectified @ (R_truth @ R_ref).T)
            row.update(
                estimate_deg=drift.rotvec_deg.round(5).tolist(),
                error_deg=np.abs(error_vs_reference).round(5).tolist(),
                yaw_error_vs_simulated_deg=round(abs(float(drift.rotvec_deg[1] - truth[1])), 5),
                yaw_observed=drift.yaw_observed,
                yaw_se_deg=round(drift.yaw_se_deg, 5),
                reliable=drift.reliable,
                reasons=drift.reasons,
                residual_measured_px=drift.residual_after_px["median"],
                residual_before_px=drift.residual_before_px["median"],
                residual_geometric_px=round(
                    geometric_residual_px(drift.rotation_rectified, R_truth @ R_ref, K, reference.rectified.size_hw), 5
                ),
                stage_ms=round(outcome.ms, 3),
            )
            if with_sgbm:
                uncorrected = run_rectify_stage(drifted, factory, rectifier)
                row.update(
                    bad2_corrected=round(sgbm_bad2(outcome.rectified, gt, matcher), 3),
                    bad2_uncorrected=None if uncorrected.stopped else round(sgbm_bad2(uncorrected.rectified, gt, matcher), 3),
                    bad2_clean=round(clean_bad2, 3),
                )
        rows.append(row)
    return rows


def summarise_drift(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-axis angular error (median, p95), yaw observed rate, residuals, reliable rate, bad-2."""
    done = [r for r in rows if r["stopped"] is None]
    errors = np.array([r["error_deg"] for r in done]) if done else np.zeros((0, 3))
    observed = [r for r in done if r["yaw_observed"]]

    def spread(values: list[float] | np.ndarray) -> dict[str, float | None]:
        values = np.asarray(values, dtype=float)
        if values.size == 0:
            return {"median": None, "p95": None, "n": 0}
        return {"median": round(float(np.median(values)), 5), "p95": round(float(np.percentile(values, 95)), 5), "n": int(values.size)}

    summary = {
        "cases": len(rows),
        "stopped": len(rows) - len(done),
        "reliable_rate": round(sum(r["reliable"] for r in done) / max(len(rows), 1), 4),
        "angular_error_deg": {
            "pitch": spread(errors[:, 0]),
            "roll": spread(errors[:, 2]),
            "yaw_observed_vs_reference": spread([r["error_deg"][1] for r in observed]),
            "yaw_observed_vs_simulated": spread([r["yaw_error_vs_simulated_deg"] for r in observed]),
        },
        "yaw_observed_rate": round(len(observed) / max(len(done), 1), 4),
        "residual_vertical_px": {
            "before": spread([r["residual_before_px"] for r in done if r["residual_before_px"] is not None]),
            "measured_after": spread([r["residual_measured_px"] for r in done if r["residual_measured_px"] is not None]),
            "geometric_after": spread([r["residual_geometric_px"] for r in done]),
        },
        "stage_ms_native": spread([r["stage_ms"] for r in done]),
    }
    if done and "bad2_corrected" in done[0]:
        summary["sgbm_bad2_percent_mean"] = {
            key: round(float(np.mean([r[f"bad2_{key}"] for r in done if r[f"bad2_{key}"] is not None])), 3)
            for key in ("corrected", "uncorrected", "clean")
        }
    reliable = [r for r in done if r["reliable"]]
    if reliable:
        reliable_errors = np.array([r["error_deg"] for r in reliable])
        summary["reliable_only"] = {
            "pitch": spread(reliable_errors[:, 0]),
            "roll": spread(reliable_errors[:, 2]),
            "geometric_residual_px": spread([r["residual_geometric_px"] for r in reliable]),
        }
    return summary


def bench_negatives(scenes: list[StereoScene], config: PipelineConfig) -> dict[str, Any]:
    """False-reliable rate on :func:`negative_captures`: outcomes per kind."""
    rectifier = Rectifier()
    per_kind: dict[str, dict[str, int]] = {kind: {"stopped": 0, "unreliable": 0, "reliable": 0} for kind in NEGATIVE_KINDS}
    examples: dict[str, str] = {}
    for kind, _, capture in negative_captures(scenes):
        outcome = run_rectify_stage(capture, config, rectifier)
        if outcome.stopped:
            per_kind[kind]["stopped"] += 1
            examples.setdefault(kind, outcome.stopped)
        elif outcome.drift.reliable:
            per_kind[kind]["reliable"] += 1
        else:
            per_kind[kind]["unreliable"] += 1
            examples.setdefault(kind, outcome.drift.reasons[0])
    total = sum(sum(v.values()) for v in per_kind.values())
    false_reliable = sum(v["reliable"] for v in per_kind.values())
    return {
        "cases": total,
        "false_reliable": false_reliable,
        "false_reliable_rate": round(false_reliable / max(total, 1), 4),
        "per_kind": per_kind,
        "example_reason": examples,
    }


def bench_real_pairs(root: Path, config: PipelineConfig) -> dict[str, Any]:
    """Residual vertical disparity before and after correction on ``pairs_nogt/middeval3Q``
    (PlaytableP: published with imperfect rectification; Playtable: the perfect version)."""
    results = {}
    for name in ("PlaytableP", "Playtable"):
        folder = root / "pairs_nogt" / "middeval3Q" / name
        if not folder.is_dir():
            continue
        left, right = (to_uint8_bgr(read_image(folder / f"{side}.png"), white_level=255) for side in ("left", "right"))
        calib, origin = scene_calibration(folder, (left.shape[1], left.shape[0]))
        outcome = run_rectify_stage(StereoCapture(left, right, calib, source=name), config, Rectifier())
        if outcome.stopped:
            results[name] = {"stopped": outcome.stopped}
            continue
        drift = outcome.drift
        results[name] = {
            "calibration_from": origin,
            "residual_vertical_before_px": drift.residual_before_px,
            "residual_vertical_after_px": drift.residual_after_px,
            "drift_rotvec_deg": drift.rotvec_deg.round(5).tolist(),
            "yaw_observed": drift.yaw_observed,
            "reliable": drift.reliable,
            "reasons": drift.reasons,
            "inliers": drift.inliers,
        }
    return results


def bench_stage_time(config: PipelineConfig, *, repeats: int = 30) -> dict[str, Any]:
    """Median time of the rectify stage (factory remap + drift estimate + correction) at
    640x480 on the drifted demo scene, against the factory remap alone in the same run."""
    profile = load_device_profile(config.device)
    cv2.setNumThreads(profile.threads)
    capture = perturb_capture(default_bench_capture(), TIMING_DRIFT_DEG)
    prepared = preprocess_capture(capture, long_side_px=config.preprocess.long_side_px, photometric=config.preprocess.photometric)
    rectifier = Rectifier()
    rectify_online(prepared, config, rectifier)  # warm-up: builds and caches the factory maps

    def timed(function: Callable[[], Any]) -> list[float]:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            function()
            times.append((time.perf_counter() - start) * 1000.0)
        return times

    stage = timed(lambda: rectify_online(prepared, config, rectifier))
    factory = timed(
        lambda: rectifier.rectify_pair(prepared.left, prepared.right, prepared.calibration, long_side_px=config.preprocess.long_side_px)
    )
    _, drift = rectify_online(prepared, config, rectifier)
    return {
        "size_wh": [int(capture.left.shape[1]), int(capture.left.shape[0])],
        "threads": profile.threads,
        "allocator": allocator_setting(),
        "host": host_description(),
        "repeats": repeats,
        "drift_deg": list(TIMING_DRIFT_DEG),
        "estimate_deg": drift.rotvec_deg.round(4).tolist(),
        "stage_ms_median": round(statistics.median(stage), 3),
        "stage_ms_p90": round(float(np.percentile(stage, 90)), 3),
        "factory_remap_ms_median": round(statistics.median(factory), 3),
        "ratio_to_factory_remap": round(statistics.median(stage) / statistics.median(factory), 2),
        "budget_ms": profile.stage_ms.get("rectify"),
    }


def bench_rectify(
    root: str | Path | None = None,
    *,
    config: PipelineConfig | None = None,
    datasets: list[str] | None = None,
    seed: int = 0,
    with_sgbm: bool = True,
    on_scene: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The whole benchmark; returns the JSON-ready results (see the module docstring)."""
    root = Path(root) if root is not None else default_data_root()
    config = config or PipelineConfig()
    cv2.setNumThreads(load_device_profile(config.device).threads)
    scenes = list_stereo_scenes(root, datasets)
    rng = np.random.default_rng(seed)
    rows = []
    for scene in scenes:
        rows.extend(bench_scene(scene, config, rng, with_sgbm=with_sgbm))
        if on_scene:
            on_scene(f"{scene.dataset}/{scene.name}")
    return {
        "data_root": str(root),
        "config": config_to_dict(config)["rectification"],
        "seed": seed,
        "scenes": len(scenes),
        "drift": summarise_drift(rows),
        "drift_by_kind": {kind: summarise_drift([r for r in rows if r["kind"] == kind]) for kind in (*AXES, "random")},
        "negatives": bench_negatives(scenes, config),
        "real_pairs": bench_real_pairs(root, config),
        "stage_time_640x480": bench_stage_time(config),
        "cases": rows,
    }


def format_rectify_bench(results: dict[str, Any]) -> str:
    """A short human-readable summary of :func:`bench_rectify`'s results."""
    drift = results["drift"]
    errors = drift["angular_error_deg"]
    lines = [
        f"{drift['cases']} drift cases on {results['scenes']} scenes; reliable {100 * drift['reliable_rate']:.1f}%, "
        f"yaw observed {100 * drift['yaw_observed_rate']:.1f}%",
        "angular error (deg)          median      p95",
    ]
    for name, key in (("pitch", "pitch"), ("roll", "roll"), ("yaw (observed, vs ref)", "yaw_observed_vs_reference"),
                      ("yaw (observed, vs sim)", "yaw_observed_vs_simulated")):
        value = errors[key]
        if value["median"] is not None:
            lines.append(f"  {name:<26} {value['median']:8.4f} {value['p95']:8.4f}")
    residual = drift["residual_vertical_px"]
    lines.append(
        f"residual vertical disparity (median px): before {residual['before']['median']}, "
        f"after measured {residual['measured_after']['median']}, after geometric {residual['geometric_after']['median']}"
    )
    if "sgbm_bad2_percent_mean" in drift:
        bad2 = drift["sgbm_bad2_percent_mean"]
        lines.append(
            f"SGBM bad-2 (mean %): corrected {bad2['corrected']}, uncorrected {bad2['uncorrected']}, clean {bad2['clean']}"
        )
    negatives = results["negatives"]
    lines.append(
        f"negative cases: {negatives['cases']}, false reliable {negatives['false_reliable']} "
        f"({100 * negatives['false_reliable_rate']:.1f}%)"
    )
    for name, pair in results["real_pairs"].items():
        if "stopped" in pair:
            lines.append(f"{name}: stopped ({pair['stopped']})")
        else:
            lines.append(
                f"{name}: vertical disparity median {pair['residual_vertical_before_px']['median']} px before, "
                f"{pair['residual_vertical_after_px']['median']} px after (reliable {pair['reliable']})"
            )
    timing = results["stage_time_640x480"]
    lines.append(
        f"rectify stage at 640x480: median {timing['stage_ms_median']} ms (p90 {timing['stage_ms_p90']}), budget "
        f"{timing['budget_ms']} ms; factory remap alone {timing['factory_remap_ms_median']} ms"
    )
    return "\n".join(lines)
