"""Evaluate stereo matchers on scenes with ground truth: bad-n, EPE, density and time per scene.

Evaluation is at the input's full resolution over every pixel with finite ground truth
(occluded ones included); a missing prediction counts as a bad pixel, as Middlebury counts it.
"""

import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from typing import Any

import numpy as np

from benchmarks.datasets import StereoScene, list_stereo_scenes, search_range_px
from benchmarks.metrics import bad_pixel_rate, density, end_point_error
from sensing.stereo import StereoMatcher, build_matcher
from sensing.types import DisparityMap

logger = logging.getLogger(__name__)

#: ``match(left, right, max_disparity_px)``: (H, W, 3) uint8 BGR pair -> left-view disparity.
MatchFn = Callable[[np.ndarray, np.ndarray, int], DisparityMap]

#: Per-scene metrics that are averaged per dataset.
MEAN_KEYS = ("bad1", "bad2", "bad4", "epe", "density", "ms")


@dataclass(frozen=True)
class SceneScore:
    """One method on one scene.

    bad1, bad2, bad4 : fractions in [0, 1] of evaluated pixels off by more than 1, 2, 4 px or missing
    epe : mean absolute error in px over evaluated pixels with a prediction (nan if none)
    density : fraction of evaluated pixels with a prediction
    ms : wall time of the match call in milliseconds
    size_wh : image size (W, H) in px
    max_disparity_px : search range given to the matcher
    """

    dataset: str
    scene: str
    bad1: float
    bad2: float
    bad4: float
    epe: float
    density: float
    ms: float
    size_wh: tuple[int, int]
    max_disparity_px: int


