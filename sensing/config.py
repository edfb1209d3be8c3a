"""Pipeline settings and device budgets: the one schema that owns the defaults.

``configs/default.yaml`` spells out these defaults; a ``--config FILE`` overrides any subset
of keys. Device profiles (``configs/devices/<name>.yaml``) hold latency and memory budgets.
Unknown keys and out-of-range values raise :class:`ConfigError`.
"""

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sensing.errors import ConfigError
from sensing.novel_view.render import PATHS as CAMERA_PATHS

#: Folder of the shipped YAML files (the repository's ``configs/``).
CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


@dataclass(frozen=True)
class PreprocessConfig:
    """long_side_px: processing resolution (long side of the rectified views, pixels).
    photometric: how the right view's exposure is matched to the left's:
    ``gain_offset`` (per-channel mean and spread), ``histogram`` or ``none``.
    """

    long_side_px: int = 640
    photometric: str = "gain_offset"


@dataclass(frozen=True)
class StereoConfig:
    """method: a registered matcher (``net``, the project's stereo network, or ``sgbm``). The
    disparity search range at the processing resolution is ``max_disparity_px`` when set, else
    f·B / ``min_depth_m``, capped at ``max_disparity_cap_px``. ``params`` go to the matcher's
    constructor.
    """

    method: str = "net"
    max_disparity_px: int | None = None
    min_depth_m: float = 0.35
    max_disparity_cap_px: int = 192
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConfidenceConfig:
    """Cues (each in [0, 1]) combined into the confidence (see :mod:`sensing.confidence`):
    left-right consistency (1 at 0 px disagreement, 0 at ``lr_tolerance_px``), uniqueness
    (relative margin of the chosen matching cost over the best rival at least 2 px away, 1 at
    ``uniqueness_margin``; enters with weight ``uniqueness_weight``) and texture (local
    intensity gradient, 1 at ``texture_grey_levels`` grey levels per pixel). Stereo depth is
    trusted when at least ``min_coverage`` of the pixels reach ``threshold``.

    The pixels below ``threshold``: with ``keep_unconfident`` they keep the matcher's disparity in
    the outputs (the confidence output still marks them); otherwise they are filled with the mono
    network (``mono.fuse``) or marked unknown. None (the default) keeps them for a matcher with a
    confidence of its own (the network, whose guesses there have a lower bad-2 than the mono fill:
    ``glassdepth eval fusion``, README) and not for SGBM.
    """

    lr_tolerance_px: float = 2.0
    uniqueness_margin: float = 0.03
    uniqueness_weight: float = 0.5
    texture_grey_levels: float = 1.5
    threshold: float = 0.3
    min_coverage: float = 0.25
    keep_unconfident: bool | None = None


@dataclass(frozen=True)
class RectificationConfig:
    """Online recalibration (see :mod:`calibration.online`).

    online: estimate and correct the drift of the right camera from the images themselves.
    detector: ``orb``, ``akaze`` or ``sift`` features with at most ``max_features`` per view,
    matched with Lowe's ``ratio`` test and a mutual check. A match is an inlier when its
    vertical disparity after correction is within ``inlier_px``. The correction is reliable
    when at least ``min_inliers`` inliers, ``min_inlier_ratio`` of the matches, cover at
    least ``min_coverage`` of the image grid cells, the vertical disparity the rotation model
    leaves has a median of at most ``max_residual_median_px`` and a 95th percentile of at
    most ``max_residual_p95_px``, the pitch and roll uncertainty moves the corner rows by at
    most ``max_alignment_uncertainty_px`` (two standard errors), the drift is within
    ``max_drift_deg`` of the factory pose, and at most ``max_negative_fraction`` of the
    inliers lie at negative disparity after correction.
    Yaw is corrected by its fitted value when the fit measures it (standard error at most
    ``yaw_max_se_deg``, or the fitted yaw at least ``yaw_min_sigma`` standard errors from the
    factory's) and the correction leaves at most ``max_negative_fraction`` of the inliers at
    negative disparity. Otherwise, when the factory yaw leaves too many inliers at negative
    disparity (an uncorrected toe-in), the least yaw that brings them to positive disparity is
    applied, provided the fitted yaw is within ``yaw_bound_sigma`` standard errors of it.
    """

    online: bool = True
    detector: str = "orb"
    max_features: int = 1000
    ratio: float = 0.8
    inlier_px: float = 1.0
    min_inliers: int = 40
    min_inlier_ratio: float = 0.25
    min_coverage: float = 0.15
    max_residual_median_px: float = 0.4
    max_residual_p95_px: float = 1.2
    max_alignment_uncertainty_px: float = 0.5
    max_drift_deg: float = 3.0
    max_negative_fraction: float = 0.05
    yaw_max_se_deg: float = 0.02
    yaw_min_sigma: float = 5.0
    yaw_bound_sigma: float = 5.0


