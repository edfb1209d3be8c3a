"""Average the weights of stereo checkpoints from one training chain (stochastic weight averaging).

``python -m models.average_weights --name stereo_glass_swa1 A.pt B.pt C.pt`` writes
``stereo_glass_swa1.pt``, ``.onnx``, ``.json`` and the model card ``.md`` (into ``--out-dir``,
models/weights/ by default): the element-wise mean of every floating-point tensor of the
checkpoints (weights and BatchNorm statistics alike).

Each run of the chain warm-starts from the one before and ends a one-cycle schedule, so its
weights are the end of one cycle near the same minimum; their mean sits nearer the centre of
that minimum than any one of them (Izmailov et al., "Averaging Weights Leads to Wider Optima and
Better Generalization", 2018). Averaging only makes sense for checkpoints of one chain: the
checkpoints must share the network config and every tensor's name and shape.
"""

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

from models.export import count_macs, export_stereo_onnx
from models.stereo_net import GlassStereoNet, StereoNetConfig
from models.training import WEIGHTS_DIR, read_checkpoint, read_run_summary, save_weights
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
    configs = [checkpoint["config"] for checkpoint in checkpoints]
    if any(config != configs[0] for config in configs[1:]):
        raise ValueError("the checkpoints have different network configs; only checkpoints of one chain can be averaged")
    if not set(configs[0]) <= set(StereoNetConfig.__dataclass_fields__):
        raise ValueError(f"{paths[0]}: not a stereo network checkpoint (config keys {sorted(configs[0])})")
    model = GlassStereoNet(StereoNetConfig(**configs[0]))
    model.load_state_dict(average_state_dicts([checkpoint["state_dict"] for checkpoint in checkpoints]))
    return model.eval(), summaries


def model_card(name: str, sources: list[str], summary: dict[str, Any]) -> str:
    """The Markdown model card of averaged weights."""
    return "\n".join([
        f"# {name}: GlassStereoNet weights, averaged",
        "",
        "The element-wise mean of the weights (and BatchNorm statistics) of these checkpoints of one",
        "training chain, each the end of a one-cycle run warm-started from the one before:",
        "",
        *[f"- {source}" for source in sources],
        "",
        "| item | value |",
        "|---|---|",
        f"| parameters | {summary['parameters']:,} |",
        f"| MACs at 640x480 | {summary['gmacs_640x480']:.2f} G |",
        f"| ONNX size | {summary['onnx_bytes'] / 1e6:.2f} MB |",
        "",
        "Architecture, data and training: the cards of the checkpoints above (the same network).",
        f"Trained on these real scenes: {', '.join(summary['config']['train_scenes'])}.",
        "",
        f"Reproduce: `python -m models.average_weights --name {name} " + " ".join(sources) + "`.",
        "Evaluation on the benchmark datasets: `glassdepth eval stereo --data ../shared/data --method net`",
        "(results in benchmarks/results/).",
        "",
    ])


def write_average(name: str, paths: list[Path], out_dir: Path) -> dict[str, Any]:
    """Average the checkpoints at ``paths`` (:func:`average_checkpoints`) and write ``<name>.pt``,
    ``.onnx``, ``.json`` and ``.md`` into ``out_dir``; return the summary written to ``.json``."""
    model, summaries = average_checkpoints(paths)
    train_scenes = sorted({scene for summary in summaries for scene in summary["config"]["train_scenes"]})
    sources = [str(path) for path in paths]
    metadata = {"name": name, "train_scenes": train_scenes, "averaged_from": [summary["name"] for summary in summaries]}
    onnx_path = save_weights(model, out_dir, name, lambda averaged, path: export_stereo_onnx(averaged, path, metadata))
    summary = {
        "name": name,
        "parameters": sum(p.numel() for p in model.parameters()),
        "gmacs_640x480": count_macs(model, 480, 640) / 1e9,
        "onnx_bytes": onnx_path.stat().st_size,
        "averaged_from": sources,
        "config": metadata | {"model": model.config.to_dict()},
    }
    write_json_atomic(out_dir / f"{name}.json", summary)
    write_bytes_atomic(out_dir / f"{name}.md", model_card(name, sources, summary).encode())
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.average_weights", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+", type=Path, help="<name>.pt files of one training chain (models.train_stereo)")
    parser.add_argument("--name", required=True, help="name of the averaged weights (<name>.pt, .onnx, .json, .md)")
    parser.add_argument("--out-dir", type=Path, default=WEIGHTS_DIR, help="where the weights and model card go")
    args = parser.parse_args(argv)
    if len(args.checkpoints) < 2:
        print("error: give at least two checkpoints to average", file=sys.stderr)
        return 2
    try:
        write_average(args.name, args.checkpoints, args.out_dir)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.out_dir / args.name}.onnx (+ .pt, .json, .md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
