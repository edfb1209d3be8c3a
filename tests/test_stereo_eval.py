"""Stereo evaluation on a synthetic scene with known disparity, and on real data when present."""

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.datasets import StereoScene, default_data_root, list_stereo_scenes, search_range_px
from benchmarks.stereo_eval import evaluate_methods, evaluate_stereo
from benchmarks.stereo_parity import plain_sgbm
from sensing.errors import InputError
from sensing.stereo import build_matcher
from sensing.types import DisparityMap
from synthetic import write_shifted_scene

SHIFT_PX = 8


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    """A data root with one scene: random texture, the right view shifted by ``SHIFT_PX``."""
    write_shifted_scene(tmp_path / "stereo" / "synthetic" / "shift8", height=96, width=128, shift_px=SHIFT_PX)
    return tmp_path


def sgbm(left: np.ndarray, right: np.ndarray, max_disparity_px: int) -> DisparityMap:
    return build_matcher("sgbm").match(left, right, max_disparity_px=max_disparity_px)


def test_scene_loads_views_and_ground_truth(data_root: Path) -> None:
    (scene,) = list_stereo_scenes(data_root)
    assert (scene.dataset, scene.name) == ("synthetic", "shift8")
    assert scene.left().shape == scene.right().shape == (96, 128, 3)
    gt = scene.disparity_gt()
    assert gt.dtype == np.float32 and np.isinf(gt[:, :SHIFT_PX]).all()
    assert search_range_px(gt) == 9  # ceil(1.1 * 8)


def test_evaluate_stereo_recovers_constant_shift(data_root: Path) -> None:
    seen = []
    report = evaluate_stereo(list_stereo_scenes(data_root), sgbm, method="sgbm", on_scene=seen.append)
    (score,) = report.scenes
    assert seen == [score]
    assert score.bad2 < 0.05 and score.density > 0.9 and score.epe < 0.5
    assert score.size_wh == (128, 96) and score.max_disparity_px == 9 and score.ms > 0

    means = report.dataset_means()
    assert means["synthetic"]["scenes"] == 1 and means["synthetic"]["bad2"] == score.bad2
    payload = json.loads(json.dumps(report.to_dict()))
    assert payload["method"] == "sgbm" and payload["scenes"][0]["scene"] == "shift8"
    assert payload["weights"] is None  # a classical method names no weights
    assert payload["overall"]["bad2"] == score.bad2 and payload["overall"]["datasets"] == 1
    table = report.format_table()
    assert "shift8" in table and "mean of 1" in table and f"{100 * score.bad2:.2f}" in table


def test_evaluate_methods_builds_registered_matchers(data_root: Path) -> None:
    (report,) = evaluate_methods(data_root, ["synthetic"], ["sgbm"])
    assert report.method == "sgbm" and len(report.scenes) == 1
    # The matcher's parameters travel with the figures.
    assert report.settings["block_size"] == 5 and report.settings["mode"] == "3way" and "name" not in report.settings
    assert report.to_dict()["settings"] == report.settings


def test_list_stereo_scenes_errors(tmp_path: Path, data_root: Path) -> None:
    with pytest.raises(InputError, match="data root not found"):
        list_stereo_scenes(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no stereo/ folder"):
        list_stereo_scenes(tmp_path / "empty")
    with pytest.raises(InputError, match=r"unknown stereo dataset.*available: \['synthetic'\]"):
        list_stereo_scenes(data_root, ["kitti"])


@pytest.mark.shared_data
def test_sgbm_on_tsukuba_is_no_worse_than_plain_opencv() -> None:
    folder = default_data_root() / "stereo" / "middlebury2001" / "tsukuba"
    if not folder.is_dir():
        pytest.skip(f"shared data not found at {folder} (set GLASSDEPTH_DATA)")
    scene = StereoScene("middlebury2001", "tsukuba", folder)
    ours, plain = (evaluate_stereo([scene], match, method="m").scenes[0] for match in (sgbm, plain_sgbm))
    assert ours.bad2 < 0.15
    assert ours.bad2 <= plain.bad2
