"""The orchestrator: runs the stages in order, timing each and measuring its peak memory.

Stages: ``preprocess`` (bit depth, resolution, exposure, black/saturated/identical checks),
``rectify`` (undistortion + factory rectification + valid crop + resize, then the online
estimate of the right camera's drift, its correction when reliable, and the swapped-view check),
``stereo`` (the configured matcher), ``confidence`` (left-right, uniqueness, texture; decides
whether stereo depth is trusted), ``mono`` (the monocular network on the rectified left view,
when needed), ``fusion`` (mono aligned to the confident stereo fills the rest) and ``depth``
(metric depth). A stage that cannot work on its input raises :class:`StageError`; the run then
stops and says why.

Which depth comes out (``depth_source``) follows the configured policy (:class:`MonoConfig`):
the rectification is unreliable, or too little stereo is confident → ``mono`` (relative
disparity in [0, 1], no metric depth) or ``none`` with the fallback off; otherwise ``stereo``
where the not-confident pixels keep the matcher's disparity (``confidence.keep_unconfident``;
by default for the network), else ``fused`` (stereo where confident, aligned mono elsewhere) or
``stereo`` with the not-confident pixels unknown (fusion off, or a mono alignment too poor to use).
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import cv2
import numpy as np

from calibration.camera import StereoCalibration
from calibration.drift import apply_drift
from calibration.online import DriftEstimate, estimate_drift, match_features, to_grey
from calibration.rectify import Rectifier, rectify_view
from sensing import pair_checks
from sensing.confidence import network_confidence, stereo_confidence
from sensing.config import (
    DeviceProfile,
    PipelineConfig,
    config_to_dict,
    load_device_profile,
)
from sensing.depth import depth_from_disparity
from sensing.errors import StageError
from sensing.fusion import fuse_disparity
from sensing.mono import DEFAULT_MONO_WEIGHTS, MonoEstimator
from sensing.preprocess import preprocess_capture
from sensing.resources import peak_rss_mb, reset_peak_rss
from sensing.stereo import (
    ConfidentMatcher,
    StereoMatcher,
    build_matcher,
    right_disparity,
    round_up_disparities,
)
from sensing.types import (
    ConfidenceMap,
    DepthMap,
    DisparityMap,
    PreparedPair,
    RectifiedPair,
    StageRecord,
    StereoCapture,
)

log = logging.getLogger(__name__)

STAGES = ("preprocess", "rectify", "stereo", "confidence", "mono", "fusion", "depth")
T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class PipelineResult:
    """Everything one run produced.

    ok : False when a stage stopped the run (then ``reasons`` says why and the maps are None)
    depth_source : ``"stereo"``, ``"fused"``, ``"mono"`` or ``"none"`` (see the module docstring)
    disparity : the left view's disparity in px, unknown where not confident (``stereo``),
        everywhere (``fused``), relative in [0, 1] (``mono``: ``details["disparity_units"]`` is
        ``"relative"``) or all unknown (``none``); confidence is the stereo confidence (0 without
        stereo); depth is metric wherever the disparity is in px
    drift : the online drift estimate (None when ``rectification.online`` is off or the run
        stopped before it)
    calibration_corrected : the capture's calibration with the drift applied, at its native
        resolution; None unless the estimate was reliable
    """

    ok: bool
    capture: StereoCapture
    config: PipelineConfig
    profile: DeviceProfile
    stages: list[StageRecord]
    depth_source: str
    reasons: list[str]
    total_ms: float
    rectified: RectifiedPair | None = None
    disparity: DisparityMap | None = None
    confidence: ConfidenceMap | None = None
    depth: DepthMap | None = None
    drift: DriftEstimate | None = None
    calibration_corrected: StereoCalibration | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def report(self) -> dict[str, Any]:
        """The JSON-ready ``report.json`` content."""
        peak = max((s.peak_rss_mb for s in self.stages), default=0.0)
        return {
            "ok": self.ok,
            "input": self.capture.summary(),
            "config": config_to_dict(self.config),
            "device": {
                "profile": self.profile.name,
                "threads": self.profile.threads,
                "budget_total_ms": self.profile.total_ms,
                "budget_peak_rss_mb": self.profile.peak_rss_mb,
            },
            "stages": [s.to_dict() for s in self.stages],
            "depth_source": self.depth_source,
            "reasons": self.reasons,
            "total_ms": round(self.total_ms, 3),
            "total_within_budget": self.total_ms <= self.profile.total_ms,
            "peak_rss_mb": round(peak, 1),
            "peak_rss_within_budget": peak <= self.profile.peak_rss_mb,
            **self.details,
        }


class _Stopped(Exception):
    """Raised inside :func:`run_pipeline` after a stage failed and was recorded."""


class _StageRunner:
    def __init__(self, profile: DeviceProfile) -> None:
        self.profile = profile
        self.records: list[StageRecord] = []

    def run(self, name: str, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        reset_peak_rss()
        start = time.perf_counter()
        try:
            output = function(*args, **kwargs)
        except StageError as error:
            self._record(name, "failed", start, str(error))
            raise _Stopped(f"{name}: {error}") from error
        self._record(name, "ok", start)
        return output

    def _record(self, name: str, status: str, start: float, message: str = "") -> None:
        ms = (time.perf_counter() - start) * 1000.0
        budget = self.profile.stage_ms.get(name)
        within = None if budget is None else ms <= budget
        self.records.append(StageRecord(name, status, ms, peak_rss_mb(), budget, within, message))
        log.debug("stage %s %s in %.1f ms", name, status, ms)

    def skipped_rest(self) -> list[StageRecord]:
        done = {r.name: r for r in self.records}
        return [
            done.get(n) or StageRecord(n, "skipped", 0.0, 0.0, self.profile.stage_ms.get(n), None) for n in STAGES
        ]


def search_range_px(rectified: RectifiedPair, config: PipelineConfig) -> int:
    """Disparity search range at processing resolution: the configured one, or f·B / min depth
    rounded up to a multiple of 16 and capped at the largest multiple of 16 within the cap."""
    if config.stereo.max_disparity_px is not None:
        return round_up_disparities(config.stereo.max_disparity_px)
    needed = rectified.focal_px * rectified.baseline_m / config.stereo.min_depth_m
    return min(round_up_disparities(needed), 16 * (config.stereo.max_disparity_cap_px // 16))


def run_pipeline(
    capture: StereoCapture,
    config: PipelineConfig | None = None,
    *,
    profile: DeviceProfile | None = None,
    rectifier: Rectifier | None = None,
    matcher: StereoMatcher | None = None,
    mono: MonoEstimator | None = None,
) -> PipelineResult:
    """Run all stages on one capture.

    Parameters
    ----------
    capture : a loaded capture (see :func:`sensing.capture.load_capture`)
    config : settings; defaults when None
    profile : device budgets and threads; ``config.device``'s profile when None
    rectifier, matcher, mono : reuse across captures to keep cached maps and built models
        (``mono`` is built from ``config.mono.weights`` when first needed)
    """
    config = config or PipelineConfig()
    profile = profile or load_device_profile(config.device)
    rectifier = rectifier or Rectifier()
    matcher = matcher or build_matcher(config.stereo.method, threads=profile.threads, **config.stereo.params)

    def mono_estimator() -> MonoEstimator:
        return mono or MonoEstimator(config.mono.weights or str(DEFAULT_MONO_WEIGHTS), threads=profile.threads)

    cv2.setNumThreads(profile.threads)
    runner = _StageRunner(profile)
    start = time.perf_counter()
    details: dict[str, Any] = {}

    def finish(ok: bool, depth_source: str, reasons: list[str], **maps: Any) -> PipelineResult:
        details["disparity_units"] = "relative" if depth_source == "mono" else "px"
        return PipelineResult(
            ok, capture, config, profile, runner.skipped_rest(), depth_source, reasons,
            (time.perf_counter() - start) * 1000.0, details=details, **maps,
        )

    try:
        prepared = runner.run(
            "preprocess", preprocess_capture, capture,
            long_side_px=config.preprocess.long_side_px, photometric=config.preprocess.photometric,
        )
        details["photometric"] = prepared.photometric
        rectified, drift = runner.run("rectify", rectify_online, prepared, config, rectifier)
        max_disparity = search_range_px(rectified, config)
        details["rectification"] = {
            "size_wh": [rectified.size_hw[1], rectified.size_hw[0]],
            "focal_px": round(rectified.focal_px, 3),
            "baseline_m": round(rectified.baseline_m, 6),
            "P1": rectified.P1.round(6).tolist(),
            "P2": rectified.P2.round(6).tolist(),
            "online": drift is not None,
            **(drift.to_dict() if drift is not None else {}),
            "ms": round(runner.records[-1].ms, 3),
        }
        extras: dict[str, Any] = {"rectified": rectified, "drift": drift}
        if drift is not None and drift.reliable:
            extras["calibration_corrected"] = apply_drift(capture.calibration, drift.R_drift)
        if drift is not None and not drift.reliable:
            reasons = [f"rectification unreliable: {reason}" for reason in drift.reasons]
            source, reasons, maps = _without_stereo(runner, rectified, reasons, config, mono_estimator, details)
            return finish(True, source, reasons, **maps, **extras)
        disparity, own_confidence = runner.run("stereo", _stereo, rectified, matcher, max_disparity)
        confidence = runner.run(
            "confidence", _confidence, rectified, disparity, own_confidence, matcher, max_disparity, config
        )
        confident = confidence.values >= config.confidence.threshold
        coverage = float(confident.mean())
        details["stereo"] = {
            "method": matcher.name,
            "max_disparity_px": max_disparity,
            "density": round(float(disparity.valid.mean()), 4),
            "confident_coverage": round(coverage, 4),
            "confidence_threshold": config.confidence.threshold,
        }
        if coverage < config.confidence.min_coverage:
            reasons = [
                f"only {100 * coverage:.1f}% of pixels have confident stereo "
                f"(need {100 * config.confidence.min_coverage:.0f}%)"
            ]
            source, reasons, maps = _without_stereo(runner, rectified, reasons, config, mono_estimator, details)
            return finish(True, source, reasons, **{**maps, "confidence": confidence}, **extras)
        keep = config.confidence.keep_unconfident
        if keep is None:
            keep = isinstance(matcher, ConfidentMatcher)
        output, depth_source, reasons = (disparity if keep else disparity.masked(confident)), "stereo", []
        if not keep and config.mono.fuse and not confident.all():
            relative = runner.run("mono", mono_estimator().predict, rectified.left)
            fused = runner.run(
                "fusion", fuse_disparity, disparity, confident, relative,
                seam_px=config.mono.seam_px, correction_sigma_px=config.mono.correction_sigma_px or None,
                agreement_px=config.mono.agreement_px or None,
            )
            near_px = float(np.percentile(disparity.values_px[confident & disparity.valid], 95))
            allowed_px = config.mono.max_alignment_residual * near_px
            details["fusion"] = {
                **fused.alignment.to_dict(), "allowed_residual_px": round(allowed_px, 4),
                "filled_fraction": round(1.0 - coverage, 4),
            }
            if fused.alignment.residual_px <= allowed_px:
                output, depth_source = fused.disparity, "fused"
            else:
                reasons.append(
                    f"mono not fused: its alignment to the confident stereo leaves {fused.alignment.residual_px:.2f} px "
                    f"(allowed {allowed_px:.2f} px: {config.mono.max_alignment_residual} of the near disparity)"
                )
        details["stereo"]["unconfident_pixels"] = (
            "none" if confident.all() else "kept" if keep else "mono" if depth_source == "fused" else "unknown"
        )
        depth = runner.run(
            "depth", depth_from_disparity, output, focal_px=rectified.focal_px, baseline_m=rectified.baseline_m
        )
    except _Stopped as stop:
        return finish(False, "none", [str(stop)])

    details["depth"] = depth_summary(depth)
    return finish(True, depth_source, reasons, disparity=output, confidence=confidence, depth=depth, **extras)


def _without_stereo(
    runner: "_StageRunner",
    rectified: RectifiedPair,
    reasons: list[str],
    config: PipelineConfig,
    mono_estimator: Callable[[], MonoEstimator],
    details: dict[str, Any],
) -> tuple[str, list[str], dict[str, Any]]:
    """Stereo cannot be trusted: the mono network's relative disparity (fallback on), or
    nothing. Returns the depth source, the reasons and the maps for :class:`PipelineResult`."""
    size = rectified.size_hw
    if config.mono.fallback:
        relative = runner.run("mono", mono_estimator().predict, rectified.left)
        disparity = DisparityMap(relative, np.ones(size, bool))
        source, reasons = "mono", [*reasons, "fell back to the monocular network (relative disparity, no metric depth)"]
    else:
        disparity, source = DisparityMap(np.full(size, np.inf, np.float32), np.zeros(size, bool)), "none"
    unknown = DisparityMap(np.full(size, np.inf, np.float32), np.zeros(size, bool))
    depth = runner.run("depth", depth_from_disparity, unknown, focal_px=rectified.focal_px, baseline_m=rectified.baseline_m)
    details["depth"] = depth_summary(depth)
    maps = {"disparity": disparity, "confidence": ConfidenceMap(np.zeros(size, np.float32)), "depth": depth}
    return source, reasons, maps


def depth_summary(depth: DepthMap) -> dict[str, float] | None:
    """Median, 5th and 95th percentile depth (metres) and the valid fraction; None when empty."""
    if not depth.valid.any():
        return None
    p5, median, p95 = np.percentile(depth.depth_m[depth.valid], [5, 50, 95])
    return {
        "median_m": round(float(median), 4),
        "p5_m": round(float(p5), 4),
        "p95_m": round(float(p95), 4),
        "valid_fraction": round(float(depth.valid.mean()), 4),
    }


def rectify_online(
    prepared: PreparedPair, config: PipelineConfig, rectifier: Rectifier
) -> tuple[RectifiedPair, DriftEstimate | None]:
    """The ``rectify`` stage: factory rectification, then the online drift estimate.

    A reliable estimate replaces the right view by one rectified with the corrected
    rotation ``R2 · R_drift^T`` (the left view and both projections stay the factory's, so
    disparities keep their meaning). Raises :class:`StageError` when the feature matches
    say the views are swapped. Returns the pair and the estimate (None with
    ``rectification.online`` off).
    """
    settings = config.rectification
    left, right, rect = rectifier.rectify_pair(
        prepared.left, prepared.right, prepared.calibration, long_side_px=config.preprocess.long_side_px
    )
    if not settings.online:
        matches = match_features(
            to_grey(left), to_grey(right), detector=settings.detector, max_features=settings.max_features,
            ratio=settings.ratio,
        )
        same_row = np.abs(matches.left_px[:, 1] - matches.right_px[:, 1]) <= 2.0
        pair_checks.check_not_swapped(matches.left_px[same_row, 0] - matches.right_px[same_row, 0])
        return RectifiedPair(left, right, rect.focal_px, rect.baseline_m, rect.P1, rect.P2), None
    drift = estimate_drift(left, right, rect.P1[:, :3], settings, R_rect_right=rect.R2)
    pair_checks.check_not_swapped(drift.disparities_px)
    if drift.reliable:
        R2_corrected = drift.rotation_rectified.T @ rect.R2
        right = rectify_view(prepared.right, prepared.calibration.right, R2_corrected, rect.P2, rect.size_wh)
    return RectifiedPair(left, right, rect.focal_px, rect.baseline_m, rect.P1, rect.P2), drift


def stereo_with_confidence(
    rectified: RectifiedPair, matcher: StereoMatcher, max_disparity: int, config: PipelineConfig
) -> tuple[DisparityMap, ConfidenceMap]:
    """The ``stereo`` and ``confidence`` stages in one call (for benchmarks): the left view's
    disparity (px) and its confidence, as :func:`run_pipeline` computes them."""
    disparity, own_confidence = _stereo(rectified, matcher, max_disparity)
    return disparity, _confidence(rectified, disparity, own_confidence, matcher, max_disparity, config)


def _stereo(rectified: RectifiedPair, matcher: StereoMatcher, max_disparity: int) -> tuple[DisparityMap, np.ndarray | None]:
    """The ``stereo`` stage: the left disparity, and the matcher's own confidence if it has one."""
    if isinstance(matcher, ConfidentMatcher):
        return matcher.match_with_confidence(rectified.left, rectified.right, max_disparity_px=max_disparity)
    return matcher.match(rectified.left, rectified.right, max_disparity_px=max_disparity), None


def _confidence(
    rectified: RectifiedPair,
    disparity: DisparityMap,
    own_confidence: np.ndarray | None,
    matcher: StereoMatcher,
    max_disparity: int,
    config: PipelineConfig,
) -> ConfidenceMap:
    """The ``confidence`` stage: left-right check with the mirrored pair, combined with the
    matcher's own confidence (network) or with uniqueness and texture (classical)."""
    right = right_disparity(matcher, rectified.left, rectified.right, max_disparity_px=max_disparity)
    settings = config.confidence
    if own_confidence is not None:
        return network_confidence(own_confidence, disparity, right, lr_tolerance_px=settings.lr_tolerance_px)
    return stereo_confidence(
        rectified.left,
        rectified.right,
        disparity,
        right,
        max_disparity_px=max_disparity,
        lr_tolerance_px=settings.lr_tolerance_px,
        uniqueness_margin=settings.uniqueness_margin,
        uniqueness_weight=settings.uniqueness_weight,
        texture_grey_levels=settings.texture_grey_levels,
    )
