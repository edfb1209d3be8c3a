"""Monocular relative depth: the project's mono network (models/mono_net.py) on ONNX Runtime.

The image is resized so its long side is the one the network was trained for (ONNX metadata
``glassdepth.long_side_px``), padded to the network's stride, and the output is resized back:
relative disparity (inverse depth up to an unknown scale and shift) in [0, 1], 1 = nearest.
Never imports torch.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from sensing.checks import check_image
from sensing.errors import ShapeError
from sensing.stereo import as_bgr, check_finite_outputs, network_input, onnx_properties, onnx_session, pad_to_stride

DEFAULT_MONO_WEIGHTS = Path(__file__).resolve().parent.parent / "models" / "weights" / "mono_glass_v1.onnx"


@dataclass(frozen=True)
class MonoEstimator:
    """Relative disparity of one image with the mono network (CPU, ``threads`` intra-op threads)."""

    weights: str = str(DEFAULT_MONO_WEIGHTS)
    threads: int = 2

    def __post_init__(self) -> None:
        self.properties  # noqa: B018 - load now: a bad weights file is a configuration error

    @property
    def properties(self) -> dict[str, Any]:
        """The ``glassdepth.*`` metadata of the ONNX file: stride, long_side_px, info.

        Raises :class:`ConfigError` when the file is missing, not a loadable ONNX model or lacks them.
        """
        return onnx_properties(self.weights, self.threads, "mono", {"stride": int, "long_side_px": int})

    def network_input(self, image: np.ndarray) -> np.ndarray:
        """The network's input for ``image``: see :func:`mono_network_input`."""
        properties = self.properties
        return mono_network_input(image, long_side_px=properties["long_side_px"], stride=properties["stride"])

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Relative disparity of ``image``.

        image : (H, W) grey or (H, W, 3) BGR uint8
        Returns (H, W) float32 in [0, 1]: larger is nearer; scale and shift are unknown
        (align them to stereo disparity with :func:`sensing.fusion.align_mono_to_stereo`).
        """
        feed = {"image": self.network_input(image)}
        (output,) = onnx_session(self.weights, self.threads, feed["image"].shape[2:]).run(["disparity"], feed)
        check_finite_outputs(self.weights, "mono", {"disparity": output})
        return normalised_output(output, image.shape[:2], self.properties["long_side_px"])


def mono_network_input(image: np.ndarray, *, long_side_px: int, stride: int) -> np.ndarray:
    """The mono network's input for ``image`` ((H, W[, 3]) uint8): resized so its long side is
    ``long_side_px``, padded to multiples of ``stride``: (1, 3, H', W') float32 BGR in [0, 255].
    The valid part is the top-left ``_resized_hw(image.shape, long_side_px)``."""
    check_image(image, name="image")
    if image.dtype != np.uint8:
        raise ShapeError(f"mono depth needs a uint8 image, got {image.dtype}")
    small_h, small_w = _resized_hw(image.shape[:2], long_side_px)
    upscale = small_w > image.shape[1]
    small = cv2.resize(as_bgr(image), (small_w, small_h), interpolation=cv2.INTER_LINEAR if upscale else cv2.INTER_AREA)
    padded, _ = pad_to_stride(small, stride)
    return network_input(padded)


def normalised_output(output: np.ndarray, size_hw: tuple[int, ...], long_side_px: int) -> np.ndarray:
    """The network's (1, 1, H', W') output for an image of ``size_hw``: the valid part, min-max
    normalised to [0, 1] and resized to the image: (H, W) float32."""
    small_h, small_w = _resized_hw(size_hw, long_side_px)
    disparity = output[0, 0, :small_h, :small_w]
    low, high = float(disparity.min()), float(disparity.max())
    disparity = (disparity - low) / max(high - low, 1e-6)
    return cv2.resize(disparity, (size_hw[1], size_hw[0]), interpolation=cv2.INTER_LINEAR).astype(np.float32)


def _resized_hw(size_hw: tuple[int, ...], long_side_px: int) -> tuple[int, int]:
    """(H, W) scaled so the long side is ``long_side_px``."""
    height, width = size_hw[:2]
    scale = long_side_px / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))
