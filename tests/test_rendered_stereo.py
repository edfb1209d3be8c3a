"""Stereo pairs rendered from the procedural 3D scenes (models/data/rendered_stereo.py): the right
view is the left one seen from a camera moved along its x axis, so warping it by the ground truth
reproduces the left view wherever both cameras see the same surface."""

import cv2
import numpy as np
import pytest

from models.data.rendered_stereo import render_stereo_scene, render_stereo_scenes

SIZE = dict(height=72, width=96)


def _warped_to_left(image: np.ndarray, disparity: np.ndarray) -> np.ndarray:
    """``image`` (a right-view quantity) sampled at x - disparity of each left pixel (bilinear)."""
    height, width = disparity.shape
    xs = np.arange(width, dtype=np.float32)[None, :] - disparity
    ys = np.repeat(np.arange(height, dtype=np.float32)[:, None], width, axis=1)
    return cv2.remap(image, xs, ys, cv2.INTER_LINEAR)


@pytest.mark.parametrize("kind", ["tabletop", "room", "street"])
def test_right_view_warped_by_the_ground_truth_matches_the_left_where_both_see_it(kind):
    scene = render_stereo_scene(np.random.default_rng(4), **SIZE, max_disparity_px=24, kind=kind)
    assert scene.left.shape == scene.right.shape == (72, 96, 3) and scene.left.dtype == np.uint8
    assert np.isfinite(scene.disparity).all() and np.isfinite(scene.right_disparity).all()
    # Visible in both views: the right view's disparity where the left pixel lands agrees with it.
    landed = _warped_to_left(scene.right_disparity, scene.disparity)
    inside = np.arange(96)[None, :] - scene.disparity >= 1.0
    visible = inside & (np.abs(landed - scene.disparity) < 0.5)
    assert visible.mean() > 0.5
    error = np.abs(_warped_to_left(scene.right, scene.disparity).astype(float) - scene.left.astype(float)).mean(axis=2)
    assert error[visible].mean() < 2.0  # grey levels: bilinear resampling only
    # Off by a few px the views disagree: the ground truth is what aligns them.
    shifted = np.abs(_warped_to_left(scene.right, scene.disparity + 3.0).astype(float) - scene.left.astype(float)).mean(axis=2)
    assert shifted[visible].mean() > 2 * error[visible].mean() + 1.0


def test_the_baseline_puts_the_99th_percentile_of_the_disparity_in_the_asked_range():
    for seed in range(3):
        scene = render_stereo_scene(np.random.default_rng(seed), **SIZE, max_disparity_px=40)
        surface = scene.disparity[scene.disparity > 0]
        assert 0.15 * 40 - 0.5 <= np.percentile(surface, 99) <= 40 + 0.5


def test_scenes_are_seeded_per_index_and_the_same_for_any_worker_count():
    one = render_stereo_scenes(7, 3, **SIZE, max_disparity_px=24, workers=1)
    two = render_stereo_scenes(7, 3, **SIZE, max_disparity_px=24, workers=2)
    assert [scene.name for scene in one] == ["rendered/0", "rendered/1", "rendered/2"]
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a.left, b.left)
        np.testing.assert_array_equal(a.disparity, b.disparity)
    assert not np.array_equal(one[0].left, one[1].left)
    other_seed = render_stereo_scenes(8, 1, **SIZE, max_disparity_px=24)
    assert not np.array_equal(one[0].left, other_seed[0].left)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: render_stereo_scene(np.random.default_rng(0), height=0, width=8, max_disparity_px=8), "positive size"),
        (lambda: render_stereo_scene(np.random.default_rng(0), height=8, width=8, max_disparity_px=0), "positive size"),
        (lambda: render_stereo_scene(np.random.default_rng(0), height=8, width=8, max_disparity_px=8, kind="moon"), "unknown scene kind"),
        (lambda: render_stereo_scenes(0, 2, height=8, width=8, max_disparity_px=8, workers=0), "workers >= 1"),
    ],
)
def test_bad_arguments_are_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
