"""GlassStereoNet: a small stereo network made for CPU inference.

Layout (H, W: input size, a multiple of :data:`STRIDE`):

1. a shared encoder for both views, inverted-residual blocks: 1/2-resolution features (for
   refinement) and 1/4-resolution matching features, with context from a 1/8 stage;
2. a cosine-correlation cost volume at 1/4 resolution over ``levels`` disparities (4 px each);
3. 2D aggregation: the cost volume, stacked with the left features as channels, goes through an
   hourglass of depthwise-separable blocks (no 3D convolutions) to one logit per disparity level;
   with ``wide_context``, the hourglass goes one level deeper, to 1/16, so large textureless
   regions see the texture around them, and with ``deep_context`` one more, to 1/32;
4. disparity at 1/4 from a soft-argmax restricted to a window around the best level, and a
   confidence from the probability mass in that window (the peak and spread of the matching
   distribution);
5. coarse-to-fine: at 1/2 resolution, ``refine_iterations`` times, a local correlation of the
   left features with the right features (both projected to ``correlation_channels``; with
   ``coarse_matching``, plus a projection of the 1/4 matching features upsampled, so the 1/2
   features that are correlated also see the wider context of the 1/4 stage) sampled at
   ``x - d + k``, ``k`` within ``±correlation_radius`` px of the current disparity ``d``, goes
   with the left features through a residual block stack that predicts a disparity update; the
   last pass also gives a confidence logit and the weights of a convex 3x3 upsampling to full
   resolution (image-guided: the weights come from the left view's features).

Outputs (N, 1, H, W) disparity in pixels of the input and (N, 1, H, W) confidence in [0, 1].
Inputs are (N, 3, H, W) float32 BGR in [0, 255]; each view is normalised by its own mean and
standard deviation, so exposure differences between the cameras matter less.
"""

from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

#: Input sizes must be multiples of this (the wrapper pads).
STRIDE = 8


@dataclass(frozen=True)
class StereoNetConfig:
    """Architecture hyper-parameters.

    levels : disparity levels of the 1/4-resolution cost volume; the largest disparity the net
        can output is ``4 * (levels - 1)`` px at input resolution
    half_channels, quarter_channels, eighth_channels : encoder widths at 1/2, 1/4, 1/8
    aggregation_channels : width of the cost aggregation at 1/4 (1/8 uses 1.5x)
    refine_channels : width of the 1/2-resolution refinement
    window : half-width (levels) of the soft-argmax window around the best level
    correlation_radius : the refinement's local correlation spans ``±correlation_radius`` px at 1/2
    correlation_channels : width of the 1/2-resolution features it correlates (a projection)
    refine_iterations : refinement passes (weights shared)
    coarse_matching : add a projection of the 1/4 matching features, upsampled x2, to the 1/2
        features the refinement correlates (initialised to zero: a warm start from weights
        without it starts from the same function)
    wide_context : add a 1/16 level under the aggregation's 1/8 level (its output projection is
        initialised to zero: a warm start from weights without it starts from the same function)
    deep_context : add a 1/32 level under the 1/16 one (needs ``wide_context``; its output
        projection starts at zero as well)
    half_block : a residual block on the encoder's 1/2 features (both views at 1/2 resolution;
        leaving it out saved about 5 of 61 ms at 640x480 on 2 threads)
    refine_blocks : residual blocks in the refinement (1-4; dilations 1, 2, 4, 1 in that order)
    """

    levels: int = 48
    half_channels: int = 16
    quarter_channels: int = 32
    eighth_channels: int = 48
    aggregation_channels: int = 48
    refine_channels: int = 24
    window: int = 2
    correlation_radius: int = 4
    correlation_channels: int = 8
    refine_iterations: int = 1
    coarse_matching: bool = False
    wide_context: bool = False
    deep_context: bool = False
    half_block: bool = True
    refine_blocks: int = 4

    @property
    def max_disparity_px(self) -> int:
        """Largest disparity the network can output, in input pixels."""
        return 4 * (self.levels - 1)

    def to_dict(self) -> dict[str, int | bool]:
        return asdict(self)


