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


def numerical_gradients(cost_fn: Callable[[np.ndarray, np.ndarray], float], W: np.ndarray, b: np.ndarray,
                        h: float = 1e-6, method: str = "centred") -> tuple[np.ndarray, np.ndarray]:
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


def numerical_gradients_of_scores(of_scores: Callable, W: np.ndarray, b: np.ndarray, X: np.ndarray, Y: np.ndarray,
                                  lam: float = 0.0, h: float = 1e-6,
                                  method: str = "centred") -> tuple[np.ndarray, np.ndarray]:
    """:func:`numerical_gradients` of ``of_scores(X W^T + b, Y) + lam * sum(W**2)``, without a product per cost.

    ``W: (K, d)``, ``b: (K,)``, ``X: (n, d)``, ``Y: (n, K)``. Moving ``W[k, j]`` by ``h``
    moves only column ``k`` of the scores, by ``h X[:, j]`` (moving ``b[k]`` moves it by
    ``h``), so each perturbed cost updates one column of the scores instead of
    multiplying ``X`` by ``W^T`` again. The same differences otherwise, equal up to
    rounding (tested). Returns ``(dW, db)`` in float64.
    """
    centred = {"centred": True, "forward": False}[method]
    W, b, X = (np.array(a, dtype=np.float64) for a in (W, b, X))
    S = model.scores(W, b, X)

    def cost():
        return of_scores(S, Y, grad=False)[0] + model.l2(W, lam)

    c0 = None if centred else cost()
    dW, db = np.zeros_like(W), np.zeros_like(b)
    # (parameters, their gradient, how column k of S moves per unit of parameter [k, j]): b as a (K, 1) view
    for p, g, moves in ((W, dW, X.T.copy()), (b[:, None], db[:, None], np.ones((1, len(X))))):
        for k in range(p.shape[0]):
            column = S[:, k].copy()
            for j in range(p.shape[1]):
                old = p[k, j]
                p[k, j], S[:, k] = old + h, column + h * moves[j]
                c_plus = cost()
                if centred:
                    p[k, j], S[:, k] = old - h, column - h * moves[j]
                    g[k, j] = (c_plus - cost()) / (2 * h)
                else:
                    g[k, j] = (c_plus - c0) / h
                p[k, j] = old
            S[:, k] = column
    return dW, db


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
        "abs_diff_mean": float(diff.mean()), "abs_diff_std": float(diff.std()), "abs_diff_max": float(diff.max()),
        "grad_min": float(n.min()), "grad_max": float(n.max()), "grad_std": float(n.std()),
        "max_rel_err": float(rel.max()), "grad_at_max_rel_err": float(np.abs(n.reshape(-1)[rel.argmax()])),
        "rel_err_norm": float(np.linalg.norm(a - n) / norm_denom) if norm_denom else 0.0,
    }


def check_gradients(W: np.ndarray, b: np.ndarray, X: np.ndarray, Y: np.ndarray, lam: float = 0.0, loss: str = "ce",
                    h: float = 1e-6, method: str = "centred") -> dict[str, dict[str, float]]:
    """Analytic against numerical gradients (:func:`numerical_gradients_of_scores`) of a loss's cost at
    ``(W, b)`` on ``(X, Y)``.

    ``X: (n, d)``, ``Y: (n, K)``; all arithmetic in float64.
    Returns ``{"W": compare(...), "b": compare(...)}``.
    """
    W, b, X, Y = (np.asarray(a, dtype=np.float64) for a in (W, b, X, Y))
    # Tens of thousands of tiny BLAS calls (the L2 term's dot product): threads only add waiting, most of all on
    # a busy machine, where a thread waits milliseconds for a core.
    with threadpool_limits(limits=1):
        analytic = model.LOSSES[loss](W, b, X, Y, lam)
        dW, db = numerical_gradients_of_scores(model.LOSSES_OF_SCORES[loss], W, b, X, Y, lam, h=h, method=method)
    return {"W": compare(analytic.dW, dW), "b": compare(analytic.db, db)}