@dataclass(frozen=True)
class ValidationConfig:
    """Verdict of a calibration validation run over many captures (``glassdepth calib validate``).

    The calibration holds when the captures' median pitch and roll drifts are within
    ``hold_deg`` and the median yaw within ``hold_yaw_deg`` (yaw is seen only through the small
    keystone: its estimates move by a few hundredths of a degree with the matcher and the lens
    model's residuals); it has drifted when it is not and the reliable captures agree (robust spread
    of each axis at most ``consistency_deg``); otherwise, or when fewer than
    ``min_reliable_fraction`` of the captures gave a reliable estimate, the captures are
    inconsistent. Yaw counts only where observed.
    """

    hold_deg: float = 0.05
    hold_yaw_deg: float = 0.1
    consistency_deg: float = 0.05
    min_reliable_fraction: float = 0.5


@dataclass(frozen=True)
class MonoConfig:
    """The monocular network (:mod:`sensing.mono`) as fallback and as filler (:mod:`sensing.fusion`).

    fallback: when the rectification is unreliable or fewer than ``confidence.min_coverage`` of
    the pixels have confident stereo, the mono network's relative disparity is the output
    (``depth_source: mono``; no metric depth); off: ``depth_source: none``.
    fuse: otherwise, unless ``confidence.keep_unconfident`` keeps them, fill the not-confident
    stereo pixels with the mono disparity aligned to the confident ones (``depth_source:
    fused``), blending over ``seam_px`` and, when ``correction_sigma_px`` > 0, correcting the
    mono disparity locally by the alignment residual spread with a Gaussian of that many
    pixels; a not-confident stereo pixel within ``agreement_px`` of that mono value keeps its
    stereo value (0 = never). A fit whose median residual exceeds ``max_alignment_residual``
    times the 95th percentile of the confident stereo disparity is not used (stereo only, with
    the reason).
    weights: the ONNX file; null = models/weights/mono_glass_v1.onnx.
    """

    fallback: bool = True
    fuse: bool = True
    weights: str | None = None
    seam_px: float = 8.0
    correction_sigma_px: float = 8.0
    agreement_px: float = 4.0
    max_alignment_residual: float = 0.1


@dataclass(frozen=True)
class Photo3DConfig:
    """The 3D photo that ``glassdepth process`` writes beside the depth (:mod:`sensing.novel_view.photo3d`).

    path: the camera path of the video, ``circle``, ``swing`` or ``dolly``; ``frames`` frames
    played at ``fps`` frames per second. radius_px: the path's radius, as the image motion of
    the nearest surface (99th percentile of the disparity) in px at processing resolution;
    farther surfaces move less. The disparity (px or relative) is rescaled to it, so stereo and
    mono outputs move alike.
    """

    path: str = "circle"
    frames: int = 30
    fps: float = 15.0
    radius_px: float = 16.0


