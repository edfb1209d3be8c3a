"""Novel-view accuracy: synthesise the right view of a rectified pair from the left view and a
disparity, and compare it with the real right view (PSNR, SSIM of :mod:`skimage.metrics`).

Per scene, two disparities — the ground truth and a stereo matcher's prediction (search range as in
:mod:`benchmarks.stereo_eval`) — each rendered by two methods: ``layered``
(:func:`sensing.novel_view.render.render_novel_right`) and ``naive`` (:func:`naive_forward_warp`, a
z-buffered nearest-pixel splat whose holes take the nearest background pixel of their row).

Scores are taken over two sets of right-view pixels, both derived from the left ground truth by
:func:`right_view_visibility` (the right view's own ground truth is not needed):

* **co-visible**: the right pixel shows a surface point that the left view sees with known
  disparity. Each left row is rasterised into the right view as a polyline: neighbouring left
  pixels whose ground truth differs by at most ``SAME_SURFACE_PX`` span the right-view interval
  between their projections ``x - d``; isolated pixels cover the nearest right pixel. Where
  several spans cover a right pixel, the largest disparity wins (z-buffer): only that surface is
  visible, so a covered right pixel is co-visible. Pixels the left view sees but the right does not
  (occluded) never reach the right view's masks.
* **disoccluded**: right pixels no span covers (seen by the right camera only), except runs of them
  that touch the left or right image border (the scene there lies outside the left frame), and
  except pixels where a left pixel of unknown ground truth could land (its disparity taken
  anywhere between that of the known pixels bounding its run): those are ``uncertain``, in neither set.

Per dataset, two aggregates of PSNR: the mean of the per-scene values, and the PSNR *over all the
dataset's pixels* of the set (``psnr_*_pooled``: from the squared error summed over the scenes,
so a scene counts by its pixels; a scene with a few dozen disoccluded pixels moves the mean as
much as one with thousands, but not the pooled value).
"""

import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from benchmarks.datasets import StereoScene, list_stereo_scenes, search_range_px
from benchmarks.metrics import bad_pixel_rate
from sensing.checks import check_shape
from sensing.config import StereoConfig
from sensing.novel_view.fill import nearest_background_in_row
from sensing.novel_view.render import render_novel_right
from sensing.stereo import build_matcher

logger = logging.getLogger(__name__)

#: Neighbouring left pixels whose ground truth differs by at most this (px) are one surface.
SAME_SURFACE_PX = 1.0
#: PSNR reported for an exact match.
PSNR_CAP_DB = 99.0
#: Rendering methods compared on every scene and disparity.
METHODS = ("layered", "naive")
#: Per-scene metrics that are averaged per dataset.
MEAN_KEYS = ("psnr_covisible", "ssim_covisible", "psnr_disoccluded", "ssim_disoccluded", "ms")
#: Pixel sets whose PSNR is also pooled over a dataset's pixels.
PIXEL_SETS = ("covisible", "disoccluded")


@dataclass(frozen=True)
class RenderScore:
    """One rendering method with one disparity on one scene.

    disparity : ``gt`` or the stereo method's name
    psnr_* : dB over the pixel set (nan if the set is empty); ssim_* : mean of the SSIM map (7x7
        window, all channels) over the set; mse_* : mean squared error over the set's pixels and
        channels, grey levels squared (nan if empty)
    covisible_fraction, disoccluded_fraction : share of the right view's pixels in each set
    covisible_pixels, disoccluded_pixels : pixel count of each set
    ms : wall time of the rendering in milliseconds
    """

    dataset: str
    scene: str
    disparity: str
    method: str
    psnr_covisible: float
    ssim_covisible: float
    psnr_disoccluded: float
    ssim_disoccluded: float
    covisible_fraction: float
    disoccluded_fraction: float
    ms: float
    mse_covisible: float
    mse_disoccluded: float
    covisible_pixels: int
    disoccluded_pixels: int


