"""calibration.json round trip and errors; OpenCV FileStorage and Kalibr/EuRoC importers."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from calibration.camera import StereoCalibration
from calibration.io import calibration_from_dict, calibration_to_dict, load_calibration, save_calibration
from sensing.errors import CalibrationError

from conftest import rotation_xyz_deg


def assert_same_calibration(actual: StereoCalibration, expected: StereoCalibration, *, atol: float = 0.0) -> None:
    assert actual.left.model == expected.left.model and actual.right.model == expected.right.model
    for name in ("left", "right"):
        a, e = getattr(actual, name), getattr(expected, name)
        assert a.size_wh == e.size_wh
        np.testing.assert_allclose(a.K, e.K, atol=atol, rtol=0)
        np.testing.assert_allclose(a.D, e.D, atol=atol, rtol=0)
    np.testing.assert_allclose(actual.R, expected.R, atol=atol, rtol=0)
    np.testing.assert_allclose(actual.T, expected.T, atol=atol, rtol=0)


# --- calibration.json ---------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["pinhole", "fisheye"])
def test_json_round_trip_is_exact(tmp_path: Path, make_calibration, model: str) -> None:
    calib = make_calibration(model, right_R_left=rotation_xyz_deg(1, -2, 0.5))
    path = save_calibration(calib, tmp_path / "calibration.json")
    loaded = load_calibration(path)
    assert loaded.left == calib.left and loaded.right == calib.right
    np.testing.assert_array_equal(loaded.R, calib.R)
    np.testing.assert_array_equal(loaded.T, calib.T)
    # The file is the documented plain-JSON layout.
    data = json.loads(path.read_text())
    assert sorted(data) == ["R", "T", "left", "right"]
    assert data["left"]["model"] == model and len(data["R"]) == 3


def _set(data: dict, dotted: str, value) -> None:
    *parents, key = dotted.split(".")
    for parent in parents:
        data = data[parent]
    data[key] = value


def _delete(data: dict, dotted: str) -> None:
    *parents, key = dotted.split(".")
    for parent in parents:
        data = data[parent]
    del data[key]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: _delete(d, "T"), "calibration is missing T"),
        (lambda d: _delete(d, "right"), "calibration is missing right"),
        (lambda d: _delete(d, "left.fx"), "left is missing fx"),
        (lambda d: _set(d, "baseline_mm", 60), "calibration has unknown keys ['baseline_mm']"),
        (lambda d: _set(d, "right.k1", 0.1), "right has unknown keys ['k1']"),
        (lambda d: _set(d, "left.fx", float("nan")), "left.fx must be a finite number"),
        (lambda d: _set(d, "left.fx", 0), "left.fx must be positive"),
        (lambda d: _set(d, "right.cy", "240"), "right.cy must be a number, got '240'"),
        (lambda d: _set(d, "left.fy", True), "left.fy must be a number"),
        (lambda d: _set(d, "left.width", "640"), "left.width must be a positive integer"),
        (lambda d: _set(d, "left.distortion", "none"), "left.distortion must be a list of numbers"),
        (lambda d: _set(d, "left.distortion", [0.1, 0.2, 0.3]), "left.distortion for model 'pinhole'"),
        (lambda d: _set(d, "left.model", "omni"), "left.model must be 'pinhole' or 'fisheye'"),
        (lambda d: _set(d, "R", "identity"), "R must be numbers of shape [3, 3]"),
        (lambda d: _set(d, "R", [[1, 0], [0, 1]]), "R must have shape [3, 3]"),
        (lambda d: _set(d, "T", [-60.0, 0.0]), "T must have shape [3]"),
        (lambda d: _set(d, "T", [0.06, 0.0, 0.0]), "left and right are swapped"),
        (lambda d: _set(d, "left", [1, 2]), "left must be an object"),
    ],
)
def test_calibration_from_dict_names_the_bad_key(make_calibration, edit, message: str) -> None:
    data = calibration_to_dict(make_calibration())
    edit(data)
    with pytest.raises(CalibrationError) as error:
        calibration_from_dict(data)
    assert message in str(error.value)


def test_calibration_from_dict_rejects_non_object() -> None:
    with pytest.raises(CalibrationError, match="must be a JSON object"):
        calibration_from_dict([1, 2, 3])


def test_json_file_errors_name_the_file(tmp_path: Path, make_calibration) -> None:
    with pytest.raises(CalibrationError, match="calibration file not found"):
        load_calibration(tmp_path / "nope.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"left": {')
    with pytest.raises(CalibrationError, match=r"broken\.json is not valid JSON"):
        load_calibration(broken)
    data = calibration_to_dict(make_calibration())
    data["left"]["fx"] = float("nan")  # json writes the NaN literal, which json.loads accepts
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(CalibrationError, match=r"bad\.json: left\.fx must be a finite number"):
        load_calibration(bad)


# --- OpenCV FileStorage -------------------------------------------------------------------------


def _write_opencv(path: Path, calib: StereoCalibration, size_style: str, *, model: str | None = None) -> None:
    """Write what a script saves after ``cv2.stereoCalibrate`` (D as 1xN, T as 3x1)."""
    storage = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    width, height = calib.left.size_wh
    if size_style == "tuple":
        storage.write("image_size", (width, height))
    elif size_style == "sequence":  # how C++ writes a cv::Size: imageSize: [ 640, 480 ]
        storage.startWriteStruct("imageSize", cv2.FILE_NODE_SEQ | cv2.FILE_NODE_FLOW)
        storage.write("", width)
        storage.write("", height)
        storage.endWriteStruct()
    elif size_style == "width_height":
        storage.write("image_width", width)
        storage.write("image_height", height)
    if model is not None:
        storage.write("model", model)
    storage.write("K1", calib.left.K)
    storage.write("D1", calib.left.D.reshape(1, -1))
    storage.write("K2", calib.right.K)
    storage.write("D2", calib.right.D.reshape(1, -1))
    storage.write("R", calib.R)
    storage.write("T", calib.T.reshape(3, 1))
    storage.release()


@pytest.mark.parametrize(
    ("name", "size_style"),
    [("stereo.yaml", "tuple"), ("stereo.yml", "sequence"), ("stereo.xml", "width_height"), ("stereo.yaml", "sequence")],
)
def test_opencv_filestorage_import(tmp_path: Path, make_calibration, name: str, size_style: str) -> None:
    calib = make_calibration(right_R_left=rotation_xyz_deg(0.3, 1.0, -0.4))
    _write_opencv(tmp_path / name, calib, size_style)
    assert_same_calibration(load_calibration(tmp_path / name), calib, atol=1e-12)


def test_opencv_import_of_a_fisheye_rig(tmp_path: Path, make_calibration) -> None:
    calib = make_calibration("fisheye")
    _write_opencv(tmp_path / "fisheye.yaml", calib, "tuple", model="fisheye")
    assert_same_calibration(load_calibration(tmp_path / "fisheye.yaml"), calib, atol=1e-12)


def test_opencv_import_errors(tmp_path: Path, make_calibration) -> None:
    calib = make_calibration()
    no_size = tmp_path / "no_size.yaml"
    _write_opencv(no_size, calib, "none")
    with pytest.raises(CalibrationError, match="gives no image size"):
        load_calibration(no_size)

    no_t = tmp_path / "no_t.yaml"
    _write_opencv(no_t, calib, "tuple")
    no_t.write_text(no_t.read_text().split("\nT:")[0] + "\n")
    with pytest.raises(CalibrationError, match="has no T"):
        load_calibration(no_t)

    not_matrix = tmp_path / "not_matrix.yaml"
    _write_opencv(not_matrix, calib, "tuple")
    not_matrix.write_text(not_matrix.read_text().replace("K1: !!opencv-matrix", 'K1: "eye(3)"\nK0: !!opencv-matrix'))
    with pytest.raises(CalibrationError, match="K1 is not a matrix"):
        load_calibration(not_matrix)

    for text in ("", "%YAML:1.0\nK1: [1, 2\n"):  # empty and malformed files
        broken = tmp_path / "broken.yaml"
        broken.write_text(text)
        with pytest.raises(CalibrationError, match=r"could not parse .*broken\.yaml"):
            load_calibration(broken)


# --- Kalibr / EuRoC -----------------------------------------------------------------------------


def _pose(R: np.ndarray, t) -> np.ndarray:
    pose = np.eye(4)
    pose[:3, :3], pose[:3, 3] = R, t
    return pose


def _write_sensor_yaml(path: Path, body_T_sensor: np.ndarray, distortion_model: str, intrinsics, distortion) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sensor = {
        "sensor_type": "camera",
        "T_BS": {"cols": 4, "rows": 4, "data": body_T_sensor.ravel().tolist()},
        "rate_hz": 20,
        "resolution": [752, 480],
        "camera_model": "pinhole",
        "intrinsics": list(intrinsics),
        "distortion_model": distortion_model,
        "distortion_coefficients": list(distortion),
    }
    path.write_text("%YAML:1.0\n" + yaml.safe_dump(sensor))
    return path


@pytest.mark.parametrize(("distortion_model", "model"), [("radial-tangential", "pinhole"), ("equidistant", "fisheye")])
def test_kalibr_import_recovers_the_relative_pose(tmp_path: Path, distortion_model: str, model: str) -> None:
    # Body frame as on EuRoC (cameras rotated ~90 degrees about z), right camera 8 cm along the left's +x.
    body_T_left = _pose(rotation_xyz_deg(1.0, -2.0, 90.0), [-0.02, -0.06, 0.01])
    left_R_right = rotation_xyz_deg(0.5, -1.0, 2.0)
    right_centre_in_left = np.array([0.08, 0.002, -0.001])
    body_T_right = body_T_left @ _pose(left_R_right, right_centre_in_left)
    distortion = [-0.28, 0.07, 2e-4, 1e-5]
    for name, body_T_sensor, intrinsics in (
        ("cam0", body_T_left, [458.6, 457.3, 367.2, 248.4]),
        ("cam1", body_T_right, [457.6, 456.1, 380.0, 255.2]),
    ):
        _write_sensor_yaml(tmp_path / name / "sensor.yaml", body_T_sensor, distortion_model, intrinsics, distortion)

    calib = load_calibration(tmp_path)

    np.testing.assert_allclose(calib.R, left_R_right.T, atol=1e-12)
    np.testing.assert_allclose(calib.T, -left_R_right.T @ right_centre_in_left, atol=1e-12)
    assert calib.baseline_m == pytest.approx(np.linalg.norm(right_centre_in_left))
    assert calib.left.model == calib.right.model == model
    assert (calib.left.fx, calib.left.cy, calib.right.cx) == (458.6, 248.4, 380.0)
    assert calib.left.size_wh == (752, 480) and calib.left.distortion == tuple(distortion)


def test_kalibr_import_errors(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match="Kalibr sensor file not found"):
        load_calibration(tmp_path)  # a folder without cam0/sensor.yaml
    _write_sensor_yaml(tmp_path / "cam0" / "sensor.yaml", np.eye(4), "fov", [400, 400, 320, 240], [0.9])
    _write_sensor_yaml(tmp_path / "cam1" / "sensor.yaml", np.eye(4), "fov", [400, 400, 320, 240], [0.9])
    with pytest.raises(CalibrationError, match="cam0: unsupported model pinhole/fov"):
        load_calibration(tmp_path)


@pytest.mark.shared_data
def test_euroc_calibration(euroc_mav0: Path) -> None:
    calib = load_calibration(euroc_mav0)
    assert calib.baseline_m == pytest.approx(0.110, abs=5e-4)
    # Published Kalibr extrinsics of EuRoC's cam1 w.r.t. cam0 (translation in metres).
    np.testing.assert_allclose(calib.T, [-0.110074, 0.000399, -0.000854], atol=2e-6)
    assert calib.T[0] < 0
    angle_deg = np.degrees(np.arccos(np.clip((np.trace(calib.R) - 1) / 2, -1, 1)))
    assert angle_deg < 2.0
    assert calib.left.size_wh == calib.right.size_wh == (752, 480)
    assert calib.left.model == "pinhole" and len(calib.left.distortion) == 4
    assert calib.left.fx == pytest.approx(458.654)
