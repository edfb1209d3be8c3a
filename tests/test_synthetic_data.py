"""Procedural stereo pairs (models.data.synthetic): format, determinism and exact ground truth."""

import cv2
import numpy as np
import pytest

from models.data.synthetic import (
    StereoSample,
    _render_views,
    _sample_scene,
    photometric_differences,
    random_stereo_pair,
    texture_bank,
)

HEIGHT, WIDTH, MAX_DISPARITY = 96, 128, 40.0


def _pair(seed: int, **options: bool | float) -> StereoSample:
    return random_stereo_pair(
        np.random.default_rng(seed), height=HEIGHT, width=WIDTH, max_disparity_px=MAX_DISPARITY, **options
    )


def _right_sampled_at_true_match(seed: int, offset_px: float = 0.0, low_texture: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per left pixel whose true match is seen by the right camera (the right view's z-buffer picks
    the same layer on both pixels around x - d): mean abs BGR difference between the left colour and
    the right view sampled bilinearly at (x - d - offset_px, y); and the (H, W) bool mask of them."""
    layers = _sample_scene(np.random.default_rng(seed), HEIGHT, WIDTH, MAX_DISPARITY, low_texture=low_texture)
    views = _render_views(layers, HEIGHT, WIDTH)
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    right_xs = xs - views.disparity - offset_px
    floor = np.clip(np.floor(right_xs).astype(int), 0, WIDTH - 1)
    ceil = np.clip(floor + 1, 0, WIDTH - 1)
    rows = ys.astype(int)
    matchable = (
        (right_xs >= 0)
        & (right_xs <= WIDTH - 1)
        & (views.right_layer[rows, floor] == views.left_layer)
        & (views.right_layer[rows, ceil] == views.left_layer)
    )
    sampled = cv2.remap(views.right, right_xs, ys, cv2.INTER_LINEAR)
    difference = np.abs(sampled.astype(np.float32) - views.left.astype(np.float32)).mean(axis=2)
    return difference[matchable], matchable


def test_format_and_ranges():
    for seed in range(5):
        sample = _pair(seed)
        for view in (sample.left, sample.right):
            assert view.shape == (HEIGHT, WIDTH, 3) and view.dtype == np.uint8
        assert sample.disparity.shape == (HEIGHT, WIDTH) and sample.disparity.dtype == np.float32
        assert sample.valid.shape == (HEIGHT, WIDTH) and sample.valid.dtype == bool
        assert sample.valid.all()  # the background plane covers the whole frame
        assert np.isfinite(sample.disparity).all()
        assert sample.disparity.min() >= 0.0 and sample.disparity.max() <= MAX_DISPARITY
        assert sample.left.std() > 5 and sample.right.std() > 5


def test_scene_disparity_ranges_vary():
    scene_maxima = np.array([_pair(seed, photometric=False).disparity.max() for seed in range(30)])
    assert (scene_maxima <= MAX_DISPARITY).all()
    assert scene_maxima.min() < 0.5 * MAX_DISPARITY < 0.8 * MAX_DISPARITY < scene_maxima.max()


def test_layer_planes_stay_in_range_and_invertible():
    for seed in range(10):
        for layer in _sample_scene(np.random.default_rng(seed), HEIGHT, WIDTH, MAX_DISPARITY):
            a, b, c = layer.plane
            assert 1 - b > 0.3
            (x0, y0), (h, w) = layer.origin, layer.mask.shape
            corners = [a + b * x + c * y for x in (x0, x0 + w - 1) for y in (y0, y0 + h - 1)]
            assert -1e-6 <= min(corners) and max(corners) <= MAX_DISPARITY + 1e-6


def test_same_seed_same_pair_and_different_seeds_differ():
    first, again, other = _pair(7), _pair(7), _pair(8)
    for name in ("left", "right", "disparity", "valid"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert not np.array_equal(first.left, other.left)
    assert not np.array_equal(first.disparity, other.disparity)


def test_photometric_off_is_the_plain_rendering():
    sample = _pair(3, photometric=False)
    views = _render_views(_sample_scene(np.random.default_rng(3), HEIGHT, WIDTH, MAX_DISPARITY), HEIGHT, WIDTH)
    np.testing.assert_array_equal(sample.left, views.left)
    np.testing.assert_array_equal(sample.right, views.right)
    np.testing.assert_allclose(sample.disparity, views.disparity, atol=1e-5)


def test_right_view_at_true_disparity_reproduces_the_left_colour():
    errors, shifted_errors = [], []
    for seed in range(6):
        difference, matchable = _right_sampled_at_true_match(seed)
        assert matchable.mean() > 0.6  # most pixels are checked, not just the unoccluded few
        assert np.median(difference) < 2.0, f"seed {seed}"
        errors.append(difference)
        shifted_errors.append(_right_sampled_at_true_match(seed, offset_px=1.5)[0])
    # The check is sensitive: 1.5 px off the true disparity the colours no longer agree.
    assert np.mean(np.concatenate(shifted_errors)) > 3 * np.mean(np.concatenate(errors))


def _untextured_share(view: np.ndarray) -> float:
    """Share of the pixels of a (H, W, 3) uint8 view whose 9x9 mean horizontal gradient is under 4
    grey levels per px: where matching has nothing to lock on."""
    grey = cv2.cvtColor(view, cv2.COLOR_BGR2GRAY).astype(np.float32)
    return float((cv2.boxFilter(np.abs(cv2.Sobel(grey, cv2.CV_32F, 1, 0)), -1, (9, 9)) < 4).mean())


def test_low_texture_scenes_have_few_large_untextured_surfaces_and_exact_matches():
    for seed in range(8):
        layers = _sample_scene(np.random.default_rng(seed), HEIGHT, WIDTH, MAX_DISPARITY, low_texture=True)
        assert 1 <= len(layers) <= 9  # background, perhaps a ground plane, 2-7 foreground layers
        difference, matchable = _right_sampled_at_true_match(seed, low_texture=True)
        assert matchable.mean() > 0.6 and np.median(difference) < 2.0, f"seed {seed}"
    plain = [_untextured_share(_pair(seed, photometric=False).left) for seed in range(20)]
    sparse = [
        _untextured_share(_pair(seed, photometric=False, low_texture_probability=1.0).left) for seed in range(20)
    ]
    assert np.mean(sparse) > 1.5 * np.mean(plain) and np.mean(sparse) > 0.3
    # Probability 0 draws nothing extra, so the streams of earlier training configs are unchanged.
    for name in ("left", "disparity"):
        np.testing.assert_array_equal(getattr(_pair(4, low_texture_probability=0.0), name), getattr(_pair(4), name))


def _is_perspective(layer) -> bool:
    return not np.array_equal(layer.tex_from_left[2], [0.0, 0.0, 1.0])


def _ground_seeds(count: int) -> list[int]:
    """The first ``count`` seeds whose scene has a ground plane (a perspective texture map)."""
    scenes = [_sample_scene(np.random.default_rng(seed), HEIGHT, WIDTH, MAX_DISPARITY) for seed in range(60)]
    seeds = [seed for seed, layers in enumerate(scenes) if any(_is_perspective(layer) for layer in layers)]
    assert 10 < len(seeds) < 40  # about 40% of scenes
    return seeds[:count]


def test_ground_plane_recedes_to_a_horizon_and_matches_exactly():
    for seed in _ground_seeds(3):
        layers = _sample_scene(np.random.default_rng(seed), HEIGHT, WIDTH, MAX_DISPARITY)
        ground = next(layer for layer in layers if _is_perspective(layer))
        a, b, c = ground.plane
        assert b == 0.0 and 0.0 < c <= 0.8
        horizon = -a / c
        assert ground.origin[1] > horizon  # only the rows below the horizon, where d > 0
        views = _render_views(layers, HEIGHT, WIDTH)
        on_ground = views.left_layer == layers.index(ground)
        assert on_ground.any()
        rows = np.nonzero(on_ground)[0]
        np.testing.assert_allclose(views.disparity[on_ground], c * (rows - horizon), rtol=1e-4, atol=1e-3)
        difference, _ = _right_sampled_at_true_match(seed)
        assert np.median(difference) < 2.0, f"seed {seed}"


def test_texture_bank_is_cached_and_varied():
    bank = texture_bank()
    assert all(a is b for a, b in zip(bank, texture_bank(), strict=True))
    assert len(bank) >= 20
    for image in bank:
        assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
        assert not image.flags.writeable


def test_photometric_differences_change_each_view_but_keep_the_content():
    plain = _pair(5, photometric=False)
    correlations = []
    for seed in range(5):
        left, right = photometric_differences(np.random.default_rng(seed), plain.left, plain.right)
        assert left.shape == plain.left.shape and left.dtype == np.uint8 and right.dtype == np.uint8
        assert not np.array_equal(left, plain.left) and not np.array_equal(right, plain.right)
        correlations.append(np.corrcoef(left.astype(float).ravel(), plain.left.astype(float).ravel())[0, 1])
    assert np.median(correlations) > 0.9  # gain, gamma, vignetting and noise; a specular blob may lower one


def test_some_pairs_come_from_monochrome_cameras():
    plain = _pair(5, photometric=False)
    grey_pairs = 0
    for seed in range(100):
        left, right = photometric_differences(
            np.random.default_rng(seed), plain.left, plain.right, grey_probability=0.15
        )
        grey_left, grey_right = (
            np.array_equal(view[:, :, 0], view[:, :, 1]) and np.array_equal(view[:, :, 1], view[:, :, 2])
            for view in (left, right)
        )
        assert grey_left == grey_right  # both cameras of a rig are of one kind
        grey_pairs += grey_left
    assert 5 <= grey_pairs <= 30  # 15% expected
    # Off by default: no pair is grey.
    for seed in range(20):
        left, _ = photometric_differences(np.random.default_rng(seed), plain.left, plain.right)
        assert not np.array_equal(left[:, :, 0], left[:, :, 1])


def test_bad_arguments_are_rejected():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        random_stereo_pair(rng, height=0, width=WIDTH, max_disparity_px=MAX_DISPARITY)
    with pytest.raises(ValueError):
        random_stereo_pair(rng, height=HEIGHT, width=WIDTH, max_disparity_px=0.0)