@dataclass(frozen=True)
class RenderEvalReport:
    """All scores of a run, and the stereo error of the predicted disparities (bad-2 per scene)."""

    scores: list[RenderScore]
    stereo_method: str
    stereo_bad2: dict[str, float]

    def means(self) -> dict[str, dict[str, dict[str, float]]]:
        """{dataset: {"<disparity>/<method>": mean of each of :data:`MEAN_KEYS`, ``psnr_<set>_pooled``
        for each of :data:`PIXEL_SETS` (dB over all the dataset's pixels of the set; nan if none),
        and ``scenes``}}."""
        groups: dict[tuple[str, str], list[RenderScore]] = {}
        for score in self.scores:
            groups.setdefault((score.dataset, f"{score.disparity}/{score.method}"), []).append(score)
        table: dict[str, dict[str, dict[str, float]]] = {}
        for (dataset, key), scores in sorted(groups.items()):
            row = {name: float(np.nanmean([getattr(s, name) for s in scores])) for name in MEAN_KEYS}
            row |= {f"psnr_{pixels}_pooled": pooled_psnr(scores, pixels) for pixels in PIXEL_SETS}
            table.setdefault(dataset, {})[key] = row | {"scenes": len(scores)}
        return table

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: per-scene scores, per-dataset means, the stereo method and its bad-2."""
        return {
            "stereo_method": self.stereo_method,
            "stereo_bad2": self.stereo_bad2,
            "datasets": self.means(),
            "scenes": [asdict(score) for score in self.scores],
        }

    def format_table(self) -> str:
        """Aligned text: one row per scene, disparity and method, then the per-dataset means."""
        header = (
            "dataset", "scene", "disparity/method", "co-vis dB", "co-vis SSIM", "disocc dB", "disocc SSIM", "ms",
            "pooled co-vis dB", "pooled disocc dB",
        )
        rows = [
            (s.dataset, s.scene, f"{s.disparity}/{s.method}", *_cells(asdict(s)), "", "") for s in self.scores
        ]
        rows += [
            (
                dataset, f"mean of {row['scenes']}", key, *_cells(row),
                f"{row['psnr_covisible_pooled']:.2f}", f"{row['psnr_disoccluded_pooled']:.2f}",
            )
            for dataset, table in self.means().items()
            for key, row in table.items()
        ]
        widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
        lines = []
        for index, row in enumerate((header, *rows)):
            if index == len(self.scores) + 1:
                lines.append("-" * (sum(widths) + 2 * (len(widths) - 1)))
            lines.append("  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
        return "\n".join(lines)


def right_view_visibility(gt_left: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Co-visible and disoccluded pixels of the right view (definitions in the module doc).

    Parameters
    ----------
    gt_left : (H, W) float ground-truth disparity of the left view in px, non-finite = unknown
    Returns
    -------
    covisible, disoccluded : (H, W) bool masks on the right view's pixel grid, disjoint
    """
    check_shape(gt_left, ["H", "W"], name="gt_left")
    height, width = gt_left.shape
    valid = np.isfinite(gt_left)
    d = np.where(valid, gt_left, 0).astype(np.float64)
    ys, xs = np.mgrid[0:height, 0:width]
    covered = np.zeros((height, width), bool)

    # Spans between neighbouring pixels of one surface.
    same = valid[:, :-1] & valid[:, 1:] & (np.abs(d[:, 1:] - d[:, :-1]) <= SAME_SURFACE_PX)
    start = (xs[:, :-1] - d[:, :-1])[same]
    end = (xs[:, 1:] - d[:, 1:])[same]
    rows = ys[:, :-1][same]
    first = np.ceil(start).astype(np.int64)
    for k in range(3):  # a span is at most 1 + SAME_SURFACE_PX = 2 px long: up to 3 pixels
        column = first + k
        hit = (column <= end) & (column >= 0) & (column < width)
        covered[rows[hit], column[hit]] = True
    # Isolated pixels (and every known pixel): the nearest right pixel.
    column = np.rint(xs - d).astype(np.int64)
    hit = valid & (column >= 0) & (column < width)
    covered[ys[hit], column[hit]] = True

    uncertain = _unknown_landing(gt_left, valid) & ~covered
    holes = ~covered
    touches_border = _runs_touching_border(holes)
    disoccluded = holes & ~touches_border & ~uncertain
    return covered, disoccluded


