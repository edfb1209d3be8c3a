"""Rectified stereo pairs rendered from the procedural 3D scenes of :mod:`models.data.mono_scenes`.

The layered pairs of :mod:`models.data.synthetic` are flat sheets; these are rooms, corridors,
streets and tabletops with slanted, curved and untextured surfaces lit by one light (so shading
gradients and cast shadows are the only cue on a plain surface), as in the Middlebury scenes. The
left camera is the scene's; the right one is the same camera moved by a baseline ``b`` metres
along its own x axis, so the pair is rectified by construction and the disparity of a pixel at
camera depth ``z`` is ``focal_px * b / z`` (exact per pixel, both views; the sky is at 0). The
baseline is drawn per scene so the 99th percentile of the left disparity is 15-100 % of
``max_disparity_px``. Both views are developed alike (exposure, saturation, blur:
:func:`models.data.mono_scenes.develop`); the per-camera differences (gain, gamma, vignetting,
noise, vertical offset) are left to training, as for the real crops.

Rendering costs about 0.3 s per view at 384x512 on one core, too slow to draw pairs during
training, so a run renders a fixed, seeded set of scenes once (:func:`render_stereo_scenes`) and draws random
crops of them like real scenes (:func:`models.data.real_crops.random_crop`).

Convention: (H, W, 3) uint8 BGR views, disparity ``x_left - x_right >= 0`` in px.
"""

import dataclasses
from concurrent.futures import ProcessPoolExecutor
from functools import partial

import numpy as np
from tqdm import tqdm

from models.data.mono_scenes import _KIND_PROBABILITIES, _contains, _random_scene, _shade, _trace, develop
from models.data.real_crops import LoadedScene
from models.data.synthetic import _SCENE_RANGE_FRACTION, _choice

#: Draws of a scene before giving up (a scene is redrawn when the right camera would sit inside an
#: object or the left view sees no surface at all).
_ATTEMPTS = 20
#: Clearance of the right camera from every object, metres.
_CLEARANCE_M = 0.05


def _disparity(depth: np.ndarray, owner: np.ndarray, focal_baseline: float) -> np.ndarray:
    """(H, W) float32 px: ``focal_baseline / depth`` on surfaces, 0 on the sky (owner < 0)."""
    return np.where(owner >= 0, focal_baseline / depth, 0.0).astype(np.float32)


def render_stereo_scene(
    rng: np.random.Generator, *, height: int, width: int, max_disparity_px: float, kind: str | None = None, name: str = "rendered"
) -> LoadedScene:
    """One random 3D scene rendered as a rectified pair, with exact disparity of both views.

    Parameters
    ----------
    rng : the only source of randomness (deterministic given its state)
    height, width : view size, px
    max_disparity_px : the 99th percentile of the left disparity is drawn in
        [0.15, 1] * max_disparity_px (the nearest 1 % may exceed it)
    kind : scene kind of :mod:`models.data.mono_scenes` ('room', 'corridor', 'street', 'open',
        'tabletop'); None draws one
    Returns
    -------
    LoadedScene : left, right (H, W, 3) uint8 BGR; disparity, right_disparity (H, W) float32 px,
        all finite (0 on the sky)
    """
    if height < 1 or width < 1 or not max_disparity_px > 0:
        raise ValueError(f"need a positive size and max_disparity_px, got {height}x{width}, {max_disparity_px}")
    if kind is not None and kind not in _KIND_PROBABILITIES:
        raise ValueError(f"unknown scene kind {kind!r}; expected one of {sorted(_KIND_PROBABILITIES)} or None")
    for _ in range(_ATTEMPTS):
        scene = _random_scene(rng, height, width, _choice(rng, _KIND_PROBABILITIES) if kind is None else kind)
        left_depth, left_owner = _trace(scene.camera, scene.primitives)
        inverse_depth = 1.0 / left_depth[left_owner >= 0]
        if inverse_depth.size == 0:
            continue
        target_px = rng.uniform(*_SCENE_RANGE_FRACTION) * max_disparity_px
        baseline_m = target_px / (scene.camera.focal_px * float(np.percentile(inverse_depth, 99)))
        right_centre = scene.camera.centre + baseline_m * scene.camera.world_R_cam[:, 0]
        if any(_contains(part, right_centre, _CLEARANCE_M) for part in scene.primitives):
            continue
        right_scene = dataclasses.replace(scene, camera=dataclasses.replace(scene.camera, centre=right_centre))
        right_depth, right_owner = _trace(right_scene.camera, right_scene.primitives)
        left, right = develop(rng, [_shade(scene, left_depth, left_owner), _shade(right_scene, right_depth, right_owner)])
        focal_baseline = scene.camera.focal_px * baseline_m
        return LoadedScene(
            name, left, right, _disparity(left_depth, left_owner, focal_baseline), _disparity(right_depth, right_owner, focal_baseline)
        )
    raise RuntimeError(f"no usable scene in {_ATTEMPTS} draws")


def _render_indexed(index: int, *, seed: int, height: int, width: int, max_disparity_px: float) -> LoadedScene:
    """Scene ``index`` of :func:`render_stereo_scenes`: its own generator, seeded by (seed, index)."""
    rng = np.random.default_rng([seed, index])
    return render_stereo_scene(rng, height=height, width=width, max_disparity_px=max_disparity_px, name=f"rendered/{index}")


def render_stereo_scenes(
    seed: int, count: int, *, height: int, width: int, max_disparity_px: float, workers: int = 1, progress: bool = False
) -> list[LoadedScene]:
    """``count`` scenes of :func:`render_stereo_scene`, scene ``i`` seeded by ``(seed, i)``: the
    same list for any ``workers`` (processes). Memory: about 14 bytes per pixel per scene
    (384x512: 2.8 MB)."""
    if count < 0 or workers < 1:
        raise ValueError(f"need count >= 0 and workers >= 1, got {count}, {workers}")
    render = partial(_render_indexed, seed=seed, height=height, width=width, max_disparity_px=max_disparity_px)
    bar = partial(tqdm, total=count, desc="rendering stereo scenes", disable=not progress, leave=False)
    if workers == 1 or count < 2:
        return list(bar(map(render, range(count))))
    with ProcessPoolExecutor(workers) as pool:
        return list(bar(pool.map(render, range(count))))
