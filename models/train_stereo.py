"""Train the stereo network: ``python -m models.train_stereo --config configs/train_stereo.yaml``.

Each batch mixes procedural pairs (:mod:`models.data.synthetic`) with random crops of the real
training scenes (:mod:`models.data.real_crops`) and, with ``rendered_fraction``, of 3D scenes
rendered once at the start (:mod:`models.data.rendered_stereo`), all with photometric differences
between the views. Seeded; one data worker, so the sample stream is reproducible. Validation every
``validate_every`` steps on fixed procedural pairs and on held-out real scenes (monitoring only).
At the end: ``<name>.pt`` (state dict + config), ``<name>.onnx`` and the model card ``<name>.md``.
"""

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import IterableDataset, get_worker_info

from benchmarks.datasets import default_data_root
from benchmarks.metrics import bad_pixel_rate, end_point_error
from models.data.real_crops import LoadedScene, load_scenes, random_crop
from models.data.rendered_stereo import render_stereo_scenes
from models.data.synthetic import (
    StereoSample,
    photometric_differences,
    random_stereo_pair,
)
from models.export import count_macs, export_stereo_onnx
from models.losses import stereo_loss
from models.stereo_net import STRIDE, GlassStereoNet, StereoNetConfig
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
    warm_start,
)
from sensing.fileio import write_bytes_atomic, write_json_atomic
from sensing.stereo import pad_to_stride

#: Fixed procedural validation pairs: size (h, w) and seed.
SYNTHETIC_VALIDATION = ((256, 384), 1_000_003)


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on (see configs/train_stereo.yaml for meanings)."""

    name: str
    seed: int
    steps: int
    batch_size: int
    crop_hw: tuple[int, int]
    max_disparity_px: float
    synthetic_fraction: float
    real_scale_range: tuple[float, float]
    learning_rate: float
    weight_decay: float
    threads: int
    validate_every: int
    synthetic_validation_pairs: int
    loss_weights: dict[str, float]
    model: StereoNetConfig
    train_scenes: list[str] = field(default_factory=list)
    validation_scenes: list[str] = field(default_factory=list)
    data_root: str | None = None
    init_weights: str | None = None
    mirror_fraction: float = 0.0
    grey_fraction: float = 0.0
    low_texture_fraction: float = 0.0
    device: str = "cpu"
    data_workers: int = 1
    robust_scale_px: float | None = None
    alternate_crop: tuple[int, int, int] | None = None
    rendered_fraction: float = 0.0
    rendered_scenes: int = 0
    rendered_hw: tuple[int, int] = (384, 512)

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> "TrainConfig":
        raw = read_training_yaml(path, cls, overrides)
        raw["crop_hw"] = tuple(raw["crop_hw"])
        raw["real_scale_range"] = tuple(raw["real_scale_range"])
        if raw.get("alternate_crop") is not None:
            raw["alternate_crop"] = tuple(raw["alternate_crop"])
        if "rendered_hw" in raw:
            raw["rendered_hw"] = tuple(raw["rendered_hw"])
        raw["model"] = StereoNetConfig(**raw.get("model", {}))
        config = cls(**raw)
        check_training_config(config, STRIDE)
        if config.robust_scale_px is not None and not config.robust_scale_px > 0:
            raise ValueError(f"robust_scale_px must be positive or null, got {config.robust_scale_px}")
        if config.alternate_crop is not None:
            if len(config.alternate_crop) != 3 or min(config.alternate_crop) < 1 or any(size % STRIDE for size in config.alternate_crop[:2]):
                raise ValueError(f"alternate_crop must be [height, width, batch_size] with sizes multiples of {STRIDE}, got {config.alternate_crop}")
        if config.synthetic_fraction + config.rendered_fraction > 1.0:
            raise ValueError(f"synthetic_fraction + rendered_fraction must be at most 1, got {config.synthetic_fraction} + {config.rendered_fraction}")
        if config.rendered_fraction > 0 and config.rendered_scenes < 1:
            raise ValueError("rendered_fraction > 0 needs rendered_scenes >= 1")
        if len(config.rendered_hw) != 2 or min(config.rendered_hw) < 1:
            raise ValueError(f"rendered_hw must be [height, width] in px, got {list(config.rendered_hw)}")
        return config

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["model"] = self.model.to_dict()
        return out

    def data_path(self) -> Path:
        """The data root: ``data_root`` if set, else $GLASSDEPTH_DATA or ../shared/data."""
        return Path(self.data_root) if self.data_root else default_data_root()


def image_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 BGR -> (1, 3, H, W) float32 in [0, 255]."""
    return torch.from_numpy(image.transpose(2, 0, 1).copy()).float()[None]


