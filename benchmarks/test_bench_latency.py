"""pytest-benchmark timings at 640x480: the whole pipeline and its in-run reference, plain
SGBM-3way on the same rectified pair. Disabled (run once) in the test suite; measure with
``python -m pytest benchmarks --benchmark-enable --benchmark-json benchmarks/results/pytest_benchmark.json``.
"""

import pytest

from benchmarks.process_bench import default_bench_capture
from benchmarks.stereo_parity import plain_sgbm
from calibration.rectify import Rectifier
from sensing.config import PipelineConfig, load_device_profile
from sensing.pipeline import run_pipeline
from sensing.stereo import build_matcher


@pytest.fixture(scope="module")
def bench_setup():
    config = PipelineConfig()
    capture = default_bench_capture()
    kwargs = {"profile": load_device_profile(config.device), "rectifier": Rectifier(), "matcher": build_matcher("sgbm")}
    warm = run_pipeline(capture, config, **kwargs)
    assert warm.ok
    return capture, config, kwargs, warm


def test_pipeline_640x480(benchmark, bench_setup):
    capture, config, kwargs, _ = bench_setup
    result = benchmark(run_pipeline, capture, config, **kwargs)
    assert result.ok and result.depth_source == "stereo"


def test_reference_plain_sgbm_640x480(benchmark, bench_setup):
    _, _, _, warm = bench_setup
    disparity = benchmark(plain_sgbm, warm.rectified.left, warm.rectified.right, warm.details["stereo"]["max_disparity_px"])
    assert disparity.valid.mean() > 0.5
