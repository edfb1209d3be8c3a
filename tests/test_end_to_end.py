"""End-to-end: the CLI on the demo capture and on the shared EuRoC capture, and every
bad-input case ending with a one-line message, a documented exit code and no output."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks.datasets import default_data_root
from calibration.io import load_calibration
from sensing.cli import EXIT_INPUT, EXIT_OK, EXIT_STOPPED, main
from sensing.demo_capture import build_demo_capture, demo_calibration, demo_ground_truth
from sensing.fileio import read_pfm

EUROC = default_data_root() / "captures" / "euroc_V1_01_easy"


@pytest.fixture(scope="session")
def demo_capture(tmp_path_factory) -> Path:
    return build_demo_capture(tmp_path_factory.mktemp("demo") / "capture")


@pytest.fixture(scope="session")
def demo_result(demo_capture, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo_result") / "out"
    assert main(["process", str(demo_capture), "--out", str(out)]) == EXIT_OK
    return out


def _copy_capture(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def test_demo_outputs_are_complete_and_consistent(demo_result):
    report = json.loads((demo_result / "report.json").read_text())
    assert report["ok"] and report["depth_source"] == "stereo" and report["reasons"] == []
    assert [s["name"] for s in report["stages"]] == ["preprocess", "rectify", "stereo", "confidence", "depth"]
    for stage in report["stages"]:
        assert stage["status"] == "ok" and stage["ms"] > 0 and stage["peak_rss_mb"] > 0
        assert stage["within_budget"] == (stage["ms"] <= stage["budget_ms"])
    assert report["config"]["preprocess"]["long_side_px"] == 640
    disparity = read_pfm(demo_result / "disparity.pfm")
    depth_mm = cv2.imread(str(demo_result / "depth.png"), cv2.IMREAD_UNCHANGED)
    confidence = cv2.imread(str(demo_result / "confidence.png"), cv2.IMREAD_UNCHANGED)
    width, height = report["rectification"]["size_wh"]
    assert disparity.shape == depth_mm.shape == confidence.shape == (height, width)
    assert depth_mm.dtype == np.uint16 and confidence.dtype == np.uint8
    known = np.isfinite(disparity)
    assert np.array_equal(known, depth_mm > 0)
    focal, baseline = report["rectification"]["focal_px"], report["rectification"]["baseline_m"]
    np.testing.assert_allclose(depth_mm[known], 1000 * focal * baseline / disparity[known], rtol=2e-3, atol=1)
    assert max(width, height) <= 640


def test_demo_disparity_matches_ground_truth(demo_result):
    """Map every rectified pixel back to the ideal (undistorted) Motorcycle view and compare
    with the published disparity converted to the rectified cameras: d = f'/f · (d_gt + doffs).
    The demo rig has R = I, so its rectification only changes the intrinsics."""
    disparity = read_pfm(demo_result / "disparity.pfm")
    P1 = np.array(json.loads((demo_result / "report.json").read_text())["rectification"]["P1"])
    ideal = demo_calibration().left
    doffs = demo_calibration().right.cx - ideal.cx
    height, width = disparity.shape
    ys, xs = np.mgrid[0:height, 0:width]
    ideal_x = np.rint(ideal.fx * (xs - P1[0, 2]) / P1[0, 0] + ideal.cx).astype(int)
    ideal_y = np.rint(ideal.fy * (ys - P1[1, 2]) / P1[1, 1] + ideal.cy).astype(int)
    gt = demo_ground_truth()
    inside = (ideal_x >= 0) & (ideal_x < gt.shape[1]) & (ideal_y >= 0) & (ideal_y < gt.shape[0])
    gt_rect = np.full(disparity.shape, np.inf, np.float32)
    gt_rect[inside] = (gt[ideal_y[inside], ideal_x[inside]] + doffs) * P1[0, 0] / ideal.fx
    evaluated = np.isfinite(gt_rect) & np.isfinite(disparity)
    assert evaluated.mean() > 0.5
    assert np.mean(np.abs(disparity[evaluated] - gt_rect[evaluated]) > 2) < 0.08


@pytest.mark.shared_data
def test_euroc_sequence_gives_plausible_metric_depth(tmp_path):
    if not EUROC.is_dir():
        pytest.skip(f"shared EuRoC capture not found at {EUROC}")
    out = tmp_path / "euroc"
    assert main(["process", str(EUROC), "--frame", "2", "--out", str(out)]) == EXIT_OK
    report = json.loads((out / "report.json").read_text())
    assert report["depth_source"] == "stereo"
    assert abs(report["rectification"]["baseline_m"] - 0.110) < 0.002
    # The Vicon room of V1_01: walls and floor 1-5 m from the drone.
    assert 1.0 < report["depth"]["median_m"] < 5.0
    assert report["input"]["meta"]["frame"] == 2


def test_process_console_script_reports_errors_in_one_line(tmp_path):
    """Through the installed entry point: a user error prints one line, no traceback."""
    out = tmp_path / "out"
    completed = subprocess.run(
        [sys.executable, "-m", "sensing.cli", "process", str(tmp_path / "missing"), "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == EXIT_INPUT
    assert completed.stderr.strip().count("\n") == 0
    assert "Traceback" not in completed.stderr and "capture not found" in completed.stderr
    assert not out.exists()


def _swap(folder: Path) -> None:
    (folder / "left.png").rename(folder / "tmp.png")
    (folder / "right.png").rename(folder / "left.png")
    (folder / "tmp.png").rename(folder / "right.png")


def _edit_calibration(folder: Path, edit) -> None:
    data = json.loads((folder / "calibration.json").read_text())
    edit(data)
    (folder / "calibration.json").write_text(json.dumps(data))


def _black_right(folder: Path) -> None:
    image = cv2.imread(str(folder / "right.png"))
    cv2.imwrite(str(folder / "right.png"), np.zeros_like(image))


def _identical(folder: Path) -> None:
    shutil.copy(folder / "left.png", folder / "right.png")


def _mismatched(folder: Path) -> None:
    image = cv2.imread(str(folder / "right.png"))
    cv2.imwrite(str(folder / "right.png"), cv2.resize(image, (640, 480)))


BAD_INPUTS = {
    "missing left image": (lambda f: (f / "left.png").unlink(), EXIT_INPUT, "no left image"),
    "unreadable image": (lambda f: (f / "right.png").write_bytes(b"not a png"), EXIT_INPUT, "not a readable image"),
    "mismatched sizes": (_mismatched, EXIT_INPUT, "but its calibration is for"),
    "NaN in calibration": (lambda f: _edit_calibration(f, lambda d: d["left"].update(fx=float("nan"))), EXIT_INPUT, "left.fx"),
    "zero focal length": (lambda f: _edit_calibration(f, lambda d: d["right"].update(fy=0.0)), EXIT_INPUT, "right.fy must be positive"),
    "missing calibration": (lambda f: (f / "calibration.json").unlink(), EXIT_INPUT, "no calibration file"),
    "identical views": (_identical, EXIT_STOPPED, "identical"),
    "black view": (_black_right, EXIT_STOPPED, "right view is black"),
    "swapped views": (_swap, EXIT_STOPPED, "swapped"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gives_clear_message_and_no_output(case, demo_capture, tmp_path, capsys):
    damage, exit_code, message = BAD_INPUTS[case]
    capture = _copy_capture(demo_capture, tmp_path / "capture")
    damage(capture)
    out = tmp_path / "out"
    assert main(["process", str(capture), "--out", str(out)]) == exit_code
    error = capsys.readouterr().err.strip()
    assert error.startswith("glassdepth: error:") and "\n" not in error
    assert message in error
    assert not out.exists()
    assert not list(tmp_path.glob(".out.*"))


def test_stereo_command_on_rectified_pair(tmp_path, capsys):
    from skimage.data import stereo_motorcycle

    left, right, _ = stereo_motorcycle()
    cv2.imwrite(str(tmp_path / "l.png"), left[:, :, ::-1])
    cv2.imwrite(str(tmp_path / "r.png"), right[:, :, ::-1])
    out = tmp_path / "disp.pfm"
    assert main(["stereo", str(tmp_path / "l.png"), str(tmp_path / "r.png"), "--out", str(out), "--max-disparity", "80"]) == EXIT_OK
    disparity = read_pfm(out)
    gt = demo_ground_truth()
    assert disparity.shape == gt.shape
    evaluated = np.isfinite(gt)
    with np.errstate(invalid="ignore"):
        bad2 = np.mean(~(np.abs(disparity - gt) <= 2)[evaluated])
    assert bad2 < 0.2
    assert main(["stereo", str(tmp_path / "l.png"), str(tmp_path / "missing.png"), "--out", str(out)]) == EXIT_INPUT


def test_demo_command(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "demo")]) == EXIT_OK
    printed = capsys.readouterr().out
    assert "depth source: stereo" in printed and str(tmp_path / "demo" / "result") in printed
    load_calibration(tmp_path / "demo" / "capture" / "calibration.json")


@pytest.mark.shared_data
def test_eval_stereo_command_writes_results(tmp_path, capsys):
    if not (default_data_root() / "stereo").is_dir():
        pytest.skip(f"shared stereo data not found at {default_data_root()}")
    out = tmp_path / "eval.json"
    code = main(["eval", "stereo", "--data", str(default_data_root()), "--datasets", "middlebury2001", "--out", str(out)])
    assert code == EXIT_OK
    payload = json.loads(out.read_text())
    means = payload["reports"][0]["datasets"]["middlebury2001"]
    assert means["scenes"] == 2 and means["bad2"] < 0.1
    assert main(["eval", "stereo", "--data", str(tmp_path / "nowhere")]) == EXIT_INPUT


def test_config_errors_are_user_errors(demo_capture, tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("stereo:\n  methd: sgbm\n")
    assert main(["process", str(demo_capture), "--out", str(tmp_path / "o"), "--config", str(config)]) == EXIT_INPUT
    assert "methd" in capsys.readouterr().err
    assert main(["process", str(demo_capture), "--out", str(tmp_path / "o"), "--device", "toaster"]) == EXIT_INPUT
    assert "cpu-2core" in capsys.readouterr().err
