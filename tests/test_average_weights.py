"""``python -m models.average_weights``: the mean of checkpoints of one training chain, exported."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="averaging checkpoints needs torch (the 'train' extra)")
pytest.importorskip("onnx", reason="exporting the networks needs onnx (the 'train' extra)")

import onnx  # noqa: E402
import onnxruntime  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from checkpoints import SMALL_STEREO as SMALL, write_run  # noqa: E402
from models import export  # noqa: E402
from models.average_weights import average_state_dicts, main, recompute_batchnorm  # noqa: E402
from models.stereo_net import GlassStereoNet, StereoNetConfig  # noqa: E402
from models.train_stereo import TrainConfig  # noqa: E402
from sensing.stereo import onnx_properties  # noqa: E402


@pytest.fixture
def tiny_config(tmp_path):
    """The shipped training config on small procedural crops only (no data root needed)."""
    raw = yaml.safe_load(Path("configs/train_stereo.yaml").read_text())
    raw |= {"batch_size": 2, "crop_hw": [64, 96], "max_disparity_px": 24, "synthetic_fraction": 1.0, "rendered_fraction": 0.0, "rendered_scenes": 0, "train_scenes": [], "validation_scenes": []}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def random_model(seed: int, config: StereoNetConfig = SMALL) -> GlassStereoNet:
    """A network with random weights and random BatchNorm statistics (so both are averaged)."""
    torch.manual_seed(seed)
    model = GlassStereoNet(config)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5), module.running_var.uniform_(0.5, 2.0)
                module.num_batches_tracked.fill_(seed)
    return model.eval()


def test_average_state_dicts_takes_the_mean_of_floats_and_the_last_counter():
    first = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}
    second = {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor(5)}
    averaged = average_state_dicts([first, second])
    assert torch.equal(averaged["w"], torch.tensor([2.0, 4.0]))
    assert int(averaged["n"]) == 5


@pytest.mark.parametrize("other", [{"v": torch.zeros(2)}, {"w": torch.zeros(3)}])
def test_average_state_dicts_refuses_different_networks(other):
    with pytest.raises(ValueError, match="names or shapes"):
        average_state_dicts([{"w": torch.zeros(2)}, other])


def _mean_model(models, config_path=None, bn_batches=0):
    """What the command should produce: the mean of ``models``, BatchNorm measured again if asked."""
    model = GlassStereoNet(SMALL)
    model.load_state_dict(average_state_dicts([model.state_dict() for model in models]))
    if bn_batches:
        recompute_batchnorm(model, TrainConfig.from_yaml(config_path), bn_batches)
    return model.eval()


@pytest.mark.parametrize("bn_batches", [0, 2])
def test_averaged_weights_are_written_and_run_as_the_mean_network(tmp_path, capsys, tiny_config, bn_batches):
    models = [random_model(seed) for seed in (1, 2, 3)]
    paths = [
        write_run(tmp_path, f"run{index}", model, scenes)
        for index, (model, scenes) in enumerate(zip(models, [["b/two"], ["a/one"], ["a/one"]], strict=True))
    ]
    out = tmp_path / "out"
    arguments = ["--name", "tiny_swa", "--config", str(tiny_config), "--bn-batches", str(bn_batches), "--out-dir", str(out), *paths]
    assert main(arguments) == 0
    assert "tiny_swa.onnx" in capsys.readouterr().out
    for suffix in (".pt", ".onnx", ".json", ".md"):
        assert (out / f"tiny_swa{suffix}").is_file()
    card = (out / "tiny_swa.md").read_text()
    assert "run0.pt" in card and f"--bn-batches {bn_batches}" in card

    expected_model = _mean_model(models, tiny_config, bn_batches)
    name = next(iter(models[0].state_dict()))
    assert not torch.allclose(expected_model.state_dict()[name], models[0].state_dict()[name])
    written = torch.load(out / "tiny_swa.pt", weights_only=True)["state_dict"]
    for key, tensor in expected_model.state_dict().items():  # seeded: the same statistics again
        assert torch.equal(written[key], tensor), key
    plain = average_state_dicts([model.state_dict() for model in models])["encoder.to_half.0.1.running_mean"]
    assert torch.equal(written["encoder.to_half.0.1.running_mean"], plain) == (bn_batches == 0)

    info = onnx_properties(str(out / "tiny_swa.onnx"), 1, "stereo", {})["info"]
    assert info == {"name": "tiny_swa", "train_scenes": ["a/one", "b/two"], "averaged_from": ["run0", "run1", "run2"]}
    generator = torch.Generator().manual_seed(4)
    left = torch.randint(0, 256, (1, 3, 40, 72), generator=generator).float()
    right = torch.roll(left, -3, dims=3)
    with torch.no_grad():
        expected = expected_model(left, right)
    session = onnxruntime.InferenceSession(str(out / "tiny_swa.onnx"), providers=["CPUExecutionProvider"])
    disparity, confidence = session.run(None, {"left": left.to(torch.uint8).numpy(), "right": right.to(torch.uint8).numpy()})
    assert np.allclose(disparity, expected[0].numpy(), atol=1e-3)
    assert np.allclose(confidence, expected[1].numpy(), atol=1e-4)

    (out / "tiny_swa.onnx").unlink()
    assert export.main([str(out / "tiny_swa.pt")]) == 0  # averaged weights export again like trained ones
    properties = {p.key: p.value for p in onnx.load(str(out / "tiny_swa.onnx")).metadata_props}
    assert json.loads(properties["glassdepth.info"]) == info


def test_checkpoints_of_different_networks_are_refused(tmp_path, capsys, tiny_config):
    paths = [
        write_run(tmp_path, "small", random_model(1), ["a/one"]),
        write_run(tmp_path, "wider", random_model(2, dataclasses.replace(SMALL, refine_channels=16)), ["a/one"]),
    ]
    assert main(["--name", "mixed", "--config", str(tiny_config), "--out-dir", str(tmp_path / "out"), *paths]) == 2
    assert "different network configs" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_checkpoint_saved_before_a_config_field_existed_averages_with_a_current_one(tmp_path, tiny_config):
    """An older checkpoint lacks later config fields (e.g. half_block); their defaults apply."""
    old = random_model(1)
    paths = [write_run(tmp_path, "old", old, ["a/one"]), write_run(tmp_path, "new", random_model(2), ["a/one"])]
    config = old.config.to_dict()
    del config["half_block"], config["refine_blocks"]
    torch.save({"config": config, "state_dict": old.state_dict()}, paths[0])
    assert main(["--name", "mixed_age", "--config", str(tiny_config), "--out-dir", str(tmp_path / "out"), "--bn-batches", "0", *paths]) == 0
    assert (tmp_path / "out" / "mixed_age.onnx").is_file()


@pytest.mark.parametrize("case", ["one checkpoint", "missing summary", "negative batches", "missing config"])
def test_bad_arguments_get_a_clear_error(tmp_path, capsys, tiny_config, case):
    path = write_run(tmp_path, "run", random_model(1), ["a/one"])
    options = ["--config", str(tiny_config)]
    arguments, message = [path, path], {
        "one checkpoint": "at least two checkpoints",
        "missing summary": "run.json beside it are needed",
        "negative batches": "bn_batches must be 0 or more",
        "missing config": "missing.yaml",
    }[case]
    if case == "one checkpoint":
        arguments = [path]
    elif case == "missing summary":
        (tmp_path / "run.json").unlink()
    elif case == "negative batches":
        options += ["--bn-batches", "-1"]
    else:
        options = ["--config", str(tmp_path / "missing.yaml")]
    assert main(["--name", "bad", *options, "--out-dir", str(tmp_path / "out"), *arguments]) == 2
    assert message in capsys.readouterr().err
