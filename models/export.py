"""Export the stereo and monocular networks to ONNX and count their MACs.

The ONNX files carry what the runtime needs in their metadata (``glassdepth.*`` keys): the
stride the input must be padded to and, for stereo, the largest disparity the network can
output; for mono, the long side it was trained for.

``python -m models.export WEIGHTS.pt`` exports a trained checkpoint again with the current graph
code (the same weights; e.g. after a change that makes the graph faster on ONNX Runtime) to
``WEIGHTS.onnx``, with the metadata of its training run (``WEIGHTS.json``). With
``--refine-passes N`` a stereo checkpoint is exported running its refinement N times (the weights
are shared between passes) to ``WEIGHTS_passesN.onnx``: more accurate and slower than the network
it was trained as (README: Stereo network).
"""

import argparse
import copy
import json
import os
import sys
from pathlib import Path
from typing import Any

import onnx
import torch
from torch import nn

from models import mono_net
from models.stereo_net import STRIDE, GlassStereoNet, StereoNetConfig
from models.training import read_checkpoint, read_run_summary
from sensing.fileio import write_bytes_atomic

#: ONNX opset of the exported graphs.
OPSET = 17


class Uint8Views(nn.Module):
    """A stereo network taking (N, 3, H, W) uint8 views, converted to float32 inside the graph:
    the runtime copies a quarter of the bytes into the session (about 3.5 ms less per 640x480
    pair on 2 threads than float32 inputs, ad-hoc, bare ONNX Runtime session)."""

    def __init__(self, model: GlassStereoNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(left.float(), right.float())


def export_stereo_onnx(model: GlassStereoNet, path: str | os.PathLike, metadata: dict[str, Any]) -> None:
    """Write ``model`` (eval mode, dynamic H and W) as ONNX with ``glassdepth.*`` metadata.

    Inputs ``left``, ``right``: (1, 3, H, W) uint8 BGR, H and W multiples of :data:`STRIDE`
    (earlier exports take float32 in [0, 255]; the runtime feeds the type a file declares).
    Outputs ``disparity`` (1, 1, H, W) px and ``confidence`` (1, 1, H, W).
    """
    model = model.eval()
    example = torch.zeros(1, 3, 8 * STRIDE, 16 * STRIDE, dtype=torch.uint8)
    tmp = Path(f"{path}.export")
    torch.onnx.export(
        Uint8Views(model),
        (example, example),
        str(tmp),
        input_names=["left", "right"],
        output_names=["disparity", "confidence"],
        dynamic_axes={name: {2: "height", 3: "width"} for name in ("left", "right", "disparity", "confidence")},
        opset_version=OPSET,
        dynamo=False,
    )
    _finish(tmp, path, {
        "glassdepth.stride": str(STRIDE),
        "glassdepth.max_disparity_px": str(model.config.max_disparity_px),
        "glassdepth.info": json.dumps(metadata, sort_keys=True),
    })


def export_mono_onnx(model: mono_net.GlassMonoNet, path: str | os.PathLike, metadata: dict[str, Any], *, long_side_px: int = 384) -> None:
    """Write the monocular ``model`` (eval mode, dynamic H and W) as ONNX with ``glassdepth.*`` metadata.

    Input ``image``: (1, 3, H, W) float32 BGR in [0, 255], H and W multiples of
    :data:`models.mono_net.STRIDE`. Output ``disparity`` (1, 1, H, W): relative inverse depth in [0, 1].
    """
    model = model.eval()
    tmp = Path(f"{path}.export")
    torch.onnx.export(
        model,
        (torch.zeros(1, 3, 4 * mono_net.STRIDE, 4 * mono_net.STRIDE),),
        str(tmp),
        input_names=["image"],
        output_names=["disparity"],
        dynamic_axes={name: {2: "height", 3: "width"} for name in ("image", "disparity")},
        opset_version=OPSET,
        dynamo=False,
    )
    _finish(tmp, path, {
        "glassdepth.stride": str(mono_net.STRIDE),
        "glassdepth.long_side_px": str(long_side_px),
        "glassdepth.info": json.dumps(metadata, sort_keys=True),
    })


def _finish(tmp: Path, path: str | os.PathLike, properties: dict[str, str]) -> None:
    """Attach ``properties`` to the exported graph at ``tmp``, check it, move it to ``path`` atomically."""
    graph = onnx.load(str(tmp))
    tmp.unlink()
    onnx.helper.set_model_props(graph, properties)
    onnx.checker.check_model(graph)
    write_bytes_atomic(path, graph.SerializeToString())


def count_macs(model: nn.Module, height: int, width: int, *, views: int = 2) -> int:
    """Multiply-accumulates of one forward pass on ``views`` (H, W) images (2: a stereo pair):
    convolutions and the cost volume's matrix product (element-wise operations are not counted).

    Counted on a training-mode copy of ``model``, where every convolution runs as its module (in
    eval mode the stereo refinement's entry runs folded, outside the modules).
    """
    model = copy.deepcopy(model).train()
    total = 0

    def on_conv(module: nn.Conv2d, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        kernel = module.kernel_size[0] * module.kernel_size[1]
        total += output.numel() * kernel * module.in_channels // module.groups

    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            module.register_forward_hook(on_conv)
    with torch.no_grad():
        model(*(torch.zeros(1, 3, height, width) for _ in range(views)))
    if isinstance(model, GlassStereoNet):
        quarter_h, quarter_w = height // 4, width // 4
        total += quarter_h * quarter_w * quarter_w * model.config.quarter_channels
    return total


def reexport(checkpoint_path: Path, refine_passes: int | None = None) -> Path:
    """Export the stereo or mono checkpoint at ``checkpoint_path`` (``<name>.pt``) to ``<name>.onnx``
    beside it, with the ONNX metadata its training run gave (from ``<name>.json``); returns the path.

    refine_passes : for a stereo checkpoint, export it with this many refinement passes instead of
        the trained number, to ``<name>_passes<N>.onnx`` (``refine_passes`` in its metadata);
        raises ValueError for a mono checkpoint or a count below 1
    """
    # The training modules import this one, so their checkpoint loaders are imported here.
    from models import train_mono, train_stereo

    training = read_run_summary(checkpoint_path)["config"]
    try:
        metadata = {key: training[key] for key in ("name", "train_scenes")}
    except KeyError as error:
        raise ValueError(f"{checkpoint_path.with_suffix('.json')}: not a training run summary (no {error} in its config)") from None
    # A training run records its steps; averaged weights (models.average_weights) their sources.
    metadata |= {key: training[key] for key in ("steps", "averaged_from") if key in training}
    onnx_path = checkpoint_path.with_suffix(".onnx")
    # A checkpoint saved before a config field existed lacks it (the field's default applies).
    fields = set(read_checkpoint(checkpoint_path)["config"])
    is_stereo = bool(fields) and fields <= set(StereoNetConfig.__dataclass_fields__)
    if refine_passes is not None and (not is_stereo or refine_passes < 1):
        raise ValueError(f"{checkpoint_path}: refine passes need a stereo checkpoint and a count of at least 1, got {refine_passes}")
    if is_stereo:
        model = train_stereo.load_checkpoint(checkpoint_path)
        if refine_passes is not None:
            model = model.with_refine_iterations(refine_passes)
            onnx_path = checkpoint_path.with_name(f"{checkpoint_path.stem}_passes{refine_passes}.onnx")
            metadata["refine_passes"] = refine_passes
        export_stereo_onnx(model, onnx_path, metadata)
    elif fields and fields <= set(mono_net.MonoNetConfig.__dataclass_fields__):
        export_mono_onnx(train_mono.load_checkpoint(checkpoint_path), onnx_path, metadata)
    else:
        raise ValueError(f"{checkpoint_path}: neither a stereo nor a mono network checkpoint (config keys {sorted(fields)})")
    return onnx_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.export", description="Export trained checkpoints again with the current graph code.")
    parser.add_argument("checkpoints", nargs="+", type=Path, help="<name>.pt files written by models.train_stereo or models.train_mono")
    parser.add_argument("--refine-passes", type=int, default=None, metavar="N",
                        help="stereo only: run the refinement N times (shared weights), written to <name>_passesN.onnx")
    args = parser.parse_args(argv)
    for path in args.checkpoints:
        try:
            print(f"wrote {reexport(path, args.refine_passes)}")
        except (FileNotFoundError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
