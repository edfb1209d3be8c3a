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

from sensing.errors import InputError
from sensing.fileio import read_image, read_pfm
from sensing.preprocess import to_uint8_bgr

#: Environment variable that overrides :func:`default_data_root`.
DATA_ROOT_ENV = "GLASSDEPTH_DATA"

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
