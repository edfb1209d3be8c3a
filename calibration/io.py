"""Calibration files: ``calibration.json`` load/save, and importers for OpenCV and Kalibr/EuRoC.

``calibration.json`` (OpenCV stereo convention, ``X_right = R X_left + T``, metres)::

    {"left":  {"model": "pinhole", "width": 640, "height": 480, "fx": 500.0, "fy": 500.0,
               "cx": 320.0, "cy": 240.0, "distortion": [k1, k2, p1, p2, k3]},
     "right": {...}, "R": [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "T": [-0.06, 0.0, 0.0]}

Every loader validates what it read and raises :class:`CalibrationError` saying what is wrong.
"""

import json
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from calibration.camera import CameraModel, StereoCalibration
from sensing.errors import CalibrationError
from sensing.fileio import write_json_atomic

_CAMERA_KEYS = ("model", "width", "height", "fx", "fy", "cx", "cy", "distortion")


def camera_from_dict(data: Any, name: str) -> CameraModel:
    """Build a :class:`CameraModel` from its JSON dict, reporting missing or stray keys."""
    if not isinstance(data, dict):
        raise CalibrationError(f"{name} must be an object with keys {list(_CAMERA_KEYS)}")
    missing = [key for key in _CAMERA_KEYS if key not in data and key != "distortion"]
    if missing:
        raise CalibrationError(f"{name} is missing {', '.join(missing)}")
    unknown = sorted(set(data) - set(_CAMERA_KEYS))
    if unknown:
        raise CalibrationError(f"{name} has unknown keys {unknown}; allowed: {list(_CAMERA_KEYS)}")
    distortion = data.get("distortion") or []
    if not isinstance(distortion, list) or not all(_is_number(v) for v in distortion):
        raise CalibrationError(f"{name}.distortion must be a list of numbers, got {distortion!r}")
    for key in ("fx", "fy", "cx", "cy"):
        if not _is_number(data[key]):
            raise CalibrationError(f"{name}.{key} must be a number, got {data[key]!r}")
    camera = CameraModel(
        model=data["model"],
        width=data["width"],
        height=data["height"],
        fx=float(data["fx"]),
        fy=float(data["fy"]),
        cx=float(data["cx"]),
        cy=float(data["cy"]),
        distortion=tuple(float(v) for v in distortion),
    )
    camera.validate(name)
    return camera


def calibration_from_dict(data: Any) -> StereoCalibration:
    """Build and validate a :class:`StereoCalibration` from the ``calibration.json`` dict."""
    if not isinstance(data, dict):
        raise CalibrationError("calibration must be a JSON object with keys left, right, R, T")
    missing = [key for key in ("left", "right", "R", "T") if key not in data]
    if missing:
        raise CalibrationError(f"calibration is missing {', '.join(missing)}")
    unknown = sorted(set(data) - {"left", "right", "R", "T"})
    if unknown:
        raise CalibrationError(f"calibration has unknown keys {unknown}; allowed: ['left', 'right', 'R', 'T']")
    calib = StereoCalibration(
        left=camera_from_dict(data["left"], "left"),
        right=camera_from_dict(data["right"], "right"),
        R=_matrix(data["R"], (3, 3), "R"),
        T=_matrix(data["T"], (3,), "T"),
    )
    calib.validate()
    return calib


def calibration_to_dict(calib: StereoCalibration) -> dict[str, Any]:
    """The ``calibration.json`` dict of ``calib`` (plain Python numbers)."""

    def camera(c: CameraModel) -> dict[str, Any]:
        return {
            "model": c.model,
            "width": int(c.width),
            "height": int(c.height),
            "fx": c.fx,
            "fy": c.fy,
            "cx": c.cx,
            "cy": c.cy,
            "distortion": list(c.distortion),
        }

    return {
        "left": camera(calib.left),
        "right": camera(calib.right),
        "R": calib.R.tolist(),
        "T": calib.T.tolist(),
    }


