"""load_capture: capture folders (good and every kind of broken) and EuRoC sequences."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from sensing.capture import list_asl_timestamps, load_capture
from sensing.errors import CalibrationError, InputError

from synthetic import smooth_texture

HEIGHT, WIDTH = 60, 80


@pytest.fixture
def views() -> tuple[np.ndarray, np.ndarray]:
    return smooth_texture(HEIGHT, WIDTH, seed=1), smooth_texture(HEIGHT, WIDTH, seed=2)


def test_folder_capture_loads_what_was_written(tmp_path: Path, write_capture, make_calibration, views) -> None:
    calib = make_calibration(width=WIDTH, height=HEIGHT, focal_px=70.0)
    folder = write_capture(tmp_path / "cap", *views, calib, meta={"exposure_ms": [8.0, 6.5]})
    capture = load_capture(folder)
    np.testing.assert_array_equal(capture.left, views[0])
    np.testing.assert_array_equal(capture.right, views[1])
    assert capture.calibration.left == calib.left and capture.calibration.right == calib.right
    np.testing.assert_array_equal(capture.calibration.T, calib.T)
    assert capture.meta == {"exposure_ms": [8.0, 6.5]}
    assert capture.source == str(folder)
    assert capture.summary()["size_wh"] == [WIDTH, HEIGHT]


def test_meta_is_optional(tmp_path: Path, write_capture, views) -> None:
    assert load_capture(write_capture(tmp_path / "cap", *views)).meta == {}


@pytest.mark.parametrize(
    ("convert", "dtype", "ndim"),
    [
        (lambda v: v.astype(np.uint16) * 257, np.uint16, 3),
        (lambda v: cv2.cvtColor(v, cv2.COLOR_BGR2GRAY), np.uint8, 2),
        (lambda v: cv2.cvtColor(v, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 16, np.uint16, 2),
    ],
    ids=["bgr16", "grey8", "grey16"],
)
def test_16_bit_and_grey_views_load_unchanged(tmp_path: Path, write_capture, views, convert, dtype, ndim) -> None:
    left, right = convert(views[0]), convert(views[1])
    capture = load_capture(write_capture(tmp_path / "cap", left, right))
    assert capture.left.dtype == capture.right.dtype == dtype and capture.left.ndim == ndim
    np.testing.assert_array_equal(capture.left, left)
    np.testing.assert_array_equal(capture.right, right)


def _unlink(name: str):
    return lambda folder: (folder / name).unlink()


def _write_text(name: str, text: str):
    return lambda folder: (folder / name).write_text(text)


def _write_image(name: str, image: np.ndarray):
    return lambda folder: cv2.imwrite(str(folder / name), image)


def _zero_focal_length(folder: Path) -> None:
    data = json.loads((folder / "calibration.json").read_text())
    data["left"]["fx"] = 0.0
    (folder / "calibration.json").write_text(json.dumps(data))


#: case: (path loaded, relative to a good capture folder; edit of that folder; error; message)
BROKEN = {
    "missing_folder": ("nowhere", None, InputError, r"capture not found: .*nowhere"),
    "file_not_folder": ("left.png", None, InputError, r"a capture is a folder .* got a file: .*left\.png"),
    "no_calibration": (
        "", _unlink("calibration.json"), InputError, r"has no calibration file \(expected one of calibration\.json"
    ),
    "no_left": ("", _unlink("left.png"), InputError, r"has no left image \(expected left\.<ext>"),
    "two_lefts": (
        "", _write_image("left.jpg", np.zeros((HEIGHT, WIDTH, 3), np.uint8)), InputError,
        r"several left images: left\.jpg, left\.png",
    ),
    "garbage_image": (
        "", _write_text("left.png", "\x89PNG not really an image"), InputError, r"not a readable image: .*left\.png"
    ),
    "bit_depth_mismatch": (
        "", _write_image("right.png", np.zeros((HEIGHT, WIDTH, 3), np.uint16)), InputError,
        r"left image is uint8 but right image is uint16",
    ),
    "invalid_meta": ("", _write_text("meta.json", '{"exposure_ms": '), InputError, r"meta\.json is not valid JSON"),
    "meta_not_object": ("", _write_text("meta.json", "[1, 2]"), InputError, r"meta\.json must hold a JSON object"),
    "bad_calibration": ("", _zero_focal_length, CalibrationError, r"calibration\.json: left\.fx must be positive"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_captures_say_what_is_wrong(tmp_path: Path, write_capture, views, case: str) -> None:
    folder = write_capture(tmp_path / "cap", *views)
    target, edit, error_type, message = BROKEN[case]
    if edit is not None:
        edit(folder)
    with pytest.raises(error_type, match=message):
        load_capture(folder / target)


def test_size_mismatch_with_calibration(tmp_path: Path, write_capture, make_calibration, views) -> None:
    calib = make_calibration(width=100, height=75, focal_px=80.0)
    folder = write_capture(tmp_path / "cap", *views, calib)
    with pytest.raises(InputError, match="left image is 80x60 but its calibration is for 100x75"):
        load_capture(folder)


def test_frame_selection_needs_a_sequence(tmp_path: Path, write_capture, views) -> None:
    folder = write_capture(tmp_path / "cap", *views)
    for selection in ({"frame": 0}, {"timestamp_ns": 123}):
        with pytest.raises(InputError, match="only apply to EuRoC sequences"):
            load_capture(folder, **selection)
    with pytest.raises(InputError, match="not an EuRoC/ASL sequence"):
        list_asl_timestamps(folder)


# --- EuRoC / ASL sequences -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def euroc_stamps(euroc_mav0: Path) -> list[int]:
    """Timestamps of the pairs, read straight from the file names."""
    left = {int(p.stem) for p in (euroc_mav0 / "cam0" / "data").glob("*.png")}
    right = {int(p.stem) for p in (euroc_mav0 / "cam1" / "data").glob("*.png")}
    return sorted(left & right)


@pytest.mark.shared_data
def test_euroc_default_is_the_first_frame(euroc_mav0: Path, euroc_stamps: list[int]) -> None:
    assert list_asl_timestamps(euroc_mav0) == euroc_stamps and len(euroc_stamps) >= 2
    for path in (euroc_mav0, euroc_mav0.parent):  # mav0 itself or the sequence folder
        capture = load_capture(path)
        assert capture.meta == {"timestamp_ns": euroc_stamps[0], "frame": 0, "frames_in_sequence": len(euroc_stamps)}
    expected = cv2.imread(str(euroc_mav0 / "cam0" / "data" / f"{euroc_stamps[0]}.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(capture.left, expected)
    assert capture.left.shape == capture.right.shape == (480, 752) and capture.left.dtype == np.uint8
    assert capture.calibration.baseline_m == pytest.approx(0.110, abs=1e-3)


@pytest.mark.shared_data
def test_euroc_frame_and_timestamp_selection(euroc_mav0: Path, euroc_stamps: list[int]) -> None:
    last = len(euroc_stamps) - 1
    by_frame = load_capture(euroc_mav0, frame=last)
    assert by_frame.meta["timestamp_ns"] == euroc_stamps[last]
    expected = cv2.imread(str(euroc_mav0 / "cam1" / "data" / f"{euroc_stamps[last]}.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(by_frame.right, expected)
    by_stamp = load_capture(euroc_mav0, timestamp_ns=euroc_stamps[1])
    assert by_stamp.meta["frame"] == 1 and by_stamp.meta["timestamp_ns"] == euroc_stamps[1]
    assert not np.array_equal(by_stamp.left, by_frame.left)


@pytest.mark.shared_data
def test_euroc_selection_errors(euroc_mav0: Path, euroc_stamps: list[int]) -> None:
    count = len(euroc_stamps)
    with pytest.raises(InputError, match=f"frame {count} out of range; the sequence has {count} pairs"):
        load_capture(euroc_mav0, frame=count)
    with pytest.raises(InputError, match="frame -1 out of range"):
        load_capture(euroc_mav0, frame=-1)
    available = f"available: {euroc_stamps[0]} .. {euroc_stamps[-1]}"
    with pytest.raises(InputError, match=f"no frame pair at timestamp 123; {available}"):
        load_capture(euroc_mav0, timestamp_ns=123)
    with pytest.raises(InputError, match="give a frame index or a timestamp, not both"):
        load_capture(euroc_mav0, frame=0, timestamp_ns=euroc_stamps[0])


# --- save_capture ----------------------------------------------------------------------------------------


def _capture(make_calibration, views, *, convert=lambda v: v, meta=None):
    from sensing.types import StereoCapture

    calib = make_calibration(width=WIDTH, height=HEIGHT, focal_px=70.0)
    return StereoCapture(convert(views[0]), convert(views[1]), calib, meta or {}, source="memory")


def _leftovers(parent: Path, name: str) -> list[Path]:
    """Staging folders or temporary files left beside or inside the capture folder."""
    hidden = list(parent.glob(f".{name}.*"))
    if (parent / name).is_dir():
        hidden += [p for p in (parent / name).iterdir() if p.name.startswith(".")]
    return hidden


@pytest.mark.parametrize(
    "convert",
    [
        lambda v: v,
        lambda v: v.astype(np.uint16) * 257,
        lambda v: cv2.cvtColor(v, cv2.COLOR_BGR2GRAY),
        lambda v: cv2.cvtColor(v, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 64 + 3,
    ],
    ids=["bgr8", "bgr16", "grey8", "grey16"],
)
def test_save_capture_round_trip(tmp_path: Path, make_calibration, views, convert) -> None:
    from sensing.capture import save_capture

    meta = {"exposure_ms": [8.0, 6.5], "simulated_drift_rotvec_deg": [0.5, 0.0, -0.3], "note": "é"}
    capture = _capture(make_calibration, views, convert=convert, meta=meta)
    folder = save_capture(capture, tmp_path / "nested" / "cap")
    assert folder == tmp_path / "nested" / "cap"
    assert sorted(p.name for p in folder.iterdir()) == ["calibration.json", "left.png", "meta.json", "right.png"]
    loaded = load_capture(folder)
    for name in ("left", "right"):
        original, back = getattr(capture, name), getattr(loaded, name)
        assert back.dtype == original.dtype and back.shape == original.shape
        np.testing.assert_array_equal(back, original)
    assert loaded.calibration.left == capture.calibration.left and loaded.calibration.right == capture.calibration.right
    np.testing.assert_allclose(loaded.calibration.R, capture.calibration.R, atol=1e-12)
    np.testing.assert_allclose(loaded.calibration.T, capture.calibration.T, atol=1e-12)
    assert loaded.meta == meta
    assert _leftovers(folder.parent, folder.name) == []


def test_save_capture_overwrites_an_existing_capture(tmp_path: Path, make_calibration, views, write_capture) -> None:
    from sensing.capture import save_capture

    folder = write_capture(tmp_path / "cap", views[1], views[0], meta={"old": True})
    capture = _capture(make_calibration, views, meta={"new": 1})
    save_capture(capture, folder)
    loaded = load_capture(folder)
    np.testing.assert_array_equal(loaded.left, views[0])
    np.testing.assert_array_equal(loaded.right, views[1])
    assert loaded.meta == {"new": 1}
    assert _leftovers(tmp_path, "cap") == []
    # Saving the same capture twice gives the same files.
    first = {p.name: p.read_bytes() for p in folder.iterdir()}
    save_capture(capture, folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == first


def test_save_capture_replaces_views_stored_under_other_extensions(tmp_path: Path, make_calibration, views) -> None:
    from sensing.capture import save_capture

    folder = tmp_path / "cap"
    folder.mkdir()
    cv2.imwrite(str(folder / "left.jpg"), views[0])
    (folder / "calibration.yaml").write_text("%YAML:1.0\n")
    save_capture(_capture(make_calibration, views), folder)
    assert sorted(p.name for p in folder.iterdir()) == ["calibration.json", "left.png", "meta.json", "right.png"]
    np.testing.assert_array_equal(load_capture(folder).left, views[0])


def test_save_capture_without_meta_writes_an_empty_object(tmp_path: Path, make_calibration, views) -> None:
    from sensing.capture import save_capture

    folder = save_capture(_capture(make_calibration, views), tmp_path / "cap")
    assert json.loads((folder / "meta.json").read_text()) == {}
    assert load_capture(folder).meta == {}


@pytest.mark.parametrize("failing", ["write_image_atomic", "save_calibration", "write_json_atomic"])
def test_save_capture_failure_leaves_nothing_half_written(
    tmp_path: Path, make_calibration, views, write_capture, monkeypatch, failing: str
) -> None:
    import sensing.capture as capture_module

    calls = []
    real = getattr(capture_module, failing)

    def fail_late(*args, **kwargs):
        calls.append(args)
        if len(calls) == (2 if failing == "write_image_atomic" else 1):  # the right image, or the first call
            raise OSError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(capture_module, failing, fail_late)
    capture = _capture(make_calibration, views, meta={"new": 1})
    # A new folder: nothing appears.
    with pytest.raises(OSError, match="disk full"):
        capture_module.save_capture(capture, tmp_path / "fresh")
    assert not (tmp_path / "fresh").exists()
    assert _leftovers(tmp_path, "fresh") == []
    # An existing capture: left exactly as it was.
    folder = write_capture(tmp_path / "old", views[1], views[0], meta={"old": True})
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    calls.clear()
    with pytest.raises(OSError, match="disk full"):
        capture_module.save_capture(capture, folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert _leftovers(tmp_path, "old") == []
