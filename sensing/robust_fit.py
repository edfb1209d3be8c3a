"""Robust (soft-L1) nonlinear least squares for the pipeline's small fits.

The pipeline fits a handful of parameters at a time (the scale and shift of the mono disparity,
the three drift angles of the right camera) to a few thousand residuals with outliers. It
minimises scipy's ``loss="soft_l1"`` objective, ``sum(f² · 2(sqrt(1 + (r/f)²) - 1))``, by
Gauss-Newton with the loss's exact curvature (Newton's method where the residuals are linear in
the parameters), a forward-difference Jacobian and step halving: the same optimum as
``scipy.optimize.least_squares``, without importing scipy.optimize and scipy.linalg, which alone
add about 46 MB to the resident memory of a process that must fit a 256 MB budget (``configs/``).
"""

from collections.abc import Callable

import numpy as np

#: Relative forward-difference step of the Jacobian (scipy's "2-point" default).
_DIFFERENCE_STEP = float(np.sqrt(np.finfo(np.float64).eps))
#: Step halvings tried before a Gauss-Newton step is given up as not lowering the cost.
_MAX_HALVINGS = 30


def soft_l1_cost(residuals: np.ndarray, f_scale: float) -> float:
    """``sum(f² · 2(sqrt(1 + (r/f)²) - 1))`` of (N,) residuals: quadratic below ``f_scale``, linear
    beyond it, so outliers pull with a bounded force."""
    return float(np.sum(2.0 * f_scale**2 * (np.sqrt(1.0 + (residuals / f_scale) ** 2) - 1.0)))


def soft_l1_least_squares(
    residuals: Callable[[np.ndarray], np.ndarray],
    start: np.ndarray,
    f_scale: float,
    *,
    max_iterations: int = 100,
    tolerance: float = 1e-8,
) -> np.ndarray:
    """The (P,) parameters minimising :func:`soft_l1_cost` of ``residuals(parameters)`` ((N,)
    float64, N >= P), starting from ``start``.

    With ``s = 1 + (r/f)²`` per residual and J the Jacobian, each iteration solves
    ``(Jᵀ diag(s^-1.5) J) step = -Jᵀ (s^-0.5 · r)`` (the cost's gradient and, up to the residuals'
    own curvature, its Hessian; the soft-L1 loss is convex, so the matrix is positive
    semi-definite) and halves the step until the cost does not rise; it stops when
    the cost falls by less than ``tolerance`` relative to it or every parameter moves by less than
    ``tolerance`` relative to its size (scipy's ``ftol`` and ``xtol``), when no halving lowers the
    cost, or after ``max_iterations``.
    """
    if not f_scale > 0:
        raise ValueError(f"f_scale must be positive, got {f_scale}")
    parameters = np.array(start, dtype=np.float64)
    current = np.asarray(residuals(parameters), dtype=np.float64)
    cost = soft_l1_cost(current, f_scale)
    for _ in range(max_iterations):
        jacobian = _forward_difference_jacobian(residuals, parameters, current)
        spread = 1.0 + (current / f_scale) ** 2
        slope, curvature = spread**-0.5, spread**-1.5
        hessian = (jacobian * curvature[:, None]).T @ jacobian
        step = np.linalg.lstsq(hessian, -(jacobian.T @ (slope * current)), rcond=None)[0]
        for _ in range(_MAX_HALVINGS):
            candidate = parameters + step
            moved = np.asarray(residuals(candidate), dtype=np.float64)
            moved_cost = soft_l1_cost(moved, f_scale)
            if moved_cost <= cost:
                break
            step = 0.5 * step
        else:
            return parameters
        converged = cost - moved_cost <= tolerance * cost or np.all(
            np.abs(step) <= tolerance * (np.abs(candidate) + tolerance)
        )
        parameters, current, cost = candidate, moved, moved_cost
        if converged:
            break
    return parameters


def _forward_difference_jacobian(
    residuals: Callable[[np.ndarray], np.ndarray], parameters: np.ndarray, at: np.ndarray
) -> np.ndarray:
    """(N, P) Jacobian of ``residuals`` at ``parameters`` (whose residuals are ``at``), with steps of
    :data:`_DIFFERENCE_STEP` times max(1, |parameter|)."""
    columns = []
    for index, value in enumerate(parameters):
        step = _DIFFERENCE_STEP * max(1.0, abs(float(value)))
        shifted = parameters.copy()
        shifted[index] = value + step
        columns.append((np.asarray(residuals(shifted), dtype=np.float64) - at) / step)
    return np.stack(columns, axis=1)
