"""Online recalibration: the drift of the right camera, estimated from one factory-rectified pair.

Model (see :mod:`calibration.drift` for the convention). With the factory rectification,
a right camera that turned by ``R_drift`` about its optical centre shows every point at
``H = K Δ K^-1`` of where a perfectly calibrated camera would, where ``K`` is the rectified
intrinsics and ``Δ = R2 R_drift R2^T`` is the drift in the rectified right frame. The baseline
stays the factory's, so after undoing ``Δ`` every match has the same row in both views: the fit
minimises the vertical disparity of feature matches over the three angles of ``Δ``.

For a small ``Δ = (ωx, ωy, ωz)`` (radians) a right point (x, y) relative to the principal
point (f the focal length in pixels) moves vertically by::

    dy ≈ -ωx (f + y²/f) + ωy x y / f + ωz x

Pitch (ωx) and roll (ωz) are well observed. Yaw (ωy) mainly shifts every point sideways by
f·tan(ωy), which looks exactly like a change of scene depth; its only trace in the vertical
disparity is the small keystone term ``x y / f``, which vanishes on the image axes. The fitted
yaw is therefore applied only when the keystone measured it (its standard error, from the spread
of the residuals and how far the matches reach into the image corners, is at most
``yaw_max_se_deg``; or the factory yaw leaves the rows visibly misaligned and the fitted yaw is
``yaw_min_sigma`` standard errors from zero) and it keeps the matches at positive disparity.
The sign of disparity is the second witness: points far away have disparity near 0, so a factory
yaw that leaves many matches at negative disparity means an uncorrected toe-in. The least yaw
that puts them at positive disparity is then applied, a lower bound reported as such, if the
keystone fit agrees with it; swapped views need far more toe-in than the keystone shows, keep
the factory yaw and are stopped by the swapped check. Otherwise the factory yaw is kept,
reported as unobserved with its standard error.

Steps: features on both views (ORB by default: chosen by measurement, see
``benchmarks/results/rectify_detectors.json``), Lowe's ratio test and a mutual check, a
sub-pixel refinement of each right point by Lucas-Kanade tracking of the left patch, RANSAC
on the linearised model, then robust (soft-L1) least squares on the exact model.
"""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from calibration.drift import rotation_from_rotvec_deg, rotvec_deg_from_rotation
from sensing.config import RectificationConfig
from sensing.robust_fit import soft_l1_least_squares

#: Grid (columns, rows) over the left view for the coverage measure.
COVERAGE_GRID = (8, 6)
#: RANSAC hypotheses (minimal samples of the linearised model).
RANSAC_ITERATIONS = 300
#: A Lucas-Kanade refinement moving a right point further than this (px) from its descriptor
#: match found another patch: the match is dropped.
MAX_REFINEMENT_PX = 3.0
#: ORB pyramid levels (scale factor 1.2): a drift of a few degrees does not change the scale
#: between the views, so a short pyramid finds as many matches in 60% of the time of the usual 8.
ORB_LEVELS = 3
#: Side (px) of the window Lucas-Kanade tracks a left patch with to place its right match.
LK_WINDOW_PX = 21
#: Horizontal disparity (px) below which an inlier counts as lying at negative disparity.
NEGATIVE_DISPARITY_PX = -1.0


@dataclass(frozen=True, eq=False)
class FeatureMatches:
    """Corresponding points of a pair: (N, 2) float64 pixel coordinates (x, y) in each view."""

    left_px: np.ndarray
    right_px: np.ndarray

    def __len__(self) -> int:
        return len(self.left_px)


