"""The background fill of pixels without a match in the right view (sensing/visibility.py)."""

import numpy as np

from sensing.visibility import OCCLUSION_MARGIN_PX, OUT_OF_VIEW_MARGIN_PX, fill_occluded, fill_out_of_view, fill_unmatched

BACKGROUND_PX, FOREGROUND_PX = 5.0, 20.0
FOREGROUND_COLUMNS = slice(40, 60)


def plane_with_block(height: int = 12, width: int = 90) -> np.ndarray:
    """(H, W) float32 disparity: a background at 5 px with a block at 20 px over columns 40-59."""
    disparity = np.full((height, width), BACKGROUND_PX, np.float32)
    disparity[:, FOREGROUND_COLUMNS] = FOREGROUND_PX
    return disparity


def test_out_of_view_band_takes_the_first_matchable_pixel():
    disparity = np.full((6, 50), 10.0, np.float32)
    first = int(10.0 + OUT_OF_VIEW_MARGIN_PX) + 1  # 13 - 10 > 2: the first matchable column
    disparity[:, :first] = 25.0  # a guess beyond the view: x - 25 < 0 for all of them
    original = disparity.copy()
    filled, mask = fill_out_of_view(disparity)
    np.testing.assert_array_equal(disparity, original)  # a new array
    assert filled.dtype == np.float32 and filled.shape == disparity.shape
    np.testing.assert_array_equal(filled, np.full((6, 50), 10.0, np.float32))
    expected_mask = np.zeros((6, 50), bool)
    expected_mask[:, :first] = True
    np.testing.assert_array_equal(mask, expected_mask)


def test_out_of_view_leaves_matchable_maps_and_hopeless_rows_alone():
    slanted = np.tile(np.linspace(0.0, 8.0, 40, dtype=np.float32) * 0.1, (4, 1))
    filled, mask = fill_out_of_view(slanted)
    # Only columns 0-2, where x - d <= 2, count as out of view; they take column 3's value.
    assert mask[:, :3].all() and not mask[:, 3:].any()
    np.testing.assert_array_equal(filled[:, :3], np.broadcast_to(slanted[:, 3:4], (4, 3)))
    np.testing.assert_array_equal(filled[:, 3:], slanted[:, 3:])
    hopeless = np.full((3, 20), 30.0, np.float32)  # nothing on the row is matchable
    filled, mask = fill_out_of_view(hopeless)
    np.testing.assert_array_equal(filled, hopeless)
    assert not mask.any()


def test_occluded_background_left_of_a_block_is_found_and_kept():
    disparity = plane_with_block()
    filled, occluded = fill_occluded(disparity)
    # Background column x lands on x - 5; the block covers right-view columns 20-39, so the
    # background at x - 5 > 20 + margin (x in 27..39) is hidden.
    hidden = np.zeros(disparity.shape[1], bool)
    hidden[int(FOREGROUND_COLUMNS.start - FOREGROUND_PX + BACKGROUND_PX + OCCLUSION_MARGIN_PX) + 1 : FOREGROUND_COLUMNS.start] = True
    np.testing.assert_array_equal(occluded, np.broadcast_to(hidden, disparity.shape))
    np.testing.assert_array_equal(filled, disparity)  # already the background's value


def test_wrong_values_in_an_occlusion_take_the_background():
    disparity = plane_with_block()
    disparity[:, 30:40] = 1.0  # a matcher's guess, beyond the background: still hidden by the block
    filled, occluded = fill_occluded(disparity)
    assert occluded[:, 30:40].all()
    np.testing.assert_array_equal(filled, plane_with_block())


def test_no_occlusion_in_a_smooth_map_and_a_leftmost_occluded_pixel_keeps_its_value():
    smooth = np.tile(np.linspace(2.0, 12.0, 60, dtype=np.float32), (5, 1))
    filled, occluded = fill_occluded(smooth)
    assert not occluded.any()
    np.testing.assert_array_equal(filled, smooth)
    edge = np.full((2, 30), 12.0, np.float32)
    edge[:, 0] = 0.0  # lands at 0, right of where column 1 lands (-11): hidden, nothing to its left
    filled, occluded = fill_occluded(edge)
    assert occluded[:, 0].all() and not occluded[:, 1:].any()
    np.testing.assert_array_equal(filled, edge)


def test_fill_unmatched_runs_the_fills_asked_for_in_order():
    disparity = plane_with_block()
    disparity[:, :4] = 30.0  # out of view
    disparity[:, 30:40] = 1.0  # occluded
    band_filled = fill_out_of_view(disparity)[0]
    np.testing.assert_array_equal(fill_unmatched(disparity, occluded=False), band_filled)
    np.testing.assert_array_equal(fill_unmatched(disparity, out_of_view=False), fill_occluded(disparity)[0])
    np.testing.assert_array_equal(fill_unmatched(disparity), fill_occluded(band_filled)[0])
    np.testing.assert_array_equal(fill_unmatched(disparity), plane_with_block())
    np.testing.assert_array_equal(fill_unmatched(disparity, out_of_view=False, occluded=False), disparity)
