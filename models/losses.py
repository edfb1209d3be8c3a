"""Training losses for :class:`models.stereo_net.GlassStereoNet`.

Every term is averaged over valid ground-truth pixels; disparities are in pixels of the input.
"""

import torch
import torch.nn.functional as F

#: A pixel is "good" for the confidence target when its error is below this (px): bad-2.
GOOD_ERROR_PX = 2.0


def downsample_target(disparity: torch.Tensor, valid: torch.Tensor, factor: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Ground truth at 1/``factor``: mean of valid pixels per cell, valid where all of them are.

    disparity, valid : (N, 1, H, W) px and bool; returns (N, 1, H/f, W/f) px (of the input) and bool.
    """
    weight = valid.float()
    count = F.avg_pool2d(weight, factor)
    mean = F.avg_pool2d(disparity * weight, factor) / count.clamp_min(1e-6)
    return mean, count > 0.999


def masked_smooth_l1(prediction: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Smooth-L1 (beta 1 px) over valid pixels; 0 if none."""
    if not bool(valid.any()):
        return prediction.sum() * 0.0
    return F.smooth_l1_loss(prediction[valid], target[valid], beta=1.0)


def masked_cauchy(prediction: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, scale_px: float) -> torch.Tensor:
    """Cauchy (Lorentzian) loss ``c² log(1 + (e / c)² / 2)`` over valid pixels; 0 if none.

    Like smooth-L1 (``e² / 2``) for errors well below ``c = scale_px``, but its gradient peaks at
    ``c √2`` and falls off as ``2 c² / e`` beyond: with c = 1 px an error of 4 px pulls with 0.44 of
    smooth-L1's force and one of 20 px with 0.1, so training spends the capacity on near misses
    (what bad-2 counts) rather than on pixels the refinement cannot reach (occlusions, no texture).
    """
    if not bool(valid.any()):
        return prediction.sum() * 0.0
    ratio = (prediction[valid] - target[valid]) / scale_px
    return scale_px**2 * torch.log1p(0.5 * ratio * ratio).mean()


def disparity_loss(prediction: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, robust_scale_px: float | None) -> torch.Tensor:
    """:func:`masked_cauchy` with ``robust_scale_px``, or :func:`masked_smooth_l1` when it is None."""
    if robust_scale_px is None:
        return masked_smooth_l1(prediction, target, valid)
    return masked_cauchy(prediction, target, valid, robust_scale_px)


def level_cross_entropy(logits: torch.Tensor, disparity: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the cost-volume distribution against a two-hot target level.

    logits : (N, D, h, w); disparity : (N, 1, h, w) px of the input (4 px per level); valid bool.
    """
    levels = logits.shape[1]
    level = (disparity / 4.0).clamp(0.0, levels - 1.0001)
    lower = level.floor()
    upper_weight = level - lower
    target = torch.zeros_like(logits)
    target.scatter_(1, lower.long(), 1.0 - upper_weight)
    target.scatter_add_(1, lower.long() + 1, upper_weight)
    entropy = -(target * F.log_softmax(logits, dim=1)).sum(dim=1, keepdim=True)
    if not bool(valid.any()):
        return entropy.sum() * 0.0
    return entropy[valid].mean()


def confidence_loss(logit: torch.Tensor, disparity: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """BCE of the half-resolution confidence logit against "final error below 2 px" (no gradient
    into the disparity). logit (N, 1, H/2, W/2); disparity, target (N, 1, H, W) px; valid bool."""
    good = ((disparity.detach() - target).abs() < GOOD_ERROR_PX).float() * valid.float()
    weight = F.avg_pool2d(valid.float(), 2)
    good_fraction = F.avg_pool2d(good, 2) / weight.clamp_min(1e-6)
    keep = weight > 0.5
    if not bool(keep.any()):
        return logit.sum() * 0.0
    return F.binary_cross_entropy_with_logits(logit[keep], good_fraction[keep])


def half_passes_loss(half: torch.Tensor, disparity: torch.Tensor, valid: torch.Tensor, robust_scale_px: float | None = None) -> torch.Tensor:
    """Mean :func:`disparity_loss` of each refinement pass, upsampled to the input. half (N, P, H/2, W/2) px."""
    upsampled = F.interpolate(half, scale_factor=2.0, mode="bilinear", align_corners=False)
    return torch.stack([disparity_loss(upsampled[:, i : i + 1], disparity, valid, robust_scale_px) for i in range(half.shape[1])]).mean()


def stereo_loss(
    outputs: dict[str, torch.Tensor], disparity: torch.Tensor, valid: torch.Tensor, weights: dict[str, float], *, robust_scale_px: float | None = None
) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of the terms named in ``weights`` (final, half, quarter, levels, confidence).

    disparity (N, 1, H, W) px, valid (N, 1, H, W) bool. The final and half terms are
    :func:`disparity_loss` with ``robust_scale_px`` (None: smooth-L1); the quarter term stays
    smooth-L1, so the coarse stage still learns to fix large errors. Returns the loss and each
    term's value.
    """
    quarter_target, quarter_valid = downsample_target(disparity, valid, 4)
    terms = {
        "final": disparity_loss(outputs["disparity"], disparity, valid, robust_scale_px),
        "half": half_passes_loss(outputs["half"], disparity, valid, robust_scale_px),
        "quarter": masked_smooth_l1(outputs["quarter"], quarter_target, quarter_valid),
        "levels": level_cross_entropy(outputs["logits"], quarter_target, quarter_valid),
        "confidence": confidence_loss(outputs["confidence_logit"], outputs["disparity"], disparity, valid),
    }
    total = sum(weights[name] * value for name, value in terms.items())
    return total, {name: float(value.detach()) for name, value in terms.items()}


def normalise_scale_shift(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per image: (v - median) / mean |v - median| over the valid pixels (MiDaS), so maps that
    differ by a positive scale and a shift become equal (and targets in metres⁻¹ and in pixels
    weigh the same). (N, 1, H, W) -> same shape, 0 outside ``valid``; differentiable."""
    rows = []
    for index in range(values.shape[0]):
        mask = valid[index]
        if int(mask.sum()) < 2:
            rows.append(values[index] * 0.0)
            continue
        median = values[index][mask].median()
        spread = (values[index][mask] - median).abs().mean().clamp_min(1e-6)
        rows.append(torch.where(mask, (values[index] - median) / spread, torch.zeros_like(values[index])))
    return torch.stack(rows)


def gradient_matching(residual: torch.Tensor, valid: torch.Tensor, scales: int) -> torch.Tensor:
    """Multi-scale gradient matching (MiDaS): mean |∂x R| + |∂y R| of the aligned residual R
    over neighbouring valid pixels, at ``scales`` subsamplings by 2."""
    total = residual.sum() * 0.0
    for level in range(scales):
        step = 2**level
        r, v = residual[..., ::step, ::step], valid[..., ::step, ::step].float()
        vx = v[..., :, 1:] * v[..., :, :-1]
        vy = v[..., 1:, :] * v[..., :-1, :]
        gx = (r[..., :, 1:] - r[..., :, :-1]).abs() * vx
        gy = (r[..., 1:, :] - r[..., :-1, :]).abs() * vy
        total = total + (gx.sum() + gy.sum()) / (vx.sum() + vy.sum()).clamp_min(1.0)
    return total


def mono_loss(
    prediction: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, *, gradient_weight: float, scales: int = 4
) -> tuple[torch.Tensor, dict[str, float]]:
    """Scale-and-shift-invariant L1 plus ``gradient_weight`` times multi-scale gradient matching.

    Prediction and target are each normalised by their median and mean absolute deviation
    (:func:`normalise_scale_shift`; MiDaS' trimmed-free variant), which, unlike a least-squares
    fit of the prediction onto the target, cannot flip the sign of the prediction.
    prediction : (N, 1, H, W) unnormalised relative disparity; target : (N, 1, H, W) inverse
    depth or disparity in any per-image unit; valid : (N, 1, H, W) bool.
    """
    residual = normalise_scale_shift(prediction, valid) - normalise_scale_shift(target, valid)
    ssi = residual.abs().sum() / valid.float().sum().clamp_min(1.0)
    gradient = gradient_matching(residual, valid, scales)
    loss = ssi + gradient_weight * gradient
    return loss, {"ssi": float(ssi.detach()), "gradient": float(gradient.detach())}