@dataclass(frozen=True, eq=False)
class DriftEstimate:
    """The drift of the right camera found in one pair, and whether to trust it.

    R_drift : (3, 3) rotation of the right camera in its own axes (see :mod:`calibration.drift`);
        the identity for the axes not estimated
    rotation_rectified : the same drift in the rectified right frame (``Δ``)
    yaw_observed : yaw was measured by the fit and applied
    yaw_correction : how the applied yaw was found: ``fitted`` (observed), ``sign_bound`` (not
        observed: the least toe-in correction that puts the matches at positive disparity, a
        lower bound on the true one) or ``factory`` (not observed: the factory yaw is kept)
    se_deg : (3,) standard errors of [pitch, yaw, roll] in degrees as the fit measured them
        (in the rectified frame); for an unobserved yaw, its uncertainty
    residual_before_px, residual_after_px : |vertical disparity| of the inliers under the
        factory rectification and after the applied correction: ``{"median", "p95"}`` in pixels
    residual_fit_px : the same under the full fit, yaw included even when not applied (how
        well the rotation model explains the matches)
    matches : mutual ratio-test matches; inliers : those within ``inlier_px`` after correction
    coverage : fraction of the left view's grid cells holding an inlier
    negative_fraction : fraction of inliers at negative disparity after correction
    disparities_px : (inliers,) horizontal disparities x_left - x_right after correction
    reasons : why the estimate is unreliable (empty when reliable)
    """

    R_drift: np.ndarray
    rotation_rectified: np.ndarray
    yaw_observed: bool
    yaw_correction: str
    se_deg: np.ndarray
    residual_before_px: dict[str, float]
    residual_after_px: dict[str, float]
    residual_fit_px: dict[str, float]
    matches: int
    inliers: int
    coverage: float
    negative_fraction: float
    disparities_px: np.ndarray = field(repr=False)
    reasons: list[str] = field(default_factory=list)

    @property
    def reliable(self) -> bool:
        return not self.reasons

    @property
    def yaw_se_deg(self) -> float:
        """Standard error of the yaw the data supports (degrees)."""
        return float(self.se_deg[1])

    @property
    def rotvec_deg(self) -> np.ndarray:
        """(3,) [pitch, yaw, roll] of ``R_drift`` in degrees (right-camera axes)."""
        return rotvec_deg_from_rotation(self.R_drift)

    def to_dict(self) -> dict[str, Any]:
        return {
            "reliable": self.reliable,
            "drift_rotvec_deg": [round(float(a), 5) for a in self.rotvec_deg],
            "yaw_observed": self.yaw_observed,
            "yaw_correction": self.yaw_correction,
            "drift_se_deg": [_finite_or_none(a, 5) for a in self.se_deg],
            "yaw_se_deg": _finite_or_none(self.yaw_se_deg, 5),
            "residual_vertical_px": self.residual_after_px,
            "residual_vertical_before_px": self.residual_before_px,
            "residual_vertical_fit_px": self.residual_fit_px,
            "matches": self.matches,
            "inliers": self.inliers,
            "coverage": round(self.coverage, 4),
            "negative_disparity_fraction": round(self.negative_fraction, 4),
            "reasons": list(self.reasons),
        }


def _finite_or_none(value: float, digits: int) -> float | None:
    return round(float(value), digits) if np.isfinite(value) else None


