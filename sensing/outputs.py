"""Writing a pipeline result to its output folder, all or nothing.

Every file is first written into a temporary folder beside the output folder; only when all
of them exist are they moved into place (``report.json`` last), so a failure never leaves a
half-written result behind.
"""

import os
import subprocess
from pathlib import Path

import cv2
import numpy as np

from calibration.io import calibration_to_dict
from sensing.depth import depth_to_millimetres
from sensing.fileio import staged_folder, write_image_atomic, write_json_atomic
from sensing.pipeline import PipelineResult
from sensing.types import DisparityMap

OUTPUT_FILES = (
    "disparity.pfm",
    "depth.png",
    "confidence.png",
    "rectified_left.png",
    "rectified_right.png",
    "disparity_preview.png",
    "calibration_corrected.json",
    "report.json",
)


def disparity_preview(disparity: DisparityMap, *, max_disparity_px: float | None = None) -> np.ndarray:
    """(H, W, 3) uint8 BGR turbo colour map of the disparity (near = red), black where unknown."""
    values = np.where(disparity.valid, disparity.values_px, 0.0)
    top = max_disparity_px or (float(values[disparity.valid].max()) if disparity.valid.any() else 1.0)
    scaled = np.clip(values / max(top, 1e-6) * 255.0, 0, 255).astype(np.uint8)
    preview = cv2.applyColorMap(scaled, cv2.COLORMAP_TURBO)
    preview[~disparity.valid] = 0
    return preview


def git_revision() -> str | None:
    """The source tree's commit (with ``-dirty`` if modified), or None outside a git checkout."""
    root = Path(__file__).resolve().parent.parent
    try:
        described = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True, text=True, timeout=5, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return described.stdout.strip() or None


def write_outputs(result: PipelineResult, out_dir: str | os.PathLike) -> Path:
    """Write the files of :data:`OUTPUT_FILES` for a successful run into ``out_dir``.

    disparity.pfm : float32 px, rectified left view at processing resolution, ``inf`` = unknown
    depth.png : uint16 millimetres, 0 = unknown
    confidence.png : uint8, confidence · 255
    rectified_left.png, rectified_right.png : the rectified views (8-bit BGR)
    disparity_preview.png : colour-mapped disparity
    calibration_corrected.json : the calibration with the online drift correction applied
        (only when the correction was reliable)
    report.json : input summary, config, stages, depth source, reasons, timings
    """
    if not result.ok or result.disparity is None:
        raise ValueError("only a completed pipeline run has outputs to write")
    with staged_folder(out_dir, stale=("calibration_corrected.json",), last="report.json") as staging:
        write_image_atomic(staging / "disparity.pfm", result.disparity.values_px)
        write_image_atomic(staging / "depth.png", depth_to_millimetres(result.depth))
        write_image_atomic(staging / "confidence.png", np.rint(result.confidence.values * 255).astype(np.uint8))
        write_image_atomic(staging / "rectified_left.png", result.rectified.left)
        write_image_atomic(staging / "rectified_right.png", result.rectified.right)
        write_image_atomic(
            staging / "disparity_preview.png",
            disparity_preview(result.disparity, max_disparity_px=result.details.get("stereo", {}).get("max_disparity_px")),
        )
        if result.calibration_corrected is not None:
            write_json_atomic(staging / "calibration_corrected.json", calibration_to_dict(result.calibration_corrected))
        write_json_atomic(staging / "report.json", {**result.report(), "git_revision": git_revision()})
    return Path(out_dir)
