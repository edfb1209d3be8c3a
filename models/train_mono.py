"""Train the monocular network: ``python -m models.train_mono --config configs/train_mono.yaml``.

Each batch mixes procedural perspective scenes (:mod:`models.data.mono_scenes`) with random
crops of real views (:mod:`models.data.mono_views`: Middlebury 2001/2003/2006 left and right
views with their disparities, holes in the left ground truth filled by confident pseudo-labels
of our stereo network). Loss: scale-and-shift-invariant L1 plus multi-scale gradient matching
(:func:`models.losses.mono_loss`). Seeded; one data worker, so the sample stream is
reproducible. Validation every ``validate_every`` steps on held-out scenes (monitoring only).
At the end: ``<name>.pt``, ``<name>.onnx``, ``<name>.json`` (history) and the model card ``<name>.md``.
"""

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from benchmarks.datasets import default_data_root
from benchmarks.metrics import relative_depth_errors
from models.data.mono_scenes import MonoSample, random_mono_scene
from models.data.mono_views import MonoView, load_mono_views, random_view_crop
from models.export import count_macs, export_mono_onnx
from models.losses import mono_loss
from models.mono_net import STRIDE, GlassMonoNet, MonoNetConfig
from models.train_stereo import image_tensor
from models.training import (
    REPO_ROOT,
    check_training_config,
    device_description,
    optimise,
    read_checkpoint,
    read_training_yaml,
    save_weights,
    training_device,
    training_loader,
    training_main,
)
from sensing.fileio import write_bytes_atomic, write_json_atomic
from sensing.mono import mono_network_input, normalised_output
from sensing.stereo import build_matcher

#: Long side (px) the network sees at inference; validation uses it too.
INFERENCE_LONG_SIDE_PX = 384
#: Fixed procedural validation scenes: size (h, w) and seed.
SYNTHETIC_VALIDATION = ((288, 384), 2_000_003)


@dataclass(frozen=True)
class MonoTrainConfig:
    """Everything a training run depends on (see configs/train_mono.yaml for meanings)."""

    name: str
    seed: int
    steps: int
    batch_size: int
    crop_hw: tuple[int, int]
    synthetic_fraction: float
    learning_rate: float
    weight_decay: float
    gradient_weight: float
    threads: int
    validate_every: int
    synthetic_validation_scenes: int
    pseudo_label_weights: str | None
    model: MonoNetConfig
    train_scenes: list[str] = field(default_factory=list)
    validation_scenes: list[str] = field(default_factory=list)
    data_root: str | None = None
    device: str = "cpu"
    data_workers: int = 1

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> "MonoTrainConfig":
        raw = read_training_yaml(path, cls, overrides)
        raw["crop_hw"] = tuple(raw["crop_hw"])
        raw["model"] = MonoNetConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.get("model", {}).items()})
        config = cls(**raw)
        check_training_config(config, STRIDE)
        return config

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["model"] = self.model.to_dict()
        return out