def load_calibration(path: str | os.PathLike) -> StereoCalibration:
    """Read ``calibration.json``, an OpenCV FileStorage YAML/XML, or a Kalibr/EuRoC folder.

    The format is chosen from the path: a ``.json`` file, a ``.yaml``/``.yml``/``.xml``
    file as written after ``cv2.stereoCalibrate``, or a folder holding ``cam0/sensor.yaml``
    and ``cam1/sensor.yaml`` (EuRoC's ``mav0``).
    """
    path = Path(path)
    if path.is_dir():
        return calibration_from_kalibr(path / "cam0" / "sensor.yaml", path / "cam1" / "sensor.yaml")
    if not path.is_file():
        raise CalibrationError(f"calibration file not found: {path}")
    if path.suffix.lower() in (".yaml", ".yml", ".xml"):
        return calibration_from_opencv(path)
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CalibrationError(f"{path} is not valid JSON: {error}") from None
    try:
        return calibration_from_dict(data)
    except CalibrationError as error:
        raise CalibrationError(f"{path}: {error}") from None


def save_calibration(calib: StereoCalibration, path: str | os.PathLike) -> Path:
    """Write ``calib`` as ``calibration.json`` atomically."""
    return write_json_atomic(path, calibration_to_dict(calib))


def calibration_from_opencv(path: str | os.PathLike) -> StereoCalibration:
    """Import an OpenCV FileStorage file with K1, D1, K2, D2, R, T and the image size.

    The size is read from ``image_size``/``imageSize`` ([width, height]) or from
    ``image_width``/``image_height``. ``T`` must already be in metres. A ``model`` (or
    ``camera_model``) entry of ``fisheye`` selects the Kannala-Brandt model.
    """
    path = Path(path)
    try:
        storage = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    except (cv2.error, SystemError) as error:
        # A malformed or empty file makes the constructor raise cv2.error, which the Python
        # binding surfaces as SystemError ("returned a result with an exception set").
        cause = str(error.__cause__ or error).strip()
        raise CalibrationError(f"OpenCV could not parse {path} as FileStorage YAML/XML: {cause}") from None
    try:
        if not storage.isOpened():
            raise CalibrationError(f"OpenCV could not read {path} as FileStorage YAML/XML")

        def matrix(key: str) -> np.ndarray:
            node = storage.getNode(key)
            if node.empty():
                raise CalibrationError(f"{path} has no {key}")
            # A plain sequence (``imageSize: [640, 480]``, as C++ writes a cv::Size) is not a
            # matrix: ``node.mat()`` raises on it rather than returning None.
            value = None
            if node.isSeq():
                value = np.array([node.at(i).real() for i in range(node.size())])
            elif node.isMap():
                try:
                    value = node.mat()
                except cv2.error:
                    value = None
            if value is None:
                raise CalibrationError(f"{path}: {key} is not a matrix or a list of numbers")
            return np.asarray(value, dtype=np.float64)

        size = None
        for key in ("image_size", "imageSize", "size"):
            node = storage.getNode(key)
            if not node.empty():
                size = matrix(key).ravel().astype(int).tolist()
        if size is None:
            width, height = storage.getNode("image_width"), storage.getNode("image_height")
            if width.empty() or height.empty():
                raise CalibrationError(f"{path} gives no image size (image_size or image_width/height)")
            size = [int(width.real()), int(height.real())]
        model_node = storage.getNode("model")
        if model_node.empty():
            model_node = storage.getNode("camera_model")
        model = model_node.string() if not model_node.empty() else "pinhole"
        cameras = []
        for index in ("1", "2"):
            K = matrix("K" + index)
            if K.shape != (3, 3):
                raise CalibrationError(f"{path}: K{index} must be 3x3, got {list(K.shape)}")
            cameras.append(_camera_from_matrix(K, matrix("D" + index), size, model, f"camera {index}"))
        calib = StereoCalibration(
            cameras[0], cameras[1], _matrix(matrix("R"), (3, 3), "R"), _matrix(matrix("T").ravel(), (3,), "T")
        )
    finally:
        storage.release()
    calib.validate()
    return calib


