"""The shared data root's stereo layout: ``stereo/<dataset>/<scene>/`` with ground truth.

Each scene folder holds ``left.png``, ``right.png`` (rectified, 8-bit) and ``disp_left.pfm``
(float32 left-view disparity in pixels, ``inf`` = unknown); see the data root's README.
"""

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calibration.camera import CameraModel, StereoCalibration
from sensing.errors import InputError
from sensing.fileio import read_image, read_pfm
from sensing.preprocess import to_uint8_bgr
from sensing.types import StereoCapture

#: Environment variable that overrides :func:`default_data_root`.
DATA_ROOT_ENV = "GLASSDEPTH_DATA"

#: Focal length (in image widths) assumed for scenes published without calib.txt: a 64 degree
#: horizontal field of view, typical of glasses cameras.
ASSUMED_FOCAL_WIDTHS = 0.8
#: Baseline (metres) assumed for scenes published without calib.txt.
ASSUMED_BASELINE_M = 0.1

#: Middlebury's margin on the largest ground-truth disparity when it publishes ``ndisp``.
SEARCH_MARGIN = 1.1


def default_data_root() -> Path:
    """``$GLASSDEPTH_DATA`` if set, else ``../shared/data`` beside the repository root."""
    if DATA_ROOT_ENV in os.environ:
        return Path(os.environ[DATA_ROOT_ENV])
    return Path(__file__).resolve().parent.parent.parent / "shared" / "data"


@dataclass(frozen=True)
class StereoScene:
    """One rectified pair with ground truth at ``folder`` (= ``<root>/stereo/<dataset>/<name>``)."""

    dataset: str
    name: str
    folder: Path

    def left(self) -> np.ndarray:
        """Left view: (H, W, 3) uint8 BGR."""
        return _read_bgr(self.folder / "left.png")

    def right(self) -> np.ndarray:
        """Right view: (H, W, 3) uint8 BGR, row-aligned with the left view."""
        return _read_bgr(self.folder / "right.png")

    def disparity_gt(self) -> np.ndarray:
        """Ground-truth disparity of the left view: (H, W) float32 px, ``inf`` where unknown."""
        return read_pfm(self.folder / "disp_left.pfm")

    def right_disparity_gt(self) -> np.ndarray | None:
        """Ground-truth disparity of the right view, (H, W) float32 px (``x_left = x_right + d``),
        ``inf`` where unknown; None where the dataset does not publish it."""
        path = self.folder / "disp_right.pfm"
        return read_pfm(path) if path.is_file() else None

    def capture(self) -> StereoCapture:
        """The pair as a capture of the rig of :func:`scene_calibration`."""
        left = self.left()
        calib, origin = scene_calibration(self.folder, (left.shape[1], left.shape[0]))
        meta = {"calibration_from": origin}
        return StereoCapture(left, self.right(), calib, meta, source=f"{self.dataset}/{self.name}")


def scene_calibration(folder: str | os.PathLike, size_wh: tuple[int, int]) -> tuple[StereoCalibration, str]:
    """A pinhole rig that took a rectified scene: identical, undistorted, parallel cameras.

    The focal length and baseline come from the scene's ``calib.txt`` (Middlebury/ETH3D
    format: ``cam0=[f 0 cx; ...]``, ``baseline`` in mm) where present; otherwise the focal length
    is :data:`ASSUMED_FOCAL_WIDTHS` image widths and the baseline :data:`ASSUMED_BASELINE_M`.
    Both principal points sit at the image centre, so the published disparity is the rig's.
    Returns the calibration and where its numbers came from (``calib.txt`` or ``assumed``).
    """
    width, height = size_wh
    focal, baseline_m, origin = ASSUMED_FOCAL_WIDTHS * width, ASSUMED_BASELINE_M, "assumed"
    calib_txt = Path(folder) / "calib.txt"
    if calib_txt.is_file():
        entries = dict(line.split("=", 1) for line in calib_txt.read_text().splitlines() if "=" in line)
        try:
            focal = float(entries["cam0"].strip(" []").split()[0])
            baseline_m = float(entries["baseline"]) / 1000.0
        except (KeyError, ValueError, IndexError) as error:
            raise InputError(f"{calib_txt}: cannot read the focal length and baseline ({error})") from None
        origin = "calib.txt"
    camera = CameraModel("pinhole", width, height, focal, focal, (width - 1) / 2, (height - 1) / 2)
    return StereoCalibration(camera, camera, np.eye(3), np.array([-baseline_m, 0.0, 0.0])), origin


def list_stereo_scenes(root: str | os.PathLike, datasets: Sequence[str] | None = None) -> list[StereoScene]:
    """All scenes under ``root/stereo`` (or only those of ``datasets``), sorted by dataset and name.

    Raises :class:`InputError` if ``root`` or ``root/stereo`` is missing, or if a requested
    dataset does not exist (the message lists the available ones).
    """
    root = Path(root)
    stereo = root / "stereo"
    if not root.is_dir():
        raise InputError(f"data root not found: {root} (set {DATA_ROOT_ENV} or pass the folder)")
    if not stereo.is_dir():
        raise InputError(f"no stereo/ folder in the data root {root}")
    available = sorted(path.name for path in stereo.iterdir() if path.is_dir())
    unknown = sorted(set(datasets or ()) - set(available))
    if unknown:
        raise InputError(f"unknown stereo dataset(s) {unknown} in {stereo}; available: {available}")
    return [
        StereoScene(dataset, folder.name, folder)
        for dataset in sorted(datasets if datasets is not None else available)
        for folder in sorted((stereo / dataset).iterdir())
        if (folder / "disp_left.pfm").is_file()
    ]


def search_range_px(gt: np.ndarray) -> int:
    """Disparity search range for a scene, as Middlebury derives ``ndisp`` from its ground truth.

    Parameters
    ----------
    gt : (H, W) float32 ground-truth disparity in px, ``inf`` where unknown
    Returns
    -------
    int : ``ceil(1.1 * max finite disparity)`` px
    """
    finite = gt[np.isfinite(gt)]
    if finite.size == 0:
        raise InputError("ground truth has no finite disparity to derive a search range from")
    return math.ceil(SEARCH_MARGIN * float(finite.max()))


def _read_bgr(path: Path) -> np.ndarray:
    image = read_image(path)
    if image.dtype != np.uint8:
        raise InputError(f"{path}: stereo benchmark images must be 8-bit, got {image.dtype}")
    return to_uint8_bgr(image, white_level=255)
