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


def check_not_swapped(disparities_px: np.ndarray) -> None:
    """Raise :class:`StageError` if most feature matches lie at negative disparity.

    disparities_px : (N,) horizontal offsets ``x_left - x_right`` of row-aligned matches in a
        rectified pair. Every scene point has ``x_left >= x_right``; if most matches say the
        opposite, the two images were exchanged.
    """
    offsets = np.asarray(disparities_px, dtype=np.float64)
    moving = offsets[np.abs(offsets) > 0.5]
    if moving.size >= MIN_SIGN_MATCHES and np.mean(moving < 0) > SWAPPED_FRACTION:
        raise StageError(
            f"the left and right views look swapped: {100 * np.mean(moving < 0):.0f}% of {moving.size} feature "
            f"matches have negative disparity (median {np.median(moving):.1f} px); if they are not, the cameras "
            "toe in far beyond their calibration"
        )
