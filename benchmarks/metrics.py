"""Disparity error metrics (pure numpy), counted the way the Middlebury benchmark counts them.

All functions take a prediction and ground truth of the same (H, W) shape in pixels, with a
non-finite value marking a missing prediction or unknown ground truth. Pixels are *evaluated*
where the ground truth is finite and, if given, ``evaluated`` is True.
"""

import numpy as np

from sensing.checks import check_shape


def bad_pixel_rate(
    pred_px: np.ndarray, gt_px: np.ndarray, threshold_px: float, *, evaluated: np.ndarray | None = None
) -> float:
    """Fraction of evaluated pixels whose prediction is missing or off by more than ``threshold_px``.

    Parameters
    ----------
    pred_px : (H, W) float disparity in px; non-finite = no prediction (counts as an error)
    gt_px : (H, W) float ground-truth disparity in px; non-finite = unknown (not evaluated)
    threshold_px : largest absolute error in px that still counts as correct
    evaluated : optional (H, W) bool mask further restricting the evaluated pixels
    Returns
    -------
    float in [0, 1]; nan if no pixel is evaluated
    """
    mask = _evaluated(pred_px, gt_px, evaluated)
    if not mask.any():
        return float("nan")
    with np.errstate(invalid="ignore"):
        good = np.abs(pred_px[mask] - gt_px[mask]) <= threshold_px
    return float(1.0 - good.mean())


def end_point_error(pred_px: np.ndarray, gt_px: np.ndarray, *, evaluated: np.ndarray | None = None) -> float:
    """Mean absolute disparity error in px over evaluated pixels that have a prediction.

    Parameters as in :func:`bad_pixel_rate`. Returns nan if no evaluated pixel has a prediction.
    """
    mask = _evaluated(pred_px, gt_px, evaluated) & np.isfinite(pred_px)
    if not mask.any():
        return float("nan")
    return float(np.abs(pred_px[mask].astype(np.float64) - gt_px[mask]).mean())


def density(pred_px: np.ndarray, gt_px: np.ndarray, *, evaluated: np.ndarray | None = None) -> float:
    """Fraction of evaluated pixels with a finite prediction (nan if no pixel is evaluated).

    Parameters as in :func:`bad_pixel_rate`.
    """
    mask = _evaluated(pred_px, gt_px, evaluated)
    if not mask.any():
        return float("nan")
    return float(np.isfinite(pred_px[mask]).mean())


def _evaluated(pred_px: np.ndarray, gt_px: np.ndarray, evaluated: np.ndarray | None) -> np.ndarray:
    check_shape(pred_px, ["H", "W"], name="pred_px")
    check_shape(gt_px, [*pred_px.shape], name="gt_px")
    mask = np.isfinite(gt_px)
    if evaluated is not None:
        check_shape(evaluated, [*pred_px.shape], name="evaluated")
        mask &= evaluated.astype(bool)
    return mask
