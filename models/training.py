"""What the training commands share: the learning-rate schedule, checkpoints and the command line."""

import argparse
import io
import json
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader, IterableDataset
from tqdm import tqdm

from sensing.fileio import write_bytes_atomic

#: The repository root: relative paths in training configs start here.
REPO_ROOT = Path(__file__).resolve().parent.parent
#: Where shipped weights live.
WEIGHTS_DIR = REPO_ROOT / "models" / "weights"
#: Values of a training config's ``device`` setting (see :func:`training_device`).
DEVICES = ("cpu", "cuda", "auto")


def read_training_yaml(path: str | Path, config_class: type, overrides: dict[str, Any]) -> dict[str, Any]:
    """The raw settings of a training YAML with the non-None ``overrides`` on top; a key that is
    not a field of the ``config_class`` dataclass is an error (a typo must not pass silently)."""
    raw = yaml.safe_load(Path(path).read_text()) | {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(raw) - {f.name for f in fields(config_class)})
    if unknown:
        raise ValueError(f"{path}: unknown keys {unknown}")
    return raw


def check_training_config(config: Any, stride: int) -> None:
    """Checks both training configs share: crops on the network's stride, every ``*_fraction``
    setting a share in [0, 1], real scenes to draw from when not every sample is procedural, a
    known ``device`` and at least one data worker."""
    if any(size % stride for size in config.crop_hw):
        raise ValueError(f"crop_hw must be multiples of {stride}, got {config.crop_hw}")
    for setting in fields(config):
        if setting.name.endswith("_fraction") and not 0.0 <= getattr(config, setting.name) <= 1.0:
            raise ValueError(f"{setting.name} must be in [0, 1], got {getattr(config, setting.name)}")
    if config.synthetic_fraction < 1.0 and not config.train_scenes:
        raise ValueError("synthetic_fraction < 1 needs train_scenes")
    if config.device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {config.device!r}")
    if config.data_workers < 1:
        raise ValueError(f"data_workers must be at least 1, got {config.data_workers}")


def training_device(name: str) -> torch.device:
    """The torch device of a config's ``device`` setting: ``cpu``; ``cuda`` (an error when torch
    sees no CUDA device); ``auto`` (CUDA when torch sees one, else the CPU)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: cuda, but torch sees no CUDA device (set device: cpu or auto)")
    return torch.device(name)


def device_description(device: torch.device, threads: int) -> str:
    """What a model card says the run trained on: ``2 CPU threads`` or the CUDA device's name."""
    return f"{threads} CPU threads" if device.type == "cpu" else f"{torch.cuda.get_device_name(device)} (CUDA)"


def training_loader(dataset: IterableDataset, batch_size: int, data_workers: int, device: torch.device) -> DataLoader:
    """Batches of an endless sample stream from ``data_workers`` processes (each seeds its own
    generator from the config's seed and its worker index, so a run is reproducible for a given
    worker count); pinned memory when training on CUDA."""
    return DataLoader(
        dataset, batch_size=batch_size, num_workers=data_workers, persistent_workers=True, pin_memory=device.type == "cuda"
    )


def one_cycle(optimiser: torch.optim.Optimizer, learning_rate: float, steps: int) -> torch.optim.lr_scheduler.OneCycleLR:
    """One-cycle schedule warming up over 5% of the steps; runs too short for two warm-up steps
    (smoke runs) warm up over 30% (OneCycleLR divides by the warm-up length, which must not be 0)."""
    warmup = 0.05 if 0.05 * steps >= 2 else 0.3
    return torch.optim.lr_scheduler.OneCycleLR(optimiser, learning_rate, total_steps=steps, pct_start=warmup)


