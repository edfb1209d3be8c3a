"""The orchestrator on synthetic captures: stage records, metric depth, and how it stops."""

import dataclasses
import json

import cv2
import numpy as np
import pytest
from synthetic import (
    BASELINE_M,
    FOCAL_PX,
    LayeredPair,
    make_layered_pair,
    make_synthetic_capture,
    matchable_mask,
    pinhole_calibration,
)

from sensing.config import PipelineConfig, config_from_dict
from sensing.pipeline import STAGES, PipelineResult, run_pipeline, search_range_px
from sensing.types import RectifiedPair, StereoCapture

#: Processing at the synthetic sensor's own size (320 x 240): rectification is a pure crop.
#: Stereo only (no mono fusion): these tests are about the stereo stages. SGBM-3way: the layered
#: pair's texture is independent colour noise at the pixel scale, which the network (trained on
#: camera-like images) gets wrong on the foreground (bad-2 67 % there; 8 % with the same views in
#: grey, 5 % at twice the size); tests/test_net_pipeline.py covers the network in the pipeline.
CONFIG = config_from_dict({"preprocess": {"long_side_px": 320}, "stereo": {"method": "sgbm"}, "mono": {"fuse": False}})


@pytest.fixture(scope="module")
def pair() -> LayeredPair:
    return make_layered_pair()


@pytest.fixture(scope="module")
def result(pair: LayeredPair) -> PipelineResult:
    return run_pipeline(make_synthetic_capture(pair), CONFIG)


def ground_truth_in_rectified(pair: LayeredPair, rectified: RectifiedPair) -> tuple[np.ndarray, np.ndarray]:
    """Raw-view ground-truth disparity (px, which layer) and matchable mask at the rectified left pixels.

    With R = I and no distortion, rectification only scales by f'/f and shifts the
    principal point, so rectified (x, y) looks at raw ((x - cx') f / f' + cx, likewise y).
    """
    height, width = rectified.size_hw
    scale = FOCAL_PX / rectified.focal_px
    xs = np.rint((np.arange(width) - rectified.P1[0, 2]) * scale + (pair.left.shape[1] - 1) / 2).astype(int)
    ys = np.rint((np.arange(height) - rectified.P1[1, 2]) * scale + (pair.left.shape[0] - 1) / 2).astype(int)
    rows, cols = np.ix_(ys, xs)
    return pair.disparity[rows, cols], matchable_mask(pair)[rows, cols]


def test_run_succeeds_with_all_stages_recorded_in_order(result: PipelineResult) -> None:
    assert result.ok and result.depth_source == "stereo" and result.reasons == []
    assert [stage.name for stage in result.stages] == list(STAGES)
    assert list(STAGES) == ["preprocess", "rectify", "stereo", "confidence", "mono", "fusion", "depth"]
    for stage in result.stages:
        assert stage.status == ("skipped" if stage.name in ("mono", "fusion") else "ok") and stage.message == ""
        assert np.isfinite(stage.ms) and stage.ms >= 0.0
        assert stage.peak_rss_mb > 0.0 or stage.status == "skipped"
        assert stage.budget_ms == result.profile.stage_ms[stage.name]
        assert stage.within_budget == (None if stage.status == "skipped" else stage.ms <= stage.budget_ms)
    assert result.total_ms > 0.0
    assert result.total_ms >= sum(stage.ms for stage in result.stages)
    assert result.details["disparity_units"] == "px"


def test_rectification_keeps_the_ideal_rig(result: PipelineResult) -> None:
    rectified = result.rectified
    assert rectified.focal_px == pytest.approx(FOCAL_PX, rel=0.02)
    assert rectified.baseline_m == pytest.approx(BASELINE_M, rel=1e-6)
    height, width = rectified.size_hw
    assert 0.95 * 320 <= width <= 320 and 0.95 * 240 <= height <= 240
    assert result.details["stereo"]["max_disparity_px"] == search_range_px(rectified, CONFIG)


def test_depth_matches_focal_times_baseline_over_disparity(pair: LayeredPair, result: PipelineResult) -> None:
    disparity, matchable = ground_truth_in_rectified(pair, result.rectified)
    depth = result.depth
    assert depth.depth_m.shape == result.rectified.size_hw
    for raw_disparity_px in (8, 20):  # background and foreground
        layer = matchable & (disparity == raw_disparity_px)
        expected_m = FOCAL_PX * BASELINE_M / raw_disparity_px  # 2.25 m and 0.9 m
        within = depth.valid[layer] & (np.abs(depth.depth_m[layer] / expected_m - 1.0) < 0.03)
        assert within.mean() > 0.9
        assert np.median(depth.depth_m[layer & depth.valid]) == pytest.approx(expected_m, rel=0.03)
    assert result.details["depth"]["median_m"] == pytest.approx(FOCAL_PX * BASELINE_M / 8, rel=0.03)


