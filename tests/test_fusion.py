"""Stereo/mono fusion: alignment of the relative mono disparity and filling of the holes."""

import numpy as np
import pytest

from sensing.fusion import align_mono_to_stereo, fuse_disparity, smooth_residual
from sensing.types import DisparityMap


def _scene(height: int = 120, width: int = 160) -> np.ndarray:
    """A slanted plane with a nearer box: disparity (H, W) float32 px in [10, 40]."""
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    truth = 10.0 + 0.1 * rows + 0.05 * cols
    truth[40:80, 60:110] = 40.0
    return truth


def test_alignment_recovers_scale_and_shift_despite_outliers() -> None:
    truth = _scene()
    mono = (truth - 10.0) / 30.0  # relative in [0, 1]
    stereo = truth.copy()
    rng = np.random.default_rng(0)
    wrong = rng.random(truth.shape) < 0.1
    stereo[wrong] += rng.uniform(-20, 20, wrong.sum())
    alignment = align_mono_to_stereo(mono, stereo, np.ones(truth.shape, bool))
    assert alignment.scale == pytest.approx(30.0, rel=1e-3)
    assert alignment.shift == pytest.approx(10.0, abs=0.05)
    assert alignment.residual_px < 0.01 and alignment.pixels > 1000


def test_alignment_needs_confident_pixels() -> None:
    with pytest.raises(ValueError, match="too few"):
        align_mono_to_stereo(np.zeros((10, 10), np.float32), np.zeros((10, 10), np.float32), np.zeros((10, 10), bool))


def test_holes_are_filled_with_the_aligned_mono_and_confident_stereo_is_kept() -> None:
    truth = _scene()
    confident = np.ones(truth.shape, bool)
    confident[50:100, 10:50] = False  # a hole on the slanted plane
    stereo = DisparityMap(np.where(confident, truth, np.inf), confident)
    mono = (truth - 10.0) / 30.0
    fused = fuse_disparity(stereo, confident, mono, seam_px=6.0, correction_sigma_px=None)
    assert fused.disparity.valid.all()
    np.testing.assert_allclose(fused.disparity.values_px[~confident], truth[~confident], atol=0.05)
    # Far from the hole stereo is used as is; next to it the weight hands over smoothly.
    assert fused.stereo_weight[5, 150] == pytest.approx(1.0, abs=1e-4)
    assert 0.0 < fused.stereo_weight[75, 51] < 0.9
    assert (fused.stereo_weight[~confident] == 0).all()
    assert fused.alignment.to_dict()["pixels"] == int(confident.sum())


def test_local_correction_removes_a_smooth_mono_error() -> None:
    """Mono with a smooth error (a wrong slant) is put right near the confident pixels."""
    truth = _scene()
    rows = np.mgrid[0 : truth.shape[0], 0 : truth.shape[1]][0].astype(np.float32)
    mono = (truth - 10.0) / 30.0 + 0.002 * rows  # a slant the stereo does not have
    confident = np.ones(truth.shape, bool)
    confident[60:80, 20:40] = False
    stereo = DisparityMap(np.where(confident, truth, np.inf), confident)
    hole = ~confident
    plain = fuse_disparity(stereo, confident, mono, correction_sigma_px=None).disparity.values_px
    corrected = fuse_disparity(stereo, confident, mono, correction_sigma_px=16.0).disparity.values_px
    error_plain = np.abs(plain[hole] - truth[hole]).mean()
    error_corrected = np.abs(corrected[hole] - truth[hole]).mean()
    assert error_corrected < 0.5 * error_plain


def test_smooth_residual_spreads_a_constant() -> None:
    known = np.zeros((64, 64), bool)
    known[:, :20] = True
    spread = smooth_residual(np.full((64, 64), 3.0, np.float32), known, 8.0)
    np.testing.assert_allclose(spread[:, :40], 3.0, atol=1e-3)
    assert spread.dtype == np.float32 and spread.shape == (64, 64)


@pytest.mark.shared_data
def test_eval_fusion_on_shared_middlebury_2001(mono_weights) -> None:
    from benchmarks.datasets import default_data_root
    from benchmarks.fusion_eval import eval_fusion, format_fusion_eval
    from sensing.config import config_from_dict

    root = default_data_root()
    if not (root / "stereo" / "middlebury2001" / "tsukuba" / "disp_left.pfm").is_file():
        pytest.skip(f"shared data not found at {root} (set GLASSDEPTH_DATA)")
    results = eval_fusion(root, datasets=["middlebury2001"], config=config_from_dict({"mono": {"weights": mono_weights}}))
    assert [row["scene"] for row in results["scenes"]] == ["tsukuba", "venus"]
    for row in results["scenes"]:
        assert 0.0 < row["low_confidence_fraction"] < 1.0
        assert 0.0 <= row["bad2_low_fused"] <= 100.0 and 0.0 <= row["bad2_low_stereo"] <= 100.0
        # Filled everywhere: the fused map and the network's whole output beat the confident-only
        # stereo map over all pixels.
        assert row["bad2_all_fused"] < row["bad2_all_stereo_confident_only"]
        assert row["bad2_all_stereo_kept"] < row["bad2_all_stereo_confident_only"]
    assert results["mean_all"]["scenes"] == 2
    assert "low stereo" in format_fusion_eval(results)


def test_not_confident_stereo_that_agrees_with_mono_is_kept() -> None:
    truth = _scene()
    confident = np.ones(truth.shape, bool)
    confident[50:100, 10:50] = False
    stereo_values = truth.copy()
    stereo_values[50:75, 10:50] += 1.0  # low confidence but close to the truth: agrees with mono
    stereo_values[75:100, 10:50] += 15.0  # low confidence and wrong: mono wins
    stereo = DisparityMap(stereo_values, np.ones(truth.shape, bool))
    mono = (truth - 10.0) / 30.0
    fused = fuse_disparity(stereo, confident, mono, correction_sigma_px=None, agreement_px=4.0).disparity.values_px
    np.testing.assert_allclose(fused[50:75, 10:50], stereo_values[50:75, 10:50], atol=1e-4)
    np.testing.assert_allclose(fused[75:100, 10:50], truth[75:100, 10:50], atol=0.05)
    never = fuse_disparity(stereo, confident, mono, correction_sigma_px=None, agreement_px=None).disparity.values_px
    np.testing.assert_allclose(never[50:75, 10:50], truth[50:75, 10:50], atol=0.05)
