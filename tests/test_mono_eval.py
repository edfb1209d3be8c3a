"""Mono evaluation: the vertical-gradient prior, the aggregation and pass flags of ``eval_mono``
on synthetic scenes with stand-in estimators, and the real network on one shared scene."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmarks.datasets import StereoScene, default_data_root
from benchmarks.metrics import relative_depth_errors
from benchmarks.mono_eval import eval_mono, format_mono_eval, score_scene, vertical_gradient_disparity
from sensing.cli import EXIT_INPUT, EXIT_OK, main
from sensing.errors import InputError
from sensing.fileio import write_json_atomic
from sensing.mono import MonoEstimator

HEIGHT, WIDTH = 48, 64


def _row_ramp() -> np.ndarray:
    """Ground truth growing linearly towards the bottom (a ground plane), with unknown holes."""
    gt = np.broadcast_to(4.0 + 0.5 * np.arange(HEIGHT, dtype=np.float32)[:, None], (HEIGHT, WIDTH)).copy()
    gt[5:9, 10:30] = np.inf
    return gt


def _column_ramp() -> np.ndarray:
    """Ground truth growing towards the right: rows carry no information about it."""
    return np.broadcast_to(2.0 + 0.5 * np.arange(WIDTH, dtype=np.float32)[None, :], (HEIGHT, WIDTH)).copy()


def _write_scene(root: Path, dataset: str, name: str, gt: np.ndarray) -> None:
    """A scene whose left view's blue channel encodes the ground truth (for :class:`GtReader`)."""
    folder = root / "stereo" / dataset / name
    folder.mkdir(parents=True)
    known = np.where(np.isfinite(gt), gt, 0.0)
    left = np.dstack([np.round(known * 4.0).astype(np.uint8)] * 3)
    cv2.imwrite(str(folder / "left.png"), left)
    cv2.imwrite(str(folder / "right.png"), left)
    cv2.imwrite(str(folder / "disp_left.pfm"), gt.astype(np.float32))


class _StandIn:
    """An estimator with the interface :func:`eval_mono` uses, predicting from the image alone."""

    def __init__(self, weights: Path, predict) -> None:
        weights.write_bytes(b"stand-in")
        self.weights = str(weights)
        self._predict = predict

    @property
    def properties(self) -> dict:
        return {"stride": 1, "long_side_px": WIDTH, "info": {"name": "stand-in", "train_scenes": ["synthetic/column"]}}

    def predict(self, image: np.ndarray) -> np.ndarray:
        return self._predict(image)


def _perfect(image: np.ndarray) -> np.ndarray:
    return image[:, :, 0].astype(np.float32)  # the scene encodes its disparity in the image


def _flat(image: np.ndarray) -> np.ndarray:
    return np.random.default_rng(0).random(image.shape[:2], dtype=np.float32)


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    _write_scene(root, "synthetic", "row", _row_ramp())
    _write_scene(root, "synthetic", "column", _column_ramp())
    _write_scene(root, "other", "column", _column_ramp())
    return root


def test_vertical_gradient_is_the_row_index():
    prior = vertical_gradient_disparity((3, 5))
    assert prior.shape == (3, 5) and prior.dtype == np.float32
    np.testing.assert_array_equal(prior, [[0] * 5, [1] * 5, [2] * 5])
    with pytest.raises(ValueError):
        vertical_gradient_disparity((0, 5))


def test_vertical_gradient_fits_a_ground_plane_exactly():
    errors = relative_depth_errors(vertical_gradient_disparity((HEIGHT, WIDTH)), _row_ramp())
    assert errors["abs_rel"] < 1e-6
    assert errors["delta1"] == 1.0
    assert errors["rmse_px"] < 1e-4


def test_vertical_gradient_is_not_fitted_to_the_ground_truth():
    # A plane fitted to this truth would be exact; the row prior knows nothing about columns.
    errors = relative_depth_errors(vertical_gradient_disparity((HEIGHT, WIDTH)), _column_ramp())
    assert errors["abs_rel"] > 0.3
    assert errors["delta1"] < 0.5


def test_score_scene_scores_net_and_prior_on_the_same_pixels(data_root, tmp_path):
    scene = StereoScene("synthetic", "row", data_root / "stereo" / "synthetic" / "row")
    score = score_scene(scene, _StandIn(tmp_path / "w.onnx", _flat))
    assert score.baseline["abs_rel"] < 1e-6
    assert score.net["abs_rel"] > 0.1
    assert score.size_wh == (WIDTH, HEIGHT)
    assert score.evaluated_px == HEIGHT * WIDTH - 4 * 20
    assert score.net_ms >= 0


