"""Calibration validation runs: the online drift estimate over many captures, and one verdict.

Each capture goes through exactly the pipeline's first two stages (``preprocess``, then
``rectify`` with the online drift estimate forced on); nothing else runs. Over the captures
whose estimate is reliable, each axis of the drift ([pitch, yaw, roll] degrees, right-camera
axes, see :mod:`calibration.drift`) gets its median and a robust spread (1.4826 x the median
absolute deviation); yaw counts only where it was observed. The verdict follows
:class:`sensing.config.ValidationConfig`: ``inconsistent`` when too few captures are reliable or
they disagree, else ``drifted`` when a median is beyond ``hold_deg`` (``hold_yaw_deg`` for yaw),
else ``holds``.
"""

import csv
import io
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from calibration.camera import StereoCalibration
from calibration.drift import apply_drift, rotation_from_rotvec_deg
from calibration.io import calibration_to_dict
from calibration.online import DriftEstimate
from calibration.rectify import Rectifier
from sensing.capture import list_asl_timestamps, load_capture
from sensing.config import PipelineConfig, ValidationConfig, config_to_dict, load_device_profile
from sensing.errors import CalibrationError, InputError, StageError
from sensing.fileio import staged_folder, write_bytes_atomic, write_json_atomic
from sensing.outputs import git_revision
from sensing.pipeline import rectify_online
from sensing.preprocess import preprocess_capture
from sensing.types import StereoCapture

AXES = ("pitch", "yaw", "roll")
#: Overall verdicts and how they read.
VERDICT_MESSAGES = {
    "holds": "calibration holds",
    "drifted": "drifted — recalibrate",
    "inconsistent": "inconsistent between captures",
}
#: Files of a validation run, as :func:`write_validation` writes them.
OUTPUT_FILES = ("summary.json", "summary.csv", "drift.png")
#: Columns of ``summary.csv``, one row per capture (angles in degrees, residuals in pixels).
CSV_COLUMNS = (
    "name", "source", "timestamp_s", "verdict", "pitch_deg", "yaw_deg", "roll_deg", "yaw_observed", "yaw_se_deg",
    "residual_before_median_px", "residual_before_p95_px", "residual_after_median_px", "residual_after_p95_px",
    "inliers", "matches", "coverage", "elapsed_ms", "reasons",
)
#: Scale of the median absolute deviation to a standard deviation under normal noise.
MAD_TO_SIGMA = 1.4826

#: A capture, or what loads it (raising InputError/CalibrationError when it cannot).
CaptureLoader = Callable[[], StereoCapture]


