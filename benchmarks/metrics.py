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


def align_scale_shift(pred: np.ndarray, gt_px: np.ndarray, *, evaluated: np.ndarray | None = None) -> tuple[float, float]:
    """Least-squares ``(scale, shift)`` with ``scale * pred + shift ≈ gt_px`` over the evaluated
    pixels (finite ground truth and prediction): how a relative disparity is put in pixels."""
    mask = _evaluated(pred, gt_px, evaluated) & np.isfinite(pred)
    if mask.sum() < 2:
        return 1.0, 0.0
    x, y = pred[mask].astype(np.float64), gt_px[mask].astype(np.float64)
    design = np.stack([x, np.ones_like(x)], axis=1)
    (scale, shift), *_ = np.linalg.lstsq(design, y, rcond=None)
    return float(scale), float(shift)


def relative_depth_errors(pred: np.ndarray, gt_px: np.ndarray, *, evaluated: np.ndarray | None = None) -> dict[str, float]:
    """Errors of a relative disparity after its least-squares scale-and-shift alignment to the truth.

    pred : (H, W) relative disparity (any scale and offset; larger = nearer)
    gt_px : (H, W) ground-truth disparity px (non-finite or <= 0 = unknown)
    Returns ``abs_rel`` (mean |z_pred - z| / z on depth z = 1 / disparity), ``delta1`` (fraction
    with max(z_pred / z, z / z_pred) < 1.25) and ``rmse_px`` (RMS of the aligned disparity error,
    px). The aligned disparity is clipped to the ground truth's range, so a pixel aligned behind
    the camera counts as the farthest depth of the scene rather than an infinite error.
    """
    known = np.isfinite(gt_px) & (gt_px > 0)
    mask = known if evaluated is None else known & evaluated
    scale, shift = align_scale_shift(pred, np.where(mask, gt_px, np.inf), evaluated=mask)
    mask = mask & np.isfinite(pred)
    truth = gt_px[mask].astype(np.float64)
    aligned = np.clip(scale * pred[mask].astype(np.float64) + shift, truth.min(), truth.max())
    ratio = truth / aligned  # = z_pred / z
    return {
        "abs_rel": float(np.mean(np.abs(ratio - 1.0))),
        "delta1": float(np.mean(np.maximum(ratio, 1.0 / ratio) < 1.25)),
        "rmse_px": float(np.sqrt(np.mean((aligned - truth) ** 2))),
    }
