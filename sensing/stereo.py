"""Stereo matchers behind one small interface, and a registry to build them by name.

A matcher turns a rectified pair into the left view's :class:`DisparityMap`. Building a
matcher is separate from running it (and, for learned matchers, from loading weights).
"""

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np

from sensing.checks import check_image
from sensing.errors import ConfigError, ShapeError
from sensing.types import DisparityMap
from sensing.visibility import fill_unmatched

#: OpenCV's SGBM returns fixed-point disparities with 4 fractional bits.
SGBM_FIXED_POINT_SCALE = 16.0


class StereoMatcher(Protocol):
    """Rectified (H, W, 3) uint8 BGR pair -> left-view disparity in pixels."""

    name: str

    def match(self, left: np.ndarray, right: np.ndarray, *, max_disparity_px: int) -> DisparityMap: ...


MATCHERS: dict[str, Callable[..., StereoMatcher]] = {}


def register_matcher(name: str) -> Callable[[Callable[..., StereoMatcher]], Callable[..., StereoMatcher]]:
    """Class decorator adding a matcher factory to :data:`MATCHERS` under ``name``."""

    def register(factory: Callable[..., StereoMatcher]) -> Callable[..., StereoMatcher]:
        MATCHERS[name] = factory
        return factory

    return register


@runtime_checkable
class ConfidentMatcher(StereoMatcher, Protocol):
    """A matcher that also predicts a per-pixel confidence of its disparity."""

    def match_with_confidence(self, left: np.ndarray, right: np.ndarray, *, max_disparity_px: int) -> tuple[DisparityMap, np.ndarray]: ...


def build_matcher(name: str, *, threads: int | None = None, **params: object) -> StereoMatcher:
    """Build the matcher registered as ``name`` with its keyword parameters.

    ``threads`` (e.g. the device profile's) goes to matchers that take a ``threads`` field,
    unless ``params`` sets it; matchers that do not (SGBM uses OpenCV's global setting) ignore it.
    """
    if name not in MATCHERS:
        raise ConfigError(f"unknown stereo method {name!r}; available: {sorted(MATCHERS)}")
    factory = MATCHERS[name]
    if threads is not None and "threads" in getattr(factory, "__dataclass_fields__", {}):
        params = {"threads": threads} | params
    try:
        return factory(**params)
    except TypeError as error:
        raise ConfigError(f"bad parameters for stereo method {name!r}: {error}") from None


def round_up_disparities(max_disparity_px: float) -> int:
    """Smallest multiple of 16 (OpenCV's requirement) covering ``max_disparity_px``, at least 16."""
    return int(max(16, 16 * int(np.ceil(max_disparity_px / 16.0))))


