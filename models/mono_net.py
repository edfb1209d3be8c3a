"""GlassMonoNet: a small U-Net for relative inverse depth from one image, made for CPU inference.

Encoder: inverted-residual (MobileNetV2) blocks down to 1/32 with a global-context vector.
Decoder: mobile up-blocks in the spirit of the 3D Photos mono net (pointwise, x2 upsample,
concatenation of the encoder's skip, depthwise, pointwise) back to 1/2, a 1-channel head and a
bilinear x2 to the input size. Each decoder level also gets the normalised row coordinate, so
the network can learn where in the frame the ground usually is.

Input: (B, 3, H, W) float32 BGR in [0, 255], H and W multiples of :data:`STRIDE` (the runtime
pads). Output of :meth:`GlassMonoNet.forward`: (B, 1, H, W) relative disparity (inverse depth)
normalised per image to [0, 1] (1 = nearest); :meth:`GlassMonoNet.forward_raw` gives the
unnormalised map the scale-and-shift-invariant loss trains.
"""

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

#: Input sides must be multiples of this (the encoder's deepest level is 1/32).
STRIDE = 32
#: BGR mean and spread (0-255 scale) the network normalises its input with.
PIXEL_MEAN = (104.0, 114.0, 119.0)
PIXEL_STD = (57.0, 57.0, 58.0)


@dataclass(frozen=True)
class MonoNetConfig:
    """Channel widths of the encoder levels 1/2 .. 1/32 and of the decoder levels 1/16 .. 1/2."""

    encoder: tuple[int, ...] = (16, 24, 32, 64, 96)
    blocks: tuple[int, ...] = (1, 2, 2, 3, 2)
    decoder: tuple[int, ...] = (64, 48, 32, 24)
    expansion: int = 4

    def __post_init__(self) -> None:
        if len(self.encoder) != 5 or len(self.blocks) != 5 or len(self.decoder) != 4:
            raise ValueError("MonoNetConfig needs 5 encoder widths, 5 block counts and 4 decoder widths")

    def to_dict(self) -> dict:
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}


def _conv_bn(c_in: int, c_out: int, kernel: int = 1, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    ]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: pointwise expand, depthwise 3x3 (stride 1 or 2), linear pointwise."""

    def __init__(self, c_in: int, c_out: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = c_in * expansion
        self.residual = stride == 1 and c_in == c_out
        self.body = nn.Sequential(
            _conv_bn(c_in, hidden),
            _conv_bn(hidden, hidden, 3, stride, groups=hidden),
            _conv_bn(hidden, c_out, act=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + out if self.residual else out


class UpBlock(nn.Module):
    """Mobile decoder block: pointwise, x2 upsample, concat skip (+ row coordinate), depthwise, pointwise."""

    def __init__(self, c_in: int, c_skip: int, c_out: int) -> None:
        super().__init__()
        self.reduce = _conv_bn(c_in, c_out)
        merged = c_out + c_skip + 1
        self.depthwise = _conv_bn(merged, merged, 3, groups=merged)
        self.project = _conv_bn(merged, c_out)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(self.reduce(x), size=skip.shape[-2:], mode="nearest")
        x = torch.cat([x, skip, row_coordinate(skip)], dim=1)
        return self.project(self.depthwise(x))


def row_coordinate(like: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) row position in [-1, 1] (top to bottom) for a (B, C, H, W) tensor."""
    height, width = like.shape[-2], like.shape[-1]
    rows = torch.arange(height, dtype=like.dtype, device=like.device)
    rows = rows * (2.0 / torch.clamp(torch.as_tensor(height, dtype=like.dtype) - 1.0, min=1.0)) - 1.0
    return rows.view(1, 1, -1, 1).expand(like.shape[0], 1, height, width)


class GlassMonoNet(nn.Module):
    """See the module docstring. All sizes come from ``config``."""

    def __init__(self, config: MonoNetConfig | None = None) -> None:
        super().__init__()
        self.config = config or MonoNetConfig()
        widths, blocks, expansion = self.config.encoder, self.config.blocks, self.config.expansion
        self.register_buffer("mean", torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(PIXEL_STD).view(1, 3, 1, 1), persistent=False)
        self.stem = _conv_bn(3, widths[0], 3, 2)
        levels = []
        c_in = widths[0]
        for level, (c_out, count) in enumerate(zip(widths, blocks)):
            layers = [InvertedResidual(c_in, c_out, 1 if level == 0 else 2, 1 if level == 0 else expansion)]
            layers += [InvertedResidual(c_out, c_out, 1, expansion) for _ in range(count - 1)]
            levels.append(nn.Sequential(*layers))
            c_in = c_out
        self.levels = nn.ModuleList(levels)
        self.context = nn.Sequential(nn.Conv2d(widths[-1], widths[-1], 1), nn.ReLU6(inplace=True))
        decoder = self.config.decoder
        ups = []
        c_in = widths[-1]
        for c_skip, c_out in zip(reversed(widths[:-1]), decoder):
            ups.append(UpBlock(c_in, c_skip, c_out))
            c_in = c_out
        self.ups = nn.ModuleList(ups)
        self.head = nn.Sequential(_conv_bn(decoder[-1], decoder[-1], 3, groups=decoder[-1]), nn.Conv2d(decoder[-1], 1, 1))

    def forward_raw(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) BGR [0, 255] -> (B, 1, H, W) unnormalised relative disparity."""
        x = self.stem((image - self.mean) / self.std)
        skips = []
        for level in self.levels:
            x = level(x)
            skips.append(x)
        x = x + self.context(x.mean(dim=(2, 3), keepdim=True))
        for up, skip in zip(self.ups, reversed(skips[:-1])):
            x = up(x, skip)
        return F.interpolate(self.head(x), size=image.shape[-2:], mode="bilinear", align_corners=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) BGR [0, 255] -> (B, 1, H, W) relative disparity in [0, 1] per image."""
        raw = self.forward_raw(image)
        low = raw.amin(dim=(2, 3), keepdim=True)
        high = raw.amax(dim=(2, 3), keepdim=True)
        return (raw - low) / torch.clamp(high - low, min=1e-6)
