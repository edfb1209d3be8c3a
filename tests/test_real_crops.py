"""Training crops of real scenes (models/data/real_crops.py), on an in-memory pair of known disparity."""

import numpy as np
import pytest

from models.data.real_crops import LoadedScene, random_crop

SHIFT_PX = 6


def shifted_scene(*, with_right: bool = True, height: int = 60, width: int = 90) -> LoadedScene:
    """Left and right views of a fronto-parallel textured plane at SHIFT_PX px of disparity:
    left[x] = right[x - SHIFT_PX]; both disparities are SHIFT_PX everywhere."""
    texture = np.random.default_rng(0).integers(0, 256, (height, width + SHIFT_PX, 3), dtype=np.uint8)
    disparity = np.full((height, width), float(SHIFT_PX), np.float32)
    return LoadedScene("test/plane", texture[:, :-SHIFT_PX], texture[:, SHIFT_PX:], disparity, disparity if with_right else None)


def test_mirrored_pair_is_a_valid_pair_with_the_right_view_as_reference():
    scene = shifted_scene()
    mirrored = scene.mirrored()
    np.testing.assert_array_equal(mirrored.left, scene.right[:, ::-1])
    np.testing.assert_array_equal(mirrored.right, scene.left[:, ::-1])
    # Its left pixel x matches its right pixel x - d: a positive disparity again.
    np.testing.assert_array_equal(mirrored.left[:, SHIFT_PX:], mirrored.right[:, :-SHIFT_PX])
    np.testing.assert_array_equal(mirrored.disparity, scene.right_disparity[:, ::-1])
    assert "mirrored" in mirrored.name


def test_mirroring_needs_the_right_disparity():
    with pytest.raises(ValueError, match="no right-view disparity"):
        shifted_scene(with_right=False).mirrored()


def test_random_crop_scales_the_disparity_with_the_views():
    rng = np.random.default_rng(1)
    scene = shifted_scene()
    for _ in range(5):
        crop = random_crop(rng, scene, height=32, width=48, scale_range=(0.6, 1.5), max_disparity_px=40)
        assert crop.left.shape == crop.right.shape == (32, 48, 3) and crop.disparity.shape == crop.valid.shape == (32, 48)
        assert crop.valid.all()
        scale = float(crop.disparity[crop.valid][0]) / SHIFT_PX
        assert 0.6 - 1e-3 <= scale <= 1.5 + 1e-3
        np.testing.assert_allclose(crop.disparity, SHIFT_PX * scale, rtol=1e-5)


def test_disparities_beyond_the_limit_are_invalid():
    crop = random_crop(np.random.default_rng(2), shifted_scene(), height=32, width=48, scale_range=(1.0, 1.0), max_disparity_px=4)
    assert not crop.valid.any()
