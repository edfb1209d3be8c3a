"""The shipped stereo network in the pipeline: end to end on the demo capture, confidence from
the network and the left-right check, and an inference path that never imports torch."""

import json
import subprocess
import sys

import numpy as np
import pytest

from sensing.cli import EXIT_INPUT, EXIT_OK, main
from sensing.config import CONFIG_DIR, config_from_dict, load_config
from sensing.demo_capture import build_demo_capture
from sensing.pipeline import run_pipeline
from sensing.capture import load_capture
from sensing.stereo import DEFAULT_NET_WEIGHTS, build_matcher, onnx_session
from sensing.mono import DEFAULT_MONO_WEIGHTS

pytestmark = pytest.mark.skipif(not DEFAULT_NET_WEIGHTS.is_file(), reason=f"no shipped weights at {DEFAULT_NET_WEIGHTS}")


@pytest.fixture(scope="module")
def demo_capture(tmp_path_factory):
    return build_demo_capture(tmp_path_factory.mktemp("net_demo") / "capture")


def test_pipeline_with_the_network_uses_its_confidence(demo_capture):
    config = config_from_dict({"stereo": {"method": "net"}})
    assert config == config_from_dict({})  # the default
    result = run_pipeline(load_capture(demo_capture), config)
    assert result.ok and result.depth_source == "stereo", result.reasons
    assert result.details["stereo"]["method"] == "net"
    assert set(result.confidence.cues) == {"network", "left_right"}
    product = result.confidence.cues["network"] * result.confidence.cues["left_right"]
    np.testing.assert_allclose(result.confidence.values, product, atol=1e-6)
    assert result.details["stereo"]["confident_coverage"] > 0.5


def test_process_command_with_the_network(demo_capture, tmp_path):
    config_file = tmp_path / "net.yaml"
    config_file.write_text("stereo:\n  method: net\n")
    out = tmp_path / "out"
    assert main(["process", str(demo_capture), "--out", str(out), "--config", str(config_file)]) == EXIT_OK
    report = json.loads((out / "report.json").read_text())
    assert report["stereo"]["method"] == "net" and report["depth_source"] in ("stereo", "fused")


def test_quality_config_runs_the_two_pass_network_at_two_scales(monkeypatch, demo_capture):
    """configs/stereo_quality.yaml names files relative to the repository root."""
    monkeypatch.chdir(CONFIG_DIR.parent)
    config = load_config(CONFIG_DIR / "stereo_quality.yaml")
    matcher = build_matcher(config.stereo.method, threads=1, **config.stereo.params)
    assert matcher.scales == (1.0, 1.5) and matcher.fill_occluded
    assert json.loads(onnx_session(matcher.weights, 1).get_modelmeta().custom_metadata_map["glassdepth.info"])["refine_passes"] == 2
    result = run_pipeline(load_capture(demo_capture), config)
    assert result.ok and result.details["stereo"]["method"] == "net", result.reasons


def test_stereo_command_with_net_weights(tmp_path, capsys):
    import cv2
    from skimage.data import stereo_motorcycle

    left, right, _ = stereo_motorcycle()
    views = [str(tmp_path / name) for name in ("l.png", "r.png")]
    for path, view in zip(views, (left, right)):
        cv2.imwrite(path, view[:, :, ::-1])
    out = tmp_path / "disp.pfm"
    command = ["stereo", *views, "--out", str(out), "--max-disparity", "80"]
    assert main([*command, "--method", "net", "--weights", str(DEFAULT_NET_WEIGHTS)]) == EXIT_OK and out.is_file()
    out.unlink()
    assert main([*command, "--weights", str(DEFAULT_NET_WEIGHTS)]) == EXIT_OK  # net: the default method
    out.unlink()
    assert main([*command, "--method", "sgbm", "--weights", str(DEFAULT_NET_WEIGHTS)]) == EXIT_INPUT
    assert "--weights and --net-scales apply to the net method" in capsys.readouterr().err
    assert main([*command, "--method", "net", "--weights", str(tmp_path / "missing.onnx")]) == EXIT_INPUT
    assert "stereo network weights not found" in capsys.readouterr().err
    assert main([*command, "--method", "net", "--weights", str(DEFAULT_MONO_WEIGHTS)]) == EXIT_INPUT
    assert "not a glassdepth stereo network export" in capsys.readouterr().err
    assert not out.exists()
    assert main([*command, "--method", "net", "--net-scales", "1,1.5"]) == EXIT_OK and out.is_file()
    out.unlink()
    assert main([*command, "--method", "sgbm", "--net-scales", "1,1.5"]) == EXIT_INPUT
    assert "--net-scales apply to the net method" in capsys.readouterr().err
    assert main([*command, "--method", "net", "--net-scales", "0"]) == EXIT_INPUT
    assert "net scales must be one or more factors" in capsys.readouterr().err
    assert not out.exists()


def test_inference_does_not_import_torch():
    code = (
        "import sys, numpy as np\n"
        "from sensing.stereo import build_matcher\n"
        "import sensing.cli, sensing.pipeline\n"
        "rng = np.random.default_rng(0)\n"
        "left = rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)\n"
        "right = np.roll(left, -4, axis=1)\n"
        "d = build_matcher('net').match(left, right, max_disparity_px=32)\n"
        "assert d.values_px.shape == (64, 96)\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
