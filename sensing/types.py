"""Frozen dataclasses that travel between pipeline stages.

Convention: images are BGR (OpenCV order), pixel centres on integers, origin top-left.
Disparity is ``x_left - x_right`` in pixels of one particular resolution (kept with it).
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from calibration.camera import StereoCalibration


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class StereoCapture:
    """One raw capture from the glasses.

    left, right : (H, W) or (H, W, 3) uint8 or uint16 BGR, raw sensor pixels
    calibration : the factory calibration (validated, sizes match the images)
    meta : optional capture metadata (exposure, temperature, timestamp, ...)
    source : where the capture came from (folder, frame), for reports
    """

    left: np.ndarray
    right: np.ndarray
    calibration: StereoCalibration
    meta: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def summary(self) -> dict[str, Any]:
        """JSON-ready description of the input for ``report.json``."""
        return {
            "source": self.source,
            "size_wh": [int(self.left.shape[1]), int(self.left.shape[0])],
            "channels": 1 if self.left.ndim == 2 else int(self.left.shape[2]),
            "dtype": str(self.left.dtype),
            "camera_models": [self.calibration.left.model, self.calibration.right.model],
            "baseline_m": round(self.calibration.baseline_m, 6),
            "meta": self.meta,
        }


@dataclass(frozen=True, eq=False)
class PreparedPair:
    """Both raw views after preprocessing, before rectification.

    left, right : (H, W, 3) uint8 BGR at ``calibration``'s (possibly reduced) resolution
    calibration : the calibration rescaled to the images' size
    photometric : what the exposure normalisation did (method, gain, offset)
    """

    left: np.ndarray
    right: np.ndarray
    calibration: StereoCalibration
    photometric: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class RectifiedPair:
    """A row-aligned pair at the processing resolution.

    left, right : (H, W, 3) uint8 BGR; a scene point at disparity d in the left view at
        (x, y) appears in the right view at (x - d, y)
    focal_px : rectified focal length in pixels at this resolution
    baseline_m : distance between the optical centres in metres
    P1, P2 : (3, 4) float64 rectified projection matrices (OpenCV naming)
    """

    left: np.ndarray
    right: np.ndarray
    focal_px: float
    baseline_m: float
    P1: np.ndarray
    P2: np.ndarray

    def __post_init__(self) -> None:
        for key in ("left", "right", "P1", "P2"):
            object.__setattr__(self, key, _frozen(getattr(self, key)))

    @property
    def size_hw(self) -> tuple[int, int]:
        return (int(self.left.shape[0]), int(self.left.shape[1]))


@dataclass(frozen=True, eq=False)
class DisparityMap:
    """Disparity of the left view.

    values_px : (H, W) float32 pixels at resolution ``size_hw``; ``inf`` where not valid
    valid : (H, W) bool, True where a disparity was found
    """

    values_px: np.ndarray
    valid: np.ndarray

    def __post_init__(self) -> None:
        values = np.where(self.valid, self.values_px, np.float32(np.inf)).astype(np.float32, copy=False)
        object.__setattr__(self, "values_px", _frozen(values))
        object.__setattr__(self, "valid", _frozen(self.valid.astype(bool)))

    @property
    def size_hw(self) -> tuple[int, int]:
        return (int(self.values_px.shape[0]), int(self.values_px.shape[1]))

    def masked(self, keep: np.ndarray) -> "DisparityMap":
        """The same map with pixels outside ``keep`` ((H, W) bool) marked unknown."""
        return DisparityMap(self.values_px, self.valid & keep)


@dataclass(frozen=True, eq=False)
class ConfidenceMap:
    """Per-pixel trust in a disparity map.

    values : (H, W) float32 in [0, 1]; 0 where the matcher found nothing
    cues : named (H, W) float32 maps in [0, 1] that ``values`` combines
    """

    values: np.ndarray
    cues: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", _frozen(self.values.astype(np.float32)))


@dataclass(frozen=True, eq=False)
class DepthMap:
    """Metric z-depth of the rectified left view.

    depth_m : (H, W) float32 metres along the optical axis; ``inf`` where unknown
    valid : (H, W) bool
    """

    depth_m: np.ndarray
    valid: np.ndarray


@dataclass(frozen=True)
class StageRecord:
    """What one pipeline stage did: status ``ok``, ``failed`` or ``skipped``, time and memory."""

    name: str
    status: str
    ms: float
    peak_rss_mb: float
    budget_ms: float | None
    within_budget: bool | None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "ms": round(self.ms, 3),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "budget_ms": self.budget_ms,
            "within_budget": self.within_budget,
            "message": self.message,
        }
