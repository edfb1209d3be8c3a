"""Per-pixel confidence of a disparity map from cues, each in [0, 1].

For a classical matcher (SGBM), three cues:

* left-right consistency: the right view's disparity at the matched pixel agrees;
* uniqueness: the matching cost at the chosen disparity is clearly lower than at any rival
  disparity at least 2 px away (a 5x5 SAD cost, streamed over the disparities);
* texture: enough local intensity gradient for a match to mean anything.

The confidence is ``left_right · texture · (1 - w · (1 - uniqueness))`` with the weight
``w`` in [0, 1] (raw SAD uniqueness is a weaker cue than the other two for a semi-global
matcher, whose smoothing rightly resolves many locally ambiguous pixels), and 0 where the
matcher found nothing.

For the stereo network, which predicts its own confidence (the probability that its error is
below 2 px), :func:`network_confidence` multiplies that with the left-right cue.
"""

import cv2
import numpy as np

from sensing.types import ConfidenceMap, DisparityMap

#: Window of the SAD cost and of the texture average, in pixels.
_COST_WINDOW_PX = 5
#: The uniqueness cost volume is evaluated on every second row (window 5x5 in those rows).
_ROW_STEP = 2


def left_right_consistency(left: DisparityMap, right: DisparityMap, *, tolerance_px: float) -> np.ndarray:
    """(H, W) float32: 1 - |d_L(x) - d_R(x - d_L(x))| / tolerance, clipped to [0, 1]; 0 without a match."""
    height, width = left.size_hw
    xs = np.arange(width, dtype=np.float32)[None, :] - np.where(left.valid, left.values_px, 0)
    target = np.rint(xs).astype(np.int64)
    inside = left.valid & (target >= 0) & (target < width)
    rows = np.broadcast_to(np.arange(height)[:, None], (height, width))
    target = np.clip(target, 0, width - 1)
    right_values = right.values_px[rows, target]
    agree = inside & right.valid[rows, target]
    error = np.full((height, width), np.inf, np.float32)
    error[agree] = np.abs(left.values_px[agree] - right_values[agree])
    return np.clip(1.0 - error / tolerance_px, 0.0, 1.0).astype(np.float32)


def uniqueness(left_image: np.ndarray, right_image: np.ndarray, disparity: DisparityMap, *, max_disparity_px: int, margin: float) -> np.ndarray:
    """(H, W) float32: how much better the chosen disparity matches than its best rival.

    ``(cost_rival - cost_chosen) / cost_rival`` divided by ``margin`` and clipped to
    [0, 1], where costs are 5x5 SAD of grey levels on every second row (the cue is
    repeated to the row below) and the rival is the cheapest integer disparity at least 2 px
    away from the chosen one (rounded).
    """
    # Every second row: disparity lives along rows, and the cue is smooth across them.
    grey_l = cv2.cvtColor(left_image, cv2.COLOR_BGR2GRAY)[::_ROW_STEP]
    grey_r = cv2.cvtColor(right_image, cv2.COLOR_BGR2GRAY)[::_ROW_STEP]
    height, width = grey_l.shape
    levels = min(width - 1, max(3, int(max_disparity_px) + 1))
    chosen = np.rint(np.where(disparity.valid, disparity.values_px, 0)[::_ROW_STEP]).astype(np.int32)
    best = np.zeros((height, width), np.uint16)
    rival = np.full((height, width), np.iinfo(np.uint16).max, np.uint16)
    window = (_COST_WINDOW_PX, _COST_WINDOW_PX)
    for d in range(levels):
        # Window sums of |left(x) - right(x - d)| for x >= d (uint16: at most 25 * 255).
        cost = cv2.boxFilter(cv2.absdiff(grey_l[:, d:], grey_r[:, : width - d]), cv2.CV_16U, window, normalize=False)
        distance = np.abs(chosen[:, d:] - d)
        np.copyto(best[:, d:], cost, where=distance == 0)
        np.minimum(rival[:, d:], cost, out=rival[:, d:], where=distance >= 2)
    best = best.astype(np.float32)
    rival = rival.astype(np.float32)
    ratio = (rival - best) / np.maximum(rival, 1.0)
    cue = np.clip(ratio / margin, 0.0, 1.0).astype(np.float32)
    return np.repeat(cue, _ROW_STEP, axis=0)[: disparity.size_hw[0]]


def texture(image: np.ndarray, *, grey_levels: float) -> np.ndarray:
    """(H, W) float32: mean gradient magnitude (grey levels / px) over a 5x5 window / ``grey_levels``, clipped to 1."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3, scale=1 / 8)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3, scale=1 / 8)
    magnitude = cv2.blur(cv2.magnitude(gx, gy), (_COST_WINDOW_PX, _COST_WINDOW_PX))
    return np.clip(magnitude / grey_levels, 0.0, 1.0)


def stereo_confidence(
    left_image: np.ndarray,
    right_image: np.ndarray,
    left: DisparityMap,
    right: DisparityMap,
    *,
    max_disparity_px: int,
    lr_tolerance_px: float,
    uniqueness_margin: float,
    uniqueness_weight: float,
    texture_grey_levels: float,
) -> ConfidenceMap:
    """Confidence of ``left`` (the left view's disparity) given the right view's disparity.

    Parameters
    ----------
    left_image, right_image : rectified (H, W, 3) uint8 BGR
    left, right : disparity maps of the left and right views, (H, W) px
    Returns
    -------
    ConfidenceMap : the cues combined as in the module docstring, each kept in ``cues``
    """
    cues = {
        "left_right": left_right_consistency(left, right, tolerance_px=lr_tolerance_px),
        "uniqueness": uniqueness(
            left_image, right_image, left, max_disparity_px=max_disparity_px, margin=uniqueness_margin
        ),
        "texture": texture(left_image, grey_levels=texture_grey_levels),
    }
    weighted_uniqueness = 1.0 - uniqueness_weight * (1.0 - cues["uniqueness"])
    values = cues["left_right"] * cues["texture"] * weighted_uniqueness * left.valid
    return ConfidenceMap(values, cues)


def network_confidence(
    network: np.ndarray, left: DisparityMap, right: DisparityMap, *, lr_tolerance_px: float
) -> ConfidenceMap:
    """Confidence of a network's disparity: its own confidence times left-right consistency.

    network : (H, W) float32 in [0, 1], the network's confidence for ``left``
    left, right : disparity maps of the left and right views, (H, W) px
    """
    cues = {"network": network.astype(np.float32), "left_right": left_right_consistency(left, right, tolerance_px=lr_tolerance_px)}
    return ConfidenceMap(cues["network"] * cues["left_right"] * left.valid, cues)
