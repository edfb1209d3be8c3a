"""Evaluate the mono network's relative disparity on scenes with ground truth, against a trivial prior.

Each scene's left view goes through :class:`sensing.mono.MonoEstimator`; in the same run the
*vertical-gradient prior* (:func:`vertical_gradient_disparity`: disparity = row index, so
nearer towards the image bottom, as for a floor or a road seen from eye height) is scored on
the same pixels. Both are compared to the ground truth with
:func:`benchmarks.metrics.relative_depth_errors` (least-squares scale and shift, then AbsRel,
delta < 1.25 and RMSE in px), at the ground truth's full resolution over every pixel with a
finite, positive ground-truth disparity.

A dataset passes when its mean AbsRel is at most :data:`TARGET_ABS_REL`, its mean delta1 at
least :data:`TARGET_DELTA1`, and the net's AbsRel at most :data:`BASELINE_FACTOR` times the
prior's (the net is at least twice better than the trivial baseline).
"""

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from benchmarks.datasets import StereoScene, list_stereo_scenes
from benchmarks.metrics import relative_depth_errors
from sensing.errors import InputError

logger = logging.getLogger(__name__)

#: The shared evaluation datasets (none of them is in the mono network's training data).
DEFAULT_MONO_DATASETS = ("middeval3Q", "eth3d", "kitti2012", "kitti2015")

#: Largest mean AbsRel (depth, after scale-and-shift alignment) a dataset may have.
TARGET_ABS_REL = 0.15
#: Smallest mean fraction of pixels with max(z_pred / z, z / z_pred) < 1.25.
TARGET_DELTA1 = 0.85
#: The net's AbsRel must be at most this fraction of the vertical-gradient prior's.
BASELINE_FACTOR = 0.5

#: Metrics of :func:`relative_depth_errors`, averaged per dataset and over datasets.
METRIC_KEYS = ("abs_rel", "delta1", "rmse_px")
METHODS = ("net", "baseline")
BASELINE_NAME = "vertical gradient prior: disparity = row index (grows towards the image bottom)"


