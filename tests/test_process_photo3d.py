"""The 3D photo of a pipeline run: ``glassdepth process`` writes photo3d.glb, photo3d.mp4 and
viewer.html (unless ``--no-3d``, or without a disparity) and reports them in report.json.

The runs fuse no mono and fall back to none (``mono: {fuse: false, fallback: false}``), so they need
no mono weights; they process at 320 px with a short path to keep the CPU time small.
"""

import json
from pathlib import Path

import numpy as np
import pygltflib
import pytest
from test_novel_view_layers import flat_scene

from sensing.cli import EXIT_OK, main
from sensing.demo_capture import build_demo_capture
from sensing.errors import InputError
from sensing.fileio import read_image
from sensing.novel_view.photo3d import (
    FIRST_VIEW_TARGET_MS,
    MAX_DEPTH,
    PHOTO3D_FILES,
    write_photo3d,
)
from sensing.novel_view.video import count_video_frames

FRAMES = 6
SETTINGS = f"""
preprocess: {{long_side_px: 320}}
mono: {{fuse: false, fallback: false}}
photo3d: {{path: swing, frames: {FRAMES}, fps: 12.0, radius_px: 8.0}}
"""
STEPS = {"layers", "fill", "mesh", "prepare", "first_frame", "frames", "glb", "video", "viewer"}


@pytest.fixture(scope="module")
def capture(tmp_path_factory) -> Path:
    return build_demo_capture(tmp_path_factory.mktemp("demo") / "capture")


@pytest.fixture(scope="module")
def config_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "photo3d.yaml"
    path.write_text(SETTINGS)
    return path


