"""Training losses (models/losses.py): the values and gradients their docstrings promise."""

import math

import pytest

torch = pytest.importorskip("torch", reason="training needs torch (the 'train' extra)")

from models.losses import (  # noqa: E402
    disparity_loss,
    downsample_target,
    level_cross_entropy,
    masked_cauchy,
    masked_smooth_l1,
    mono_loss,
    stereo_loss,
)


def _gradient(loss_fn, error_px: float) -> float:
    prediction = torch.tensor([[[[error_px]]]], requires_grad=True)
    loss_fn(prediction, torch.zeros(1, 1, 1, 1), torch.ones(1, 1, 1, 1, dtype=torch.bool)).backward()
    return float(prediction.grad)


def test_cauchy_is_smooth_l1_for_small_errors_and_pulls_far_errors_less():
    valid = torch.ones(1, 1, 1, 1, dtype=torch.bool)
    small = torch.full((1, 1, 1, 1), 0.05)
    assert float(masked_cauchy(small, torch.zeros_like(small), valid, 1.0)) == pytest.approx(0.5 * 0.05**2, rel=1e-3)
    cauchy = lambda p, t, v: masked_cauchy(p, t, v, 1.0)  # noqa: E731
    peak = _gradient(cauchy, math.sqrt(2.0))
    assert peak == pytest.approx(1.0 / math.sqrt(2.0), rel=1e-5)
    assert _gradient(cauchy, 1.0) < peak and _gradient(cauchy, 2.0) < peak
    assert _gradient(cauchy, 4.0) == pytest.approx(4.0 / 9.0, rel=1e-5)
    assert _gradient(cauchy, 20.0) == pytest.approx(20.0 / 201.0, rel=1e-5)
    assert _gradient(masked_smooth_l1, 20.0) == pytest.approx(1.0)


def test_cauchy_scale_moves_the_peak_and_sign_follows_the_error():
    cauchy = lambda p, t, v: masked_cauchy(p, t, v, 2.0)  # noqa: E731
    assert _gradient(cauchy, 2.0 * math.sqrt(2.0)) == pytest.approx(math.sqrt(2.0), rel=1e-5)
    assert _gradient(cauchy, -3.0) == pytest.approx(-_gradient(cauchy, 3.0))


def test_losses_ignore_invalid_pixels_and_are_zero_without_any():
    prediction = torch.tensor([[[[1.0, 50.0]]]])
    target = torch.zeros_like(prediction)
    valid = torch.tensor([[[[True, False]]]])
    assert float(masked_cauchy(prediction, target, valid, 1.0)) == pytest.approx(math.log1p(0.5))
    assert float(masked_smooth_l1(prediction, target, valid)) == pytest.approx(0.5)
    nothing = torch.zeros_like(valid)
    assert float(masked_cauchy(prediction, target, nothing, 1.0)) == 0.0
    assert float(disparity_loss(prediction, target, nothing, None)) == 0.0


def test_disparity_loss_picks_smooth_l1_without_a_robust_scale():
    prediction, target = torch.tensor([[[[3.0]]]]), torch.zeros(1, 1, 1, 1)
    valid = torch.ones(1, 1, 1, 1, dtype=torch.bool)
    assert float(disparity_loss(prediction, target, valid, None)) == pytest.approx(2.5)
    assert float(disparity_loss(prediction, target, valid, 1.0)) == pytest.approx(math.log1p(4.5))


def test_downsample_target_averages_cells_and_drops_partly_invalid_ones():
    disparity = torch.arange(16, dtype=torch.float32).view(1, 1, 4, 4)
    valid = torch.ones_like(disparity, dtype=torch.bool)
    valid[0, 0, 0, 0] = False
    mean, cell_valid = downsample_target(disparity, valid, 2)
    assert cell_valid.tolist() == [[[[False, True], [True, True]]]]
    assert float(mean[0, 0, 1, 1]) == pytest.approx((10 + 11 + 14 + 15) / 4)


def test_level_cross_entropy_is_lowest_for_the_two_hot_target():
    disparity = torch.full((1, 1, 1, 1), 6.0)  # level 1.5: half on level 1, half on level 2
    valid = torch.ones_like(disparity, dtype=torch.bool)
    right = torch.tensor([-9.0, 0.0, 0.0, -9.0]).view(1, 4, 1, 1)
    wrong = torch.tensor([0.0, -9.0, -9.0, 0.0]).view(1, 4, 1, 1)
    assert float(level_cross_entropy(right, disparity, valid)) < float(level_cross_entropy(wrong, disparity, valid))
    assert float(level_cross_entropy(right, disparity, valid)) == pytest.approx(math.log(2.0), abs=1e-3)


def _outputs(disparity: torch.Tensor) -> dict[str, torch.Tensor]:
    n, _, h, w = disparity.shape
    return {
        "disparity": disparity,
        "half": disparity[..., ::2, ::2],
        "quarter": disparity[..., ::4, ::4],
        "logits": torch.zeros(n, 8, h // 4, w // 4),
        "confidence_logit": torch.zeros(n, 1, h // 2, w // 2),
    }


def test_stereo_loss_applies_the_robust_scale_to_the_final_and_half_terms_only():
    target = torch.full((1, 1, 8, 8), 8.0)
    valid = torch.ones_like(target, dtype=torch.bool)
    outputs = _outputs(target + 10.0)
    weights = {"final": 1.0, "half": 1.0, "quarter": 1.0, "levels": 0.0, "confidence": 0.0}
    _, plain = stereo_loss(outputs, target, valid, weights)
    _, robust = stereo_loss(outputs, target, valid, weights, robust_scale_px=1.0)
    assert plain["final"] == pytest.approx(9.5) and plain["half"] == pytest.approx(9.5)
    assert robust["final"] == pytest.approx(math.log1p(50.0)) and robust["half"] == pytest.approx(math.log1p(50.0))
    assert robust["quarter"] == plain["quarter"] == pytest.approx(9.5)


def test_mono_loss_ignores_a_positive_scale_and_shift_but_not_a_flip():
    target = torch.linspace(1.0, 5.0, 64).view(1, 1, 8, 8)
    valid = torch.ones_like(target, dtype=torch.bool)
    same, _ = mono_loss(3.0 * target + 7.0, target, valid, gradient_weight=0.5)
    flipped, _ = mono_loss(-target, target, valid, gradient_weight=0.5)
    assert float(same) == pytest.approx(0.0, abs=1e-5)
    assert float(flipped) > 1.0
