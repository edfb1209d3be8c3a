"""Reading images and writing files atomically (temp file in the same folder, then rename).

PFM and PNG encoding go through OpenCV's imgcodecs; PFM rows are stored bottom-up and
little-endian, and ``inf`` survives the round trip.
"""

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from sensing.errors import InputError


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as OpenCV stores it.

    Returns
    -------
    (H, W) or (H, W, 3) uint8 or uint16, BGR channel order; an alpha channel is dropped.
    Raises :class:`InputError` if the file is missing or not a readable image.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"image not found: {path}")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise InputError(f"not a readable image: {path}")
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.dtype not in (np.uint8, np.uint16):
        raise InputError(f"{path}: unsupported pixel type {image.dtype} (need 8 or 16 bit)")
    return np.ascontiguousarray(image)


def read_pfm(path: str | os.PathLike) -> np.ndarray:
    """Read a single-channel PFM file: (H, W) float32, rows top-down."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"PFM file not found: {path}")
    values = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if values is None or values.dtype != np.float32:
        raise InputError(f"not a readable PFM file: {path}")
    if values.ndim == 3:
        values = values[:, :, 0]
    return values


def encode_image(image: np.ndarray, extension: str) -> bytes:
    """Encode an array to the bytes of an image file (``extension`` such as ``".png"``)."""
    ok, buffer = cv2.imencode(extension, image)
    if not ok:
        raise InputError(f"OpenCV could not encode a {image.dtype} {image.shape} array as {extension}")
    return buffer.tobytes()


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp_name, 0o666 & ~_umask())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_image_atomic(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Encode ``image`` by the extension of ``path`` (PNG, PFM, ...) and write it atomically."""
    path = Path(path)
    return write_bytes_atomic(path, encode_image(image, path.suffix))


def write_json_atomic(path: str | os.PathLike, payload: Any) -> Path:
    """Write ``payload`` as indented JSON atomically (NaN and inf become ``null``)."""
    text = json.dumps(_finite_or_none(payload), indent=2, sort_keys=False)
    return write_bytes_atomic(path, (text + "\n").encode())


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(item) for item in value]
    if isinstance(value, np.generic):
        return _finite_or_none(value.item())
    return value


@contextmanager
def staged_folder(folder: str | os.PathLike, *, stale: Sequence[str] = (), last: str | None = None) -> Iterator[Path]:
    """Fill a folder all or nothing: write the files into the yielded staging folder.

    The staging folder sits beside ``folder``; when the block ends without an error its files
    are moved into ``folder`` (created if missing; ``last``, if named, moved last), after
    deleting the files of ``folder`` that match a glob of ``stale`` and were not staged again.
    On an error nothing in ``folder`` changes. The staging folder is always removed.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        yield staging
        names = sorted(p.name for p in staging.iterdir())
        folder.mkdir(exist_ok=True)
        for pattern in stale:
            for old in folder.glob(pattern):
                if old.name not in names and old.is_file():
                    old.unlink()
        for name in sorted(names, key=lambda n: n == last):
            os.replace(staging / name, folder / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