@dataclass(frozen=True)
class PipelineConfig:
    device: str = "cpu-2core"
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    stereo: StereoConfig = field(default_factory=StereoConfig)
    confidence: ConfidenceConfig = field(default_factory=ConfidenceConfig)
    rectification: RectificationConfig = field(default_factory=RectificationConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    mono: MonoConfig = field(default_factory=MonoConfig)
    photo3d: Photo3DConfig = field(default_factory=Photo3DConfig)

    def __post_init__(self) -> None:
        _check_range("preprocess.long_side_px", self.preprocess.long_side_px, 64, 4096, integer=True)
        if self.preprocess.photometric not in ("gain_offset", "histogram", "none"):
            raise ConfigError(
                f"preprocess.photometric must be gain_offset, histogram or none, got {self.preprocess.photometric!r}"
            )
        if self.stereo.max_disparity_px is not None:
            _check_range("stereo.max_disparity_px", self.stereo.max_disparity_px, 1, 1024, integer=True)
        _check_range("stereo.min_depth_m", self.stereo.min_depth_m, 0.01, 1000.0)
        _check_range("stereo.max_disparity_cap_px", self.stereo.max_disparity_cap_px, 16, 1024, integer=True)
        if not isinstance(self.stereo.params, dict):
            raise ConfigError(f"stereo.params must be a mapping of matcher options, got {self.stereo.params!r}")
        _check_range("confidence.lr_tolerance_px", self.confidence.lr_tolerance_px, 0.1, 100.0)
        _check_range("confidence.uniqueness_margin", self.confidence.uniqueness_margin, 1e-3, 10.0)
        _check_range("confidence.uniqueness_weight", self.confidence.uniqueness_weight, 0.0, 1.0)
        _check_range("confidence.texture_grey_levels", self.confidence.texture_grey_levels, 1e-3, 255.0)
        _check_range("confidence.threshold", self.confidence.threshold, 0.0, 1.0)
        _check_range("confidence.min_coverage", self.confidence.min_coverage, 0.0, 1.0)
        if not (self.confidence.keep_unconfident is None or isinstance(self.confidence.keep_unconfident, bool)):
            raise ConfigError(f"confidence.keep_unconfident must be true, false or null, got {self.confidence.keep_unconfident!r}")
        rect = self.rectification
        if not isinstance(rect.online, bool):
            raise ConfigError(f"rectification.online must be true or false, got {rect.online!r}")
        if rect.detector not in ("orb", "akaze", "sift"):
            raise ConfigError(f"rectification.detector must be orb, akaze or sift, got {rect.detector!r}")
        _check_range("rectification.max_features", rect.max_features, 50, 100000, integer=True)
        _check_range("rectification.ratio", rect.ratio, 0.1, 1.0)
        _check_range("rectification.inlier_px", rect.inlier_px, 0.05, 50.0)
        _check_range("rectification.min_inliers", rect.min_inliers, 3, 100000, integer=True)
        _check_range("rectification.min_inlier_ratio", rect.min_inlier_ratio, 0.0, 1.0)
        _check_range("rectification.min_coverage", rect.min_coverage, 0.0, 1.0)
        _check_range("rectification.max_residual_median_px", rect.max_residual_median_px, 0.0, 100.0)
        _check_range("rectification.max_residual_p95_px", rect.max_residual_p95_px, 0.0, 100.0)
        _check_range("rectification.max_alignment_uncertainty_px", rect.max_alignment_uncertainty_px, 0.0, 100.0)
        _check_range("rectification.max_drift_deg", rect.max_drift_deg, 0.0, 45.0)
        _check_range("rectification.max_negative_fraction", rect.max_negative_fraction, 0.0, 1.0)
        _check_range("rectification.yaw_max_se_deg", rect.yaw_max_se_deg, 0.0, 10.0)
        _check_range("rectification.yaw_min_sigma", rect.yaw_min_sigma, 0.0, 1e9)
        _check_range("rectification.yaw_bound_sigma", rect.yaw_bound_sigma, 0.0, 1e9)
        for key in ("fallback", "fuse"):
            if not isinstance(getattr(self.mono, key), bool):
                raise ConfigError(f"mono.{key} must be true or false, got {getattr(self.mono, key)!r}")
        if self.mono.weights is not None and not isinstance(self.mono.weights, str):
            raise ConfigError(f"mono.weights must be a file path or null, got {self.mono.weights!r}")
        _check_range("mono.seam_px", self.mono.seam_px, 0.0, 1000.0)
        _check_range("mono.correction_sigma_px", self.mono.correction_sigma_px, 0.0, 1000.0)
        _check_range("mono.agreement_px", self.mono.agreement_px, 0.0, 1000.0)
        _check_range("mono.max_alignment_residual", self.mono.max_alignment_residual, 0.0, 1.0)
        if self.photo3d.path not in CAMERA_PATHS:
            raise ConfigError(f"photo3d.path must be one of {list(CAMERA_PATHS)}, got {self.photo3d.path!r}")
        _check_range("photo3d.frames", self.photo3d.frames, 1, 1000, integer=True)
        _check_range("photo3d.fps", self.photo3d.fps, 1.0, 120.0)
        _check_range("photo3d.radius_px", self.photo3d.radius_px, 0.5, 256.0)
        _check_range("validation.hold_deg", self.validation.hold_deg, 0.0, 45.0)
        _check_range("validation.hold_yaw_deg", self.validation.hold_yaw_deg, 0.0, 45.0)
        _check_range("validation.consistency_deg", self.validation.consistency_deg, 0.0, 45.0)
        _check_range("validation.min_reliable_fraction", self.validation.min_reliable_fraction, 0.0, 1.0)


@dataclass(frozen=True)
class DeviceProfile:
    """Budgets of one device class: wall time per stage and in total (ms), peak RSS (MB),
    and the number of CPU threads the pipeline may use."""

    name: str
    threads: int
    total_ms: float
    peak_rss_mb: float
    stage_ms: dict[str, float]
    description: str = ""


def config_from_dict(data: dict[str, Any] | None) -> PipelineConfig:
    """Defaults overridden by ``data`` (nested dicts as in the YAML); unknown keys raise."""
    return _build(PipelineConfig, data or {}, "")


def config_to_dict(config: PipelineConfig) -> dict[str, Any]:
    """The resolved settings as plain nested dicts (as saved in ``report.json``)."""
    return dataclasses.asdict(config)


def load_config(path: str | os.PathLike | None = None) -> PipelineConfig:
    """Defaults, overridden by the YAML file at ``path`` when given."""
    if path is None:
        return PipelineConfig()
    return config_from_dict(_read_yaml(Path(path)))


def load_device_profile(name: str) -> DeviceProfile:
    """Read ``configs/devices/<name>.yaml``."""
    path = CONFIG_DIR / "devices" / f"{name}.yaml"
    if not path.is_file():
        available = sorted(p.stem for p in (CONFIG_DIR / "devices").glob("*.yaml"))
        raise ConfigError(f"unknown device profile {name!r}; available: {available}")
    data = _read_yaml(path)
    try:
        profile = DeviceProfile(name=name, **data)
    except TypeError as error:
        raise ConfigError(f"{path}: {error}") from None
    _check_range(f"{name}.threads", profile.threads, 1, 256, integer=True)
    for stage, budget in profile.stage_ms.items():
        _check_range(f"{name}.stage_ms.{stage}", budget, 0.0, 1e7)
    return profile


def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"unknown setting(s) {[prefix + k for k in unknown]}; allowed: {sorted(fields)}")
    kwargs = {}
    for key, value in data.items():
        sub = fields[key].default_factory if fields[key].default_factory is not dataclasses.MISSING else None
        if dataclasses.is_dataclass(sub):
            kwargs[key] = _build(sub, value, f"{prefix}{key}.")
        else:
            kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as error:
        raise ConfigError(f"{prefix or 'config'}: {error}") from None


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of settings")
    return data


def _check_range(name: str, value: Any, low: float, high: float, *, integer: bool = False) -> None:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not (low <= value <= high):
        raise ConfigError(f"{name} must be {'an integer' if integer else 'a number'} in [{low}, {high}], got {value!r}")