def calibration_from_kalibr(cam0_yaml: str | os.PathLike, cam1_yaml: str | os.PathLike) -> StereoCalibration:
    """Import an EuRoC/Kalibr rig from two ``sensor.yaml`` files (cam0 = left, cam1 = right).

    Each file holds ``intrinsics`` [fu, fv, cu, cv], ``distortion_model``
    (``radial-tangential`` or ``equidistant``), ``distortion_coefficients``,
    ``resolution`` [width, height] and ``T_BS``, the 4x4 pose of the sensor in the body frame.
    Then ``T_right_left = inv(T_BS_right) @ T_BS_left``.
    """
    sensors = [_read_sensor_yaml(Path(p)) for p in (cam0_yaml, cam1_yaml)]
    cameras = []
    for name, sensor in zip(("cam0", "cam1"), sensors):
        model = {"radial-tangential": "pinhole", "radtan": "pinhole", "equidistant": "fisheye"}.get(
            str(sensor.get("distortion_model")), None
        )
        if model is None or sensor.get("camera_model", "pinhole") != "pinhole":
            raise CalibrationError(
                f"{name}: unsupported model {sensor.get('camera_model')}/{sensor.get('distortion_model')} "
                "(supported: pinhole with radial-tangential or equidistant distortion)"
            )
        intrinsics = _matrix(sensor.get("intrinsics"), (4,), f"{name}.intrinsics")
        K = np.array([[intrinsics[0], 0, intrinsics[2]], [0, intrinsics[1], intrinsics[3]], [0, 0, 1]])
        distortion = np.asarray(sensor.get("distortion_coefficients") or [], dtype=np.float64)
        cameras.append(_camera_from_matrix(K, distortion, sensor.get("resolution"), model, name))
    body_T_left, body_T_right = (_body_T_sensor(s, n) for s, n in zip(sensors, ("cam0", "cam1")))
    right_T_left = np.linalg.inv(body_T_right) @ body_T_left
    calib = StereoCalibration(cameras[0], cameras[1], right_T_left[:3, :3], right_T_left[:3, 3])
    calib.validate()
    return calib


def _read_sensor_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CalibrationError(f"Kalibr sensor file not found: {path}")
    # OpenCV-style '%YAML:1.0' directives are not YAML 1.1; drop them before parsing.
    text = "\n".join(line for line in path.read_text().splitlines() if not line.startswith("%YAML"))
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise CalibrationError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise CalibrationError(f"{path} does not hold a YAML mapping")
    return data


def _body_T_sensor(sensor: dict[str, Any], name: str) -> np.ndarray:
    node = sensor.get("T_BS")
    data = node.get("data") if isinstance(node, dict) else node
    pose = _matrix(data, (16,), f"{name}.T_BS").reshape(4, 4)
    if not np.allclose(pose[3], [0, 0, 0, 1]):
        raise CalibrationError(f"{name}.T_BS last row must be [0, 0, 0, 1], got {pose[3].tolist()}")
    return pose


def _camera_from_matrix(K: np.ndarray, D: np.ndarray, size: Any, model: str, name: str) -> CameraModel:
    if not isinstance(size, (list, tuple)) or len(size) != 2:
        raise CalibrationError(f"{name}: image size must be [width, height], got {size!r}")
    camera = CameraModel(
        model=model,
        width=int(size[0]),
        height=int(size[1]),
        fx=float(K[0, 0]),
        fy=float(K[1, 1]),
        cx=float(K[0, 2]),
        cy=float(K[1, 2]),
        distortion=tuple(float(v) for v in np.asarray(D).ravel()),
    )
    camera.validate(name)
    return camera


def _matrix(value: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise CalibrationError(f"{name} must be numbers of shape {list(shape)}, got {value!r}") from None
    if array.size == int(np.prod(shape)) and array.shape != shape and array.ndim <= 2:
        array = array.reshape(shape)
    if array.shape != shape:
        raise CalibrationError(f"{name} must have shape {list(shape)}, got {list(array.shape)}")
    if not np.all(np.isfinite(array)):
        raise CalibrationError(f"{name} contains NaN or inf")
    return array


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
