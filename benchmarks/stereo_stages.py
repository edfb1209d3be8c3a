"""Where the stereo network's errors arise: bad-pixel rates after each of its stages.

``python -m benchmarks.stereo_stages WEIGHTS.pt --data ROOT [--datasets a,b] [--out FILE.json]``
scores, on every scene with ground truth, the disparity of the 1/4 cost volume (soft-argmax),
after the 1/2 refinement (both bilinearly upsampled), the final output, and that output after the
runtime's background fill of unmatched pixels with ``NetMatcher``'s default settings (``filled``:
what it returns), at each scene's full resolution. A refinement that removes few of the 1/4
stage's errors, or errors that are mostly between 1 and 4 px, point at different fixes than gross
errors at 1/4. Runs the PyTorch
checkpoint (the ONNX file exposes only the final output), so it needs torch (the ``train`` extra).
Scenes whose search range exceeds the network's reach are skipped and listed.
"""

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.datasets import StereoScene, default_data_root, list_stereo_scenes, search_range_px
from benchmarks.metrics import bad_pixel_rate
from models.train_stereo import load_checkpoint, predict_stages
from models.stereo_net import GlassStereoNet
from sensing.errors import InputError
from sensing.fileio import write_json_atomic
from sensing.stereo import NetMatcher
from sensing.visibility import fill_unmatched

#: Error thresholds (px) of the reported bad-pixel rates.
THRESHOLDS_PX = (1.0, 2.0, 4.0)


def score_stages(model: GlassStereoNet, scenes: Iterable[StereoScene]) -> dict[str, Any]:
    """``{"scenes": [...], "skipped": [...]}``: per scene, ``bad1``, ``bad2``, ``bad4``
    (fractions of ground-truth pixels) of each stage (``quarter``, ``half``, ``final``, ``filled``)."""
    scored, skipped = [], []
    for scene in scenes:
        gt = scene.disparity_gt()
        search_px = search_range_px(gt)
        if search_px > model.config.max_disparity_px:
            skipped.append(f"{scene.dataset}/{scene.name}: search range {search_px} px > {model.config.max_disparity_px} px")
            continue
        stages = predict_stages(model, scene.left(), scene.right())
        final = np.clip(stages["final"], 0.0, float(search_px))
        stages["filled"] = fill_unmatched(final, out_of_view=NetMatcher.fill_out_of_view, occluded=NetMatcher.fill_occluded)
        rates = {
            stage: {f"bad{threshold:g}": bad_pixel_rate(disparity, gt, threshold) for threshold in THRESHOLDS_PX}
            for stage, disparity in stages.items()
        }
        scored.append({"dataset": scene.dataset, "scene": scene.name, **rates})
    return {"scenes": scored, "skipped": skipped}


def format_stages(result: dict[str, Any]) -> str:
    """One line per scene: bad-1 / bad-2 / bad-4 % of each stage."""
    lines = []
    for row in result["scenes"]:
        cells = [f"{stage} " + " / ".join(f"{100 * value:5.2f}" for value in row[stage].values()) for stage in ("quarter", "half", "final", "filled")]
        lines.append(f"{row['dataset']}/{row['scene']:<12}  " + "  |  ".join(cells))
    lines.extend(f"skipped {line}" for line in result["skipped"])
    return "\n".join(["bad-1 / bad-2 / bad-4 % after each stage", *lines])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stereo_stages", description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", type=Path, help="a .pt checkpoint written by models.train_stereo")
    parser.add_argument("--data", type=Path, default=None, help="data root holding stereo/<dataset>/<scene> (default: $GLASSDEPTH_DATA or ../shared/data)")
    parser.add_argument("--datasets", default=None, help="comma-separated datasets (default: all)")
    parser.add_argument("--out", type=Path, default=None, help="JSON to write")
    args = parser.parse_args(argv)
    if not args.weights.is_file():
        print(f"error: checkpoint not found: {args.weights}", file=sys.stderr)
        return 2
    try:
        model = load_checkpoint(args.weights)
    except Exception as error:  # noqa: BLE001 - torch.load's and the config's errors share no base class
        print(f"error: {args.weights} is not a stereo checkpoint of models.train_stereo: {type(error).__name__}: {error}".splitlines()[0], file=sys.stderr)
        return 2
    try:
        scenes = list_stereo_scenes(args.data or default_data_root(), args.datasets.split(",") if args.datasets else None)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    result = {"weights": str(args.weights), **score_stages(model, scenes)}
    print(format_stages(result))
    if args.out:
        write_json_atomic(args.out, result)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
