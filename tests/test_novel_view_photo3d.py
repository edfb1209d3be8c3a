"""3D photo end to end: render_path, MP4/GIF writing, ``glassdepth render`` and a real Middlebury scene."""

import json

import cv2
import numpy as np
import pytest
from PIL import Image
from test_novel_view_layers import flat_scene

from benchmarks.datasets import StereoScene, default_data_root
from benchmarks.render_eval import naive_forward_warp, right_view_visibility
from sensing.cli import EXIT_INPUT, EXIT_OK, main
from sensing.errors import InputError
from sensing.novel_view.photo3d import read_disparity, render_path
from sensing.novel_view.render import render_novel_right
from sensing.novel_view.video import count_video_frames, write_gif, write_mp4


@pytest.fixture
def inputs(tmp_path):
    """image.png and disparity.pfm of the flat square scene, shrunk to 160x120."""
    image, disparity = flat_scene()
    image = cv2.resize(image, (160, 120), interpolation=cv2.INTER_AREA)
    disparity = cv2.resize(disparity, (160, 120), interpolation=cv2.INTER_NEAREST) / 2
    cv2.imwrite(str(tmp_path / "image.png"), image)
    cv2.imwrite(str(tmp_path / "disparity.pfm"), disparity)
    return tmp_path / "image.png", tmp_path / "disparity.pfm"


def test_render_path_frames_and_timings():
    image, disparity = flat_scene()
    photo = render_path(image, disparity, path="swing", frames=4, radius=0.5)
    assert len(photo.frames) == len(photo.poses) == 4 and len(photo.ldi.layers) == 2
    assert np.array_equal(photo.frames[0], image)  # swing starts at the reference view
    assert set(photo.timings_ms) == {"cut", "fill", "prepare", "first_frame", "frames"}
    assert len(photo.timings_ms["frames"]) == 4 and photo.timings_ms["first_frame"] > photo.timings_ms["cut"]


def test_mp4_and_gif_round_trip(tmp_path):
    frames = [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(5)]
    mp4 = write_mp4(tmp_path / "a.mp4", frames, fps=10)
    assert count_video_frames(mp4) == 5
    gif = write_gif(tmp_path / "a.gif", frames, fps=10)
    with Image.open(gif) as image:
        assert image.n_frames == 5 and image.size == (64, 48)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gif", "a.mp4"]  # no temporary files left
    with pytest.raises(ValueError, match="one size"):
        write_mp4(tmp_path / "b.mp4", [frames[0], frames[1][:10]])


def test_read_disparity_png16_and_errors(tmp_path):
    raw = np.zeros((10, 12), np.uint16)
    raw[2:, :] = 5 * 256
    cv2.imwrite(str(tmp_path / "d.png"), raw)
    disparity = read_disparity(tmp_path / "d.png")
    assert np.isinf(disparity[:2]).all() and (disparity[2:] == 5.0).all()
    cv2.imwrite(str(tmp_path / "d8.png"), np.ones((10, 12), np.uint8))
    with pytest.raises(InputError, match="16-bit"):
        read_disparity(tmp_path / "d8.png")
    with pytest.raises(InputError, match="no finite value"):
        read_disparity(_write_pfm(tmp_path / "nan.pfm", np.full((10, 12), np.nan, np.float32)))


def test_cli_render_writes_frames_and_videos(inputs, tmp_path, capsys):
    image, disparity = inputs
    out = tmp_path / "out"
    assert main(["render", str(image), str(disparity), "--out", str(out), "--path", "circle", "--frames", "6"]) == EXIT_OK
    names = sorted(p.name for p in out.iterdir())
    assert names == [*(f"frame_{i:03d}.png" for i in range(6)), "photo3d.gif", "photo3d.json", "photo3d.mp4"]
    assert count_video_frames(out / "photo3d.mp4") == 6
    summary = json.loads((out / "photo3d.json").read_text())
    assert summary["frames"] == 6 and len(summary["poses"]) == 6 and "first_frame" in summary["timings_ms"]
    assert "6 frames (circle)" in capsys.readouterr().out
    # A rerun with fewer frames leaves no stale frames behind.
    assert main(["render", str(image), str(disparity), "--out", str(out), "--frames", "2"]) == EXIT_OK
    assert sorted(p.name for p in out.glob("frame_*.png")) == ["frame_000.png", "frame_001.png"]


def test_cli_render_novel_right_view(inputs, tmp_path):
    image, disparity = inputs
    out = tmp_path / "right.png"
    assert main(["render", str(image), str(disparity), "--novel-view", "right", "--out", str(out)]) == EXIT_OK
    right = cv2.imread(str(out))
    assert right.shape == (120, 160, 3)


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing_image", "image not found"),
        ("missing_disparity", "PFM file not found"),
        ("size_mismatch", "image is 160x120 but disparity is 80x120"),
        ("nan_only", "no finite value"),
        ("png8", "16-bit"),
        ("frames0", "--frames must be at least 1"),
        ("novel_jpg", "--out must name a .png file"),
    ],
)
def test_cli_render_bad_input(inputs, tmp_path, capsys, case, message):
    image, disparity = inputs
    out = tmp_path / "out"
    extra = []
    if case == "missing_image":
        image = tmp_path / "nope.png"
    elif case == "missing_disparity":
        disparity = tmp_path / "nope.pfm"
    elif case == "size_mismatch":
        disparity = _write_pfm(tmp_path / "small.pfm", np.ones((120, 80), np.float32))
    elif case == "nan_only":
        disparity = _write_pfm(tmp_path / "nan.pfm", np.full((120, 160), np.nan, np.float32))
    elif case == "png8":
        disparity = tmp_path / "d8.png"
        cv2.imwrite(str(disparity), np.ones((120, 160), np.uint8))
    elif case == "frames0":
        extra = ["--frames", "0"]
    elif case == "novel_jpg":
        extra, out = ["--novel-view", "right"], tmp_path / "right.jpg"
    assert main(["render", str(image), str(disparity), "--out", str(out), *extra]) == EXIT_INPUT
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and message in error and "Traceback" not in error
    assert not out.exists()


@pytest.mark.shared_data
def test_right_view_of_a_middlebury_scene_beats_the_naive_warp():
    folder = default_data_root() / "stereo" / "middlebury2006" / "Baby1"
    if not folder.is_dir():
        pytest.skip(f"shared data not found at {folder} (set GLASSDEPTH_DATA)")
    scene = StereoScene("middlebury2006", "Baby1", folder)
    left, right, gt = scene.left(), scene.right(), scene.disparity_gt()
    covisible, disoccluded = right_view_visibility(gt)

    def psnr(image, mask):
        return 10 * np.log10(255.0**2 / np.mean((image[mask].astype(float) - right[mask]) ** 2))

    ours, naive = render_novel_right(left, gt), naive_forward_warp(left, gt)
    assert psnr(ours, covisible) > 33.0 and psnr(ours, covisible) >= psnr(naive, covisible)
    assert psnr(ours, disoccluded) >= psnr(naive, disoccluded)


def _write_pfm(path, values):
    cv2.imwrite(str(path), values)
    return path
