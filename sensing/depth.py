"""Metric depth from rectified disparity."""

import numpy as np

from sensing.types import DepthMap, DisparityMap

#: Disparities below this (px) are too small to give a finite, meaningful depth.
MIN_DISPARITY_PX = 1e-3


def depth_from_disparity(disparity: DisparityMap, *, focal_px: float, baseline_m: float) -> DepthMap:
    """z = f · B / d for each valid pixel with d > 0.

    Parameters
    ----------
    disparity : left-view disparity in pixels at the resolution ``focal_px`` refers to
    focal_px : rectified focal length in pixels; baseline_m : optical-centre distance in metres
    Returns
    -------
    DepthMap : (H, W) float32 metres, ``inf`` and ``valid = False`` where unknown
    """
    valid = disparity.valid & (disparity.values_px > MIN_DISPARITY_PX)
    with np.errstate(divide="ignore"):
        depth = np.where(valid, focal_px * baseline_m / np.where(valid, disparity.values_px, 1.0), np.inf)
    return DepthMap(depth.astype(np.float32), valid)


def depth_to_millimetres(depth: DepthMap) -> np.ndarray:
    """(H, W) uint16 millimetres for ``depth.png``: 0 = unknown, far depths clipped to 65535."""
    millimetres = np.where(depth.valid, np.rint(depth.depth_m * 1000.0), 0)
    return np.clip(millimetres, 0, np.iinfo(np.uint16).max).astype(np.uint16)