def naive_forward_warp(image: np.ndarray, disparity: np.ndarray) -> np.ndarray:
    """The naive right view: each left pixel with a finite disparity splats to ``round(x - d)``,
    the largest disparity wins; holes take the nearest pixel of their row on the background side
    (:func:`sensing.novel_view.fill.nearest_background_in_row`). Rows that receive nothing stay black.

    image : (H, W, 3) uint8 BGR left view; disparity : (H, W) float px, non-finite = unknown
    Returns (H, W, 3) uint8 BGR.
    """
    check_shape(image, ["H", "W", 3], name="image")
    check_shape(disparity, ["H", "W"], name="disparity")
    height, width = disparity.shape
    ys, xs = np.nonzero(np.isfinite(disparity))
    values = disparity[ys, xs]
    columns = np.rint(xs - values).astype(np.int64)
    inside = (columns >= 0) & (columns < width)
    ys, xs, values, columns = ys[inside], xs[inside], values[inside], columns[inside]
    target = ys * width + columns
    order = np.lexsort((values, target))  # by target, then disparity: the last of a target wins
    target, ys, xs, values = target[order], ys[order], xs[order], values[order]
    last = np.r_[target[1:] != target[:-1], True]
    out = np.zeros_like(image)
    warped_disparity = np.full((height, width), np.inf, np.float32)
    out.reshape(-1, 3)[target[last]] = image[ys[last], xs[last]]
    warped_disparity.reshape(-1)[target[last]] = values[last]
    known = np.isfinite(warped_disparity)
    source = nearest_background_in_row(warped_disparity, known)
    rows = np.arange(height)[:, None]
    filled = out[rows, np.maximum(source, 0)]
    return np.where((source >= 0)[:, :, None], filled, 0).astype(np.uint8)


def masked_scores(
    rendered: np.ndarray, truth: np.ndarray, mask: np.ndarray, ssim_map: np.ndarray
) -> tuple[float, float, float]:
    """PSNR (dB, peak 255, at most ``PSNR_CAP_DB``), mean SSIM and mean squared error (grey levels
    squared, over pixels and channels) over ``mask``; nan for each with an empty mask.

    rendered, truth : (H, W, 3) uint8; ssim_map : (H, W, 3) float from ``structural_similarity(full=True)``
    """
    if not mask.any():
        return float("nan"), float("nan"), float("nan")
    mse = float(np.mean((truth[mask].astype(np.float64) - rendered[mask].astype(np.float64)) ** 2))
    if mse == 0.0:
        return PSNR_CAP_DB, float(ssim_map[mask].mean()), 0.0
    psnr = peak_signal_noise_ratio(truth[mask], rendered[mask], data_range=255)
    return float(min(psnr, PSNR_CAP_DB)), float(ssim_map[mask].mean()), mse


def pooled_psnr(scores: Sequence[RenderScore], pixels: str) -> float:
    """PSNR (dB, peak 255, at most ``PSNR_CAP_DB``) over the union of the ``pixels`` set
    (``covisible`` or ``disoccluded``) of ``scores``: each scene's mean squared error weighted by
    its pixel count; nan if no scene has such pixels."""
    counts = np.array([getattr(s, f"{pixels}_pixels") for s in scores], np.float64)
    errors = np.array([getattr(s, f"mse_{pixels}") for s in scores], np.float64)
    if counts.sum() == 0:
        return float("nan")
    mse = float(np.sum(np.where(counts > 0, errors * counts, 0.0)) / counts.sum())
    return PSNR_CAP_DB if mse == 0.0 else float(min(10.0 * np.log10(255.0**2 / mse), PSNR_CAP_DB))