def to_tensors(sample: MonoSample) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(3, H, W) float32 image in [0, 255], (1, H, W) target, (1, H, W) bool valid."""
    return image_tensor(sample.image)[0], torch.from_numpy(sample.inverse_depth)[None], torch.from_numpy(sample.valid)[None]


class TrainingViews(IterableDataset):
    """Endless stream of training samples, seeded by (seed, worker)."""

    def __init__(self, config: MonoTrainConfig, views: list[MonoView]) -> None:
        super().__init__()
        self.config = config
        self.views = views

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        worker = get_worker_info()
        rng = np.random.default_rng([self.config.seed, worker.id if worker else 0])
        height, width = self.config.crop_hw
        while True:
            if not self.views or rng.random() < self.config.synthetic_fraction:
                sample = random_mono_scene(rng, height=height, width=width)
            else:
                sample = random_view_crop(rng, self.views[int(rng.integers(len(self.views)))], height=height, width=width)
            yield to_tensors(sample)


def predict(model: GlassMonoNet, image: np.ndarray) -> np.ndarray:
    """Relative disparity (H, W) float32 in [0, 1] of a uint8 BGR image, with the PyTorch model
    (the image is resized to the inference long side, as the runtime does)."""
    device = next(model.parameters()).device
    feed = torch.from_numpy(mono_network_input(image, long_side_px=INFERENCE_LONG_SIDE_PX, stride=STRIDE)).to(device)
    with torch.no_grad():
        output = model.eval()(feed).cpu().numpy()
    return normalised_output(output, image.shape[:2], INFERENCE_LONG_SIDE_PX)


def validate(model: GlassMonoNet, synthetic: list[MonoSample], views: list[MonoView]) -> dict[str, float]:
    """AbsRel and δ<1.25 after scale-and-shift alignment, on the procedural scenes and held-out views."""
    metrics: dict[str, float] = {}
    scores = [
        relative_depth_errors(predict(model, s.image), np.where(s.valid & (s.inverse_depth > 0), s.inverse_depth, np.inf))
        for s in synthetic
    ]
    if scores:
        metrics["synthetic_abs_rel"] = float(np.mean([s["abs_rel"] for s in scores]))
        metrics["synthetic_delta1"] = float(np.mean([s["delta1"] for s in scores]))
    real = [relative_depth_errors(predict(model, v.image), v.disparity) for v in views]
    if real:
        metrics["real_abs_rel"] = float(np.mean([s["abs_rel"] for s in real]))
        metrics["real_delta1"] = float(np.mean([s["delta1"] for s in real]))
    return metrics


def stereo_pseudo_labeller(weights: str | Path) -> Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray]]:
    """(left, right, max_disparity_px) -> our stereo network's left disparity and confidence, with
    the ONNX ``weights`` (a path relative to the repository root, or absolute)."""
    matcher = build_matcher("net", weights=str(REPO_ROOT / weights))

    def label(left: np.ndarray, right: np.ndarray, max_disparity_px: int) -> tuple[np.ndarray, np.ndarray]:
        disparity, confidence = matcher.match_with_confidence(left, right, max_disparity_px=max_disparity_px)
        return disparity.values_px, confidence

    return label


def model_card(config: MonoTrainConfig, summary: dict[str, Any]) -> str:
    """The Markdown model card of a finished run."""
    last = summary["history"][-1]["metrics"] if summary["history"] else {}
    lines = [
        f"# {config.name}: GlassMonoNet weights",
        "",
        "Small monocular relative-depth network for CPU inference (models/mono_net.py): MobileNetV2-style",
        "encoder to 1/32 with a global-context vector, mobile up-blocks (pointwise, x2 upsample, skip,",
        "depthwise, pointwise) with a row-coordinate channel, output relative inverse depth normalised to [0, 1].",
        "",
        "| item | value |",
        "|---|---|",
        f"| parameters | {summary['parameters']:,} |",
        f"| MACs at 384x288 | {summary['gmacs_384x288']:.2f} G |",
        f"| input | long side {INFERENCE_LONG_SIDE_PX} px, padded to multiples of {STRIDE} |",
        f"| ONNX size | {summary['onnx_bytes'] / 1e6:.2f} MB |",
        f"| steps x batch | {config.steps} x {config.batch_size} crops of {config.crop_hw[1]}x{config.crop_hw[0]} |",
        f"| training time | {summary['minutes']:.1f} min on {summary['trained_on']} |",
        f"| seed | {config.seed} |",
        "",
        "## Data",
        f"- {100 * config.synthetic_fraction:.0f}% procedural perspective scenes (models/data/mono_scenes.py: rooms,",
        "  corridors, streets, open ground, tabletops; exact inverse depth).",
        f"- {100 * (1 - config.synthetic_fraction):.0f}% crops of the left and right views (with their published disparities) of:",
        *[f"  - {name}" for name in config.train_scenes],
        "  " + (f"with holes in the left ground truth filled by confident pseudo-labels of our stereo network ({config.pseudo_label_weights})."
                if config.pseudo_label_weights else "(no pseudo-labels)."),
        "- Never trained on: middeval3Q, eth3d, kitti2012, kitti2015, nor the validation scenes below.",
        "",
        "## Loss",
        f"Scale-and-shift-invariant L1 + {config.gradient_weight} x multi-scale gradient matching (MiDaS).",
        "",
        "## Validation during training (monitoring only)",
        f"Held out: {', '.join(config.validation_scenes) or 'none'}; {config.synthetic_validation_scenes} fixed procedural scenes.",
        "",
        "| step | " + " | ".join(last) + " |",
        "|---|" + "---|" * len(last),
        *[f"| {row['step']} | " + " | ".join(f"{v:.3f}" for v in row["metrics"].values()) + " |" for row in summary["history"]],
        "",
        "abs_rel and delta1 after a least-squares scale-and-shift alignment in disparity (benchmarks/metrics.py).",
        "",
        "Reproduce: `python -m models.train_mono --config configs/train_mono.yaml`.",
        "Evaluation: `glassdepth eval mono --data ../shared/data` (results in benchmarks/results/).",
        "",
    ]
    return "\n".join(lines)


def train(config: MonoTrainConfig, out_dir: Path, *, progress: bool = True) -> dict[str, Any]:
    """Run the training of ``config``; write ``<name>.pt``, ``.onnx``, ``.json`` and ``.md`` into
    ``out_dir``; return the run summary."""
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    data_root = Path(config.data_root) if config.data_root else default_data_root()
    labeller = stereo_pseudo_labeller(config.pseudo_label_weights) if config.pseudo_label_weights else None
    views = load_mono_views(data_root, config.train_scenes, pseudo_labeller=labeller) if config.synthetic_fraction < 1.0 else []
    held_out = [v for v in load_mono_views(data_root, config.validation_scenes) if v.name.endswith("/left")]
    (val_h, val_w), val_seed = SYNTHETIC_VALIDATION
    val_rng = np.random.default_rng(val_seed)
    synthetic_val = [random_mono_scene(val_rng, height=val_h, width=val_w) for _ in range(config.synthetic_validation_scenes)]

    model = GlassMonoNet(config.model)
    device = training_device(config.device)
    loader = training_loader(TrainingViews(config, views), config.batch_size, config.data_workers, device)
    history, minutes = optimise(
        model, loader,
        lambda batch: mono_loss(model.forward_raw(batch[0]), *batch[1:], gradient_weight=config.gradient_weight),
        lambda: validate(model, synthetic_val, held_out),
        name=config.name, steps=config.steps, learning_rate=config.learning_rate, weight_decay=config.weight_decay,
        validate_every=config.validate_every, device=device, shown=("ssi", "gradient"), progress=progress,
    )

    metadata = {"name": config.name, "train_scenes": config.train_scenes, "steps": config.steps}
    onnx_path = save_weights(model, out_dir, config.name, lambda trained, path: export_mono_onnx(trained, path, metadata))
    summary = {
        "name": config.name,
        "parameters": sum(p.numel() for p in model.parameters()),
        "gmacs_384x288": count_macs(model, 288, 384, views=1) / 1e9,
        "onnx_bytes": onnx_path.stat().st_size,
        "minutes": minutes,
        "trained_on": device_description(device, config.threads),
        "config": config.to_dict(),
        "history": history,
    }
    write_json_atomic(out_dir / f"{config.name}.json", summary)
    write_bytes_atomic(out_dir / f"{config.name}.md", model_card(config, summary).encode())
    return summary


def load_checkpoint(path: str | Path) -> GlassMonoNet:
    """The model saved by :func:`train` at ``path`` (a ``.pt`` file), in eval mode."""
    checkpoint = read_checkpoint(path)
    config = MonoNetConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in checkpoint["config"].items()})
    model = GlassMonoNet(config)
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()


def main(argv: list[str] | None = None) -> int:
    return training_main(
        argv, prog="python -m models.train_mono", description=__doc__.split("\n\n")[0],
        config_hint="configs/train_mono.yaml", load_config=MonoTrainConfig.from_yaml, train=train,
    )


if __name__ == "__main__":
    sys.exit(main())
