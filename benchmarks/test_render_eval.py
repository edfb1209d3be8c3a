"""Novel-view evaluation on a synthetic scene with exactly known views, and its CLI."""

import json
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import pytest

from benchmarks.datasets import list_stereo_scenes
from benchmarks.render_eval import (
    RenderEvalReport,
    RenderScore,
    evaluate_render,
    masked_scores,
    naive_forward_warp,
    pooled_psnr,
    right_view_visibility,
)
from sensing.cli import EXIT_INPUT, EXIT_OK, main

#: The square (x0, y0, x1, y1, ends exclusive) at 20 px in front of a textured plane at 8 px.
X0, Y0, X1, Y1 = 140, 70, 230, 170


class Pair(NamedTuple):
    left: np.ndarray
    right: np.ndarray
    disparity: np.ndarray


def make_layered_pair(height: int = 240, width: int = 320) -> Pair:
    """Exact views (integer shifts of random smooth textures) of the square over the plane."""
    rng = np.random.default_rng(0)

    def texture(h: int, w: int) -> np.ndarray:
        noise = rng.integers(0, 256, (h // 4, w // 4, 3), dtype=np.uint8)
        return cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)

    background, square = texture(height, width + 20), texture(Y1 - Y0, X1 - X0)
    right = background[:, 20:].copy()
    right[Y0:Y1, X0 - 20 : X1 - 20] = square
    left = background[:, 12 : 12 + width].copy()
    left[Y0:Y1, X0:X1] = square
    disparity = np.full((height, width), 8.0, np.float32)
    disparity[Y0:Y1, X0:X1] = 20.0
    return Pair(left, right, disparity)


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    pair = make_layered_pair()
    folder = tmp_path / "stereo" / "synthetic" / "square"
    folder.mkdir(parents=True)
    cv2.imwrite(str(folder / "left.png"), pair.left)
    cv2.imwrite(str(folder / "right.png"), pair.right)
    cv2.imwrite(str(folder / "disp_left.pfm"), pair.disparity)
    return tmp_path


def test_visibility_of_a_square_over_a_plane():
    pair = make_layered_pair()
    covisible, disoccluded = right_view_visibility(pair.disparity)
    assert not (covisible & disoccluded).any()
    assert disoccluded.sum() == (Y1 - Y0) * (20 - 8)  # the gap right of the moved square
    # The right border strip (its scene lies right of the left frame) is in neither set.
    assert not covisible[:, -8:].any() and not disoccluded[:, -8:].any()
    assert covisible[:, : 320 - 8].mean() > 0.98


def test_unknown_ground_truth_is_excluded():
    pair = make_layered_pair()
    gt = pair.disparity.copy()
    gt[Y0:Y1, X1 - 14 : X1 + 4] = np.inf  # unknown across the square's right border
    _, disoccluded = right_view_visibility(gt)
    # Right pixels the unknown left pixels could reach are not called disoccluded.
    assert not disoccluded[Y0:Y1, X1 - 34 : X1 - 4].any()


def test_naive_warp_is_exact_where_covisible():
    pair = make_layered_pair()
    covisible, _ = right_view_visibility(pair.disparity)
    naive = naive_forward_warp(pair.left, pair.disparity)
    assert np.array_equal(naive[covisible], pair.right[covisible])


def _score(scene: str, disoccluded_pixels: int, mse_disoccluded: float) -> RenderScore:
    psnr = 10 * np.log10(255.0**2 / mse_disoccluded)
    return RenderScore(
        "set", scene, "gt", "layered", 40.0, 0.99, psnr, 0.5, 0.9, disoccluded_pixels / 1e4, 1.0,
        255.0**2 * 1e-4, mse_disoccluded, 9000, disoccluded_pixels,
    )


def test_pooled_psnr_weights_scenes_by_their_pixels():
    big, small = _score("big", 1000, 100.0), _score("small", 10, 1.0)
    pooled = 10 * np.log10(255.0**2 / ((1000 * 100.0 + 10 * 1.0) / 1010))
    assert pooled_psnr([big, small], "disoccluded") == pytest.approx(pooled)
    means = RenderEvalReport([big, small], "sgbm", {}).means()["set"]["gt/layered"]
    assert means["psnr_disoccluded_pooled"] == pytest.approx(pooled)
    # The per-scene mean lets the 10-pixel scene pull the figure up by ~10 dB.
    assert means["psnr_disoccluded"] == pytest.approx((big.psnr_disoccluded + small.psnr_disoccluded) / 2)
    assert means["psnr_disoccluded"] > pooled + 9
    assert means["psnr_covisible_pooled"] == pytest.approx(40.0)
    assert np.isnan(pooled_psnr([_score("none", 0, 1.0)], "disoccluded"))


def test_masked_scores_mse_matches_psnr():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    rendered = np.clip(truth.astype(int) + rng.integers(-9, 10, truth.shape), 0, 255).astype(np.uint8)
    mask = np.zeros((20, 30), bool)
    mask[5:15, 10:20] = True
    psnr, _, mse = masked_scores(rendered, truth, mask, np.ones((20, 30, 3)))
    assert mse > 0 and psnr == pytest.approx(10 * np.log10(255.0**2 / mse))
    assert masked_scores(truth, truth, mask, np.ones((20, 30, 3)))[2] == 0.0
    assert all(np.isnan(v) for v in masked_scores(rendered, truth, np.zeros_like(mask), np.ones((20, 30, 3))))


def test_evaluate_render_scores_both_methods_and_disparities(data_root):
    seen = []
    report = evaluate_render(list_stereo_scenes(data_root), on_scene=seen.append)
    assert seen == ["synthetic/square"]
    keys = {(s.disparity, s.method) for s in report.scores}
    assert keys == {("gt", "layered"), ("gt", "naive"), ("net", "layered"), ("net", "naive")}  # the pipeline's matcher
    gt_layered = next(s for s in report.scores if (s.disparity, s.method) == ("gt", "layered"))
    assert gt_layered.psnr_covisible > 40 and gt_layered.ssim_covisible > 0.98
    assert 0 < gt_layered.disoccluded_fraction < 0.05
    payload = json.loads(json.dumps(report.to_dict()))
    assert payload["datasets"]["synthetic"]["gt/layered"]["scenes"] == 1
    # One scene: the pooled PSNR is that scene's.
    pooled = payload["datasets"]["synthetic"]["gt/layered"]["psnr_disoccluded_pooled"]
    assert pooled == pytest.approx(gt_layered.psnr_disoccluded)
    assert gt_layered.disoccluded_pixels == round(gt_layered.disoccluded_fraction * 240 * 320)
    assert "synthetic/square" in payload["stereo_bad2"]
    assert "mean of 1" in report.format_table()


def test_cli_eval_render(data_root, tmp_path, capsys, monkeypatch):
    out = tmp_path / "eval_render.json"
    assert main(["eval", "render", "--data", str(data_root), "--out", str(out)]) == EXIT_OK
    saved = json.loads(out.read_text())
    assert saved["data_root"] == str(data_root) and len(saved["scenes"]) == 4
    assert f"wrote {out}" in capsys.readouterr().out
    monkeypatch.chdir(tmp_path)  # the default file is benchmarks/results/eval_render_<method>.json under it
    assert main(["eval", "render", "--data", str(data_root), "--method", "sgbm"]) == EXIT_OK
    assert json.loads((tmp_path / "benchmarks" / "results" / "eval_render_sgbm.json").read_text())["stereo_method"] == "sgbm"
    assert main(["eval", "render", "--data", str(data_root), "--datasets", "kitti", "--out", str(out)]) == EXIT_INPUT
    assert "unknown stereo dataset" in capsys.readouterr().err
