"""Building blocks of the stereo network: soft-argmax, convex upsampling, the refinement's local
correlation and warm starts."""

import pytest

torch = pytest.importorskip("torch", reason="the network needs torch (the 'train' extra)")

from models.mono_net import GlassMonoNet  # noqa: E402
from models.stereo_net import (  # noqa: E402
    HEAD_BOUND,
    GlassStereoNet,
    StereoNetConfig,
    convex_upsample,
    cosine_cost_volume,
    local_correlation,
    windowed_soft_argmax,
)
from models.training import checkpoint_bytes, warm_start  # noqa: E402

SMALL = dict(levels=16, half_channels=8, quarter_channels=16, eighth_channels=16, aggregation_channels=16, refine_channels=8)


def shifted_features(shift_px: int, width: int = 48) -> tuple[torch.Tensor, torch.Tensor]:
    """Random (1, 6, 10, width) left features and right ones with left(x) = right(x - shift_px)."""
    generator = torch.Generator().manual_seed(0)
    scene = torch.randn(1, 6, 10, width + shift_px, generator=generator)
    return scene[..., :width], scene[..., shift_px:]


@pytest.mark.parametrize("offset", [-3, 0, 2])
def test_local_correlation_peaks_where_the_disparity_is_off(offset):
    """With a constant disparity ``true + offset``, the exact match (cosine 1) is the correlation
    channel of ``k = offset`` (sampled at ``x - d + k``), index ``radius + offset``, away from the borders."""
    true_disparity, radius = 7, 4
    left, right = shifted_features(true_disparity)
    disparity = torch.full((1, 1, 10, 48), float(true_disparity + offset))
    correlation = local_correlation(left, right, disparity, radius)
    assert correlation.shape == (1, 2 * radius + 1, 10, 48)
    inner = correlation[..., 12:-12]
    assert torch.all(inner.argmax(dim=1) == radius + offset)
    assert torch.allclose(inner[:, radius + offset], torch.ones_like(inner[:, 0]), atol=1e-5)
    assert float(correlation.abs().max()) <= 1.0 + 1e-5


def test_local_correlation_is_zero_past_the_image_border():
    left, right = shifted_features(5)
    correlation = local_correlation(left, right, torch.full((1, 1, 10, 48), 5.0), 3)
    assert torch.all(correlation[:, 0, :, 0] == 0) and torch.all(correlation[:, -1, :, -1] == 0)


def test_windowed_soft_argmax_is_the_renormalised_softmax_mean_around_the_peak():
    """Against the textbook form: softmax over all levels, mean level and mass within ±window of the argmax."""
    logits = 4.0 * torch.randn(2, 12, 5, 7, generator=torch.Generator().manual_seed(1))
    level, mass = windowed_soft_argmax(logits, 2)
    probability = torch.softmax(logits, dim=1)
    levels = torch.arange(12.0).view(1, -1, 1, 1)
    inside = ((levels - logits.argmax(dim=1, keepdim=True)).abs() <= 2).float()
    expected_mass = (probability * inside).sum(dim=1, keepdim=True)
    assert torch.allclose(mass, expected_mass, atol=1e-6)
    assert torch.allclose(level, (probability * inside * levels).sum(dim=1, keepdim=True) / expected_mass, atol=1e-5)


def test_cosine_cost_volume_is_the_cosine_of_shifted_features():
    """Against the textbook form: one cosine per level between left(x) and right(x - d), 0 where
    x - d leaves the image; the true shift of a shifted texture is the best level."""
    left, right = shifted_features(5)
    volume = cosine_cost_volume(left, right, 9)
    assert volume.shape == (1, 9, 10, 48)
    unit_left, unit_right = torch.nn.functional.normalize(left, dim=1), torch.nn.functional.normalize(right, dim=1)
    for level in range(9):
        expected = (unit_left[..., level:] * unit_right[..., : 48 - level]).sum(dim=1)
        assert torch.allclose(volume[:, level, :, level:], expected, atol=1e-5)
        assert torch.all(volume[:, level, :, :level] == 0)
    assert torch.all(volume[..., 8:].argmax(dim=1) == 5)


