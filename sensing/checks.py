"""Input checks at public boundaries, raising typed errors instead of asserting."""

from collections.abc import Sequence

import numpy as np

from sensing.errors import ShapeError


def check_shape(array: np.ndarray, dims: Sequence[str | int], *, name: str = "array") -> None:
    """Raise :class:`ShapeError` unless ``array.shape`` matches ``dims``.

    Parameters
    ----------
    array : any ndarray
    dims : one entry per axis: an int (that exact size) or a string (any size; equal
        strings must have equal sizes, e.g. ``["H", "W", 3]``). ``"*"`` matches anything.
    name : how the array is called in the error message
    """
    if not isinstance(array, np.ndarray):
        raise ShapeError(f"{name} must be a numpy array, got {type(array).__name__}")
    if array.ndim != len(dims):
        raise ShapeError(f"{name} must have shape {list(dims)}, got {list(array.shape)}")
    bound: dict[str, int] = {}
    for size, dim in zip(array.shape, dims):
        if isinstance(dim, int):
            ok = size == dim
        elif dim == "*":
            ok = True
        else:
            ok = bound.setdefault(dim, size) == size
        if not ok:
            raise ShapeError(f"{name} must have shape {list(dims)}, got {list(array.shape)}")


def check_image(image: np.ndarray, *, name: str = "image") -> None:
    """Raise :class:`ShapeError` unless ``image`` is (H, W) or (H, W, 3) uint8/uint16/float32."""
    if not isinstance(image, np.ndarray) or image.ndim not in (2, 3):
        raise ShapeError(f"{name} must be an (H, W) or (H, W, 3) array")
    if image.ndim == 3 and image.shape[2] != 3:
        raise ShapeError(f"{name} must have 3 channels, got {image.shape[2]}")
    if image.dtype not in (np.uint8, np.uint16, np.float32):
        raise ShapeError(f"{name} must be uint8, uint16 or float32, got {image.dtype}")
    if min(image.shape[:2]) < 8:
        raise ShapeError(f"{name} is too small: {image.shape[1]}x{image.shape[0]} px")
