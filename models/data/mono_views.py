"""Real single views with disparity for training the monocular network.

Each allowed stereo scene (``dataset/scene`` under ``<root>/stereo``) gives two views: the left
image with its published left disparity, and the right image with the right disparity where the
dataset publishes one (``disp_right.pfm``). Where the left ground truth is unknown (occlusions,
holes), a pseudo-label from our stereo network fills it if the network is confident there.
Views are cropped at random scales, flipped left-right at random (a mirrored view is as
plausible a photograph; a disparity map stays a disparity map) and photometrically jittered.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from benchmarks.datasets import list_stereo_scenes
from models.data.mono_scenes import MonoSample
from models.data.synthetic import _camera_response
from sensing.fileio import read_pfm

#: Pseudo-labels are used where the stereo network's confidence is at least this.
PSEUDO_LABEL_CONFIDENCE = 0.6

#: ``(left, right, max_disparity_px) -> (disparity px, confidence)`` of the left view.
PseudoLabeller = Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True, eq=False)
class MonoView:
    """One real view: (H, W, 3) uint8 BGR image and (H, W) float32 disparity px (inf unknown)."""

    name: str
    image: np.ndarray
    disparity: np.ndarray


def load_mono_views(data_root: str | Path, names: list[str], *, pseudo_labeller: PseudoLabeller | None = None) -> list[MonoView]:
    """The left (and, where published, right) views of the ``dataset/scene`` names.

    An unknown name is an error. With ``pseudo_labeller``, unknown left ground truth is filled
    where the labeller is confident (:data:`PSEUDO_LABEL_CONFIDENCE`).
    """
    if not names:
        return []
    datasets = sorted({name.split("/", 1)[0] for name in names})
    found = {f"{s.dataset}/{s.name}": s for s in list_stereo_scenes(data_root, datasets)}
    missing = sorted(set(names) - set(found))
    if missing:
        raise FileNotFoundError(f"training scenes not found under {data_root}/stereo: {missing}")
    views = []
    for name in names:
        scene = found[name]
        left, right, disparity = scene.left(), scene.right(), scene.disparity_gt()
        if pseudo_labeller is not None:
            finite = disparity[np.isfinite(disparity)]
            labels, confidence = pseudo_labeller(left, right, int(np.ceil(finite.max() * 1.1)))
            fill = ~np.isfinite(disparity) & (confidence >= PSEUDO_LABEL_CONFIDENCE) & np.isfinite(labels) & (labels > 0)
            disparity = np.where(fill, labels, disparity).astype(np.float32)
        views.append(MonoView(f"{name}/left", left, disparity))
        right_truth = scene.folder / "disp_right.pfm"
        if right_truth.is_file():
            views.append(MonoView(f"{name}/right", right, read_pfm(right_truth)))
    return views


def random_view_crop(rng: np.random.Generator, view: MonoView, *, height: int, width: int) -> MonoSample:
    """A (height, width) crop covering 60-100% of the view's shorter extent, flipped left-right
    at random, with a random camera response. The disparity is the target (any scale works for
    a scale-and-shift-invariant loss), valid where finite and positive."""
    view_h, view_w = view.disparity.shape
    cover = float(rng.uniform(0.6, 1.0))
    scale = max(height / (view_h * cover), width / (view_w * cover), height / view_h, width / view_w)
    size = (max(width, round(view_w * scale)), max(height, round(view_h * scale)))
    image = cv2.resize(view.image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    disparity = cv2.resize(view.disparity, size, interpolation=cv2.INTER_NEAREST)
    y = int(rng.integers(0, size[1] - height + 1))
    x = int(rng.integers(0, size[0] - width + 1))
    image, disparity = image[y : y + height, x : x + width], disparity[y : y + height, x : x + width]
    if rng.random() < 0.5:
        image, disparity = image[:, ::-1], disparity[:, ::-1]
    valid = np.isfinite(disparity) & (disparity > 0)
    image = _camera_response(rng, np.ascontiguousarray(image), specular=False)
    return MonoSample(image, np.where(valid, disparity, 0.0).astype(np.float32), np.ascontiguousarray(valid))
