"""Rendering layered depth images: exact where visible, background in the gaps, camera paths."""

import math

import numpy as np
import pytest
from ldi_synthetic import square_ldi
from synthetic import FOREGROUND_RECT_XYXY, make_layered_pair
from test_novel_view_layers import FAR_BGR, flat_scene

from benchmarks.render_eval import right_view_visibility
from sensing.errors import ConfigError
from sensing.novel_view.layers import layered_depth_from_disparity
from sensing.novel_view.render import (
    LayerRenderer,
    camera_path,
    render_novel_right,
    render_view,
)
from sensing.novel_view.types import CameraPose

X0, Y0, X1, Y1 = FOREGROUND_RECT_XYXY


@pytest.fixture(scope="module")
def pair():
    return make_layered_pair()


def test_zero_shift_reproduces_the_input(pair):
    ldi = layered_depth_from_disparity(pair.left, pair.disparity)
    assert np.array_equal(render_view(ldi, CameraPose()), pair.left)


def test_right_view_matches_the_real_one_where_both_see(pair):
    rendered = render_novel_right(pair.left, pair.disparity)
    covisible, disoccluded = right_view_visibility(pair.disparity)
    error = np.abs(rendered.astype(int) - pair.right.astype(int)).max(axis=2)
    assert (error[covisible] == 0).mean() > 0.995
    # The gap the square uncovers (right view x in [X1 - 20, X1 - 8)) is exactly the disoccluded set.
    expected = np.zeros_like(disoccluded)
    expected[Y0:Y1, X1 - 20 : X1 - 8] = True
    assert np.array_equal(disoccluded, expected)


def test_gap_is_filled_with_background_not_foreground():
    image, disparity = flat_scene()
    rendered = render_novel_right(image, disparity)
    gap = rendered[Y0 + 2 : Y1 - 2, X1 - 20 : X1 - 8].reshape(-1, 3).astype(float)
    assert np.abs(gap - FAR_BGR).max(axis=1).max() < 30
    # The square moved left by 20 px, the background by 8 px.
    assert np.abs(rendered[Y0 + 10, X0 - 20 : X1 - 20].astype(float) - (30, 200, 30)).max() < 30


def test_shift_moves_pixels_by_disparity_times_shift():
    image, disparity = flat_scene(noise=0)
    ldi = layered_depth_from_disparity(image, disparity)
    down = render_view(ldi, CameraPose(ty=0.5))  # the square moves 10 px down, the background 4 px
    assert np.abs(down[Y1 + 10 - 3, X0 + 10].astype(int) - (30, 200, 30)).max() < 5
    assert np.abs(down[Y1 + 10 + 2, X0 + 10].astype(int) - FAR_BGR).max() < 30


def test_dolly_keeps_the_centre_and_zoom_magnifies():
    pair = make_layered_pair()
    ldi = layered_depth_from_disparity(pair.left, pair.disparity)
    renderer = LayerRenderer(ldi)
    forward = renderer.render(CameraPose(tz=2.0))
    cy, cx = 120, 160
    assert np.abs(forward[cy - 1 : cy + 2, cx - 1 : cx + 2].astype(int) - pair.left[cy - 1 : cy + 2, cx - 1 : cx + 2]).max() < 40
    zoomed = renderer.render(CameraPose(zoom=2.0))
    # Zoom 2 about the centre (159.5, 119.5): target (200, 120) samples source (179.75, 119.75).
    row = 0.25 * pair.left[cy - 1].astype(float) + 0.75 * pair.left[cy].astype(float)
    expected = 0.25 * row[179] + 0.75 * row[180]
    assert np.abs(zoomed[cy, 200] - expected).max() <= 2
    with pytest.raises(ValueError, match="zoom"):
        renderer.render(CameraPose(zoom=0.0))


def test_renders_the_mesh_helpers_synthetic_ldi():
    scene = square_ldi()
    frame = render_view(scene.ldi, CameraPose(tx=0.3, ty=-0.2))
    assert frame.shape == scene.ldi.layers[0].color.shape and frame.dtype == np.uint8


def test_single_layer_render_has_no_holes():
    image, _ = flat_scene()
    ramp = np.tile(np.linspace(2, 30, image.shape[1], dtype=np.float32), (image.shape[0], 1))
    ldi = layered_depth_from_disparity(image, ramp)
    assert len(ldi.layers) == 1
    frame = render_view(ldi, CameraPose(tx=1.0))
    assert frame.shape == image.shape and (frame.reshape(-1, 3).sum(axis=1) > 0).all()


@pytest.mark.parametrize("path", ["circle", "swing", "dolly"])
def test_camera_paths(path):
    poses = camera_path(path, 8, radius=0.4)
    assert len(poses) == 8 and poses[0].zoom == 1.0
    if path == "circle":
        assert all(math.isclose(math.hypot(p.tx, p.ty), 0.4) for p in poses)
    if path == "swing":
        assert all(p.ty == 0 and abs(p.tx) <= 0.4 for p in poses) and poses[0].tx == 0
    if path == "dolly":
        assert poses[0].tz == 0 and max(p.tz for p in poses) == pytest.approx(1.6)


@pytest.mark.parametrize(
    "path, frames, radius, message",
    [("spiral", 8, 0.5, "unknown camera path"), ("circle", 0, 0.5, "at least 1"), ("swing", 4, -1.0, "non-negative")],
)
def test_camera_path_bad_options(path, frames, radius, message):
    with pytest.raises(ConfigError, match=message):
        camera_path(path, frames, radius=radius)
