"""Fill the left-view pixels no right-view pixel can confirm, from the geometry of the disparity.

Two kinds of left-view pixels have no match in the right view, so a matcher's value there is a
guess from context:

* **out of view**: ``x - d < 0``, the point lies left of the right camera's field of view (a band
  along the left edge as wide as the disparity there);
* **occluded**: a nearer surface to the pixel's right lands on the same or a later right-view
  column (``x' - d(x') <= x - d(x)`` for some ``x' > x``), hiding the pixel in the right view.

:func:`fill_out_of_view` and :func:`fill_occluded` give them the disparity of the surface they
most likely continue: the out-of-view band that of the first matchable pixel on its row, an
occluded pixel that of the nearest visible pixel to its left (occlusions in the left view lie
left of the occluding surface, on the background). This is the background fill of classical
stereo post-processing (Hirschmüller's semi-global matching finds occlusions with a left-right
check and fills them from the background), here from the left disparity alone, so it costs a
few passes over the map instead of a second match.
"""

import cv2
import numpy as np

#: A pixel is matchable when its match lies at least this far inside the right view (px).
OUT_OF_VIEW_MARGIN_PX = 2.0
#: A pixel is occluded when a pixel to its right lands more than this far left of its match (px).
OCCLUSION_MARGIN_PX = 1.0


def _window_px(disparity: np.ndarray) -> int:
    """Columns an occluding pixel, an occluded run or the out-of-view band can span: the
    largest disparity, plus one."""
    return int(np.ceil(max(float(disparity.max()), 0.0))) + 1


def fill_out_of_view(disparity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Give the out-of-view band the disparity of each row's first matchable pixel.

    disparity : (H, W) float32 px, every pixel valid. A pixel is matchable when
    ``x - d > OUT_OF_VIEW_MARGIN_PX``; the pixels left of a row's first matchable one take its
    value (a row without one is left as it is). Only the first ``max(d) + margin`` columns can
    hold the band, so only they are searched. Returns the filled (H, W) float32 map (a new
    array) and the (H, W) bool mask of the replaced pixels.
    """
    height, width = disparity.shape
    span = min(width, _window_px(disparity) + int(np.ceil(OUT_OF_VIEW_MARGIN_PX)) + 1)
    columns = np.arange(span, dtype=np.float32)
    matchable = columns - disparity[:, :span] > OUT_OF_VIEW_MARGIN_PX
    first = np.where(matchable.any(axis=1), matchable.argmax(axis=1), 0)
    band = columns[None, :] < first[:, None]
    filled = np.array(disparity, dtype=np.float32)
    np.copyto(filled[:, :span], np.broadcast_to(disparity[np.arange(height), first][:, None], band.shape), where=band)
    mask = np.zeros((height, width), bool)
    mask[:, :span] = band
    return filled, mask


def fill_occluded(disparity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Give occluded pixels the disparity of the nearest visible pixel to their left.

    disparity : (H, W) float32 px, every pixel valid. A pixel is occluded when one to its right
    lands more than ``OCCLUSION_MARGIN_PX`` further left in the right view
    (``x' - d(x') < x - d(x) - margin``); only pixels at most ``max(d)`` columns away can, so the
    search is a running minimum over that window and the nearest visible pixel a running maximum
    of column indices (morphological erosion and dilation: fast). An occluded pixel with no
    visible one within that window keeps its value. Returns the filled (H, W) float32 map and
    the (H, W) bool mask of the occluded pixels.
    """
    disparity = np.ascontiguousarray(disparity, dtype=np.float32)
    height, width = disparity.shape
    window = np.ones((1, _window_px(disparity) + 1), np.uint8)
    columns = np.arange(width, dtype=np.float32)
    right_column = columns - disparity
    occluded = right_column > cv2.erode(right_column, window, anchor=(0, 0)) + OCCLUSION_MARGIN_PX
    visible_column = np.where(occluded, np.float32(-1.0), columns)
    nearest_visible = cv2.dilate(visible_column, window, anchor=(window.shape[1] - 1, 0))
    source = np.where(occluded & (nearest_visible >= 0), nearest_visible, columns)
    rows = np.repeat(np.arange(height, dtype=np.float32)[:, None], width, axis=1)
    return cv2.remap(disparity, source, rows, cv2.INTER_NEAREST), occluded


def fill_unmatched(disparity: np.ndarray, *, out_of_view: bool = True, occluded: bool = True) -> np.ndarray:
    """:func:`fill_out_of_view`, then :func:`fill_occluded`, each where asked: (H, W) float32 px."""
    if out_of_view:
        disparity = fill_out_of_view(disparity)[0]
    if occluded:
        disparity = fill_occluded(disparity)[0]
    return disparity
