"""Procedural 3D scenes with exact perspective inverse depth, for training a monocular
relative-depth network.

A scene is a pinhole camera (horizontal field of view 45-85 degrees, random height, pitch, yaw and
roll) looking at primitives in world metres: the inside of a box (a room or a corridor), bounded
planar quads (an endless ground plane, slanted boards), boxes (furniture, buildings, cars,
people), elliptic cylinders (cups, poles, trunks, wheels) and ellipsoids (heads, fruit, tree
crowns, hills). Every primitive is a unit shape (unit square, cube, cylinder or sphere) under an
affine map ``world = centre + world_R_local @ (half * unit)``; a ray maps into the unit frame
with the same parameter ``t``, so each hit test is a few vectorised numpy expressions.

Rendering casts one ray per pixel centre. Pass 1 computes, for each primitive over the pixel
window its bounding box projects to, the hit parameter ``t`` of every ray and keeps the smallest
(a z-buffer): with ray directions whose camera-frame z component is 1, ``t`` IS the camera depth
z, so the ground truth is exact per pixel. Pass 2 visits each primitive's visible pixels: surface
point, normal and surface coordinates in metres; the texture is looked up in those coordinates
(so it shrinks with distance) from a mip-map level chosen by the pixel's footprint on the
surface; Lambert shading by a directional light plus ambient, hard shadows cast by the objects,
then fog that thickens with distance, and camera effects (blur, gain, gamma, vignetting, noise).

Scene kinds (:data:`_KIND_PROBABILITIES`): a furnished room, a corridor, a street between
building facades with cars, an open plaza or park, and a tabletop seen from close up.

Convention: world frame X right, Y up, Z forward, metres, the floor at Y = 0; camera frame x
right, y down, z forward (OpenCV); pixel centres on integers, origin top-left. ``inverse_depth``
is 1/z in 1/m with z the camera-frame depth along the optical axis (not the ray length); the sky
(no surface: infinitely far) has inverse depth exactly 0 and is valid.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np

from models.data.synthetic import (
    _bank_pyramids,
    _camera_response,
    _choice,
    _flat_texture,
    _log_uniform,
    _random_colour_transform,
)

#: Scene kind and its probability.
_KIND_PROBABILITIES = {"room": 0.24, "corridor": 0.1, "street": 0.24, "open": 0.12, "tabletop": 0.3}
#: Horizontal field of view range, degrees.
_HFOV_DEG = (45.0, 85.0)
#: Nearest accepted hit along a ray, metres (camera depth for primary rays).
_NEAR_M = 1e-3
#: Mip-map levels per texture (each a ``cv2.pyrDown`` of the previous one).
_MIP_LEVELS = 7
#: Exponent of 1/cos(incidence) in the texture footprint: 1 is the full stretch along the slant
#: (blurry, no aliasing), 0 the footprint across it (sharp, aliased).
_SLANT_EXPONENT = 0.75
#: Ray direction parts of a primitive kind: box faces -x, +x, -y, +y, -z, +z; cylinder side,
#: bottom cap, top cap.
_PART_COUNT = {"quad": 1, "box": 6, "room": 6, "cylinder": 3, "ellipsoid": 1}
#: Facade sheets in the bank and their side length in px.
_FACADE_SHEETS, _FACADE_PX = 8, 256
#: Grey level BGR luminance weights.
_LUMINANCE = np.array([0.114, 0.587, 0.299], np.float32)


@dataclass(frozen=True)
class MonoSample:
    """image: (H, W, 3) uint8 BGR; inverse_depth: (H, W) float32, 1/z in 1/m (camera-frame depth
    z along the optical axis), 0 for the sky; valid: (H, W) bool where ``inverse_depth`` is exact
    (the sky included; False only where nothing, not even the sky, is defined)."""

    image: np.ndarray
    inverse_depth: np.ndarray
    valid: np.ndarray


@dataclass(frozen=True)
class _Markings:
    """Painted lines on a surface: line ``i`` runs along the surface's second coordinate at first
    coordinate ``offsets_m[i]``, ``half_width_m`` wide each side, dashed with ``period_m[i]`` and
    ``dash_m[i]`` painted per period (dash == period: solid); colour (3,) float32 BGR 0-255."""

    offsets_m: tuple[float, ...]
    half_width_m: float
    period_m: tuple[float, ...]
    dash_m: tuple[float, ...]
    colour: np.ndarray


@dataclass(frozen=True, eq=False)
class _Material:
    """A texture fixed to a surface.

    pyramid: mip levels (h_i, w_i, 3) uint8 BGR; tex_from_surface: (2, 3) float32 affine map from
    surface coordinates (metres) to level-0 texels; colour: (3, 4) float32 BGR transform of the
    sampled texels (``cv2.transform`` convention); mean: (3,) float32 mean BGR after the transform,
    shown where a pixel covers more than the coarsest level; markings: optional painted lines.
    """

    pyramid: tuple[np.ndarray, ...]
    tex_from_surface: np.ndarray
    colour: np.ndarray
    mean: np.ndarray
    markings: _Markings | None = None


@dataclass(frozen=True, eq=False)
class _Primitive:
    """kind: one of :data:`_PART_COUNT`; centre: (3,) world metres; world_R_local: (3, 3)
    rotation; half: (3,) half extents along the local axes, metres (quad: local z is the normal,
    half[2] unused; cylinder: axis local y, radii half[0], half[2]); materials: one per part;
    caster: whether it casts shadows."""

    kind: str
    centre: np.ndarray
    world_R_local: np.ndarray
    half: np.ndarray
    materials: tuple[_Material, ...]
    caster: bool = True


@dataclass(frozen=True)
class _Camera:
    """Pinhole camera: focal_px, principal point (cx, cy) px, size (height, width) px, centre (3,)
    world metres and world_R_cam (3, 3) (camera x right, y down, z forward)."""

    focal_px: float
    cx: float
    cy: float
    height: int
    width: int
    centre: np.ndarray
    world_R_cam: np.ndarray


@dataclass(frozen=True)
class _Sky:
    """Sky colours (3,) float32 BGR 0-255 at the zenith and the horizon; clouds: a (h, w, 3) uint8
    noise texture or None, their cover 0-1."""

    zenith: np.ndarray
    horizon: np.ndarray
    clouds: np.ndarray | None = None
    cover: float = 0.0


@dataclass(frozen=True)
class _Lighting:
    """to_light: (3,) unit world direction towards the light; sun, ambient: (3,) float32 BGR
    gains; fog_m: distance in metres over which fog takes 1 - 1/e of the colour (inf: none),
    fog colour (3,) BGR 0-255."""

    to_light: np.ndarray
    sun: np.ndarray
    ambient: np.ndarray
    fog_m: float = np.inf
    fog_colour: np.ndarray = field(default_factory=lambda: np.full(3, 200.0, np.float32))


@dataclass(frozen=True)
class _Scene:
    camera: _Camera
    primitives: tuple[_Primitive, ...]
    lighting: _Lighting
    sky: _Sky


# ---------------------------------------------------------------------------------------------
# Geometry helpers


def _rotation(axis: int, angle: float) -> np.ndarray:
    """(3, 3) float64 rotation by ``angle`` radians about world axis 0 (X), 1 (Y) or 2 (Z)."""
    vector = np.zeros(3)
    vector[axis] = angle
    return cv2.Rodrigues(vector)[0]


#: Local frame of a horizontal quad: local x = world X, local y = world Z, normal local z = -Y.
_HORIZONTAL = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
#: Local frame of a cylinder lying along world X (its axis, local y, is world X).
_ALONG_X = _rotation(2, -np.pi / 2)


def _look_camera(
    *, height: int, width: int, hfov_deg: float, centre: np.ndarray, yaw: float, pitch: float, roll: float
) -> _Camera:
    """A camera at ``centre`` turned by ``yaw`` (radians, about Y, positive to the right),
    ``pitch`` (positive looks down) and ``roll`` (about its optical axis)."""
    focal_px = (width / 2) / np.tan(np.radians(hfov_deg) / 2)
    flip_y = np.diag([1.0, -1.0, 1.0])  # camera y down -> world Y up
    world_R_cam = _rotation(1, yaw) @ _rotation(0, pitch) @ flip_y @ _rotation(2, roll)
    return _Camera(
        float(focal_px), (width - 1) / 2, (height - 1) / 2, height, width, np.asarray(centre, float), world_R_cam
    )


def _random_camera(
    rng: np.random.Generator,
    height: int,
    width: int,
    centre: np.ndarray,
    *,
    yaw_deg: float,
    pitch_deg: tuple[float, float],
) -> _Camera:
    """A camera at ``centre`` with a random field of view, yaw within ±``yaw_deg``, pitch in
    ``pitch_deg`` and a small roll (sigma 2 degrees)."""
    return _look_camera(
        height=height,
        width=width,
        hfov_deg=rng.uniform(*_HFOV_DEG),
        centre=centre,
        yaw=np.radians(rng.uniform(-yaw_deg, yaw_deg)),
        pitch=np.radians(rng.uniform(*pitch_deg)),
        roll=np.radians(rng.normal(0.0, 2.0)),
    )


def _unit_rays(camera: _Camera, xs: np.ndarray, ys: np.ndarray, local_R_world: np.ndarray) -> list[np.ndarray]:
    """Directions of the rays through pixels (xs, ys) in a frame ``local_R_world``, scaled so the
    camera-frame z component is 1: three float32 arrays broadcast from ``xs`` and ``ys``."""
    A = (local_R_world @ camera.world_R_cam).astype(np.float32)
    xn = (xs - np.float32(camera.cx)) / np.float32(camera.focal_px)
    yn = (ys - np.float32(camera.cy)) / np.float32(camera.focal_px)
    return [A[i, 0] * xn + A[i, 1] * yn + A[i, 2] for i in range(3)]


def _unit_frame(primitive: _Primitive) -> np.ndarray:
    """(3, 3) float64 map from world offsets to the primitive's unit-shape frame."""
    return primitive.world_R_local.T / primitive.half[:, None]