@register_matcher("sgbm")
@dataclass(frozen=True)
class SgbmMatcher:
    """OpenCV semi-global block matching (3-way by default).

    The smoothness penalties scale with the window area and channel count, as in OpenCV's
    samples: P1 = p1_per_pixel * channels * block_size², P2 likewise. The left image is
    padded by the disparity range so that its left border strip gets disparities too.
    """

    block_size: int = 5
    p1_per_pixel: int = 8
    p2_per_pixel: int = 32
    uniqueness_ratio: int = 10
    speckle_window: int = 100
    speckle_range: int = 2
    disp12_max_diff: int = 1
    mode: str = "3way"
    pad_left: bool = True
    name: str = "sgbm"

    _MODES = {"sgbm": cv2.STEREO_SGBM_MODE_SGBM, "hh": cv2.STEREO_SGBM_MODE_HH, "3way": cv2.STEREO_SGBM_MODE_SGBM_3WAY}

    def __post_init__(self) -> None:
        if self.mode not in self._MODES:
            raise ConfigError(f"sgbm mode must be one of {sorted(self._MODES)}, got {self.mode!r}")
        if self.block_size < 1 or self.block_size % 2 == 0:
            raise ConfigError(f"sgbm block_size must be a positive odd number, got {self.block_size}")

    def create(self, num_disparities: int, channels: int) -> cv2.StereoSGBM:
        """The configured ``cv2.StereoSGBM`` for ``num_disparities`` (a multiple of 16)."""
        area = channels * self.block_size**2
        return cv2.StereoSGBM.create(
            minDisparity=0,
            numDisparities=num_disparities,
            blockSize=self.block_size,
            P1=self.p1_per_pixel * area,
            P2=self.p2_per_pixel * area,
            disp12MaxDiff=self.disp12_max_diff,
            uniquenessRatio=self.uniqueness_ratio,
            speckleWindowSize=self.speckle_window,
            speckleRange=self.speckle_range,
            mode=self._MODES[self.mode],
        )

    def match(self, left: np.ndarray, right: np.ndarray, *, max_disparity_px: int) -> DisparityMap:
        """Disparity of ``left``: (H, W) float32 px, invalid where SGBM found no unique match."""
        _check_pair(left, right)
        num_disparities = round_up_disparities(max_disparity_px)
        channels = 1 if left.ndim == 2 else left.shape[2]
        pad = num_disparities if self.pad_left else 0
        if pad:
            left = cv2.copyMakeBorder(left, 0, 0, pad, 0, cv2.BORDER_REPLICATE)
            right = cv2.copyMakeBorder(right, 0, 0, pad, 0, cv2.BORDER_REPLICATE)
        raw = self.create(num_disparities, channels).compute(left, right)[:, pad:]
        valid = raw >= 0
        return DisparityMap(raw.astype(np.float32) / SGBM_FIXED_POINT_SCALE, valid)


#: A search range up to this factor over the network's largest disparity runs at full
#: resolution (the few largest disparities are then out of reach); beyond it the views shrink.
NET_RANGE_TOLERANCE = 1.05

#: The shipped stereo network (trained by ``python -m models.train_stereo --config configs/train_stereo.yaml``).
DEFAULT_NET_WEIGHTS = Path(__file__).resolve().parent.parent / "models" / "weights" / "stereo_glass_v40.onnx"