def test_unconfident_pixels_have_no_depth(result: PipelineResult) -> None:
    confident = result.confidence.values >= CONFIG.confidence.threshold
    assert not np.any(result.depth.valid & ~confident)
    assert not np.any(result.disparity.valid & ~confident)
    assert result.details["stereo"]["confident_coverage"] == pytest.approx(confident.mean(), abs=1e-4)


def test_unconfident_pixels_keep_the_matchers_disparity_when_asked(pair: LayeredPair, result: PipelineResult) -> None:
    """``confidence.keep_unconfident``: the outputs stay dense (the matcher's own values), the
    confidence still tells the pixels apart, and no mono runs; by default (null) only a matcher
    with its own confidence (the network) keeps them."""
    assert result.details["stereo"]["unconfident_pixels"] == "unknown"
    kept = run_pipeline(make_synthetic_capture(pair), dataclasses.replace(CONFIG, confidence=dataclasses.replace(CONFIG.confidence, keep_unconfident=True)))
    assert kept.ok and kept.depth_source == "stereo" and kept.details["stereo"]["unconfident_pixels"] == "kept"
    confident = kept.confidence.values >= CONFIG.confidence.threshold
    assert not confident.all()
    assert (kept.disparity.valid & ~confident).any() and kept.disparity.valid[result.disparity.valid].all()
    np.testing.assert_array_equal(kept.depth.valid, kept.disparity.valid)
    np.testing.assert_array_equal(kept.disparity.values_px[confident], result.disparity.values_px[confident])
    assert [s.status for s in kept.stages if s.name in ("mono", "fusion")] == ["skipped", "skipped"]
    fusing = config_from_dict({"preprocess": {"long_side_px": 320}, "stereo": {"method": "sgbm"}, "confidence": {"keep_unconfident": True}})
    assert [s.status for s in run_pipeline(make_synthetic_capture(pair), fusing).stages if s.name in ("mono", "fusion")] == ["skipped", "skipped"]


def test_report_is_json_ready(result: PipelineResult) -> None:
    report = json.loads(json.dumps(result.report()))
    assert report["ok"] is True
    assert [stage["name"] for stage in report["stages"]] == list(STAGES)
    assert report["input"]["size_wh"] == [320, 240]
    assert report["config"]["preprocess"]["long_side_px"] == 320
    assert report["peak_rss_mb"] == pytest.approx(max(s.peak_rss_mb for s in result.stages), abs=0.06)


def test_right_sensor_at_twice_the_resolution(pair: LayeredPair) -> None:
    calibration = pinhole_calibration()
    right_camera = calibration.right.scaled(2.0)  # 640 x 480, same field of view
    right = cv2.resize(pair.right, right_camera.size_wh, interpolation=cv2.INTER_LINEAR)
    capture = StereoCapture(pair.left, right, dataclasses.replace(calibration, right=right_camera))
    result = run_pipeline(capture, CONFIG)
    assert result.ok, result.reasons
    assert result.details["depth"]["median_m"] == pytest.approx(FOCAL_PX * BASELINE_M / 8, rel=0.03)


def test_black_right_view_stops_in_preprocess(pair: LayeredPair) -> None:
    capture = dataclasses.replace(make_synthetic_capture(pair), right=np.zeros_like(pair.right))
    result = run_pipeline(capture, CONFIG)
    assert not result.ok and result.depth_source == "none"
    assert len(result.reasons) == 1 and result.reasons[0].startswith("preprocess:")
    assert "right view is black" in result.reasons[0]
    first, *rest = result.stages
    assert (first.name, first.status) == ("preprocess", "failed")
    assert "black" in first.message
    assert [(s.name, s.status) for s in rest] == [(name, "skipped") for name in STAGES[1:]]
    assert result.rectified is None and result.disparity is None and result.depth is None


def test_swapped_views_stop_in_rectify(pair: LayeredPair) -> None:
    swapped = LayeredPair(pair.right, pair.left, pair.disparity, pair.occluded)
    result = run_pipeline(make_synthetic_capture(swapped), CONFIG)
    assert not result.ok
    assert [s.status for s in result.stages] == ["ok", "failed"] + ["skipped"] * 5
    assert "swapped" in result.stages[1].message and result.reasons[0].startswith("rectify:")


def _featureless_capture():
    rng = np.random.default_rng(5)
    left, right = (np.clip(120 + rng.normal(0, 1.0, (240, 320, 3)), 0, 255).astype(np.uint8) for _ in range(2))
    return make_synthetic_capture(LayeredPair(left, right, np.zeros((240, 320), np.float32), np.zeros((240, 320), bool)))


