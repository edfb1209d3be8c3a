"""pytest-benchmark timings at 640x480: the whole pipeline and its in-run reference, plain
SGBM-3way on the same rectified pair, and the stereo network (``NetMatcher``, with and without
its confidence) on that pair, and the mono network (``MonoEstimator.predict``, 2 threads) at
384x288 (network tests are skipped until the trained weights exist). Disabled (run once) in
the test suite; measure with
``python -m pytest benchmarks --benchmark-enable --benchmark-json benchmarks/results/pytest_benchmark.json``.
"""

import pytest

from benchmarks.mono_bench import bench_image
from benchmarks.process_bench import default_bench_capture
from benchmarks.stereo_parity import plain_sgbm
from calibration.rectify import Rectifier
from sensing.config import PipelineConfig, load_device_profile
from sensing.mono import DEFAULT_MONO_WEIGHTS, MonoEstimator
from sensing.pipeline import run_pipeline
from sensing.stereo import DEFAULT_NET_WEIGHTS, NetMatcher, build_matcher

requires_net_weights = pytest.mark.skipif(
    not DEFAULT_NET_WEIGHTS.is_file(), reason=f"no trained network at {DEFAULT_NET_WEIGHTS} (python -m models.train_stereo)"
)


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
    assert result.ok and result.depth_source == "fused"


def test_reference_plain_sgbm_640x480(benchmark, bench_setup):
    _, _, _, warm = bench_setup
    disparity = benchmark(plain_sgbm, warm.rectified.left, warm.rectified.right, warm.details["stereo"]["max_disparity_px"])
    assert disparity.valid.mean() > 0.5


@pytest.fixture(scope="module")
def net_matcher(bench_setup):
    _, _, kwargs, _ = bench_setup
    return NetMatcher(threads=kwargs["profile"].threads)


@requires_net_weights
@pytest.mark.parametrize("with_confidence", [False, True], ids=["disparity", "with_confidence"])
def test_net_640x480(benchmark, bench_setup, net_matcher, with_confidence):
    _, _, _, warm = bench_setup
    left, right = warm.rectified.left, warm.rectified.right
    max_disparity = warm.details["stereo"]["max_disparity_px"]
    call = net_matcher.match_with_confidence if with_confidence else net_matcher.match
    call(left, right, max_disparity_px=max_disparity)  # warm-up: first inference allocates
    out = benchmark(call, left, right, max_disparity_px=max_disparity)
    disparity, confidence = out if with_confidence else (out, None)
    assert disparity.values_px.shape == left.shape[:2] and disparity.valid.all()
    if confidence is not None:
        assert confidence.shape == left.shape[:2]
        assert 0.0 <= confidence.min() and confidence.max() <= 1.0


@pytest.mark.skipif(
    not DEFAULT_MONO_WEIGHTS.is_file(),
    reason=f"no trained mono network at {DEFAULT_MONO_WEIGHTS} (python -m models.train_mono --config configs/train_mono.yaml)",
)
def test_mono_384x288(benchmark):
    estimator = MonoEstimator(threads=2)
    image = bench_image()
    estimator.predict(image)  # warm-up: first inference allocates
    disparity = benchmark(estimator.predict, image)
    assert disparity.shape == image.shape[:2]
    assert 0.0 <= disparity.min() and disparity.max() <= 1.0