# ---------------------------------------------------------------------------------------------
# Ray hits in the unit frame: o, d are 3-lists of scalars or arrays (broadcast); t or inf.


def _slab(o: list, d: list) -> tuple[np.ndarray, np.ndarray]:
    """Entry and exit ``t`` of rays through the cube |x|, |y|, |z| <= 1."""
    lows, highs = [], []
    for i in range(3):
        inverse = 1.0 / d[i]
        first, second = (-1.0 - o[i]) * inverse, (1.0 - o[i]) * inverse
        lows.append(np.minimum(first, second))
        highs.append(np.maximum(first, second))
    return np.maximum(np.maximum(lows[0], lows[1]), lows[2]), np.minimum(np.minimum(highs[0], highs[1]), highs[2])


def _hit_box(o: list, d: list) -> np.ndarray:
    near, far = _slab(o, d)
    return np.where((near <= far) & (near > _NEAR_M), near, np.inf)


def _hit_room(o: list, d: list) -> np.ndarray:
    """The inside of the cube, seen from within."""
    _, far = _slab(o, d)
    return np.where(far > _NEAR_M, far, np.inf)


def _hit_quad(o: list, d: list) -> np.ndarray:
    t = -o[2] / d[2]
    inside = (np.abs(o[0] + t * d[0]) <= 1.0) & (np.abs(o[1] + t * d[1]) <= 1.0)
    return np.where(inside & (t > _NEAR_M), t, np.inf)


def _hit_cylinder(o: list, d: list) -> np.ndarray:
    """The cylinder x^2 + z^2 <= 1, |y| <= 1 seen from outside: side or the cap facing the origin."""
    a = d[0] * d[0] + d[2] * d[2]
    b = o[0] * d[0] + o[2] * d[2]
    disc = b * b - a * (o[0] * o[0] + o[2] * o[2] - 1.0)
    t_side = (-b - np.sqrt(np.maximum(disc, 0.0))) / a
    side = (disc >= 0) & (t_side > _NEAR_M) & (np.abs(o[1] + t_side * d[1]) <= 1.0)
    t_cap = (np.sign(o[1]) - o[1]) / d[1]
    cap_x, cap_z = o[0] + t_cap * d[0], o[2] + t_cap * d[2]
    cap = (np.abs(o[1]) > 1.0) & (t_cap > _NEAR_M) & (cap_x * cap_x + cap_z * cap_z <= 1.0)
    return np.minimum(np.where(side, t_side, np.inf), np.where(cap, t_cap, np.inf))


def _hit_ellipsoid(o: list, d: list) -> np.ndarray:
    a = d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
    b = o[0] * d[0] + o[1] * d[1] + o[2] * d[2]
    disc = b * b - a * (o[0] * o[0] + o[1] * o[1] + o[2] * o[2] - 1.0)
    t = (-b - np.sqrt(np.maximum(disc, 0.0))) / a
    return np.where((disc >= 0) & (t > _NEAR_M), t, np.inf)


_HITS: dict[str, Callable[[list, list], np.ndarray]] = {
    "quad": _hit_quad,
    "box": _hit_box,
    "room": _hit_room,
    "cylinder": _hit_cylinder,
    "ellipsoid": _hit_ellipsoid,
}


