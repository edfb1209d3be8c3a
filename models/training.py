"""What the training commands share: the learning-rate schedule, checkpoints and the command line."""

import argparse
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

#: Where shipped weights live.
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def one_cycle(optimiser: torch.optim.Optimizer, learning_rate: float, steps: int) -> torch.optim.lr_scheduler.OneCycleLR:
    """One-cycle schedule warming up over 5% of the steps; runs too short for two warm-up steps
    (smoke runs) warm up over 30% (OneCycleLR divides by the warm-up length, which must not be 0)."""
    warmup = 0.05 if 0.05 * steps >= 2 else 0.3
    return torch.optim.lr_scheduler.OneCycleLR(optimiser, learning_rate, total_steps=steps, pct_start=warmup)


def checkpoint_bytes(model: nn.Module) -> bytes:
    """The ``.pt`` checkpoint of a model with a ``config.to_dict()``: its config and state dict."""
    buffer = io.BytesIO()
    torch.save({"config": model.config.to_dict(), "state_dict": model.state_dict()}, buffer)
    return buffer.getvalue()


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """``{"config": dict, "state_dict": ...}`` as :func:`checkpoint_bytes` wrote it."""
    return torch.load(path, map_location="cpu", weights_only=True)


def training_main(
    argv: list[str] | None,
    *,
    prog: str,
    description: str,
    config_hint: str,
    load_config: Callable[..., Any],
    train: Callable[[Any, Path], dict[str, Any]],
) -> int:
    """``python -m models.train_*``: ``--config`` YAML, ``--out-dir``, ``--steps`` and ``--data-root``
    overrides; trains and prints the run time and the last validation."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", required=True, help=f"training YAML ({config_hint})")
    parser.add_argument("--out-dir", default=str(WEIGHTS_DIR), help="where the weights and model card go")
    parser.add_argument("--steps", type=int, help="override the number of steps (e.g. for a smoke run)")
    parser.add_argument("--data-root", help="override the data root")
    args = parser.parse_args(argv)
    config = load_config(args.config, steps=args.steps, data_root=args.data_root)
    summary = train(config, Path(args.out_dir))
    last = summary["history"][-1]["metrics"] if summary["history"] else {}
    print(json.dumps({"minutes": round(summary["minutes"], 1), "final_validation": last}, indent=2))
    return 0
