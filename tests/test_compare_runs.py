"""models.compare_runs: two training runs' weights and validation histories side by side."""

import json

import pytest

torch = pytest.importorskip("torch", reason="checkpoints need torch (the 'train' extra)")

from models.compare_runs import compare_runs, main  # noqa: E402
from models.stereo_net import GlassStereoNet, StereoNetConfig  # noqa: E402
from models.training import checkpoint_bytes  # noqa: E402

SMALL = StereoNetConfig(levels=8, half_channels=8, quarter_channels=8, eighth_channels=8, aggregation_channels=8, refine_channels=8)


def write_run(folder, name, *, seed=0, bad2=(0.30, 0.20), config=None):
    """A run as the training command leaves it: <name>.pt and its <name>.json summary."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    (folder / f"{name}.pt").write_bytes(checkpoint_bytes(GlassStereoNet(SMALL)))
    history = [{"step": 10 * (i + 1), "minutes": 1.0, "loss": {}, "metrics": {"real_bad2": v}} for i, v in enumerate(bad2)]
    summary = {"name": name, "minutes": 2.5, "config": config or {"seed": 0}, "history": history}
    (folder / f"{name}.json").write_text(json.dumps(summary))
    return folder / f"{name}.pt"


def test_identical_runs_compare_equal(tmp_path):
    result = compare_runs(write_run(tmp_path / "a", "run"), write_run(tmp_path / "b", "run"))
    weights = result["weights"]
    assert weights["identical"] == weights["tensors"] > 0
    assert weights["max_abs_difference"] == 0.0 and weights["mismatched_names"] == []
    assert result["validation"]["steps"] == [10, 20]
    assert result["validation"]["metrics"]["real_bad2"] == {"max_abs_difference": 0.0, "final_a": 0.20, "final_b": 0.20}


def test_differences_are_measured(tmp_path):
    result = compare_runs(write_run(tmp_path / "a", "run"), write_run(tmp_path / "b", "run", seed=1, bad2=(0.30, 0.25)))
    assert result["weights"]["identical"] < result["weights"]["tensors"]
    assert result["weights"]["max_abs_difference"] > 0.0
    assert result["validation"]["metrics"]["real_bad2"]["max_abs_difference"] == pytest.approx(0.05)


def test_runs_of_different_configs_are_refused(tmp_path):
    a = write_run(tmp_path / "a", "run")
    b = write_run(tmp_path / "b", "run", config={"seed": 1})
    with pytest.raises(ValueError, match="different configs.*seed"):
        compare_runs(a, b)


def test_command_writes_json_and_reports_missing_files(tmp_path, capsys):
    a, b = write_run(tmp_path / "a", "run"), write_run(tmp_path / "b", "run")
    out = tmp_path / "cmp.json"
    assert main([str(a), str(b), "--out", str(out)]) == 0
    assert "bit-identical" in capsys.readouterr().out
    assert json.loads(out.read_text())["weights"]["max_abs_difference"] == 0.0
    assert main([str(a), str(tmp_path / "missing.pt")]) == 2
    assert "not found" in capsys.readouterr().err


def test_runs_may_differ_in_where_they_ran(tmp_path):
    """Device, workers and threads are execution settings; an older record without them compares too."""
    a = write_run(tmp_path / "a", "run", config={"seed": 0, "threads": 2})
    b = write_run(tmp_path / "b", "run", config={"seed": 0, "threads": 8, "device": "cuda", "data_workers": 8})
    result = compare_runs(a, b)
    assert result["execution_differences"] == {"data_workers": [None, 8], "device": [None, "cuda"], "threads": [2, 8]}


def test_runs_without_a_validation_history_compare_by_weights(tmp_path):
    """Averaged weights (models.average_weights) record no validation history."""
    paths = [write_run(tmp_path / folder, "averaged") for folder in ("a", "b")]
    for path in paths:
        summary = json.loads(path.with_suffix(".json").read_text())
        del summary["history"]
        path.with_suffix(".json").write_text(json.dumps(summary))
    result = compare_runs(*paths)
    assert result["weights"]["identical"] == result["weights"]["tensors"] > 0
    assert result["validation"] == {"steps": [], "metrics": {}}


def test_a_rerun_under_another_name_compares(tmp_path):
    """A rerun written beside the original (models/weights/) needs another name for its files."""
    a = write_run(tmp_path, "run", config={"seed": 0, "name": "run"})
    b = write_run(tmp_path, "run_rerun", config={"seed": 0, "name": "run_rerun"})
    result = compare_runs(a, b)
    assert result["weights"]["identical"] == result["weights"]["tensors"] > 0
    assert result["execution_differences"] == {"name": ["run", "run_rerun"]}
