"""The mono network on ONNX Runtime (``MonoEstimator``) and ``glassdepth mono``: shapes, range,
input checks, weights errors, and an inference path that never imports torch."""

import subprocess
import sys

import cv2
import numpy as np
import pytest

from sensing.cli import EXIT_INPUT, EXIT_OK, main
from sensing.errors import ConfigError, ShapeError
from sensing.fileio import read_pfm
from sensing.mono import MonoEstimator
from sensing.stereo import DEFAULT_NET_WEIGHTS


def _image(height: int, width: int, channels: int | None = 3, dtype=np.uint8) -> np.ndarray:
    """Smooth random texture: (H, W[, C]) of ``dtype`` using its full range."""
    rng = np.random.default_rng(height * 1000 + width)
    shape = (max(2, height // 8), max(2, width // 8)) + (() if channels is None else (channels,))
    coarse = rng.random(shape).astype(np.float32)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)
    return (image * np.iinfo(dtype).max).astype(dtype)


@pytest.fixture(scope="module")
def estimator(mono_weights) -> MonoEstimator:
    return MonoEstimator(weights=mono_weights)


@pytest.mark.parametrize(
    "height, width, channels",
    [(97, 131, 3), (61, 203, None), (300, 41, 3), (288, 384, 3)],
    ids=["odd-colour", "odd-grey", "tall", "native"],
)
def test_predict_shape_range_dtype(estimator, height, width, channels):
    disparity = estimator.predict(_image(height, width, channels))
    assert disparity.shape == (height, width)
    assert disparity.dtype == np.float32
    assert np.isfinite(disparity).all()
    assert 0.0 <= disparity.min() and disparity.max() <= 1.0
    assert disparity.max() - disparity.min() > 0.5  # normalised to the full range, not a constant


def test_predict_grey_equals_its_bgr(estimator):
    grey = _image(80, 120, None)
    np.testing.assert_allclose(estimator.predict(grey), estimator.predict(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)), atol=1e-6)


def test_properties(estimator):
    properties = estimator.properties
    assert properties["stride"] > 0 and properties["long_side_px"] > 0
    assert isinstance(properties["info"], dict)


@pytest.mark.parametrize(
    "image, message",
    [
        (_image(64, 64, 3, np.uint16), "uint8"),
        (_image(64, 64, 3).astype(np.float32), "uint8"),
        (_image(64, 64, 4), "3 channels"),
        (_image(4, 64, 3), "too small"),
    ],
    ids=["uint16", "float32", "four-channels", "tiny"],
)
def test_predict_rejects_bad_images(estimator, image, message):
    with pytest.raises(ShapeError, match=message):
        estimator.predict(image)


def test_bad_weights_are_config_errors(tmp_path):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not an ONNX file")
    with pytest.raises(ConfigError, match="cannot load mono network weights"):
        MonoEstimator(weights=str(garbage))
    with pytest.raises(ConfigError, match="not found"):
        MonoEstimator(weights=str(tmp_path / "missing.onnx"))
    if DEFAULT_NET_WEIGHTS.is_file():
        with pytest.raises(ConfigError, match="not a glassdepth mono network export"):
            MonoEstimator(weights=str(DEFAULT_NET_WEIGHTS))


def test_weights_giving_nan_are_a_config_error(mono_weights, tmp_path):
    onnx = pytest.importorskip("onnx", reason="editing the weights needs onnx (the 'train' extra)")
    model = onnx.load(mono_weights)
    for initializer in model.graph.initializer:
        if initializer.data_type == onnx.TensorProto.FLOAT:
            values = onnx.numpy_helper.to_array(initializer)
            initializer.CopyFrom(onnx.numpy_helper.from_array(np.full_like(values, np.nan), initializer.name))
    broken = tmp_path / "nan.onnx"
    onnx.save(model, str(broken))
    with pytest.raises(ConfigError, match=r"mono network weights .*nan\.onnx gave non-finite values"):
        MonoEstimator(weights=str(broken)).predict(_image(64, 96))


def test_bad_thread_count(mono_weights):
    with pytest.raises(ConfigError, match="threads"):
        MonoEstimator(weights=mono_weights, threads=0)


def test_inference_does_not_import_torch(mono_weights):
    code = (
        "import sys, numpy as np\n"
        "import sensing.cli, benchmarks.mono_eval, benchmarks.mono_bench\n"
        "from sensing.mono import MonoEstimator\n"
        "image = np.random.default_rng(0).integers(0, 255, (45, 67, 3), dtype=np.uint8)\n"
        f"d = MonoEstimator(weights={mono_weights!r}).predict(image)\n"
        "assert d.shape == (45, 67)\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16], ids=["8bit", "16bit"])
def test_cli_mono_writes_pfm_and_preview(mono_weights, tmp_path, capsys, dtype):
    image_path, out, preview = tmp_path / "image.png", tmp_path / "out" / "disp.pfm", tmp_path / "preview.png"
    cv2.imwrite(str(image_path), _image(53, 75, 3, dtype))
    code = main(["mono", str(image_path), "--out", str(out), "--weights", mono_weights, "--preview", str(preview)])
    assert code == EXIT_OK
    disparity = read_pfm(out)
    assert disparity.shape == (53, 75) and disparity.dtype == np.float32
    assert 0.0 <= disparity.min() and disparity.max() <= 1.0
    colours = cv2.imread(str(preview))
    assert colours.shape == (53, 75, 3)
    assert f"written to {out}" in capsys.readouterr().out
    assert [p.name for p in tmp_path.rglob(".*tmp")] == []  # atomic writes leave no temp file


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["{tmp}/missing.png", "--out", "{tmp}/d.pfm"], "image not found"),
        (["{tmp}/not_an_image.png", "--out", "{tmp}/d.pfm"], "not a readable image"),
        (["{tmp}/image.png", "--out", "{tmp}/d.png"], "--out must name a .pfm file"),
        (["{tmp}/image.png", "--out", "{tmp}/d.pfm", "--preview", "{tmp}/p.jpg"], "--preview must name a .png"),
        (["{tmp}/image.png", "--out", "{tmp}/d.pfm", "--weights", "{tmp}/garbage.onnx"], "cannot load mono network weights"),
        (["{tmp}/image.png", "--out", "{tmp}/d.pfm", "--weights", "{tmp}/missing.onnx"], "mono network weights not found"),
    ],
    ids=["missing-image", "unreadable-image", "out-not-pfm", "preview-not-png", "garbage-weights", "missing-weights"],
)
def test_cli_mono_bad_input(mono_weights, tmp_path, capsys, arguments, message):
    cv2.imwrite(str(tmp_path / "image.png"), _image(40, 50))
    (tmp_path / "not_an_image.png").write_text("hello")
    (tmp_path / "garbage.onnx").write_text("not an ONNX file")
    arguments = [argument.format(tmp=tmp_path) for argument in arguments]
    if "--weights" not in arguments:
        arguments += ["--weights", mono_weights]
    assert main(["mono", *arguments]) == EXIT_INPUT
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error
    assert not (tmp_path / "d.pfm").exists()