def to_grey(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) BGR or (H, W) uint8 -> (H, W) uint8 grey."""
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def match_features(
    left: np.ndarray, right: np.ndarray, *, detector: str = "orb", max_features: int = 1000, ratio: float = 0.8
) -> FeatureMatches:
    """Mutual, ratio-tested feature matches with sub-pixel right positions.

    left, right : (H, W) uint8 grey views
    detector : ``orb``, ``akaze`` or ``sift`` (at most ``max_features`` per view)
    ratio : Lowe's test: best distance below ``ratio`` times the second best
    Returns the matches; empty when a view has no features (black, flat).
    """
    # One thread per view: OpenCV's detectors barely use a second core by themselves.
    with ThreadPoolExecutor(max_workers=2) as pool:
        (keys_l, desc_l), (keys_r, desc_r) = pool.map(lambda view: _detect(view, detector, max_features), (left, right))
    empty = FeatureMatches(np.zeros((0, 2)), np.zeros((0, 2)))
    if desc_l is None or desc_r is None or len(keys_l) < 2 or len(keys_r) < 2:
        return empty
    matcher = cv2.BFMatcher(cv2.NORM_L2 if detector == "sift" else cv2.NORM_HAMMING)
    candidates = [
        (best.queryIdx, best.trainIdx)
        for best, second in (m for m in matcher.knnMatch(desc_l, desc_r, k=2) if len(m) == 2)
        if best.distance < ratio * second.distance
    ]
    if not candidates:
        return empty
    # The mutual check needs the best left match of the right features that were matched only.
    matched_right = np.unique([j for _, j in candidates])
    best_left = {int(matched_right[m.queryIdx]): m.trainIdx for m in matcher.match(desc_r[matched_right], desc_l)}
    pairs = [(i, j) for i, j in candidates if best_left.get(j) == i]
    if not pairs:
        return empty
    left_px = np.float32([keys_l[i].pt for i, _ in pairs])
    right_px = np.float32([keys_r[j].pt for _, j in pairs])
    refined, status, _ = cv2.calcOpticalFlowPyrLK(
        left, right, left_px.reshape(-1, 1, 2), right_px.reshape(-1, 1, 2).copy(),
        winSize=(LK_WINDOW_PX, LK_WINDOW_PX), maxLevel=1, flags=cv2.OPTFLOW_USE_INITIAL_FLOW,
        criteria=(cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 30, 0.01),
    )
    refined = refined.reshape(-1, 2)
    keep = (status.ravel() == 1) & (np.linalg.norm(refined - right_px, axis=1) <= MAX_REFINEMENT_PX)
    return FeatureMatches(left_px[keep].astype(np.float64), refined[keep].astype(np.float64))


def correct_right_points(right_px: np.ndarray, K: np.ndarray, rotation_rectified: np.ndarray) -> np.ndarray:
    """Where (N, 2) observed right points would be without the drift ``Δ``: ``K Δ^T K^-1 x``."""
    H = K @ rotation_rectified.T @ np.linalg.inv(K)
    mapped = np.column_stack([right_px, np.ones(len(right_px))]) @ H.T
    return mapped[:, :2] / mapped[:, 2:]


def estimate_drift(
    left: np.ndarray,
    right: np.ndarray,
    K: np.ndarray,
    settings: RectificationConfig,
    *,
    R_rect_right: np.ndarray | None = None,
) -> DriftEstimate:
    """Estimate the right camera's drift from a factory-rectified pair.

    Parameters
    ----------
    left, right : (H, W[, 3]) uint8 views rectified with the factory calibration
    K : (3, 3) rectified intrinsics shared by both views (``P1[:, :3]``), pixels
    settings : detector, thresholds and the reliability rules
    R_rect_right : (3, 3) the factory rectifying rotation of the right camera (``R2``), to
        express the drift in the right camera's own axes; identity when None
    """
    R2 = np.eye(3) if R_rect_right is None else R_rect_right
    left, right = to_grey(left), to_grey(right)
    matches = match_features(left, right, detector=settings.detector, max_features=settings.max_features,
                             ratio=settings.ratio)
    focal = float(K[0, 0])
    # No drift within the bound moves a point vertically by more than this: farther matches are wrong.
    reach_px = focal * np.tan(np.radians(settings.max_drift_deg)) * 1.5 + 2.0 * settings.inlier_px
    plausible = np.abs(matches.right_px[:, 1] - matches.left_px[:, 1]) <= reach_px
    points_l, points_r = matches.left_px[plausible], matches.right_px[plausible]

    omega = np.zeros(3)
    se_deg = np.full(3, np.inf)
    inliers = np.zeros(len(points_l), bool)
    if len(points_l) >= 3:
        # Yaw is always fitted, as a nuisance parameter if need be: its keystone would otherwise
        # bias pitch and roll. It is applied only when measured precisely enough.
        omega, inliers = _fit(points_l, points_r, K, settings.inlier_px)
        se_deg = _standard_errors_deg(points_l[inliers], points_r[inliers], K, omega)
    inlier_l, inlier_r = points_l[inliers], points_r[inliers]
    fit_residual = np.abs(_vertical_residuals(omega, inlier_l, inlier_r, K))
    omega, yaw_correction = _choose_yaw(omega, se_deg, inlier_l, inlier_r, K, settings)
    yaw_observed = yaw_correction == "fitted"
    rotation_rectified = rotation_from_rotvec_deg(np.degrees(omega))
    corrected = correct_right_points(inlier_r, K, rotation_rectified)
    disparities = inlier_l[:, 0] - corrected[:, 0]
    estimate = DriftEstimate(
        R_drift=R2.T @ rotation_rectified @ R2,
        rotation_rectified=rotation_rectified,
        yaw_observed=yaw_observed,
        yaw_correction=yaw_correction,
        se_deg=se_deg,
        residual_before_px=_spread(np.abs(inlier_r[:, 1] - inlier_l[:, 1])),
        residual_after_px=_spread(np.abs(corrected[:, 1] - inlier_l[:, 1])),
        residual_fit_px=_spread(fit_residual),
        matches=len(matches),
        inliers=int(inliers.sum()),
        coverage=_coverage(inlier_l, left.shape),
        negative_fraction=_negative_fraction(inlier_l, inlier_r, K, omega),
        disparities_px=disparities,
    )
    estimate.reasons.extend(_unreliable_reasons(estimate, settings, focal, left.shape))
    return estimate


def _detect(image: np.ndarray, detector: str, max_features: int) -> tuple[list, np.ndarray | None]:
    if detector == "orb":
        finder = cv2.ORB_create(nfeatures=max_features, fastThreshold=10, nlevels=ORB_LEVELS)
    elif detector == "akaze":
        finder = cv2.xfeatures2d_AKAZE.create(threshold=5e-4)
    elif detector == "sift":
        finder = cv2.SIFT_create(nfeatures=max_features)
    else:
        raise ValueError(f"detector must be orb, akaze or sift, got {detector!r}")
    keys, descriptors = finder.detectAndCompute(image, None)
    if descriptors is not None and len(keys) > max_features:
        strongest = np.argsort([-k.response for k in keys])[:max_features]
        keys, descriptors = [keys[i] for i in strongest], descriptors[strongest]
    return list(keys), descriptors


def _design(points_r: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(N, 3) linearised vertical motion per radian of (ωx, ωy, ωz) at the right points."""
    f = K[0, 0]
    x = points_r[:, 0] - K[0, 2]
    y = points_r[:, 1] - K[1, 2]
    return np.stack([-(f + y * y / f), x * y / f, x], axis=1)


