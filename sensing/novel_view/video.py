"""Write rendered frames as an MP4 (OpenCV's FFmpeg backend, MPEG-4 Part 2 'mp4v') or a looping GIF
(Pillow), atomically: to a temporary file beside the target, renamed over it when complete.

'mp4v' is the codec every opencv-python wheel can encode (the wheels carry no H.264 encoder);
desktop players and ffmpeg play it, browsers' ``<video>`` may not — use the GIF there.
"""

import io
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from sensing.errors import StageError
from sensing.fileio import write_bytes_atomic

#: FourCC of the MP4 stream.
MP4_FOURCC = "mp4v"


def write_mp4(path: str | os.PathLike, frames: Sequence[np.ndarray], *, fps: float = 24.0) -> Path:
    """Encode ``frames`` ((H, W, 3) uint8 BGR, all one size) as an MP4 at ``path``.

    The file is read back with ``cv2.VideoCapture`` before it replaces ``path``; raises
    :class:`StageError` if it cannot be encoded or does not decode to as many frames.
    """
    frames = _check_frames(frames)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames[0].shape[:2]
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".mp4", dir=path.parent)
    os.close(fd)
    try:
        writer = cv2.VideoWriter(tmp_name, cv2.VideoWriter_fourcc(*MP4_FOURCC), float(fps), (width, height))
        if not writer.isOpened():
            raise StageError(f"OpenCV cannot encode {MP4_FOURCC} video here (no FFmpeg backend?)")
        try:
            for frame in frames:
                writer.write(frame)
        finally:
            writer.release()
        decoded = count_video_frames(tmp_name)
        if decoded != len(frames):
            raise StageError(f"the encoded MP4 decodes to {decoded} frames, not {len(frames)}")
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def write_gif(path: str | os.PathLike, frames: Sequence[np.ndarray], *, fps: float = 24.0, max_side_px: int | None = None) -> Path:
    """Encode ``frames`` ((H, W, 3) uint8 BGR) as a looping GIF at ``path`` (Pillow, adaptive palette
    per frame); ``max_side_px`` shrinks the frames first (GIFs of full-size frames are large)."""
    from PIL import Image

    frames = _check_frames(frames)
    height, width = frames[0].shape[:2]
    scale = 1.0 if max_side_px is None else min(1.0, max_side_px / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    images = [
        Image.fromarray(np.ascontiguousarray(
            cv2.resize(frame, size, interpolation=cv2.INTER_AREA)[:, :, ::-1] if scale < 1 else frame[:, :, ::-1]
        ))
        for frame in frames
    ]
    buffer = io.BytesIO()
    duration_ms = max(20, round(1000.0 / fps))
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=0)
    return write_bytes_atomic(path, buffer.getvalue())


def count_video_frames(path: str | os.PathLike) -> int:
    """How many frames ``cv2.VideoCapture`` decodes from ``path`` (0 if it cannot open it)."""
    capture = cv2.VideoCapture(str(path))
    count = 0
    try:
        while capture.isOpened():
            ok, _ = capture.read()
            if not ok:
                break
            count += 1
    finally:
        capture.release()
    return count


def _check_frames(frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    frames = list(frames)
    if not frames:
        raise ValueError("no frames to write")
    shape = frames[0].shape
    for frame in frames:
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3 or frame.shape != shape:
            raise ValueError(f"frames must all be (H, W, 3) uint8 of one size, got {frame.dtype} {frame.shape}")
    return frames
