"""``bench_stereo`` and ``glassdepth bench stereo`` on one repeat, with a small random-init network
exported to ONNX (the timings themselves are not checked)."""

import json
import platform

import pytest

pytest.importorskip("torch", reason="exporting the network needs torch (the 'train' extra)")
pytest.importorskip("onnx", reason="exporting the network needs onnx (the 'train' extra)")

import torch  # noqa: E402

from benchmarks.stereo_bench import bench_stereo, format_stereo_bench  # noqa: E402
from models.export import export_stereo_onnx  # noqa: E402
from models.stereo_net import GlassStereoNet, StereoNetConfig  # noqa: E402
from sensing.cli import EXIT_INPUT, EXIT_OK, main  # noqa: E402
from sensing.errors import ConfigError  # noqa: E402

SMALL = StereoNetConfig(
    levels=16, half_channels=8, quarter_channels=16, eighth_channels=16, aggregation_channels=16, refine_channels=8
)


@pytest.fixture(scope="module")
def small_weights(tmp_path_factory) -> str:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("net") / "small.onnx"
    export_stereo_onnx(GlassStereoNet(SMALL).eval(), path, {"name": "random-init test net"})
    return str(path)


def test_bench_stereo_one_repeat(small_weights):
    repeats = []
    results = bench_stereo(weights=small_weights, repeats=1, threads=1, on_repeat=repeats.append)
    assert repeats == [0]
    assert results["input_size_wh"] == [640, 480]
    width, height = results["size_wh"]
    assert 0 < width <= 640 and 0 < height <= 480
    assert results["max_disparity_px"] > 0 and results["threads"] == 1 and results["repeats"] == 1
    assert results["net_max_disparity_px"] == SMALL.max_disparity_px
    # The pipeline's search range is wider than this net reaches: it runs on shrunk views.
    assert 0 < results["net_input_scale"] < 1
    assert results["onnx_mb"] > 0 and results["onnxruntime_version"]
    assert results["net_fills"] == {"fill_out_of_view": True, "fill_occluded": True}
    assert results["net_scales"] == [1.0]
    for method in ("net", "net_confidence", "sgbm", "fill_out_of_view", "fill_occluded"):
        row = results[method]
        assert 0 < row["p10_ms"] <= row["median_ms"] <= row["p90_ms"]
    assert results["net_to_sgbm_ratio"] == pytest.approx(results["net"]["median_ms"] / results["sgbm"]["median_ms"], rel=0.01)
    json.dumps(results)  # JSON-ready

    text = format_stereo_bench(results)
    lines = text.splitlines()
    assert len(lines) == 10
    assert lines[0].startswith(f"stereo on the rectified {width}x{height} pair of a 640x480 capture")
    assert [line.split()[0] for line in lines[2:7]] == ["net", "net", "plain", "out-of-view", "occlusion"]
    assert "net / SGBM (medians)" in text and "small.onnx" in text
    assert lines[-1] == f"host: {results['host']}"


def test_bench_stereo_missing_weights(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        bench_stereo(weights=str(tmp_path / "missing.onnx"), repeats=1, threads=1)


def test_cli_bench_stereo(small_weights, tmp_path, capsys):
    out = tmp_path / "bench_stereo.json"
    code = main(["bench", "stereo", "--weights", small_weights, "--repeats", "1", "--threads", "1", "--out", str(out)])
    assert code == EXIT_OK
    saved = json.loads(out.read_text())
    assert saved["repeats"] == 1 and saved["threads"] == 1 and saved["weights"] == small_weights
    if platform.libc_ver()[0] == "glibc":  # the command line keeps freed memory for reuse
        assert saved["allocator"].startswith("glibc malloc: mmap threshold")
    assert f"wrote {out}" in capsys.readouterr().out
    arguments = ["--weights", small_weights, "--net-scales", "0.5,1", "--repeats", "1", "--threads", "1", "--out", str(out)]
    assert main(["bench", "stereo", *arguments]) == EXIT_OK
    assert json.loads(out.read_text())["net_scales"] == [0.5, 1.0]
    assert "runs at scales 0.5, 1" in capsys.readouterr().out


def test_cli_bench_stereo_times_a_baseline_export_in_the_same_runs(small_weights, tmp_path, capsys):
    out = tmp_path / "bench_stereo.json"
    arguments = ["--weights", small_weights, "--baseline-weights", small_weights, "--repeats", "2", "--threads", "1", "--out", str(out)]
    assert main(["bench", "stereo", *arguments]) == EXIT_OK
    saved = json.loads(out.read_text())
    assert saved["baseline_weights"] == small_weights and saved["baseline_net"]["median_ms"] > 0
    assert saved["net_to_baseline_ratio"] > 0
    assert "net / baseline net (medians)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--weights", "{tmp}/missing.onnx"], "stereo network weights not found"),
        (["--weights", "{tmp}/garbage.onnx"], "cannot load stereo network weights"),
        (["--repeats", "0"], "--repeats must be at least 1"),
        (["--threads", "0"], "--threads must be at least 1"),
        (["--net-scales", "1,9"], "net scales must be one or more factors"),
        (["--baseline-weights", "{tmp}/missing.onnx"], "stereo network weights not found"),
    ],
)
def test_cli_bench_stereo_bad_input(small_weights, tmp_path, capsys, arguments, message):
    (tmp_path / "garbage.onnx").write_text("not an ONNX file")
    arguments = [argument.format(tmp=tmp_path) for argument in arguments]
    if "--weights" not in arguments:
        arguments += ["--weights", small_weights]
    out = tmp_path / "bench_stereo.json"
    assert main(["bench", "stereo", *arguments, "--out", str(out)]) == EXIT_INPUT
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error
    assert not out.exists()
