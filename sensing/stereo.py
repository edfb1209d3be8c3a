"""Stereo matchers behind one small interface, and a registry to build them by name.

A matcher turns a rectified pair into the left view's :class:`DisparityMap`. Building a
matcher is separate from running it (and, for learned matchers, from loading weights).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from sensing.checks import check_image
from sensing.errors import ConfigError, ShapeError
from sensing.types import DisparityMap

#: OpenCV's SGBM returns fixed-point disparities with 4 fractional bits.
SGBM_FIXED_POINT_SCALE = 16.0


class StereoMatcher(Protocol):
    """Rectified (H, W, 3) uint8 BGR pair -> left-view disparity in pixels."""

    name: str

    def match(self, left: np.ndarray, right: np.ndarray, *, max_disparity_px: int) -> DisparityMap: ...


MATCHERS: dict[str, Callable[..., StereoMatcher]] = {}


def register_matcher(name: str) -> Callable[[Callable[..., StereoMatcher]], Callable[..., StereoMatcher]]:
    """Class decorator adding a matcher factory to :data:`MATCHERS` under ``name``."""

    def register(factory: Callable[..., StereoMatcher]) -> Callable[..., StereoMatcher]:
        MATCHERS[name] = factory
        return factory

    return register


def build_matcher(name: str, **params: object) -> StereoMatcher:
    """Build the matcher registered as ``name`` with its keyword parameters."""
    if name not in MATCHERS:
        raise ConfigError(f"unknown stereo method {name!r}; available: {sorted(MATCHERS)}")
    try:
        return MATCHERS[name](**params)
    except TypeError as error:
        raise ConfigError(f"bad parameters for stereo method {name!r}: {error}") from None


def round_up_disparities(max_disparity_px: float) -> int:
    """Smallest multiple of 16 (OpenCV's requirement) covering ``max_disparity_px``, at least 16."""
    return int(max(16, 16 * int(np.ceil(max_disparity_px / 16.0))))


@register_matcher("sgbm")
@dataclass(frozen=True)
class SgbmMatcher:
    """OpenCV semi-global block matching (3-way by default).

    The smoothness penalties scale with the window area and channel count, as in OpenCV's
    samples: P1 = p1_per_pixel * channels * block_size², P2 likewise. The left image is
    padded by the disparity range so that its left border strip gets disparities too.
    """

    block_size: int = 5
    p1_per_pixel: int = 8
    p2_per_pixel: int = 32
    uniqueness_ratio: int = 10
    speckle_window: int = 100
    speckle_range: int = 2
    disp12_max_diff: int = 1
    mode: str = "3way"
    pad_left: bool = True
    name: str = "sgbm"

    _MODES = {"sgbm": cv2.STEREO_SGBM_MODE_SGBM, "hh": cv2.STEREO_SGBM_MODE_HH, "3way": cv2.STEREO_SGBM_MODE_SGBM_3WAY}

    def __post_init__(self) -> None:
        if self.mode not in self._MODES:
            raise ConfigError(f"sgbm mode must be one of {sorted(self._MODES)}, got {self.mode!r}")
        if self.block_size < 1 or self.block_size % 2 == 0:
            raise ConfigError(f"sgbm block_size must be a positive odd number, got {self.block_size}")

    def create(self, num_disparities: int, channels: int) -> cv2.StereoSGBM:
        """The configured ``cv2.StereoSGBM`` for ``num_disparities`` (a multiple of 16)."""
        area = channels * self.block_size**2
        return cv2.StereoSGBM.create(
            minDisparity=0,
            numDisparities=num_disparities,
            blockSize=self.block_size,
            P1=self.p1_per_pixel * area,
            P2=self.p2_per_pixel * area,
            disp12MaxDiff=self.disp12_max_diff,
            uniquenessRatio=self.uniqueness_ratio,
            speckleWindowSize=self.speckle_window,
            speckleRange=self.speckle_range,
            mode=self._MODES[self.mode],
        )

    def match(self, left: np.ndarray, right: np.ndarray, *, max_disparity_px: int) -> DisparityMap:
        """Disparity of ``left``: (H, W) float32 px, invalid where SGBM found no unique match."""
        _check_pair(left, right)
        num_disparities = round_up_disparities(max_disparity_px)
        channels = 1 if left.ndim == 2 else left.shape[2]
        pad = num_disparities if self.pad_left else 0
        if pad:
            left = cv2.copyMakeBorder(left, 0, 0, pad, 0, cv2.BORDER_REPLICATE)
            right = cv2.copyMakeBorder(right, 0, 0, pad, 0, cv2.BORDER_REPLICATE)
        raw = self.create(num_disparities, channels).compute(left, right)[:, pad:]
        valid = raw >= 0
        return DisparityMap(raw.astype(np.float32) / SGBM_FIXED_POINT_SCALE, valid)


def right_disparity(matcher: StereoMatcher, left: np.ndarray, right: np.ndarray, *, max_disparity_px: int) -> DisparityMap:
    """Disparity of the right view with any matcher, by matching the mirrored pair.

    Mirroring both images and swapping them turns the right view into a "left" view whose
    disparities are positive again: ``d_right(x) = d(flip(right), flip(left))(W - 1 - x)``.
    """
    mirrored = matcher.match(
        np.ascontiguousarray(right[:, ::-1]), np.ascontiguousarray(left[:, ::-1]), max_disparity_px=max_disparity_px
    )
    return DisparityMap(mirrored.values_px[:, ::-1], mirrored.valid[:, ::-1])


def _check_pair(left: np.ndarray, right: np.ndarray) -> None:
    check_image(left, name="left")
    check_image(right, name="right")
    if left.shape != right.shape or left.dtype != right.dtype:
        raise ShapeError(
            f"left and right must have the same shape and dtype, got {left.shape} {left.dtype} "
            f"and {right.shape} {right.dtype}"
        )
    if left.dtype != np.uint8:
        raise ShapeError(f"stereo matching needs uint8 images, got {left.dtype}")
