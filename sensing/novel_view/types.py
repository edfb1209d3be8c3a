"""Data that travels between the novel-view steps: layered depth, mesh, camera path.

Convention: images BGR uint8 (OpenCV order), pixel centres on integers, origin top-left, y down.
Disparity here is *relative* disparity of the reference (left) view: larger is nearer, in pixels of
the reference view's resolution when it came from stereo, any positive scale otherwise.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class ImageLayer:
    """One layer of a layered depth image, on the reference view's pixel grid.

    color : (H, W, 3) uint8 BGR
    disparity : (H, W) float32 relative disparity (larger = nearer), finite where ``alpha > 0``
    alpha : (H, W) float32 in [0, 1]: how much of each pixel this layer covers
    """

    color: np.ndarray
    disparity: np.ndarray
    alpha: np.ndarray

    @property
    def size_hw(self) -> tuple[int, int]:
        return (int(self.color.shape[0]), int(self.color.shape[1]))


@dataclass(frozen=True, eq=False)
class LayeredDepthImage:
    """The reference view cut into layers, nearest first.

    layers : layers[0] is the visible image (alpha 1 everywhere it has a depth); later layers hold
        the background extended (and filled) behind occluding edges, alpha 0 elsewhere
    edges : (H, W) bool, the depth discontinuities that were cut (on the near side)
    """

    layers: tuple[ImageLayer, ...]
    edges: np.ndarray

    @property
    def size_hw(self) -> tuple[int, int]:
        return self.layers[0].size_hw


@dataclass(frozen=True)
class CameraPose:
    """A virtual camera relative to the reference view, in units of the disparity's baseline.

    A reference pixel (x, y) of disparity d moves to
    ``x' = cx + zoom * ((x - cx) + tx * d) / (1 - tz * d / f)`` (likewise y with ``ty``, ``cy``),
    with (cx, cy) the image centre and f the focal length in px.

    tx, ty : image motion in px per px of disparity ("parallax pixels per unit disparity"); the camera
        moves by (-tx, -ty) baselines. The right camera of a rectified pair is ``tx = -1``.
    tz : forward motion of the camera in baselines (dolly; positive = towards the scene)
    zoom : focal length factor of the virtual camera (1 = the reference's)
    """

    tx: float = 0.0
    ty: float = 0.0
    tz: float = 0.0
    zoom: float = 1.0
