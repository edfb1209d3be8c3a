"""Writing a pipeline result to its output folder, all or nothing.

Every file is first written into a temporary folder beside the output folder; only when all
of them exist are they moved into place (``report.json`` last), so a failure never leaves a
half-written result behind. The 3D photo (:data:`PHOTO3D_FILES`) is written in the same staging
folder.
"""

import os
import subprocess
from pathlib import Path

import cv2
import numpy as np

from calibration.io import calibration_to_dict
from sensing.depth import depth_to_millimetres
from sensing.errors import InputError
from sensing.fileio import staged_folder, write_image_atomic, write_json_atomic
from sensing.novel_view.photo3d import PHOTO3D_FILES, write_photo3d
from sensing.pipeline import PipelineResult
from sensing.types import DisparityMap

#: Every file a run can write: :data:`PHOTO3D_FILES` only with a disparity and the 3D photo on,
#: ``calibration_corrected.json`` only after a reliable drift correction.
OUTPUT_FILES = (
    "disparity.pfm",
    "depth.png",
    "confidence.png",
    "rectified_left.png",
    "rectified_right.png",
    "disparity_preview.png",
    "calibration_corrected.json",
    *PHOTO3D_FILES,
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


def _preview_range(result: PipelineResult) -> float | None:
    """Disparity shown at full colour: 1 for a relative (mono) map, else the stereo search range."""
    if result.details.get("disparity_units") == "relative":
        return 1.0
    return result.details.get("stereo", {}).get("max_disparity_px")


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


def write_outputs(result: PipelineResult, out_dir: str | os.PathLike, *, photo3d: bool = True) -> Path:
    """Write the files of :data:`OUTPUT_FILES` for a successful run into ``out_dir``.

    disparity.pfm : float32 px (relative in [0, 1] when ``depth_source`` is ``mono``), rectified left
        view at processing resolution, ``inf`` = unknown
    depth.png : uint16 millimetres, 0 = unknown
    confidence.png : uint8, confidence · 255
    rectified_left.png, rectified_right.png : the rectified views (8-bit BGR)
    disparity_preview.png : colour-mapped disparity
    calibration_corrected.json : the calibration with the online drift correction applied
        (only when the correction was reliable)
    photo3d.glb, photo3d.mp4, viewer.html : the 3D photo of the rectified left view and the
        disparity (:func:`sensing.novel_view.photo3d.write_photo3d`, settings ``config.photo3d``);
        only when ``photo3d`` is True and the run has a disparity (``depth_source`` not ``none``)
    report.json : input summary, config, stages, depth source, reasons, timings, and ``photo3d``:
        the 3D photo's files, path and step timings, or ``{"written": false, "reason": ...}``
    """
    if not result.ok or result.disparity is None:
        raise ValueError("only a completed pipeline run has outputs to write")
    stale = ("calibration_corrected.json", *PHOTO3D_FILES)
    with staged_folder(out_dir, stale=stale, last="report.json") as staging:
        write_image_atomic(staging / "disparity.pfm", result.disparity.values_px)
        write_image_atomic(staging / "depth.png", depth_to_millimetres(result.depth))
        write_image_atomic(staging / "confidence.png", np.rint(result.confidence.values * 255).astype(np.uint8))
        write_image_atomic(staging / "rectified_left.png", result.rectified.left)
        write_image_atomic(staging / "rectified_right.png", result.rectified.right)
        write_image_atomic(
            staging / "disparity_preview.png",
            disparity_preview(result.disparity, max_disparity_px=_preview_range(result)),
        )
        if result.calibration_corrected is not None:
            write_json_atomic(staging / "calibration_corrected.json", calibration_to_dict(result.calibration_corrected))
        photo3d_report = _write_photo3d(result, staging) if photo3d else {"written": False, "reason": "turned off (--no-3d)"}
        write_json_atomic(
            staging / "report.json", {**result.report(), "photo3d": photo3d_report, "git_revision": git_revision()}
        )
    return Path(out_dir)


def _write_photo3d(result: PipelineResult, folder: Path) -> dict:
    """The 3D photo of ``result`` into ``folder`` (see :func:`write_outputs`); its report section."""
    if result.depth_source == "none" or not result.disparity.valid.any():
        return {"written": False, "reason": f"no disparity (depth_source {result.depth_source})"}
    disparity = np.where(result.disparity.valid, result.disparity.values_px, np.inf).astype(np.float32)
    # Only a sparse stereo map's confidence goes to the layer cut. A dense map (fused or mono, or
    # stereo whose not-confident pixels kept the network's values) has no better estimate there
    # than its own (for the network's maps: the same novel views within 0.02 dB either way on the
    # Middlebury 2006 scenes, ad-hoc).
    sparse = result.depth_source == "stereo" and result.details.get("stereo", {}).get("unconfident_pixels") != "kept"
    confidence = result.confidence.values if sparse and result.confidence is not None else None
    settings = result.config.photo3d
    try:
        report = write_photo3d(
            result.rectified.left,
            disparity,
            folder,
            confidence=confidence,
            focal_px=result.rectified.focal_px,
            path=settings.path,
            frames=settings.frames,
            fps=settings.fps,
            radius_px=settings.radius_px,
        )
    except InputError as error:  # raised before any file is written: the depth outputs still go out
        return {"written": False, "reason": str(error)}
    return {"written": True, **report}