@dataclass(frozen=True)
class CaptureRecord:
    """What one capture says about the calibration.

    name : short label (folder name, or ``<sequence>/<timestamp_ns>`` for a sequence frame)
    source : where the capture came from (folder, or sequence and frame)
    timestamp_s : seconds since the first capture with a ``timestamp_ns`` in its meta; None without one
    verdict : ``reliable``, ``unreliable`` (estimated, but not to be trusted) or ``stopped``
        (the capture could not be loaded, or a stage refused it; ``reasons`` says why)
    drift_deg : [pitch, yaw, roll] of the estimated drift in degrees; None when stopped
    yaw_observed : yaw was estimated (else the factory yaw is kept); ``yaw_se_deg`` its standard
        error in degrees (None when stopped or without enough matches)
    residual_before_px, residual_after_px : |vertical disparity| of the inliers under the factory
        rectification and after the correction, ``{"median", "p95"}`` in pixels
    inliers, matches : agreeing and all feature matches; coverage : fraction of the image grid
        cells holding an inlier
    reasons : why the estimate is unreliable or the capture stopped (empty when reliable)
    elapsed_ms : wall time for loading, preprocessing and rectifying the capture
    """

    name: str
    source: str
    timestamp_s: float | None
    verdict: str
    elapsed_ms: float
    drift_deg: list[float] | None = None
    yaw_observed: bool | None = None
    yaw_se_deg: float | None = None
    residual_before_px: dict[str, float] | None = None
    residual_after_px: dict[str, float] | None = None
    inliers: int | None = None
    matches: int | None = None
    coverage: float | None = None
    reasons: list[str] = field(default_factory=list)

    @classmethod
    def from_estimate(
        cls, name: str, source: str, timestamp_s: float | None, drift: DriftEstimate, elapsed_ms: float
    ) -> "CaptureRecord":
        return cls(
            name, source, timestamp_s, "reliable" if drift.reliable else "unreliable", elapsed_ms,
            drift_deg=[round(float(a), 5) for a in drift.rotvec_deg], yaw_observed=drift.yaw_observed,
            yaw_se_deg=_round(drift.yaw_se_deg) if np.isfinite(drift.yaw_se_deg) else None,
            residual_before_px=drift.residual_before_px, residual_after_px=drift.residual_after_px,
            inliers=drift.inliers, matches=drift.matches, coverage=round(drift.coverage, 4),
            reasons=list(drift.reasons),
        )

    def csv_row(self) -> dict[str, Any]:
        """One ``summary.csv`` row (see :data:`CSV_COLUMNS`)."""
        drift = self.drift_deg or [None] * 3
        before = self.residual_before_px or {}
        after = self.residual_after_px or {}
        return {
            "name": self.name, "source": self.source, "timestamp_s": self.timestamp_s, "verdict": self.verdict,
            **{f"{axis}_deg": value for axis, value in zip(AXES, drift)},
            "yaw_observed": self.yaw_observed, "yaw_se_deg": self.yaw_se_deg,
            "residual_before_median_px": before.get("median"), "residual_before_p95_px": before.get("p95"),
            "residual_after_median_px": after.get("median"), "residual_after_p95_px": after.get("p95"),
            "inliers": self.inliers, "matches": self.matches, "coverage": self.coverage,
            "elapsed_ms": self.elapsed_ms, "reasons": "; ".join(self.reasons),
        }


@dataclass(frozen=True)
class Verdict:
    """The overall verdict of a validation run.

    verdict : ``holds``, ``drifted`` or ``inconsistent``; message : how it reads
    median_deg, spread_deg : per axis [pitch, yaw, roll], the median drift over the reliable
        captures and 1.4826 x its median absolute deviation, degrees; None for an axis no
        reliable capture observed (yaw without ``yaw_observed``)
    captures, reliable, yaw_observed : how many captures in all, reliable, and reliable with yaw observed
    reasons : why the calibration is inconsistent or drifted (empty when it holds)
    """

    verdict: str
    message: str
    median_deg: list[float | None]
    spread_deg: list[float | None]
    captures: int
    reliable: int
    yaw_observed: int
    reasons: list[str]


