"""Is this a plausible left/right pair? Checks that stop the pipeline with a clear reason.

A black, saturated or featureless view, two identical views, or views that are swapped
cannot give stereo depth; matching them anyway produces confident nonsense.
"""

import cv2
import numpy as np

from sensing.errors import StageError

#: A view whose 99th-percentile grey level is below this is black (lens cap, dark frame).
BLACK_GREY_LEVEL = 10
#: A view whose 1st-percentile grey level is above this is saturated (flare, overexposure).
SATURATED_GREY_LEVEL = 245
#: Views whose mean absolute difference is below this many grey levels are the same image.
IDENTICAL_GREY_LEVELS = 0.5
#: Fewest feature matches needed to judge which way the disparities point.
MIN_SIGN_MATCHES = 20
#: Fraction of matches with negative disparity above which the views are taken as swapped.
SWAPPED_FRACTION = 0.6


def check_exposure(left: np.ndarray, right: np.ndarray) -> None:
    """Raise :class:`StageError` if either (H, W, 3) uint8 view is black or saturated."""
    for name, image in (("left", left), ("right", right)):
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        low, high = np.percentile(grey, [1, 99])
        if high < BLACK_GREY_LEVEL:
            raise StageError(f"the {name} view is black (99% of pixels below grey level {BLACK_GREY_LEVEL})")
        if low > SATURATED_GREY_LEVEL:
            raise StageError(f"the {name} view is saturated (99% of pixels above grey level {SATURATED_GREY_LEVEL})")


def check_distinct(left: np.ndarray, right: np.ndarray) -> None:
    """Raise :class:`StageError` if the two views are the same image (a copied frame).

    Views of different sizes (a rig with two sensor resolutions) cannot be one frame.
    """
    if left.shape != right.shape:
        return
    difference = float(cv2.absdiff(left, right).mean())
    if difference < IDENTICAL_GREY_LEVELS:
        raise StageError(
            f"the left and right views are identical (mean difference {difference:.2f} grey levels): "
            "the capture holds one camera's frame twice"
        )


def disparity_sign_matches(left: np.ndarray, right: np.ndarray, *, max_row_offset_px: float = 2.0) -> np.ndarray:
    """Horizontal offsets ``x_left - x_right`` (px) of mutual ORB matches on the same rows.

    left, right : rectified (H, W, 3) uint8 BGR. Returns (N,) float32, possibly empty.
    """
    orb = cv2.ORB_create(nfeatures=500)
    keys_l, desc_l = orb.detectAndCompute(cv2.cvtColor(left, cv2.COLOR_BGR2GRAY), None)
    keys_r, desc_r = orb.detectAndCompute(cv2.cvtColor(right, cv2.COLOR_BGR2GRAY), None)
    if desc_l is None or desc_r is None:
        return np.zeros(0, np.float32)
    matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(desc_l, desc_r)
    if not matches:
        return np.zeros(0, np.float32)
    points_l = np.float32([keys_l[m.queryIdx].pt for m in matches])
    points_r = np.float32([keys_r[m.trainIdx].pt for m in matches])
    same_row = np.abs(points_l[:, 1] - points_r[:, 1]) <= max_row_offset_px
    return (points_l[same_row, 0] - points_r[same_row, 0]).astype(np.float32)


def check_not_swapped(left: np.ndarray, right: np.ndarray) -> None:
    """Raise :class:`StageError` if most row-aligned matches lie at negative disparity.

    In a rectified left/right pair every scene point has ``x_left >= x_right``; if most
    confident matches say the opposite, the two images were exchanged.
    """
    offsets = disparity_sign_matches(left, right)
    moving = offsets[np.abs(offsets) > 0.5]
    if moving.size >= MIN_SIGN_MATCHES and np.mean(moving < 0) > SWAPPED_FRACTION:
        raise StageError(
            f"the left and right views look swapped: {100 * np.mean(moving < 0):.0f}% of {moving.size} feature "
            f"matches have negative disparity (median {np.median(moving):.1f} px)"
        )
