"""``bench_render`` and ``glassdepth bench render`` on one repeat (timings not checked), and
pytest-benchmark timings of the 3D photo at 640x480 (disabled, run once, in the test suite;
measure with ``python -m pytest benchmarks/test_render_bench.py --benchmark-enable``)."""

import json

import cv2
import pytest

from benchmarks.render_bench import (
    BENCH_RADIUS,
    bench_inputs,
    bench_render,
    format_render_bench,
)
from sensing.cli import EXIT_INPUT, EXIT_OK, main
from sensing.novel_view.layers import cut_layers, layered_depth_from_cut
from sensing.novel_view.render import LayerRenderer, camera_path


@pytest.fixture(scope="module")
def inputs():
    return bench_inputs()


def test_bench_render_one_repeat():
    repeats, extra = [], []
    results = bench_render(repeats=1, frames=3, threads=2, extra_steps={"mesh": extra.append}, on_repeat=repeats.append)
    assert repeats == [0] and len(extra) == 2  # warm-up + one repeat
    assert results["size_wh"] == [640, 480] and results["layers"] == 2
    assert 0 <= results["mesh"]["median_ms"]
    for key in ("cut", "fill", "prepare", "first_frame", "frame"):
        assert 0 < results[key]["p10_ms"] <= results[key]["median_ms"] <= results[key]["p90_ms"]
    assert results["first_frame"]["median_ms"] >= results["cut"]["median_ms"] + results["fill"]["median_ms"]
    json.dumps(results)
    text = format_render_bench(results)
    assert "cut + fill + mesh + first frame" in text and "targets:" in text
    assert results["first_frame_steps"] == ["cut", "fill", "mesh", "prepare", "first frame"]


def test_bench_render_times_the_mesh_by_default():
    results = bench_render(repeats=1, frames=2, threads=2)
    assert results["first_frame_steps"] == ["cut", "fill", "mesh", "prepare", "first frame"]
    assert 0 < results["mesh"]["median_ms"]
    steps = sum(results[key]["median_ms"] for key in ("cut", "fill", "mesh", "prepare"))
    assert results["first_frame"]["median_ms"] >= steps  # the mesh counts towards the first frame
    without = bench_render(repeats=1, frames=2, threads=2, extra_steps={})
    assert "mesh" not in without and without["first_frame_steps"] == ["cut", "fill", "prepare", "first frame"]
    assert "cut + fill + first frame" in format_render_bench(without)


def test_cli_bench_render(tmp_path, capsys):
    out = tmp_path / "bench_render.json"
    assert main(["bench", "render", "--repeats", "1", "--frames", "2", "--out", str(out)]) == EXIT_OK
    assert json.loads(out.read_text())["repeats"] == 1
    assert f"wrote {out}" in capsys.readouterr().out
    assert main(["bench", "render", "--repeats", "0", "--out", str(out)]) == EXIT_INPUT
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--repeats must be at least 1" in error


def test_cut_fill_first_frame_640x480(benchmark, inputs):
    image, disparity = inputs
    pose = camera_path("circle", 12, radius=BENCH_RADIUS)[1]
    cv2.setNumThreads(2)

    def first_frame():
        ldi = layered_depth_from_cut(image, cut_layers(disparity, max_shift=BENCH_RADIUS))
        return LayerRenderer(ldi).render(pose)

    assert benchmark(first_frame).shape == (480, 640, 3)


def test_further_frame_640x480(benchmark, inputs):
    image, disparity = inputs
    renderer = LayerRenderer(layered_depth_from_cut(image, cut_layers(disparity, max_shift=BENCH_RADIUS)))
    pose = camera_path("circle", 12, radius=BENCH_RADIUS)[1]
    cv2.setNumThreads(2)
    renderer.render(pose)
    assert benchmark(renderer.render, pose).shape == (480, 640, 3)
