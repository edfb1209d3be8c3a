"""Does filling the low-confidence stereo pixels with aligned mono help? (``glassdepth eval fusion``)

On each shared Middlebury scene (rectified, with ground truth, at its published resolution):
the pipeline's stereo matcher and confidence (same settings as ``process``), the mono network
on the left view, and :func:`sensing.fusion.fuse_disparity` with the pipeline's settings. On the
pixels where stereo is NOT confident (and the ground truth is known), bad-2 of

* ``stereo``: the matcher's own disparity there (a pixel it left without a value counts as bad);
* ``fused``: the fused disparity (the mono fill, or the stereo value where the two agree);

and, for context, bad-2 over all known pixels of the stereo output as the pipeline writes it
without fusion (not-confident pixels unknown, so counted bad), of the matcher's whole output (as
the pipeline writes it with ``confidence.keep_unconfident``; pixels without a value counted bad)
and of the fused map. The mono
network trained on most Middlebury 2001/2003/2006 scenes (not on middeval3Q, nor on the three
2006 scenes held out for its validation), so the means are also given over the scenes it never
saw.
"""

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.datasets import StereoScene, default_data_root, list_stereo_scenes, search_range_px
from benchmarks.metrics import bad_pixel_rate
from sensing.config import PipelineConfig, load_device_profile
from sensing.fusion import fuse_disparity
from sensing.mono import DEFAULT_MONO_WEIGHTS, MonoEstimator
from sensing.pipeline import stereo_with_confidence
from sensing.stereo import build_matcher, round_up_disparities
from sensing.types import RectifiedPair

#: The shared Middlebury datasets.
MIDDLEBURY = ("middlebury2001", "middlebury2003", "middlebury2006", "middeval3Q")


def _rectified(scene: StereoScene) -> RectifiedPair:
    capture = scene.capture()
    camera = capture.calibration.left
    P1 = np.hstack([camera.K, np.zeros((3, 1))])
    P2 = P1.copy()
    P2[0, 3] = -camera.fx * capture.calibration.baseline_m
    return RectifiedPair(capture.left, capture.right, camera.fx, capture.calibration.baseline_m, P1, P2)


def evaluate_scene(scene: StereoScene, config: PipelineConfig, matcher: Any, mono: MonoEstimator) -> dict[str, Any]:
    """bad-2 (%) of stereo and fused on the low-confidence pixels of one scene, and overall."""
    rectified = _rectified(scene)
    gt = scene.disparity_gt()
    max_disparity = round_up_disparities(search_range_px(gt))
    start = time.perf_counter()
    disparity, confidence = stereo_with_confidence(rectified, matcher, max_disparity, config)
    confident = confidence.values >= config.confidence.threshold
    relative = mono.predict(rectified.left)
    fused = fuse_disparity(
        disparity, confident, relative,
        seam_px=config.mono.seam_px, correction_sigma_px=config.mono.correction_sigma_px or None,
        agreement_px=config.mono.agreement_px or None,
    )
    ms = (time.perf_counter() - start) * 1000.0
    known = np.isfinite(gt)
    low = known & ~confident
    stereo_px = np.where(disparity.valid, disparity.values_px, np.inf)
    return {
        "dataset": scene.dataset,
        "scene": scene.name,
        "low_confidence_fraction": round(float(low.sum() / max(known.sum(), 1)), 4),
        "bad2_low_stereo": round(100 * bad_pixel_rate(stereo_px, gt, 2.0, evaluated=low), 3) if low.any() else None,
        "bad2_low_fused": round(100 * bad_pixel_rate(fused.disparity.values_px, gt, 2.0, evaluated=low), 3) if low.any() else None,
        "bad2_all_stereo_confident_only": round(100 * bad_pixel_rate(np.where(confident, stereo_px, np.inf), gt, 2.0), 3),
        "bad2_all_stereo_kept": round(100 * bad_pixel_rate(stereo_px, gt, 2.0), 3),
        "bad2_all_fused": round(100 * bad_pixel_rate(fused.disparity.values_px, gt, 2.0), 3),
        "alignment": fused.alignment.to_dict(),
        "ms": round(ms, 1),
    }


def eval_fusion(
    root: str | Path | None = None,
    *,
    datasets: tuple[str, ...] | list[str] = MIDDLEBURY,
    config: PipelineConfig | None = None,
    weights: str | None = None,
    on_scene: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Every scene of ``datasets``; per-scene rows, means over all scenes and over those the
    mono network never trained on, and whether fusion lowers bad-2 on the low-confidence pixels."""
    root = Path(root) if root is not None else default_data_root()
    config = config or PipelineConfig()
    profile = load_device_profile(config.device)
    matcher = build_matcher(config.stereo.method, threads=profile.threads, **config.stereo.params)
    mono = MonoEstimator(weights or config.mono.weights or str(DEFAULT_MONO_WEIGHTS), threads=profile.threads)
    trained_on = set(mono.properties["info"].get("train_scenes", []))
    rows = []
    for scene in list_stereo_scenes(root, list(datasets)):
        row = evaluate_scene(scene, config, matcher, mono)
        row["mono_trained_on"] = f"{scene.dataset}/{scene.name}" in trained_on
        rows.append(row)
        if on_scene:
            on_scene(f"{scene.dataset}/{scene.name}")

    def means(selected: list[dict[str, Any]]) -> dict[str, Any]:
        scored = [r for r in selected if r["bad2_low_stereo"] is not None]
        keys = ("bad2_low_stereo", "bad2_low_fused", "bad2_all_stereo_confident_only", "bad2_all_stereo_kept", "bad2_all_fused")
        out: dict[str, Any] = {"scenes": len(scored)}
        for key in keys:
            out[key] = round(float(np.mean([r[key] for r in scored])), 3) if scored else None
        out["fusion_better_on_low_confidence"] = bool(scored) and out["bad2_low_fused"] < out["bad2_low_stereo"]
        out["scenes_where_fusion_is_better"] = sum(r["bad2_low_fused"] < r["bad2_low_stereo"] for r in scored)
        return out

    return {
        "data_root": str(root),
        "stereo_method": matcher.name,
        "mono_weights": mono.weights,
        "confidence_threshold": config.confidence.threshold,
        "mean_all": means(rows),
        "mean_not_trained_on": means([r for r in rows if not r["mono_trained_on"]]),
        "by_dataset": {d: means([r for r in rows if r["dataset"] == d]) for d in datasets},
        "scenes": rows,
    }


def format_fusion_eval(results: dict[str, Any]) -> str:
    """A terminal table: bad-2 (%) on the low-confidence pixels, stereo against fused."""
    lines = [f"{'scenes':<28}{'n':>4}{'low stereo':>12}{'low fused':>11}{'all stereo*':>13}{'all kept':>10}{'all fused':>11}"]
    groups = [("all", results["mean_all"]), ("not trained on (mono)", results["mean_not_trained_on"])]
    groups += list(results["by_dataset"].items())
    for name, m in groups:
        if not m["scenes"]:
            continue
        lines.append(
            f"{name:<28}{m['scenes']:>4}{m['bad2_low_stereo']:>12.2f}{m['bad2_low_fused']:>11.2f}"
            f"{m['bad2_all_stereo_confident_only']:>13.2f}{m['bad2_all_stereo_kept']:>10.2f}{m['bad2_all_fused']:>11.2f}"
        )
    lines.append(
        "bad-2 %; low = pixels where stereo is not confident; *confident stereo only (the rest counted bad); "
        "kept = the matcher's whole output (confidence.keep_unconfident)"
    )
    return "\n".join(lines)