@pytest.fixture(scope="module")
def processed(capture: Path, config_path: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "out"
    assert main(["process", str(capture), "--out", str(out), "--config", str(config_path)]) == EXIT_OK
    return out


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def test_process_writes_the_3d_photo(processed: Path) -> None:
    assert set(PHOTO3D_FILES) == {"photo3d.glb", "photo3d.mp4", "viewer.html"}
    for name in PHOTO3D_FILES:
        assert (processed / name).stat().st_size > 0
    gltf = pygltflib.GLTF2.load_binary(processed / "photo3d.glb")
    assert gltf.meshes and gltf.meshes[0].primitives and gltf.images
    height, width = read_image(processed / "rectified_left.png").shape[:2]
    assert gltf.scenes[0].extras["glassdepth"]["size_wh"] == [width, height]  # of the rectified left view
    assert count_video_frames(processed / "photo3d.mp4") == FRAMES
    page = (processed / "viewer.html").read_text()
    assert "__GLASSDEPTH" not in page and len(page) > (processed / "photo3d.glb").stat().st_size  # the glb, base64


def test_report_has_the_photo3d_section(processed: Path) -> None:
    report = _report(processed)
    assert report["depth_source"] == "stereo"
    photo3d = report["photo3d"]
    assert photo3d["written"] is True and photo3d["files"] == list(PHOTO3D_FILES)
    assert (photo3d["path"], photo3d["frames"], photo3d["fps"], photo3d["radius_px"]) == ("swing", FRAMES, 12.0, 8.0)
    assert set(photo3d["timings_ms"]) == STEPS and all(ms >= 0 for ms in photo3d["timings_ms"].values())
    timings = photo3d["timings_ms"]
    first_view = sum(timings[key] for key in ("layers", "fill", "mesh", "prepare", "first_frame"))
    assert photo3d["first_view_ms"] == pytest.approx(first_view, abs=0.1)
    assert photo3d["first_view_target_ms"] == FIRST_VIEW_TARGET_MS
    assert photo3d["first_view_within_target"] == (photo3d["first_view_ms"] <= FIRST_VIEW_TARGET_MS)
    assert photo3d["mesh"]["faces"] > 0 and photo3d["layers"] in (1, 2)
    assert report["config"]["photo3d"] == {"path": "swing", "frames": FRAMES, "fps": 12.0, "radius_px": 8.0}


def test_no_3d_writes_none_of_it_and_removes_a_previous_one(
    processed: Path, capture: Path, config_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for name in PHOTO3D_FILES:  # left over from an earlier run with the 3D photo
        (out / name).write_bytes((processed / name).read_bytes())
    assert main(["process", str(capture), "--out", str(out), "--config", str(config_path), "--no-3d"]) == EXIT_OK
    assert not any((out / name).exists() for name in PHOTO3D_FILES)
    assert (out / "disparity.pfm").is_file()
    assert _report(out)["photo3d"] == {"written": False, "reason": "turned off (--no-3d)"}
    assert "3D photo: not written" in capsys.readouterr().out


def test_a_run_without_disparity_has_no_3d_photo(capture: Path, tmp_path: Path) -> None:
    # Stereo is never trusted (it would need every pixel confident) and there is no mono fallback.
    config = tmp_path / "none.yaml"
    config.write_text(SETTINGS + "confidence: {min_coverage: 1.0}\n")
    out = tmp_path / "out"
    assert main(["process", str(capture), "--out", str(out), "--config", str(config)]) == EXIT_OK
    report = _report(out)
    assert report["depth_source"] == "none"
    assert report["photo3d"] == {"written": False, "reason": "no disparity (depth_source none)"}
    assert not any((out / name).exists() for name in PHOTO3D_FILES)


def test_write_photo3d_rescales_a_relative_disparity(tmp_path: Path) -> None:
    image, disparity = flat_scene()
    relative = (disparity - disparity.min()) / (disparity.max() - disparity.min())  # 0 = farthest, as mono
    report = write_photo3d(image, relative, tmp_path, path="circle", frames=3, radius_px=10.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(PHOTO3D_FILES)
    assert report["disparity_scale"] == pytest.approx(10.0) and report["layers"] == 2
    gltf = pygltflib.GLTF2.load_binary(tmp_path / "photo3d.glb")
    height, width = image.shape[:2]
    assert gltf.scenes[0].extras["glassdepth"]["size_wh"] == [width, height]
    # Far pixels (relative 0) are raised to radius_px / MAX_DEPTH: they get geometry, at depth MAX_DEPTH
    # (glTF's z points backwards); the square (relative 1, the near disparity) at depth 1.
    positions = gltf.accessors[gltf.meshes[0].primitives[0].attributes.POSITION]
    assert positions.min[2] == pytest.approx(-MAX_DEPTH, rel=1e-3)
    assert positions.max[2] == pytest.approx(-1.0, rel=1e-3)
    assert count_video_frames(tmp_path / "photo3d.mp4") == 3


def test_write_photo3d_rejects_a_disparity_without_depth_before_writing(tmp_path: Path) -> None:
    image, _ = flat_scene()
    with pytest.raises(InputError, match="no finite positive value"):
        write_photo3d(image, np.zeros(image.shape[:2], np.float32), tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("method", "passed"), [("net", False), ("sgbm", True)])
def test_the_layer_cut_gets_the_confidence_of_a_sparse_stereo_map_only(
    method: str, passed: bool, capture: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The network's map keeps its not-confident pixels (dense): no confidence for the layer cut;
    SGBM-3way's (mono fill off) leaves them unknown: the confidence goes with it."""
    import sensing.outputs

    seen = []

    def spy(*args, confidence=None, **kwargs):
        seen.append(confidence)
        return write_photo3d(*args, confidence=confidence, **kwargs)

    monkeypatch.setattr(sensing.outputs, "write_photo3d", spy)
    config = tmp_path / "config.yaml"
    config.write_text(SETTINGS + f"stereo: {{method: {method}}}\n")
    out = tmp_path / "out"
    assert main(["process", str(capture), "--out", str(out), "--config", str(config)]) == EXIT_OK
    assert _report(out)["stereo"]["unconfident_pixels"] == ("unknown" if passed else "kept")
    assert len(seen) == 1 and (seen[0] is not None) == passed