@dataclass(frozen=True)
class StereoEvalReport:
    """All scene scores of one method.

    trained_on : ``dataset/scene`` names the method was trained on (learned methods); their
        datasets also get means over the other scenes only (:meth:`held_out_means`)
    weights : name of a learned method's weights (None for classical methods)
    settings : the matcher's parameters (its dataclass fields, e.g. SGBM's penalties, the net's
        weights file and fills), so a figure can be traced to what produced it
    """

    method: str
    scenes: list[SceneScore]
    trained_on: tuple[str, ...] = ()
    weights: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def dataset_means(self) -> dict[str, dict[str, float]]:
        """Per dataset: the mean of each of :data:`MEAN_KEYS` and the number of ``scenes``."""
        by_dataset: dict[str, list[SceneScore]] = {}
        for score in self.scenes:
            by_dataset.setdefault(score.dataset, []).append(score)
        return {dataset: _means(scores) | {"scenes": len(scores)} for dataset, scores in sorted(by_dataset.items())}

    def held_out_means(self, trained_on: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
        """For each dataset with scenes in ``trained_on`` (default :attr:`trained_on`): the
        means over its other scenes (so methods can be compared on the same held-out scenes)."""
        trained = set(self.trained_on if trained_on is None else trained_on)
        touched = {score.dataset for score in self.scenes if f"{score.dataset}/{score.scene}" in trained}
        means = {}
        for dataset in sorted(touched):
            unseen = [s for s in self.scenes if s.dataset == dataset and f"{s.dataset}/{s.scene}" not in trained]
            if unseen:
                means[dataset] = _means(unseen) | {"scenes": len(unseen)}
        return means

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: method, per-scene scores, per-dataset means (and over the scenes not
        trained on), and the mean over datasets."""
        means = self.dataset_means()
        overall = {key: float(np.mean([row[key] for row in means.values()])) for key in MEAN_KEYS} if means else {}
        return {
            "method": self.method,
            "weights": self.weights,
            "settings": self.settings,
            "trained_on": list(self.trained_on),
            "scenes": [asdict(score) for score in self.scenes],
            "datasets": means,
            "datasets_not_trained_on": self.held_out_means(),
            "overall": overall | {"datasets": len(means)},
        }

    def format_table(self) -> str:
        """Aligned text table: one row per scene, then one mean row per dataset."""
        header = ("dataset", "scene", "size", "ndisp", "bad1 %", "bad2 %", "bad4 %", "EPE px", "dens %", "ms")
        rows = [
            (s.dataset, s.scene, f"{s.size_wh[0]}x{s.size_wh[1]}", str(s.max_disparity_px), *_cells(asdict(s)))
            for s in self.scenes
        ]
        rows += [(dataset, f"mean of {m['scenes']}", "", "", *_cells(m)) for dataset, m in self.dataset_means().items()]
        rows += [
            (dataset, f"mean of {m['scenes']} not trained on", "", "", *_cells(m))
            for dataset, m in self.held_out_means().items()
        ]
        widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
        lines = [f"method: {self.method}"]
        for index, row in enumerate((header, *rows)):
            if index == len(self.scenes) + 1:
                lines.append("-" * (sum(widths) + 2 * (len(widths) - 1)))
            cells = (cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
            lines.append("  ".join(cells))
        return "\n".join(lines)


def evaluate_stereo(
    scenes: Iterable[StereoScene],
    match: MatchFn,
    *,
    method: str,
    on_scene: Callable[[SceneScore], None] | None = None,
) -> StereoEvalReport:
    """Run ``match`` on every scene and score it against the ground truth.

    Parameters
    ----------
    scenes : scenes with ground truth
    match : ``match(left, right, max_disparity_px)`` on (H, W, 3) uint8 BGR views, returning the
        left view's (H, W) disparity; the search range is :func:`search_range_px` of the scene
    method : name of the method, for the report
    on_scene : called with each scene's score as soon as it is known (e.g. to show progress)
    Returns
    -------
    StereoEvalReport : one :class:`SceneScore` per scene, in the order given
    """
    scores = []
    for scene in scenes:
        left, right, gt = scene.left(), scene.right(), scene.disparity_gt()
        max_disparity_px = search_range_px(gt)
        start = time.perf_counter()
        pred = match(left, right, max_disparity_px).values_px
        ms = 1000.0 * (time.perf_counter() - start)
        score = SceneScore(
            dataset=scene.dataset,
            scene=scene.name,
            bad1=bad_pixel_rate(pred, gt, 1.0),
            bad2=bad_pixel_rate(pred, gt, 2.0),
            bad4=bad_pixel_rate(pred, gt, 4.0),
            epe=end_point_error(pred, gt),
            density=density(pred, gt),
            ms=ms,
            size_wh=(int(gt.shape[1]), int(gt.shape[0])),
            max_disparity_px=max_disparity_px,
        )
        logger.debug("%s on %s/%s: bad2 %.4f in %.1f ms", method, scene.dataset, scene.name, score.bad2, ms)
        scores.append(score)
        if on_scene is not None:
            on_scene(score)
    return StereoEvalReport(method, scores)


def evaluate_methods(
    root: str | os.PathLike,
    datasets: Sequence[str] | None,
    methods: Sequence[str],
    *,
    net_params: dict[str, Any] | None = None,
    on_scene: Callable[[SceneScore], None] | None = None,
) -> list[StereoEvalReport]:
    """Evaluate each registered matcher in ``methods`` (default parameters) on the data under ``root``.

    ``datasets`` as in :func:`list_stereo_scenes` (None = all); ``net_params``: parameters of the
    ``net`` method other than its defaults (:class:`sensing.stereo.NetMatcher` fields, e.g.
    ``{"weights": "candidate.onnx", "scales": (1.0, 1.5)}``). Returns one report per method.
    """
    scenes = list_stereo_scenes(root, datasets)
    reports = []
    for name in methods:
        matcher = build_matcher(name, **((net_params or {}) if name == "net" else {}))
        report = evaluate_stereo(scenes, _match_fn(matcher), method=name, on_scene=on_scene)
        info = getattr(matcher, "properties", {}).get("info", {})
        settings = {f.name: getattr(matcher, f.name) for f in fields(matcher) if f.name != "name"} if is_dataclass(matcher) else {}
        reports.append(replace(report, trained_on=tuple(info.get("train_scenes", [])), weights=info.get("name"), settings=settings))
    return reports


def compare_bad2(reports: Sequence[StereoEvalReport]) -> dict[str, dict[str, float]]:
    """Mean bad-2 per dataset for each method, and over the scenes no method was trained on
    (rows ``<dataset> (not trained on)``, every method on the same scenes): {row: {method: bad2}}."""
    trained = sorted({name for report in reports for name in report.trained_on})
    table: dict[str, dict[str, float]] = {}
    for report in reports:
        for dataset, means in report.dataset_means().items():
            table.setdefault(dataset, {})[report.method] = means["bad2"]
        for dataset, means in report.held_out_means(trained).items():
            table.setdefault(f"{dataset} (not trained on)", {})[report.method] = means["bad2"]
    return dict(sorted(table.items()))


def format_comparison(table: dict[str, dict[str, float]]) -> str:
    """Text table of :func:`compare_bad2`: one row per dataset, one bad-2 % column per method."""
    methods = sorted({method for row in table.values() for method in row})
    width = max([len(row) for row in table] + [7])
    lines = ["mean bad-2 %".ljust(width) + "".join(m.rjust(10) for m in methods)]
    for row, values in table.items():
        cells = "".join((f"{100 * values[m]:.2f}" if m in values else "-").rjust(10) for m in methods)
        lines.append(row.ljust(width) + cells)
    return "\n".join(lines)


def _match_fn(matcher: StereoMatcher) -> MatchFn:
    def match(left: np.ndarray, right: np.ndarray, max_disparity_px: int) -> DisparityMap:
        return matcher.match(left, right, max_disparity_px=max_disparity_px)

    return match


def _means(scores: Sequence[SceneScore]) -> dict[str, float]:
    return {key: float(np.mean([getattr(score, key) for score in scores])) for key in MEAN_KEYS}


def _cells(values: dict[str, Any]) -> tuple[str, ...]:
    percent = [f"{100 * values[key]:.2f}" for key in ("bad1", "bad2", "bad4")]
    return (*percent, f"{values['epe']:.3f}", f"{100 * values['density']:.1f}", f"{values['ms']:.1f}")