def _vertical_residuals(omega: np.ndarray, points_l: np.ndarray, points_r: np.ndarray, K: np.ndarray) -> np.ndarray:
    rotation = cv2.Rodrigues(omega.reshape(3, 1))[0]
    return correct_right_points(points_r, K, rotation)[:, 1] - points_l[:, 1]


def _fit(points_l: np.ndarray, points_r: np.ndarray, K: np.ndarray, inlier_px: float) -> tuple[np.ndarray, np.ndarray]:
    """RANSAC on the linear model, then robust least squares on the exact one.

    Returns ω (3,) radians in the rectified right frame and the (N,) inlier mask
    (|vertical residual| <= ``inlier_px`` under ω).
    """
    A = _design(points_r, K)
    b = points_r[:, 1] - points_l[:, 1]
    samples = np.random.default_rng(0).integers(0, len(b), (RANSAC_ITERATIONS, 3))
    samples = samples[(samples[:, 0] != samples[:, 1]) & (samples[:, 0] != samples[:, 2]) & (samples[:, 1] != samples[:, 2])]
    A_s, b_s = A[samples], b[samples]
    solvable = np.abs(np.linalg.det(A_s)) > 1e-9 * np.abs(A_s).max(axis=(1, 2)) ** 3
    if not solvable.any():
        return np.zeros(3), np.zeros(len(b), bool)
    hypotheses = np.linalg.solve(A_s[solvable], b_s[solvable][..., None])[..., 0]
    counts = (np.abs(b[None, :] - hypotheses @ A.T) <= 2.0 * inlier_px).sum(axis=1)
    omega = hypotheses[np.argmax(counts)]
    chosen = np.abs(_vertical_residuals(omega, points_l, points_r, K)) <= 2.0 * inlier_px
    if chosen.sum() >= 3:
        chosen_l, chosen_r = points_l[chosen], points_r[chosen]
        omega = soft_l1_least_squares(lambda w: _vertical_residuals(w, chosen_l, chosen_r, K), omega, 0.25 * inlier_px)
    return omega, np.abs(_vertical_residuals(omega, points_l, points_r, K)) <= inlier_px


def _standard_errors_deg(points_l: np.ndarray, points_r: np.ndarray, K: np.ndarray, omega: np.ndarray) -> np.ndarray:
    """(3,) standard errors (degrees) of (ωx, ωy, ωz): robust residual spread (1.4826 MAD)
    times the square roots of the diagonal of (AᵀA)⁻¹; inf when fewer than 6 inliers."""
    if len(points_l) < 6:
        return np.full(3, np.inf)
    residuals = _vertical_residuals(omega, points_l, points_r, K)
    sigma = max(1.4826 * float(np.median(np.abs(residuals - np.median(residuals)))), 1e-3)
    A = _design(points_r, K)
    normal = A.T @ A
    if np.linalg.cond(normal) > 1e12:
        return np.full(3, np.inf)
    return np.degrees(sigma * np.sqrt(np.diag(np.linalg.inv(normal))))


