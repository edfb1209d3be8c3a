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
    # The default: the stereo network, its not-confident pixels kept (no mono fill needed).
    assert report["ok"] and report["depth_source"] == "stereo" and report["reasons"] == []
    assert report["stereo"]["method"] == "net" and report["stereo"]["unconfident_pixels"] == "kept"
    assert [s["name"] for s in report["stages"]] == ["preprocess", "rectify", "stereo", "confidence", "mono", "fusion", "depth"]
    for stage in report["stages"]:
        if stage["name"] in ("mono", "fusion"):
            assert stage["status"] == "skipped"
            continue
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


def _demo_gt_in_rectified(disparity: np.ndarray, P1: np.ndarray) -> np.ndarray:
    """The published Motorcycle disparity at every rectified left pixel (inf where unknown),
    converted to the rectified cameras: d = f'/f · (d_gt + doffs). The demo rig has R = I, so
    its rectification only changes the intrinsics."""
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
    return gt_rect


def test_demo_disparity_matches_ground_truth(demo_result):
    """Confident stereo pixels (confidence.png above the threshold) are right to 2 px; the
    dense map as a whole (the network's own values elsewhere; 12.7 % over 2 px when written,
    SGBM-3way filled with mono 15.7 %) stays close."""
    report = json.loads((demo_result / "report.json").read_text())
    disparity = read_pfm(demo_result / "disparity.pfm")
    gt_rect = _demo_gt_in_rectified(disparity, np.array(report["rectification"]["P1"]))
    confident = cv2.imread(str(demo_result / "confidence.png"), cv2.IMREAD_UNCHANGED) >= 255 * report["stereo"]["confidence_threshold"]
    evaluated = np.isfinite(gt_rect) & np.isfinite(disparity)
    assert evaluated.mean() > 0.5
    stereo = evaluated & confident
    assert np.mean(np.abs(disparity[stereo] - gt_rect[stereo]) > 2) < 0.08
    assert report["stereo"]["unconfident_pixels"] == "kept" and np.isfinite(disparity).all()
    assert np.mean(np.abs(disparity[evaluated] - gt_rect[evaluated]) > 2) < 0.2


@pytest.mark.shared_data
def test_euroc_sequence_gives_plausible_metric_depth(tmp_path):
    if not EUROC.is_dir():
        pytest.skip(f"shared EuRoC capture not found at {EUROC}")
    out = tmp_path / "euroc"
    assert main(["process", str(EUROC), "--frame", "2", "--out", str(out)]) == EXIT_OK
    report = json.loads((out / "report.json").read_text())
    assert report["depth_source"] in ("stereo", "fused")
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


@pytest.mark.shared_data
def test_eval_stereo_command_takes_candidate_net_weights(tmp_path, capsys):
    if not (default_data_root() / "stereo").is_dir():
        pytest.skip(f"shared stereo data not found at {default_data_root()}")
    data = ["--data", str(default_data_root()), "--datasets", "middlebury2001"]
    # The v1 weights (a warm start kept in the repository) are not the shipped default.
    weights = Path(__file__).resolve().parent.parent / "models" / "weights" / "stereo_glass_v1.onnx"
    out = tmp_path / "eval.json"
    assert main(["eval", "stereo", *data, "--method", "net", "--weights", str(weights), "--out", str(out)]) == EXIT_OK
    report = json.loads(out.read_text())["reports"][0]
    assert report["weights"] == "stereo_glass_v1" and report["datasets"]["middlebury2001"]["scenes"] == 2
    assert report["settings"]["weights"] == str(weights)
    assert report["settings"]["fill_out_of_view"] is True and report["settings"]["fill_occluded"] is True
    assert report["settings"]["scales"] == [1.0]
    assert main(["eval", "stereo", *data, "--method", "net", "--net-scales", "1,1.5", "--out", str(out)]) == EXIT_OK
    assert json.loads(out.read_text())["reports"][0]["settings"]["scales"] == [1.0, 1.5]
    # A pipeline config's net settings, overridden by the command line.
    config = tmp_path / "net.yaml"
    config.write_text(f"stereo:\n  method: net\n  params: {{weights: {weights}, fill_occluded: false, scales: [1.5]}}\n")
    arguments = ["--method", "net", "--config", str(config), "--net-scales", "1", "--out", str(out)]
    assert main(["eval", "stereo", *data, *arguments]) == EXIT_OK
    settings = json.loads(out.read_text())["reports"][0]["settings"]
    assert settings["weights"] == str(weights) and settings["fill_occluded"] is False and settings["scales"] == [1.0]
    capsys.readouterr()
    assert main(["eval", "stereo", *data, "--method", "net", "--weights", str(tmp_path / "none.onnx")]) == EXIT_INPUT
    assert "weights not found" in capsys.readouterr().err
    assert main(["eval", "stereo", *data, "--method", "sgbm", "--weights", str(weights)]) == EXIT_INPUT
    assert "--weights and --net-scales apply to the net method" in capsys.readouterr().err


