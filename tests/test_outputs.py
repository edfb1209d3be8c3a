"""Output files of a run: exact set (the 3D photo included), faithful contents, and all-or-nothing
on failure. The 3D photo through ``glassdepth process``: tests/test_process_photo3d.py."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from synthetic import make_synthetic_capture

from sensing import outputs
from sensing.config import config_from_dict
from sensing.depth import depth_to_millimetres
from sensing.fileio import read_image, read_pfm
from sensing.novel_view.photo3d import PHOTO3D_FILES
from sensing.novel_view.video import count_video_frames
from sensing.outputs import OUTPUT_FILES, disparity_preview, write_outputs
from sensing.pipeline import PipelineResult, run_pipeline
from sensing.types import DisparityMap


@pytest.fixture(scope="module")
def result() -> PipelineResult:
    # Stereo only (no mono weights needed); a short 3D photo path.
    settings = {"preprocess": {"long_side_px": 320}, "mono": {"fuse": False, "fallback": False}, "photo3d": {"frames": 4}}
    result = run_pipeline(make_synthetic_capture(), config_from_dict(settings))
    assert result.ok
    return result


def test_preview_is_black_exactly_where_disparity_is_unknown() -> None:
    values = np.tile(np.linspace(1.0, 30.0, 40, dtype=np.float32), (10, 1))
    valid = np.ones(values.shape, bool)
    valid[3:6, 10:20] = False
    preview = disparity_preview(DisparityMap(values, valid), max_disparity_px=32)
    assert preview.shape == (10, 40, 3) and preview.dtype == np.uint8
    assert not preview[~valid].any()
    assert np.all(preview[valid].max(axis=1) > 0)
    # Turbo: far (small disparity) is blue, near is red (BGR order).
    assert preview[0, 0, 0] > preview[0, 0, 2] and preview[0, -1, 2] > preview[0, -1, 0]


def test_preview_of_an_empty_map_is_all_black() -> None:
    empty = DisparityMap(np.zeros((8, 8), np.float32), np.zeros((8, 8), bool))
    assert not disparity_preview(empty).any()


def test_write_outputs_writes_exactly_the_documented_files(result: PipelineResult, tmp_path: Path) -> None:
    out_dir = write_outputs(result, tmp_path / "run")
    assert out_dir == tmp_path / "run"
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(OUTPUT_FILES)
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no staging folder left

    disparity = read_pfm(out_dir / "disparity.pfm")
    np.testing.assert_array_equal(disparity, result.disparity.values_px)  # inf where unknown
    np.testing.assert_array_equal(read_image(out_dir / "depth.png"), depth_to_millimetres(result.depth))
    np.testing.assert_array_equal(read_image(out_dir / "rectified_left.png"), result.rectified.left)
    confidence = read_image(out_dir / "confidence.png")
    np.testing.assert_allclose(confidence / 255.0, result.confidence.values, atol=0.5 / 255 + 1e-6)
    report = json.loads((out_dir / "report.json").read_text())
    assert report["ok"] is True and report["depth_source"] == "stereo"
    assert "git_revision" in report
    assert report["photo3d"]["written"] is True and report["photo3d"]["files"] == list(PHOTO3D_FILES)
    assert count_video_frames(out_dir / "photo3d.mp4") == 4


def test_without_the_3d_photo_the_rest_is_written(result: PipelineResult, tmp_path: Path) -> None:
    out_dir = write_outputs(result, tmp_path / "run", photo3d=False)
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(set(OUTPUT_FILES) - set(PHOTO3D_FILES))
    assert json.loads((out_dir / "report.json").read_text())["photo3d"]["written"] is False


def test_a_failing_3d_photo_leaves_no_output(
    result: PipelineResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args, **kwargs):
        raise OSError("no space left on device")

    monkeypatch.setattr("sensing.novel_view.photo3d.write_mp4", fail)
    with pytest.raises(OSError, match="no space left"):
        write_outputs(result, tmp_path / "run")
    assert list(tmp_path.iterdir()) == []


def _fail_on_depth_png(real_write):
    def write(path, image):
        if Path(path).name == "depth.png":
            raise OSError("no space left on device")
        return real_write(path, image)

    return write


def test_failure_midway_leaves_no_output_and_no_staging(
    result: PipelineResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outputs, "write_image_atomic", _fail_on_depth_png(outputs.write_image_atomic))
    with pytest.raises(OSError, match="no space left"):
        write_outputs(result, tmp_path / "run")
    assert not (tmp_path / "run").exists()
    assert list(tmp_path.iterdir()) == []


def test_failure_midway_keeps_a_previous_result_intact(
    result: PipelineResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out_dir = write_outputs(result, tmp_path / "run")
    before = {p.name: p.read_bytes() for p in out_dir.iterdir()}
    monkeypatch.setattr(outputs, "write_image_atomic", _fail_on_depth_png(outputs.write_image_atomic))
    with pytest.raises(OSError):
        write_outputs(result, out_dir)
    assert {p.name: p.read_bytes() for p in out_dir.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_failed_run_has_no_outputs(result: PipelineResult, tmp_path: Path) -> None:
    failed = dataclasses.replace(result, ok=False, disparity=None)
    with pytest.raises(ValueError, match="only a completed pipeline run"):
        write_outputs(failed, tmp_path / "run")
    assert not (tmp_path / "run").exists()
