"""Average the weights of stereo checkpoints from one training chain (stochastic weight averaging).

``python -m models.average_weights --name stereo_glass_swa1 --config configs/train_stereo.yaml
A.pt B.pt C.pt`` writes ``stereo_glass_swa1.pt``, ``.onnx``, ``.json`` and the model card ``.md``
(into ``--out-dir``, models/weights/ by default): the element-wise mean of every weight of the
checkpoints, with the BatchNorm statistics measured again on ``--bn-batches`` batches of the
training config's sample stream (the statistics of mean weights are not the mean statistics).

Each run of the chain warm-starts from the one before and ends a one-cycle schedule, so its
weights are the end of one cycle near the same minimum; their mean sits nearer the centre of
that minimum than any one of them (Izmailov et al., "Averaging Weights Leads to Wider Optima and
Better Generalization", 2018). Averaging only makes sense for checkpoints of one chain: the
checkpoints must share the network config and every tensor's name and shape.
"""

import argparse
import itertools
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import update_bn

from models.export import count_macs, export_stereo_onnx
from models.stereo_net import GlassStereoNet, StereoNetConfig
from models.train_stereo import TrainConfig, TrainingPairs
from models.training import WEIGHTS_DIR, device_description, read_checkpoint, read_run_summary, save_weights
from sensing.fileio import write_bytes_atomic, write_json_atomic


