"""The stereo network's runtime (``NetMatcher`` on ONNX Runtime) against PyTorch, on a small
random-init network exported to ONNX; MAC counting; a two-step smoke training run."""

from dataclasses import replace

import cv2
import numpy as np
import pytest

pytest.importorskip("torch", reason="exporting the network needs torch (the 'train' extra)")
pytest.importorskip("onnx", reason="exporting the network needs onnx (the 'train' extra)")

import onnx  # noqa: E402
import torch  # noqa: E402

from models.export import count_macs, export_stereo_onnx  # noqa: E402
from models.stereo_net import STRIDE, GlassStereoNet, StereoNetConfig  # noqa: E402
from models.train_stereo import TrainConfig, load_checkpoint, predict, train  # noqa: E402
from sensing.errors import ConfigError  # noqa: E402
from sensing.stereo import NetMatcher, build_matcher, onnx_session, pad_to_stride  # noqa: E402
from sensing.visibility import fill_occluded, fill_out_of_view, fill_unmatched  # noqa: E402

SMALL = StereoNetConfig(
    levels=16, half_channels=8, quarter_channels=16, eighth_channels=16, aggregation_channels=16, refine_channels=8
)
METADATA = {"name": "random-init test net"}


@pytest.fixture(scope="module")
def small_net(tmp_path_factory):
    """(PyTorch model, path of its ONNX export) of a seeded random-init small network."""
    torch.manual_seed(0)
    model = GlassStereoNet(SMALL).eval()
    path = tmp_path_factory.mktemp("net") / "small.onnx"
    export_stereo_onnx(model, path, METADATA)
    return model, str(path)