def optimise(
    model: nn.Module,
    batches: Iterable[Any],
    loss_of: Callable[[Any], tuple[torch.Tensor, dict[str, float]]],
    validate: Callable[[], dict[str, float]],
    *,
    name: str,
    steps: int,
    learning_rate: float,
    weight_decay: float,
    validate_every: int,
    shown: tuple[str, str],
    device: torch.device = torch.device("cpu"),
    progress: bool = True,
) -> tuple[list[dict[str, Any]], float]:
    """The training loop both networks share: AdamW with :func:`one_cycle`, gradients clipped to
    norm 1, a running mean of the loss terms (two of them, ``shown``, on the progress bar), and
    ``validate()`` every ``validate_every`` steps and at the end.

    The model and every batch (a sequence of tensors) are moved to ``device``.
    loss_of : batch -> (loss, its named terms as floats); validate : () -> named metrics
    Returns the validation history (step, minutes, running loss terms, metrics) and the minutes taken.
    """
    model.to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    schedule = one_cycle(optimiser, learning_rate, steps)
    history: list[dict[str, Any]] = []
    start = time.perf_counter()
    bar = tqdm(total=steps, desc=f"training {name}", disable=not progress, file=sys.stderr)
    batch_iter = iter(batches)
    running: dict[str, float] = {}
    for step in range(1, steps + 1):
        model.train()
        loss, terms = loss_of([tensor.to(device, non_blocking=True) for tensor in next(batch_iter)])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        schedule.step()
        running = {k: 0.98 * running.get(k, v) + 0.02 * v for k, v in terms.items()}
        bar.update(1)
        bar.set_postfix({key: f"{running[key]:.3f}" for key in shown})
        if step % validate_every == 0 or step == steps:
            metrics = validate()
            history.append({"step": step, "minutes": (time.perf_counter() - start) / 60, "loss": running, "metrics": metrics})
            bar.write(f"step {step}: " + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
    bar.close()
    return history, (time.perf_counter() - start) / 60


def checkpoint_bytes(model: nn.Module) -> bytes:
    """The ``.pt`` checkpoint of a model with a ``config.to_dict()``: its config and state dict."""
    buffer = io.BytesIO()
    torch.save({"config": model.config.to_dict(), "state_dict": model.state_dict()}, buffer)
    return buffer.getvalue()


def save_weights(model: nn.Module, out_dir: Path, name: str, export: Callable[[nn.Module, Path], None]) -> Path:
    """Write ``<name>.pt`` (:func:`checkpoint_bytes`) and, by ``export(model, path)``,
    ``<name>.onnx`` of the trained ``model`` (moved to the CPU, in eval mode) into ``out_dir``;
    return the ONNX path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model.cpu().eval()
    write_bytes_atomic(out_dir / f"{name}.pt", checkpoint_bytes(model))
    onnx_path = out_dir / f"{name}.onnx"
    export(model, onnx_path)
    return onnx_path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """``{"config": dict, "state_dict": ...}`` as :func:`checkpoint_bytes` wrote it."""
    return torch.load(path, map_location="cpu", weights_only=True)


def read_run_summary(checkpoint_path: str | Path) -> dict[str, Any]:
    """The summary ``<name>.json`` a training run wrote beside its checkpoint ``<name>.pt``.

    Raises FileNotFoundError when either file is missing and ValueError when the JSON is not a
    run summary (unreadable, or without a ``config``).
    """
    checkpoint_path = Path(checkpoint_path)
    summary_path = checkpoint_path.with_suffix(".json")
    if not checkpoint_path.is_file() or not summary_path.is_file():
        raise FileNotFoundError(f"{checkpoint_path} and {summary_path.name} beside it are needed (as training writes them); not found")
    try:
        summary = json.loads(summary_path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{summary_path}: not a training run summary ({error})") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("config"), dict):
        raise ValueError(f"{summary_path}: not a training run summary (no config)")
    return summary


def warm_start(model: nn.Module, path: str | Path) -> dict[str, list[str]]:
    """Copy into ``model`` every tensor of the checkpoint at ``path`` whose name and shape match.

    Returns the names copied (``loaded``), those of ``model`` left at their initialisation
    (``new``) and those of the checkpoint left out (``unused``: layers the model no longer has).
    A checkpoint that matches nothing is an error (the wrong file, most likely).
    """
    source = read_checkpoint(path)["state_dict"]
    target = model.state_dict()
    loaded = [name for name, tensor in source.items() if name in target and target[name].shape == tensor.shape]
    if not loaded:
        raise ValueError(f"{path}: no tensor matches the model; not a checkpoint of this network")
    model.load_state_dict({name: source[name] for name in loaded}, strict=False)
    return {"loaded": loaded, "new": sorted(set(target) - set(loaded)), "unused": sorted(set(source) - set(loaded))}


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