def _pixel_window(camera: _Camera, primitive: _Primitive) -> tuple[int, int, int, int] | None:
    """Pixel box (x0, y0, x1, y1), ends exclusive, holding the primitive's projection: its
    bounding box projected, or the whole frame when a corner lies near or behind the camera;
    None when off frame."""
    full = (0, 0, camera.width, camera.height)
    if primitive.kind == "room":
        return full
    signs = np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1], indexing="ij")).reshape(3, -1)
    if primitive.kind == "quad":
        signs = signs[:, signs[2] < 0] * np.array([[1], [1], [0]])
    world = primitive.centre[:, None] + primitive.world_R_local @ (primitive.half[:, None] * signs)
    cam = camera.world_R_cam.T @ (world - camera.centre[:, None])
    if cam[2].min() < 0.01:
        return full
    u = camera.focal_px * cam[0] / cam[2] + camera.cx
    v = camera.focal_px * cam[1] / cam[2] + camera.cy
    x0, y0 = max(int(np.floor(u.min())), 0), max(int(np.floor(v.min())), 0)
    x1, y1 = min(int(np.ceil(u.max())) + 1, camera.width), min(int(np.ceil(v.max())) + 1, camera.height)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def _trace(camera: _Camera, primitives: tuple[_Primitive, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Z-buffer of the primitives: (H, W) float32 camera depth z in metres (inf: sky) and (H, W)
    int16 index of the visible primitive (-1: sky)."""
    depth = np.full((camera.height, camera.width), np.inf, np.float32)
    owner = np.full((camera.height, camera.width), -1, np.int16)
    xs_all = np.arange(camera.width, dtype=np.float32)[None, :]
    ys_all = np.arange(camera.height, dtype=np.float32)[:, None]
    for index, primitive in enumerate(primitives):
        window = _pixel_window(camera, primitive)
        if window is None:
            continue
        x0, y0, x1, y1 = window
        unit_R_world = _unit_frame(primitive)
        origin = (unit_R_world @ (camera.centre - primitive.centre)).astype(np.float32)
        direction = _unit_rays(camera, xs_all[:, x0:x1], ys_all[y0:y1], unit_R_world)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = _HITS[primitive.kind](list(origin), direction)
        depth_window = depth[y0:y1, x0:x1]
        nearer = t < depth_window
        np.copyto(depth_window, t, where=nearer)
        np.copyto(owner[y0:y1, x0:x1], index, where=nearer)
    return depth, owner


# ---------------------------------------------------------------------------------------------
# Surfaces: part, normal and surface coordinates of unit-frame hit points


def _surface(kind: str, p: list[np.ndarray], half: np.ndarray) -> tuple[np.ndarray, list, np.ndarray, np.ndarray]:
    """For unit-frame points ``p`` (3 arrays (N,)) on a primitive of ``kind`` with half extents
    ``half``: part index (N,) int, the unit-frame gradient (3-list, the local normal is gradient /
    half), and surface coordinates (s, u) (N,) float32 in metres."""
    zero = np.zeros_like(p[0])
    metres = [p[i] * np.float32(half[i]) for i in range(3)]
    if kind == "quad":
        return zero.astype(np.intp), [zero, zero, zero + 1.0], metres[0], metres[1]
    if kind in ("box", "room"):
        magnitude = np.abs(np.stack(p))
        axis = np.argmax(magnitude, axis=0)
        positive = np.take_along_axis(np.stack(p), axis[None], 0)[0] > 0
        sign = np.where(positive, np.float32(1.0), np.float32(-1.0))
        gradient = [np.where(axis == i, sign, 0.0).astype(np.float32) for i in range(3)]
        s = np.where(axis == 0, metres[2], metres[0])
        u = np.where(axis == 1, metres[2], metres[1])
        return 2 * axis + positive, gradient, s, u
    radius = np.float32((half[0] + half[2]) / 2)
    around = np.arctan2(p[2], p[0]) * radius
    if kind == "ellipsoid":
        up = np.arcsin(np.clip(p[1], -1.0, 1.0)) * np.float32(half[1])
        return zero.astype(np.intp), list(p), around, up
    cap = np.abs(p[1]) >= np.sqrt(p[0] * p[0] + p[2] * p[2])
    part = np.where(cap, np.where(p[1] > 0, 2, 1), 0)
    gradient = [np.where(cap, 0.0, p[0]), np.where(cap, np.sign(p[1]), 0.0), np.where(cap, 0.0, p[2])]
    return part, gradient, np.where(cap, metres[0], around), np.where(cap, metres[2], metres[1])


# ---------------------------------------------------------------------------------------------
# Textures


def _mip_chain(image: np.ndarray) -> tuple[np.ndarray, ...]:
    """Up to :data:`_MIP_LEVELS` read-only levels of ``image`` (each a ``cv2.pyrDown`` of the
    previous one), stopping at 4 px."""
    levels = [image]
    while len(levels) < _MIP_LEVELS and min(levels[-1].shape[:2]) >= 8:
        levels.append(cv2.pyrDown(levels[-1]))
    for level in levels:
        level.setflags(write=False)
    return tuple(levels)


def _facade_sheet(rng: np.random.Generator) -> np.ndarray:
    """(S, S, 3) uint8 BGR tile of a building facade: a noisy wall colour and a grid of 2-4 x 2-4
    windows (dark glass, a light frame), one window per cell, symmetric so it tiles mirrored."""
    size = _FACADE_PX
    wall = rng.uniform(60, 230, 3)
    noise = cv2.resize(rng.normal(0, rng.uniform(3, 15), (8, 8, 3)).astype(np.float32), (size, size))
    sheet = np.clip(wall + noise + rng.normal(0, 4, (size, size, 3)), 0, 255).astype(np.float32)
    columns, rows = int(rng.integers(2, 5)), int(rng.integers(2, 5))
    cell_w, cell_h = size / columns, size / rows
    fill_w, fill_h = rng.uniform(0.3, 0.75), rng.uniform(0.35, 0.7)
    glass = rng.uniform(20, 110, 3) * np.array([1.2, 1.0, 0.9])
    frame = rng.uniform(150, 250, 3) if rng.random() < 0.6 else wall * 0.6
    border = int(rng.integers(1, 4))
    for row in range(rows):
        for column in range(columns):
            x0 = int((column + 0.5 - fill_w / 2) * cell_w)
            y0 = int((row + 0.5 - fill_h / 2) * cell_h)
            x1, y1 = int((column + 0.5 + fill_w / 2) * cell_w), int((row + 0.5 + fill_h / 2) * cell_h)
            sheet[y0:y1, x0:x1] = frame
            shade = np.linspace(1.2, 0.8, y1 - y0 - 2 * border)[:, None, None]
            sheet[y0 + border : y1 - border, x0 + border : x1 - border] = glass * shade * rng.uniform(0.7, 1.3)
    return np.clip(sheet, 0, 255).astype(np.uint8)


@lru_cache(maxsize=1)
def _mip_bank() -> dict[str, tuple[tuple[np.ndarray, ...], ...]]:
    """Mip chains by texture kind: the stereo texture bank (:func:`texture_bank`'s 'photo',
    'noise', 'pattern' and 'text' images) and procedural facades; fixed seed, so the same in every
    process."""
    bank = {kind: tuple(_mip_chain(pyramid[0]) for pyramid in group) for kind, group in _bank_pyramids().items()}
    rng = np.random.default_rng(20240612)
    bank["facade"] = tuple(_mip_chain(_facade_sheet(rng)) for _ in range(_FACADE_SHEETS))
    return bank


def _colour_mean(pyramid: tuple[np.ndarray, ...], colour: np.ndarray) -> np.ndarray:
    """(3,) float32 mean BGR of the coarsest level after the colour transform."""
    mean = pyramid[-1].reshape(-1, 3).mean(axis=0).astype(np.float32)
    return colour[:, :3] @ mean + colour[:, 3]


def _identity_colour() -> np.ndarray:
    return np.hstack([np.eye(3), np.zeros((3, 1))]).astype(np.float32)


def _tint(dark: np.ndarray, bright: np.ndarray) -> np.ndarray:
    """(3, 4) float32 colour transform mapping luminance 0-255 onto ``dark``-``bright`` BGR."""
    return np.hstack([np.outer(bright - dark, _LUMINANCE / 255.0), dark[:, None]]).astype(np.float32)


def _surface_affine(rng: np.random.Generator, texels_per_m: tuple[float, float], *, aligned: bool) -> np.ndarray:
    """(2, 3) float32 map surface metres -> texels: the given scales, rotated by a multiple of 90
    degrees (``aligned``) or at random, and a random offset."""
    angle = rng.integers(4) * np.pi / 2 if aligned else rng.uniform(-np.pi, np.pi)
    cos, sin = np.cos(angle), np.sin(angle)
    linear = np.array([[cos, -sin], [sin, cos]]) * np.array(texels_per_m)[:, None]
    return np.hstack([linear, rng.uniform(0, 4096, (2, 1))]).astype(np.float32)


def _material(
    rng: np.random.Generator, kinds: dict[str, float], span_m: float, *, markings: _Markings | None = None
) -> _Material:
    """A random texture of a kind drawn from ``kinds`` (bank kinds, 'flat' or 'facade'): the whole
    texture spans ``span_m`` metres (a facade sheet 2-4 windows of 2.5-4.5 m x 2.8-3.8 m; a flat
    colour stretched over the surface)."""
    kind = _choice(rng, kinds)
    if kind == "flat":
        pyramid = _mip_chain(_flat_texture(rng))
        colour = _identity_colour()
        affine = _surface_affine(rng, (32 / span_m, 32 / span_m), aligned=False)
        return _Material(pyramid, affine, colour, _colour_mean(pyramid, colour), markings)
    group = _mip_bank()[kind]
    pyramid = group[int(rng.integers(len(group)))]
    if kind == "facade":
        scale = (_FACADE_PX / (rng.uniform(2.5, 4.5) * 3), _FACADE_PX / (rng.uniform(2.8, 3.8) * 3))
        colour = _random_colour_transform(rng, "photo") if rng.random() < 0.5 else _identity_colour()
        affine = _surface_affine(rng, scale, aligned=False)
        affine[:, :2] = np.diag(scale).astype(np.float32) * np.array([1.0, -1.0], np.float32)  # upright
        return _Material(pyramid, affine, colour, _colour_mean(pyramid, colour), markings)
    texels = max(pyramid[0].shape[:2]) / span_m
    colour = _random_colour_transform(rng, kind)
    affine = _surface_affine(rng, (texels, texels), aligned=kind in ("pattern", "text") or rng.random() < 0.5)
    return _Material(pyramid, affine, colour, _colour_mean(pyramid, colour), markings)


def _tinted_material(
    rng: np.random.Generator, span_m: float, dark: np.ndarray, bright: np.ndarray, *, markings: _Markings | None = None
) -> _Material:
    """A bank noise sheet spanning ``span_m`` metres, its luminance mapped onto ``dark``-``bright``
    (3,) BGR: asphalt, concrete, bark, foliage, glass."""
    group = _mip_bank()["noise"]
    pyramid = group[int(rng.integers(len(group)))]
    colour = _tint(np.asarray(dark, np.float32), np.asarray(bright, np.float32))
    affine = _surface_affine(rng, (max(pyramid[0].shape[:2]) / span_m,) * 2, aligned=False)
    return _Material(pyramid, affine, colour, _colour_mean(pyramid, colour), markings)


def _remap_points(texture: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """(N, 3) float32 bilinear samples of ``texture`` at texel points (xs, ys) (N,) (OpenCV's remap
    takes at most 32767 columns, so the points go in rows of 256)."""
    count = xs.size
    rows = -(-count // 256)
    maps = np.zeros((2, rows * 256), np.float32)
    maps[0, :count], maps[1, :count] = xs, ys
    sampled = cv2.remap(
        texture,
        maps[0].reshape(rows, 256),
        maps[1].reshape(rows, 256),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT_101,
    )
    return sampled.reshape(-1, 3)[:count].astype(np.float32)


def _fold(values: np.ndarray, size: int) -> np.ndarray:
    """Texel coordinates mirrored into [0, size - 1] (a triangle wave), so textures tile without
    seams and OpenCV's remap gets small coordinates."""
    period = np.float32(2 * (size - 1))
    return np.float32(size - 1) - np.abs(np.mod(values, period) - np.float32(size - 1))


def _sample_material(material: _Material, s: np.ndarray, u: np.ndarray, footprint_m: np.ndarray) -> np.ndarray:
    """(N, 3) float32 BGR colours of ``material`` at surface points (s, u) (N,) metres whose pixels
    cover ``footprint_m`` (N,) metres: trilinear mip-mapping, fading to the mean colour beyond
    the coarsest level, then the colour transform and painted markings."""
    (a00, a01, a02), (a10, a11, a12) = material.tex_from_surface
    tx, ty = a00 * s + a01 * u + a02, a10 * s + a11 * u + a12
    pyramid = material.pyramid
    height0, width0 = pyramid[0].shape[:2]
    tx, ty = _fold(tx, width0), _fold(ty, height0)
    texels_per_m = np.sqrt(abs(a00 * a11 - a01 * a10))
    level = np.log2(np.maximum(footprint_m * texels_per_m, 1.0))
    top = len(pyramid) - 1
    base = np.minimum(level.astype(np.intp), top)
    colours = np.empty((s.size, 3), np.float32)
    for k in np.flatnonzero(np.bincount(base, minlength=top + 1)):
        chosen = base == k
        fine = _remap_level(pyramid, k, tx[chosen], ty[chosen])
        if k < top:
            weight = (level[chosen] - k)[:, None]
            fine += weight * (_remap_level(pyramid, k + 1, tx[chosen], ty[chosen]) - fine)
        colours[chosen] = fine
    colours = colours @ material.colour[:, :3].T + material.colour[:, 3]
    beyond = np.clip(level - top, 0.0, 1.0)[:, None]
    colours += beyond * (material.mean - colours)
    if material.markings is not None:
        _paint(colours, material.markings, s, u, footprint_m)
    return colours


def _remap_level(pyramid: tuple[np.ndarray, ...], level: int, tx: np.ndarray, ty: np.ndarray) -> np.ndarray:
    """(N, 3) float32 samples of mip ``level`` at level-0 texel coordinates (tx, ty)."""
    height, width = pyramid[level].shape[:2]
    sx, sy = width / pyramid[0].shape[1], height / pyramid[0].shape[0]
    return _remap_points(pyramid[level], (tx + 0.5) * sx - 0.5, (ty + 0.5) * sy - 0.5)


def _paint(colours: np.ndarray, markings: _Markings, s: np.ndarray, u: np.ndarray, footprint_m: np.ndarray) -> None:
    """Blend painted lines into ``colours`` (N, 3) in place, by their area coverage of each pixel."""
    blur = np.maximum(footprint_m, np.float32(1e-4))
    for offset, period, dash in zip(markings.offsets_m, markings.period_m, markings.dash_m):
        distance = np.abs(s - np.float32(offset))
        near = np.flatnonzero(distance < markings.half_width_m + blur)
        across = np.clip((markings.half_width_m - distance[near]) / blur[near] + 0.5, 0.0, 1.0)
        if dash < period:
            phase = np.mod(u[near], np.float32(period))
            across *= np.clip(np.minimum(phase, dash - phase) / blur[near] + 0.5, 0.0, 1.0)
        colours[near] += across[:, None] * (markings.colour - colours[near])


# ---------------------------------------------------------------------------------------------
# Shading


def _shadowed(
    primitives: tuple[_Primitive, ...], owners: np.ndarray, points: np.ndarray, to_light: np.ndarray
) -> np.ndarray:
    """(N,) bool: which world ``points`` (3, N) float32, on primitives ``owners`` (N,), see a
    caster other than their own between them and the light (rays towards the unit ``to_light``;
    bounding-sphere test first, then the exact hit)."""
    shadow = np.zeros(owners.shape, bool)
    direction = to_light.astype(np.float32)
    light_along = direction @ points
    norm_sq = np.einsum("ij,ij->j", points, points)
    for index, caster in enumerate(primitives):
        if not caster.caster:
            continue
        centre = caster.centre.astype(np.float32)
        radius = np.float32(np.linalg.norm(caster.half))
        along = np.float32(direction @ centre) - light_along  # centre - point, along the light
        # |centre - point|^2 - along^2, expanded so that the only (N,) product is centre @ points
        miss_sq = (np.float32(centre @ centre) + norm_sq) - 2 * (centre @ points) - along * along
        candidates = np.flatnonzero((along > -radius) & (miss_sq < radius * radius) & (owners != index))
        if candidates.size == 0:
            continue
        unit_R_world = _unit_frame(caster).astype(np.float32)
        origin = list(unit_R_world @ (points[:, candidates] - centre[:, None]))
        with np.errstate(divide="ignore", invalid="ignore"):
            hit = np.isfinite(_HITS[caster.kind](origin, list(unit_R_world @ direction)))
        shadow[candidates[hit]] = True
    return shadow


def _sky_colours(sky: _Sky, directions: list[np.ndarray]) -> np.ndarray:
    """(N, 3) float32 BGR sky along world ``directions`` (3 arrays (N,)): zenith-to-horizon
    gradient and optional clouds on a plane at infinity."""
    norm = np.sqrt(directions[0] ** 2 + directions[1] ** 2 + directions[2] ** 2)
    elevation = np.clip(directions[1] / norm, 0.0, 1.0)
    colours = sky.horizon + np.sqrt(elevation)[:, None] * (sky.zenith - sky.horizon)
    if sky.clouds is not None and sky.cover > 0:
        up = np.maximum(directions[1], 1e-3)
        scale = np.float32(sky.clouds.shape[1] / 3.0)
        xs = _fold(directions[0] / up * scale, sky.clouds.shape[1])
        ys = _fold(directions[2] / up * scale, sky.clouds.shape[0])
        density = _remap_points(sky.clouds, xs, ys) @ (_LUMINANCE / 255.0)
        cloud = np.clip((density - (1.0 - sky.cover)) * 4.0, 0.0, 1.0) * np.clip(elevation * 6.0, 0.0, 1.0)
        colours += cloud[:, None] * (np.float32(235.0) - colours)
    return colours


def _shade(scene: _Scene, depth: np.ndarray, owner: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 BGR 0-255 (unclipped) image of the traced scene: sky, textured and lit
    surfaces with cast shadows, fog."""
    camera, lighting = scene.camera, scene.lighting
    flat_owner = owner.ravel()
    albedo = np.empty((flat_owner.size, 3), np.float32)
    lambert = np.zeros(flat_owner.size, np.float32)
    points = np.zeros((3, flat_owner.size), np.float32)
    order = np.argsort(flat_owner, kind="stable")
    starts = np.searchsorted(flat_owner[order], np.arange(-1, len(scene.primitives) + 1))
    for index in range(-1, len(scene.primitives)):
        pixels = order[starts[index + 1] : starts[index + 2]]
        if pixels.size == 0:
            continue
        xs = (pixels % camera.width).astype(np.float32)
        ys = (pixels // camera.width).astype(np.float32)
        world_dir = _unit_rays(camera, xs, ys, np.eye(3))
        if index < 0:
            albedo[pixels] = _sky_colours(scene.sky, world_dir)
        else:
            albedo[pixels], lambert[pixels], points[:, pixels] = _shade_primitive(
                scene, index, depth.ravel()[pixels], xs, ys, world_dir
            )
    lit = np.flatnonzero(lambert > 0)
    lambert[lit[_shadowed(scene.primitives, flat_owner[lit], points[:, lit], lighting.to_light)]] = 0.0
    gain = lighting.ambient + lambert[:, None] * lighting.sun
    gain[flat_owner < 0] = 1.0  # the sky is not lit
    albedo *= gain
    image = albedo.reshape(camera.height, camera.width, 3)
    if np.isfinite(lighting.fog_m):
        ray_m = depth * np.sqrt(_ray_norm_sq(camera))
        with np.errstate(invalid="ignore"):
            clear = np.exp(-ray_m / np.float32(lighting.fog_m))[:, :, None]
        image = np.where(owner[:, :, None] < 0, image, lighting.fog_colour + clear * (image - lighting.fog_colour))
    return image


def _ray_norm_sq(camera: _Camera) -> np.ndarray:
    """(H, W) float32 squared length of the pixel rays whose camera-frame z is 1."""
    xn = (np.arange(camera.width, dtype=np.float32) - np.float32(camera.cx)) / np.float32(camera.focal_px)
    yn = (np.arange(camera.height, dtype=np.float32) - np.float32(camera.cy)) / np.float32(camera.focal_px)
    return 1.0 + xn[None, :] ** 2 + yn[:, None] ** 2


def _shade_primitive(
    scene: _Scene, index: int, t: np.ndarray, xs: np.ndarray, ys: np.ndarray, world_dir: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Primitive ``index`` at its visible pixels (xs, ys) (N,) px whose rays (``world_dir``,
    camera-z 1) hit it at depth ``t`` (N,) metres: (N, 3) float32 BGR texture colours, (N,)
    float32 cosine of the light's incidence (0 facing away) and (3, N) float32 world points
    lifted 1 mm off the surface (shadow-ray origins)."""
    camera, lighting = scene.camera, scene.lighting
    primitive = scene.primitives[index]
    unit_R_world = _unit_frame(primitive)
    origin = (unit_R_world @ (camera.centre - primitive.centre)).astype(np.float32)
    direction = _unit_rays(camera, xs, ys, unit_R_world)
    part, gradient, s, u = _surface(primitive.kind, [origin[i] + t * direction[i] for i in range(3)], primitive.half)
    world_R_unit = (primitive.world_R_local / primitive.half[None, :]).astype(np.float32)
    normal = [sum(world_R_unit[i, j] * gradient[j] for j in range(3)) for i in range(3)]
    length = np.sqrt(normal[0] ** 2 + normal[1] ** 2 + normal[2] ** 2) + np.float32(1e-12)
    ray_length = np.sqrt(world_dir[0] ** 2 + world_dir[1] ** 2 + world_dir[2] ** 2)
    facing = (normal[0] * world_dir[0] + normal[1] * world_dir[1] + normal[2] * world_dir[2]) / (length * ray_length)
    flip = np.where(facing > 0, np.float32(-1.0), np.float32(1.0)) / length
    normal = [n * flip for n in normal]
    footprint_m = t / (np.float32(camera.focal_px) * ray_length) / np.maximum(np.abs(facing), 0.02) ** _SLANT_EXPONENT
    if all(material is primitive.materials[0] for material in primitive.materials):
        colours = _sample_material(primitive.materials[0], s, u, footprint_m)
    else:
        colours = np.empty((t.size, 3), np.float32)
        for part_index in np.flatnonzero(np.bincount(part, minlength=len(primitive.materials))):
            chosen = part == part_index
            colours[chosen] = _sample_material(
                primitive.materials[part_index], s[chosen], u[chosen], footprint_m[chosen]
            )
    to_light = lighting.to_light.astype(np.float32)
    lambert = np.maximum(normal[0] * to_light[0] + normal[1] * to_light[1] + normal[2] * to_light[2], 0.0)
    points = np.stack(
        [np.float32(camera.centre[i]) + t * world_dir[i] + np.float32(1e-3) * normal[i] for i in range(3)]
    )
    return colours, lambert, points


# ---------------------------------------------------------------------------------------------
# Scene building blocks

#: Texture kinds and their probabilities by surface role, and the range of the texture's span
#: as a multiple of the surface extent (log-uniform).
_ROLES: dict[str, tuple[dict[str, float], tuple[float, float]]] = {
    "floor": ({"noise": 0.35, "pattern": 0.25, "photo": 0.25, "flat": 0.15}, (0.3, 2.0)),
    "wall": ({"flat": 0.45, "noise": 0.2, "pattern": 0.12, "photo": 0.15, "text": 0.08}, (0.3, 1.5)),
    "object": ({"photo": 0.35, "noise": 0.2, "flat": 0.25, "pattern": 0.12, "text": 0.08}, (0.5, 3.0)),
    "ground": ({"photo": 0.45, "noise": 0.45, "flat": 0.1}, (0.1, 0.6)),
    "building": ({"facade": 0.7, "flat": 0.1, "noise": 0.1, "photo": 0.1}, (0.3, 1.0)),
    "paint": ({"flat": 0.75, "noise": 0.15, "pattern": 0.1}, (1.0, 2.0)),
}


def _role_material(rng: np.random.Generator, role: str, extent_m: float) -> _Material:
    """A random material for a surface of ``role`` (a key of :data:`_ROLES`) about ``extent_m``
    metres across."""
    kinds, span = _ROLES[role]
    return _material(rng, kinds, extent_m * _log_uniform(rng, *span))


def _solid(
    kind: str,
    centre: tuple[float, float, float] | np.ndarray,
    half: tuple[float, float, float] | np.ndarray,
    materials: _Material | tuple[_Material, ...],
    world_R_local: np.ndarray | None = None,
    *,
    caster: bool = True,
) -> _Primitive:
    """A primitive; one material is used for all of its parts."""
    if isinstance(materials, _Material):
        materials = (materials,) * _PART_COUNT[kind]
    rotation = np.eye(3) if world_R_local is None else world_R_local
    return _Primitive(kind, np.asarray(centre, float), rotation, np.asarray(half, float), materials, caster)


def _contains(primitive: _Primitive, point: np.ndarray, margin_m: float) -> bool:
    """Whether world ``point`` lies inside the primitive grown by ``margin_m`` (quads and rooms:
    never)."""
    if primitive.kind in ("quad", "room"):
        return False
    local = np.abs(primitive.world_R_local.T @ (point - primitive.centre)) / (primitive.half + margin_m)
    if primitive.kind == "box":
        return bool(local.max() <= 1.0)
    if primitive.kind == "cylinder":
        return bool(local[0] ** 2 + local[2] ** 2 <= 1.0 and local[1] <= 1.0)
    return bool(local @ local <= 1.0)


def _view_spot(
    rng: np.random.Generator,
    camera: _Camera,
    distance_m: tuple[float, float],
    bounds: tuple[float, float, float, float],
) -> tuple[float, float]:
    """A random floor point (x, z) metres inside the camera's horizontal field of view (or a little
    beyond), at a log-uniform distance in ``distance_m``, clipped into ``bounds`` (x0, x1, z0, z1)."""
    forward = camera.world_R_cam[:, 2]
    half_fov = np.arctan(camera.width / 2 / camera.focal_px)
    angle = np.arctan2(forward[0], forward[2]) + rng.uniform(-1.1, 1.1) * half_fov
    distance = _log_uniform(rng, *distance_m)
    x = np.clip(camera.centre[0] + distance * np.sin(angle), bounds[0], bounds[1])
    z = np.clip(camera.centre[2] + distance * np.cos(angle), bounds[2], bounds[3])
    return float(x), float(z)


def _upright(rng: np.random.Generator) -> np.ndarray:
    """(3, 3) rotation about Y by a random angle."""
    return _rotation(1, rng.uniform(-np.pi, np.pi))


def _box_on(
    rng: np.random.Generator, x: float, z: float, base_y: float, size: tuple[float, float, float], role: str = "object"
) -> list[_Primitive]:
    """A box of ``size`` (x, y, z) metres standing at (x, base_y, z), turned about Y; one in five
    tipped over at a random 3D orientation (sunk into its support a little)."""
    half = np.array(size) / 2
    rotation = _upright(rng)
    if rng.random() < 0.2:
        rotation = rotation @ _rotation(0, rng.uniform(-1.2, 1.2)) @ _rotation(2, rng.uniform(-1.2, 1.2))
    material = _role_material(rng, role, float(max(size)))
    return [_solid("box", (x, base_y + half[1], z), half, material, rotation)]


def _cylinder_on(
    rng: np.random.Generator, x: float, z: float, base_y: float, radius: float, height: float, *, lying: bool = False
) -> list[_Primitive]:
    """An upright cylinder (cup, bin, pillar, trunk) standing at (x, base_y, z), or one lying on
    its side turned about Y."""
    material = _role_material(rng, "object", max(2 * radius, height))
    if lying:
        return [
            _solid(
                "cylinder", (x, base_y + radius, z), (radius, height / 2, radius), material, _upright(rng) @ _ALONG_X
            )
        ]
    return [_solid("cylinder", (x, base_y + height / 2, z), (radius, height / 2, radius), material, _upright(rng))]


def _ball_on(rng: np.random.Generator, x: float, z: float, base_y: float, radius: float) -> list[_Primitive]:
    """An ellipsoid (ball, fruit, rock) resting at (x, base_y, z), radii within 0.7-1.3 ``radius``."""
    half = radius * rng.uniform(0.7, 1.3, 3)
    return [
        _solid(
            "ellipsoid", (x, base_y + half[1] * 0.9, z), half, _role_material(rng, "object", 2 * radius), _upright(rng)
        )
    ]


def _person(rng: np.random.Generator, x: float, z: float, base_y: float = 0.0) -> list[_Primitive]:
    """A person-like figure 1.5-1.95 m tall at (x, base_y, z): a legs slab, a torso box or
    cylinder and an ellipsoid head."""
    stature = rng.uniform(1.5, 1.95)
    legs_h, head_h = 0.47 * stature, 0.13 * stature
    torso_h = stature - legs_h - head_h
    rotation = _upright(rng)
    width = rng.uniform(0.16, 0.24)
    skin = _material(rng, {"flat": 1.0}, 0.3)
    parts = [
        _solid(
            "box",
            (x, base_y + legs_h / 2, z),
            (width * 0.85, legs_h / 2, 0.1),
            _role_material(rng, "paint", 1.0),
            rotation,
        ),
        _solid(
            "box" if rng.random() < 0.5 else "cylinder",
            (x, base_y + legs_h + torso_h / 2, z),
            (width, torso_h / 2, rng.uniform(0.1, 0.15)),
            _role_material(rng, "paint", 1.0),
            rotation,
        ),
        _solid("ellipsoid", (x, base_y + stature - head_h / 2, z), (0.08, head_h / 2, 0.1), skin, rotation),
    ]
    return parts


def _car(rng: np.random.Generator, x: float, z: float, yaw: float) -> list[_Primitive]:
    """A car-like body box, cabin box and two axle cylinders (wheels) centred at (x, 0, z),
    its length along the direction ``yaw`` radians from +Z."""
    length, width = rng.uniform(3.6, 4.9), rng.uniform(1.6, 1.95)
    body_h, clearance, wheel_r = rng.uniform(0.55, 0.8), rng.uniform(0.15, 0.3), rng.uniform(0.28, 0.36)
    cabin_l, cabin_h, cabin_shift = (
        length * rng.uniform(0.45, 0.6),
        rng.uniform(0.4, 0.6),
        length * rng.uniform(-0.12, 0.02),
    )
    rotation = _rotation(1, yaw)
    centre = np.array([x, 0.0, z])
    forward = rotation[:, 2]
    paint = _material(rng, {"flat": 0.75, "noise": 0.15, "photo": 0.1}, length)
    glass = _tinted_material(rng, 2.0, rng.uniform(10, 40, 3), rng.uniform(60, 140, 3))
    tyre = _tinted_material(rng, 0.5, np.full(3, 15.0), np.full(3, rng.uniform(40, 70)))
    parts = [
        _solid("box", centre + [0, clearance + body_h / 2, 0], (width / 2, body_h / 2, length / 2), paint, rotation),
        _solid(
            "box",
            centre + [0, clearance + body_h + cabin_h / 2, 0] + cabin_shift * forward,
            (width / 2 * rng.uniform(0.85, 0.97), cabin_h / 2, cabin_l / 2),
            (glass, glass, paint, paint, glass, glass),
            rotation,
        ),
    ]
    for end in (-1, 1):
        axle = centre + [0, wheel_r, 0] + end * 0.32 * length * forward
        parts.append(_solid("cylinder", axle, (wheel_r, width / 2 + 0.01, wheel_r), tyre, rotation @ _ALONG_X))
    return parts


def _tree(rng: np.random.Generator, x: float, z: float, base_y: float = 0.0) -> list[_Primitive]:
    """A trunk cylinder and an ellipsoid crown at (x, base_y, z); or a bare pole (street lamp,
    sign post) one time in three."""
    if rng.random() < 0.33:
        height, radius = rng.uniform(2.5, 8.0), rng.uniform(0.04, 0.15)
        metal = _tinted_material(rng, 1.0, rng.uniform(20, 80, 3), rng.uniform(100, 200, 3))
        return [_solid("cylinder", (x, base_y + height / 2, z), (radius, height / 2, radius), metal)]
    trunk_h, trunk_r, crown = rng.uniform(1.5, 4.0), rng.uniform(0.08, 0.3), rng.uniform(1.0, 3.5)
    bark = _tinted_material(rng, 1.0, rng.uniform(15, 50, 3), rng.uniform(70, 140, 3))
    green = rng.uniform([10, 40, 10], [60, 110, 70])
    foliage = _tinted_material(rng, rng.uniform(0.5, 3.0), green * 0.4, green * rng.uniform(1.5, 2.5))
    crown_half = crown * np.array([1.0, rng.uniform(0.8, 1.5), 1.0]) * rng.uniform(0.8, 1.2, 3)
    return [
        _solid("cylinder", (x, base_y + trunk_h / 2, z), (trunk_r, trunk_h / 2, trunk_r), bark),
        _solid("ellipsoid", (x, base_y + trunk_h + 0.7 * crown_half[1], z), crown_half, foliage, _upright(rng)),
    ]


def _table(
    rng: np.random.Generator, x: float, z: float, top_y: float, size: tuple[float, float], yaw: float
) -> list[_Primitive]:
    """A table: a top slab of ``size`` (x, z) metres with its upper face at ``top_y`` and four
    legs, turned by ``yaw`` radians."""
    thickness, leg = rng.uniform(0.025, 0.06), rng.uniform(0.02, 0.04)
    rotation = _rotation(1, yaw)
    wood = _role_material(rng, "floor", max(size))
    legs = wood if rng.random() < 0.5 else _role_material(rng, "paint", 1.0)
    parts = [_solid("box", (x, top_y - thickness / 2, z), (size[0] / 2, thickness / 2, size[1] / 2), wood, rotation)]
    leg_h = top_y - thickness
    for sx in (-1, 1):
        for sz in (-1, 1):
            offset = rotation @ np.array([sx * (size[0] / 2 - 2 * leg), 0.0, sz * (size[1] / 2 - 2 * leg)])
            parts.append(_solid("box", np.array([x, leg_h / 2, z]) + offset, (leg, leg_h / 2, leg), legs, rotation))
    return parts


def _leaning_board(
    rng: np.random.Generator, x: float, z: float, base_y: float, size: tuple[float, float]
) -> list[_Primitive]:
    """A slanted plane: a ``size`` (width, length) metres rectangle with its lower edge at
    (x, base_y, z), leaning back by 10-60 degrees, turned about Y."""
    lean = rng.uniform(np.radians(10), np.radians(60))
    rotation = _upright(rng) @ _rotation(0, -lean)  # local y up the board, local z its normal
    centre = np.array([x, base_y, z]) + rotation[:, 1] * size[1] / 2
    return [_solid("quad", centre, (size[0] / 2, size[1] / 2, 1.0), _role_material(rng, "object", max(size)), rotation)]


def _room_shell(rng: np.random.Generator, size: tuple[float, float, float]) -> _Primitive:
    """The inside of a (width, height, depth) metres room spanning x in ±width/2, y in [0, height],
    z in [0, depth]: side walls, floor, ceiling, back and front walls."""
    width, height, depth = size
    wall = _role_material(rng, "wall", max(width, height))
    other = _role_material(rng, "wall", max(width, height)) if rng.random() < 0.4 else wall
    floor = _role_material(rng, "floor", max(width, depth))
    ceiling = _material(rng, {"flat": 0.8, "pattern": 0.1, "noise": 0.1}, max(width, depth))
    materials = (wall, other if rng.random() < 0.5 else wall, floor, ceiling, wall, other)
    return _solid("room", (0.0, height / 2, depth / 2), (width / 2, height / 2, depth / 2), materials, caster=False)


def _wall_panels(rng: np.random.Generator, size: tuple[float, float, float], count: int) -> list[_Primitive]:
    """``count`` thin boxes on the room's walls: pictures, doors, shelves, whiteboards."""
    width, height, depth = size
    parts = []
    for _ in range(count):
        panel_w, panel_h = rng.uniform(0.3, 1.6), rng.uniform(0.3, 1.2)
        if rng.random() < 0.3:
            panel_w, panel_h = rng.uniform(0.8, 1.0), min(rng.uniform(1.95, 2.2), height - 0.1)  # a door
            base = 0.0
        else:
            base = rng.uniform(0.5, max(height - panel_h - 0.2, 0.6))
        thickness = rng.uniform(0.02, 0.08)
        material = _role_material(rng, "object", max(panel_w, panel_h))
        y = base + panel_h / 2
        wall = int(rng.integers(3))
        if wall == 2:  # the far wall
            x = rng.uniform(-width / 2 + panel_w / 2, width / 2 - panel_w / 2)
            centre, half = (x, y, depth - thickness / 2), (panel_w / 2, panel_h / 2, thickness / 2)
        else:
            side = 1 if wall else -1
            centre = (side * (width / 2 - thickness / 2), y, rng.uniform(panel_w, max(depth - panel_w, panel_w + 0.1)))
            half = (thickness / 2, panel_h / 2, panel_w / 2)
        parts.append(_solid("box", centre, half, material, caster=False))
    return parts


def _furniture(
    rng: np.random.Generator, camera: _Camera, bounds: tuple[float, float, float, float], count: int
) -> list[_Primitive]:
    """``count`` random furniture-like objects on the floor inside ``bounds`` (x0, x1, z0, z1),
    mostly in view: tables, cabinets, crates, tipped boxes, cylinders, balls, people, boards."""
    parts: list[_Primitive] = []
    makers: dict[str, Callable[[float, float], list[_Primitive]]] = {
        "table": lambda x, z: _table(
            rng,
            x,
            z,
            rng.uniform(0.45, 1.05),
            (rng.uniform(0.6, 2.0), rng.uniform(0.5, 1.0)),
            rng.uniform(-np.pi, np.pi),
        ),
        "cabinet": lambda x, z: _box_on(
            rng, x, z, 0.0, (rng.uniform(0.4, 2.0), rng.uniform(0.4, 2.2), rng.uniform(0.3, 0.8)), "wall"
        ),
        "crate": lambda x, z: _box_on(rng, x, z, 0.0, tuple(rng.uniform(0.2, 0.9, 3))),
        "cylinder": lambda x, z: _cylinder_on(
            rng, x, z, 0.0, rng.uniform(0.08, 0.4), rng.uniform(0.3, 2.0), lying=rng.random() < 0.2
        ),
        "ball": lambda x, z: _ball_on(rng, x, z, 0.0, rng.uniform(0.1, 0.5)),
        "person": lambda x, z: _person(rng, x, z),
        "board": lambda x, z: _leaning_board(rng, x, z, 0.0, (rng.uniform(0.4, 1.5), rng.uniform(0.6, 2.2))),
    }
    weights = {
        "table": 0.2,
        "cabinet": 0.2,
        "crate": 0.15,
        "cylinder": 0.12,
        "ball": 0.08,
        "person": 0.15,
        "board": 0.1,
    }
    for _ in range(count):
        parts += makers[_choice(rng, weights)](*_view_spot(rng, camera, (0.8, 8.0), bounds))
    return parts


# ---------------------------------------------------------------------------------------------
# Scene kinds: each returns the camera, the primitives and whether the scene is outdoors.

_Built = tuple[_Camera, list[_Primitive], bool]


def _room_scene(rng: np.random.Generator, height: int, width: int) -> _Built:
    """A furnished room 3-9 m wide, 3.5-12 m deep, seen from 1.1-1.8 m."""
    size = (rng.uniform(3.0, 9.0), rng.uniform(2.4, 3.6), rng.uniform(3.5, 12.0))
    centre = np.array(
        [rng.uniform(-0.3, 0.3) * size[0], rng.uniform(1.1, min(1.8, size[1] - 0.3)), rng.uniform(0.3, 1.5)]
    )
    camera = _random_camera(rng, height, width, centre, yaw_deg=35.0, pitch_deg=(-8.0, 28.0))
    bounds = (-size[0] / 2 + 0.3, size[0] / 2 - 0.3, centre[2] + 0.6, size[2] - 0.3)
    parts = [_room_shell(rng, size)] + _wall_panels(rng, size, int(rng.integers(0, 4)))
    return camera, parts + _furniture(rng, camera, bounds, int(rng.integers(2, 8))), False


def _corridor_scene(rng: np.random.Generator, height: int, width: int) -> _Built:
    """A corridor 1.6-3.2 m wide and 12-60 m long with doors, pillars, people and boxes."""
    size = (rng.uniform(1.6, 3.2), rng.uniform(2.3, 3.2), rng.uniform(12.0, 60.0))
    centre = np.array([rng.uniform(-0.25, 0.25) * size[0], rng.uniform(1.2, 1.8), rng.uniform(0.3, 2.0)])
    camera = _random_camera(rng, height, width, centre, yaw_deg=12.0, pitch_deg=(-8.0, 15.0))
    parts = [_room_shell(rng, size)] + _wall_panels(rng, size, int(rng.integers(2, 9)))
    bounds = (-size[0] / 2 + 0.25, size[0] / 2 - 0.25, centre[2] + 1.0, size[2] - 0.3)
    for _ in range(int(rng.integers(0, 5))):
        x, z = _view_spot(rng, camera, (1.5, 30.0), bounds)
        if rng.random() < 0.5:
            parts += _person(rng, x, z)
        else:
            parts += _box_on(rng, x, z, 0.0, tuple(rng.uniform(0.2, 0.8, 3)))
    return camera, parts, False


def _street_scene(rng: np.random.Generator, height: int, width: int) -> _Built:
    """A road of 2-4 lanes with lane markings, kerbed pavements, rows of building facades (gaps
    show the sky), cars, trees, poles and people, seen from a car (1.2-1.9 m)."""
    lane_w, lanes = rng.uniform(2.8, 3.8), int(rng.integers(2, 5))
    road_half, pavement_w, kerb_h = lanes * lane_w / 2, rng.uniform(1.5, 5.0), rng.uniform(0.08, 0.2)
    lane_x = -road_half + (np.arange(lanes) + 0.5) * lane_w
    camera_x = float(rng.choice(lane_x)) + rng.normal(0.0, 0.3)
    camera = _random_camera(
        rng, height, width, np.array([camera_x, rng.uniform(1.2, 1.9), 0.0]), yaw_deg=8.0, pitch_deg=(-4.0, 8.0)
    )
    lines = np.concatenate([[-road_half + 0.3], -road_half + np.arange(1, lanes) * lane_w, [road_half - 0.3]])
    dash = rng.uniform(2.0, 4.0)
    period = np.where(np.abs(np.abs(lines) - (road_half - 0.3)) < 1e-6, 1.0, rng.uniform(6.0, 12.0))
    markings = _Markings(
        tuple(lines),
        rng.uniform(0.05, 0.1),
        tuple(period),
        tuple(np.where(period == 1.0, 1.0, dash)),
        rng.uniform(180, 240, 3).astype(np.float32),
    )
    asphalt = rng.uniform(45, 95)
    road = _tinted_material(
        rng,
        _log_uniform(rng, 2.0, 10.0),
        np.full(3, asphalt),
        np.full(3, asphalt + rng.uniform(20, 60)),
        markings=markings,
    )
    parts = [_solid("quad", (0.0, 0.0, 500.0), (3000.0, 3000.0, 1.0), road, _HORIZONTAL, caster=False)]
    for side in (-1, 1):
        pavement = (
            _role_material(rng, "floor", pavement_w)
            if rng.random() < 0.5
            else _tinted_material(rng, 3.0, np.full(3, rng.uniform(90, 140)), np.full(3, rng.uniform(160, 210)))
        )
        parts.append(
            _solid(
                "box",
                (side * (road_half + pavement_w / 2), kerb_h / 2, 190.0),
                (pavement_w / 2, kerb_h / 2, 210.0),
                pavement,
                caster=False,
            )
        )
        z = rng.uniform(-15.0, 0.0)
        for _ in range(int(rng.integers(2, 6))):
            length, tall, deep = rng.uniform(8.0, 35.0), _log_uniform(rng, 4.0, 35.0), rng.uniform(8.0, 20.0)
            inner = road_half + pavement_w + (rng.uniform(0.0, 3.0) if rng.random() < 0.4 else 0.0)
            facade = _role_material(rng, "building", 10.0)
            roof = _role_material(rng, "wall", 10.0)
            materials = (facade, facade, facade, roof, facade, facade)
            parts.append(
                _solid(
                    "box",
                    (side * (inner + deep / 2), tall / 2, z + length / 2),
                    (deep / 2, tall / 2, length / 2),
                    materials,
                )
            )
            z += length + (rng.uniform(2.0, 15.0) if rng.random() < 0.35 else 0.0)
    if rng.random() < 0.3:  # the street ends at a building across it
        far = rng.uniform(60.0, 250.0)
        parts.append(
            _solid(
                "box",
                (0.0, 15.0, far + 10.0),
                (road_half + pavement_w + 30.0, rng.uniform(5.0, 20.0), 10.0),
                _role_material(rng, "building", 10.0),
            )
        )
    for _ in range(int(rng.integers(0, 5))):
        if rng.random() < 0.5:
            x, yaw = float(rng.choice(lane_x)) + rng.normal(0.0, 0.2), rng.normal(0.0, 0.05)
        else:
            x, yaw = float(rng.choice([-1, 1])) * (road_half - 1.2), rng.normal(0.0, 0.05)
        parts += _car(rng, x, _log_uniform(rng, 5.0, 80.0), yaw)
    for _ in range(int(rng.integers(0, 7))):
        side = float(rng.choice([-1, 1]))
        x, z = side * (road_half + rng.uniform(0.3, max(pavement_w - 0.3, 0.4))), _log_uniform(rng, 2.0, 80.0)
        parts += _person(rng, x, z, kerb_h) if rng.random() < 0.4 else _tree(rng, x, z, kerb_h)
    return camera, parts, True


def _open_scene(rng: np.random.Generator, height: int, width: int) -> _Built:
    """An open plaza, park or car park: textured ground to the horizon, hills, distant buildings,
    trees, people, cars, rocks, crates and slanted boards under the sky."""
    centre = np.array([0.0, _log_uniform(rng, 0.6, 3.0), 0.0])
    camera = _random_camera(rng, height, width, centre, yaw_deg=180.0, pitch_deg=(-6.0, 25.0))
    ground = _role_material(rng, "ground", 20.0)
    parts = [_solid("quad", (0.0, 0.0, 0.0), (3000.0, 3000.0, 1.0), ground, _HORIZONTAL, caster=False)]
    far = (-2000.0, 2000.0, -2000.0, 2000.0)
    for _ in range(int(rng.integers(0, 3))):
        x, z = _view_spot(rng, camera, (80.0, 600.0), far)
        half = np.array([rng.uniform(40, 200), rng.uniform(8, 50), rng.uniform(40, 200)])
        parts.append(
            _solid(
                "ellipsoid",
                (x, -rng.uniform(0.2, 0.6) * half[1], z),
                half,
                _role_material(rng, "ground", 50.0),
                caster=False,
            )
        )
    for _ in range(int(rng.integers(0, 5))):
        x, z = _view_spot(rng, camera, (25.0, 250.0), far)
        size = (rng.uniform(8, 40), _log_uniform(rng, 4, 50), rng.uniform(8, 40))
        parts += (
            _box_on(rng, x, z, 0.0, size, "building") if rng.random() < 0.7 else _box_on(rng, x, z, 0.0, size, "wall")
        )
    makers: dict[str, Callable[[float, float], list[_Primitive]]] = {
        "tree": lambda x, z: _tree(rng, x, z),
        "person": lambda x, z: _person(rng, x, z),
        "car": lambda x, z: _car(rng, x, z, rng.uniform(-np.pi, np.pi)),
        "rock": lambda x, z: _ball_on(rng, x, z, -0.2, _log_uniform(rng, 0.2, 2.0)),
        "crate": lambda x, z: _box_on(rng, x, z, 0.0, tuple(rng.uniform(0.3, 3.0, 3))),
        "board": lambda x, z: _leaning_board(rng, x, z, 0.0, (rng.uniform(1.0, 6.0), rng.uniform(1.0, 5.0))),
        "cylinder": lambda x, z: _cylinder_on(rng, x, z, 0.0, rng.uniform(0.1, 1.5), rng.uniform(0.5, 5.0)),
    }
    weights = {"tree": 0.25, "person": 0.2, "car": 0.15, "rock": 0.1, "crate": 0.12, "board": 0.08, "cylinder": 0.1}
    for _ in range(int(rng.integers(2, 9))):
        parts += makers[_choice(rng, weights)](*_view_spot(rng, camera, (1.5, 60.0), far))
    return camera, parts, True


def _tabletop_scene(rng: np.random.Generator, height: int, width: int) -> _Built:
    """Objects on a table seen from 0.15-0.6 m above it: boxes (books, packages), upright and
    lying cylinders (cups, cans, bottles), ellipsoids (fruit, balls), tipped boxes and leaning
    frames; the room behind, the table often against its far wall."""
    size = (rng.uniform(3.0, 6.0), rng.uniform(2.5, 3.2), rng.uniform(3.0, 7.0))
    top_y = rng.uniform(0.65, 0.95)
    table_w, table_d = rng.uniform(0.8, 2.0), rng.uniform(0.5, 1.1)
    against_wall = rng.random() < 0.6
    table_z = size[2] - table_d / 2 - (rng.uniform(0.0, 0.05) if against_wall else rng.uniform(0.5, 1.5))
    table_x = rng.uniform(-0.3, 0.3) * (size[0] - table_w)
    distance = table_d / 2 + rng.uniform(0.1, 0.6)
    centre = np.array([table_x + rng.uniform(-0.3, 0.3), top_y + rng.uniform(0.15, 0.6), table_z - distance])
    pitch = np.degrees(np.arctan2(centre[1] - top_y, distance)) * rng.uniform(0.6, 1.2)
    camera = _random_camera(rng, height, width, centre, yaw_deg=15.0, pitch_deg=(pitch - 5.0, pitch + 5.0))
    parts = [_room_shell(rng, size)] + _table(rng, table_x, table_z, top_y, (table_w, table_d), 0.0)
    parts += _wall_panels(rng, size, int(rng.integers(0, 3)))
    makers: dict[str, Callable[[float, float], list[_Primitive]]] = {
        "box": lambda x, z: _box_on(rng, x, z, top_y, tuple(_log_uniform(rng, 0.03, 0.35) for _ in range(3))),
        "cup": lambda x, z: _cylinder_on(
            rng, x, z, top_y, rng.uniform(0.025, 0.07), rng.uniform(0.05, 0.3), lying=rng.random() < 0.2
        ),
        "fruit": lambda x, z: _ball_on(rng, x, z, top_y, rng.uniform(0.02, 0.1)),
        "frame": lambda x, z: _leaning_board(rng, x, z, top_y, (rng.uniform(0.1, 0.4), rng.uniform(0.1, 0.4))),
    }
    weights = {"box": 0.4, "cup": 0.3, "fruit": 0.2, "frame": 0.1}
    # Clutter around where the optical axis meets the table top (its centre when it looks above).
    axis = camera.world_R_cam[:, 2]
    reach = (centre[1] - top_y) / -axis[1] if axis[1] < -0.05 else np.inf
    aim = centre + min(reach, table_z + table_d / 2 - centre[2]) * axis
    for _ in range(int(rng.integers(5, 16))):
        x = np.clip(aim[0] + rng.normal(0.0, 0.25), table_x - 0.45 * table_w, table_x + 0.45 * table_w)
        z = np.clip(aim[2] + rng.normal(0.0, 0.2), table_z - 0.45 * table_d, table_z + 0.45 * table_d)
        parts += makers[_choice(rng, weights)](float(x), float(z))
    return camera, parts, False


_BUILDERS: dict[str, Callable[[np.random.Generator, int, int], _Built]] = {
    "room": _room_scene,
    "corridor": _corridor_scene,
    "street": _street_scene,
    "open": _open_scene,
    "tabletop": _tabletop_scene,
}


def _lighting_and_sky(rng: np.random.Generator, outdoor: bool) -> tuple[_Lighting, _Sky]:
    """A random light (sun or overcast outdoors, a window-like directional light indoors), the
    sky and, mostly outdoors, fog of the horizon's colour."""
    elevation = np.radians(rng.uniform(15.0, 75.0) if outdoor else rng.uniform(20.0, 85.0))
    azimuth = rng.uniform(-np.pi, np.pi)
    to_light = np.array([np.cos(elevation) * np.sin(azimuth), np.sin(elevation), np.cos(elevation) * np.cos(azimuth)])
    tint = rng.uniform(0.85, 1.15, 3).astype(np.float32)
    overcast = outdoor and rng.random() < 0.3
    if overcast:
        sun, ambient = rng.uniform(0.05, 0.3), rng.uniform(0.7, 1.0)
        zenith = np.full(3, rng.uniform(150, 230), np.float32)
        horizon = zenith + rng.uniform(0, 25)
    else:
        sun, ambient = (
            (rng.uniform(0.55, 1.0), rng.uniform(0.25, 0.5))
            if outdoor
            else (rng.uniform(0.2, 0.7), rng.uniform(0.35, 0.75))
        )
        zenith = rng.uniform([170, 100, 40], [255, 190, 130]).astype(np.float32)
        horizon = rng.uniform([200, 190, 170], [255, 240, 230]).astype(np.float32)
    sky_tint = np.array([1.1, 1.0, 0.9], np.float32)
    noise_sheets = _mip_bank()["noise"]
    clouds = noise_sheets[int(rng.integers(len(noise_sheets)))][2]
    sky = _Sky(zenith, horizon, clouds, rng.uniform(0.0, 0.6) if outdoor and rng.random() < 0.6 else 0.0)
    fog = (
        _log_uniform(rng, 60.0, 2000.0)
        if outdoor and rng.random() < 0.6
        else (_log_uniform(rng, 30.0, 300.0) if rng.random() < 0.1 else np.inf)
    )
    lighting = _Lighting(
        to_light,
        (sun * tint).astype(np.float32),
        (ambient * tint * (sky_tint if outdoor else 1.0)).astype(np.float32),
        fog,
        horizon,
    )
    return lighting, sky


def _random_scene(rng: np.random.Generator, height: int, width: int, kind: str) -> _Scene:
    """A random scene of ``kind``; primitives that would hold the camera are left out."""
    camera, parts, outdoor = _BUILDERS[kind](rng, height, width)
    lighting, sky = _lighting_and_sky(rng, outdoor)
    kept = tuple(part for part in parts if not _contains(part, camera.centre, 0.15))
    return _Scene(camera, kept, lighting, sky)


def develop(rng: np.random.Generator, images: list[np.ndarray]) -> list[np.ndarray]:
    """(H, W, 3) uint8 BGR photos of rendered (H, W, 3) float32 radiance images of one scene, all
    developed alike (the views of a stereo pair): auto exposure of the first image to a mean grey
    level of 80-150, saturation scaled by 0.35-1 on 70% of draws, a Gaussian blur (sigma 0.3-1.2
    px) on 40%. No camera noise (:func:`_camera_effects` adds it)."""
    gain = np.float32(np.clip(rng.uniform(80.0, 150.0) / max(float(images[0].mean()), 1.0), 0.4, 3.0))
    photos = [np.clip(image * gain + 0.5, 0, 255).astype(np.uint8) for image in images]
    if rng.random() < 0.7:  # procedural colours are more saturated than the world's
        saturation = rng.uniform(0.35, 1.0)
        greys = [cv2.cvtColor(cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR) for photo in photos]
        photos = [cv2.addWeighted(photo, saturation, grey, 1.0 - saturation, 0.0) for photo, grey in zip(photos, greys)]
    if rng.random() < 0.4:
        sigma = rng.uniform(0.3, 1.2)
        photos = [cv2.GaussianBlur(photo, (0, 0), sigma) for photo in photos]
    return photos


def _camera_effects(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 BGR photo of the rendered (H, W, 3) float32 radiance: :func:`develop`, then
    the stereo data's camera response (gain, gamma, vignetting, noise; specular blobs on 5%)."""
    photo = develop(rng, [image])[0]
    return _camera_response(rng, photo, specular=rng.random() < 0.05)


# ---------------------------------------------------------------------------------------------
# Public entry point


def random_mono_scene(rng: np.random.Generator, *, height: int, width: int, kind: str | None = None) -> MonoSample:
    """A random procedural 3D scene rendered by a pinhole camera, with exact inverse depth.

    Parameters
    ----------
    rng : the only source of randomness (deterministic given its state)
    height, width : image size in px
    kind : a scene kind ('room', 'corridor', 'street', 'open', 'tabletop'); None draws one with
        the probabilities of :data:`_KIND_PROBABILITIES`
    Returns
    -------
    MonoSample : image (H, W, 3) uint8 BGR; inverse_depth (H, W) float32 1/z in 1/m, 0 for the sky;
        valid (H, W) bool (all True: every pixel sees a surface or the sky)
    Convention: see the module docstring (z is the camera-frame depth, not the ray length).
    """
    if height < 1 or width < 1:
        raise ValueError(f"need a positive size, got {height}x{width}")
    if kind is not None and kind not in _BUILDERS:
        raise ValueError(f"unknown scene kind {kind!r}; expected one of {sorted(_BUILDERS)} or None")
    scene = _random_scene(rng, height, width, _choice(rng, _KIND_PROBABILITIES) if kind is None else kind)
    return _render_sample(rng, scene)


def _render_sample(rng: np.random.Generator, scene: _Scene) -> MonoSample:
    """Trace and shade ``scene``, then apply camera effects drawn from ``rng``."""
    depth, owner = _trace(scene.camera, scene.primitives)
    image = _camera_effects(rng, _shade(scene, depth, owner))
    inverse_depth = np.where(owner >= 0, 1.0 / depth, 0.0).astype(np.float32)
    return MonoSample(image, inverse_depth, np.isfinite(inverse_depth))