def conv_bn_relu(cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1, dilation: int = 1) -> nn.Sequential:
    """Conv (same padding) + BatchNorm + ReLU."""
    padding = dilation * (kernel // 2)
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, padding, dilation=dilation, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def zero_conv1x1(cin: int, cout: int) -> nn.Conv2d:
    """1x1 convolution initialised to zero: a branch added through it leaves the network's
    function unchanged until training moves it (warm starts from weights without the branch)."""
    conv = nn.Conv2d(cin, cout, 1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class InvertedResidual(nn.Module):
    """MobileNetV2 block: pointwise expand, depthwise 3x3 (stride, dilation), pointwise project."""

    def __init__(self, cin: int, cout: int, stride: int = 1, expand: int = 2, dilation: int = 1) -> None:
        super().__init__()
        hidden = cin * expand
        self.body = nn.Sequential(
            conv_bn_relu(cin, hidden, 1),
            conv_bn_relu(hidden, hidden, 3, stride, groups=hidden, dilation=dilation),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + out if self.residual else out


class SeparableResidual(nn.Module):
    """Depthwise 3x3 (dilated) + pointwise, with a residual connection; width unchanged."""

    def __init__(self, channels: int, dilation: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv_bn_relu(channels, channels, 3, groups=channels, dilation=dilation),
            nn.Conv2d(channels, channels, 1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


class Encoder(nn.Module):
    """One view -> (1/2 features, 1/4 matching features); shared by both views."""

    def __init__(self, config: StereoNetConfig) -> None:
        super().__init__()
        c2, c4, c8 = config.half_channels, config.quarter_channels, config.eighth_channels
        self.to_half = nn.Sequential(conv_bn_relu(3, c2, 3, 2), *([SeparableResidual(c2)] if config.half_block else []))
        self.to_quarter = nn.Sequential(InvertedResidual(c2, c4, 2, expand=2), InvertedResidual(c4, c4))
        self.to_eighth = nn.Sequential(InvertedResidual(c4, c8, 2, expand=2), InvertedResidual(c8, c8), InvertedResidual(c8, c8, dilation=2))
        self.lateral = nn.Conv2d(c8, c4, 1)
        self.fuse = InvertedResidual(c4, c4)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        half = self.to_half(image)
        quarter = self.to_quarter(half)
        context = self.lateral(self.to_eighth(quarter))
        quarter = self.fuse(quarter + F.interpolate(context, scale_factor=2.0, mode="bilinear", align_corners=False))
        return half, quarter


def normalise_view(image: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) in [0, 255] -> zero mean, unit standard deviation per image."""
    mean = image.mean(dim=(1, 2, 3), keepdim=True)
    std = image.std(dim=(1, 2, 3), keepdim=True)
    return (image - mean) / (std + 1.0)


def cosine_cost_volume(left: torch.Tensor, right: torch.Tensor, levels: int) -> torch.Tensor:
    """Cosine similarity of left features with right features shifted by 0..levels-1 columns.

    left, right : (N, C, h, w) features; returns (N, levels, h, w), 0 where x - d < 0.
    Computed row by row as one matrix product (all column pairs) and a gather of its band,
    which runs much faster on ONNX Runtime than ``levels`` shifted products.
    """
    left = F.normalize(left, dim=1).permute(0, 2, 3, 1)
    right = F.normalize(right, dim=1).permute(0, 2, 1, 3)
    similarity = torch.matmul(left, right)
    width = similarity.shape[3]
    columns = torch.arange(width, device=left.device).view(width, 1) - torch.arange(levels, device=left.device).view(1, levels)
    index = columns.clamp_min(0).view(1, 1, width, levels).expand(similarity.shape[0], similarity.shape[1], width, levels)
    band = torch.gather(similarity, 3, index) * (columns >= 0).to(left.dtype)
    return band.permute(0, 3, 1, 2)


class WideContext(nn.Module):
    """(N, C, h, w) at 1/8 -> a residual for it computed at 1/16 (receptive field ±14 cells of
    1/8 more than the 1/8 level alone), bilinearly resized back to (h, w), which may be odd.
    Its output projection starts at zero. With ``deeper``, the 1/16 level gets a residual of its
    own from a level at 1/32 built the same way (nested)."""

    def __init__(self, channels: int, deeper: bool = False) -> None:
        super().__init__()
        self.down = InvertedResidual(channels, channels, 2, expand=2)
        self.body = nn.Sequential(SeparableResidual(channels), SeparableResidual(channels, dilation=2), SeparableResidual(channels, dilation=4))
        self.deeper = WideContext(channels) if deeper else None
        self.out = zero_conv1x1(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.body(self.down(x))
        if self.deeper is not None:
            low = low + self.deeper(low)
        residual = self.out(low)
        return F.interpolate(residual, size=x.shape[-2:], mode="bilinear", align_corners=False)


class Aggregation(nn.Module):
    """(cost volume, left features) at 1/4 -> disparity logits (N, levels, h, w) and context."""

    def __init__(self, config: StereoNetConfig) -> None:
        super().__init__()
        ca = config.aggregation_channels
        cb = ca * 3 // 2
        self.enter = conv_bn_relu(config.levels + config.quarter_channels, ca, 1)
        self.pre = nn.Sequential(SeparableResidual(ca), SeparableResidual(ca, dilation=2))
        self.down = InvertedResidual(ca, cb, 2, expand=2)
        self.low = nn.Sequential(SeparableResidual(cb), SeparableResidual(cb, dilation=2), SeparableResidual(cb, dilation=4))
        if config.deep_context and not config.wide_context:
            raise ValueError("deep_context needs wide_context")
        self.wide = WideContext(cb, deeper=config.deep_context) if config.wide_context else None
        self.up = conv_bn_relu(cb, ca, 1)
        self.post = nn.Sequential(SeparableResidual(ca), SeparableResidual(ca))
        self.logits = nn.Conv2d(ca, config.levels, 1)

    def forward(self, cost: torch.Tensor, left: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pre(self.enter(torch.cat([cost, left], dim=1)))
        low = self.low(self.down(x))
        if self.wide is not None:
            low = low + self.wide(low)
        x = self.post(x + F.interpolate(self.up(low), scale_factor=2.0, mode="bilinear", align_corners=False))
        return self.logits(x) + cost * 4.0, x


def windowed_soft_argmax(logits: torch.Tensor, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sub-level disparity from the distribution around its best level.

    logits : (N, D, h, w); returns the expected level within ``±window`` levels of the argmax,
    renormalised there, (N, 1, h, w), and the probability mass inside that window (N, 1, h, w).
    Only the ``2 * window + 1`` logits around the argmax are gathered for the mean, and the
    softmax's normalisation cancels in it, so the whole volume is read just three times (argmax,
    exp, sum for the mass): faster on ONNX Runtime than masking every level.
    """
    levels = logits.shape[1]
    best = torch.argmax(logits, dim=1, keepdim=True)
    peak = torch.gather(logits, 1, best)
    index = best + torch.arange(-window, window + 1, device=logits.device).view(1, -1, 1, 1)
    inside = ((index >= 0) & (index < levels)).to(logits.dtype)
    weights = torch.exp(torch.gather(logits, 1, index.clamp(0, levels - 1)) - peak) * inside
    inside_sum = weights.sum(dim=1, keepdim=True)
    level = (weights * index.to(logits.dtype)).sum(dim=1, keepdim=True) / inside_sum
    mass = inside_sum / torch.exp(logits - peak).sum(dim=1, keepdim=True)
    return level, mass


def warp_by_disparity(features: torch.Tensor, disparity: torch.Tensor) -> torch.Tensor:
    """Right-view features resampled at (x - d, y), linear along the row, border-clamped.

    features : (N, C, h, w); disparity : (N, 1, h, w) in px of h, w; returns (N, C, h, w).
    """
    n, c, h, w = features.shape
    xs = torch.arange(w, dtype=features.dtype, device=features.device).view(1, 1, 1, w)
    source = (xs - disparity).clamp(0.0, w - 1.0)
    lower = source.floor()
    frac = source - lower
    lower_index = lower.long()
    upper_index = (lower_index + 1).clamp_max(w - 1)
    return torch.gather(features, 3, lower_index.expand(n, c, h, w)) * (1.0 - frac) + torch.gather(features, 3, upper_index.expand(n, c, h, w)) * frac


def local_correlation(left: torch.Tensor, right: torch.Tensor, disparity: torch.Tensor, radius: int) -> torch.Tensor:
    """Cosine similarity of left features with right features near ``x - d``, ``2 * radius + 1`` offsets.

    The right view is warped once by the disparity and then shifted by ``k = -radius..radius``
    columns: ``warped(x + k) = right(x + k - d(x + k))``, which is ``right(x - d(x) + k)`` where the
    disparity is locally constant (one resampling instead of one per offset: much faster on ONNX
    Runtime; so is one product per offset over stacking all shifted copies first).
    left, right : (N, C, h, w) features; disparity : (N, 1, h, w) px of h, w;
    returns (N, 2 * radius + 1, h, w), 0 where ``x + k`` leaves the image.
    """
    width = left.shape[3]
    left = F.normalize(left, dim=1)
    warped = F.pad(F.normalize(warp_by_disparity(right, disparity), dim=1), (radius, radius))
    return torch.cat([(left * warped[..., offset : offset + width]).sum(dim=1, keepdim=True) for offset in range(2 * radius + 1)], dim=1)


#: Bound (either sign) on the refinement head's outputs. The convex upsampling's softmax takes
#: ``exp`` of its logits without subtracting their maximum (a full-resolution reduction and
#: subtraction less: about 2 ms of 60 at 640x480). Within this bound ``exp`` neither overflows
#: nor underflows in float32, even summed over 9 neighbours and multiplied by a disparity; where
#: trained weights reach past it (stereo_glass_v13's mask logits reach about ±116 on benchmark
#: scenes, an ad-hoc check), the softmax there is one-hot either way. ONNX Runtime fuses the clamp
#: into the head's convolution.
HEAD_BOUND = 75.0


def convex_upsample(disparity: torch.Tensor, mask_logits: torch.Tensor) -> torch.Tensor:
    """Upsample x2 as a convex combination of each pixel's 3x3 neighbourhood (RAFT-style).

    disparity : (N, 1, h, w) px at h, w; mask_logits : (N, 9 * 4, h, w), within
    ``±HEAD_BOUND``; returns (N, 1, 2h, 2w) in px at 2h, 2w. The softmax over the 9 neighbours
    is written out (exp, one division after the weighted sum): ONNX Runtime's Softmax over a
    non-last axis is slow.
    """
    n, _, h, w = disparity.shape
    padded = F.pad(disparity * 2.0, (1, 1, 1, 1), mode="replicate")
    neighbours = torch.cat([padded[:, :, dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)], dim=1)
    weights = torch.exp(mask_logits.view(n, 9, 4, h, w))
    up = (weights * neighbours.unsqueeze(2)).sum(dim=1) / weights.sum(dim=1)
    return F.pixel_shuffle(up, 2)


#: Dilations of the refinement's residual blocks, in order (``refine_blocks`` takes the first ones).
REFINE_DILATIONS = (1, 2, 4, 1)


class Refinement(nn.Module):
    """1/2 resolution: iterated disparity updates, a confidence logit and convex-upsampling weights."""

    def __init__(self, config: StereoNetConfig) -> None:
        super().__init__()
        cr = config.refine_channels
        self.radius = config.correlation_radius
        self.iterations = config.refine_iterations
        self.context = nn.Conv2d(config.aggregation_channels, cr, 1)
        self.match = nn.Conv2d(config.half_channels, config.correlation_channels, 1)
        self.coarse_match = zero_conv1x1(config.quarter_channels, config.correlation_channels) if config.coarse_matching else None
        self.enter = conv_bn_relu(config.half_channels + 2 * self.radius + 1 + 2, cr, 1)
        if not 1 <= config.refine_blocks <= len(REFINE_DILATIONS):
            raise ValueError(f"refine_blocks must be 1-{len(REFINE_DILATIONS)}, got {config.refine_blocks}")
        self.body = nn.Sequential(*(SeparableResidual(cr, dilation=d) for d in REFINE_DILATIONS[: config.refine_blocks]))
        self.head = nn.Conv2d(cr, 2 + 36, 1)

    def forward(
        self, features: torch.Tensor, quarter: torch.Tensor, disparity: torch.Tensor, mass: torch.Tensor, context: torch.Tensor
    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """features (2N, C2, h, w) and quarter (2N, C4, h/2, w/2): the left views' 1/2 and 1/4
        features, then the right views'; disparity, mass (N, 1, h, w), px at h, w; context
        (N, CA, h/2, w/2). Returns the disparity after each pass, the confidence logit and the
        upsampling weights (N, 36, h, w); the head's outputs are clamped to ``±HEAD_BOUND``."""
        context = F.interpolate(self.context(context), scale_factor=2.0, mode="bilinear", align_corners=False)
        n = disparity.shape[0]
        left = features[:n]
        matching = self.match(features)
        if self.coarse_match is not None:
            matching = matching + F.interpolate(self.coarse_match(quarter), scale_factor=2.0, mode="bilinear", align_corners=False)
        passes = []
        for index in range(self.iterations):
            correlation = local_correlation(matching[:n], matching[n:], disparity, self.radius)
            x = self.body(self.enter_pass(left, torch.cat([correlation, disparity / 32.0, mass], dim=1)) + context)
            # Passes before the last use only the disparity update: its row of the head alone.
            last = index + 1 == self.iterations
            out = (self.head(x) if last else F.conv2d(x, self.head.weight[:1], self.head.bias[:1])).clamp(-HEAD_BOUND, HEAD_BOUND)
            disparity = disparity + out[:, :1]
            passes.append(disparity)
        return passes, out[:, 1:2], out[:, 2:]

    def enter_pass(self, left: torch.Tensor, matching: torch.Tensor) -> torch.Tensor:
        """``enter`` (1x1 conv, BatchNorm, ReLU) of the left features stacked with the matching cues.

        In eval mode the BatchNorm is folded into the convolution and the convolution is split
        into its left-feature and matching-cue parts, summed: the same function, but the
        left-feature part has a channel count ONNX Runtime's blocked (NCHWc) layout takes, so the
        residual blocks after it stay in that layout (5-9 % of the network's time at 640x480).
        The matching cues (``2 * correlation_radius + 3`` channels) get zero channels, and their
        weights zero columns, up to a multiple of 8, so their convolution runs in that layout too;
        otherwise the sum falls back to the plain layout and each residual block converts its
        input and output (18 layout conversions in the graph instead of 8; 0.95-0.96 of the time
        at 640x480 on 2 threads, benchmarks/results/bench_stereo_runs/v40_cues_padded_vs_*).
        """
        if self.training:
            return self.enter(torch.cat([left, matching], dim=1))
        conv, norm = self.enter[0], self.enter[1]
        scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
        weight = conv.weight * scale.view(-1, 1, 1, 1)
        bias = norm.bias - norm.running_mean * scale
        channels = self.match.in_channels  # a constant (not a traced shape), so the export folds the weights
        cues = weight[:, channels:]
        extra = -cues.shape[1] % 8
        if extra:
            cues = torch.cat([cues, torch.zeros(conv.out_channels, extra, 1, 1, dtype=cues.dtype)], dim=1)
            matching = torch.cat([matching, torch.zeros_like(matching[:, :1]).expand(-1, extra, -1, -1)], dim=1)
        return F.relu(F.conv2d(left, weight[:, :channels], bias) + F.conv2d(matching, cues))


class GlassStereoNet(nn.Module):
    """Left/right (N, 3, H, W) BGR in [0, 255] -> (disparity px, confidence) at (N, 1, H, W)."""

    def __init__(self, config: StereoNetConfig = StereoNetConfig()) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.aggregation = Aggregation(config)
        self.refinement = Refinement(config)

    def with_refine_iterations(self, iterations: int) -> "GlassStereoNet":
        """A copy with the same weights that runs the refinement ``iterations`` times (in the
        mode of this one; the refinement's weights are shared between passes)."""
        copy = GlassStereoNet(replace(self.config, refine_iterations=iterations))
        copy.load_state_dict(self.state_dict())
        return copy.train(self.training)

    def forward_all(self, left: torch.Tensor, right: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every intermediate output training supervises.

        logits (N, D, H/4, W/4); quarter (N, 1, H/4, W/4) and half (N, refine_iterations, H/2, W/2):
        disparity in px of the input at 1/4 and after each refinement pass at 1/2;
        disparity (N, 1, H, W) px; confidence_logit (N, 1, H/2, W/2); confidence (N, 1, H, W).
        """
        n = left.shape[0]
        half, quarter = self.encoder(normalise_view(torch.cat([left, right], dim=0)))
        logits, context = self.aggregation(cosine_cost_volume(quarter[:n], quarter[n:], self.config.levels), quarter[:n])
        level, mass = windowed_soft_argmax(logits, self.config.window)
        half_disparity = F.interpolate(level, scale_factor=2.0, mode="bilinear", align_corners=False) * 2.0
        half_mass = F.interpolate(mass, scale_factor=2.0, mode="bilinear", align_corners=False)
        passes, confidence_logit, mask = self.refinement(half, quarter, half_disparity, half_mass, context)
        disparity = convex_upsample(passes[-1].clamp_min(0.0), mask)
        confidence = F.interpolate(torch.sigmoid(confidence_logit), scale_factor=2.0, mode="bilinear", align_corners=False)
        return {
            "logits": logits,
            "quarter": level * 4.0,
            "half": torch.cat(passes, dim=1) * 2.0,
            "disparity": disparity,
            "confidence_logit": confidence_logit,
            "confidence": confidence,
        }

    def forward(self, left: torch.Tensor, right: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.forward_all(left, right)
        return out["disparity"], out["confidence"]
