"""Several runs that read the same batches, trained in one pass over the data: the loop of
:mod:`assignment1.train`, arranged to run fast.

Runs that share their data, seed, mini-batch size, flips, translations and loss
(:func:`shared`) visit the same samples in the same order, since the seed decides
the order, the flips and the translations. So their steps are taken together:
each batch is gathered (flipped, moved) once for all of them, and each block of
the data is read once to evaluate all of them after an epoch. Each run keeps its own lambda, learning
rate, schedule, initialization and number of epochs; a run that has finished
or diverged leaves, and the others go on. No arithmetic mixes two runs, so a
run's numbers do not depend on the company it keeps: trained in any sweep it
is, bit for bit, the run trained alone (a test checks it).

Each run's arithmetic is laid out for the machine's BLAS. Where OpenBLAS has
small-matrix kernels (:data:`SMALL_KERNELS`, its AVX-512 builds), products take
at most 32 rows at a time, where those kernels run near peak, and the step
``W <- W - eta (dW + 2 lam W)`` is one BLAS ``gemm`` per block that accumulates
straight into ``W``, with the L2 term folded into its ``beta``. Elsewhere (AVX2)
the general kernels run a batch's product in one piece best, and numpy's product
for the step about twice as fast as scipy's ``gemm``. Rounding then differs
between the two kinds of machine, as it does anyway between their kernels.
``tests/test_train.py`` checks that every run agrees with the textbook loop, in both layouts.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable

import numpy as np
from scipy.linalg import get_blas_funcs
from threadpoolctl import threadpool_info

from . import model
from . import train as plain
from .config import RunConfig
from .data import flip as mirror
from .data import translate
from .train import TrainResult

#: Settings the runs of one sweep share; they may differ in everything else.
SHARED = ("seed", "n_batch", "flip", "shift", "loss", "val_size", "normalize", "dtype")
#: OpenBLAS builds for these processors multiply a few rows by (3072 x 10) with small-matrix kernels
SMALL_KERNEL_ARCHITECTURES = ("SkylakeX", "Cooperlake", "SapphireRapids")
SMALL_KERNELS = any(lib.get("architecture") in SMALL_KERNEL_ARCHITECTURES for lib in threadpool_info()
                    if lib["internal_api"] == "openblas")
#: Rows per product, by SMALL_KERNELS: 32 for the small-matrix kernels; elsewhere a batch of up to 256 in one piece
BLOCK_ROWS = {True: 32, False: 256}
MAX_BLOCK_ROWS = BLOCK_ROWS[SMALL_KERNELS]


def shared(cfg: RunConfig) -> tuple:
    """What runs must have in common to be trained in one sweep."""
    return tuple(getattr(cfg, name) for name in SHARED)


def row_blocks(m: int) -> tuple[slice, ...]:
    """Split ``m`` rows into the fewest near-equal blocks of at most :data:`MAX_BLOCK_ROWS` (a function of ``m``
    and the machine only, so a run's numbers do not depend on anything else)."""
    return _row_blocks(m, MAX_BLOCK_ROWS)


@functools.lru_cache(maxsize=16)
def _row_blocks(m: int, max_rows: int) -> tuple[slice, ...]:
    count = -(-m // max_rows)
    edges = [round(i * m / count) for i in range(count + 1)]
    return tuple(slice(a, b) for a, b in zip(edges, edges[1:]))


def scores(Xb: np.ndarray, W: np.ndarray, b: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = Xb W^T + b: (m, K)`` for ``Xb: (m, d)``, ``W: (K, d)``, ``b: (K,)``, in :func:`row_blocks`."""
    for rows in row_blocks(Xb.shape[0]):
        np.matmul(Xb[rows], W.T, out=out[rows])
    out += b
    return out


def score_gradients(S: np.ndarray, y: np.ndarray, loss: str) -> np.ndarray:
    """In place, scores ``S: (m, K)`` -> ``m`` times the ``G`` of :mod:`assignment1.model`'s losses:
    ``softmax(S) - onehot(y)`` for ``ce``, ``(sigmoid(S) - onehot(y)) / K`` for ``mbce``."""
    if loss == "ce":
        model.softmax(S, out=S)
    else:
        S[...] = model.sigmoid(S)
    S[np.arange(y.shape[0]), y] -= 1
    if loss == "mbce":
        S /= S.shape[1]
    return S


def step(W: np.ndarray, b: np.ndarray, Xb: np.ndarray, G: np.ndarray, eta: float, lam: float) -> None:
    """In place, ``W <- W - eta (G^T Xb / m + 2 lam W)`` and ``b <- b - eta sum(G) / m`` for ``G: (m, K)``."""
    G *= eta / Xb.shape[0]
    if SMALL_KERNELS:
        gemm = get_blas_funcs("gemm", (W,))
        for k, rows in enumerate(row_blocks(Xb.shape[0])):  # W^T <- decay W^T - Xb^T G, block by block
            gemm(-1.0, Xb[rows].T, G[rows].T, beta=1 - 2 * eta * lam if k == 0 else 1.0, c=W.T, trans_b=True,
                 overwrite_c=True)
    else:
        W *= 1 - 2 * eta * lam
        for rows in row_blocks(Xb.shape[0]):
            W -= G[rows].T @ Xb[rows]
    b -= G.sum(axis=0)


def evaluate(params: list[tuple], X: np.ndarray, Y: np.ndarray, cfgs: list[RunConfig]) -> list[dict]:
    """Loss, cost and accuracy of each run's ``(W, b)`` in ``params`` on ``X: (n, d)``, ``Y: (n, K)``.

    Each block of rows is read from memory once, while every run multiplies it.
    """
    S = [np.empty(Y.shape, X.dtype) for _ in params]
    for rows in row_blocks(X.shape[0]):
        X_rows = X[rows]
        for (W, _), S_r in zip(params, S):
            np.matmul(X_rows, W.T, out=S_r[rows])
    return [model.evaluate_scores(np.add(S_r, b, out=S_r), Y, W, cfg.lam, cfg.loss)
            for S_r, (W, b), cfg in zip(S, params, cfgs)]


def train(X: np.ndarray, Y: np.ndarray, X_val: np.ndarray, Y_val: np.ndarray, cfgs: list[RunConfig],
          on_epoch: Callable[[int, dict], object] | None = None,
          stop: threading.Event | None = None) -> list[TrainResult]:
    """Train each of ``cfgs`` (runs that agree on :func:`shared`) as :func:`assignment1.train.train` would.

    ``X: (n, d)``, ``Y: (n, K)`` one-hot. After each epoch every run still
    training records its metrics and ``on_epoch(i, history)`` is called for it
    (``i``: its index in ``cfgs``; what it returns is ignored). ``stop``, once
    set, ends every run after the epoch under way. Returns one
    :class:`~assignment1.train.TrainResult` per configuration, in order; a run's
    ``seconds`` are its share of the sweep's time.
    """
    if len({shared(c) for c in cfgs}) != 1:
        raise ValueError(f"runs of one sweep must share {', '.join(SHARED)}")
    first = cfgs[0]
    X, Y, X_val, Y_val = (np.ascontiguousarray(a, dtype=first.dtype) for a in (X, Y, X_val, Y_val))
    y, (n, d), K = Y.argmax(axis=1), X.shape, Y.shape[1]
    init_seq, shuffle_rng, flip_rng, shift_rng = plain.random_streams(first.seed)
    params = {i: plain.init_params(K, d, init_seq, c.init_std, first.dtype) for i, c in enumerate(cfgs)}
    averages = {i: (W.copy(), b.copy()) for i, (W, b) in params.items()}
    kept = {i: (W.copy(), b.copy()) for i, (W, b) in params.items()}  # each run's weights after its last epoch
    histories = [plain.empty_history() for _ in cfgs]
    results: list[TrainResult | None] = [None] * len(cfgs)
    Xb_buf, S = np.empty((first.n_batch, d), first.dtype), np.empty((first.n_batch, K), first.dtype)

    with np.errstate(over="ignore", invalid="ignore"):  # a diverging run overflows; it is caught below
        for epoch in range(max(c.n_epochs for c in cfgs)):
            t0 = time.perf_counter()
            order = shuffle_rng.permutation(n)
            mirrored = flip_rng.random(n) < 0.5 if first.flip else None
            moves = shift_rng.integers(-first.shift, first.shift + 1, size=(n, 2)) if first.shift else None
            for start in range(0, n, first.n_batch):
                batch = order[start:start + first.n_batch]
                Xb = np.take(X, batch, axis=0, out=Xb_buf[:len(batch)], mode="clip")  # a permutation: valid
                if first.flip:
                    rows = np.flatnonzero(mirrored[start:start + first.n_batch])
                    Xb[rows] = mirror(Xb[rows])
                if first.shift:
                    Xb = translate(Xb, moves[start:start + first.n_batch])
                for i, (W, b) in params.items():
                    G = score_gradients(scores(Xb, W, b, S[:len(batch)]), y[batch], first.loss)
                    step(W, b, Xb, G, cfgs[i].eta_at(epoch), cfgs[i].lam)
            out = {i: params[i] if epoch < cfgs[i].first_averaged else
                   plain.average(*averages[i], *params[i], epoch - cfgs[i].first_averaged) for i in params}
            measured = [i for i in params if cfgs[i].evaluate_train]
            train_metrics = dict(zip(measured, evaluate([out[i] for i in measured], X, Y, [cfgs[i] for i in measured])))
            val_metrics = evaluate(list(out.values()), X_val, Y_val, [cfgs[i] for i in params])
            seconds = (time.perf_counter() - t0) / len(params)
            for i, va in zip(list(params), val_metrics):
                tr = train_metrics.get(i, plain.NOT_MEASURED)
                if not plain.finite(tr, va):  # the run keeps the weights of its last epoch whose cost was finite
                    results[i] = TrainResult(*kept.pop(i), history=histories[i], diverged=True)
                    del params[i]
                    continue
                kept[i] = out[i][0].copy(), out[i][1].copy()
                plain.record(histories[i], epoch + 1, cfgs[i].eta_at(epoch), seconds, tr, va)
                if on_epoch is not None:
                    on_epoch(i, histories[i])
                if epoch + 1 == cfgs[i].n_epochs or (stop is not None and stop.is_set()):
                    results[i] = TrainResult(*kept.pop(i), history=histories[i], stopped=epoch + 1 < cfgs[i].n_epochs)
                    del params[i]
            if not params:
                break
    return results
