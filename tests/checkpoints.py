"""Checkpoints written as the training commands write them, for the tests of the tools that read them."""

import json
from pathlib import Path

from torch import nn

from models.stereo_net import StereoNetConfig
from models.training import checkpoint_bytes

#: A stereo network small enough for fast export and averaging tests.
SMALL_STEREO = StereoNetConfig(levels=16, half_channels=8, quarter_channels=16, eighth_channels=16, aggregation_channels=16, refine_channels=8)


def write_run(folder: Path, name: str, model: nn.Module, train_scenes: list[str] | None = None) -> str:
    """``<name>.pt`` and the ``<name>.json`` run summary fields the export and the averaging read
    (7 steps; by default trained on Tsukuba); returns the checkpoint's path."""
    (folder / f"{name}.pt").write_bytes(checkpoint_bytes(model))
    config = {"name": name, "train_scenes": train_scenes or ["middlebury2001/tsukuba"], "steps": 7}
    (folder / f"{name}.json").write_text(json.dumps({"name": name, "config": config}))
    return str(folder / f"{name}.pt")
