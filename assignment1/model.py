"""The one-layer network: scores, activations, losses and their gradients.

Shapes: ``X: (n, d)`` one sample per row, ``Y: (n, K)`` one-hot, ``W: (K, d)``,
``b: (K,)``, scores ``S = X W^T + b: (n, K)`` (the maths' ``s = W x + b`` for
every row). Each loss is a pure function
``loss_fn(W, b, X, Y, lam) -> (loss, cost, dW, db)`` where
``cost = loss + lam * sum(W**2)`` and ``dW, db`` are the gradients of the cost.
The trainer only chooses which one to call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np


class LossResult(NamedTuple):
    """Loss, cost (loss + L2 term) and the cost's gradients ``dW: (K, d)``, ``db: (K,)``."""

    loss: float
    cost: float
    dW: np.ndarray | None
    db: np.ndarray | None


def scores(W: np.ndarray, b: np.ndarray, X: np.ndarray) -> np.ndarray:
    """``W: (K, d)``, ``b: (K,)``, ``X: (n, d)`` -> ``S: (n, K)``."""
    S = X @ W.T
    S += b
    return S


def softmax(S: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Row-wise softmax of ``S: (n, K)``, stable for any finite scores (``out=S`` works in place)."""
    P = np.subtract(S, S.max(axis=-1, keepdims=True), out=out)  # exp of at most 0 never overflows
    np.exp(P, out=P)
    P /= P.sum(axis=-1, keepdims=True)
    return P


def log_softmax(S: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax of ``S: (n, K)`` without forming tiny probabilities."""
    Z = S - S.max(axis=-1, keepdims=True)
    Z -= np.log(np.exp(Z).sum(axis=-1, keepdims=True))
    return Z


def sigmoid(S: np.ndarray) -> np.ndarray:
    """Elementwise logistic function, stable for large positive and negative inputs."""
    # exp(-|s|) never overflows; the two branches are the same function.
    E = np.exp(-np.abs(S))
    return np.where(S >= 0, 1.0 / (1.0 + E), E / (1.0 + E)).astype(S.dtype, copy=False)


def softplus(S: np.ndarray) -> np.ndarray:
    """``log(1 + exp(S))`` elementwise, stable: ``max(S, 0) + log1p(exp(-|S|))``."""
    return np.maximum(S, 0) + np.log1p(np.exp(-np.abs(S)))


def l2(W: np.ndarray, lam: float) -> float:
    """The regularization term ``lam * sum(W**2)``."""
    return float(lam * np.vdot(W, W)) if lam else 0.0


def ce_of_scores(S: np.ndarray, Y: np.ndarray, grad: bool = True) -> tuple[float, np.ndarray | None]:
    """Mean softmax cross-entropy of scores ``S: (n, K)`` against one-hot ``Y: (n, K)``.

    Returns ``(loss, G)`` with ``G = dloss/dS = (softmax(S) - Y) / n`` (None if not ``grad``).
    """
    n = S.shape[0]
    logP = log_softmax(S)
    loss = -float(np.vdot(Y, logP)) / n
    if not grad:
        return loss, None
    G = np.exp(logP, out=logP)
    G -= Y
    G /= n
    return loss, G


def mbce_of_scores(S: np.ndarray, Y: np.ndarray, grad: bool = True) -> tuple[float, np.ndarray | None]:
    """Mean multiple binary cross-entropy of scores ``S: (n, K)`` against one-hot ``Y``.

    Per sample ``-1/K sum_k [(1 - y_k) log(1 - p_k) + y_k log p_k]`` with
    ``p = sigmoid(s)``. Since ``-log p = softplus(-s)`` and
    ``-log(1 - p) = softplus(s)``, this is ``1/K sum_k [softplus(s_k) - y_k s_k]``,
    finite for any scores. Returns ``(loss, G)``, ``G = (sigmoid(S) - Y) / (n K)``.
    """
    n, K = S.shape
    loss = float(np.sum(softplus(S) - Y * S, dtype=np.float64)) / (n * K)
    if not grad:
        return loss, None
    G = sigmoid(S)
    G -= Y
    G /= n * K
    return loss, G


def _cost(of_scores, W, b, X, Y, lam, grad) -> LossResult:
    S = scores(W, b, X)
    loss, G = of_scores(S, Y, grad)
    cost = loss + l2(W, lam)
    if not grad:
        return LossResult(loss, cost, None, None)
    dW = G.T @ X
    if lam:
        dW += (2 * lam) * W
    return LossResult(loss, cost, dW, G.sum(axis=0))


def cross_entropy(W, b, X, Y, lam: float = 0.0, grad: bool = True) -> LossResult:
    """Softmax cross-entropy averaged over the ``n`` rows, plus ``lam * sum(W**2)``.

    ``W: (K, d)``, ``b: (K,)``, ``X: (n, d)``, ``Y: (n, K)`` one-hot. Returns
    ``LossResult(loss, cost, dW, db)``; the gradients are None when ``grad`` is False.
    """
    return _cost(ce_of_scores, W, b, X, Y, lam, grad)


def mbce(W, b, X, Y, lam: float = 0.0, grad: bool = True) -> LossResult:
    """Multiple binary cross-entropy with sigmoid (see :func:`mbce_of_scores`), plus ``lam * sum(W**2)``.

    Shapes as :func:`cross_entropy`. Returns ``LossResult(loss, cost, dW, db)``.
    """
    return _cost(mbce_of_scores, W, b, X, Y, lam, grad)


LOSSES: dict[str, Callable[..., LossResult]] = {"ce": cross_entropy, "mbce": mbce}
LOSSES_OF_SCORES = {"ce": ce_of_scores, "mbce": mbce_of_scores}
ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"ce": softmax, "mbce": sigmoid}


def evaluate_scores(S: np.ndarray, Y: np.ndarray, W: np.ndarray, lam: float = 0.0, loss: str = "ce") -> dict:
    """Loss, cost and accuracy from scores ``S: (n, K)`` of the weights ``W`` against ``Y: (n, K)``."""
    value, _ = LOSSES_OF_SCORES[loss](S, Y, grad=False)
    return {"loss": value, "cost": value + l2(W, lam), "acc": accuracy(Y.argmax(axis=1), S.argmax(axis=1))}


def evaluate(W, b, X, Y, lam: float = 0.0, loss: str = "ce") -> dict[str, float]:
    """Loss, cost and accuracy of ``(W, b)`` on ``X: (n, d)``, ``Y: (n, K)``, from one product ``X W^T``."""
    return evaluate_scores(scores(W, b, X), Y, W, lam, loss)


def accuracy(y: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of ``y_pred: (n,)`` equal to ``y: (n,)``."""
    return float(np.mean(np.asarray(y) == np.asarray(y_pred)))