def _negative_fraction(points_l: np.ndarray, points_r: np.ndarray, K: np.ndarray, omega: np.ndarray) -> float:
    """Fraction of matches at negative disparity once ω is undone."""
    if len(points_l) == 0:
        return 0.0
    corrected = correct_right_points(points_r, K, cv2.Rodrigues(omega.reshape(3, 1))[0])
    return float(np.mean(points_l[:, 0] - corrected[:, 0] < NEGATIVE_DISPARITY_PX))


def _choose_yaw(
    omega: np.ndarray, se_deg: np.ndarray, points_l: np.ndarray, points_r: np.ndarray, K: np.ndarray,
    settings: RectificationConfig,
) -> tuple[np.ndarray, str]:
    """The drift to apply, (3,) radians, and how its yaw was found (see :class:`DriftEstimate`).

    The fitted yaw is applied when the keystone measured it and it keeps the inliers at
    positive disparity: its standard error is small, or keeping the factory yaw leaves the rows
    visibly misaligned and the fitted yaw is many standard errors from zero (a keystone is
    trusted only where it is needed: other small model errors, such as a principal point off
    by a few pixels, also leave a keystone-like trace, and a yaw error shifts all disparities).
    Otherwise
    the factory yaw is kept, unless that leaves the inliers at negative disparity: then the
    cameras toe in, and the least yaw that puts all but a few of them at positive disparity
    is applied, provided the fit does not contradict it (swapped views need a toe-in far
    beyond what the keystone shows, and keep the factory yaw and their negative disparities).
    """
    se_yaw = float(se_deg[1])
    allowed = settings.max_negative_fraction
    kept = omega * [1.0, 0.0, 1.0]
    if _negative_fraction(points_l, points_r, K, omega) <= allowed and (
        se_yaw <= settings.yaw_max_se_deg
        or (abs(float(np.degrees(omega[1]))) >= settings.yaw_min_sigma * se_yaw and _rows_misaligned(kept, points_l, points_r, K, settings))
    ):
        return omega, "fitted"
    if _negative_fraction(points_l, points_r, K, kept) <= allowed or not np.isfinite(se_yaw):
        return kept, "factory"
    bound = _least_toe_in_yaw(points_l, points_r, K, kept, 0.5 * allowed, np.radians(settings.max_drift_deg))
    if bound is None or abs(np.degrees(bound - omega[1])) > settings.yaw_bound_sigma * se_yaw:
        return kept, "factory"
    return np.array([kept[0], bound, kept[2]]), "sign_bound"


def _rows_misaligned(
    omega: np.ndarray, points_l: np.ndarray, points_r: np.ndarray, K: np.ndarray, settings: RectificationConfig
) -> bool:
    """Whether correcting by ``omega`` leaves more vertical disparity than the reliability rules allow."""
    residual = np.abs(_vertical_residuals(omega, points_l, points_r, K))
    if len(residual) == 0:
        return False
    median, p95 = np.percentile(residual, [50, 95])
    return bool(median > settings.max_residual_median_px or p95 > settings.max_residual_p95_px)


def _least_toe_in_yaw(
    points_l: np.ndarray, points_r: np.ndarray, K: np.ndarray, omega: np.ndarray, quantile: float, reach_rad: float
) -> float | None:
    """The yaw (radians), closest to ``omega``'s, at which the ``quantile`` of the disparities
    is zero; None when no yaw within ``reach_rad`` of it gets there."""

    def low_disparity(yaw: float) -> float:
        rotation = cv2.Rodrigues(np.array([omega[0], yaw, omega[2]]).reshape(3, 1))[0]
        corrected = correct_right_points(points_r, K, rotation)
        return float(np.quantile(points_l[:, 0] - corrected[:, 0], quantile))

    start = float(omega[1])
    for end in (start + reach_rad, start - reach_rad):
        if low_disparity(start) * low_disparity(end) < 0:
            return _bisect(low_disparity, start, end, tolerance=1e-7)
    return None


