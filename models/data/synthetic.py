"""Procedural rectified stereo pairs with exact ground-truth disparity, for training a stereo network.

A scene is a back-to-front list of layers, each defined in left-view pixel coordinates: a texture
(an affine map into a source image, or a perspective one for a ground plane), an alpha mask (the
full-frame background, the ground below its horizon, rectangles, ellipses, random polygons, thin
bars and thin curved strokes) and a disparity plane
``d(x, y) = a + b*x + c*y`` with ``1 - b > 0.3``. The left view keeps, per pixel, the covering
layer of largest disparity. A left point ``(x, y)`` of a layer appears in the right view at
``xr = x - d(x, y)``, inverted exactly for a plane as ``x = (xr + a + c*y) / (1 - b)``: every right
pixel samples each layer's mask and texture at that ``x`` (one affine warp per layer) and keeps
the layer of largest ``d`` there, so occlusions and disocclusions are exact by construction.
Photometric differences between the cameras are applied to the rendered views afterwards.

Convention: (H, W, 3) uint8 BGR images, pixel centres on integers, origin top-left; disparity
``x_left - x_right >= 0`` in pixels of the left view.
"""

import string
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
import skimage.data

#: scikit-image images bundled with the package (no download), by texture kind.
_PHOTO_NAMES = (
    "astronaut",
    "coffee",
    "chelsea",
    "cat",
    "rocket",
    "immunohistochemistry",
    "camera",
    "brick",
    "grass",
    "gravel",
    "moon",
    "coins",
    "hubble_deep_field",
    "retina",
    "clock",
)
_TEXT_NAMES = ("text", "page")
#: Procedural sheets in the bank: their count per kind and side length in px.
_NOISE_SHEETS, _PATTERN_SHEETS, _TEXT_SHEETS, _SHEET_PX = 16, 12, 6, 384
#: Texture kind of a foreground layer and its probability (the background is never flat).
_KIND_PROBABILITIES = {"photo": 0.48, "noise": 0.2, "flat": 0.15, "pattern": 0.1, "text": 0.07}
#: Texture kind of a foreground layer in a low-texture scene.
_LOW_TEXTURE_KIND_PROBABILITIES = {"flat": 0.7, "photo": 0.15, "noise": 0.1, "pattern": 0.05}
#: Mask shape of a foreground layer and its probability.
_SHAPE_PROBABILITIES = {"rectangle": 0.2, "ellipse": 0.2, "polygon": 0.25, "bars": 0.2, "stroke": 0.15}
#: Mask shape of a foreground layer in a low-texture scene: solid surfaces only.
_LOW_TEXTURE_SHAPE_PROBABILITIES = {"rectangle": 0.35, "ellipse": 0.2, "polygon": 0.45}
#: Pyramid levels kept per bank image (each half the size of the previous one).
_PYRAMID_LEVELS = 3
#: Texture magnification range (output px per source px).
_SCALE_RANGE = (0.3, 3.0)
#: Largest |slope| of a disparity plane along x or y (px of disparity per px), so 1 - b >= 0.5.
_MAX_SLOPE = 0.5
#: Scene disparity range as a fraction of ``max_disparity_px``.
_SCENE_RANGE_FRACTION = (0.15, 1.0)
_LAYER_COUNT_RANGE = (8, 20)
#: Layer count of a low-texture scene: fewer, larger layers leave wide untextured surfaces.
_LOW_TEXTURE_LAYER_COUNT_RANGE = (3, 8)
#: Smallest shape of a low-texture scene's foreground layer, as a fraction of the frame's larger side.
_LOW_TEXTURE_MIN_SIZE = 0.3
#: Share of scenes with a ground plane in front of the background (roads, floors, table tops).
_GROUND_PROBABILITY = 0.4
#: Largest disparity gradient down the ground (px per row); KITTI's road is about 0.35-0.45.
_MAX_GROUND_SLOPE = 0.8


@dataclass(frozen=True)
class StereoSample:
    """left, right: (H, W, 3) uint8 BGR; disparity: (H, W) float32 px of the LEFT view
    (x_left - x_right >= 0); valid: (H, W) bool where disparity is defined (all True normally;
    False only where no layer covers)."""

    left: np.ndarray
    right: np.ndarray
    disparity: np.ndarray
    valid: np.ndarray


@dataclass(frozen=True, eq=False)
class _Layer:
    """One scene layer in left-view coordinates.

    mask: (h, w) uint8, 255 inside the shape, its pixel (0, 0) at left-view px ``origin`` (x, y);
    plane: (a, b, c), disparity ``a + b*x + c*y`` px at left-view px (x, y);
    texture: (th, tw, 3) uint8 BGR source; tex_from_left: (3, 3) float64 projective map from
    left-view px to texture px (affine but for a ground plane); colour: (3, 4) float32 colour transform applied to the sampled
    texture (``cv2.transform``).
    """

    mask: np.ndarray
    origin: tuple[int, int]
    plane: tuple[float, float, float]
    texture: np.ndarray
    tex_from_left: np.ndarray
    colour: np.ndarray