def to_tensors(sample: StereoSample) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(3, H, W) float32 views in [0, 255], (1, H, W) disparity px, (1, H, W) bool valid."""
    left, right = image_tensor(sample.left)[0], image_tensor(sample.right)[0]
    return left, right, torch.from_numpy(sample.disparity)[None], torch.from_numpy(sample.valid)[None]


class TrainingPairs(IterableDataset):
    """Endless stream of training pairs of ``crop_hw`` (default: the config's), seeded by
    (seed, worker) and, for a second stream of the same run, by ``stream`` > 0 as well.

    Each pair is procedural with probability ``synthetic_fraction``, a crop of a ``rendered``
    scene with ``rendered_fraction``, else a crop of a real ``scenes`` entry."""

    def __init__(
        self,
        config: TrainConfig,
        scenes: list[LoadedScene],
        *,
        rendered: list[LoadedScene] | None = None,
        crop_hw: tuple[int, int] | None = None,
        stream: int = 0,
    ) -> None:
        super().__init__()
        self.config = config
        self.scenes = scenes
        self.rendered = rendered or []
        self.mirrored = {id(scene): scene.mirrored() for scene in [*self.scenes, *self.rendered] if scene.right_disparity is not None}
        self.crop_hw = crop_hw or config.crop_hw
        self.stream = stream

    @classmethod
    def of_config(cls, config: TrainConfig, *, progress: bool = False) -> "TrainingPairs":
        """The stream of ``config``, with its real training scenes loaded from its data root and
        its ``rendered_scenes`` rendered (seeded by the config's seed, on ``threads`` processes)."""
        scenes = load_scenes(config.data_path(), config.train_scenes) if config.synthetic_fraction + config.rendered_fraction < 1.0 else []
        rendered = []
        if config.rendered_fraction > 0:
            height, width = config.rendered_hw
            rendered = render_stereo_scenes(
                config.seed, config.rendered_scenes, height=height, width=width,
                max_disparity_px=config.max_disparity_px, workers=config.threads, progress=progress,
            )
        return cls(config, scenes, rendered=rendered)

    def at_crop(self, crop_hw: tuple[int, int], stream: int) -> "TrainingPairs":
        """Another stream of the same config and loaded scenes, of ``crop_hw`` crops."""
        return TrainingPairs(self.config, self.scenes, rendered=self.rendered, crop_hw=crop_hw, stream=stream)

    def _crop(self, rng: np.random.Generator, scenes: list[LoadedScene]) -> StereoSample:
        """A random crop of one of ``scenes`` (of its mirrored pair with ``mirror_fraction``),
        with photometric differences between the views."""
        scene = scenes[int(rng.integers(len(scenes)))]
        if self.config.mirror_fraction > 0 and id(scene) in self.mirrored and rng.random() < self.config.mirror_fraction:
            scene = self.mirrored[id(scene)]
        height, width = self.crop_hw
        crop = random_crop(
            rng, scene, height=height, width=width,
            scale_range=self.config.real_scale_range, max_disparity_px=self.config.max_disparity_px,
        )
        left, right = photometric_differences(rng, crop.left, crop.right, grey_probability=self.config.grey_fraction)
        return StereoSample(left, right, crop.disparity, crop.valid)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        worker = get_worker_info()
        rng = np.random.default_rng([self.config.seed, worker.id if worker else 0, *([self.stream] if self.stream else [])])
        height, width = self.crop_hw
        synthetic, rendered = self.config.synthetic_fraction, self.config.rendered_fraction
        while True:
            draw = rng.random() if self.scenes or self.rendered else 0.0
            if self.rendered and synthetic <= draw < synthetic + rendered:
                sample = self._crop(rng, self.rendered)
            elif not self.scenes or draw < synthetic:
                sample = random_stereo_pair(
                    rng, height=height, width=width, max_disparity_px=self.config.max_disparity_px,
                    grey_probability=self.config.grey_fraction,
                    low_texture_probability=self.config.low_texture_fraction,
                )
            else:
                sample = self._crop(rng, self.scenes)
            yield to_tensors(sample)


def training_batches(config: TrainConfig, device: torch.device, *, progress: bool = False) -> Iterator[list[torch.Tensor]]:
    """The batches of a run: ``batch_size`` crops of ``crop_hw``; with ``alternate_crop``
    (height, width, batch size), every second batch is of that size instead, from a second stream.
    ``progress`` shows a bar while rendered scenes are made."""
    pairs = TrainingPairs.of_config(config, progress=progress)
    batches = training_loader(pairs, config.batch_size, config.data_workers, device)
    if config.alternate_crop is None:
        return iter(batches)
    height, width, batch_size = config.alternate_crop
    alternate = training_loader(pairs.at_crop((height, width), stream=1), batch_size, config.data_workers, device)
    return (batch for pair in zip(batches, alternate) for batch in pair)


def predict(model: GlassStereoNet, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Disparity (H, W) float32 px of a uint8 BGR pair of any size, with the PyTorch model."""
    return predict_stages(model, left, right)["final"]


def predict_stages(model: GlassStereoNet, left: np.ndarray, right: np.ndarray) -> dict[str, np.ndarray]:
    """The disparity after each stage, (H, W) float32 px of a uint8 BGR pair of any size:
    ``quarter`` (the 1/4 cost volume's soft-argmax) and ``half`` (after the last 1/2 refinement
    pass), bilinearly upsampled, and ``final`` (the network's output)."""
    padded_left, size = pad_to_stride(left, STRIDE)
    padded_right, _ = pad_to_stride(right, STRIDE)
    device = next(model.parameters()).device
    with torch.no_grad():
        out = model.eval().forward_all(image_tensor(padded_left).to(device), image_tensor(padded_right).to(device))
    stages = {
        "quarter": F.interpolate(out["quarter"], scale_factor=4.0, mode="bilinear", align_corners=False),
        "half": F.interpolate(out["half"][:, -1:], scale_factor=2.0, mode="bilinear", align_corners=False),
        "final": out["disparity"],
    }
    return {name: disparity[0, 0, : size[0], : size[1]].cpu().numpy() for name, disparity in stages.items()}


def validate(model: GlassStereoNet, synthetic: list[StereoSample], scenes: list[LoadedScene]) -> dict[str, float]:
    """bad-2 (fraction) and EPE (px) on the fixed procedural pairs and on each held-out scene."""
    metrics: dict[str, float] = {}
    bad, epe = [], []
    for sample in synthetic:
        gt = np.where(sample.valid, sample.disparity, np.inf).astype(np.float32)
        prediction = predict(model, sample.left, sample.right)
        bad.append(bad_pixel_rate(prediction, gt, 2.0))
        epe.append(end_point_error(prediction, gt))
    metrics["synthetic_bad2"] = float(np.mean(bad))
    metrics["synthetic_epe"] = float(np.mean(epe))
    for scene in scenes:
        metrics[f"{scene.name}_bad2"] = bad_pixel_rate(predict(model, scene.left, scene.right), scene.disparity, 2.0)
    if scenes:
        metrics["real_bad2"] = float(np.mean([metrics[f"{s.name}_bad2"] for s in scenes]))
    return metrics


def warm_start_lines(warm_start: dict[str, Any] | None) -> list[str]:
    """Model-card table rows saying which weights a warm-started run began from."""
    if not warm_start:
        return []
    new, unused = (", ".join(sorted({name.rsplit(".", 1)[0] for name in warm_start.get(key, [])})) or "none" for key in ("new", "unused"))
    return [
        f"| started from | {warm_start['weights']} ({warm_start['loaded']} tensors copied; newly initialised: {new}; left out: {unused}) |",
    ]


def model_card(config: TrainConfig, summary: dict[str, Any]) -> str:
    """The Markdown model card of a finished run."""
    lines = [
        f"# {config.name}: GlassStereoNet weights",
        "",
        "Small stereo network for CPU inference (models/stereo_net.py): shared inverted-residual encoder"
        + ("" if config.model.half_block else " (no residual block at 1/2)")
        + ",",
        f"cosine-correlation cost volume at 1/4 resolution, 2D hourglass aggregation down to 1/{32 if config.model.deep_context else 16 if config.model.wide_context else 8},",
        f"windowed soft-argmax with a peak-mass confidence, {config.model.refine_iterations} pass(es) of 1/2-resolution refinement",
        f"({config.model.refine_blocks} residual blocks) on a local correlation (±{config.model.correlation_radius} px at 1/2"
        + (", of 1/2 features plus the 1/4 matching features upsampled" if config.model.coarse_matching else "")
        + ") and convex",
        "upsampling to full resolution, plus a learned confidence of bad-2 (error < 2 px).",
        "",
        "| item | value |",
        "|---|---|",
        f"| parameters | {summary['parameters']:,} |",
        f"| MACs at 640x480 | {summary['gmacs_640x480']:.2f} G |",
        f"| largest disparity | {config.model.max_disparity_px} px (inputs padded to multiples of {STRIDE}; the runtime downscales wider ranges) |",
        f"| ONNX size | {summary['onnx_bytes'] / 1e6:.2f} MB |",
        f"| steps x batch | {config.steps} x {config.batch_size} crops of {config.crop_hw[1]}x{config.crop_hw[0]}"
        + (f", every second step {config.alternate_crop[2]} crops of {config.alternate_crop[1]}x{config.alternate_crop[0]}" if config.alternate_crop else "")
        + " |",
        f"| training time | {summary['minutes']:.1f} min on {summary['trained_on']} |",
        f"| seed | {config.seed} |",
        "| disparity loss (final, 1/2) | "
        + (f"Cauchy, scale {config.robust_scale_px:g} px" if config.robust_scale_px is not None else "smooth-L1, beta 1 px")
        + "; 1/4: smooth-L1 and level cross-entropy |",
        *warm_start_lines(summary.get("warm_start")),
        "",
        "## Data",
        f"- {100 * config.synthetic_fraction:.0f}% procedural pairs generated by models/data/synthetic.py (textures from",
        "  scikit-image's sample images and procedural noise; slanted layers, ground planes seen in perspective,",
        "  thin structures, textureless and repetitive regions; photometric differences and sub-pixel vertical",
        "  misalignment between the views)"
        + (f"; {100 * config.low_texture_fraction:.0f}% of them low-texture scenes of few, large, mostly flat layers" if config.low_texture_fraction else "")
        + ".",
        *(
            [
                f"- {100 * config.rendered_fraction:.0f}% random crops of {config.rendered_scenes} 3D scenes (rooms, corridors, streets, tabletops)",
                f"  rendered as {config.rendered_hw[1]}x{config.rendered_hw[0]} pairs by models/data/rendered_stereo.py (seeded by the run's seed), cropped like the real scenes.",
            ]
            if config.rendered_fraction
            else []
        ),
        f"- {100 * (1 - config.synthetic_fraction - config.rendered_fraction):.0f}% random crops (rescaled {config.real_scale_range[0]}-{config.real_scale_range[1]}x, flipped upside down"
        + (f"; {100 * config.mirror_fraction:.0f}% of them from the mirrored pair where the right view's disparity is published" if config.mirror_fraction else "")
        + ") of these real scenes:",
        *[f"  - {name}" for name in config.train_scenes],
        *([f"- {100 * config.grey_fraction:.0f}% of all pairs, procedural and real, turned grey (monochrome cameras)."] if config.grey_fraction else []),
        "- Never trained on: middeval3Q, eth3d, kitti2012, kitti2015 and the other Middlebury 2006 scenes.",
        "",
        "## Validation during training (held out; monitoring only)",
        "",
        "| step | " + " | ".join(summary["history"][-1]["metrics"]) + " |",
        "|---|" + "---|" * len(summary["history"][-1]["metrics"]),
        *[
            f"| {row['step']} | " + " | ".join(f"{value:.3f}" for value in row["metrics"].values()) + " |"
            for row in summary["history"]
        ],
        "",
        "bad2 = fraction of ground-truth pixels off by more than 2 px; EPE in px.",
        "",
        f"Reproduce: `python -m models.train_stereo --config configs/train_stereo.yaml` with the config recorded in `{config.name}.json`",
        "(a warm start needs the weights it started from, which stay in models/weights/).",
        "Evaluation on the benchmark datasets: `glassdepth eval stereo --data ../shared/data --method net`",
        "(results in benchmarks/results/).",
        "",
    ]
    return "\n".join(lines)


def train(config: TrainConfig, out_dir: Path, *, progress: bool = True) -> dict[str, Any]:
    """Run the training of ``config``; write ``<name>.pt``, ``.onnx``, ``.md`` and ``.json``
    (the run's history) into ``out_dir``; return the run summary."""
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    held_out = load_scenes(config.data_path(), config.validation_scenes) if config.validation_scenes else []
    (val_h, val_w), val_seed = SYNTHETIC_VALIDATION
    val_rng = np.random.default_rng(val_seed)
    synthetic_val = [
        random_stereo_pair(val_rng, height=val_h, width=val_w, max_disparity_px=config.max_disparity_px)
        for _ in range(config.synthetic_validation_pairs)
    ]

    model = GlassStereoNet(config.model)
    started_from = warm_start(model, REPO_ROOT / config.init_weights) if config.init_weights else None
    device = training_device(config.device)
    history, minutes = optimise(
        model, training_batches(config, device, progress=progress),
        lambda batch: stereo_loss(model.forward_all(*batch[:2]), *batch[2:], config.loss_weights, robust_scale_px=config.robust_scale_px),
        lambda: validate(model, synthetic_val, held_out),
        name=config.name, steps=config.steps, learning_rate=config.learning_rate, weight_decay=config.weight_decay,
        validate_every=config.validate_every, device=device, shown=("final", "confidence"), progress=progress,
    )

    metadata = {"name": config.name, "train_scenes": config.train_scenes, "steps": config.steps}
    onnx_path = save_weights(model, out_dir, config.name, lambda trained, path: export_stereo_onnx(trained, path, metadata))
    summary = {
        "name": config.name,
        "parameters": sum(p.numel() for p in model.parameters()),
        "gmacs_640x480": count_macs(model, 480, 640) / 1e9,
        "onnx_bytes": onnx_path.stat().st_size,
        "minutes": minutes,
        "trained_on": device_description(device, config.threads),
        "warm_start": started_from and {"weights": config.init_weights, "loaded": len(started_from["loaded"]), "new": started_from["new"], "unused": started_from["unused"]},
        "config": config.to_dict(),
        "history": history,
    }
    write_json_atomic(out_dir / f"{config.name}.json", summary)
    write_bytes_atomic(out_dir / f"{config.name}.md", model_card(config, summary).encode())
    return summary


def load_checkpoint(path: str | Path) -> GlassStereoNet:
    """The model saved by :func:`train` at ``path`` (a ``.pt`` file), in eval mode."""
    checkpoint = read_checkpoint(path)
    model = GlassStereoNet(StereoNetConfig(**checkpoint["config"]))
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()


def main(argv: list[str] | None = None) -> int:
    return training_main(
        argv, prog="python -m models.train_stereo", description=__doc__.split("\n\n")[0],
        config_hint="configs/train_stereo.yaml", load_config=TrainConfig.from_yaml, train=train,
    )


if __name__ == "__main__":
    sys.exit(main())