def test_eval_mono_aggregates_and_flags(data_root, tmp_path):
    seen = []
    estimator = _StandIn(tmp_path / "perfect.onnx", _perfect)
    results = eval_mono(data_root, datasets=["synthetic", "other"], estimator=estimator, on_scene=seen.append)
    assert [f"{s.dataset}/{s.scene}" for s in seen] == ["other/column", "synthetic/column", "synthetic/row"]
    assert results["datasets_evaluated"] == ["other", "synthetic"]
    assert results["trained_on_evaluated_scenes"] == ["synthetic/column"]
    assert results["weights"]["path"] == estimator.weights and results["weights"]["info"]["name"] == "stand-in"
    for scene in results["scenes"]:
        # The image quantises the disparity to 1/4 px: the stand-in is nearly exact.
        assert scene["net"]["abs_rel"] < 0.02 and scene["net"]["delta1"] == 1.0
    synthetic = results["datasets"]["synthetic"]
    assert synthetic["scenes"] == 2
    baseline_scenes = [s["baseline"]["abs_rel"] for s in results["scenes"] if s["dataset"] == "synthetic"]
    assert synthetic["baseline"]["abs_rel"] == pytest.approx(np.mean(baseline_scenes))
    assert synthetic["baseline_to_net_abs_rel"] == pytest.approx(synthetic["baseline"]["abs_rel"] / synthetic["net"]["abs_rel"])
    assert synthetic["pass"] == {"abs_rel": True, "delta1": True, "beats_baseline": True, "all": True}
    overall = results["overall"]
    assert overall["datasets"] == 2 and overall["all_datasets_pass"]
    # The overall mean weighs datasets equally, not scenes.
    other = results["datasets"]["other"]
    assert overall["net"]["abs_rel"] == pytest.approx((synthetic["net"]["abs_rel"] + other["net"]["abs_rel"]) / 2)
    saved = write_json_atomic(tmp_path / "eval.json", results)
    assert json.loads(saved.read_text())["overall"]["pass"]["all"] is True

    text = format_mono_eval(results)
    rows = [line.split()[:2] for line in text.splitlines()]
    assert ["other", "column"] in rows and ["synthetic", "row"] in rows and ["overall", "mean"] in rows
    assert text.count("PASS") == 3 and "all datasets pass: yes" in text
    assert "trained on evaluated scenes ['synthetic/column']" in text


def test_eval_mono_fails_a_net_no_better_than_the_prior(data_root, tmp_path):
    results = eval_mono(data_root, datasets=["synthetic"], estimator=_StandIn(tmp_path / "flat.onnx", _flat))
    flags = results["datasets"]["synthetic"]["pass"]
    assert flags["beats_baseline"] is False and flags["all"] is False
    assert flags["abs_rel"] is False
    assert not results["overall"]["all_datasets_pass"]
    assert "FAIL" in format_mono_eval(results) and "all datasets pass: NO" in format_mono_eval(results)


def test_eval_mono_bad_datasets(data_root, tmp_path):
    estimator = _StandIn(tmp_path / "w.onnx", _perfect)
    with pytest.raises(InputError, match="unknown stereo dataset"):
        eval_mono(data_root, datasets=["kitti2015"], estimator=estimator)
    with pytest.raises(InputError, match="unknown stereo dataset"):
        eval_mono(data_root, estimator=estimator)  # the default datasets are not in this root
    with pytest.raises(InputError, match="data root not found"):
        eval_mono(tmp_path / "nowhere", datasets=["synthetic"], estimator=estimator)


def test_cli_eval_mono(data_root, tmp_path, mono_weights, capsys):
    out = tmp_path / "eval_mono.json"
    arguments = ["eval", "mono", "--data", str(data_root), "--datasets", "synthetic", "--weights", mono_weights]
    assert main([*arguments, "--out", str(out)]) == EXIT_OK
    saved = json.loads(out.read_text())
    assert saved["weights"]["path"] == mono_weights and len(saved["scenes"]) == 2
    assert f"wrote {out}" in capsys.readouterr().out
    assert main([*arguments[:-1], str(tmp_path / "missing.onnx"), "--out", str(out)]) == EXIT_INPUT
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "mono network weights not found" in error


@pytest.mark.shared_data
def test_eval_mono_on_one_shared_scene(mono_weights):
    root = default_data_root()
    if not (root / "stereo" / "eth3d" / "playground" / "disp_left.pfm").is_file():
        pytest.skip(f"shared data not found at {root} (set GLASSDEPTH_DATA)")
    results = eval_mono(root, datasets=["eth3d"], estimator=MonoEstimator(weights=mono_weights))
    (scene,) = [s for s in results["scenes"] if s["scene"] == "playground"]
    gt = StereoScene("eth3d", "playground", root / "stereo" / "eth3d" / "playground").disparity_gt()
    assert tuple(scene["size_wh"]) == (gt.shape[1], gt.shape[0])
    assert scene["baseline"] == pytest.approx(relative_depth_errors(vertical_gradient_disparity(gt.shape), gt))
    for method in ("net", "baseline"):
        assert 0.0 <= scene[method]["abs_rel"] < 10.0 and 0.0 <= scene[method]["delta1"] <= 1.0
    assert results["trained_on_evaluated_scenes"] == []  # the evaluation datasets are held out
    assert set(results["datasets"]["eth3d"]["pass"]) == {"abs_rel", "delta1", "beats_baseline", "all"}