def pad_to_stride(image: np.ndarray, stride: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Pad (H, W[, C]) at the bottom and right by edge replication to multiples of ``stride``.

    Returns the padded image and the original (H, W), to crop the result back.
    """
    height, width = image.shape[:2]
    bottom, right = -height % stride, -width % stride
    if bottom or right:
        image = cv2.copyMakeBorder(image, 0, bottom, 0, right, cv2.BORDER_REPLICATE)
    return image, (height, width)


def net_working_scale(max_disparity_px: float, reach_px: float) -> float:
    """Factor by which the network's input is resized: 1, or smaller when the search range
    exceeds ``reach_px`` (the network's largest disparity) times :data:`NET_RANGE_TOLERANCE`."""
    return 1.0 if max_disparity_px <= NET_RANGE_TOLERANCE * reach_px else reach_px / max_disparity_px


def onnx_session(path: str, threads: int, input_hw: tuple[int, int] | None = None) -> Any:
    """The ONNX Runtime session of ``path`` (cached per file version, thread count and input size).

    input_hw : (H, W) px of the (N, C, H, W) inputs it will run on, or None for any size. A
        session for one size fixes the model's free height and width dimensions to it, so ONNX
        Runtime's graph optimiser folds every computation that depends only on the size (the
        cost volume's and the warp's index tensors, the padding) into constants: the same
        outputs, and the stereo network ran about 15 % faster at 640x480 on 2 threads (ad-hoc,
        bare session). Building one takes tens of ms.

    ONNX Runtime's memory pattern (a block pre-planned from the first run, kept beside the
    arena) is off: without it the pipeline's peak RSS with the stereo network at 640x480 fell
    from 367 to 298 MB, with SGBM (the mono network's session) from 245 to 224 MB, and the
    network's latency did not measurably change (benchmarks/results/process_runs/).

    The session's worker threads stop spinning when a run returns (``session.force_spinning_stop``).
    By default they spin on for a while, waiting for more work, and take a core from whatever
    runs next: plain SGBM-3way right after a network run took 88-90 ms against 72-77 ms with the
    spinning stopped, while the network's own time did not change (78-81 ms either way; ad-hoc,
    40 alternated calls, twice, in a busy hour). That also slowed the reference of ``glassdepth
    bench stereo``, which runs SGBM-3way right after the network.

    Every session allocates from one CPU arena registered with ONNX Runtime's environment
    (:func:`_shared_cpu_arena`) instead of an arena of its own, so the mono network reuses the
    blocks the stereo network's run left free: the net pipeline's peak RSS fell from 297 to 272-274
    MB, with no measurable latency cost (benchmarks/results/process_runs/net_*arena*).
    """
    return _cached_session(path, os.stat(path).st_mtime_ns, threads, None if input_hw is None else tuple(int(v) for v in input_hw))


@lru_cache(maxsize=1)
def _shared_cpu_arena() -> None:
    """Register, once per process, the CPU arena every session of :func:`onnx_session` shares
    (ONNX Runtime's default arena settings)."""
    import onnxruntime

    memory = onnxruntime.OrtMemoryInfo("Cpu", onnxruntime.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, onnxruntime.OrtMemType.DEFAULT)
    onnxruntime.create_and_register_allocator(memory, onnxruntime.OrtArenaCfg({}))


@lru_cache(maxsize=8)
def _cached_session(path: str, _mtime_ns: int, threads: int, input_hw: tuple[int, int] | None) -> Any:
    import onnxruntime

    _shared_cpu_arena()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.enable_mem_pattern = False
    options.add_session_config_entry("session.use_env_allocators", "1")
    options.add_session_config_entry("session.force_spinning_stop", "1")
    if input_hw is not None:
        shape = _model_header(path, _mtime_ns)[1]
        for name, size in zip(shape[2:], input_hw):
            if isinstance(name, str):
                options.add_free_dimension_override_by_name(name, size)
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


@lru_cache(maxsize=8)
def _model_header(path: str, _mtime_ns: int) -> tuple[dict[str, str], list[str | int]]:
    """The custom metadata of the ONNX file at ``path`` and the shape of its first input (named
    free dimensions as strings), read through a session without graph optimisation: checking a
    network and naming the dimensions a sized session fixes need no optimised graph (the
    stereo network's header takes about 15 ms instead of 55-63 ms for an optimised session, once
    per process; ad-hoc)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return dict(session.get_modelmeta().custom_metadata_map), list(session.get_inputs()[0].shape)


def onnx_properties(weights: str, threads: int, what: str, keys: dict[str, Callable[[str], Any]]) -> dict[str, Any]:
    """The ``glassdepth.<key>`` metadata of an ONNX file, each converted by its type in ``keys``,
    plus ``info`` (the JSON ``glassdepth.info``); read once per file version (:func:`_model_header`).

    Raises :class:`ConfigError` naming the ``what`` network when the file is missing, the thread
    count is below 1, or the file is not a loadable ONNX model with that metadata.
    """
    if not os.path.isfile(weights):
        raise ConfigError(f"{what} network weights not found: {weights}")
    if threads < 1:
        raise ConfigError(f"{what} network threads must be at least 1, got {threads}")
    try:
        meta = _model_header(weights, os.stat(weights).st_mtime_ns)[0]
    except Exception as error:  # noqa: BLE001 - ONNX Runtime's load errors share no base class
        raise ConfigError(f"cannot load {what} network weights {weights}: {type(error).__name__}: {error}") from None
    names = {key: f"glassdepth.{key}" for key in keys}
    missing = [name for name in names.values() if name not in meta]
    if missing:
        raise ConfigError(
            f"cannot load {what} network weights {weights}: not a glassdepth {what} network export "
            f"(no {', '.join(missing)} metadata; models.export writes it)"
        )
    try:
        properties = {key: convert(meta[names[key]]) for key, convert in keys.items()}
        return {**properties, "info": json.loads(meta.get("glassdepth.info", "{}"))}
    except ValueError as error:  # json.JSONDecodeError is a ValueError
        raise ConfigError(f"cannot load {what} network weights {weights}: bad metadata: {error}") from None


def check_finite_outputs(weights: str, what: str, outputs: dict[str, np.ndarray]) -> None:
    """Raise :class:`ConfigError` naming the ``what`` network's ``weights`` when an output holds
    NaN or infinity (broken weights: the inputs are uint8 images, always finite).

    outputs : output name -> array of any shape. Costs one reduction per output (``max`` propagates
    NaN), about 0.03 ms for a 640x480 map.
    """
    bad = [name for name, values in outputs.items() if not np.isfinite(values.max())]
    if bad:
        raise ConfigError(f"{what} network weights {weights} gave non-finite values (NaN or infinity) in its {', '.join(bad)} output; re-export or retrain them")


@register_matcher("net")
@dataclass(frozen=True)
class NetMatcher:
    """The project's stereo network (models/stereo_net.py) on ONNX Runtime, CPU only.

    The pair is shrunk by :func:`net_working_scale` when the search range exceeds what the
    network reaches, padded to the network's stride, and the disparity is scaled back to the
    input's pixels. Pixels without a match in the right view can then take the background's
    disparity (:mod:`sensing.visibility`): ``fill_out_of_view`` the band left of the right
    camera's view (about 0.4 ms at 640x480), ``fill_occluded`` the occluded pixels (about 3 ms at
    640x480; with it the shipped network's bad-2 on the unseen Middlebury 2006 scenes is 11.80
    instead of 12.02 %, README: Stereo network); both on by default. Besides the disparity,
    :meth:`match_with_confidence` returns the network's per-pixel confidence (probability that
    its own error is below 2 px; not changed by the fill).

    ``scales`` trades time for accuracy: the network runs once per factor, on the views resized
    by it (on top of any shrinking for the search range), and each pixel keeps the disparity of
    the run that is most confident there. ``(1.0,)``, the default, is one run; ``(1.0, 1.5)``
    costs about 3.25 runs, and the two scales err on different surfaces (textured ones gain from
    the larger views, large textureless ones from the smaller). A factor is lowered where the
    resized search range would exceed the network's reach (the shipped network reaches 188 px:
    with a 192 px range, 1.5 becomes 0.98).
    """

    weights: str = str(DEFAULT_NET_WEIGHTS)
    threads: int = 2
    fill_out_of_view: bool = True
    fill_occluded: bool = True
    scales: tuple[float, ...] = (1.0,)
    name: str = "net"

    def __post_init__(self) -> None:
        try:
            scales = tuple(float(scale) for scale in self.scales)
        except (TypeError, ValueError):
            raise ConfigError(f"net scales must be a list of numbers, got {self.scales!r}") from None
        if not scales or not all(0.25 <= scale <= 4.0 for scale in scales):
            raise ConfigError(f"net scales must be one or more factors in [0.25, 4], got {list(self.scales)}")
        object.__setattr__(self, "scales", scales)
        self.properties  # noqa: B018 - load now: a bad weights file is a configuration error

    @property
    def properties(self) -> dict[str, Any]:
        """The ``glassdepth.*`` metadata of the ONNX file: stride, max_disparity_px, info.

        Raises :class:`ConfigError` when the file is missing, not a loadable ONNX model or lacks them.
        """
        return onnx_properties(self.weights, self.threads, "stereo", {"stride": int, "max_disparity_px": float})

    def match(self, left: np.ndarray, right: np.ndarray, *, max_disparity_px: int) -> DisparityMap:
        """Dense disparity of ``left``: (H, W) float32 px in [0, max_disparity_px], all valid."""
        return self.match_with_confidence(left, right, max_disparity_px=max_disparity_px)[0]

    def match_with_confidence(self, left: np.ndarray, right: np.ndarray, *, max_disparity_px: int) -> tuple[DisparityMap, np.ndarray]:
        """Disparity as :meth:`match` and the network's confidence, (H, W) float32 in [0, 1]."""
        _check_pair(left, right)
        if max_disparity_px < 1:
            raise ConfigError(f"max_disparity_px must be at least 1, got {max_disparity_px}")
        properties = self.properties
        reach, stride = properties["max_disparity_px"], properties["stride"]
        factors = sorted({round(scale * net_working_scale(scale * max_disparity_px, reach), 6) for scale in self.scales})
        disparity, confidence = self._run(left, right, factors[0], stride)
        for factor in factors[1:]:
            other, other_confidence = self._run(left, right, factor, stride)
            better = other_confidence > confidence
            disparity[better], confidence[better] = other[better], other_confidence[better]
        disparity = np.clip(disparity, 0.0, float(max_disparity_px)).astype(np.float32, copy=False)
        disparity = fill_unmatched(disparity, out_of_view=self.fill_out_of_view, occluded=self.fill_occluded)
        return DisparityMap(disparity, np.ones(disparity.shape, bool)), np.clip(confidence, 0.0, 1.0).astype(np.float32, copy=False)

    def _run(self, left: np.ndarray, right: np.ndarray, factor: float, stride: int) -> tuple[np.ndarray, np.ndarray]:
        """One network run on the views resized by ``factor`` and padded to ``stride``: disparity
        in the input's px and confidence, both (H, W) float32 at the input's size."""
        height, width = left.shape[:2]
        if factor != 1.0:
            size = (max(1, round(width * factor)), max(1, round(height * factor)))
            interpolation = cv2.INTER_AREA if factor < 1.0 else cv2.INTER_LINEAR
            left, right = (cv2.resize(view, size, interpolation=interpolation) for view in (left, right))
        views = [as_bgr(view) for view in (left, right)]
        padded = [pad_to_stride(view, stride)[0] for view in views]
        session = onnx_session(self.weights, self.threads, padded[0].shape[:2])
        dtype = np.uint8 if session.get_inputs()[0].type == "tensor(uint8)" else np.float32
        feed = {name: network_input(view, dtype) for name, view in zip(("left", "right"), padded)}
        disparity, confidence = session.run(["disparity", "confidence"], feed)
        check_finite_outputs(self.weights, "stereo", {"disparity": disparity, "confidence": confidence})
        small_h, small_w = views[0].shape[:2]
        disparity, confidence = disparity[0, 0, :small_h, :small_w], confidence[0, 0, :small_h, :small_w]
        if factor != 1.0:
            disparity = cv2.resize(disparity, (width, height), interpolation=cv2.INTER_LINEAR) * (width / small_w)
            confidence = cv2.resize(confidence, (width, height), interpolation=cv2.INTER_LINEAR)
        return disparity, confidence


