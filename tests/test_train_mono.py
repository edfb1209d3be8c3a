"""The mono training command: seeded (two short runs give the same weights and metrics, another
seed other weights), writes its files, and the exported ONNX model matches PyTorch."""

import numpy as np
import pytest

pytest.importorskip("torch", reason="training needs torch (the 'train' extra)")

from models.data.mono_scenes import random_mono_scene  # noqa: E402
from models.train_mono import MonoTrainConfig, load_checkpoint, predict, train  # noqa: E402
from sensing.mono import MonoEstimator  # noqa: E402

SMOKE = dict(
    steps=3, batch_size=2, crop_hw=[64, 96], synthetic_fraction=1.0, train_scenes=[], validation_scenes=[],
    validate_every=3, synthetic_validation_scenes=2, pseudo_label_weights=None,
)


def _run(tmp_path, name, **overrides):
    config = MonoTrainConfig.from_yaml("configs/train_mono.yaml", **(SMOKE | {"name": name} | overrides))
    summary = train(config, tmp_path, progress=False)
    return summary, load_checkpoint(tmp_path / f"{name}.pt")


def test_same_seed_same_weights_and_metrics_and_all_files(tmp_path):
    first, model_a = _run(tmp_path, "a")
    second, model_b = _run(tmp_path, "b")
    assert first["history"][-1]["metrics"] == second["history"][-1]["metrics"]
    assert set(first["history"][-1]["metrics"]) == {"synthetic_abs_rel", "synthetic_delta1"}
    for (name, a), b in zip(model_a.state_dict().items(), model_b.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
    for suffix in (".pt", ".onnx", ".json", ".md"):
        assert (tmp_path / f"a{suffix}").is_file()
    card = (tmp_path / "a.md").read_text()
    assert "parameters" in card and "MACs at 384x288" in card


def test_other_seed_other_weights(tmp_path):
    _, model_a = _run(tmp_path, "a")
    _, model_c = _run(tmp_path, "c", seed=1)
    weights_a = next(iter(model_a.state_dict().values())).numpy()
    weights_c = next(iter(model_c.state_dict().values())).numpy()
    assert not np.array_equal(weights_a, weights_c)


def test_onnx_runtime_matches_pytorch_on_an_odd_size(tmp_path):
    _, model = _run(tmp_path, "m")
    image = random_mono_scene(np.random.default_rng(3), height=201, width=263).image
    expected = predict(model, image)
    actual = MonoEstimator(str(tmp_path / "m.onnx"), threads=1).predict(image)
    assert actual.shape == expected.shape == (201, 263)
    np.testing.assert_allclose(actual, expected, atol=2e-3)


def test_config_rejects_crops_off_the_stride():
    with pytest.raises(ValueError, match="multiples of 32"):
        MonoTrainConfig.from_yaml("configs/train_mono.yaml", crop_hw=[60, 96])
