"""Synthetic layered depth images for the mesh and viewer tests: a square in front of a plane."""

from typing import NamedTuple

import numpy as np
from synthetic import smooth_texture

from sensing.novel_view.types import ImageLayer, LayeredDepthImage


class SquareScene(NamedTuple):
    ldi: LayeredDepthImage
    square: tuple[int, int, int, int]  # top, left, bottom, right (exclusive) in pixels
    near_disparity: float
    far_disparity: float


def square_ldi(
    height: int = 96,
    width: int = 128,
    *,
    far_disparity: float = 8.0,
    near_disparity: float = 32.0,
    slant_px: float = 0.0,
    margin_px: int = 6,
    seed: int = 0,
) -> SquareScene:
    """A textured plane at ``far_disparity`` (plus ``slant_px`` per image width along x) with a
    textured square at ``near_disparity`` covering the middle half of the view.

    layers[0] is the visible image; layers[1] the plane continued behind the square (and
    ``margin_px`` around it), alpha 0 elsewhere; edges mark the square's outermost pixels.
    """
    top, left, bottom, right = height // 4, width // 4, 3 * height // 4, 3 * width // 4
    x = np.arange(width, dtype=np.float32)[None, :]
    plane = np.broadcast_to(far_disparity + slant_px * x / width, (height, width)).astype(np.float32)
    background = smooth_texture(height, width, seed=seed, blur_sigma_px=2.0)
    foreground = 255 - smooth_texture(height, width, seed=seed + 1, blur_sigma_px=1.0)
    square = np.zeros((height, width), bool)
    square[top:bottom, left:right] = True

    color = np.where(square[..., None], foreground, background)
    disparity = np.where(square, np.float32(near_disparity), plane).astype(np.float32)
    visible = ImageLayer(color=color, disparity=disparity, alpha=np.ones((height, width), np.float32))
    behind = np.zeros((height, width), np.float32)
    behind[top - margin_px : bottom + margin_px, left - margin_px : right + margin_px] = 1.0
    hidden = ImageLayer(color=background.copy(), disparity=plane.copy(), alpha=behind)
    edges = square.copy()
    edges[top + 1 : bottom - 1, left + 1 : right - 1] = False
    ldi = LayeredDepthImage(layers=(visible, hidden), edges=edges)
    return SquareScene(ldi, (top, left, bottom, right), near_disparity, far_disparity)
