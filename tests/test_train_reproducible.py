"""The training command is seeded: two short runs of the same config give the same weights and
metrics, and a different seed gives different ones."""

import dataclasses

import numpy as np
import pytest

pytest.importorskip("torch", reason="training needs torch (the 'train' extra)")

from models.train_stereo import TrainConfig, load_checkpoint, train  # noqa: E402

SMOKE = dict(
    steps=3, batch_size=2, crop_hw=[64, 96], max_disparity_px=24, synthetic_fraction=1.0, rendered_fraction=0.0, rendered_scenes=0, train_scenes=[],
    validation_scenes=[], validate_every=3, synthetic_validation_pairs=2, alternate_crop=None,
)


def _run(tmp_path, name, **overrides):
    settings = SMOKE | {"name": name} | overrides
    config = TrainConfig.from_yaml("configs/train_stereo.yaml", **settings)
    # from_yaml skips None overrides (unset command-line options): those are set here
    config = dataclasses.replace(config, **{key: value for key, value in settings.items() if value is None})
    summary = train(config, tmp_path, progress=False)
    return summary, load_checkpoint(tmp_path / f"{name}.pt")


def test_same_seed_same_weights_and_metrics(tmp_path):
    first, model_a = _run(tmp_path, "a")
    second, model_b = _run(tmp_path, "b")
    assert first["history"][-1]["metrics"] == second["history"][-1]["metrics"]
    for (name, a), b in zip(model_a.state_dict().items(), model_b.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
    card = (tmp_path / "a.md").read_text()
    assert "parameters" in card and "MACs at 640x480" in card
    assert "| disparity loss (final, 1/2) | Cauchy, scale 1 px;" in card  # the shipped config's
    started = [line for line in card.splitlines() if line.startswith("| started from |")]
    assert len(started) == 1 and "newly initialised:" in started[0] and "left out:" in started[0]  # the config warm-starts


def test_other_seed_other_weights(tmp_path):
    _, model_a = _run(tmp_path, "a")
    _, model_c = _run(tmp_path, "c", seed=1)
    weights_a = next(iter(model_a.state_dict().values())).numpy()
    weights_c = next(iter(model_c.state_dict().values())).numpy()
    assert not np.array_equal(weights_a, weights_c)


def test_robust_scale_changes_the_training_and_the_card_names_the_loss(tmp_path):
    _, robust = _run(tmp_path, "robust", robust_scale_px=1.0)
    _, plain = _run(tmp_path, "plain", robust_scale_px=None)
    assert "| disparity loss (final, 1/2) | smooth-L1, beta 1 px;" in (tmp_path / "plain.md").read_text()
    changed = [name for name, tensor in robust.state_dict().items() if not np.array_equal(tensor.numpy(), plain.state_dict()[name].numpy())]
    assert changed


def test_config_rejects_fractions_outside_0_1():
    for setting in ("grey_fraction", "mirror_fraction", "synthetic_fraction", "low_texture_fraction", "rendered_fraction"):
        with pytest.raises(ValueError, match=f"{setting} must be in \\[0, 1\\]"):
            TrainConfig.from_yaml("configs/train_stereo.yaml", **{setting: 1.5})


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("device", "tpu", "device must be one of"),
        ("data_workers", 0, "data_workers must be at least 1"),
        ("robust_scale_px", 0.0, "robust_scale_px must be positive or null"),
        ("alternate_crop", [64, 100, 2], "alternate_crop must be \\[height, width, batch_size\\]"),
        ("alternate_crop", [64, 96], "alternate_crop must be"),
        ("alternate_crop", [64, 96, 0], "alternate_crop must be"),
        ("rendered_fraction", 0.6, "synthetic_fraction \\+ rendered_fraction must be at most 1"),
        ("rendered_fraction", 0.1, "rendered_fraction > 0 needs rendered_scenes >= 1"),
        ("rendered_hw", [384], "rendered_hw must be \\[height, width\\]"),
    ],
)
def test_config_rejects_unknown_device_no_workers_and_a_robust_scale_of_zero(setting, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_yaml("configs/train_stereo.yaml", **({"synthetic_fraction": 0.5, "rendered_fraction": 0.0, "rendered_scenes": 0} | {setting: value}))


def test_training_device_auto_falls_back_to_the_cpu_and_cuda_needs_a_gpu():
    import torch

    from models.training import training_device

    assert training_device("cpu").type == "cpu"
    assert training_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="torch sees no CUDA device"):
            training_device("cuda")


