"""Export the stereo network to ONNX, count its MACs, and write its model card.

The ONNX file carries what the runtime needs in its metadata (``glassdepth.*`` keys): the
stride the input must be padded to and the largest disparity the network can output.
"""

import json
import os
from pathlib import Path
from typing import Any

import onnx
import torch
from torch import nn

from models.stereo_net import STRIDE, GlassStereoNet
from sensing.fileio import write_bytes_atomic

#: ONNX opset of the exported graphs.
OPSET = 17


def export_stereo_onnx(model: GlassStereoNet, path: str | os.PathLike, metadata: dict[str, Any]) -> None:
    """Write ``model`` (eval mode, dynamic H and W) as ONNX with ``glassdepth.*`` metadata.

    Inputs ``left``, ``right``: (1, 3, H, W) float32 BGR in [0, 255], H and W multiples of
    :data:`STRIDE`. Outputs ``disparity`` (1, 1, H, W) px and ``confidence`` (1, 1, H, W).
    """
    model = model.eval()
    example = torch.zeros(1, 3, 8 * STRIDE, 16 * STRIDE)
    tmp = Path(f"{path}.export")
    torch.onnx.export(
        model,
        (example, example),
        str(tmp),
        input_names=["left", "right"],
        output_names=["disparity", "confidence"],
        dynamic_axes={name: {2: "height", 3: "width"} for name in ("left", "right", "disparity", "confidence")},
        opset_version=OPSET,
        dynamo=False,
    )
    graph = onnx.load(str(tmp))
    tmp.unlink()
    properties = {
        "glassdepth.stride": str(STRIDE),
        "glassdepth.max_disparity_px": str(model.config.max_disparity_px),
        "glassdepth.info": json.dumps(metadata, sort_keys=True),
    }
    onnx.helper.set_model_props(graph, properties)
    onnx.checker.check_model(graph)
    write_bytes_atomic(path, graph.SerializeToString())


def count_macs(model: nn.Module, height: int, width: int) -> int:
    """Multiply-accumulates of one forward pass on an (H, W) pair: convolutions and the cost
    volume's matrix product (element-wise operations are not counted)."""
    total = 0

    def on_conv(module: nn.Conv2d, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        kernel = module.kernel_size[0] * module.kernel_size[1]
        total += output.numel() * kernel * module.in_channels // module.groups

    hooks = [m.register_forward_hook(on_conv) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, height, width), torch.zeros(1, 3, height, width))
    finally:
        for hook in hooks:
            hook.remove()
    if isinstance(model, GlassStereoNet):
        quarter_h, quarter_w = height // 4, width // 4
        total += quarter_h * quarter_w * quarter_w * model.config.quarter_channels
    return total