@dataclass(frozen=True)
class ValidationSummary:
    """A validation run: the verdict, one record per capture (in input order), the settings used
    and, when the verdict is ``drifted``, the first loaded capture's calibration with the median
    drift applied (the recommended recalibration; the factory yaw is kept where unobserved)."""

    verdict: Verdict
    records: list[CaptureRecord]
    config: PipelineConfig
    calibration_corrected: StereoCalibration | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready ``summary.json`` content (without the git revision)."""
        corrected = self.calibration_corrected
        return {
            **asdict(self.verdict),
            "calibration_corrected": None if corrected is None else calibration_to_dict(corrected),
            "records": [asdict(record) for record in self.records],
            "config": config_to_dict(self.config),
        }

    def format_table(self) -> str:
        """Aligned text table: one row per capture, then the verdict and the median drift."""
        header = ("capture", "t s", "verdict", "pitch", "yaw", "roll", "inliers", "resid px", "ms")
        rows = [header] + [_table_row(record) for record in self.records]
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = ["  ".join(c.ljust(w) if i in (0, 2) else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
                 for row in rows]
        v = self.verdict
        medians = ", ".join(
            f"{axis} not observed" if m is None else f"{axis} {_deg(m)} ± {_deg(s, signed=False)}"
            for axis, m, s in zip(AXES, v.median_deg, v.spread_deg)
        )
        lines.append(f"median drift (deg, ± robust spread) over the {v.reliable} reliable of {v.captures} captures: "
                     f"{medians}")
        lines.append(f"verdict: {v.message}" + "".join(f"\n  reason: {reason}" for reason in v.reasons))
        return "\n".join(lines)


def judge_drift(
    drifts_deg: Sequence[Sequence[float]], yaw_observed: Sequence[bool], captures: int, settings: ValidationConfig
) -> Verdict:
    """The verdict over the reliable captures' drifts.

    drifts_deg : (N, 3) [pitch, yaw, roll] degrees of the N reliable captures
    yaw_observed : (N,) whether each of them observed yaw (only those count for the yaw axis)
    captures : how many captures the run had in all, reliable or not
    """
    drifts = np.asarray(drifts_deg, dtype=np.float64).reshape(-1, 3)
    observed = np.asarray(yaw_observed, dtype=bool).reshape(-1)
    columns = [drifts[:, 0], drifts[observed, 1], drifts[:, 2]]
    medians = [float(np.median(c)) if len(c) else None for c in columns]
    spreads = [MAD_TO_SIGMA * float(np.median(np.abs(c - m))) if len(c) else None for c, m in zip(columns, medians)]
    reasons = _inconsistency(len(drifts), captures, spreads, settings)
    verdict = "inconsistent"
    if not reasons:
        reasons = [
            f"median {axis} drift {m:+.3f} deg is beyond ±{hold} deg"
            for axis, m, hold in zip(AXES, medians, hold_deg_per_axis(settings)) if m is not None and abs(m) > hold
        ]
        verdict = "drifted" if reasons else "holds"
    return Verdict(
        verdict, VERDICT_MESSAGES[verdict], [_round(m) for m in medians], [_round(s) for s in spreads],
        captures, len(drifts), int(observed.sum()), reasons,
    )


def hold_deg_per_axis(settings: ValidationConfig) -> tuple[float, float, float]:
    """The hold band of [pitch, yaw, roll] (degrees): yaw, seen only through the small keystone,
    gets its own wider band."""
    return (settings.hold_deg, settings.hold_yaw_deg, settings.hold_deg)


def list_captures(paths: Iterable[str | os.PathLike]) -> list[tuple[str, CaptureLoader]]:
    """The captures named on the command line, as (name, loader) in order.

    Each path is an EuRoC/ASL sequence (every frame pair is one capture), a capture folder, or a
    folder holding either (its sub-folders in name order; those that hold neither a calibration
    nor a left image are skipped). A capture that fails to load fails in its loader, so the run
    can record it. Raises :class:`InputError` for a path that is missing or holds no capture.
    """
    captures: list[tuple[str, CaptureLoader]] = []
    for path in map(Path, paths):
        if not path.is_dir():
            raise InputError(f"capture not found: {path}" if not path.exists() else f"not a folder: {path}")
        found = _captures_in(path) or [
            capture for sub in sorted(p for p in path.iterdir() if p.is_dir()) for capture in _captures_in(sub)
        ]
        if not found:
            raise InputError(
                f"no captures found in {path} (expected a capture folder with left/right images and a "
                "calibration, a folder of them, or an EuRoC sequence)"
            )
        captures += found
    return captures


def validate_captures(
    captures: Iterable[tuple[str, CaptureLoader | StereoCapture]],
    config: PipelineConfig | None = None,
    *,
    on_capture: Callable[[CaptureRecord], None] | None = None,
) -> ValidationSummary:
    """Estimate the drift of every capture and judge the calibration.

    captures : (name, capture or loader) pairs; a loader raising InputError/CalibrationError, or a
        stage raising StageError, gives a ``stopped`` record and the run goes on
    config : settings (defaults when None); ``rectification.online`` is forced on
    on_capture : called with each record as it is done (progress)
    """
    config = config or PipelineConfig()
    config = replace(config, rectification=replace(config.rectification, online=True))
    cv2.setNumThreads(load_device_profile(config.device).threads)
    rectifier = Rectifier()
    records: list[CaptureRecord] = []
    first: StereoCapture | None = None
    start_ns: int | None = None
    for name, item in captures:
        start = time.perf_counter()
        try:
            capture = item if isinstance(item, StereoCapture) else item()
        except (InputError, CalibrationError) as error:
            record = CaptureRecord(name, name, None, "stopped", _ms_since(start), reasons=[f"cannot load: {error}"])
        else:
            first = first or capture
            stamp = _timestamp_ns(capture)
            start_ns = stamp if start_ns is None else start_ns
            timestamp_s = None if stamp is None else (stamp - start_ns) / 1e9
            record = _validate_capture(name, capture, timestamp_s, config, rectifier, start)
        records.append(record)
        if on_capture is not None:
            on_capture(record)
    return _summarise(records, config, first)


def write_validation(summary: ValidationSummary, out_dir: str | os.PathLike) -> Path:
    """Write :data:`OUTPUT_FILES` into ``out_dir``, all or nothing.

    summary.json : the verdict, per-capture records, settings and git revision
    summary.csv : one row per capture (columns :data:`CSV_COLUMNS`)
    drift.png : drift per axis over the captures, with the hold band of each axis
    """
    with staged_folder(out_dir) as staging:
        write_json_atomic(staging / "summary.json", {**summary.to_dict(), "git_revision": git_revision()})
        write_bytes_atomic(staging / "summary.csv", _csv_bytes(summary.records))
        write_bytes_atomic(staging / "drift.png", plot_drift(summary))
    return Path(out_dir)


def plot_drift(summary: ValidationSummary) -> bytes:
    """PNG bytes: pitch, yaw and roll (degrees) over the captures, one panel each.

    x is the time in seconds when every capture has a distinct timestamp, else the capture index.
    Reliable estimates are filled dots, unreliable ones (and unobserved yaw) hollow, stopped
    captures a dotted vertical line; the green band is the axis' hold band, the dashed line the median.
    """
    from matplotlib.figure import Figure  # lazy: plotting is the only user; Figure renders with Agg

    records = summary.records
    times = [r.timestamp_s for r in records]
    use_time = None not in times and len(set(times)) > 1
    x = np.array(times if use_time else range(len(records)), dtype=float)
    holds = hold_deg_per_axis(summary.config.validation)
    figure = Figure(figsize=(8, 7), layout="constrained")
    panels = figure.subplots(3, 1, sharex=True)
    for index, (panel, axis, hold) in enumerate(zip(panels, AXES, holds)):
        panel.axhspan(-hold, hold, color="tab:green", alpha=0.15, label=f"±{hold} deg (holds)")
        median = summary.verdict.median_deg[index]
        if median is not None:
            panel.axhline(median, color="tab:blue", linestyle="--", linewidth=1, label="median")
        for kind, style in _point_styles(records, index).items():
            if style["mask"].any():
                values = [records[i].drift_deg[index] for i in np.flatnonzero(style["mask"])]
                panel.plot(x[style["mask"]], values, linestyle="none", label=kind, **style["marker"])
        for i, stopped_x in enumerate(x[[r.verdict == "stopped" for r in records]]):
            panel.axvline(stopped_x, color="tab:red", linestyle=":", linewidth=1, label=None if i else "stopped")
        panel.set_ylabel(f"{axis} (deg)")
        panel.grid(True, alpha=0.3)
    legend = {label: handle for panel in panels for handle, label in zip(*panel.get_legend_handles_labels())}
    figure.legend(legend.values(), legend.keys(), loc="outside lower center", fontsize="small", ncols=len(legend))
    panels[-1].set_xlabel("time (s)" if use_time else "capture")
    figure.suptitle(f"right-camera drift: {summary.verdict.message}")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _captures_in(path: Path) -> list[tuple[str, CaptureLoader]]:
    """The captures ``path`` itself is: each frame of a sequence, or one capture folder; else none."""
    try:
        stamps = list_asl_timestamps(path)
    except InputError:
        stamps = None
    if stamps is not None:
        return [(f"{path.name}/{stamp}", _loader(path, frame)) for frame, stamp in enumerate(stamps)]
    if any(path.glob("calibration.*")) or any(path.glob("left.*")):
        return [(path.name, _loader(path, None))]
    return []


def _loader(path: Path, frame: int | None) -> CaptureLoader:
    return lambda: load_capture(path, frame=frame)


def _validate_capture(
    name: str, capture: StereoCapture, timestamp_s: float | None, config: PipelineConfig, rectifier: Rectifier,
    start: float,
) -> CaptureRecord:
    """The pipeline's first two stages on one capture."""
    try:
        prepared = preprocess_capture(
            capture, long_side_px=config.preprocess.long_side_px, photometric=config.preprocess.photometric
        )
        _, drift = rectify_online(prepared, config, rectifier)
    except StageError as error:
        return CaptureRecord(name, capture.source, timestamp_s, "stopped", _ms_since(start), reasons=[str(error)])
    return CaptureRecord.from_estimate(name, capture.source, timestamp_s, drift, _ms_since(start))


