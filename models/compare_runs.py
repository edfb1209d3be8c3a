"""Compare two training runs of the same config: does the training command reproduce its weights
and metrics? ``python -m models.compare_runs RUN_A.pt RUN_B.pt [--out FILE.json]``.

A run is its ``<name>.pt`` checkpoint with the ``<name>.json`` summary the training command writes
beside it (models/train_stereo.py, models/train_mono.py; models/average_weights.py writes them too). Runs must share their config except for
the :data:`EXECUTION_SETTINGS`. The comparison gives how many weight tensors are bit-identical and
the largest absolute and relative difference, for every validation metric the two histories share
the largest absolute difference over the validation steps, the run times and the execution
settings that differ.
"""

import argparse
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from models.training import read_checkpoint, read_run_summary
from sensing.fileio import write_json_atomic

#: Config settings that say where and how a run executes, not what it trains: runs may differ in
#: them (that is what a reproduction on other hardware checks, and a rerun beside the original
#: needs another ``name`` for its files), and a setting absent from an older run's record counts
#: as a difference of this kind.
EXECUTION_SETTINGS = ("device", "data_workers", "threads", "data_root", "name")


def compare_weights(state_a: dict[str, Any], state_b: dict[str, Any]) -> dict[str, Any]:
    """Tensor-by-tensor comparison of two state dicts (name -> torch tensor).

    Returns ``tensors`` (the count compared), ``identical`` (how many are bit-identical),
    ``max_abs_difference`` over the floating-point tensors, ``max_relative_difference`` (the
    largest of max |a - b| / max |a| per tensor) and ``mismatched_names`` (names or shapes only
    one side has). Raises ValueError when the two share no tensor.
    """
    shared = [name for name in state_a if name in state_b and state_a[name].shape == state_b[name].shape]
    if not shared:
        raise ValueError("the two checkpoints share no tensor: not runs of the same network")
    identical, max_abs, max_rel = 0, 0.0, 0.0
    for name in shared:
        a, b = state_a[name].numpy(), state_b[name].numpy()
        identical += int(np.array_equal(a, b))
        if np.issubdtype(a.dtype, np.floating) and a.size:
            difference = float(np.max(np.abs(a.astype(np.float64) - b)))
            max_abs = max(max_abs, difference)
            max_rel = max(max_rel, difference / max(float(np.max(np.abs(a))), 1e-12))
    mismatched = sorted((set(state_a) | set(state_b)) - set(shared))
    return {
        "tensors": len(shared),
        "identical": identical,
        "max_abs_difference": max_abs,
        "max_relative_difference": max_rel,
        "mismatched_names": mismatched,
    }


def compare_histories(history_a: list[dict[str, Any]], history_b: list[dict[str, Any]]) -> dict[str, Any]:
    """Validation metrics of two runs at the steps both validated at.

    Returns ``steps`` (the shared validation steps) and, per metric both report,
    ``{"max_abs_difference", "final_a", "final_b"}`` (final: at the last shared step).
    """
    by_step_b = {row["step"]: row["metrics"] for row in history_b}
    shared = [(row["step"], row["metrics"], by_step_b[row["step"]]) for row in history_a if row["step"] in by_step_b]
    metrics: dict[str, dict[str, float]] = {}
    if shared:
        names = [name for name in shared[-1][1] if name in shared[-1][2]]
        for name in names:
            pairs = [(a[name], b[name]) for _, a, b in shared if name in a and name in b]
            metrics[name] = {
                "max_abs_difference": max(abs(a - b) for a, b in pairs),
                "final_a": pairs[-1][0],
                "final_b": pairs[-1][1],
            }
    return {"steps": [step for step, _, _ in shared], "metrics": metrics}


def compare_runs(checkpoint_a: str | Path, checkpoint_b: str | Path) -> dict[str, Any]:
    """Weights (:func:`compare_weights`), validation history (:func:`compare_histories`) and run
    times of two runs, each a ``<name>.pt`` with its ``<name>.json`` summary beside it."""
    summaries = [read_run_summary(path) for path in (checkpoint_a, checkpoint_b)]
    configs = [summary["config"] for summary in summaries]
    differing = sorted(key for key in set(configs[0]) | set(configs[1]) if configs[0].get(key) != configs[1].get(key))
    recipe = [key for key in differing if key not in EXECUTION_SETTINGS]
    if recipe:
        raise ValueError(f"the runs have different configs (differing keys: {recipe}); nothing to reproduce")
    weights = compare_weights(read_checkpoint(checkpoint_a)["state_dict"], read_checkpoint(checkpoint_b)["state_dict"])
    return {
        "runs": [str(checkpoint_a), str(checkpoint_b)],
        "name": summaries[0].get("name"),
        "minutes": [summaries[0].get("minutes"), summaries[1].get("minutes")],
        "execution_differences": {key: [configs[0].get(key), configs[1].get(key)] for key in differing},
        "weights": weights,
        # Averaged weights (models.average_weights) have no validation history.
        "validation": compare_histories(summaries[0].get("history", []), summaries[1].get("history", [])),
    }


def format_comparison(result: dict[str, Any]) -> str:
    """A few lines for the terminal."""
    weights = result["weights"]
    lines = [
        f"{result['name']}: {weights['identical']} of {weights['tensors']} tensors bit-identical, "
        f"max |difference| {weights['max_abs_difference']:.3g} (relative {weights['max_relative_difference']:.3g})",
        "run time: " + " / ".join(f"{m:.1f} min" for m in result["minutes"] if m is not None and math.isfinite(m)),
        *[f"  {key}: {a} / {b}" for key, (a, b) in result["execution_differences"].items()],
    ]
    for name, values in result["validation"]["metrics"].items():
        lines.append(
            f"  {name}: final {values['final_a']:.4f} / {values['final_b']:.4f}, "
            f"max |difference| over {len(result['validation']['steps'])} validations {values['max_abs_difference']:.4f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.compare_runs", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs=2, metavar="RUN.pt", help="the two runs' checkpoints (their .json beside them)")
    parser.add_argument("--out", help="also write the comparison to this JSON file")
    args = parser.parse_args(argv)
    try:
        result = compare_runs(*args.checkpoints)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_comparison(result))
    if args.out:
        write_json_atomic(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
