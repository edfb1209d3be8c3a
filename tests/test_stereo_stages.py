"""Per-stage bad-pixel rates of the stereo network (benchmarks/stereo_stages.py)."""

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="the stage report runs the PyTorch checkpoint (the 'train' extra)")

from benchmarks.datasets import list_stereo_scenes, search_range_px  # noqa: E402
from benchmarks.metrics import bad_pixel_rate  # noqa: E402
from benchmarks.stereo_stages import main, score_stages  # noqa: E402
from models.stereo_net import GlassStereoNet, StereoNetConfig  # noqa: E402
from models.train_stereo import predict, predict_stages  # noqa: E402
from models.training import checkpoint_bytes  # noqa: E402
from sensing.visibility import fill_unmatched  # noqa: E402
from synthetic import write_shifted_scene  # noqa: E402

SMALL = StereoNetConfig(levels=8, half_channels=8, quarter_channels=8, eighth_channels=8, aggregation_channels=8, refine_channels=8)


def _scene_root(tmp_path: Path, shift_px: int) -> Path:
    write_shifted_scene(tmp_path / "stereo" / "synthetic" / "shift", height=48, width=80, shift_px=shift_px)
    return tmp_path


def test_stages_are_at_input_size_and_final_is_the_network_output(tmp_path):
    model = GlassStereoNet(SMALL).eval()
    (scene,) = list_stereo_scenes(_scene_root(tmp_path, 6))
    stages = predict_stages(model, scene.left(), scene.right())
    assert set(stages) == {"quarter", "half", "final"}
    assert all(disparity.shape == (48, 80) and disparity.dtype == np.float32 for disparity in stages.values())
    np.testing.assert_array_equal(stages["final"], predict(model, scene.left(), scene.right()))
    (row,) = score_stages(model, [scene])["scenes"]
    assert row["final"]["bad2"] == bad_pixel_rate(stages["final"], scene.disparity_gt(), 2.0)
    final = np.clip(stages["final"], 0.0, float(search_range_px(scene.disparity_gt())))
    filled = fill_unmatched(final)  # the runtime's default: the out-of-view band, then the occluded pixels
    assert row["filled"]["bad2"] == bad_pixel_rate(filled, scene.disparity_gt(), 2.0)
    assert row["quarter"]["bad1"] >= row["quarter"]["bad2"] >= row["quarter"]["bad4"]


def test_scenes_beyond_the_network_reach_are_skipped_and_named(tmp_path):
    model = GlassStereoNet(SMALL).eval()  # reaches 4 * 7 = 28 px
    root = _scene_root(tmp_path, 40)
    result = score_stages(model, list_stereo_scenes(root))
    assert result["scenes"] == [] and result["skipped"] == ["synthetic/shift: search range 44 px > 28 px"]


def test_command_writes_the_report_and_rejects_what_is_not_a_checkpoint(tmp_path, capsys):
    weights = tmp_path / "small.pt"
    weights.write_bytes(checkpoint_bytes(GlassStereoNet(SMALL)))
    root = _scene_root(tmp_path, 6)
    out = tmp_path / "stages.json"
    assert main([str(weights), "--data", str(root), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["scenes"][0]["scene"] == "shift" and set(report["scenes"][0]["half"]) == {"bad1", "bad2", "bad4"}
    assert "after each stage" in capsys.readouterr().out

    not_a_checkpoint = tmp_path / "image.pt"
    not_a_checkpoint.write_bytes(b"not torch")
    assert main([str(not_a_checkpoint), "--data", str(root)]) == 2
    assert main([str(tmp_path / "missing.pt"), "--data", str(root)]) == 2
    assert main([str(weights), "--data", str(tmp_path / "no_data")]) == 2
    errors = capsys.readouterr().err
    assert "is not a stereo checkpoint" in errors and "checkpoint not found" in errors and "data root not found" in errors
