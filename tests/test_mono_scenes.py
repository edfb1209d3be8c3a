"""Procedural monocular scenes (models.data.mono_scenes): format, determinism and exact inverse depth."""

import numpy as np
import pytest

from models.data.mono_scenes import (
    _HORIZONTAL,
    MonoSample,
    _Lighting,
    _look_camera,
    _material,
    _render_sample,
    _Scene,
    _Sky,
    _solid,
    random_mono_scene,
)

HEIGHT, WIDTH = 48, 64
KINDS = ("room", "corridor", "street", "open", "tabletop")


def _sample(seed: int, kind: str | None = None) -> MonoSample:
    return random_mono_scene(np.random.default_rng(seed), height=HEIGHT, width=WIDTH, kind=kind)


def _scene(primitives: list, *, height_m: float, pitch_deg: float) -> _Scene:
    """A fixed scene: 60 degree field of view, the camera at (0, height_m, 0) looking along +Z,
    pitched down by ``pitch_deg``."""
    camera = _look_camera(
        height=HEIGHT,
        width=WIDTH,
        hfov_deg=60.0,
        centre=np.array([0.0, height_m, 0.0]),
        yaw=0.0,
        pitch=np.radians(pitch_deg),
        roll=0.0,
    )
    grey = np.full(3, 0.5, np.float32)
    lighting = _Lighting(np.array([0.0, 1.0, 0.0]), grey, grey)
    return _Scene(
        camera, tuple(primitives), lighting, _Sky(np.full(3, 200.0, np.float32), np.full(3, 230.0, np.float32))
    )


def _flat(seed: int = 0):
    return _material(np.random.default_rng(seed), {"flat": 1.0}, 1.0)


@pytest.mark.parametrize("kind", KINDS)
def test_format_and_values(kind):
    sample = _sample(1, kind)
    assert sample.image.shape == (HEIGHT, WIDTH, 3) and sample.image.dtype == np.uint8
    assert sample.inverse_depth.shape == (HEIGHT, WIDTH) and sample.inverse_depth.dtype == np.float32
    assert sample.valid.shape == (HEIGHT, WIDTH) and sample.valid.dtype == bool
    assert sample.valid.all() and np.isfinite(sample.inverse_depth).all()
    assert sample.inverse_depth.min() >= 0.0 and sample.inverse_depth.max() > 0.0
    assert sample.image.std() > 3


def test_sky_is_zero_outdoors_and_absent_indoors():
    street = [_sample(seed, "street") for seed in range(3)]
    assert all((s.inverse_depth == 0).any() for s in street)  # the camera looks level along a road
    for seed in range(3):
        room = _sample(seed, "room")
        assert (room.inverse_depth > 0).all()  # a closed room: no sky
        assert room.inverse_depth.max() < 1 / 0.05  # nothing nearer than 5 cm


def test_same_seed_same_sample_and_different_seeds_differ():
    first, again, other = _sample(7), _sample(7), _sample(8)
    for name in ("image", "inverse_depth", "valid"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert not np.array_equal(first.inverse_depth, other.inverse_depth)


def test_bad_arguments_raise():
    with pytest.raises(ValueError):
        random_mono_scene(np.random.default_rng(0), height=0, width=WIDTH)
    with pytest.raises(ValueError):
        random_mono_scene(np.random.default_rng(0), height=HEIGHT, width=WIDTH, kind="beach")


def test_ground_plane_matches_perspective():
    height_m, pitch_deg = 1.5, 10.0
    ground = _solid("quad", (0.0, 0.0, 0.0), (1e4, 1e4, 1.0), _flat(), _HORIZONTAL, caster=False)
    scene = _scene([ground], height_m=height_m, pitch_deg=pitch_deg)
    inverse = _render_sample(np.random.default_rng(0), scene).inverse_depth
    camera = scene.camera
    # A ray through row v descends at (v - cy) / f below the optical axis: 1/z = (sin p + cos p (v - cy) / f) / h.
    rows = np.arange(HEIGHT)
    expected = (
        np.sin(np.radians(pitch_deg)) + np.cos(np.radians(pitch_deg)) * (rows - camera.cy) / camera.focal_px
    ) / height_m
    expected = np.maximum(expected, 0.0)  # above the horizon: sky
    for column in (0, WIDTH // 2, WIDTH - 1):  # no roll: the same along a row
        np.testing.assert_allclose(inverse[:, column], expected, rtol=1e-4, atol=1e-4)
    ground_rows = rows[expected > 1e-3]
    assert ground_rows.size > HEIGHT // 2
    assert (np.diff(inverse[ground_rows, WIDTH // 2]) > 0).all()  # nearer down the image


def test_box_occludes_wall_behind_it():
    wall = _solid("quad", (0.0, 1.5, 6.0), (20.0, 20.0, 1.0), _flat(1))  # fronto-parallel at z = 6 m
    box = _solid("box", (0.0, 1.5, 3.0), (0.5, 0.5, 0.5), _flat(2))  # front face at z = 2.5 m
    inverse = _render_sample(np.random.default_rng(0), _scene([wall, box], height_m=1.5, pitch_deg=0.0)).inverse_depth
    np.testing.assert_allclose(inverse[HEIGHT // 2, WIDTH // 2], 1 / 2.5, rtol=1e-5)
    np.testing.assert_allclose(inverse[:, 0], 1 / 6.0, rtol=1e-5)  # the wall beside the box
    # The box spans |x| <= 0.5 m at 2.5 m: 0.2 focal lengths either side of the centre.
    half_px = 0.5 / 2.5 * _scene([], height_m=1.5, pitch_deg=0.0).camera.focal_px
    row = inverse[HEIGHT // 2]
    columns = np.arange(WIDTH) - (WIDTH - 1) / 2
    np.testing.assert_allclose(row[np.abs(columns) < half_px - 1], 1 / 2.5, rtol=1e-5)
    np.testing.assert_allclose(row[np.abs(columns) > half_px + 1], 1 / 6.0, rtol=1e-5)