def _summarise(records: list[CaptureRecord], config: PipelineConfig, first: StereoCapture | None) -> ValidationSummary:
    reliable = [r for r in records if r.verdict == "reliable"]
    verdict = judge_drift(
        [r.drift_deg for r in reliable], [r.yaw_observed for r in reliable], len(records), config.validation
    )
    corrected = None
    if verdict.verdict == "drifted":
        median = [0.0 if m is None else m for m in verdict.median_deg]
        corrected = apply_drift(first.calibration, rotation_from_rotvec_deg(median))
    return ValidationSummary(verdict, records, config, corrected)


def _inconsistency(reliable: int, captures: int, spreads: list[float | None], settings: ValidationConfig) -> list[str]:
    if reliable == 0:
        return [f"none of the {captures} captures gave a reliable drift estimate"]
    reasons = []
    if reliable < settings.min_reliable_fraction * captures:
        reasons.append(
            f"only {reliable} of {captures} captures gave a reliable drift estimate "
            f"(need {100 * settings.min_reliable_fraction:.0f}%)"
        )
    reasons += [
        f"the captures disagree on {axis}: robust spread {s:.3f} deg (allowed {settings.consistency_deg} deg)"
        for axis, s in zip(AXES, spreads) if s is not None and s > settings.consistency_deg
    ]
    return reasons


