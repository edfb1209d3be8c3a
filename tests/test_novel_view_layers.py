"""Layer cut and background fill on small synthetic scenes: a near square over a far background."""

import numpy as np
import pytest
from synthetic import FOREGROUND_RECT_XYXY, make_layered_pair

from sensing.errors import InputError, ShapeError
from sensing.novel_view.fill import (
    background_sources_in_row,
    fill_background,
    nearest_background_in_row,
    push_pull_fill,
    row_source_in_row,
)
from sensing.novel_view.layers import (
    cut_layers,
    fill_unknown_disparity,
    layered_depth_from_disparity,
)

X0, Y0, X1, Y1 = FOREGROUND_RECT_XYXY
FAR_BGR, NEAR_BGR = (200, 60, 40), (30, 200, 30)


def flat_scene(noise: float = 6.0):
    """(image, disparity): a reddish background at 8 px with a green square at 20 px (FOREGROUND_RECT_XYXY)."""
    rng = np.random.default_rng(0)
    height, width = 240, 320
    image = np.empty((height, width, 3), np.float32)
    image[:] = FAR_BGR
    image[Y0:Y1, X0:X1] = NEAR_BGR
    image = np.clip(image + rng.normal(0, noise, image.shape), 0, 255).astype(np.uint8)
    disparity = np.full((height, width), 8.0, np.float32)
    disparity[Y0:Y1, X0:X1] = 20.0
    return image, disparity


def test_cut_finds_the_square_border():
    pair = make_layered_pair()
    ldi = layered_depth_from_disparity(pair.left, pair.disparity)
    assert len(ldi.layers) == 2
    ys, xs = np.nonzero(ldi.edges)
    # Near side of the cut: inside the square, within the jump window of its border.
    assert ((xs >= X0) & (xs < X1) & (ys >= Y0) & (ys < Y1)).all()
    distance_to_border = np.minimum.reduce([xs - X0, X1 - 1 - xs, ys - Y0, Y1 - 1 - ys])
    assert distance_to_border.max() <= 2
    border = np.zeros_like(ldi.edges)
    border[Y0:Y1, [X0, X1 - 1]] = True
    border[[Y0, Y1 - 1], X0:X1] = True
    assert ldi.edges[border].mean() > 0.95


def test_band_covers_the_widest_gap_behind_the_edge():
    image, disparity = flat_scene()
    ldi = layered_depth_from_disparity(image, disparity, max_shift=1.0, margin_px=3)
    band = ldi.layers[1].alpha
    jump = 20 - 8
    # Inside the square, the band reaches jump * max_shift (+ margin) px from every side ...
    assert (band[Y0 + 20 : Y1 - 20, X0 : X0 + jump] == 1).all()
    assert (band[Y0 + 20 : Y1 - 20, X1 - jump : X1] == 1).all()
    assert (band[Y0 : Y0 + jump, X0 + 20 : X1 - 20] == 1).all()
    # ... not into the middle of the square, and never onto the visible background.
    assert (band[Y0 + 30 : Y1 - 30, X0 + 30 : X1 - 30] == 0).all()
    assert band[:, : X0 - 3].max() == 0 and band[: Y0 - 3].max() == 0


def test_fill_comes_from_the_background_only():
    image, disparity = flat_scene()
    ldi = layered_depth_from_disparity(image, disparity)
    plate = ldi.layers[1]
    band = plate.alpha > 0
    colors = plate.color[band].astype(float)
    assert np.abs(colors - FAR_BGR).max(axis=1).max() < 25  # red background, no green
    assert np.abs(plate.disparity[band] - 8.0).max() < 1.0
    # Outside the hidden region the plate is the image itself.
    assert np.array_equal(plate.color[:, :100], image[:, :100])


def test_unknown_disparity_is_filled_from_the_background_side():
    _, disparity = flat_scene()
    holes = disparity.copy()
    holes[Y0 + 10 : Y0 + 20, X1 - 5 : X1 + 5] = np.nan  # straddles the square's right border
    holes[:5] = np.inf  # whole rows unknown: filled along the columns
    filled = fill_unknown_disparity(holes, np.isfinite(holes))
    assert np.isfinite(filled).all()
    assert (filled[Y0 + 10 : Y0 + 20, X1 - 5 : X1 + 5] == 8.0).all()
    assert (filled[:5] == 8.0).all()


def test_confidence_below_threshold_counts_as_unknown():
    _, disparity = flat_scene()
    confidence = np.ones_like(disparity)
    confidence[Y0 + 40 : Y0 + 50, X0 + 40 : X0 + 50] = 0.0  # inside the square: background side wins
    cut = cut_layers(disparity, confidence=confidence)
    assert (cut.disparity[Y0 + 40 : Y0 + 50, X0 + 40 : X0 + 50] == 20.0).all()  # only square around


