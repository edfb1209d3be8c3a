"""Soft-L1 least squares (sensing.robust_fit): scipy's optimum, robustness, and no scipy at run time."""

import subprocess
import sys

import numpy as np
import pytest
from scipy.optimize import least_squares

from sensing.robust_fit import soft_l1_cost, soft_l1_least_squares


def _line_with_outliers(seed: int, count: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """x in [0, 1], y = 40 x + 7 with 0.5 px noise, and 15% of y off by tens of px."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, count)
    y = 40.0 * x + 7.0 + rng.normal(0.0, 0.5, count)
    wrong = rng.random(count) < 0.15
    y[wrong] += rng.uniform(10.0, 60.0, wrong.sum())
    return x, y


def test_cost_is_quadratic_for_small_and_linear_for_large_residuals() -> None:
    assert soft_l1_cost(np.array([0.01, -0.02]), 1.0) == pytest.approx(0.01**2 + 0.02**2, rel=1e-3)
    assert soft_l1_cost(np.array([1000.0]), 2.0) == pytest.approx(2 * 2.0 * 1000.0, rel=1e-2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_line_fit_finds_scipys_optimum_and_ignores_outliers(seed: int) -> None:
    x, y = _line_with_outliers(seed)

    def residuals(p: np.ndarray) -> np.ndarray:
        return p[0] * x + p[1] - y

    start = np.linalg.lstsq(np.stack([x, np.ones_like(x)], axis=1), y, rcond=None)[0]
    ours = soft_l1_least_squares(residuals, start, 1.0)
    reference = least_squares(residuals, start, loss="soft_l1", f_scale=1.0).x
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    assert abs(start[1] - 7.0) > 3.0  # plain least squares is pulled far off by the outliers
    np.testing.assert_allclose(ours, [40.0, 7.0], atol=0.5)


def test_nonlinear_fit_finds_scipys_optimum() -> None:
    rng = np.random.default_rng(3)
    t = np.linspace(0.0, 4.0, 300)
    y = 3.0 * np.exp(-1.3 * t) + 0.2 + rng.normal(0.0, 0.01, t.size)
    y[::17] += 2.0

    def residuals(p: np.ndarray) -> np.ndarray:
        return p[0] * np.exp(-p[1] * t) + p[2] - y

    start = np.array([1.0, 0.5, 0.0])
    ours = soft_l1_least_squares(residuals, start, 0.05)
    reference = least_squares(residuals, start, loss="soft_l1", f_scale=0.05).x
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    np.testing.assert_allclose(ours, [3.0, 1.3, 0.2], atol=0.02)


def test_a_scale_of_zero_is_rejected() -> None:
    with pytest.raises(ValueError, match="f_scale must be positive"):
        soft_l1_least_squares(lambda p: p - 1.0, np.zeros(1), 0.0)


def test_the_pipeline_process_never_loads_scipy() -> None:
    """scipy.linalg and scipy.optimize alone hold about 46 MB, a fifth of the memory budget."""
    script = (
        "import sys\n"
        "from benchmarks.process_bench import default_bench_capture\n"
        "from sensing.config import PipelineConfig, load_device_profile\n"
        "from sensing.pipeline import run_pipeline\n"
        "config = PipelineConfig()\n"
        "result = run_pipeline(default_bench_capture(), config, profile=load_device_profile(config.device))\n"
        "assert result.ok, result.reasons\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'scipy'))\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "[]"