def test_two_data_workers_reproduce_too(tmp_path):
    """Each worker seeds its own stream from (seed, worker index): runs repeat for a given count."""
    first, model_a = _run(tmp_path, "a", data_workers=2)
    second, model_b = _run(tmp_path, "b", data_workers=2)
    assert first["history"][-1]["metrics"] == second["history"][-1]["metrics"]
    for (name, a), b in zip(model_a.state_dict().items(), model_b.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
    assert "2 CPU threads" in (tmp_path / "a.md").read_text()


def test_alternate_crop_draws_every_second_batch_at_its_size_and_reproduces(tmp_path):
    import torch

    from models.train_stereo import training_batches

    config = TrainConfig.from_yaml("configs/train_stereo.yaml", **(SMOKE | {"alternate_crop": [96, 128, 1]}))
    batches = training_batches(config, torch.device("cpu"))
    shapes = [tuple(next(batches)[0].shape) for _ in range(4)]
    assert shapes == [(2, 3, 64, 96), (1, 3, 96, 128)] * 2
    first, model_a = _run(tmp_path, "a", alternate_crop=[96, 128, 1])
    second, model_b = _run(tmp_path, "b", alternate_crop=[96, 128, 1])
    _, plain = _run(tmp_path, "plain")
    assert first["history"][-1]["metrics"] == second["history"][-1]["metrics"]
    for (name, a), b in zip(model_a.state_dict().items(), model_b.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
    assert not all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(model_a.state_dict().values(), plain.state_dict().values()))
    assert "every second step 1 crops of 128x96" in (tmp_path / "a.md").read_text()


def test_rendered_fraction_of_the_pairs_are_crops_of_the_rendered_scenes():
    import itertools

    from models.data.real_crops import LoadedScene
    from models.train_stereo import TrainingPairs

    # A rendered "scene" of one constant disparity: its crops have one disparity each (scaled by
    # the crop's zoom); procedural pairs never do.
    texture = np.random.default_rng(0).integers(0, 256, (80, 128, 3), dtype=np.uint8)
    plane = np.full((80, 120), 5.0, np.float32)
    rendered = LoadedScene("rendered/plane", texture[:, 8:], texture[:, :-8], plane, plane)
    config = TrainConfig.from_yaml(
        "configs/train_stereo.yaml",
        **(SMOKE | {"synthetic_fraction": 0.5, "rendered_fraction": 0.5, "rendered_scenes": 1, "rendered_hw": [80, 120], "train_scenes": ["x/y"]}),
    )
    samples = list(itertools.islice(iter(TrainingPairs(config, [], rendered=[rendered])), 40))
    constant = [float(d[v].std()) < 1e-4 for _, _, d, v in samples]
    assert 10 <= sum(constant) <= 30
    only_rendered = dataclasses.replace(config, synthetic_fraction=0.0, rendered_fraction=1.0)
    assert all(float(d[v].std()) < 1e-4 for _, _, d, v in itertools.islice(iter(TrainingPairs(only_rendered, [], rendered=[rendered])), 10))


def test_a_run_with_rendered_scenes_reproduces_and_its_card_says_so(tmp_path):
    rendered = {"synthetic_fraction": 0.5, "rendered_fraction": 0.5, "rendered_scenes": 2, "rendered_hw": [64, 96], "train_scenes": ["x/y"]}
    first, model_a = _run(tmp_path, "a", **rendered)
    second, model_b = _run(tmp_path, "b", **rendered)
    assert first["history"][-1]["metrics"] == second["history"][-1]["metrics"]
    for (name, a), b in zip(model_a.state_dict().items(), model_b.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
    card = (tmp_path / "a.md").read_text()
    assert "- 50% random crops of 2 3D scenes" in card and "rendered as 96x64 pairs" in card
