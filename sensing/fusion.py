"""Stereo/mono fusion: the monocular relative disparity, put in the stereo's pixels, fills the
pixels where stereo is not confident.

1. Alignment: a robust least-squares scale and shift (soft-L1) of the mono disparity
   onto the confident stereo disparity, fitted on at most :data:`ALIGNMENT_SAMPLES` of them.
2. Optional local correction: the mono network's errors are mostly smooth (a slightly wrong
   slant of the floor, a wall too far), so the alignment residual on the confident pixels is
   spread into the holes by normalised convolution (a Gaussian of ``correction_sigma_px``) and
   added to the aligned mono disparity there.
3. Agreement: a not-confident stereo pixel whose disparity is within ``agreement_px`` of the
   corrected mono disparity keeps the stereo value (two independent estimates agree, and stereo
   is the more precise); the other not-confident pixels take the mono value.
4. Blending: the stereo weight is the confident mask blurred over ``seam_px`` and kept only
   on confident pixels, so stereo is used as is away from the holes and hands over smoothly
   to the filled values near them.
"""

from dataclasses import dataclass

import cv2
import numpy as np

from sensing.robust_fit import soft_l1_least_squares
from sensing.types import DisparityMap

#: Confident pixels used for the scale-and-shift fit (a fixed-seed random subset beyond this).
ALIGNMENT_SAMPLES = 5_000
#: The local correction is computed at this fraction of the resolution.
SMOOTHING_REDUCTION = 4
#: Soft-L1 scale of the alignment (px): residuals beyond it count linearly, not quadratically.
ALIGNMENT_F_SCALE_PX = 1.0


@dataclass(frozen=True, eq=False)
class Alignment:
    """``stereo_px ≈ scale * mono + shift`` over ``pixels`` confident pixels (fitted on at most
    :data:`ALIGNMENT_SAMPLES` of them); ``residual_px`` the median |error| after alignment (px)."""

    scale: float
    shift: float
    residual_px: float
    pixels: int

    def to_dict(self) -> dict[str, float | int]:
        return {
            "scale": round(self.scale, 6),
            "shift_px": round(self.shift, 4),
            "residual_px": round(self.residual_px, 4),
            "pixels": self.pixels,
        }


@dataclass(frozen=True, eq=False)
class FusedDisparity:
    """disparity : the fused map (px); stereo_weight : (H, W) float32 in [0, 1], the share of
    stereo in each pixel (0 = mono only); alignment : how mono was put in pixels."""

    disparity: DisparityMap
    stereo_weight: np.ndarray
    alignment: Alignment


def align_mono_to_stereo(mono: np.ndarray, stereo_px: np.ndarray, confident: np.ndarray) -> Alignment:
    """Robust scale and shift taking the relative ``mono`` disparity onto ``stereo_px``.

    mono : (H, W) float32 relative disparity; stereo_px : (H, W) float32 px;
    confident : (H, W) bool, where the stereo disparity is trusted (and finite)
    Raises ValueError with fewer than 2 usable pixels.
    """
    usable = confident & np.isfinite(stereo_px) & np.isfinite(mono)
    rows, cols = np.nonzero(usable)
    available = int(rows.size)
    if available < 2:
        raise ValueError("too few confident stereo pixels to align the monocular disparity")
    if rows.size > ALIGNMENT_SAMPLES:
        keep = np.random.default_rng(0).choice(rows.size, ALIGNMENT_SAMPLES, replace=False)
        rows, cols = rows[keep], cols[keep]
    x = mono[rows, cols].astype(np.float64)
    y = stereo_px[rows, cols].astype(np.float64)
    start = np.linalg.lstsq(np.stack([x, np.ones_like(x)], axis=1), y, rcond=None)[0]
    fit = soft_l1_least_squares(lambda p: p[0] * x + p[1] - y, start, ALIGNMENT_F_SCALE_PX)
    scale, shift = (float(v) for v in fit)
    residual = float(np.median(np.abs(scale * x + shift - y)))
    return Alignment(scale, shift, residual, available)


def smooth_residual(residual: np.ndarray, known: np.ndarray, sigma_px: float) -> np.ndarray:
    """Normalised convolution: the (H, W) ``residual`` known on ``known`` spread everywhere by a
    Gaussian of ``sigma_px``; 0 where no known pixel is near. Computed at 1/:data:`SMOOTHING_REDUCTION`
    resolution (the result is smooth at that scale anyway)."""
    height, width = residual.shape
    small = (max(1, width // SMOOTHING_REDUCTION), max(1, height // SMOOTHING_REDUCTION))
    weight = cv2.resize(known.astype(np.float32), small, interpolation=cv2.INTER_AREA)
    spread = cv2.resize(np.where(known, residual, 0.0).astype(np.float32), small, interpolation=cv2.INTER_AREA)
    sigma = max(sigma_px / SMOOTHING_REDUCTION, 0.5)
    weight, spread = (cv2.GaussianBlur(a, (0, 0), sigma) for a in (weight, spread))
    smooth = np.where(weight > 1e-3, spread / np.maximum(weight, 1e-3), 0.0).astype(np.float32)
    return cv2.resize(smooth, (width, height), interpolation=cv2.INTER_LINEAR)


def fuse_disparity(
    stereo: DisparityMap,
    confident: np.ndarray,
    mono: np.ndarray,
    *,
    seam_px: float = 8.0,
    correction_sigma_px: float | None = 8.0,
    agreement_px: float | None = 4.0,
) -> FusedDisparity:
    """Fill the not-confident pixels of ``stereo`` with the aligned ``mono`` disparity.

    stereo : the stereo disparity (px); confident : (H, W) bool trusted stereo pixels;
    mono : (H, W) float32 relative disparity of the same (rectified left) view
    seam_px : width of the blend at the borders of the confident regions (px)
    correction_sigma_px : reach of the local correction (px); None = global alignment only
    agreement_px : not-confident stereo within this of the filled mono is kept; None = never
    Returns a map valid everywhere mono is finite, in px, never negative.
    """
    values = stereo.values_px
    confident = confident & stereo.valid & np.isfinite(values)
    alignment = align_mono_to_stereo(mono, values, confident)
    filled = alignment.scale * mono + alignment.shift
    if correction_sigma_px:
        filled = filled + smooth_residual(values - filled, confident, correction_sigma_px)
    filled = np.maximum(filled, 0.0)
    weight = confident.astype(np.float32)
    if seam_px > 0:
        weight = cv2.GaussianBlur(weight, (0, 0), seam_px / 2.0) * confident
    if agreement_px is not None:
        agrees = ~confident & stereo.valid & np.isfinite(values) & (np.abs(np.where(stereo.valid, values, 0.0) - filled) <= agreement_px)
        filled = np.where(agrees, values, filled)
    fused = np.where(confident, weight * np.where(confident, values, 0.0) + (1.0 - weight) * filled, filled)
    valid = np.isfinite(fused)
    return FusedDisparity(DisparityMap(fused.astype(np.float32), valid), weight.astype(np.float32), alignment)
