"""Numerical gradients by finite differences, and how far analytic ones are from them.

Everything here runs in float64: in float32 the rounding error of a finite
difference (about 1e-7 * |cost| / h) would swamp what we want to see.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from threadpoolctl import threadpool_limits

from . import model

METHODS = ("centred", "forward")


def numerical_gradients(
    cost_fn: Callable[[np.ndarray, np.ndarray], float],
    W: np.ndarray,
    b: np.ndarray,
    h: float = 1e-6,
    method: str = "centred",
) -> tuple[np.ndarray, np.ndarray]:
    """Finite-difference gradients of ``cost_fn(W, b) -> float`` at ``W: (K, d)``, ``b: (K,)``.

    ``method="centred"`` uses ``(c(p + h) - c(p - h)) / 2h`` (error O(h^2));
    ``"forward"`` uses ``(c(p + h) - c(p)) / h`` (error O(h), half the calls).
    Returns ``(dW, db)`` in float64.
    """
    centred = {"centred": True, "forward": False}[method]
    params = [np.array(W, dtype=np.float64), np.array(b, dtype=np.float64)]
    grads = [np.zeros_like(p) for p in params]
    c0 = None if centred else cost_fn(*params)
    for p, g in zip(params, grads):
        flat, gflat = p.reshape(-1), g.reshape(-1)  # views: perturbing flat perturbs p
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + h
            c_plus = cost_fn(*params)
            if centred:
                flat[i] = old - h
                gflat[i] = (c_plus - cost_fn(*params)) / (2 * h)
            else:
                gflat[i] = (c_plus - c0) / h
            flat[i] = old
    return grads[0], grads[1]


def compare(analytic: np.ndarray, numerical: np.ndarray) -> dict[str, float]:
    """Statistics of the gap between two gradients of the same shape.

    Returns the reference report's numbers (mean, std and max of ``|analytic - numerical|``;
    min, max and std of the numerical gradient) plus ``max_rel_err``, the largest
    ``|a - n| / (|a| + |n|)`` over elements (0 where both are exactly 0), and
    ``rel_err_norm``, ``||a - n|| / (||a|| + ||n||)`` for the whole array, and
    ``grad_at_max_rel_err``, ``|n|`` where the element-wise relative error peaks.
    """
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numerical, dtype=np.float64)
    diff = np.abs(a - n)
    denom = np.abs(a) + np.abs(n)
    rel = np.divide(diff, denom, out=np.zeros_like(diff), where=denom > 0)
    norm_denom = np.linalg.norm(a) + np.linalg.norm(n)
    return {
        "abs_diff_mean": float(diff.mean()),
        "abs_diff_std": float(diff.std()),
        "abs_diff_max": float(diff.max()),
        "grad_min": float(n.min()),
        "grad_max": float(n.max()),
        "grad_std": float(n.std()),
        "max_rel_err": float(rel.max()),
        "grad_at_max_rel_err": float(np.abs(n.reshape(-1)[rel.argmax()])),
        "rel_err_norm": float(np.linalg.norm(a - n) / norm_denom) if norm_denom else 0.0,
    }


def check_gradients(
    W: np.ndarray,
    b: np.ndarray,
    X: np.ndarray,
    Y: np.ndarray,
    lam: float = 0.0,
    loss: str = "ce",
    h: float = 1e-6,
    method: str = "centred",
) -> dict[str, dict[str, float]]:
    """Analytic against numerical gradients of a loss's cost at ``(W, b)`` on ``(X, Y)``.

    ``X: (n, d)``, ``Y: (n, K)``; all arithmetic in float64.
    Returns ``{"W": compare(...), "b": compare(...)}``.
    """
    loss_fn = model.LOSSES[loss]
    W, b, X, Y = (np.asarray(a, dtype=np.float64) for a in (W, b, X, Y))

    def cost(W_, b_):
        return loss_fn(W_, b_, X, Y, lam, grad=False).cost

    # Tens of thousands of tiny products: BLAS threads only add waiting, most of all on a busy machine.
    with threadpool_limits(limits=1):
        analytic = loss_fn(W, b, X, Y, lam)
        dW, db = numerical_gradients(cost, W, b, h=h, method=method)
    return {"W": compare(analytic.dW, dW), "b": compare(analytic.db, db)}