def as_bgr(image: np.ndarray) -> np.ndarray:
    """(H, W) grey or (H, W, 3) BGR -> (H, W, 3) BGR."""
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image


def network_input(image: np.ndarray, dtype: type[np.generic] = np.float32) -> np.ndarray:
    """(H, W, 3) uint8 -> (1, 3, H, W) of ``dtype``, C-contiguous: the layout the networks take
    (the stereo network's current exports take uint8, the others float32 in [0, 255]).

    Contiguous matters: ONNX Runtime copies a strided (transposed) input itself, about 5 ms
    slower for a 640x480 stereo pair on 2 threads than this copy.
    """
    return np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=dtype)


def right_disparity(matcher: StereoMatcher, left: np.ndarray, right: np.ndarray, *, max_disparity_px: int) -> DisparityMap:
    """Disparity of the right view with any matcher, by matching the mirrored pair.

    Mirroring both images and swapping them turns the right view into a "left" view whose
    disparities are positive again: ``d_right(x) = d(flip(right), flip(left))(W - 1 - x)``.
    """
    mirrored = matcher.match(
        np.ascontiguousarray(right[:, ::-1]), np.ascontiguousarray(left[:, ::-1]), max_disparity_px=max_disparity_px
    )
    return DisparityMap(mirrored.values_px[:, ::-1], mirrored.valid[:, ::-1])


def _check_pair(left: np.ndarray, right: np.ndarray) -> None:
    check_image(left, name="left")
    check_image(right, name="right")
    if left.shape != right.shape or left.dtype != right.dtype:
        raise ShapeError(
            f"left and right must have the same shape and dtype, got {left.shape} {left.dtype} "
            f"and {right.shape} {right.dtype}"
        )
    if left.dtype != np.uint8:
        raise ShapeError(f"stereo matching needs uint8 images, got {left.dtype}")