def test_flat_disparity_gives_one_layer():
    image, _ = flat_scene()
    ldi = layered_depth_from_disparity(image, np.full(image.shape[:2], 5.0, np.float32))
    assert len(ldi.layers) == 1 and not ldi.edges.any()


def test_bad_inputs_raise_typed_errors():
    image, disparity = flat_scene()
    with pytest.raises(InputError, match="no finite"):
        layered_depth_from_disparity(image, np.full(disparity.shape, np.nan, np.float32))
    with pytest.raises(ShapeError, match="image is 320x240 but disparity is 100x240"):
        layered_depth_from_disparity(image, disparity[:, :100])
    with pytest.raises(ShapeError, match="uint8"):
        layered_depth_from_disparity(image.astype(np.float32), disparity)


def test_push_pull_keeps_known_values_and_prefers_the_background():
    values = np.zeros((16, 32, 2), np.float32)
    values[:, :16] = (10.0, 5.0)  # far (disparity 5) on the left
    values[:, 20:] = (90.0, 30.0)  # near (disparity 30) on the right
    known = np.ones((16, 32), bool)
    known[:, 16:20] = False
    filled = push_pull_fill(values, known, depth_channel=1, ceiling=np.where(known, np.inf, 6.0).astype(np.float32))
    assert np.array_equal(filled[known], values[known])
    assert np.allclose(filled[~known], (10.0, 5.0), atol=0.5)


def test_fill_background_and_row_source():
    image, disparity = flat_scene(noise=0)
    unknown = np.zeros(disparity.shape, bool)
    unknown[:, X1 - 4 : X1] = True
    color, filled = fill_background(image, disparity, unknown)
    assert np.array_equal(color[~unknown], image[~unknown]) and np.array_equal(filled[~unknown], disparity[~unknown])
    source = nearest_background_in_row(disparity, ~unknown)
    assert (source[Y0 + 1, X1 - 4 : X1] == X1).all()  # the far side (right of the square)
    assert (source[0, X1 - 4 : X1] == X1 - 5).all()  # both sides far: the left one (tie)
    assert (source[~unknown] == np.nonzero(~unknown)[1]).all()


def test_sparse_row_sources_match_the_dense_ones_brute_force():
    rng = np.random.default_rng(3)
    disparity = rng.integers(0, 4, (12, 9)).astype(np.float32)
    known = rng.random((12, 9)) > 0.4
    known[0] = False  # a row with no known pixel
    known[1] = True  # a row with no unknown pixel
    unknown_at, source = background_sources_in_row(disparity, known)
    assert np.array_equal(unknown_at, np.flatnonzero(~known))
    dense = nearest_background_in_row(disparity, known)
    assert np.array_equal(dense.ravel()[unknown_at], source)
    for index, column in zip(unknown_at, source):
        y, x = divmod(int(index), known.shape[1])
        left = [c for c in range(x) if known[y, c]]
        right = [c for c in range(x + 1, known.shape[1]) if known[y, c]]
        sides = ([left[-1]] if left else []) + ([right[0]] if right else [])
        expected = min(sides, key=lambda c: (disparity[y, c], c)) if sides else -1
        assert column == expected


def test_row_source_takes_the_nearest_side_not_nearer_than_the_ceiling():
    # One row: [left surface][hidden run, ceiling 8][background at 8]; the left surface varies.
    known = np.ones((1, 30), bool)
    known[0, 10:20] = False
    ceiling = np.where(known, np.inf, 8.0).astype(np.float32)
    farther = np.where(np.arange(30) < 10, 2.0, 8.0).astype(np.float32)[None, :]
    source = row_source_in_row(farther, known, ceiling=ceiling)
    # Another, farther surface on the left is allowed: each hidden pixel takes its nearer side ...
    assert (source[0, 10:15] == 9).all() and (source[0, 15:20] == 20).all()
    assert (source[0, known[0]] == np.flatnonzero(known[0])).all()
    # ... where nearest_background_in_row always takes the farthest one.
    assert (nearest_background_in_row(farther, known)[0, 10:20] == 9).all()
    # Foreground (nearer than the ceiling) on the left is never a source.
    nearer = np.where(np.arange(30) < 10, 20.0, 8.0).astype(np.float32)[None, :]
    assert (row_source_in_row(nearer, known, ceiling=ceiling)[0, 10:20] == 20).all()
    # Without a ceiling only the background side (smaller disparity) is allowed.
    assert (row_source_in_row(nearer, known)[0, 10:20] == 20).all()
    assert (row_source_in_row(farther, known)[0, 10:20] == 9).all()
    # Nothing allowed: -1.
    both_near = np.full((1, 30), 20.0, np.float32)
    assert (row_source_in_row(both_near, known, ceiling=ceiling)[0, 10:20] == -1).all()