class MonoModel(Protocol):
    """What :func:`eval_mono` needs of an estimator (:class:`sensing.mono.MonoEstimator` has it)."""

    weights: str

    @property
    def properties(self) -> dict[str, Any]: ...

    def predict(self, image: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class MonoSceneScore:
    """The net and the vertical-gradient prior on one scene.

    net, baseline : {"abs_rel", "delta1", "rmse_px"} of :func:`relative_depth_errors`
    net_ms : wall time of the net's prediction in milliseconds (resize and inference included)
    size_wh : image size (W, H) in px
    evaluated_px : number of pixels with finite, positive ground truth
    """

    dataset: str
    scene: str
    net: dict[str, float]
    baseline: dict[str, float]
    net_ms: float
    size_wh: tuple[int, int]
    evaluated_px: int


def vertical_gradient_disparity(size_hw: tuple[int, int]) -> np.ndarray:
    """The trivial prior: (H, W) float32 relative disparity equal to the row index (0 at the top).

    Disparity grows towards the bottom of the image, as on a ground plane; it does not look at
    the image nor at the ground truth (the metric's scale-and-shift alignment does the rest).
    """
    height, width = size_hw
    if height < 1 or width < 1:
        raise ValueError(f"size_hw must be positive, got {size_hw}")
    return np.broadcast_to(np.arange(height, dtype=np.float32)[:, None], (height, width)).copy()


def score_scene(scene: StereoScene, estimator: MonoModel) -> MonoSceneScore:
    """Predict the scene's left view with ``estimator`` and score it and the prior against its ground truth."""
    left, gt = scene.left(), scene.disparity_gt()
    if left.shape[:2] != gt.shape:
        raise InputError(f"{scene.folder}: left view is {left.shape[1]}x{left.shape[0]}, ground truth {gt.shape[1]}x{gt.shape[0]}")
    known = np.isfinite(gt) & (gt > 0)
    if known.sum() < 2:
        raise InputError(f"{scene.folder}: the ground truth has no positive finite disparity to evaluate")
    start = time.perf_counter()
    pred = estimator.predict(left)
    net_ms = 1000.0 * (time.perf_counter() - start)
    return MonoSceneScore(
        dataset=scene.dataset,
        scene=scene.name,
        net=relative_depth_errors(pred, gt),
        baseline=relative_depth_errors(vertical_gradient_disparity(gt.shape), gt),
        net_ms=net_ms,
        size_wh=(int(gt.shape[1]), int(gt.shape[0])),
        evaluated_px=int(known.sum()),
    )


def eval_mono(
    root: str | os.PathLike,
    *,
    datasets: Sequence[str] | None = None,
    estimator: MonoModel | None = None,
    on_scene: Callable[[MonoSceneScore], None] | None = None,
) -> dict[str, Any]:
    """Score the mono network and the vertical-gradient prior on every scene of ``datasets``.

    Parameters
    ----------
    root : data root holding ``stereo/<dataset>/<scene>/{left.png, disp_left.pfm}``
    datasets : dataset names (default :data:`DEFAULT_MONO_DATASETS`); an unknown one raises
        :class:`InputError` listing the available ones
    estimator : the network (default: :class:`sensing.mono.MonoEstimator` with the shipped
        weights; missing or bad weights raise :class:`sensing.errors.ConfigError`)
    on_scene : called with each :class:`MonoSceneScore` as soon as it is known (progress)
    Returns
    -------
    dict, JSON-ready: ``scenes`` (per scene), ``datasets`` (per-dataset means of both methods,
    the baseline/net AbsRel ratio and the pass flags), ``overall`` (the same over the dataset
    means), ``targets``, ``weights`` (file, size, the ONNX metadata ``info``) and
    ``trained_on_evaluated_scenes`` (evaluated scenes listed in the weights' training scenes).
    """
    if estimator is None:
        from sensing.mono import MonoEstimator

        estimator = MonoEstimator()
    properties = estimator.properties  # bad weights fail before any scene is read
    names = list(DEFAULT_MONO_DATASETS if datasets is None else datasets)
    scenes = list_stereo_scenes(root, names)
    if not scenes:
        raise InputError(f"no scene with ground truth in datasets {names} under {root}")
    scores = []
    for scene in scenes:
        score = score_scene(scene, estimator)
        logger.debug(
            "mono on %s/%s: AbsRel %.4f (prior %.4f)", scene.dataset, scene.name, score.net["abs_rel"], score.baseline["abs_rel"]
        )
        scores.append(score)
        if on_scene is not None:
            on_scene(score)

    by_dataset: dict[str, list[MonoSceneScore]] = {}
    for score in scores:
        by_dataset.setdefault(score.dataset, []).append(score)
    dataset_rows = {
        dataset: {"scenes": len(rows), **_verdict({method: _means([getattr(s, method) for s in rows]) for method in METHODS})}
        for dataset, rows in sorted(by_dataset.items())
    }
    overall = _verdict({method: _means([row[method] for row in dataset_rows.values()]) for method in METHODS})
    overall["all_datasets_pass"] = all(row["pass"]["all"] for row in dataset_rows.values())
    info = properties.get("info", {})
    evaluated = {f"{s.dataset}/{s.scene}" for s in scores}
    return {
        "data_root": str(root),
        "datasets_evaluated": sorted(by_dataset),
        "targets": {"abs_rel_max": TARGET_ABS_REL, "delta1_min": TARGET_DELTA1, "net_to_baseline_abs_rel_max": BASELINE_FACTOR},
        "baseline": BASELINE_NAME,
        "weights": {
            "path": str(estimator.weights),
            "onnx_mb": round(os.path.getsize(estimator.weights) / 1e6, 3) if os.path.isfile(estimator.weights) else None,
            "long_side_px": properties.get("long_side_px"),
            "stride": properties.get("stride"),
            "info": info,
        },
        "trained_on_evaluated_scenes": sorted(evaluated & set(info.get("train_scenes", []))),
        "scenes": [asdict(score) for score in scores],
        "datasets": dataset_rows,
        "overall": {"datasets": len(dataset_rows), **overall},
    }


def format_mono_eval(results: dict[str, Any]) -> str:
    """Aligned text table of :func:`eval_mono`'s results: one row per scene, then the dataset
    means with their pass flags, then the mean over datasets."""
    header = ("dataset", "scene", "size", "AbsRel", "d<1.25 %", "RMSE px", "prior AbsRel", "prior d1 %", "prior/net", "pass")
    rows = [
        (s["dataset"], s["scene"], f"{s['size_wh'][0]}x{s['size_wh'][1]}", *_cells(s["net"], s["baseline"]), "")
        for s in results["scenes"]
    ]
    means = [(dataset, f"mean of {row['scenes']}", row) for dataset, row in results["datasets"].items()]
    means.append(("overall", f"mean of {results['overall']['datasets']} datasets", results["overall"]))
    rows += [(name, label, "", *_cells(row["net"], row["baseline"]), _flags(row["pass"])) for name, label, row in means]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    weights = results["weights"]
    lines = [f"mono network {Path(weights['path']).name} ({weights['info'].get('name', '?')}) against the {results['baseline']}"]
    for index, row in enumerate((header, *rows)):
        if index == len(results["scenes"]) + 1:
            lines.append("-" * (sum(widths) + 2 * (len(widths) - 1)))
        cells = (cell.ljust(w) if i < 2 or i == len(row) - 1 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
        lines.append("  ".join(cells).rstrip())
    targets = results["targets"]
    lines.append(
        f"targets per dataset: AbsRel <= {targets['abs_rel_max']}, d<1.25 >= {100 * targets['delta1_min']:.0f} %, "
        f"net AbsRel <= {targets['net_to_baseline_abs_rel_max']} x prior's; "
        f"all datasets pass: {'yes' if results['overall']['all_datasets_pass'] else 'NO'}"
    )
    if results["trained_on_evaluated_scenes"]:
        lines.append(f"warning: the network was trained on evaluated scenes {results['trained_on_evaluated_scenes']}")
    return "\n".join(lines)


def _means(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    return {key: float(np.mean([row[key] for row in rows])) for key in METRIC_KEYS}


def _verdict(means: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Means of both methods plus the baseline/net AbsRel ratio and the pass flags."""
    net, baseline = means["net"], means["baseline"]
    flags = {
        "abs_rel": net["abs_rel"] <= TARGET_ABS_REL,
        "delta1": net["delta1"] >= TARGET_DELTA1,
        "beats_baseline": net["abs_rel"] <= BASELINE_FACTOR * baseline["abs_rel"],
    }
    ratio = baseline["abs_rel"] / net["abs_rel"] if net["abs_rel"] > 0 else float("inf")
    return {"net": net, "baseline": baseline, "baseline_to_net_abs_rel": ratio, "pass": flags | {"all": all(flags.values())}}


def _cells(net: dict[str, float], baseline: dict[str, float]) -> tuple[str, ...]:
    ratio = baseline["abs_rel"] / net["abs_rel"] if net["abs_rel"] > 0 else float("inf")
    return (
        f"{net['abs_rel']:.3f}",
        f"{100 * net['delta1']:.1f}",
        f"{net['rmse_px']:.2f}",
        f"{baseline['abs_rel']:.3f}",
        f"{100 * baseline['delta1']:.1f}",
        f"{ratio:.2f}",
    )


def _flags(flags: dict[str, bool]) -> str:
    if flags["all"]:
        return "PASS"
    failed = [name for name in ("abs_rel", "delta1", "beats_baseline") if not flags[name]]
    return "FAIL " + ",".join(failed)