def test_featureless_scene_makes_rectification_unreliable_and_falls_back_to_mono() -> None:
    result = run_pipeline(_featureless_capture(), CONFIG)
    assert result.ok and result.depth_source == "mono"
    assert result.reasons[0].startswith("rectification unreliable: only 0 of 0 feature matches")
    assert "monocular" in result.reasons[-1]
    # Relative disparity everywhere, no metric depth.
    assert result.disparity.valid.all() and result.details["disparity_units"] == "relative"
    assert 0.0 <= result.disparity.values_px.min() and result.disparity.values_px.max() <= 1.0
    assert not result.depth.valid.any()
    assert [s.status for s in result.stages] == ["ok", "ok", "skipped", "skipped", "ok", "skipped", "ok"]
    assert result.details["rectification"]["reliable"] is False and result.calibration_corrected is None


def test_featureless_scene_without_the_mono_fallback_gives_no_depth() -> None:
    config = dataclasses.replace(CONFIG, mono=dataclasses.replace(CONFIG.mono, fallback=False))
    result = run_pipeline(_featureless_capture(), config)
    assert result.ok and result.depth_source == "none"
    assert result.reasons[0].startswith("rectification unreliable")
    assert not result.depth.valid.any() and not result.disparity.valid.any()
    assert [s.status for s in result.stages] == ["ok", "ok", "skipped", "skipped", "skipped", "skipped", "ok"]


def test_featureless_scene_without_online_rectification_has_too_little_confident_stereo() -> None:
    config = dataclasses.replace(CONFIG, rectification=dataclasses.replace(CONFIG.rectification, online=False))
    result = run_pipeline(_featureless_capture(), config)
    assert result.ok and result.depth_source == "mono"
    assert "confident stereo" in result.reasons[0]
    assert not result.depth.valid.any() and result.disparity.valid.all()
    assert [s.status for s in result.stages] == ["ok", "ok", "ok", "ok", "ok", "skipped", "ok"]
    assert result.drift is None and result.details["rectification"]["online"] is False
    assert result.details["stereo"]["confident_coverage"] < CONFIG.confidence.min_coverage


def test_fusion_fills_the_unconfident_pixels_with_aligned_mono(pair: LayeredPair) -> None:
    """With fusion on (the default), every pixel gets a disparity in px: stereo where it is
    confident (unchanged away from the seams) and the aligned mono elsewhere."""
    config = config_from_dict({"preprocess": {"long_side_px": 320}, "stereo": {"method": "sgbm"}})
    stereo_only = run_pipeline(make_synthetic_capture(pair), CONFIG)
    result = run_pipeline(make_synthetic_capture(pair), config)
    assert result.ok and result.details["disparity_units"] == "px"
    assert [s.status for s in result.stages] == ["ok"] * len(STAGES)
    fusion = result.details["fusion"]
    assert {"scale", "shift_px", "residual_px", "allowed_residual_px", "pixels", "filled_fraction"} <= set(fusion)
    assert fusion["filled_fraction"] == pytest.approx(1.0 - result.details["stereo"]["confident_coverage"], abs=1e-3)
    if result.depth_source == "fused":
        assert result.disparity.valid.all() and result.depth.valid.all()
        assert fusion["residual_px"] <= fusion["allowed_residual_px"]
    else:  # a mono map that does not fit this synthetic scene is refused, with the reason
        assert result.depth_source == "stereo" and "mono not fused" in result.reasons[0]
        assert fusion["residual_px"] > fusion["allowed_residual_px"]
    confident = stereo_only.disparity.valid
    np.testing.assert_allclose(result.disparity.values_px[confident].mean(), stereo_only.disparity.values_px[confident].mean(), rtol=0.02)


def _rectified(focal_px: float = 300.0, baseline_m: float = 0.06) -> RectifiedPair:
    image = np.zeros((16, 16, 3), np.uint8)
    P1 = np.hstack([np.diag([focal_px, focal_px, 1.0]), np.zeros((3, 1))])
    P2 = P1.copy()
    P2[0, 3] = -focal_px * baseline_m
    return RectifiedPair(image, image, focal_px, baseline_m, P1, P2)


@pytest.mark.parametrize(
    "stereo, expected",
    [
        ({}, 64),  # 300 px * 0.06 m / 0.35 m = 51.4 px
        ({"min_depth_m": 1.0}, 32),  # 18 px
        ({"min_depth_m": 2.0}, 16),  # 9 px, at least one block of 16
        ({"min_depth_m": 0.05}, 192),  # 360 px, capped at 192
        ({"min_depth_m": 0.05, "max_disparity_cap_px": 96}, 96),
        ({"max_disparity_px": 40}, 48),  # explicit range wins over the min-depth rule
        ({"max_disparity_px": 40, "min_depth_m": 0.05}, 48),
        ({"max_disparity_px": 16}, 16),
    ],
)
def test_search_range_follows_config(stereo: dict, expected: int) -> None:
    config = config_from_dict({"stereo": stereo})
    assert search_range_px(_rectified(), config) == expected


def test_search_range_scales_with_focal_length() -> None:
    config = PipelineConfig()
    assert search_range_px(_rectified(focal_px=600.0), config) == 112  # 102.9 px
    assert search_range_px(_rectified(baseline_m=0.03), config) == 32  # 25.7 px
