"""Building blocks of the stereo network: the refinement's local correlation and warm starts."""

import pytest

torch = pytest.importorskip("torch", reason="the network needs torch (the 'train' extra)")

from models.mono_net import GlassMonoNet  # noqa: E402
from models.stereo_net import GlassStereoNet, StereoNetConfig, local_correlation  # noqa: E402
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


def test_warm_start_from_another_network_is_an_error(tmp_path):
    path = tmp_path / "mono.pt"
    path.write_bytes(checkpoint_bytes(GlassMonoNet()))
    with pytest.raises(ValueError, match="no tensor matches"):
        warm_start(GlassStereoNet(StereoNetConfig(**SMALL)), path)
