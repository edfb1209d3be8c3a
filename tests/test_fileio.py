"""Image reading errors, lossless PNG and PFM round trips, and atomic writes."""

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from sensing import fileio
from sensing.errors import InputError
from sensing.fileio import read_image, read_pfm, write_bytes_atomic, write_image_atomic, write_json_atomic


def test_missing_image_raises_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="image not found"):
        read_image(tmp_path / "left.png")


def test_garbage_bytes_raise_input_error(tmp_path: Path) -> None:
    path = tmp_path / "left.png"
    path.write_bytes(b"\x89PNG not really an image" * 20)
    with pytest.raises(InputError, match="not a readable image"):
        read_image(path)


def test_missing_or_non_float_pfm_raises_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_pfm(tmp_path / "disparity.pfm")
    png = tmp_path / "eight_bit.png"
    cv2.imwrite(str(png), np.zeros((8, 8), np.uint8))
    with pytest.raises(InputError, match="not a readable PFM"):
        read_pfm(png)


def test_16_bit_png_round_trip_is_exact(tmp_path: Path) -> None:
    image = np.random.default_rng(0).integers(0, 65536, (24, 32), dtype=np.uint16)
    image[0, 0], image[-1, -1] = 0, 65535
    path = write_image_atomic(tmp_path / "depth.png", image)
    back = read_image(path)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, image)


def test_bgra_png_is_read_as_bgr(tmp_path: Path) -> None:
    image = np.random.default_rng(1).integers(0, 256, (10, 12, 4), dtype=np.uint8)
    path = write_image_atomic(tmp_path / "view.png", image)
    np.testing.assert_array_equal(read_image(path), image[:, :, :3])


def test_pfm_round_trip_keeps_values_inf_and_row_order(tmp_path: Path) -> None:
    values = np.random.default_rng(2).uniform(0.0, 200.0, (7, 9)).astype(np.float32)
    values[0, :] = np.arange(9)  # a top row distinct from the bottom one
    values[-1, :] = -np.arange(9)
    values[2, 3] = np.inf
    values[5, 0] = 1e-30
    path = write_image_atomic(tmp_path / "disparity.pfm", values)
    back = read_pfm(path)
    assert back.dtype == np.float32 and back.shape == values.shape
    np.testing.assert_array_equal(back, values)
    assert np.isposinf(back[2, 3])


def _refuse_replace(src: object, dst: object) -> None:
    raise OSError("disk full")


def test_failed_write_leaves_no_temp_file_and_keeps_old_target(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "report.json"
    target.write_bytes(b"old content")
    monkeypatch.setattr(fileio.os, "replace", _refuse_replace)
    with pytest.raises(OSError, match="disk full"):
        write_bytes_atomic(target, b"new content")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
    assert target.read_bytes() == b"old content"


def test_failed_write_of_new_file_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(fileio.os, "replace", _refuse_replace)
    with pytest.raises(OSError, match="disk full"):
        write_image_atomic(tmp_path / "sub" / "depth.png", np.zeros((8, 8), np.uint16))
    assert list((tmp_path / "sub").iterdir()) == []


def test_atomic_write_creates_folder_and_uses_umask_permissions(tmp_path: Path) -> None:
    path = write_bytes_atomic(tmp_path / "a" / "b" / "data.bin", b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in path.parent.iterdir()) == ["data.bin"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_json_turns_nan_and_inf_into_null(tmp_path: Path) -> None:
    payload = {
        "median": float("nan"),
        "nested": {"far": float("inf"), "values": [1.5, float("-inf"), np.float32("nan")]},
        "count": np.int64(3),
        "ratio": np.float64(0.25),
        "pair": (np.float32(np.inf), "ok"),
    }
    path = write_json_atomic(tmp_path / "report.json", payload)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {
        "median": None,
        "nested": {"far": None, "values": [1.5, None, None]},
        "count": 3,
        "ratio": 0.25,
        "pair": [None, "ok"],
    }
