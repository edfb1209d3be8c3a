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
    """(H, W) uint16 millimetres for ``depth.png``: 0 = unknown; known depths clipped to [1, 65535]."""
    millimetres = np.clip(np.rint(np.where(depth.valid, depth.depth_m, 0.0) * 1000.0), 1, np.iinfo(np.uint16).max)
    return np.where(depth.valid, millimetres, 0).astype(np.uint16)
