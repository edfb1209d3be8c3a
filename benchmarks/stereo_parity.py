"""Parity of the pipeline's ``sgbm`` matcher with plain OpenCV SGBM on real data with ground truth.

``python -m benchmarks.stereo_parity --data ROOT [--datasets a,b] [--out FILE]`` evaluates both on
every scene, prints both tables and a per-dataset bad-2 comparison, and writes them as JSON.
Exit codes: 0 the pipeline is no worse on every dataset, 1 it is worse on some, 2 bad input.
"""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from benchmarks.datasets import default_data_root, list_stereo_scenes
from benchmarks.stereo_eval import SceneScore, StereoEvalReport, evaluate_methods, evaluate_stereo
from sensing.errors import GlassdepthError
from sensing.fileio import write_json_atomic
from sensing.stereo import SGBM_FIXED_POINT_SCALE, round_up_disparities
from sensing.types import DisparityMap

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "sgbm_parity.json"


def plain_sgbm(left: np.ndarray, right: np.ndarray, max_disparity_px: int) -> DisparityMap:
    """Plain ``cv2.StereoSGBM`` with the numbers of ``SgbmMatcher()``'s defaults, written out.

    An independent reference: no padding (the left border strip stays unmatched) and no code
    shared with :class:`sensing.stereo.SgbmMatcher` beyond the rounding of the search range.

    Parameters
    ----------
    left, right : (H, W, 3) uint8 BGR rectified pair
    max_disparity_px : search range in px, rounded up to a multiple of 16
    Returns
    -------
    DisparityMap : (H, W) float32 px; invalid where SGBM's fixed-point output is negative
    """
    channels = 1 if left.ndim == 2 else left.shape[2]
    block_size = 5
    sgbm = cv2.StereoSGBM.create(
        minDisparity=0,
        numDisparities=round_up_disparities(max_disparity_px),
        blockSize=block_size,
        P1=8 * channels * block_size**2,
        P2=32 * channels * block_size**2,
        disp12MaxDiff=1,
        uniquenessRatio=10,
        speckleWindowSize=100,
        speckleRange=2,
        mode=cv2.STEREO_SGBM_MODE_SGBM_3WAY,
    )
    raw = sgbm.compute(left, right)
    return DisparityMap(raw.astype(np.float32) / SGBM_FIXED_POINT_SCALE, raw >= 0)


def compare_bad2(ours: StereoEvalReport, plain: StereoEvalReport) -> dict[str, dict[str, Any]]:
    """Per dataset: mean bad-2 of both, their difference and ``"no worse"`` or ``"worse"``."""
    plain_means = plain.dataset_means()
    comparison = {}
    for dataset, means in ours.dataset_means().items():
        ours_bad2, plain_bad2 = means["bad2"], plain_means[dataset]["bad2"]
        comparison[dataset] = {
            "bad2_ours": ours_bad2,
            "bad2_plain": plain_bad2,
            "delta": ours_bad2 - plain_bad2,
            "verdict": "no worse" if ours_bad2 <= plain_bad2 else "worse",
        }
    return comparison


def format_comparison(comparison: dict[str, dict[str, Any]]) -> str:
    """Text table of :func:`compare_bad2`, bad-2 in %."""
    lines = [f"{'dataset':<16}{'bad2 ours %':>12}{'bad2 plain %':>14}{'delta pp':>10}  verdict"]
    for dataset, row in comparison.items():
        lines.append(
            f"{dataset:<16}{100 * row['bad2_ours']:>12.2f}{100 * row['bad2_plain']:>14.2f}"
            f"{100 * row['delta']:>+10.2f}  {row['verdict']}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit code documented in the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stereo_parity", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_root(), help="data root holding stereo/")
    parser.add_argument("--datasets", default=None, help="comma-separated dataset names (default: all)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON file to write")
    args = parser.parse_args(argv)
    datasets = args.datasets.split(",") if args.datasets else None
    try:
        scenes = list_stereo_scenes(args.data, datasets)
        with tqdm(total=2 * len(scenes), unit="scene") as bar:

            def progress(score: SceneScore) -> None:
                bar.set_postfix_str(f"{score.dataset}/{score.scene}")
                bar.update()

            (ours,) = evaluate_methods(args.data, datasets, ["sgbm"], on_scene=progress)
            plain = evaluate_stereo(scenes, plain_sgbm, method="plain_sgbm", on_scene=progress)
    except GlassdepthError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    comparison = compare_bad2(ours, plain)
    print(ours.format_table(), plain.format_table(), format_comparison(comparison), sep="\n\n")
    payload = {"data_root": str(args.data), "ours": ours.to_dict(), "plain": plain.to_dict(), "comparison": comparison}
    print(f"\nwrote {write_json_atomic(args.out, payload)}")
    return 0 if all(row["verdict"] == "no worse" for row in comparison.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