def test_windowed_soft_argmax_at_the_ends_of_the_range_uses_only_levels_that_exist():
    """A peak at the first or last level: the window is cut there, not filled with repeats."""
    logits = torch.full((1, 6, 1, 2), -5.0)
    logits[0, :2, 0, 0] = torch.tensor([3.0, 2.0])
    logits[0, 4:, 0, 1] = torch.tensor([2.0, 3.0])
    level, mass = windowed_soft_argmax(logits, 2)
    probability = torch.softmax(logits, dim=1)[0, :, 0]
    near_first, near_last = probability[:3, 0], probability[3:, 1]
    assert torch.allclose(level[0, 0, 0], torch.stack([(near_first * torch.arange(3.0)).sum() / near_first.sum(), (near_last * torch.arange(3.0, 6.0)).sum() / near_last.sum()]), atol=1e-5)
    assert torch.allclose(mass[0, 0, 0], torch.stack([near_first.sum(), near_last.sum()]), atol=1e-6)


def test_refinement_head_is_bounded_so_the_convex_upsampling_stays_finite():
    """Huge head weights: every head output is clamped to ±HEAD_BOUND, and convex upsampling of
    logits at the bound (no max shift) neither overflows nor underflows."""
    torch.manual_seed(4)
    model = GlassStereoNet(StereoNetConfig(**SMALL)).eval()
    model.refinement.head.weight.data.mul_(1e4)
    left = 255 * torch.rand(1, 3, 32, 64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        out = model.forward_all(left, torch.roll(left, -3, dims=3))
    assert torch.isfinite(out["disparity"]).all() and torch.isfinite(out["confidence"]).all()
    assert float(out["confidence_logit"].abs().max()) <= HEAD_BOUND
    mask = torch.full((1, 36, 4, 6), -HEAD_BOUND)
    mask[:, 4::9] = HEAD_BOUND
    up = convex_upsample(torch.full((1, 1, 4, 6), 200.0), mask)
    assert torch.allclose(up, torch.full((1, 1, 8, 12), 400.0))
    assert torch.allclose(convex_upsample(torch.full((1, 1, 4, 6), 200.0), -mask), torch.full((1, 1, 8, 12), 400.0))


def test_convex_upsample_is_a_softmax_weighted_mix_of_the_3x3_neighbours():
    """Against the textbook form (unfold + softmax); a constant map upsamples to twice its value."""
    generator = torch.Generator().manual_seed(2)
    disparity, mask = 10.0 * torch.rand(1, 1, 4, 6, generator=generator), 3.0 * torch.randn(1, 36, 4, 6, generator=generator)
    up = convex_upsample(disparity, mask)
    padded = torch.nn.functional.pad(2.0 * disparity, (1, 1, 1, 1), mode="replicate")
    neighbours = torch.nn.functional.unfold(padded, 3).view(1, 9, 1, 4, 6)
    expected = (torch.softmax(mask.view(1, 9, 4, 4, 6), dim=1) * neighbours).sum(dim=1)
    assert torch.allclose(up, torch.nn.functional.pixel_shuffle(expected, 2), atol=1e-5)
    assert torch.allclose(convex_upsample(torch.full((1, 1, 4, 6), 3.0), mask), torch.full((1, 1, 8, 12), 6.0), atol=1e-5)


def test_refinement_enter_folded_for_inference_is_the_same_function():
    """Eval mode folds the BatchNorm and splits the 1x1 conv; it must match conv + BatchNorm + ReLU."""
    torch.manual_seed(3)
    refinement = GlassStereoNet(StereoNetConfig(**SMALL)).refinement
    norm = refinement.enter[1]
    norm.running_mean.uniform_(-1.0, 1.0), norm.running_var.uniform_(0.5, 2.0), norm.weight.data.uniform_(0.5, 1.5), norm.bias.data.uniform_(-0.5, 0.5)
    left = torch.randn(2, SMALL["half_channels"], 6, 10)
    matching = torch.randn(2, 2 * refinement.radius + 1 + 2, 6, 10)
    refinement.eval()
    with torch.no_grad():
        reference = refinement.enter(torch.cat([left, matching], dim=1))
        assert torch.allclose(refinement.enter_pass(left, matching), reference, atol=1e-5)
        refinement.train()
        assert torch.equal(refinement.enter_pass(left, matching), refinement.enter(torch.cat([left, matching], dim=1)))


def test_more_refine_iterations_share_the_weights_and_start_with_the_same_first_pass():
    """A copy with 2 passes has the same weights; its first pass (which uses only the head's
    disparity row) is the one-pass network's, and the second pass changes the output."""
    torch.manual_seed(5)
    one = GlassStereoNet(StereoNetConfig(**SMALL)).eval()
    with torch.no_grad():
        one.refinement.head.weight.normal_(0.0, 0.5)  # a head that moves the disparity
    two = one.with_refine_iterations(2)
    assert two.config.refine_iterations == 2 and not two.training
    assert all(torch.equal(a, b) for a, b in zip(one.state_dict().values(), two.state_dict().values()))
    left = 255 * torch.rand(1, 3, 32, 64)
    right = torch.roll(left, -3, dims=3)
    with torch.no_grad():
        out_one, out_two = one.forward_all(left, right), two.forward_all(left, right)
    assert out_two["half"].shape[1] == 2
    assert torch.allclose(out_two["half"][:, :1], out_one["half"], atol=1e-5)
    assert not torch.allclose(out_two["disparity"], out_one["disparity"], atol=1e-3)


def test_warm_start_copies_matching_tensors_and_names_the_new_ones(tmp_path):
    torch.manual_seed(0)
    source = GlassStereoNet(StereoNetConfig(**SMALL, correlation_radius=2))
    path = tmp_path / "source.pt"
    path.write_bytes(checkpoint_bytes(source))
    target = GlassStereoNet(StereoNetConfig(**SMALL, correlation_radius=3))
    started = warm_start(target, path)
    assert started["new"] == ["refinement.enter.0.weight"]
    for name in started["loaded"]:
        assert torch.equal(target.state_dict()[name], source.state_dict()[name]), name
    assert len(started["loaded"]) == len(target.state_dict()) - 1
    assert started["unused"] == ["refinement.enter.0.weight"]


def test_slimmer_network_warm_starts_from_the_full_one_and_names_the_layers_left_out(tmp_path):
    """Without the 1/2 encoder block and with 3 refinement blocks, every remaining tensor comes
    from the full network; the checkpoint's tensors of the dropped blocks are listed as unused."""
    torch.manual_seed(0)
    source = GlassStereoNet(StereoNetConfig(**SMALL))
    path = tmp_path / "source.pt"
    path.write_bytes(checkpoint_bytes(source))
    target = GlassStereoNet(StereoNetConfig(**SMALL, half_block=False, refine_blocks=3))
    started = warm_start(target, path)
    assert started["new"] == []
    dropped = (["encoder", "to_half", "1"], ["refinement", "body", "3"])
    assert started["unused"] and all(name.split(".")[:3] in dropped for name in started["unused"])
    assert len(started["loaded"]) + len(started["unused"]) == len(source.state_dict())
    left = 255 * torch.rand(1, 3, 32, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        disparity, confidence = target.eval()(left, torch.roll(left, -3, dims=3))
    assert disparity.shape == confidence.shape == (1, 1, 32, 64)


@pytest.mark.parametrize("blocks", [0, 5])
def test_refine_blocks_out_of_range_is_an_error(blocks):
    with pytest.raises(ValueError, match="refine_blocks must be 1-4"):
        GlassStereoNet(StereoNetConfig(**SMALL, refine_blocks=blocks))


def test_coarse_matching_starts_as_the_network_without_it_and_then_changes_the_output(tmp_path):
    """The 1/4-feature projection is zero after a warm start (same function), and it is wired
    into the refinement's correlation (a non-zero projection changes the disparity)."""
    torch.manual_seed(0)
    source = GlassStereoNet(StereoNetConfig(**SMALL)).eval()
    path = tmp_path / "source.pt"
    path.write_bytes(checkpoint_bytes(source))
    target = GlassStereoNet(StereoNetConfig(**SMALL, coarse_matching=True)).eval()
    assert sorted(warm_start(target, path)["new"]) == ["refinement.coarse_match.bias", "refinement.coarse_match.weight"]
    left = 255 * torch.rand(1, 3, 32, 64, generator=torch.Generator().manual_seed(1))
    right = torch.roll(left, -3, dims=3)
    with torch.no_grad():
        expected = source(left, right)[0]
        assert torch.equal(target(left, right)[0], expected)
        target.refinement.coarse_match.weight.normal_()
        assert not torch.allclose(target(left, right)[0], expected, atol=1e-3)


@pytest.mark.parametrize(
    ("source_levels", "target_levels", "size_hw"),
    [({}, {"wide_context": True}, (40, 72)), ({"wide_context": True}, {"wide_context": True, "deep_context": True}, (72, 104))],
    ids=["wide_context", "deep_context"],
)
def test_a_new_context_level_starts_as_the_network_without_it_and_then_changes_the_output(tmp_path, source_levels, target_levels, size_hw):
    """The new level (1/16 under 1/8, or 1/32 nested under 1/16) is the only tensor left out of a
    warm start and its output projection is zero (same function); it is wired into the
    aggregation, and sizes whose lowest grid is odd (1/8 of 40x72: 5x9; 1/16 of 72x104: 5x7)
    come back at their own size."""
    torch.manual_seed(0)
    source = GlassStereoNet(StereoNetConfig(**SMALL, **source_levels)).eval()
    if source.aggregation.wide is not None:
        with torch.no_grad():  # a trained 1/16 level, so a level under it can count
            source.aggregation.wide.out.weight.normal_()
    path = tmp_path / "source.pt"
    path.write_bytes(checkpoint_bytes(source))
    target = GlassStereoNet(StereoNetConfig(**SMALL, **target_levels)).eval()
    deep = "deep_context" in target_levels
    level, prefix = (target.aggregation.wide.deeper, "aggregation.wide.deeper.") if deep else (target.aggregation.wide, "aggregation.wide.")
    new = warm_start(target, path)["new"]
    assert new and all(name.startswith(prefix) for name in new)
    left = 255 * torch.rand(1, 3, *size_hw, generator=torch.Generator().manual_seed(1))
    right = torch.roll(left, -3, dims=3)
    with torch.no_grad():
        expected = source.forward_all(left, right)
        assert torch.equal(target(left, right)[0], expected["disparity"])
        level.out.weight.normal_()
        level.out.bias.normal_()
        changed = target.forward_all(left, right)
    assert changed["disparity"].shape == expected["disparity"].shape
    assert not torch.allclose(changed["logits"], expected["logits"], atol=1e-2)


def test_deep_context_without_wide_context_is_an_error():
    with pytest.raises(ValueError, match="deep_context needs wide_context"):
        GlassStereoNet(StereoNetConfig(**SMALL, deep_context=True))


def test_warm_start_from_another_network_is_an_error(tmp_path):
    path = tmp_path / "mono.pt"
    path.write_bytes(checkpoint_bytes(GlassMonoNet()))
    with pytest.raises(ValueError, match="no tensor matches"):
        warm_start(GlassStereoNet(StereoNetConfig(**SMALL)), path)
