"""``bench_mono`` and ``glassdepth bench mono`` on one repeat (the timings themselves are not checked)."""

import json

import numpy as np
import pytest

from benchmarks.mono_bench import (
    BENCH_SIZE_WH,
    bench_image,
    bench_mono,
    format_mono_bench,
)
from sensing.cli import EXIT_INPUT, EXIT_OK, main
from sensing.errors import ConfigError
from sensing.mono import DEFAULT_MONO_WEIGHTS, MonoEstimator


@pytest.fixture(scope="module")
def mono_weights() -> str:
    return str(DEFAULT_MONO_WEIGHTS)


def test_bench_image():
    image = bench_image()
    assert image.shape == (BENCH_SIZE_WH[1], BENCH_SIZE_WH[0], 3) and image.dtype == np.uint8
    assert image.std() > 20  # a real photograph, not a blank


def test_network_input_resizes_and_pads(mono_weights):
    estimator = MonoEstimator(str(mono_weights))
    feed = estimator.network_input(np.zeros((100, 150), np.uint8))
    assert feed.shape == (1, 3, 256, 384) and feed.dtype == np.float32  # 384x256 exactly
    feed = estimator.network_input(np.zeros((97, 131, 3), np.uint8))
    assert feed.shape == (1, 3, 288, 384)  # 384x284 padded to 288


def test_bench_mono_one_repeat(mono_weights):
    repeats = []
    results = bench_mono(weights=mono_weights, repeats=1, threads=1, on_repeat=repeats.append)
    assert repeats == [0]
    assert results["size_wh"] == list(BENCH_SIZE_WH)
    assert results["network_input_hw"] == [288, 384]
    assert results["threads"] == 1 and results["repeats"] == 1 and results["weights"] == mono_weights
    for method in ("predict", "network"):
        row = results[method]
        assert 0 < row["p10_ms"] <= row["median_ms"] <= row["p90_ms"]
    assert results["within_target"] == (results["predict"]["median_ms"] <= results["target_median_ms"])
    json.dumps(results)  # JSON-ready

    lines = format_mono_bench(results).splitlines()
    assert len(lines) == 5
    assert lines[0].startswith("mono network on a 384x288 image")
    assert lines[2].startswith("predict") and lines[3].startswith("network only")
    assert "target: predict median <= 50 ms" in lines[4]


def test_bench_mono_bad_input(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        bench_mono(weights=tmp_path / "missing.onnx", repeats=1)
    with pytest.raises(ValueError, match="repeats"):
        bench_mono(weights=tmp_path / "missing.onnx", repeats=0)


def test_cli_bench_mono(mono_weights, tmp_path, capsys):
    out = tmp_path / "bench_mono.json"
    assert main(["bench", "mono", "--weights", mono_weights, "--repeats", "1", "--threads", "1", "--out", str(out)]) == EXIT_OK
    saved = json.loads(out.read_text())
    assert saved["repeats"] == 1 and saved["threads"] == 1 and saved["weights"] == mono_weights
    assert f"wrote {out}" in capsys.readouterr().out


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--weights", "{tmp}/missing.onnx"], "mono network weights not found"),
        (["--weights", "{tmp}/garbage.onnx"], "cannot load mono network weights"),
        (["--repeats", "0"], "--repeats must be at least 1"),
        (["--threads", "0"], "--threads must be at least 1"),
    ],
)
def test_cli_bench_mono_bad_input(mono_weights, tmp_path, capsys, arguments, message):
    (tmp_path / "garbage.onnx").write_text("not an ONNX file")
    arguments = [argument.format(tmp=tmp_path) for argument in arguments]
    if "--weights" not in arguments:
        arguments += ["--weights", mono_weights]
    out = tmp_path / "bench_mono.json"
    assert main(["bench", "mono", *arguments, "--out", str(out)]) == EXIT_INPUT
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error
    assert not out.exists()