def _bisect(function: Callable[[float], float], low: float, high: float, tolerance: float) -> float:
    """A point within ``tolerance`` of where ``function`` changes sign between ``low`` and ``high``
    (whose values have opposite signs). Bisection, not a faster root finder: ``function`` here
    is a quantile of the matches, a step function that gives secants nothing to work with."""
    at_low = function(low)
    while abs(high - low) > tolerance:
        middle = 0.5 * (low + high)
        at_middle = function(middle)
        if at_middle == 0.0:
            return middle
        if (at_middle < 0) == (at_low < 0):
            low, at_low = middle, at_middle
        else:
            high = middle
    return 0.5 * (low + high)


def _coverage(points: np.ndarray, shape_hw: tuple[int, ...]) -> float:
    columns, rows = COVERAGE_GRID
    if len(points) == 0:
        return 0.0
    cx = np.clip((points[:, 0] / shape_hw[1] * columns).astype(int), 0, columns - 1)
    cy = np.clip((points[:, 1] / shape_hw[0] * rows).astype(int), 0, rows - 1)
    return len(set(zip(cx.tolist(), cy.tolist()))) / (columns * rows)


def _spread(values: np.ndarray) -> dict[str, float]:
    if len(values) == 0:
        return {"median": None, "p95": None}
    median, p95 = np.percentile(values, [50, 95])
    return {"median": round(float(median), 4), "p95": round(float(p95), 4)}


def _alignment_uncertainty_px(se_deg: np.ndarray, focal_px: float, shape_hw: tuple[int, ...]) -> float:
    """Two standard errors of the vertical alignment at the image corners (px) from the
    pitch and roll uncertainty: pitch moves a corner row by f + (H/2)²/f px per radian, roll by W/2."""
    half_h, half_w = shape_hw[0] / 2, shape_hw[1] / 2
    se_pitch, _, se_roll = np.radians(se_deg)
    return float(2.0 * np.hypot(se_pitch * (focal_px + half_h * half_h / focal_px), se_roll * half_w))


def _unreliable_reasons(
    estimate: DriftEstimate, settings: RectificationConfig, focal_px: float, shape_hw: tuple[int, ...]
) -> list[str]:
    reasons = []
    if estimate.inliers < settings.min_inliers:
        reasons.append(
            f"only {estimate.inliers} of {estimate.matches} feature matches agree on one drift "
            f"(need {settings.min_inliers})"
        )
        return reasons
    ratio = estimate.inliers / max(estimate.matches, 1)
    if ratio < settings.min_inlier_ratio:
        reasons.append(
            f"only {100 * ratio:.0f}% of {estimate.matches} feature matches agree on one drift "
            f"(need {100 * settings.min_inlier_ratio:.0f}%)"
        )
    if estimate.coverage < settings.min_coverage:
        reasons.append(
            f"the agreeing matches cover {100 * estimate.coverage:.0f}% of the image "
            f"(need {100 * settings.min_coverage:.0f}%)"
        )
    for label, residual in (
        ("the rotation model leaves", estimate.residual_fit_px),
        ("the applied correction (factory yaw kept) leaves", estimate.residual_after_px),
    ):
        if residual["median"] > settings.max_residual_median_px or residual["p95"] > settings.max_residual_p95_px:
            reasons.append(
                f"{label} {residual['median']:.2f} px median, {residual['p95']:.2f} px p95 of vertical disparity "
                f"(allowed {settings.max_residual_median_px} / {settings.max_residual_p95_px} px)"
            )
            break
    uncertainty = _alignment_uncertainty_px(estimate.se_deg, focal_px, shape_hw)
    if uncertainty > settings.max_alignment_uncertainty_px:
        reasons.append(
            f"pitch and roll are too uncertain: rows may still be off by {uncertainty:.2f} px at the image corners "
            f"(two standard errors; allowed {settings.max_alignment_uncertainty_px} px)"
        )
    angle = float(np.linalg.norm(estimate.rotvec_deg))
    if angle > settings.max_drift_deg:
        reasons.append(f"the estimated drift of {angle:.2f} deg exceeds the plausible {settings.max_drift_deg} deg")
    if estimate.negative_fraction > settings.max_negative_fraction:
        toe_in = np.degrees(np.arctan(-np.percentile(estimate.disparities_px, 5) / focal_px))
        reasons.append(
            f"{100 * estimate.negative_fraction:.0f}% of the matches lie at negative disparity after correction: "
            f"the cameras toe in by at least {toe_in:.2f} deg of uncorrected yaw, or the views do not form a pair"
        )
    return reasons