def _point_styles(records: list[CaptureRecord], axis: int) -> dict[str, dict[str, Any]]:
    """Marker styles and masks of the estimated points of one axis: filled when trusted, hollow when not."""
    verdicts = np.array([r.verdict for r in records])
    unobserved = np.array([axis == 1 and r.yaw_observed is False for r in records])
    reliable = (verdicts == "reliable") & ~unobserved
    return {
        "reliable": {"mask": reliable, "marker": {"marker": "o", "color": "tab:blue"}},
        "unreliable": {"mask": verdicts == "unreliable",
                       "marker": {"marker": "o", "markerfacecolor": "none", "color": "tab:orange"}},
        "yaw not observed": {"mask": (verdicts == "reliable") & unobserved,
                             "marker": {"marker": "s", "markerfacecolor": "none", "color": "tab:gray"}},
    }


def _csv_bytes(records: list[CaptureRecord]) -> bytes:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(record.csv_row() for record in records)
    return text.getvalue().encode()


def _table_row(record: CaptureRecord) -> tuple[str, ...]:
    drift = record.drift_deg or [None] * 3
    after = (record.residual_after_px or {}).get("median")
    return (
        record.name, "" if record.timestamp_s is None else f"{record.timestamp_s:.2f}", record.verdict,
        *(_deg(value) for value in drift), "" if record.inliers is None else str(record.inliers),
        "" if after is None else f"{after:.2f}", f"{record.elapsed_ms:.0f}",
    )


def _timestamp_ns(capture: StereoCapture) -> int | None:
    stamp = capture.meta.get("timestamp_ns")
    return stamp if isinstance(stamp, int) and not isinstance(stamp, bool) else None


def _deg(value: float | None, *, signed: bool = True) -> str:
    return "-" if value is None else f"{value:+.3f}" if signed else f"{value:.3f}"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 5)


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)