@dataclass(frozen=True)
class _Views:
    """Rendered views before photometric effects: left, right (H, W, 3) uint8 BGR; disparity
    (H, W) float32 left-view GT px; left_layer, right_layer (H, W) int16 index of the visible layer
    per pixel (-1: none)."""

    left: np.ndarray
    right: np.ndarray
    disparity: np.ndarray
    left_layer: np.ndarray
    right_layer: np.ndarray


# ---------------------------------------------------------------------------------------------
# Texture bank


def _to_bgr(image: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8 BGR from an (h, w) grey or (h, w, 3) RGB uint8 image."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(image[:, :, ::-1])


def _skimage_images(names: tuple[str, ...]) -> list[np.ndarray]:
    """(h, w, 3) uint8 BGR images of the named ``skimage.data`` loaders present in this version."""
    return [_to_bgr(getattr(skimage.data, name)()) for name in names if hasattr(skimage.data, name)]


def _random_palette_lut(rng: np.random.Generator) -> np.ndarray:
    """(256, 1, 3) uint8 BGR colour map interpolating 2-5 random colours."""
    count = int(rng.integers(2, 6))
    stops = np.linspace(0, 255, count)
    colours = rng.uniform(0, 255, (count, 3))
    lut = np.stack([np.interp(np.arange(256), stops, colours[:, ch]) for ch in range(3)], axis=1)
    return lut.astype(np.uint8)[:, None, :]


def _colourise(grey: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(h, w, 3) uint8 BGR: the (h, w) uint8 ``grey`` through a random OpenCV or random palette map."""
    if rng.random() < 0.5:
        colour_map = int(
            rng.choice(
                [
                    cv2.COLORMAP_JET,
                    cv2.COLORMAP_VIRIDIS,
                    cv2.COLORMAP_OCEAN,
                    cv2.COLORMAP_PINK,
                    cv2.COLORMAP_BONE,
                    cv2.COLORMAP_TWILIGHT,
                    cv2.COLORMAP_CIVIDIS,
                    cv2.COLORMAP_TURBO,
                ]
            )
        )
        return cv2.applyColorMap(grey, colour_map)
    return cv2.LUT(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR), _random_palette_lut(rng))


def _stretch_to_uint8(values: np.ndarray) -> np.ndarray:
    """uint8 array: float ``values`` mapped linearly from their 1st-99th percentile to 0-255, clipped."""
    low, high = np.percentile(values, [1, 99])
    return np.clip((values - low) * (255.0 / max(high - low, 1e-6)), 0, 255).astype(np.uint8)


def _noise_sheet(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size, 3) uint8 BGR multi-octave smoothed Gaussian noise through a random colour map;
    random persistence and anisotropy (grain-like when stretched)."""
    persistence = rng.uniform(0.35, 0.85)
    stretch = rng.choice([1.0, 1.0, rng.uniform(2.0, 6.0)])
    total = np.zeros((size, size), np.float32)
    for octave in range(1, 8):
        cells = 2**octave
        grid = rng.standard_normal((cells, max(2, int(cells / stretch)))).astype(np.float32)
        total += persistence**octave * cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
    return _colourise(_stretch_to_uint8(total), rng)


def _pattern_sheet(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size, 3) uint8 BGR repetitive pattern in two random colours: stripes, a
    checkerboard or a dot grid, with a period of 4-40 px."""
    period = rng.uniform(4.0, 40.0)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / period
    kind = rng.choice(["stripes", "checkerboard", "dots"])
    if kind == "stripes":
        duty = rng.uniform(0.2, 0.8)
        pattern = (xs % 1.0) < duty
    elif kind == "checkerboard":
        pattern = (np.floor(xs) + np.floor(ys)) % 2 == 0
    else:
        radius = rng.uniform(0.15, 0.45)
        pattern = (xs % 1.0 - 0.5) ** 2 + (ys % 1.0 - 0.5) ** 2 < radius**2
    colours = rng.uniform(0, 255, (2, 3)).astype(np.uint8)
    return cv2.GaussianBlur(colours[pattern.astype(np.intp)], (0, 0), 0.5)


def _text_sheet(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size, 3) uint8 BGR: rows of random characters in random Hershey fonts, sizes and
    colours on a plain background."""
    background, ink = rng.uniform(0, 255, (2, 3))
    sheet = np.empty((size, size, 3), np.uint8)
    sheet[:] = background.astype(np.uint8)
    alphabet = np.array(list(string.ascii_letters + string.digits + string.punctuation + "    "))
    fonts = [
        cv2.FONT_HERSHEY_SIMPLEX,
        cv2.FONT_HERSHEY_DUPLEX,
        cv2.FONT_HERSHEY_COMPLEX,
        cv2.FONT_HERSHEY_TRIPLEX,
        cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
        cv2.FONT_HERSHEY_PLAIN,
    ]
    y = 0.0
    while y < size:
        font_scale = rng.uniform(0.4, 1.6)
        y += 30 * font_scale + rng.uniform(2, 10)
        text = "".join(rng.choice(alphabet, int(rng.integers(10, 60))))
        font = fonts[int(rng.integers(len(fonts)))]
        thickness = int(rng.integers(1, 3))
        cv2.putText(
            sheet, text, (int(rng.integers(-40, 10)), int(y)), font, font_scale, ink.tolist(), thickness, cv2.LINE_AA
        )
    return sheet


def _pyramid(image: np.ndarray) -> tuple[np.ndarray, ...]:
    """:data:`_PYRAMID_LEVELS` read-only (h_i, w_i, 3) uint8 levels of ``image``, each ``cv2.pyrDown``
    of the previous one (so minified textures are sampled without aliasing)."""
    levels = [image]
    for _ in range(_PYRAMID_LEVELS - 1):
        levels.append(cv2.pyrDown(levels[-1]))
    for level in levels:
        level.setflags(write=False)
    return tuple(levels)


@lru_cache(maxsize=1)
def _bank_pyramids() -> dict[str, tuple[tuple[np.ndarray, ...], ...]]:
    """Texture pyramids by kind ('photo', 'noise', 'pattern', 'text'); procedural sheets come
    from a fixed seed, so the bank is the same in every process."""
    rng = np.random.default_rng(20240611)
    images = {
        "photo": _skimage_images(_PHOTO_NAMES),
        "noise": [_noise_sheet(rng, _SHEET_PX) for _ in range(_NOISE_SHEETS)],
        "pattern": [_pattern_sheet(rng, _SHEET_PX) for _ in range(_PATTERN_SHEETS)],
        "text": _skimage_images(_TEXT_NAMES) + [_text_sheet(rng, _SHEET_PX) for _ in range(_TEXT_SHEETS)],
    }
    return {kind: tuple(_pyramid(image) for image in group) for kind, group in images.items()}


def texture_bank() -> list[np.ndarray]:
    """Source images for textures, cached: read-only (h, w, 3) uint8 BGR, the bundled
    scikit-image photographs and text pages, and procedural noise, pattern and text sheets."""
    return [pyramid[0] for group in _bank_pyramids().values() for pyramid in group]


# ---------------------------------------------------------------------------------------------
# Scene sampling


def _choice(rng: np.random.Generator, probabilities: dict[str, float]) -> str:
    """A key of ``probabilities`` drawn with those (normalised) weights."""
    keys = list(probabilities)
    weights = np.array([probabilities[key] for key in keys])
    return keys[int(rng.choice(len(keys), p=weights / weights.sum()))]


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """A float drawn log-uniformly in [low, high]."""
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _rotation(angle: float) -> np.ndarray:
    """(2, 2) float64 rotation by ``angle`` radians."""
    cos, sin = np.cos(angle), np.sin(angle)
    return np.array([[cos, -sin], [sin, cos]])


def _homogeneous(affine: np.ndarray) -> np.ndarray:
    """(3, 3) float64 matrix of a (2, 3) affine map."""
    return np.vstack([affine, [0.0, 0.0, 1.0]])


def _texture_affine(
    rng: np.random.Generator, texture_shape: tuple[int, ...], scale: float, centre: np.ndarray
) -> np.ndarray:
    """(2, 3) float64 map left-view px -> texture px: ``scale`` output px per texture px, a random
    rotation, left-view ``centre`` (x, y) landing on a random texture point (a random crop)."""
    linear = _rotation(rng.uniform(-np.pi, np.pi)) / scale
    target = rng.uniform(0, 1, 2) * np.array([texture_shape[1], texture_shape[0]])
    return np.hstack([linear, (target - linear @ centre)[:, None]])


def _random_colour_transform(rng: np.random.Generator, kind: str) -> np.ndarray:
    """(3, 4) float32 BGR colour transform for ``cv2.transform``: identity for half of the photos,
    otherwise a channel permutation with gains and offset, or a two-colour tint of the luminance."""
    if kind == "photo" and rng.random() < 0.5:
        return np.hstack([np.eye(3), np.zeros((3, 1))]).astype(np.float32)
    if rng.random() < 0.6:
        permutation = np.eye(3)[rng.permutation(3)]
        gains = rng.uniform(0.6, 1.3, 3)
        return np.hstack([permutation * gains[:, None], rng.uniform(-30, 30, (3, 1))]).astype(np.float32)
    dark, bright = rng.uniform(0, 255, (2, 3))
    luminance = np.array([0.114, 0.587, 0.299]) / 255.0
    return np.hstack([np.outer(bright - dark, luminance), dark[:, None]]).astype(np.float32)


def _flat_texture(rng: np.random.Generator) -> np.ndarray:
    """(32, 32, 3) uint8 BGR low-texture source: a random colour, a smooth gradient of up to ±40
    grey levels and slight noise (sigma up to 3 grey levels)."""
    corners = rng.uniform(0, 255, 3) + rng.uniform(-40, 40, (2, 2, 3)) * rng.random()
    smooth = cv2.resize(corners.astype(np.float32), (32, 32), interpolation=cv2.INTER_LINEAR)
    noisy = smooth + rng.normal(0, rng.uniform(0, 3), smooth.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def _layer_texture(
    rng: np.random.Generator, kind: str, centre: np.ndarray, extent_px: float
) -> tuple[np.ndarray, np.ndarray]:
    """A texture of ``kind`` for a layer centred at left-view px ``centre`` spanning about
    ``extent_px``: the (th, tw, 3) uint8 BGR source and its (3, 3) left-view -> texture affine map.
    Bank textures are magnified by a log-uniform 0.3-3x, read from the pyramid level that keeps
    the remaining minification near 1; flat textures are stretched over the layer."""
    if kind == "flat":
        texture = _flat_texture(rng)
        affine = _texture_affine(rng, texture.shape, max(extent_px, 8.0) / texture.shape[0], centre)
        return texture, _homogeneous(affine)
    group = _bank_pyramids()[kind]
    pyramid = group[int(rng.integers(len(group)))]
    scale = _log_uniform(rng, *_SCALE_RANGE)
    level = int(np.clip(np.round(np.log2(1.0 / scale)), 0, len(pyramid) - 1))
    texture = pyramid[level]
    return texture, _homogeneous(_texture_affine(rng, texture.shape, scale * 2**level, centre))


def _ground_layer(
    rng: np.random.Generator, canvas: tuple[int, int], width: int, bottom_disparity: float
) -> _Layer | None:
    """A textured ground plane seen in perspective, or None when its horizon leaves no room.

    The horizon is at row ``y_h`` (possibly above the frame); the disparity grows linearly below
    it, ``d = c * (y - y_h)``, reaching ``bottom_disparity`` px on the last row (``c`` at most
    :data:`_MAX_GROUND_SLOPE`). The texture lies on the plane: a left pixel (x, y) maps to ground
    coordinates ``(k * (x - cx) / (y - y_h), f * k / (y - y_h))`` (f: a random focal length in px),
    so it is foreshortened towards the horizon. The mask covers the rows below the horizon; the
    layers behind hide the ground where they are nearer (a wall standing on it).
    """
    height = canvas[0]
    horizon = rng.uniform(-0.6, 0.5) * height
    depth_rows = height - 1 - horizon
    slope = min(bottom_disparity / depth_rows, _MAX_GROUND_SLOPE)
    top = int(np.floor(horizon)) + 1
    if top > height - 8:
        return None
    focal = rng.uniform(0.6, 1.5) * width
    magnification = _log_uniform(rng, 0.5, 3.0)  # output px per texture px along the last row
    kind = _choice(rng, {k: p for k, p in _KIND_PROBABILITIES.items() if k not in ("flat", "text")})
    group = _bank_pyramids()[kind]
    pyramid = group[int(rng.integers(len(group)))]
    middle_rows = depth_rows / 2
    across = depth_rows / magnification / middle_rows
    minification = across * np.sqrt(focal / middle_rows)  # geometric mean of the two directions
    level = int(np.clip(np.floor(np.log2(max(minification, 1.0))), 0, len(pyramid) - 1))
    texture = pyramid[level]
    k = depth_rows / magnification / 2**level
    centre_x = rng.uniform(0.2, 0.8) * width
    onto_plane = np.array([[k, 0.0, -k * centre_x], [0.0, 0.0, focal * k], [0.0, 1.0, -horizon]])
    placement = _homogeneous(_texture_affine(rng, texture.shape, 1.0, np.zeros(2)))
    top = max(top, 0)
    mask = np.full((height - top, canvas[1]), 255, np.uint8)
    plane = (-slope * horizon, 0.0, slope)
    return _Layer(mask, (0, top), plane, texture, placement @ onto_plane, _random_colour_transform(rng, kind))


def _shape_outline(rng: np.random.Generator, shape: str, centre: np.ndarray, size: float) -> np.ndarray:
    """(N, 2) float64 outline of a filled ``shape`` ('rectangle', 'ellipse' or 'polygon') about
    ``size`` px across, centred at ``centre`` (x, y), randomly rotated."""
    if shape == "polygon":
        count = int(rng.integers(5, 13))
        angles = np.sort(rng.uniform(0, 2 * np.pi, count))
        radii = size / 2 * rng.uniform(0.3, 1.0, count)
        return centre + radii[:, None] * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    half_axes = size / 2 * rng.uniform(0.25, 1.0, 2)
    if shape == "rectangle":
        unit = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float)
    else:
        angles = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        unit = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return centre + (unit * half_axes) @ _rotation(rng.uniform(0, np.pi)).T


def _thin_paths(rng: np.random.Generator, shape: str, centre: np.ndarray, size: float) -> list[np.ndarray]:
    """(N, 2) float64 centre lines of thin structures about ``size`` px long at ``centre``:
    1-4 parallel straight bars ('bars') or one quadratic Bezier curve ('stroke')."""
    direction = _rotation(rng.uniform(0, np.pi)) @ np.array([1.0, 0.0])
    normal = np.array([-direction[1], direction[0]])
    if shape == "bars":
        spacing = rng.uniform(4, 20)
        offsets = (np.arange(int(rng.integers(1, 5))) - rng.uniform(0, 2)) * spacing
        return [centre + offset * normal + np.outer([-size / 2, size / 2], direction) for offset in offsets]
    control = np.stack(
        [centre - direction * size / 2, centre + normal * rng.uniform(-1, 1) * size, centre + direction * size / 2]
    )
    t = np.linspace(0, 1, 32)[:, None]
    return [(1 - t) ** 2 * control[0] + 2 * t * (1 - t) * control[1] + t**2 * control[2]]


def _rasterise(
    outlines: list[np.ndarray], thickness: int, canvas: tuple[int, int]
) -> tuple[np.ndarray, tuple[int, int]] | None:
    """Binary mask of filled polygons (``thickness`` 0) or polylines ``thickness`` px wide, clipped
    to the left canvas ``(height, width)`` px: (h, w) uint8 0/255 and its origin (x, y) px,
    or None when nothing lies on the canvas. Vertices keep 1/16 px precision."""
    points = np.concatenate(outlines)
    margin = thickness + 1
    x0, y0 = np.maximum(np.floor(points.min(axis=0)).astype(int) - margin, 0)
    x1, y1 = np.minimum(np.ceil(points.max(axis=0)).astype(int) + margin + 1, [canvas[1], canvas[0]])
    if x1 <= x0 or y1 <= y0:
        return None
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    fixed = [np.round((outline - [x0, y0]) * 16).astype(np.int32) for outline in outlines]
    if thickness == 0:
        cv2.fillPoly(mask, fixed, 255, cv2.LINE_8, shift=4)
    else:
        cv2.polylines(mask, fixed, False, 255, thickness, cv2.LINE_8, shift=4)
    if not mask.any():
        return None
    return mask, (int(x0), int(y0))


def _random_plane(
    rng: np.random.Generator, origin: tuple[int, int], size: tuple[int, int], low: float, high: float
) -> tuple[float, float, float]:
    """(a, b, c) of a disparity plane ``a + b*x + c*y`` px that stays within [low, high] over the
    left-view box at ``origin`` (x, y) of ``size`` (w, h) px; fronto-parallel for 35% of planes,
    otherwise slanted with |b|, |c| <= :data:`_MAX_SLOPE`."""
    half = (np.array(size, float) - 1) / 2
    centre = np.array(origin, float) + half
    level = rng.uniform(low, high)
    slope = np.zeros(2)
    if rng.random() > 0.35:
        direction = _rotation(rng.uniform(0, 2 * np.pi)) @ np.array([1.0, 0.0])
        spread_per_slope = np.abs(direction) @ half
        largest = min(_MAX_SLOPE, min(level - low, high - level) / max(spread_per_slope, 1e-9))
        slope = direction * rng.uniform(0, largest)
    return float(level - slope @ centre), float(slope[0]), float(slope[1])


def _foreground_mask(
    rng: np.random.Generator,
    canvas: tuple[int, int],
    width: int,
    shapes: dict[str, float] = _SHAPE_PROBABILITIES,
    min_size: float = 0.0,
) -> tuple[np.ndarray, tuple[int, int]] | None:
    """A random foreground shape, drawn with the probabilities ``shapes``, on the left canvas
    ``(height, canvas_width)`` px, centred mostly inside the ``width`` px wide left frame, at least
    ``min_size`` times the frame's larger side (and 8 px) across unless thin: (h, w) uint8 0/255
    mask and origin (x, y) px, or None."""
    height = canvas[0]
    shape = _choice(rng, shapes)
    centre = rng.uniform([-0.1 * width, -0.1 * height], [1.1 * width, 1.1 * height])
    if shape in ("bars", "stroke"):
        length = _log_uniform(rng, 0.15, 1.2) * max(width, height)
        return _rasterise(_thin_paths(rng, shape, centre, length), int(rng.integers(1, 5)), canvas)
    size = _log_uniform(rng, max(8.0, min_size * max(width, height)), 0.7 * max(width, height))
    return _rasterise([_shape_outline(rng, shape, centre, size)], 0, canvas)


def _make_layer(
    rng: np.random.Generator,
    kind: str,
    mask: np.ndarray,
    origin: tuple[int, int],
    disparity_range: tuple[float, float],
) -> _Layer:
    """A layer with ``mask`` at ``origin``: a random plane within ``disparity_range`` px over the
    mask's box and a random texture of ``kind``."""
    size = (mask.shape[1], mask.shape[0])
    plane = _random_plane(rng, origin, size, *disparity_range)
    centre = np.array(origin, float) + np.array(size) / 2
    texture, tex_from_left = _layer_texture(rng, kind, centre, float(max(size)))
    return _Layer(mask, origin, plane, texture, tex_from_left, _random_colour_transform(rng, kind))


def _sample_scene(
    rng: np.random.Generator, height: int, width: int, max_disparity_px: float, *, low_texture: bool = False
) -> list[_Layer]:
    """Back-to-front layers of a random scene with disparities in [0, s * max_disparity_px] px,
    s uniform in [0.15, 1]: a full-frame slanted background within the lowest 0-40% of that range,
    in 40% of scenes a ground plane in front of it (:func:`_ground_layer`, reaching 40-100% of the
    range on the last row), then 7-19 foreground layers (random shapes, textures and planes) above
    the background. A ``low_texture`` scene (plastic, painted boards, boxes) has 2-7 solid
    foreground layers of at least 30% of the frame, 70% of them flat, so wide surfaces carry no
    texture and their disparity follows only from their edges and planarity.

    The left canvas is ``max_disparity_px + 2`` px wider than the frame, so every right-view pixel
    finds its left-view point (x = xr + d) on it."""
    scene_max = rng.uniform(*_SCENE_RANGE_FRACTION) * max_disparity_px
    background_max = rng.uniform(0.0, 0.4) * scene_max
    canvas = (height, width + int(np.ceil(max_disparity_px)) + 2)
    background_kind = _choice(rng, {k: p for k, p in _KIND_PROBABILITIES.items() if k != "flat"})
    if low_texture:
        kinds, shapes = _LOW_TEXTURE_KIND_PROBABILITIES, _LOW_TEXTURE_SHAPE_PROBABILITIES
        counts, min_size = _LOW_TEXTURE_LAYER_COUNT_RANGE, _LOW_TEXTURE_MIN_SIZE
    else:
        kinds, shapes, counts, min_size = _KIND_PROBABILITIES, _SHAPE_PROBABILITIES, _LAYER_COUNT_RANGE, 0.0
    layers = [_make_layer(rng, background_kind, np.full(canvas, 255, np.uint8), (0, 0), (0.0, background_max))]
    if rng.random() < _GROUND_PROBABILITY:
        ground = _ground_layer(rng, canvas, width, rng.uniform(0.4, 1.0) * scene_max)
        if ground is not None:
            layers.append(ground)
    for _ in range(int(rng.integers(counts[0], counts[1] + 1)) - 1):
        placed = _foreground_mask(rng, canvas, width, shapes, min_size)
        if placed is not None:
            kind = _choice(rng, kinds)
            layers.append(_make_layer(rng, kind, *placed, (background_max, scene_max)))
    return layers


# ---------------------------------------------------------------------------------------------
# Rendering


def _left_placement(layer: _Layer, height: int, width: int) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """Where ``layer`` can show in the left view: box (x0, y0, x1, y1) px, ends exclusive, and
    the (2, 3) float64 map from box-local px to left-view px; None when off frame."""
    x0, y0 = layer.origin
    x1, y1 = min(x0 + layer.mask.shape[1], width), min(y0 + layer.mask.shape[0], height)
    if x1 <= x0 or y1 <= y0:
        return None
    return (x0, y0, x1, y1), np.array([[1.0, 0.0, x0], [0.0, 1.0, y0]])


def _right_placement(layer: _Layer, height: int, width: int) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """Where ``layer`` can show in the right view: box (x0, y0, x1, y1) px, ends exclusive, and
    the (2, 3) float64 map from box-local px (xr, y) to the left-view point
    ``x = (xr + a + c*y) / (1 - b)`` that lands there; None when off frame."""
    a, b, c = layer.plane
    ox, oy = layer.origin
    xs = np.array([ox, ox + layer.mask.shape[1] - 1, ox, ox + layer.mask.shape[1] - 1], float)
    ys = np.array([oy, oy, oy + layer.mask.shape[0] - 1, oy + layer.mask.shape[0] - 1], float)
    right_xs = (1 - b) * xs - a - c * ys
    x0, x1 = max(int(np.floor(right_xs.min())) - 1, 0), min(int(np.ceil(right_xs.max())) + 2, width)
    y0, y1 = oy, min(oy + layer.mask.shape[0], height)
    if x1 <= x0 or y1 <= y0:
        return None
    inverse = 1.0 / (1.0 - b)
    return (x0, y0, x1, y1), np.array([[inverse, c * inverse, (x0 + a + c * y0) * inverse], [0.0, 1.0, y0]])


def _composite(
    image: np.ndarray,
    depth: np.ndarray,
    owner: np.ndarray,
    layer: _Layer,
    index: int,
    box: tuple[int, int, int, int],
    left_from_local: np.ndarray,
) -> None:
    """Z-buffer ``layer`` into one view, in place, over ``box`` (x0, y0, x1, y1) px of the view.

    ``left_from_local`` (2, 3) maps box-local px to left-view px; the mask (bilinear, thresholded
    at 0.5), the texture (bilinear) and the plane's disparity are sampled there. Where the layer
    covers and its disparity exceeds ``depth`` ((H, W) float32 px), it wins: ``image`` (H, W, 3)
    uint8 takes its colour, ``depth`` its disparity and ``owner`` (H, W) int16 the layer ``index``.
    """
    x0, y0, x1, y1 = box
    size = (x1 - x0, y1 - y0)
    mask_from_local = left_from_local - np.array([[0.0, 0.0, layer.origin[0]], [0.0, 0.0, layer.origin[1]]])
    cover = cv2.warpAffine(layer.mask, mask_from_local, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP) > 127
    a, b, c = layer.plane
    (m00, m01, m02), (_, _, m12) = left_from_local
    rows = (a + b * m02 + c * m12 + (b * m01 + c) * np.arange(size[1], dtype=np.float32))[:, None]
    disparity = rows + (b * m00 * np.arange(size[0], dtype=np.float32))[None, :]
    depth_box = depth[y0:y1, x0:x1]
    wins = cover & (disparity > depth_box)
    if not wins.any():
        return
    tex_from_local = layer.tex_from_left @ _homogeneous(left_from_local)
    warp_options = {"flags": cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, "borderMode": cv2.BORDER_REFLECT_101}
    if np.array_equal(tex_from_local[2], [0.0, 0.0, 1.0]):  # affine: warpAffine is several times faster
        texture = cv2.warpAffine(layer.texture, tex_from_local[:2], size, **warp_options)
    else:
        texture = cv2.warpPerspective(layer.texture, tex_from_local, size, **warp_options)
    np.copyto(depth_box, disparity, where=wins)
    np.copyto(owner[y0:y1, x0:x1], index, where=wins)
    np.copyto(image[y0:y1, x0:x1], cv2.transform(texture, layer.colour), where=wins[:, :, None])


_Placement = Callable[[_Layer, int, int], tuple[tuple[int, int, int, int], np.ndarray] | None]


def _render_view(
    layers: list[_Layer], height: int, width: int, placement: _Placement
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One view of ``layers`` placed by ``placement`` (:func:`_left_placement` or
    :func:`_right_placement`): (H, W, 3) uint8 BGR image (black where no layer covers), (H, W)
    float32 disparity of the visible layer (-inf: none) and (H, W) int16 its index (-1: none)."""
    image = np.zeros((height, width, 3), np.uint8)
    depth = np.full((height, width), -np.inf, np.float32)
    owner = np.full((height, width), -1, np.int16)
    for index, layer in enumerate(layers):
        placed = placement(layer, height, width)
        if placed is not None:
            _composite(image, depth, owner, layer, index, *placed)
    return image, depth, owner


def _render_views(layers: list[_Layer], height: int, width: int) -> _Views:
    """Both views of ``layers`` without photometric effects, and the left-view ground truth."""
    left, disparity, left_layer = _render_view(layers, height, width, _left_placement)
    right, _, right_layer = _render_view(layers, height, width, _right_placement)
    return _Views(left, right, disparity, left_layer, right_layer)


# ---------------------------------------------------------------------------------------------
# Photometric differences between the cameras


@lru_cache(maxsize=4)
def _unit_noise(count: int) -> np.ndarray:
    """(4 * count,) float32 standard normal samples from a fixed seed, read-only: a random slice of
    ``count`` is a fresh-enough noise image at a fraction of the cost of drawing one."""
    noise = np.random.default_rng(7).standard_normal(4 * count, dtype=np.float32)
    noise.setflags(write=False)
    return noise


def _gaussian_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """``shape`` float32 zero-mean Gaussian noise of standard deviation ``sigma``."""
    count = int(np.prod(shape))
    start = int(rng.integers(0, 3 * count + 1))
    return sigma * _unit_noise(count)[start : start + count].reshape(shape)


def _response_lut(rng: np.random.Generator) -> np.ndarray:
    """(256, 1, 3) float32 LUT grey level -> grey level: a gain of 0.8-1.2, per-channel gains of
    ±5% and a gamma of 0.8-1.25 (values in 0-255, clipped)."""
    gains = rng.uniform(0.8, 1.2) * rng.uniform(0.95, 1.05, 3)
    gamma = _log_uniform(rng, 0.8, 1.25)
    levels = np.arange(256, dtype=np.float64)[:, None] / 255.0
    return (255.0 * np.clip(levels * gains, 0.0, 1.0) ** gamma).astype(np.float32)[:, None, :]


def _add_specular_blobs(rng: np.random.Generator, image: np.ndarray) -> None:
    """Add 1-3 bright Gaussian blobs (sigma 3-20 px, peak 80-255 grey levels) to the (H, W, 3)
    float32 ``image`` in place."""
    height, width = image.shape[:2]
    for _ in range(int(rng.integers(1, 4))):
        sigma = rng.uniform(3.0, 20.0)
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        x0, x1 = int(max(cx - 3 * sigma, 0)), int(min(cx + 3 * sigma + 1, width))
        y0, y1 = int(max(cy - 3 * sigma, 0)), int(min(cy + 3 * sigma + 1, height))
        if x1 <= x0 or y1 <= y0:
            continue
        gx = np.exp(-((np.arange(x0, x1) - cx) ** 2) / (2 * sigma**2)).astype(np.float32)
        gy = np.exp(-((np.arange(y0, y1) - cy) ** 2) / (2 * sigma**2)).astype(np.float32)
        image[y0:y1, x0:x1] += (rng.uniform(80, 255) * np.outer(gy, gx))[:, :, None]


def _vignetting(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """(H, W, 1) float32 radial gain: 1 at a centre near the image centre, falling off
    quadratically by up to 25% at the farthest corner."""
    strength = rng.uniform(0.0, 0.25)
    cx, cy = (width - 1) / 2 + rng.uniform(-0.1, 0.1) * width, (height - 1) / 2 + rng.uniform(-0.1, 0.1) * height
    reach_sq = max(cx, width - 1 - cx) ** 2 + max(cy, height - 1 - cy) ** 2
    dx_sq = ((np.arange(width, dtype=np.float32) - cx) ** 2 / reach_sq)[None, :]
    dy_sq = ((np.arange(height, dtype=np.float32) - cy) ** 2 / reach_sq)[:, None]
    return (1.0 - strength * (dx_sq + dy_sq))[:, :, None]


def _camera_response(rng: np.random.Generator, image: np.ndarray, *, specular: bool) -> np.ndarray:
    """(H, W, 3) uint8 BGR ``image`` as seen by one camera: gain, colour gains and gamma, optional
    specular blobs, vignetting, then Gaussian noise of sigma 0-4 grey levels."""
    height, width = image.shape[:2]
    response = cv2.LUT(image, _response_lut(rng))
    if specular:
        _add_specular_blobs(rng, response)
    response *= _vignetting(rng, height, width)
    response += _gaussian_noise(rng, response.shape, rng.uniform(0.0, 4.0))
    return np.clip(response + 0.5, 0, 255).astype(np.uint8)


def _shift_rows(image: np.ndarray, shift_px: float) -> np.ndarray:
    """(H, W, 3) uint8 ``image`` resampled (bilinear) so row y shows the original row y + shift_px."""
    shift = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, shift_px]])
    return cv2.warpAffine(
        image, shift, image.shape[1::-1], flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
    )


def photometric_differences(
    rng: np.random.Generator, left: np.ndarray, right: np.ndarray, *, grey_probability: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Independent camera effects on a rendered (H, W, 3) uint8 BGR pair, returning new arrays.

    Per view: gain 0.8-1.2, colour gains ±5%, gamma 0.8-1.25, vignetting up to 25%, Gaussian noise
    sigma 0-4 grey levels. Sometimes: a Gaussian blur (sigma 0-1 px) on one view (30% of pairs),
    bright specular blobs in one view (10%), and with ``grey_probability`` both views turned grey
    (monochrome cameras, as ETH3D's and smart glasses' tracking cameras are; three equal channels).
    Always: the right view shifted vertically by up to ±0.5 px (residual rectification error; the
    left ground truth is unchanged).
    """
    views = [left, right]
    if rng.random() < 0.3:
        blurred = int(rng.integers(2))
        views[blurred] = cv2.GaussianBlur(views[blurred], (0, 0), rng.uniform(0.05, 1.0))
    views[1] = _shift_rows(views[1], rng.uniform(-0.5, 0.5))
    specular = int(rng.integers(2)) if rng.random() < 0.1 else -1
    responses = (
        _camera_response(rng, views[0], specular=specular == 0),
        _camera_response(rng, views[1], specular=specular == 1),
    )
    if grey_probability > 0 and rng.random() < grey_probability:
        grey = [cv2.cvtColor(cv2.cvtColor(view, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR) for view in responses]
        return grey[0], grey[1]
    return responses


# ---------------------------------------------------------------------------------------------
# Public entry point


def random_stereo_pair(
    rng: np.random.Generator,
    *,
    height: int,
    width: int,
    max_disparity_px: float,
    photometric: bool = True,
    grey_probability: float = 0.0,
    low_texture_probability: float = 0.0,
) -> StereoSample:
    """A random procedural rectified stereo pair with exact left-view disparity.

    8-20 textured layers (see the module docstring) with disparities in
    [0, s * ``max_disparity_px``] px, s uniform in [0.15, 1], or with ``low_texture_probability``
    a low-texture scene of 2-7 large, mostly flat layers on a textured background
    (:func:`_sample_scene`); with ``photometric`` the views then get independent camera effects
    (:func:`photometric_differences`, which turns both grey with ``grey_probability``). ``disparity`` is 0 where
    ``valid`` is False. Deterministic given the state of ``rng``.
    """
    if height < 1 or width < 1 or not max_disparity_px > 0:
        raise ValueError(f"need a positive size and max_disparity_px, got {height}x{width}, {max_disparity_px}")
    low_texture = low_texture_probability > 0 and rng.random() < low_texture_probability
    views = _render_views(_sample_scene(rng, height, width, max_disparity_px, low_texture=low_texture), height, width)
    if photometric:
        left, right = photometric_differences(rng, views.left, views.right, grey_probability=grey_probability)
    else:
        left, right = views.left, views.right
    valid = views.left_layer >= 0
    disparity = np.where(valid, np.clip(views.disparity, 0.0, max_disparity_px), 0.0).astype(np.float32)
    return StereoSample(left, right, disparity, valid)