def average_state_dicts(state_dicts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of every floating-point tensor of ``state_dicts``; other tensors
    (BatchNorm's step counters) are taken from the last one.

    Raises ValueError when the state dicts differ in tensor names or shapes.
    """
    if not state_dicts:
        raise ValueError("no checkpoints to average")
    first = state_dicts[0]
    for other in state_dicts[1:]:
        if other.keys() != first.keys() or any(other[name].shape != first[name].shape for name in first):
            raise ValueError("the checkpoints differ in tensor names or shapes; only checkpoints of one network can be averaged")
    return {
        name: torch.stack([sd[name] for sd in state_dicts]).mean(0) if first[name].is_floating_point() else state_dicts[-1][name]
        for name in first
    }


def average_checkpoints(paths: list[Path]) -> tuple[GlassStereoNet, list[dict[str, Any]]]:
    """The stereo network with the mean weights of the checkpoints at ``paths`` (each a ``<name>.pt``
    with its ``<name>.json`` run summary beside it), in eval mode, and those summaries.

    Raises FileNotFoundError for a missing checkpoint or summary and ValueError for checkpoints
    that do not share one stereo network config.
    """
    summaries = [read_run_summary(path) for path in paths]
    checkpoints = [read_checkpoint(path) for path in paths]
    for path, checkpoint in zip(paths, checkpoints):
        if not set(checkpoint["config"]) <= set(StereoNetConfig.__dataclass_fields__):
            raise ValueError(f"{path}: not a stereo network checkpoint (config keys {sorted(checkpoint['config'])})")
    # A checkpoint saved before a config field existed lacks it (the field's default applies).
    configs = [StereoNetConfig(**checkpoint["config"]) for checkpoint in checkpoints]
    if any(config != configs[0] for config in configs[1:]):
        raise ValueError("the checkpoints have different network configs; only checkpoints of one chain can be averaged")
    model = GlassStereoNet(configs[0])
    model.load_state_dict(average_state_dicts([checkpoint["state_dict"] for checkpoint in checkpoints]))
    return model.eval(), summaries


class _StackedPair(nn.Module):
    """The stereo network on one (N, 6, H, W) tensor, left view then right (``update_bn`` passes one input)."""

    def __init__(self, model: GlassStereoNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, pair: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(pair[:, :3], pair[:, 3:])


def recompute_batchnorm(model: GlassStereoNet, config: TrainConfig, batches: int) -> None:
    """Measure ``model``'s BatchNorm statistics again, in place: the mean over the first
    ``batches`` batches of ``config``'s training stream (seeded, so the result repeats) of each
    layer's batch mean and variance, as :func:`torch.optim.swa_utils.update_bn` computes them."""
    torch.manual_seed(config.seed)
    stream = torch.utils.data.DataLoader(TrainingPairs.of_config(config), batch_size=config.batch_size)
    pairs = (torch.cat(batch[:2], dim=1) for batch in itertools.islice(stream, batches))
    with torch.no_grad():
        update_bn(pairs, _StackedPair(model))
    model.eval()


def model_card(name: str, summary: dict[str, Any]) -> str:
    """The Markdown model card of averaged weights (``summary`` as :func:`write_average` returns it)."""
    sources, batchnorm = summary["averaged_from"], summary["batchnorm"]
    statistics = (
        f"measured again on {batchnorm['batches']} batches of the training stream of {batchnorm['config']}"
        if batchnorm["batches"] else "averaged like the weights"
    )
    command = f"python -m models.average_weights --name {name} --config {batchnorm['config']} --bn-batches {batchnorm['batches']} "
    return "\n".join([
        f"# {name}: GlassStereoNet weights, averaged",
        "",
        "The element-wise mean of the weights of these checkpoints of one training chain, each the end",
        "of a one-cycle run warm-started from the one before:",
        "",
        *[f"- {source}" for source in sources],
        "",
        f"BatchNorm statistics: {statistics}.",
        "",
        "| item | value |",
        "|---|---|",
        f"| parameters | {summary['parameters']:,} |",
        f"| MACs at 640x480 | {summary['gmacs_640x480']:.2f} G |",
        f"| ONNX size | {summary['onnx_bytes'] / 1e6:.2f} MB |",
        f"| averaging time | {summary['minutes']:.1f} min on {summary['trained_on']} |",
        "",
        "Architecture, data and training: the cards of the checkpoints above (the same network).",
        f"Trained on these real scenes: {', '.join(summary['config']['train_scenes'])}.",
        "",
        f"Reproduce: `{command}" + " ".join(sources) + "`.",
        "Evaluation on the benchmark datasets: `glassdepth eval stereo --data ../shared/data --method net`",
        "(results in benchmarks/results/).",
        "",
    ])


def write_average(name: str, paths: list[Path], out_dir: Path, config_path: Path, *, bn_batches: int, data_root: str | None = None) -> dict[str, Any]:
    """Average the checkpoints at ``paths`` (:func:`average_checkpoints`), measure the BatchNorm
    statistics again on ``bn_batches`` batches of the training config at ``config_path`` (0: keep
    the averaged statistics; ``data_root`` overrides the config's), and write ``<name>.pt``,
    ``.onnx``, ``.json`` and ``.md`` into ``out_dir``; return the summary written to ``.json``."""
    if bn_batches < 0:
        raise ValueError(f"bn_batches must be 0 or more, got {bn_batches}")
    config = TrainConfig.from_yaml(config_path, data_root=data_root)
    start = time.perf_counter()
    torch.set_num_threads(config.threads)
    model, summaries = average_checkpoints(paths)
    if bn_batches:
        recompute_batchnorm(model, config, bn_batches)
    train_scenes = sorted({scene for summary in summaries for scene in summary["config"]["train_scenes"]})
    metadata = {"name": name, "train_scenes": train_scenes, "averaged_from": [summary["name"] for summary in summaries]}
    onnx_path = save_weights(model, out_dir, name, lambda averaged, path: export_stereo_onnx(averaged, path, metadata))
    summary = {
        "name": name,
        "parameters": sum(p.numel() for p in model.parameters()),
        "gmacs_640x480": count_macs(model, 480, 640) / 1e9,
        "onnx_bytes": onnx_path.stat().st_size,
        "minutes": (time.perf_counter() - start) / 60,
        "trained_on": device_description(torch.device("cpu"), config.threads),
        "averaged_from": [str(path) for path in paths],
        "batchnorm": {"config": str(config_path), "batches": bn_batches},
        "config": metadata | {"model": model.config.to_dict()},
    }
    write_json_atomic(out_dir / f"{name}.json", summary)
    write_bytes_atomic(out_dir / f"{name}.md", model_card(name, summary).encode())
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.average_weights", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path, help="<name>.pt files of one training chain (models.train_stereo)")
    parser.add_argument("--name", required=True, help="name of the averaged weights (<name>.pt, .onnx, .json, .md)")
    parser.add_argument("--config", type=Path, required=True, help="training YAML whose sample stream measures the BatchNorm statistics (configs/train_stereo.yaml)")
    parser.add_argument("--bn-batches", type=int, default=40, help="batches for the BatchNorm statistics (0: average them like the weights)")
    parser.add_argument("--data-root", help="override the config's data root")
    parser.add_argument("--out-dir", type=Path, default=WEIGHTS_DIR, help="where the weights and model card go")
    args = parser.parse_args(argv)
    if len(args.checkpoints) < 2:
        print("error: give at least two checkpoints to average", file=sys.stderr)
        return 2
    try:
        write_average(args.name, args.checkpoints, args.out_dir, args.config, bn_batches=args.bn_batches, data_root=args.data_root)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.out_dir / args.name}.onnx (+ .pt, .json, .md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