def evaluate_render(
    scenes: Iterable[StereoScene],
    *,
    stereo_method: str = StereoConfig.method,
    on_scene: Callable[[str], None] | None = None,
) -> RenderEvalReport:
    """Score both rendering methods with the ground truth and the predicted disparity on every scene.

    stereo_method : registered stereo matcher (:func:`sensing.stereo.build_matcher`) predicting the
        disparity (default: the pipeline's), run with the scene's :func:`search_range_px` as :mod:`benchmarks.stereo_eval` does
    on_scene : called with ``dataset/scene`` after each scene (e.g. to show progress)
    """
    matcher = build_matcher(stereo_method)
    renderers: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
        "layered": render_novel_right,
        "naive": naive_forward_warp,
    }
    scores, bad2 = [], {}
    for scene in scenes:
        left, right, gt = scene.left(), scene.right(), scene.disparity_gt()
        predicted = matcher.match(left, right, max_disparity_px=search_range_px(gt)).values_px
        name = f"{scene.dataset}/{scene.name}"
        bad2[name] = bad_pixel_rate(predicted, gt, 2.0)
        covisible, disoccluded = right_view_visibility(gt)
        for disparity_name, disparity in (("gt", gt), (stereo_method, predicted)):
            for method in METHODS:
                start = time.perf_counter()
                rendered = renderers[method](left, disparity)
                ms = 1000.0 * (time.perf_counter() - start)
                _, ssim_map = structural_similarity(right, rendered, channel_axis=2, data_range=255, full=True)
                psnr_c, ssim_c, mse_c = masked_scores(rendered, right, covisible, ssim_map)
                psnr_d, ssim_d, mse_d = masked_scores(rendered, right, disoccluded, ssim_map)
                scores.append(
                    RenderScore(
                        scene.dataset, scene.name, disparity_name, method, psnr_c, ssim_c, psnr_d, ssim_d,
                        float(covisible.mean()), float(disoccluded.mean()), ms,
                        mse_c, mse_d, int(covisible.sum()), int(disoccluded.sum()),
                    )
                )
        logger.debug("render eval on %s done", name)
        if on_scene is not None:
            on_scene(name)
    return RenderEvalReport(scores, stereo_method, bad2)


def evaluate_render_data(
    root: str | os.PathLike,
    datasets: Sequence[str] | None = None,
    *,
    stereo_method: str = StereoConfig.method,
    on_scene: Callable[[str], None] | None = None,
) -> RenderEvalReport:
    """:func:`evaluate_render` on the scenes of :func:`list_stereo_scenes` ``(root, datasets)``."""
    return evaluate_render(list_stereo_scenes(root, datasets), stereo_method=stereo_method, on_scene=on_scene)


def _unknown_landing(gt_left: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Right pixels where a left pixel of unknown disparity could land (between the disparities
    of the known pixels bounding its run in the row; anywhere in a row with none known)."""
    height, width = gt_left.shape
    reach = np.zeros((height, width + 1), np.int32)
    if valid.all():
        return np.zeros((height, width), bool)
    source_left = np.maximum.accumulate(np.where(valid, np.arange(width), -1), axis=1)
    source_right = np.minimum.accumulate(np.where(valid, np.arange(width), width)[:, ::-1], axis=1)[:, ::-1]
    rows = np.arange(height)[:, None]
    bounds = [
        np.where(source >= 0, gt_left[rows, np.clip(source, 0, width - 1)], np.nan) if side == "left" else
        np.where(source < width, gt_left[rows, np.clip(source, 0, width - 1)], np.nan)
        for side, source in (("left", source_left), ("right", source_right))
    ]
    with np.errstate(invalid="ignore"):
        low = np.fmin(bounds[0], bounds[1])
        high = np.fmax(bounds[0], bounds[1])
    ys, xs = np.nonzero(~valid)
    low, high = low[ys, xs], high[ys, xs]
    none_known = np.isnan(low)
    first = np.where(none_known, 0, np.floor(xs - high)).astype(np.int64).clip(0, width)
    last = np.where(none_known, width - 1, np.ceil(xs - low)).astype(np.int64).clip(-1, width - 1)
    keep = last >= first
    np.add.at(reach, (ys[keep], first[keep]), 1)
    np.add.at(reach, (ys[keep], last[keep] + 1), -1)
    return np.cumsum(reach, axis=1)[:, :width] > 0


def _runs_touching_border(mask: np.ndarray) -> np.ndarray:
    """The pixels of ``mask`` in row runs that reach the first or last column."""
    from_left = np.logical_and.accumulate(mask, axis=1)
    from_right = np.logical_and.accumulate(mask[:, ::-1], axis=1)[:, ::-1]
    return from_left | from_right


def _cells(values: dict[str, Any]) -> tuple[str, ...]:
    return (
        f"{values['psnr_covisible']:.2f}",
        f"{values['ssim_covisible']:.3f}",
        f"{values['psnr_disoccluded']:.2f}",
        f"{values['ssim_disoccluded']:.3f}",
        f"{values['ms']:.1f}",
    )
