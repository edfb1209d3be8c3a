"""Loading captures from disk.

Two layouts are recognised:

* a capture folder: ``left.<ext>``, ``right.<ext>`` (anything OpenCV reads, 8 or 16 bit,
  grey or colour), ``calibration.json`` (or an OpenCV ``calibration.yaml``/``.yml``/``.xml``)
  and an optional ``meta.json``;
* an EuRoC/ASL sequence (the folder holding ``mav0``, or ``mav0`` itself):
  ``cam0/data/<timestamp_ns>.png`` (left), ``cam1/data/...`` (right) and the Kalibr
  ``cam*/sensor.yaml`` calibration. One frame pair is picked by index or timestamp.
"""

import json
import os
from pathlib import Path

from calibration.camera import CameraModel
from calibration.io import load_calibration, save_calibration
from sensing.errors import InputError
from sensing.fileio import read_image, staged_folder, write_image_atomic, write_json_atomic
from sensing.types import StereoCapture

_CALIBRATION_NAMES = ("calibration.json", "calibration.yaml", "calibration.yml", "calibration.xml")


def load_capture(
    path: str | os.PathLike, *, frame: int | None = None, timestamp_ns: int | None = None
) -> StereoCapture:
    """Load and validate one capture (see the module docstring for the layouts).

    Parameters
    ----------
    path : capture folder or EuRoC sequence folder
    frame : index of the frame pair in an EuRoC sequence (default 0)
    timestamp_ns : or its timestamp in nanoseconds (the image file name)

    Raises :class:`InputError` or :class:`CalibrationError` saying exactly what is wrong.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"capture not found: {path}")
    if not path.is_dir():
        raise InputError(f"a capture is a folder (left/right images + calibration), got a file: {path}")
    asl_root = _asl_root(path)
    if asl_root is not None:
        return _load_asl(asl_root, frame=frame, timestamp_ns=timestamp_ns)
    if frame is not None or timestamp_ns is not None:
        raise InputError(f"{path} holds a single pair; --frame/--timestamp only apply to EuRoC sequences")
    return _load_folder(path)


def save_capture(capture: StereoCapture, folder: str | os.PathLike) -> Path:
    """Write ``capture`` as a capture folder (``left.png``, ``right.png`` at their bit depth,
    ``calibration.json``, ``meta.json``), all or nothing: the files are staged beside
    ``folder`` and moved in only when all exist."""
    # Views or calibrations under other names would make the folder ambiguous to load_capture.
    with staged_folder(folder, stale=("left.*", "right.*", "calibration.*")) as staging:
        write_image_atomic(staging / "left.png", capture.left)
        write_image_atomic(staging / "right.png", capture.right)
        save_calibration(capture.calibration, staging / "calibration.json")
        write_json_atomic(staging / "meta.json", capture.meta)
    return Path(folder)


def list_asl_timestamps(path: str | os.PathLike) -> list[int]:
    """Timestamps (ns) present for both cameras of an EuRoC sequence, sorted."""
    root = _asl_root(Path(path))
    if root is None:
        raise InputError(f"not an EuRoC/ASL sequence (no mav0/cam0/data and cam1/data): {path}")
    left = {int(p.stem) for p in (root / "cam0" / "data").glob("*.png") if p.stem.isdigit()}
    right = {int(p.stem) for p in (root / "cam1" / "data").glob("*.png") if p.stem.isdigit()}
    return sorted(left & right)


def _load_folder(folder: Path) -> StereoCapture:
    calibration_file = next((folder / n for n in _CALIBRATION_NAMES if (folder / n).is_file()), None)
    if calibration_file is None:
        raise InputError(f"{folder} has no calibration file (expected one of {', '.join(_CALIBRATION_NAMES)})")
    left = read_image(_find_view(folder, "left"))
    right = read_image(_find_view(folder, "right"))
    calibration = load_calibration(calibration_file)
    _check_sizes(left, right, calibration.left, calibration.right, folder)
    meta = {}
    meta_file = folder / "meta.json"
    if meta_file.is_file():
        try:
            meta = json.loads(meta_file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise InputError(f"{meta_file} is not valid JSON: {error}") from None
        if not isinstance(meta, dict):
            raise InputError(f"{meta_file} must hold a JSON object")
    return StereoCapture(left, right, calibration, meta, source=str(folder))


def _find_view(folder: Path, name: str) -> Path:
    candidates = sorted(p for p in folder.glob(f"{name}.*") if p.is_file())
    if not candidates:
        raise InputError(f"{folder} has no {name} image (expected {name}.<ext>, e.g. {name}.png)")
    if len(candidates) > 1:
        raise InputError(f"{folder} has several {name} images: {', '.join(p.name for p in candidates)}")
    return candidates[0]


def _asl_root(path: Path) -> Path | None:
    for root in (path / "mav0", path):
        if (root / "cam0" / "data").is_dir() and (root / "cam1" / "data").is_dir():
            return root
    return None


def _load_asl(root: Path, *, frame: int | None, timestamp_ns: int | None) -> StereoCapture:
    if frame is not None and timestamp_ns is not None:
        raise InputError("give a frame index or a timestamp, not both")
    stamps = list_asl_timestamps(root)
    if not stamps:
        raise InputError(f"{root}: no frame has images from both cam0 and cam1")
    if timestamp_ns is not None:
        if timestamp_ns not in stamps:
            raise InputError(
                f"{root}: no frame pair at timestamp {timestamp_ns}; available: {stamps[0]} .. {stamps[-1]} "
                f"({len(stamps)} pairs)"
            )
        index = stamps.index(timestamp_ns)
    else:
        index = 0 if frame is None else frame
        if not 0 <= index < len(stamps):
            raise InputError(f"{root}: frame {index} out of range; the sequence has {len(stamps)} pairs (0..{len(stamps) - 1})")
    stamp = stamps[index]
    left = read_image(root / "cam0" / "data" / f"{stamp}.png")
    right = read_image(root / "cam1" / "data" / f"{stamp}.png")
    calibration = load_calibration(root)
    _check_sizes(left, right, calibration.left, calibration.right, root)
    meta = {"timestamp_ns": stamp, "frame": index, "frames_in_sequence": len(stamps)}
    return StereoCapture(left, right, calibration, meta, source=f"{root} frame {index} ({stamp})")


def _check_sizes(left, right, left_camera: CameraModel, right_camera: CameraModel, where: Path) -> None:
    for name, image, camera in (("left", left, left_camera), ("right", right, right_camera)):
        height, width = image.shape[:2]
        if (width, height) != camera.size_wh:
            raise InputError(
                f"{where}: {name} image is {width}x{height} but its calibration is for "
                f"{camera.width}x{camera.height}"
            )
    if left.dtype != right.dtype:
        raise InputError(f"{where}: left image is {left.dtype} but right image is {right.dtype}")
