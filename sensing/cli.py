"""``glassdepth``: the command line. Parses arguments, calls the library, renders progress.

Exit codes: 0 success; 1 internal error (a bug: please report it with ``--debug`` output);
2 bad input, calibration, configuration or usage; 3 the pipeline stopped because a stage
could not work on the capture (e.g. a black or swapped view); the reason is printed.
``calib validate`` ends with its verdict: 0 the calibration holds, 4 drifted (recalibrate),
5 the captures are inconsistent (they disagree, or too few gave a reliable estimate).
"""

import argparse
import logging
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from sensing.config import StereoConfig
from sensing.errors import ConfigError, GlassdepthError
from sensing.resources import keep_freed_memory

if TYPE_CHECKING:
    from sensing.config import PipelineConfig

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT, EXIT_STOPPED = 0, 1, 2, 3
EXIT_DRIFTED, EXIT_INCONSISTENT = 4, 5
DEFAULT_RESULTS = Path("benchmarks") / "results"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    keep_freed_memory()
    try:
        return args.handler(args)
    except GlassdepthError as error:
        _error(str(error))
        return EXIT_INPUT
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except Exception as error:  # noqa: BLE001 - the last line of defence: one line, not a traceback
        if args.debug:
            raise
        _error(f"internal error ({type(error).__name__}: {error}); rerun with --debug for the traceback")
        return EXIT_INTERNAL


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="log each step")
    common.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    parser = argparse.ArgumentParser(
        prog="glassdepth", description="Depth from smart-glasses stereo captures.", parents=[common],
        epilog="exit codes: 0 ok, 1 internal error, 2 bad input/usage, 3 pipeline stopped (reason printed); "
        "calib validate: 0 calibration holds, 4 drifted - recalibrate, 5 inconsistent between captures",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    process = commands.add_parser("process", parents=[common], help="run the pipeline on one capture")
    process.add_argument("capture", type=Path, help="capture folder (left.*, right.*, calibration.json) or EuRoC sequence")
    process.add_argument("--out", type=Path, required=True, help="output folder")
    process.add_argument("--no-3d", dest="photo3d", action="store_false", help="skip the 3D photo (photo3d.glb, photo3d.mp4, viewer.html)")
    _add_pipeline_options(process)
    frame = process.add_mutually_exclusive_group()
    frame.add_argument("--frame", type=int, help="frame index in an EuRoC sequence (default 0)")
    frame.add_argument("--timestamp", type=int, help="frame timestamp (ns) in an EuRoC sequence")
    process.set_defaults(handler=_process)

    stereo = commands.add_parser("stereo", parents=[common], help="disparity of an already rectified pair")
    stereo.add_argument("left", type=Path)
    stereo.add_argument("right", type=Path)
    stereo.add_argument("--out", type=Path, required=True, help="disparity PFM to write (float32 px, inf = unknown)")
    stereo.add_argument("--method", default=StereoConfig.method, help=f"stereo method: net or sgbm (default {StereoConfig.method}, the pipeline's)")
    stereo.add_argument("--max-disparity", type=int, help="search range in px (default: a quarter of the width, at most 256)")
    stereo.add_argument("--weights", type=Path, help="ONNX weights of the net method (default: the shipped ones)")
    _add_net_scales_option(stereo)
    stereo.set_defaults(handler=_stereo)

    mono = commands.add_parser("mono", parents=[common], help="relative disparity of one image (mono network)")
    mono.add_argument("image", type=Path, help="image (8 or 16 bit, grey or colour)")
    mono.add_argument("--out", type=Path, required=True, help="PFM to write: float32 relative disparity in [0, 1], 1 = nearest")
    mono.add_argument("--weights", type=Path, help="ONNX weights of the mono network (default: the shipped ones)")
    mono.add_argument("--preview", type=Path, help="also write a colour preview PNG (near = red)")
    mono.set_defaults(handler=_mono)

    render = commands.add_parser("render", parents=[common], help="3D photo: novel views from an image and its disparity")
    render.add_argument("image", type=Path, help="reference (left) view")
    render.add_argument("disparity", type=Path, help="its disparity: PFM (px, inf = unknown) or 16-bit PNG (px * 256, 0 = unknown)")
    render.add_argument("--out", type=Path, required=True, help="output folder (frames, photo3d.mp4, photo3d.gif); with --novel-view a .png file")
    render.add_argument("--path", choices=("circle", "swing", "dolly"), default="circle", help="camera path (default circle)")
    render.add_argument("--frames", type=int, default=48, help="frames of the path (default 48)")
    render.add_argument("--radius", type=float, default=0.5, help="camera path radius in px of parallax per px of disparity (default 0.5)")
    render.add_argument("--fps", type=float, default=24.0, help="frame rate of the videos (default 24)")
    render.add_argument("--novel-view", choices=("right",), help="write only this view (right: the rectified pair's right camera)")
    render.set_defaults(handler=_render)

    evaluate = commands.add_parser("eval", parents=[common], help="accuracy benchmarks")
    eval_commands = evaluate.add_subparsers(dest="what", required=True, metavar="WHAT")
    eval_stereo = eval_commands.add_parser("stereo", parents=[common], help="stereo methods against ground truth")
    eval_stereo.add_argument("--data", type=Path, required=True, help="data root holding stereo/<dataset>/<scene>")
    eval_stereo.add_argument("--datasets", help="comma-separated datasets (default: all)")
    eval_stereo.add_argument("--method", default=StereoConfig.method, help=f"comma-separated stereo methods, e.g. net,sgbm (default {StereoConfig.method})")
    eval_stereo.add_argument("--weights", type=Path, help="ONNX weights of the net method (default: the shipped ones)")
    _add_net_scales_option(eval_stereo)
    eval_stereo.add_argument(
        "--config",
        type=Path,
        help="YAML settings whose stereo.params the net method takes when its stereo.method is net "
        "(e.g. configs/stereo_quality.yaml)",
    )
    eval_stereo.add_argument("--out", type=Path, help=f"JSON to write (default {DEFAULT_RESULTS}/eval_stereo_<methods>.json)")
    eval_stereo.set_defaults(handler=_eval_stereo)
    eval_mono = eval_commands.add_parser(
        "mono", parents=[common], help="mono network against ground truth and a vertical-gradient prior (AbsRel, delta1)"
    )
    eval_mono.add_argument(
        "--data", type=Path, help="data root holding stereo/<dataset>/<scene> (default $GLASSDEPTH_DATA or ../shared/data)"
    )
    eval_mono.add_argument("--datasets", help="comma-separated datasets (default: middeval3Q,eth3d,kitti2012,kitti2015)")
    eval_mono.add_argument("--weights", type=Path, help="ONNX weights of the mono network (default: the shipped ones)")
    eval_mono.add_argument("--out", type=Path, default=DEFAULT_RESULTS / "eval_mono.json", help="JSON to write")
    eval_mono.set_defaults(handler=_eval_mono)
    eval_fusion = eval_commands.add_parser(
        "fusion", parents=[common], help="stereo against stereo filled with aligned mono on the low-confidence pixels"
    )
    eval_fusion.add_argument("--data", type=Path, required=True, help="data root holding stereo/<dataset>/<scene>")
    eval_fusion.add_argument("--datasets", help="comma-separated datasets (default: the four Middlebury ones)")
    eval_fusion.add_argument("--config", type=Path, help="YAML settings (stereo method, confidence, mono)")
    eval_fusion.add_argument("--out", type=Path, default=DEFAULT_RESULTS / "eval_fusion.json", help="JSON to write")
    eval_fusion.set_defaults(handler=_eval_fusion)
    eval_render = eval_commands.add_parser(
        "render", parents=[common], help="novel right views against the real ones (PSNR, SSIM), layered vs naive"
    )
    eval_render.add_argument("--data", type=Path, required=True, help="data root holding stereo/<dataset>/<scene>")
    eval_render.add_argument("--datasets", help="comma-separated datasets (default: all)")
    eval_render.add_argument("--method", default=StereoConfig.method, help=f"stereo method predicting the second disparity (default {StereoConfig.method})")
    eval_render.add_argument("--out", type=Path, help=f"JSON to write (default {DEFAULT_RESULTS}/eval_render_<method>.json)")
    eval_render.set_defaults(handler=_eval_render)

    demo = commands.add_parser("demo", parents=[common], help="run the pipeline on the built-in Motorcycle sample")
    demo.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder (default ./demo_out)")
    demo.add_argument("--no-3d", dest="photo3d", action="store_false", help="skip the 3D photo (photo3d.glb, photo3d.mp4, viewer.html)")
    demo.set_defaults(handler=_demo)

    calib = commands.add_parser("calib", parents=[common], help="calibration drift: simulate it, validate captures")
    calib_commands = calib.add_subparsers(dest="what", required=True, metavar="WHAT")
    perturb = calib_commands.add_parser(
        "perturb", parents=[common], help="simulate drift: turn the right camera, keep the factory calibration"
    )
    perturb.add_argument("capture", type=Path, help="capture folder or EuRoC sequence")
    perturb.add_argument("--pitch", type=float, default=0.0, help="rotation about the right camera's x axis (deg)")
    perturb.add_argument("--yaw", type=float, default=0.0, help="rotation about its y axis (deg)")
    perturb.add_argument("--roll", type=float, default=0.0, help="rotation about its z axis (deg)")
    perturb.add_argument("--out", type=Path, required=True, help="capture folder to write")
    perturb.add_argument("--frame", type=int, help="frame index in an EuRoC sequence (default 0)")
    perturb.set_defaults(handler=_calib_perturb)
    validate = calib_commands.add_parser(
        "validate", parents=[common], help="drift over many captures: holds (0), drifted (4) or inconsistent (5)",
        epilog="exit codes: 0 calibration holds, 4 drifted - recalibrate, 5 inconsistent between captures, "
        "2 bad input/usage, 1 internal error",
    )
    validate.add_argument(
        "captures", type=Path, nargs="+", help="capture folders, folders holding them, or EuRoC sequences (every frame)"
    )
    validate.add_argument("--out", type=Path, required=True, help="folder for summary.json, summary.csv, drift.png")
    _add_pipeline_options(validate)
    validate.set_defaults(handler=_calib_validate)

    bench = commands.add_parser("bench", parents=[common], help="latency and memory benchmarks")
    bench_commands = bench.add_subparsers(dest="what", required=True, metavar="WHAT")
    bench_process = bench_commands.add_parser("process", parents=[common], help="pipeline latency and memory at 640x480")
    bench_process.add_argument("--capture", type=Path, help="capture to time (default: the demo scene at 640x480)")
    bench_process.add_argument("--repeats", type=int, default=20, help="timed runs after one warm-up (default 20)")
    bench_process.add_argument("--out", type=Path, default=DEFAULT_RESULTS / "process_640x480.json", help="JSON to write")
    _add_pipeline_options(bench_process)
    bench_process.set_defaults(handler=_bench_process)
    bench_rectify = bench_commands.add_parser(
        "rectify", parents=[common], help="online rectification: drift accuracy, negatives, stage time"
    )
    bench_rectify.add_argument("--data", type=Path, required=True, help="data root holding stereo/ and pairs_nogt/")
    bench_rectify.add_argument("--datasets", help="comma-separated stereo datasets (default: all)")
    bench_rectify.add_argument("--no-sgbm", action="store_true", help="skip the SGBM bad-2 comparison (faster)")
    bench_rectify.add_argument("--seed", type=int, default=0, help="seed of the drift cases (default 0)")
    bench_rectify.add_argument("--detector", choices=("orb", "akaze", "sift"), help="feature detector (default: the config's)")
    bench_rectify.add_argument("--out", type=Path, default=DEFAULT_RESULTS / "rectify.json", help="JSON to write")
    _add_pipeline_options(bench_rectify)
    bench_rectify.set_defaults(handler=_bench_rectify)
    bench_stereo = bench_commands.add_parser(
        "stereo", parents=[common], help="stereo network latency against plain SGBM-3way at 640x480"
    )
    bench_stereo.add_argument("--weights", type=Path, help="ONNX weights of the net (default: the shipped ones)")
    bench_stereo.add_argument(
        "--baseline-weights", type=Path, metavar="ONNX",
        help="another export to time call by call against the net (same settings), e.g. before a graph change",
    )
    _add_net_scales_option(bench_stereo)
    bench_stereo.add_argument("--repeats", type=int, default=30, help="timed runs after two warm-up calls (default 30)")
    bench_stereo.add_argument("--threads", type=int, help="CPU threads (default: the device profile's)")
    bench_stereo.add_argument("--out", type=Path, default=DEFAULT_RESULTS / "bench_stereo.json", help="JSON to write")
    _add_pipeline_options(bench_stereo)
    bench_stereo.set_defaults(handler=_bench_stereo)
    bench_mono = bench_commands.add_parser("mono", parents=[common], help="mono network latency at 384x288")
    bench_mono.add_argument("--weights", type=Path, help="ONNX weights of the mono network (default: the shipped ones)")
    bench_mono.add_argument("--repeats", type=int, default=30, help="timed runs after two warm-up calls (default 30)")
    bench_mono.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads (default 2)")
    bench_mono.add_argument("--out", type=Path, default=DEFAULT_RESULTS / "bench_mono.json", help="JSON to write")
    bench_mono.set_defaults(handler=_bench_mono)
    bench_render = bench_commands.add_parser(
        "render", parents=[common], help="3D photo latency at 640x480: cut + fill + mesh + first frame, further frames"
    )
    bench_render.add_argument("--repeats", type=int, default=20, help="timed runs after one warm-up (default 20)")
    bench_render.add_argument("--frames", type=int, default=12, help="frames rendered per run (default 12)")
    bench_render.add_argument("--threads", type=int, default=2, help="OpenCV threads (default 2)")
    bench_render.add_argument("--out", type=Path, default=DEFAULT_RESULTS / "bench_render.json", help="JSON to write")
    bench_render.set_defaults(handler=_bench_render)
    return parser


def _add_pipeline_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML settings overriding the defaults (see configs/default.yaml)")
    parser.add_argument("--device", help="device budget profile in configs/devices/ (overrides the config's)")


def _add_net_scales_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--net-scales",
        type=_scales,
        metavar="S1,S2",
        help="net method: run the network at each of these input scales and keep the most confident "
        "disparity per pixel (default 1; 1,1.5 is more accurate and runs it on 3.25 times the pixels)",
    )


