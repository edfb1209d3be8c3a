"""Training crops from the real scenes the issue allows for training (Middlebury 2001/2003/2006).

Scenes are named ``dataset/scene`` (e.g. ``middlebury2006/Baby1``); the ground truth is the
published left disparity (``inf`` where unknown). Each crop is taken at a random scale, possibly
flipped upside down (rows stay aligned), so the network sees the same scenes at many disparity
ranges. Where the right view's disparity is published too, a crop may come from the *mirrored*
pair (both views flipped left-right and swapped: the right view becomes the reference), which
shows the scene from a second viewpoint with its occlusions on the other side. Photometric
differences are added later, the same way as for synthetic pairs.
"""

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from benchmarks.datasets import StereoScene, list_stereo_scenes
from models.data.synthetic import StereoSample


@dataclass(frozen=True, eq=False)
class LoadedScene:
    """One scene in memory: (H, W, 3) uint8 BGR views, (H, W) float32 disparity of the left view
    and, where published, of the right view (px, inf unknown)."""

    name: str
    left: np.ndarray
    right: np.ndarray
    disparity: np.ndarray
    right_disparity: np.ndarray | None = None

    def mirrored(self) -> "LoadedScene":
        """The pair flipped left-right with the views swapped: the right view becomes the left
        (reference) one, and its published disparity the ground truth. Needs ``right_disparity``."""
        if self.right_disparity is None:
            raise ValueError(f"{self.name}: no right-view disparity to mirror the pair with")
        flip = np.fliplr
        return LoadedScene(f"{self.name} (mirrored)", flip(self.right), flip(self.left), flip(self.right_disparity), flip(self.disparity))


def load_scenes(data_root: str | Path, names: list[str]) -> list[LoadedScene]:
    """Load ``dataset/scene`` names from ``data_root/stereo``; an unknown name is an error."""
    datasets = sorted({name.split("/", 1)[0] for name in names})
    found: dict[str, StereoScene] = {f"{s.dataset}/{s.name}": s for s in list_stereo_scenes(data_root, datasets)}
    missing = sorted(set(names) - set(found))
    if missing:
        raise FileNotFoundError(f"training scenes not found under {data_root}/stereo: {missing}")
    return [
        LoadedScene(name, found[name].left(), found[name].right(), found[name].disparity_gt(), found[name].right_disparity_gt())
        for name in names
    ]


def random_crop(
    rng: np.random.Generator,
    scene: LoadedScene,
    *,
    height: int,
    width: int,
    scale_range: tuple[float, float],
    max_disparity_px: float,
) -> StereoSample:
    """A (height, width) crop of ``scene`` resized by a random factor; disparities scale with it.

    Pixels with unknown ground truth or a disparity beyond ``max_disparity_px`` are invalid.
    """
    scene_h, scene_w = scene.disparity.shape
    low = max(scale_range[0], height / scene_h, width / scene_w)
    finite = scene.disparity[np.isfinite(scene.disparity)]
    high = min(scale_range[1], max_disparity_px / max(float(finite.max()), 1.0))
    scale = float(rng.uniform(low, max(low, high)))
    size = (max(width, round(scene_w * scale)), max(height, round(scene_h * scale)))
    left = cv2.resize(scene.left, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    right = cv2.resize(scene.right, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    disparity = cv2.resize(scene.disparity, size, interpolation=cv2.INTER_NEAREST) * (size[0] / scene_w)
    y = int(rng.integers(0, size[1] - height + 1))
    x = int(rng.integers(0, size[0] - width + 1))
    window = (slice(y, y + height), slice(x, x + width))
    left, right, disparity = left[window], right[window], disparity[window]
    if rng.random() < 0.5:
        left, right, disparity = left[::-1], right[::-1], disparity[::-1]
    valid = np.isfinite(disparity) & (disparity >= 0) & (disparity <= max_disparity_px)
    return StereoSample(
        np.ascontiguousarray(left),
        np.ascontiguousarray(right),
        np.where(valid, disparity, 0.0).astype(np.float32),
        np.ascontiguousarray(valid),
    )
