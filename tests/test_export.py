"""``python -m models.export``: a trained checkpoint exported again with the current graph code;
the MAC count of the stereo network with its eval-mode (folded) refinement entry."""

import copy
import dataclasses

import numpy as np
import pytest

pytest.importorskip("torch", reason="exporting the networks needs torch (the 'train' extra)")
pytest.importorskip("onnx", reason="exporting the networks needs onnx (the 'train' extra)")

import onnxruntime  # noqa: E402
import torch  # noqa: E402

from checkpoints import SMALL_STEREO as SMALL, write_run  # noqa: E402
from models.export import count_macs, main  # noqa: E402
from models.mono_net import GlassMonoNet, MonoNetConfig  # noqa: E402
from models.stereo_net import GlassStereoNet  # noqa: E402
from models.training import checkpoint_bytes  # noqa: E402
from sensing.stereo import onnx_properties  # noqa: E402


@pytest.mark.parametrize(("coarse_matching", "wide_context", "deep_context"), [(False, False, False), (True, False, False), (True, True, False), (True, True, True)])
def test_reexport_of_a_stereo_checkpoint_runs_as_the_pytorch_model(tmp_path, capsys, coarse_matching, wide_context, deep_context):
    torch.manual_seed(0)
    model = GlassStereoNet(dataclasses.replace(SMALL, coarse_matching=coarse_matching, wide_context=wide_context, deep_context=deep_context))
    with torch.no_grad():  # non-trivial BatchNorm statistics, so the folding is exercised
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5), module.running_var.uniform_(0.5, 2.0)
        if coarse_matching:  # starts at zero; make it count
            model.refinement.coarse_match.weight.normal_(0.0, 0.3)
        if wide_context:
            model.aggregation.wide.out.weight.normal_(0.0, 0.3)
            model.aggregation.wide.out.bias.normal_(0.0, 0.3)
        if deep_context:
            model.aggregation.wide.deeper.out.weight.normal_(0.0, 0.3)
            model.aggregation.wide.deeper.out.bias.normal_(0.0, 0.3)
    model.eval()
    write_run(tmp_path, "tiny_stereo", model)
    assert main([str(tmp_path / "tiny_stereo.pt")]) == 0
    onnx_path = tmp_path / "tiny_stereo.onnx"
    assert f"wrote {onnx_path}" in capsys.readouterr().out
    info = onnx_properties(str(onnx_path), 1, "stereo", {})["info"]
    assert info == {"name": "tiny_stereo", "train_scenes": ["middlebury2001/tsukuba"], "steps": 7}

    generator = torch.Generator().manual_seed(1)
    left = torch.randint(0, 256, (1, 3, 40, 72), generator=generator).float()  # 1/8: 5 x 9, odd both ways
    right = torch.roll(left, -3, dims=3)
    with torch.no_grad():
        expected = model(left, right)
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    disparity, confidence = session.run(None, {"left": left.to(torch.uint8).numpy(), "right": right.to(torch.uint8).numpy()})
    assert np.allclose(disparity, expected[0].numpy(), atol=1e-3)
    assert np.allclose(confidence, expected[1].numpy(), atol=1e-4)


def test_reexport_with_more_refine_passes(tmp_path, capsys):
    torch.manual_seed(0)
    model = GlassStereoNet(SMALL).eval()
    with torch.no_grad():
        model.refinement.head.weight.normal_(0.0, 0.5)
    write_run(tmp_path, "tiny_stereo", model)
    assert main(["--refine-passes", "2", str(tmp_path / "tiny_stereo.pt")]) == 0
    onnx_path = tmp_path / "tiny_stereo_passes2.onnx"
    assert f"wrote {onnx_path}" in capsys.readouterr().out and not (tmp_path / "tiny_stereo.onnx").exists()
    assert onnx_properties(str(onnx_path), 1, "stereo", {})["info"]["refine_passes"] == 2
    left = torch.randint(0, 256, (1, 3, 40, 72), generator=torch.Generator().manual_seed(2)).float()
    right = torch.roll(left, -3, dims=3)
    with torch.no_grad():
        expected = model.with_refine_iterations(2)(left, right)
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    disparity, _ = session.run(None, {"left": left.to(torch.uint8).numpy(), "right": right.to(torch.uint8).numpy()})
    assert np.allclose(disparity, expected[0].numpy(), atol=1e-3)


@pytest.mark.parametrize("passes", ["0", "2"])
def test_refine_passes_need_a_stereo_checkpoint_and_a_positive_count(tmp_path, capsys, passes):
    write_run(tmp_path, "tiny_stereo", GlassStereoNet(SMALL).eval())
    write_run(tmp_path, "tiny_mono", GlassMonoNet(MonoNetConfig()).eval())
    path = tmp_path / ("tiny_stereo.pt" if passes == "0" else "tiny_mono.pt")
    assert main(["--refine-passes", passes, str(path)]) == 2
    assert "refine passes need a stereo checkpoint and a count of at least 1" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.onnx"))


def test_reexport_of_a_checkpoint_saved_before_a_config_field_existed(tmp_path):
    """Older checkpoints lack later config fields (e.g. coarse_matching); their defaults apply."""
    model = GlassStereoNet(SMALL).eval()
    write_run(tmp_path, "old_stereo", model)
    config = model.config.to_dict()
    del config["coarse_matching"]
    torch.save({"config": config, "state_dict": model.state_dict()}, tmp_path / "old_stereo.pt")
    assert main([str(tmp_path / "old_stereo.pt")]) == 0
    assert (tmp_path / "old_stereo.onnx").is_file()


def test_reexport_of_a_mono_checkpoint(tmp_path):
    torch.manual_seed(0)
    write_run(tmp_path, "tiny_mono", GlassMonoNet(MonoNetConfig()).eval())
    assert main([str(tmp_path / "tiny_mono.pt")]) == 0
    session = onnxruntime.InferenceSession(str(tmp_path / "tiny_mono.onnx"), providers=["CPUExecutionProvider"])
    assert [tensor.name for tensor in session.get_inputs()] == ["image"]


def test_reexport_without_the_run_summary_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "lonely.pt").write_bytes(checkpoint_bytes(GlassStereoNet(SMALL)))
    assert main([str(tmp_path / "lonely.pt")]) == 2
    assert "lonely.json beside it are needed" in capsys.readouterr().err
    assert not (tmp_path / "lonely.onnx").exists()


def test_reexport_of_a_broken_summary_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "broken.pt").write_bytes(checkpoint_bytes(GlassStereoNet(SMALL)))
    (tmp_path / "broken.json").write_text('{"minutes": 3}')
    assert main([str(tmp_path / "broken.pt")]) == 2
    assert "broken.json: not a training run summary" in capsys.readouterr().err


def test_count_macs_includes_the_folded_refinement_entry():
    """Against every Conv2d module's MACs counted in training mode (where the entry runs as a module)."""
    model = GlassStereoNet(SMALL)
    reference = copy.deepcopy(model).train()
    total = 0

    def on_conv(module, _inputs, output):
        nonlocal total
        total += output.numel() * module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups

    for module in reference.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.register_forward_hook(on_conv)
    with torch.no_grad():
        reference(torch.zeros(1, 3, 64, 96), torch.zeros(1, 3, 64, 96))
    cost_volume = (64 // 4) * (96 // 4) * (96 // 4) * SMALL.quarter_channels
    assert count_macs(model, 64, 96) == total + cost_volume