def test_config_errors_are_user_errors(demo_capture, tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("stereo:\n  methd: sgbm\n")
    assert main(["process", str(demo_capture), "--out", str(tmp_path / "o"), "--config", str(config)]) == EXIT_INPUT
    assert "methd" in capsys.readouterr().err
    assert main(["process", str(demo_capture), "--out", str(tmp_path / "o"), "--device", "toaster"]) == EXIT_INPUT
    assert "cpu-2core" in capsys.readouterr().err


# --- online recalibration through the CLI -----------------------------------------------------------------


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def _rectification_rotvec(report: dict) -> np.ndarray:
    return np.array(report["rectification"]["drift_rotvec_deg"])


@pytest.fixture(scope="session")
def demo_base_drift(demo_result) -> np.ndarray:
    """The undrifted demo capture's own estimate (Middlebury's rectification is not perfect)."""
    report = _report(demo_result)
    assert report["rectification"]["online"] is True and report["rectification"]["reliable"] is True
    return _rectification_rotvec(report)


def test_calib_perturb_then_process_recovers_and_corrects_the_drift(demo_capture, demo_base_drift, tmp_path, capsys):
    from calibration.drift import rotation_from_rotvec_deg

    drifted = tmp_path / "drifted"
    assert main(["calib", "perturb", str(demo_capture), "--pitch", "0.5", "--roll", "-0.3", "--out", str(drifted)]) == EXIT_OK
    assert str(drifted) in capsys.readouterr().out
    assert json.loads((drifted / "meta.json").read_text())["simulated_drift_rotvec_deg"] == [0.5, 0.0, -0.3]
    factory = load_calibration(demo_capture / "calibration.json")
    kept = load_calibration(drifted / "calibration.json")
    np.testing.assert_array_equal(kept.R, factory.R)
    np.testing.assert_array_equal(kept.T, factory.T)
    assert (drifted / "left.png").read_bytes() == (demo_capture / "left.png").read_bytes()
    assert not list(tmp_path.glob(".drifted.*"))

    out = tmp_path / "out"
    assert main(["process", str(drifted), "--out", str(out)]) == EXIT_OK
    report = _report(out)
    assert report["depth_source"] in ("stereo", "fused") and report["reasons"] == []
    rectification = report["rectification"]
    assert rectification["reliable"] is True and rectification["reasons"] == []
    estimated = _rectification_rotvec(report)
    assert abs(estimated[0] - 0.5) <= 0.03 and abs(estimated[2] + 0.3) <= 0.03, estimated
    # Relative to the pair's own imperfection the recovery is tighter still.
    assert abs(estimated[0] - demo_base_drift[0] - 0.5) <= 0.02 and abs(estimated[2] - demo_base_drift[2] + 0.3) <= 0.02
    assert rectification["residual_vertical_px"]["median"] < 0.3
    assert rectification["residual_vertical_before_px"]["median"] > 3.0  # f = 859 px: 0.5 deg is ~7.5 px
    assert rectification["inliers"] >= report["config"]["rectification"]["min_inliers"]

    corrected = load_calibration(out / "calibration_corrected.json")
    R_drift = rotation_from_rotvec_deg(estimated)
    np.testing.assert_allclose(corrected.R, R_drift @ factory.R, atol=1e-6)
    np.testing.assert_allclose(corrected.T, R_drift @ factory.T, atol=1e-8)
    assert corrected.baseline_m == pytest.approx(factory.baseline_m, rel=1e-9)
    assert corrected.left == factory.left and corrected.right == factory.right

    # Closing the loop: the drifted capture with the corrected calibration shows no drift left.
    shutil.copy(out / "calibration_corrected.json", drifted / "calibration.json")
    again = tmp_path / "again"
    assert main(["process", str(drifted), "--out", str(again)]) == EXIT_OK
    residual = _rectification_rotvec(_report(again))
    assert np.all(np.abs(residual[[0, 2]]) <= 0.03), residual
    assert _report(again)["rectification"]["residual_vertical_before_px"]["median"] < 0.3


def _unrelated_views(folder: Path) -> None:
    from skimage import data

    size = cv2.imread(str(folder / "left.png")).shape[1::-1]
    cv2.imwrite(str(folder / "left.png"), cv2.resize(data.astronaut()[:, :, ::-1], size, interpolation=cv2.INTER_AREA))
    cv2.imwrite(str(folder / "right.png"), cv2.resize(data.coffee()[:, :, ::-1], size, interpolation=cv2.INTER_AREA))


def test_unrelated_views_fall_back_to_mono_and_write_no_corrected_calibration(demo_capture, demo_result, tmp_path, capsys):
    """An unrelated right image: rectification is unreliable, stereo is skipped and the mono
    network gives a usable relative disparity of the left view (no metric depth)."""
    capture = _copy_capture(demo_capture, tmp_path / "capture")
    _unrelated_views(capture)
    out = tmp_path / "out"
    # A previous good result in the same folder: its corrected calibration must not survive.
    shutil.copytree(demo_result, out)
    (out / "calibration_corrected.json").write_text("{}")
    assert main(["process", str(capture), "--out", str(out)]) == EXIT_OK
    assert "depth source: mono" in capsys.readouterr().out
    report = _report(out)
    assert report["ok"] is True and report["depth_source"] == "mono" and report["disparity_units"] == "relative"
    assert report["reasons"][0].startswith("rectification unreliable") and "monocular" in report["reasons"][-1]
    assert report["rectification"]["reliable"] is False and report["rectification"]["reasons"]
    assert not (out / "calibration_corrected.json").exists()
    disparity = read_pfm(out / "disparity.pfm")
    assert np.isfinite(disparity).all() and disparity.min() >= 0.0 and disparity.max() <= 1.0
    # Usable: the relative disparity of the left view follows the scene's true disparity.
    gt = _demo_gt_in_rectified(disparity, np.array(report["rectification"]["P1"]))
    known = np.isfinite(gt)
    assert known.mean() > 0.5
    assert np.corrcoef(disparity[known], gt[known])[0, 1] > 0.5
    assert not cv2.imread(str(out / "depth.png"), cv2.IMREAD_UNCHANGED).any()
    assert report["depth"] is None
    statuses = {s["name"]: s["status"] for s in report["stages"]}
    assert statuses["stereo"] == "skipped" and statuses["rectify"] == "ok" and statuses["mono"] == "ok"


def test_calib_perturb_missing_capture_is_a_user_error(tmp_path, capsys):
    out = tmp_path / "x"
    assert main(["calib", "perturb", str(tmp_path / "missing"), "--pitch", "0.5", "--out", str(out)]) == EXIT_INPUT
    error = capsys.readouterr().err.strip()
    assert error.startswith("glassdepth: error:") and "\n" not in error and "capture not found" in error
    assert not out.exists() and not list(tmp_path.glob(".x.*"))


@pytest.mark.parametrize("angle", [["--pitch", "nan"], ["--roll", "inf"], ["--yaw", "90"]])
def test_calib_perturb_rejects_impossible_angles(demo_capture, tmp_path, capsys, angle):
    out = tmp_path / "x"
    assert main(["calib", "perturb", str(demo_capture), *angle, "--out", str(out)]) == EXIT_INPUT
    error = capsys.readouterr().err.strip()
    assert error.startswith("glassdepth: error:") and "\n" not in error and "--pitch/--yaw/--roll" in error
    assert not out.exists()


def test_calib_perturb_bad_number_is_a_usage_error(demo_capture, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["calib", "perturb", str(demo_capture), "--pitch", "half", "--out", str(tmp_path / "x")])
    assert exit_info.value.code == EXIT_INPUT
    assert "invalid float value" in capsys.readouterr().err


@pytest.mark.shared_data
def test_euroc_pitch_drift_is_recovered(tmp_path):
    if not EUROC.is_dir():
        pytest.skip(f"shared EuRoC capture not found at {EUROC}")
    drifted = tmp_path / "drifted"
    assert main(["calib", "perturb", str(EUROC), "--frame", "2", "--pitch", "1", "--out", str(drifted)]) == EXIT_OK
    meta = json.loads((drifted / "meta.json").read_text())
    assert meta["frame"] == 2 and meta["simulated_drift_rotvec_deg"] == [1.0, 0.0, 0.0]
    out = tmp_path / "out"
    assert main(["process", str(drifted), "--out", str(out)]) == EXIT_OK
    report = _report(out)
    assert report["depth_source"] in ("stereo", "fused") and report["rectification"]["reliable"] is True
    estimated = _rectification_rotvec(report)
    assert estimated[0] == pytest.approx(1.0, abs=0.03), estimated
    assert abs(estimated[2]) <= 0.03
    assert report["rectification"]["residual_vertical_px"]["median"] < 0.3
    assert (out / "calibration_corrected.json").is_file()