def textured_pair(height: int, width: int, shift_px: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A uint8 BGR pair: blurred noise, the right view the left one shifted by ``shift_px``."""
    rng = np.random.default_rng(seed)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (height, width + shift_px, 3), dtype=np.uint8), (3, 3), 0)
    return np.ascontiguousarray(texture[:, shift_px:]), np.ascontiguousarray(texture[:, :-shift_px])


def raw_matcher(path: str) -> NetMatcher:
    """The runtime without the background fill of unmatched pixels: the network's own output."""
    return NetMatcher(weights=path, threads=1, fill_out_of_view=False, fill_occluded=False)


def as_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H', W') float32, padded to the stride as the runtime does."""
    return torch.from_numpy(pad_to_stride(image, STRIDE)[0].transpose(2, 0, 1).copy()).float()[None]


def assert_close_where_in_range(onnx_disparity: np.ndarray, torch_disparity: np.ndarray, max_disparity: float) -> None:
    """ONNX equals PyTorch (1e-2 px) wherever PyTorch's value lies in the search range (the
    runtime clips to it)."""
    inside = (torch_disparity >= 0.0) & (torch_disparity <= max_disparity)
    assert inside.mean() > 0.5
    np.testing.assert_allclose(onnx_disparity[inside], torch_disparity[inside], rtol=0, atol=1e-2)


def test_odd_size_shape_dtype_and_ranges(small_net):
    _, path = small_net
    left, right = textured_pair(75, 101)
    matcher = NetMatcher(weights=path, threads=1)
    reach = SMALL.max_disparity_px
    disparity, confidence = matcher.match_with_confidence(left, right, max_disparity_px=reach)
    assert disparity.values_px.shape == (75, 101) and disparity.values_px.dtype == np.float32
    assert disparity.valid.shape == (75, 101) and disparity.valid.all()
    assert np.isfinite(disparity.values_px).all()
    assert disparity.values_px.min() >= 0.0 and disparity.values_px.max() <= reach
    assert confidence.shape == (75, 101) and confidence.dtype == np.float32
    assert confidence.min() >= 0.0 and confidence.max() <= 1.0
    np.testing.assert_array_equal(matcher.match(left, right, max_disparity_px=reach).values_px, disparity.values_px)


def test_unmatched_pixels_get_the_background_fill(small_net):
    """By default the runtime fills the out-of-view band of the network's output, then the
    occluded pixels (sensing.visibility); each can be turned off; the confidence is not changed."""
    _, path = small_net
    left, right = textured_pair(75, 101, shift_px=12, seed=5)
    reach = SMALL.max_disparity_px
    raw, raw_confidence = raw_matcher(path).match_with_confidence(left, right, max_disparity_px=reach)
    default, confidence = NetMatcher(weights=path, threads=1).match_with_confidence(left, right, max_disparity_px=reach)
    np.testing.assert_array_equal(confidence, raw_confidence)
    expected_band, band = fill_out_of_view(raw.values_px)
    assert band.any()
    band_only = NetMatcher(weights=path, threads=1, fill_occluded=False).match(left, right, max_disparity_px=reach)
    np.testing.assert_array_equal(band_only.values_px, expected_band)
    np.testing.assert_array_equal(default.values_px, fill_occluded(expected_band)[0])
    np.testing.assert_array_equal(default.values_px, fill_unmatched(raw.values_px))
    assert default.valid.all() and not np.array_equal(default.values_px, band_only.values_px)


def test_scales_keep_the_most_confident_run_per_pixel(small_net):
    """With two scales each pixel holds the disparity of the run (at 1x, or on views resized by
    1.5 and the disparity scaled back) whose confidence is higher there."""
    _, path = small_net
    left, right = textured_pair(75, 101, seed=3)
    reach = SMALL.max_disparity_px // 2
    one, one_confidence = raw_matcher(path).match_with_confidence(left, right, max_disparity_px=reach)
    size = (round(101 * 1.5), round(75 * 1.5))
    big = [cv2.resize(view, size, interpolation=cv2.INTER_LINEAR) for view in (left, right)]
    at_big, big_confidence = raw_matcher(path).match_with_confidence(*big, max_disparity_px=round(1.5 * reach))
    scaled = cv2.resize(at_big.values_px, (101, 75), interpolation=cv2.INTER_LINEAR) * (101 / size[0])
    scaled_confidence = cv2.resize(big_confidence, (101, 75), interpolation=cv2.INTER_LINEAR)
    both = replace(raw_matcher(path), scales=[1.0, 1.5])
    assert both.scales == (1.0, 1.5)
    fused, confidence = both.match_with_confidence(left, right, max_disparity_px=reach)
    bigger = scaled_confidence > one_confidence
    assert 0.0 < bigger.mean() < 1.0
    inside = (scaled >= 0.0) & (scaled <= reach)
    np.testing.assert_allclose(fused.values_px[bigger & inside], scaled[bigger & inside], atol=1e-3)
    np.testing.assert_array_equal(fused.values_px[~bigger], one.values_px[~bigger])
    np.testing.assert_allclose(confidence, np.maximum(one_confidence, np.clip(scaled_confidence, 0, 1)), atol=1e-6)


def test_a_scale_past_the_network_reach_adds_nothing(small_net):
    """Where the search range already needs the whole reach, a larger scale shrinks back to
    the one run."""
    _, path = small_net
    left, right = textured_pair(75, 101, seed=4)
    reach = SMALL.max_disparity_px
    one = NetMatcher(weights=path, threads=1).match_with_confidence(left, right, max_disparity_px=reach)
    two = NetMatcher(weights=path, threads=1, scales=(1.0, 1.5)).match_with_confidence(left, right, max_disparity_px=reach)
    for a, b in zip((one[0].values_px, one[1]), (two[0].values_px, two[1])):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("scales", [(), (0.0,), (1.0, 9.0), ("x",), 1.5])
def test_bad_scales_are_a_config_error(small_net, scales):
    _, path = small_net
    with pytest.raises(ConfigError, match="scales"):
        NetMatcher(weights=path, threads=1, scales=scales)


def test_values_clipped_to_a_small_search_range(small_net):
    _, path = small_net
    left, right = textured_pair(75, 101)
    disparity = NetMatcher(weights=path, threads=1).match(left, right, max_disparity_px=3)
    assert disparity.values_px.min() >= 0.0 and disparity.values_px.max() <= 3.0


def test_grey_input_is_accepted(small_net):
    _, path = small_net
    left, right = (cv2.cvtColor(view, cv2.COLOR_BGR2GRAY) for view in textured_pair(75, 101))
    matcher = NetMatcher(weights=path, threads=1)
    grey = matcher.match(left, right, max_disparity_px=SMALL.max_disparity_px)
    assert grey.values_px.shape == (75, 101) and grey.values_px.dtype == np.float32
    as_bgr = [cv2.cvtColor(view, cv2.COLOR_GRAY2BGR) for view in (left, right)]
    np.testing.assert_array_equal(grey.values_px, matcher.match(*as_bgr, max_disparity_px=SMALL.max_disparity_px).values_px)


def test_properties_carry_stride_max_disparity_and_info(small_net):
    _, path = small_net
    properties = NetMatcher(weights=path, threads=1).properties
    assert properties["stride"] == STRIDE
    assert properties["max_disparity_px"] == SMALL.max_disparity_px
    assert properties["info"] == METADATA


@pytest.mark.parametrize("size_hw", [(75, 101), (64, 128)])
def test_onnx_matches_pytorch(small_net, size_hw):
    model, path = small_net
    left, right = textured_pair(*size_hw, seed=1)
    reach = SMALL.max_disparity_px
    onnx_disparity, onnx_confidence = raw_matcher(path).match_with_confidence(left, right, max_disparity_px=reach)
    assert_close_where_in_range(onnx_disparity.values_px, predict(model, left, right), reach)
    # The confidence output too (predict returns the disparity only).
    height, width = size_hw
    with torch.no_grad():
        _, torch_confidence = model(as_tensor(left), as_tensor(right))
    np.testing.assert_allclose(onnx_confidence, torch_confidence[0, 0, :height, :width].numpy(), rtol=0, atol=1e-3)


def test_sized_session_fixes_the_input_size_and_matches_the_dynamic_one(small_net):
    _, path = small_net
    left, right = (as_tensor(view).numpy().astype(np.uint8) for view in textured_pair(64, 128, seed=3))
    dynamic = onnx_session(path, 1)
    sized = onnx_session(path, 1, (64, 128))
    assert dynamic.get_inputs()[0].shape[2:] == ["height", "width"]
    assert [view.shape for view in sized.get_inputs()] == [[1, 3, 64, 128]] * 2
    assert onnx_session(path, 1, (64, 128)) is sized and onnx_session(path, 1, (72, 128)) is not sized
    assert not sized.get_session_options().enable_mem_pattern  # with it the net pipeline peaked 69 MB higher
    assert sized.get_session_options().get_session_config_entry("session.use_env_allocators") == "1"  # one shared arena: 24 MB lower
    feed = {"left": left, "right": right}
    for expected, actual in zip(dynamic.run(None, feed), sized.run(None, feed)):
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-3)
    with pytest.raises(Exception, match="(?i)dimension|shape"):
        sized.run(None, {name: np.zeros((1, 3, 72, 128), np.uint8) for name in feed})


def test_float_input_exports_still_run(small_net, tmp_path):
    """Exports before the uint8 inputs took float32 views in [0, 255]; the runtime feeds those too."""
    model, path = small_net
    float_path = tmp_path / "float_inputs.onnx"
    example = torch.zeros(1, 3, 8 * STRIDE, 16 * STRIDE)
    names = ("left", "right", "disparity", "confidence")
    torch.onnx.export(model, (example, example), str(float_path), input_names=list(names[:2]), output_names=list(names[2:]),
                      dynamic_axes={name: {2: "height", 3: "width"} for name in names}, opset_version=17, dynamo=False)
    onnx_model = onnx.load(str(float_path))
    onnx.helper.set_model_props(onnx_model, {key: value for key, value in ((p.key, p.value) for p in onnx.load(path).metadata_props)})
    onnx.save(onnx_model, str(float_path))
    assert onnx_session(str(float_path), 1).get_inputs()[0].type == "tensor(float)"
    left, right = textured_pair(64, 128, seed=4)
    reach = SMALL.max_disparity_px
    expected = NetMatcher(weights=path, threads=1).match(left, right, max_disparity_px=reach).values_px
    actual = NetMatcher(weights=str(float_path), threads=1).match(left, right, max_disparity_px=reach).values_px
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-3)


def test_wide_search_range_downscales_the_views(small_net):
    """A range well beyond the net's reach: the views shrink to fit and the disparity is scaled
    back to the input's pixels, at the input's size."""
    model, path = small_net
    matcher = raw_matcher(path)
    reach = matcher.properties["max_disparity_px"]
    wide = int(2 * reach)
    left, right = textured_pair(75, 101, shift_px=12, seed=2)
    disparity, confidence = matcher.match_with_confidence(left, right, max_disparity_px=wide)
    assert disparity.values_px.shape == (75, 101) and confidence.shape == (75, 101)
    assert disparity.values_px.min() >= 0.0 and disparity.values_px.max() <= wide
    assert confidence.min() >= 0.0 and confidence.max() <= 1.0
    # The same as the net on the half-size pair with its disparities doubled (up to resampling).
    scale = reach / wide
    small_size = (round(101 * scale), round(75 * scale))
    small = [cv2.resize(view, small_size, interpolation=cv2.INTER_AREA) for view in (left, right)]
    expected = cv2.resize(predict(model, *small), (101, 75), interpolation=cv2.INTER_LINEAR) * (101 / small_size[0])
    inside = (expected >= 0.0) & (expected <= wide)
    assert np.median(np.abs(disparity.values_px - expected)[inside]) < 0.05
    # Not what the net gives at full resolution, where it cannot reach the range.
    full = matcher.match(left, right, max_disparity_px=reach).values_px
    assert not np.allclose(disparity.values_px, full, atol=0.5)


def test_missing_weights_is_a_config_error(tmp_path):
    missing = tmp_path / "missing.onnx"
    with pytest.raises(ConfigError, match="not found"):
        NetMatcher(weights=str(missing))
    with pytest.raises(ConfigError, match="not found"):
        build_matcher("net", weights=str(missing))


def test_weights_giving_nan_are_a_config_error(tmp_path):
    """Broken weights (a NaN in a layer) stop with an error naming the file, not deep in the fill."""
    torch.manual_seed(0)
    model = GlassStereoNet(SMALL).eval()
    with torch.no_grad():
        model.refinement.head.bias.fill_(float("nan"))
    path = tmp_path / "nan.onnx"
    export_stereo_onnx(model, path, METADATA)
    left, right = textured_pair(48, 64)
    with pytest.raises(ConfigError, match=r"nan\.onnx gave non-finite values .* disparity, confidence output"):
        NetMatcher(weights=str(path), threads=1).match(left, right, max_disparity_px=32)


def test_build_matcher_net(small_net):
    _, path = small_net
    matcher = build_matcher("net", weights=path, threads=1)
    assert isinstance(matcher, NetMatcher) and matcher.name == "net"
    left, right = textured_pair(48, 64)
    assert matcher.match(left, right, max_disparity_px=32).values_px.shape == (48, 64)


def test_count_macs_positive_and_growing_with_size(small_net):
    model, _ = small_net
    small, large = count_macs(model, 32, 64), count_macs(model, 64, 128)
    assert isinstance(small, int) and small > 0
    assert large > 3 * small


def test_smoke_training_run(tmp_path):
    """Two optimiser steps on procedural pairs only: every output file, an ONNX file the runtime
    loads, and a checkpoint whose PyTorch output is the runtime's."""
    config = TrainConfig.from_yaml(
        "configs/train_stereo.yaml", steps=2, batch_size=2, crop_hw=[64, 128], alternate_crop=[64, 96, 1], max_disparity_px=32,
        synthetic_fraction=1.0, rendered_fraction=0.0, rendered_scenes=0, validation_scenes=[], validate_every=1, train_scenes=[], synthetic_validation_pairs=2,
    )
    summary = train(config, tmp_path, progress=False)
    for suffix in (".onnx", ".pt", ".md", ".json"):
        assert (tmp_path / f"{config.name}{suffix}").is_file(), suffix
    assert [row["step"] for row in summary["history"]] == [1, 2]
    matcher = raw_matcher(str(tmp_path / f"{config.name}.onnx"))
    assert matcher.properties["max_disparity_px"] == config.model.max_disparity_px
    model = load_checkpoint(tmp_path / f"{config.name}.pt")
    left, right = textured_pair(75, 101, seed=3)
    reach = config.model.max_disparity_px
    assert_close_where_in_range(matcher.match(left, right, max_disparity_px=reach).values_px, predict(model, left, right), reach)