def _scales(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers such as 1,1.5, got {text!r}") from None


def _net_params(args: argparse.Namespace, config: "PipelineConfig | None" = None) -> dict[str, object]:
    """The net matcher's parameters: a pipeline config's ``stereo.params`` where its
    ``stereo.method`` is net, overridden by the command line's --weights and --net-scales."""
    params: dict[str, object] = dict(config.stereo.params) if config is not None and config.stereo.method == "net" else {}
    if args.weights is not None:
        params["weights"] = str(args.weights)
    if args.net_scales is not None:
        params["scales"] = args.net_scales
    return params


def _load_config(args: argparse.Namespace):
    from dataclasses import replace

    from sensing.config import load_config, load_device_profile

    config = load_config(args.config)
    if args.device:
        config = replace(config, device=args.device)
    load_device_profile(config.device)
    return config


def _process(args: argparse.Namespace) -> int:
    from sensing.capture import load_capture

    config = _load_config(args)
    capture = load_capture(args.capture, frame=args.frame, timestamp_ns=args.timestamp)
    return _run_and_write(capture, config, args.out, photo3d=args.photo3d)


def _run_and_write(capture, config, out: Path, *, photo3d: bool = True) -> int:
    from sensing.outputs import write_outputs
    from sensing.pipeline import run_pipeline

    result = run_pipeline(capture, config)
    if not result.ok:
        _error(f"pipeline stopped: {'; '.join(result.reasons)} (nothing written)")
        return EXIT_STOPPED
    write_outputs(result, out, photo3d=photo3d)
    for record in result.stages:
        if record.status == "skipped":
            print(f"  {record.name:<11} skipped")
            continue
        budget = "" if record.budget_ms is None else f" / {record.budget_ms:.0f} ms budget"
        flag = "" if record.within_budget is not False else "  OVER BUDGET"
        print(f"  {record.name:<11} {record.ms:7.1f} ms{budget}, peak RSS {record.peak_rss_mb:.0f} MB{flag}")
    print(f"  {'total':<11} {result.total_ms:7.1f} ms / {result.profile.total_ms:.0f} ms budget")
    depth = result.details.get("depth")
    summary = f"depth source: {result.depth_source}"
    if depth:
        summary += f", median depth {depth['median_m']:.2f} m over {100 * depth['valid_fraction']:.0f}% of pixels"
    print(summary)
    for reason in result.reasons:
        print(f"  reason: {reason}")
    _print_photo3d(out / "report.json")
    print(f"results in {out}")
    return EXIT_OK


def _print_photo3d(report_path: Path) -> None:
    import json

    photo3d = json.loads(report_path.read_text()).get("photo3d", {})
    if not photo3d.get("written"):
        print(f"3D photo: not written ({photo3d.get('reason', 'unknown reason')})")
        return
    timings = photo3d["timings_ms"]
    flag = "" if photo3d["first_view_within_target"] else "  OVER TARGET"
    print(
        f"3D photo: {', '.join(photo3d['files'])}; first view after {photo3d['first_view_ms']:.0f} ms "
        f"(target {photo3d['first_view_target_ms']:.0f} ms: layers {timings['layers']:.0f}, fill {timings['fill']:.0f}, "
        f"mesh {timings['mesh']:.0f}, frame {timings['prepare'] + timings['first_frame']:.0f}){flag}; "
        f"{photo3d['frames']} frames ({photo3d['path']}) in {timings['frames']:.0f} ms"
    )


def _stereo(args: argparse.Namespace) -> int:
    import numpy as np

    from sensing.errors import InputError
    from sensing.fileio import read_image, write_image_atomic
    from sensing.preprocess import to_uint8_bgr, white_level
    from sensing.stereo import build_matcher

    if args.out.suffix.lower() != ".pfm":
        raise InputError(f"--out must name a .pfm file, got {args.out}")
    if (args.weights is not None or args.net_scales is not None) and args.method != "net":
        raise ConfigError("--weights and --net-scales apply to the net method: add --method net")
    matcher = build_matcher(args.method, **_net_params(args))
    left, right = read_image(args.left), read_image(args.right)
    if left.shape[:2] != right.shape[:2]:
        raise InputError(f"left is {left.shape[1]}x{left.shape[0]} but right is {right.shape[1]}x{right.shape[0]}")
    level = white_level(left, right)
    left, right = (to_uint8_bgr(image, white_level=level) for image in (left, right))
    max_disparity = args.max_disparity or min(256, left.shape[1] // 4)
    if max_disparity <= 0:
        raise InputError(f"--max-disparity must be positive, got {max_disparity}")
    disparity = matcher.match(left, right, max_disparity_px=max_disparity)
    write_image_atomic(args.out, disparity.values_px)
    print(f"disparity ({100 * float(np.mean(disparity.valid)):.1f}% of pixels) written to {args.out}")
    return EXIT_OK


def _eval_stereo(args: argparse.Namespace) -> int:
    from benchmarks.datasets import list_stereo_scenes
    from benchmarks.stereo_eval import compare_bad2, evaluate_methods, format_comparison
    from sensing.config import load_config
    from sensing.fileio import write_json_atomic

    methods = [m.strip() for m in args.method.split(",") if m.strip()]
    if (args.weights is not None or args.net_scales is not None) and "net" not in methods:
        raise ConfigError("--weights and --net-scales apply to the net method: add net to --method")
    net_params = _net_params(args, load_config(args.config) if args.config is not None else None)
    datasets = args.datasets.split(",") if args.datasets else None
    scenes = list_stereo_scenes(args.data, datasets)
    with _progress(len(scenes) * len(methods), label=lambda score: f"{score.dataset}/{score.scene}") as progress:
        reports = evaluate_methods(args.data, datasets, methods, net_params=net_params, on_scene=progress)
    for report in reports:
        print(f"\n{report.method}\n{report.format_table()}")
    comparison = compare_bad2(reports)
    print(f"\n{format_comparison(comparison)}")
    out = args.out or DEFAULT_RESULTS / f"eval_stereo_{'_'.join(methods)}.json"
    payload = {"data_root": str(args.data), "bad2_by_dataset": comparison, "reports": [report.to_dict() for report in reports]}
    print(f"\nwrote {write_json_atomic(out, payload)}")
    return EXIT_OK


def _eval_fusion(args: argparse.Namespace) -> int:
    from benchmarks.datasets import list_stereo_scenes
    from benchmarks.fusion_eval import MIDDLEBURY, eval_fusion, format_fusion_eval
    from sensing.config import load_config
    from sensing.fileio import write_json_atomic

    datasets = args.datasets.split(",") if args.datasets else list(MIDDLEBURY)
    with _progress(len(list_stereo_scenes(args.data, datasets))) as progress:
        results = eval_fusion(args.data, datasets=datasets, config=load_config(args.config), on_scene=progress)
    print(format_fusion_eval(results))
    print(f"wrote {write_json_atomic(args.out, results)}")
    return EXIT_OK


def _render(args: argparse.Namespace) -> int:
    from sensing.errors import InputError
    from sensing.fileio import (
        read_image,
        staged_folder,
        write_image_atomic,
        write_json_atomic,
    )
    from sensing.novel_view.photo3d import check_pair, read_disparity, render_path
    from sensing.novel_view.render import render_novel_right
    from sensing.novel_view.video import write_gif, write_mp4
    from sensing.preprocess import to_uint8_bgr, white_level

    if args.frames < 1:
        raise GlassdepthError(f"--frames must be at least 1, got {args.frames}")
    if not (args.radius >= 0 and math.isfinite(args.radius)):
        raise GlassdepthError(f"--radius must be a non-negative number, got {args.radius}")
    if not (args.fps > 0 and math.isfinite(args.fps)):
        raise GlassdepthError(f"--fps must be positive, got {args.fps}")
    if args.novel_view and args.out.suffix.lower() != ".png":
        raise InputError(f"with --novel-view, --out must name a .png file, got {args.out}")
    raw = read_image(args.image)
    image = to_uint8_bgr(raw, white_level=white_level(raw))
    disparity = read_disparity(args.disparity)
    check_pair(image, disparity)
    if args.novel_view:
        write_image_atomic(args.out, render_novel_right(image, disparity))
        print(f"right view written to {args.out}")
        return EXIT_OK
    photo = render_path(image, disparity, path=args.path, frames=args.frames, radius=args.radius)
    with staged_folder(args.out, stale=["frame_*.png", "photo3d.*"], last="photo3d.json") as staging:
        for index, frame in enumerate(photo.frames):
            write_image_atomic(staging / f"frame_{index:03d}.png", frame)
        write_mp4(staging / "photo3d.mp4", photo.frames, fps=args.fps)
        write_gif(staging / "photo3d.gif", photo.frames, fps=args.fps, max_side_px=480)
        write_json_atomic(staging / "photo3d.json", {
            "image": str(args.image), "disparity": str(args.disparity), "path": args.path,
            "frames": args.frames, "radius": args.radius, "fps": args.fps, "layers": len(photo.ldi.layers),
            "poses": [vars(pose) for pose in photo.poses], "timings_ms": photo.timings_ms,
        })
    frame_ms = sorted(photo.timings_ms["frames"])[len(photo.frames) // 2]
    print(f"{len(photo.frames)} frames ({args.path}), first after {photo.timings_ms['first_frame']:.0f} ms, "
          f"then {frame_ms:.1f} ms each (median); results in {args.out}")
    return EXIT_OK


def _eval_render(args: argparse.Namespace) -> int:
    from benchmarks.datasets import list_stereo_scenes
    from benchmarks.render_eval import evaluate_render
    from sensing.fileio import write_json_atomic
    from sensing.stereo import build_matcher

    build_matcher(args.method)  # an unknown method fails before the progress bar
    datasets = args.datasets.split(",") if args.datasets else None
    scenes = list_stereo_scenes(args.data, datasets)
    with _progress(len(scenes)) as progress:
        report = evaluate_render(scenes, stereo_method=args.method, on_scene=progress)
    print(report.format_table())
    payload = {"data_root": str(args.data)} | report.to_dict()
    out = args.out or DEFAULT_RESULTS / f"eval_render_{args.method}.json"
    print(f"\nwrote {write_json_atomic(out, payload)}")
    return EXIT_OK


def _bench_render(args: argparse.Namespace) -> int:
    from benchmarks.render_bench import bench_render, format_render_bench
    from sensing.fileio import write_json_atomic

    if args.repeats < 1:
        raise GlassdepthError(f"--repeats must be at least 1, got {args.repeats}")
    if args.frames < 2:
        raise GlassdepthError(f"--frames must be at least 2, got {args.frames}")
    if args.threads < 1:
        raise GlassdepthError(f"--threads must be at least 1, got {args.threads}")
    with tqdm(total=args.repeats, unit="run", file=sys.stderr) as bar:
        results = bench_render(repeats=args.repeats, frames=args.frames, threads=args.threads, on_repeat=lambda _: bar.update())
    print(format_render_bench(results))
    print(f"wrote {write_json_atomic(args.out, results)}")
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from sensing.capture import load_capture
    from sensing.config import PipelineConfig
    from sensing.demo_capture import build_demo_capture

    capture_dir = build_demo_capture(args.out / "capture")
    print(f"demo capture (scikit-image's Middlebury Motorcycle pair with a simulated glasses calibration) in {capture_dir}")
    return _run_and_write(load_capture(capture_dir), PipelineConfig(), args.out / "result", photo3d=args.photo3d)


def _bench_process(args: argparse.Namespace) -> int:
    from benchmarks.process_bench import (
        bench_process,
        default_bench_capture,
        format_bench,
    )
    from sensing.capture import load_capture
    from sensing.fileio import write_json_atomic

    if args.repeats < 1:
        raise GlassdepthError(f"--repeats must be at least 1, got {args.repeats}")
    config = _load_config(args)
    capture = load_capture(args.capture) if args.capture else default_bench_capture()
    with tqdm(total=args.repeats, unit="run", file=sys.stderr) as bar:
        results = bench_process(capture, config=config, repeats=args.repeats, on_repeat=lambda _: bar.update())
    print(format_bench(results))
    print(f"wrote {write_json_atomic(args.out, results)}")
    return EXIT_OK


def _bench_rectify(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from benchmarks.datasets import list_stereo_scenes
    from benchmarks.rectify_bench import bench_rectify, format_rectify_bench
    from sensing.fileio import write_json_atomic

    config = _load_config(args)
    if args.detector:
        config = replace(config, rectification=replace(config.rectification, detector=args.detector))
    datasets = args.datasets.split(",") if args.datasets else None
    scenes = list_stereo_scenes(args.data, datasets)
    with _progress(len(scenes)) as progress:
        results = bench_rectify(
            args.data, config=config, datasets=datasets, seed=args.seed, with_sgbm=not args.no_sgbm, on_scene=progress
        )
    print(format_rectify_bench(results))
    print(f"wrote {write_json_atomic(args.out, results)}")
    return EXIT_OK


def _bench_stereo(args: argparse.Namespace) -> int:
    from benchmarks.stereo_bench import bench_stereo, format_stereo_bench
    from sensing.config import load_device_profile
    from sensing.fileio import write_json_atomic
    from sensing.stereo import DEFAULT_NET_WEIGHTS, NetMatcher

    if args.repeats < 1:
        raise GlassdepthError(f"--repeats must be at least 1, got {args.repeats}")
    if args.threads is not None and args.threads < 1:
        raise GlassdepthError(f"--threads must be at least 1, got {args.threads}")
    config = _load_config(args)
    threads = args.threads or load_device_profile(config.device).threads
    params = {key: value for key, value in _net_params(args, config).items() if key != "threads"}
    weights = str(params.pop("weights", DEFAULT_NET_WEIGHTS))
    baseline = None if args.baseline_weights is None else str(args.baseline_weights)
    for checked in (weights, baseline):  # bad weights or settings: fail before the progress bar
        if checked is not None:
            NetMatcher(weights=checked, threads=threads, **params)
    with tqdm(total=args.repeats, unit="run", file=sys.stderr) as bar:
        results = bench_stereo(
            weights=weights,
            repeats=args.repeats,
            threads=threads,
            net_params=params,
            config=config,
            on_repeat=lambda _: bar.update(),
            baseline_weights=baseline,
        )
    print(format_stereo_bench(results))
    print(f"wrote {write_json_atomic(args.out, results)}")
    return EXIT_OK


def _mono(args: argparse.Namespace) -> int:
    import numpy as np

    from sensing.errors import InputError
    from sensing.fileio import read_image, write_image_atomic
    from sensing.mono import DEFAULT_MONO_WEIGHTS, MonoEstimator
    from sensing.outputs import disparity_preview
    from sensing.preprocess import to_uint8_bgr, white_level
    from sensing.types import DisparityMap

    if args.out.suffix.lower() != ".pfm":
        raise InputError(f"--out must name a .pfm file, got {args.out}")
    if args.preview is not None and args.preview.suffix.lower() != ".png":
        raise InputError(f"--preview must name a .png file, got {args.preview}")
    image = read_image(args.image)
    estimator = MonoEstimator(weights=str(args.weights or DEFAULT_MONO_WEIGHTS))
    disparity = estimator.predict(to_uint8_bgr(image, white_level=white_level(image)))
    write_image_atomic(args.out, disparity)
    print(f"relative disparity ({disparity.shape[1]}x{disparity.shape[0]}, 0..1, 1 = nearest) written to {args.out}")
    if args.preview is not None:
        preview = disparity_preview(DisparityMap(disparity, np.ones(disparity.shape, bool)), max_disparity_px=1.0)
        print(f"preview written to {write_image_atomic(args.preview, preview)}")
    return EXIT_OK


def _eval_mono(args: argparse.Namespace) -> int:
    from benchmarks.datasets import default_data_root, list_stereo_scenes
    from benchmarks.mono_eval import DEFAULT_MONO_DATASETS, eval_mono, format_mono_eval
    from sensing.fileio import write_json_atomic
    from sensing.mono import DEFAULT_MONO_WEIGHTS, MonoEstimator

    root = args.data or default_data_root()
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()] if args.datasets else list(DEFAULT_MONO_DATASETS)
    estimator = MonoEstimator(weights=str(args.weights or DEFAULT_MONO_WEIGHTS))  # bad weights: fail before the bar
    scenes = list_stereo_scenes(root, datasets)
    with _progress(len(scenes), label=lambda score: f"{score.dataset}/{score.scene}") as progress:
        results = eval_mono(root, datasets=datasets, estimator=estimator, on_scene=progress)
    print(format_mono_eval(results))
    print(f"\nwrote {write_json_atomic(args.out, results)}")
    return EXIT_OK


def _bench_mono(args: argparse.Namespace) -> int:
    from benchmarks.mono_bench import bench_mono, format_mono_bench
    from sensing.fileio import write_json_atomic
    from sensing.mono import DEFAULT_MONO_WEIGHTS, MonoEstimator

    if args.repeats < 1:
        raise GlassdepthError(f"--repeats must be at least 1, got {args.repeats}")
    if args.threads < 1:
        raise GlassdepthError(f"--threads must be at least 1, got {args.threads}")
    weights = str(args.weights or DEFAULT_MONO_WEIGHTS)
    MonoEstimator(weights=weights, threads=args.threads)  # missing or bad weights: fail before the progress bar
    with tqdm(total=args.repeats, unit="run", file=sys.stderr) as bar:
        results = bench_mono(weights=weights, repeats=args.repeats, threads=args.threads, on_repeat=lambda _: bar.update())
    print(format_mono_bench(results))
    print(f"wrote {write_json_atomic(args.out, results)}")
    return EXIT_OK


def _calib_perturb(args: argparse.Namespace) -> int:
    from calibration.drift import perturb_capture
    from sensing.capture import load_capture, save_capture

    angles = [args.pitch, args.yaw, args.roll]
    if not all(math.isfinite(a) and abs(a) <= 45.0 for a in angles):
        raise GlassdepthError(f"--pitch/--yaw/--roll must be finite angles within 45 degrees, got {angles}")
    capture = perturb_capture(load_capture(args.capture, frame=args.frame), angles)
    save_capture(capture, args.out)
    print(f"drifted capture (right camera turned by pitch {args.pitch}, yaw {args.yaw}, roll {args.roll} deg; "
          f"factory calibration kept) written to {args.out}")
    return EXIT_OK


def _calib_validate(args: argparse.Namespace) -> int:
    from calibration.validation import (
        list_captures,
        validate_captures,
        write_validation,
    )

    config = _load_config(args)
    captures = list_captures(args.captures)
    with _progress(len(captures), unit="capture", label=lambda record: f"{record.name}: {record.verdict}") as progress:
        summary = validate_captures(captures, config, on_capture=progress)
    write_validation(summary, args.out)
    print(summary.format_table())
    print(f"results in {args.out}")
    return {"holds": EXIT_OK, "drifted": EXIT_DRIFTED, "inconsistent": EXIT_INCONSISTENT}[summary.verdict.verdict]


@contextmanager
def _progress(total: int, *, unit: str = "scene", label: Callable[[Any], str] | None = None) -> Iterator[Callable[[Any], None]]:
    """A progress bar on stderr; yields the callback a long job calls after each item: it shows
    the item (``label(item)``, or the item itself) and advances the bar."""
    with tqdm(total=total, unit=unit, file=sys.stderr) as bar:

        def progress(item: Any) -> None:
            bar.set_postfix_str(label(item) if label else str(item))
            bar.update()

        yield progress


def _error(message: str) -> None:
    print(f"glassdepth: error: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
