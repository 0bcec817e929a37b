"""Several runs that read the same batches, trained in one pass over the data: the loop of
:mod:`assignment1.train` with one more axis.

Runs that share their data, seed, mini-batch size, flips and translations
(:func:`shared`) visit the same samples in the same order, since the seed decides
the order, the flips and the translations. So their steps are taken together:
their weights are stacked into one array, each batch is gathered (flipped,
moved) once and multiplied once by the stack, and after an epoch each block of
the data is read once to evaluate all of them. Each run keeps its own loss,
lambda, learning rate, schedule, initialization and number of epochs (the
products do not depend on the loss, only the gradient of the scores does); a
run that has finished or diverged leaves, and the others go on.

Run ``i``'s ``W: (K, d)`` is ``W_stack[i, :K]`` of a stack ``(R, rows, d)``
(:func:`stack`), and each product is laid out one of two ways:

- *columns* (``rows = K``): the scores ``S = Xb W_stack^T``, run ``i`` in ``K``
  columns of them, and the softmax of all runs taken in one pass. OpenBLAS's
  SkylakeX kernels compute a run's columns the same wherever they sit, and
  faster than the rows;
- *rows* (``rows =`` :data:`SLOT`, zeros below each run): ``S^T = W_stack Xb^T``,
  which OpenBLAS's Haswell kernels compute the same wherever a slot sits.

Either way a run's numbers do not depend on the company it keeps: trained in
any sweep it is, bit for bit, the run trained alone (a test checks it). The
BLAS is asked once per shape of product which layout it computes so
(:func:`columns_exact`, :func:`stacks_exactly`): a sweep takes the columns
where they are exact for all its batches, else the rows, and multiplies each
slot on its own where even the rows are not. ``tests/test_train.py`` checks
every run, in each layout, against the textbook loop.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable

import numpy as np
from threadpoolctl import threadpool_limits

from . import model
from . import train as plain
from .config import RunConfig
from .data import flip as mirror
from .data import translate
from .train import TrainResult

#: Settings the runs of one sweep share; they may differ in everything else.
SHARED = ("seed", "n_batch", "flip", "shift", "val_size", "normalize", "dtype")
#: Rows per run of the stack in the rows layout: OpenBLAS's float32 Haswell kernels compute rows alike 12 apart
#: (8 or 16 apart they do not)
SLOT = 12
#: Rows of data per product when evaluating (a block is read from memory once for all the runs)
EVAL_ROWS = 512


def shared(cfg: RunConfig) -> tuple:
    """What runs must have in common to be trained in one sweep."""
    return tuple(getattr(cfg, name) for name in SHARED)


@functools.lru_cache(maxsize=64)
def stacks_exactly(dtype: str, k: int, n: int, transposed: bool) -> bool:
    """Whether this BLAS computes each slot of a stack times a ``(k, n)`` matrix (``transposed``: a view of an
    ``(n, k)`` one) as it computes the slot alone. OpenBLAS does, but for products so small that it takes
    other kernels for one slot than for several (SkylakeX kernels: a slot times fewer than 28 rows)."""
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((16 * SLOT, k)).astype(dtype), rng.standard_normal((n, k) if transposed else (k, n))
    B = B.astype(dtype).T if transposed else B.astype(dtype)
    with threadpool_limits(limits=1):
        return all(np.array_equal((A[:slots * SLOT] @ B)[SLOT * i:SLOT * (i + 1)], A[SLOT * i:SLOT * (i + 1)] @ B)
                   for slots in (2, 16) for i in range(slots))


@functools.lru_cache(maxsize=64)
def columns_exact(dtype: str, K: int, d: int, m: int, backward: bool = True) -> bool:
    """Whether this BLAS computes each run's ``K`` columns of ``Xb @ W.T`` (``Xb: (m, d)``, ``W``: the runs'
    ``(K, d)`` one under the other) and, if ``backward``, each run's ``K`` rows of ``G.T @ Xb`` (``G: (m, R K)``)
    as it computes them for the run alone. OpenBLAS's SkylakeX kernels do, its Haswell kernels do not."""
    rng = np.random.default_rng(0)
    W, Xb, G = (rng.standard_normal(shape, np.float32).astype(dtype) for shape in ((16 * K, d), (m, d), (m, 16 * K)))
    runs = [slice(K * i, K * (i + 1)) for i in range(16)]
    with threadpool_limits(limits=1):
        for n_runs in (2, 16):
            S = Xb @ W[:n_runs * K].T
            if not all(np.array_equal(S[:, run], Xb @ W[run].T) for run in runs[:n_runs]):
                return False
            if backward:  # the gradients as the step has them: C-ordered (m, R K), transposed
                dW = np.ascontiguousarray(G[:, :n_runs * K]).T @ Xb
                if not all(np.array_equal(dW[run], np.ascontiguousarray(G[:, run]).T @ Xb) for run in runs[:n_runs]):
                    return False
    return True


def slot_rows(dtype: str, K: int, d: int, batch_rows: set[int], backward: bool = True) -> int:
    """Rows per run of a stack whose products take batches of each of ``batch_rows`` rows: ``K`` (the columns
    layout) where this BLAS computes those exactly (:func:`columns_exact`), else :data:`SLOT` (the rows layout)."""
    exact = K < SLOT and all(columns_exact(dtype, K, d, m, backward) for m in sorted(batch_rows))
    return K if exact else SLOT


def times(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``A @ B`` for a stack ``A: (r, k)`` of slots: one product, or one per slot where that would not be exact."""
    if stacks_exactly(A.dtype.name, *B.shape, not B.flags.c_contiguous):
        return A @ B
    return np.concatenate([A[i:i + SLOT] @ B for i in range(0, A.shape[0], SLOT)])


def stack(params: list[tuple], rows: int = SLOT) -> tuple[np.ndarray, np.ndarray]:
    """The runs' ``(W: (K, d), b: (K,))`` as one ``(W: (R, rows, d), b: (R, rows))``, run ``i`` in ``W[i, :K]``
    (zeros below it), ``R = len(params)``."""
    (W0, b0), K = params[0], params[0][0].shape[0]
    if K > rows:
        raise ValueError(f"a slot holds at most {rows} classes, not {K}")
    W, b = np.zeros((len(params), rows, W0.shape[1]), W0.dtype), np.zeros((len(params), rows), b0.dtype)
    for i, (W_i, b_i) in enumerate(params):
        W[i, :K], b[i, :K] = W_i, b_i
    return W, b


def slot(A: np.ndarray, i: int, K: int) -> np.ndarray:
    """The ``K`` rows of run ``i`` in a stack ``A: (R, rows, ...)`` (a view)."""
    return A[i, :K]


def score_gradients(S: np.ndarray, y: np.ndarray, loss: str) -> np.ndarray:
    """In place, scores ``S: (m, K)`` (or ``(m, R, K)``: ``R`` runs' scores) -> ``m`` times the ``G`` of
    :mod:`assignment1.model`'s losses: ``softmax(S) - onehot(y)`` for ``ce``, ``(sigmoid(S) - onehot(y)) / K``
    for ``mbce``."""
    if loss == "ce":
        model.softmax(S, out=S)
    else:
        S[...] = model.sigmoid(S)
    S[np.arange(y.shape[0]), ..., y] -= 1
    if loss == "mbce":
        S /= S.shape[-1]
    return S


def step(W: np.ndarray, b: np.ndarray, Xb: np.ndarray, y: np.ndarray, K: int, losses: list[str],
         rates: list[tuple[float, float]]) -> None:
    """In place, one step of each run ``i`` of the stack ``W: (R, rows, d)``, ``b: (R, rows)`` (:func:`stack`) on the
    batch ``Xb: (m, d)`` with labels ``y: (m,)``: ``W_i <- W_i - eta_i (G_i^T Xb / m + 2 lam_i W_i)``,
    ``b_i <- b_i - eta_i sum(G_i) / m`` for ``(eta_i, lam_i) = rates[i]`` and ``G_i`` of the loss ``losses[i]``;
    laid out as rows if ``rows`` is :data:`SLOT`, else as columns (``rows == K``)."""
    (R, rows, d), m = W.shape, Xb.shape[0]
    decay = np.array([1 - 2 * eta * lam for eta, lam in rates], W.dtype)[:, None, None]
    if rows == SLOT:  # the rows layout: the scores transposed, (R, SLOT, m)
        ST = times(W.reshape(R * SLOT, d), Xb.T).reshape(R, SLOT, m)
        ST += b[:, :, None]
        for i, (eta, _) in enumerate(rates):
            G = score_gradients(ST[i, :K].T, y, losses[i])
            G *= eta / m
        W *= decay
        W -= times(ST.reshape(R * SLOT, m), Xb).reshape(W.shape)
        b -= ST.sum(axis=2)
    else:  # the columns layout: the scores (m, R K), every run's softmax in one pass
        S = Xb @ W.reshape(R * K, d).T
        S += b.reshape(R * K)
        G = S.reshape(m, R, K)
        for loss in dict.fromkeys(losses):  # the runs of each loss in one pass
            runs = [i for i, name in enumerate(losses) if name == loss]
            G[:, runs] = score_gradients(G[:, runs], y, loss)
        G *= np.array([eta / m for eta, _ in rates], W.dtype)[:, None]
        W *= decay
        W -= (S.T @ Xb).reshape(W.shape)
        b -= S.sum(axis=0).reshape(b.shape)


def evaluate(params: list[tuple], X: np.ndarray, Y: np.ndarray, cfgs: list[RunConfig]) -> list[dict]:
    """Loss, cost and accuracy of each run's ``(W, b)`` in ``params`` on ``X: (n, d)``, ``Y: (n, K)``.

    Each block of :data:`EVAL_ROWS` rows is read from memory once and multiplied by all the runs' weights.
    """
    if not params:
        return []
    (n, d), K = X.shape, Y.shape[1]
    rows = slot_rows(X.dtype.name, K, d, {min(EVAL_ROWS, n), n % EVAL_ROWS} - {0}, backward=False)
    W, b = stack(params, rows)
    W = W.reshape(-1, d)
    if rows == SLOT:
        ST = np.empty((W.shape[0], n), X.dtype)
        for start in range(0, n, EVAL_ROWS):
            ST[:, start:start + EVAL_ROWS] = times(W, X[start:start + EVAL_ROWS].T)
        ST += b.reshape(-1, 1)
        scores = [ST[SLOT * i:SLOT * i + K].T for i in range(len(params))]
    else:
        S = np.empty((n, W.shape[0]), X.dtype)
        for start in range(0, n, EVAL_ROWS):
            S[start:start + EVAL_ROWS] = X[start:start + EVAL_ROWS] @ W.T
        S += b.reshape(-1)
        scores = [S[:, K * i:K * (i + 1)] for i in range(len(params))]
    return [model.evaluate_scores(np.ascontiguousarray(S_i), Y, W_i, cfg.lam, cfg.loss)
            for S_i, (W_i, _), cfg in zip(scores, params, cfgs)]


def train(X: np.ndarray, Y: np.ndarray, X_val: np.ndarray, Y_val: np.ndarray, cfgs: list[RunConfig],
          on_epoch: Callable[[int, dict], object] | None = None,
          stop: threading.Event | None = None, leave: Callable[[int, dict], bool] | None = None) -> list[TrainResult]:
    """Train each of ``cfgs`` (runs that agree on :func:`shared`) as :func:`assignment1.train.train` would.

    ``X: (n, d)``, ``Y: (n, K)`` one-hot. After each epoch every run still
    training records its metrics and ``on_epoch(i, history)`` is called for it
    (``i``: its index in ``cfgs``; what it returns is ignored). ``stop``, once
    set, ends every run after the epoch under way; ``leave(i, history)``,
    asked next, ends run ``i`` alone there if true. Returns one
    :class:`~assignment1.train.TrainResult` per configuration, in order; a run's
    ``seconds`` are its share of the sweep's time.
    """
    if len({shared(c) for c in cfgs}) != 1:
        raise ValueError(f"runs of one sweep must share {', '.join(SHARED)}")
    first = cfgs[0]
    X, Y, X_val, Y_val = (np.ascontiguousarray(a, dtype=first.dtype) for a in (X, Y, X_val, Y_val))
    y, (n, d), K = Y.argmax(axis=1), X.shape, Y.shape[1]
    init_seq, shuffle_rng, flip_rng, shift_rng = plain.random_streams(first.seed)
    initial = [plain.init_params(K, d, init_seq, c.init_std, first.dtype) for c in cfgs]
    run_rows = slot_rows(first.dtype, K, d, {min(first.n_batch, n), n % first.n_batch} - {0})  # the layout
    W, b = stack(initial, run_rows)  # the runs still training, in order; stacked again when one leaves
    training = list(range(len(cfgs)))
    averages = {i: (W_i.copy(), b_i.copy()) for i, (W_i, b_i) in enumerate(initial)}
    kept = {i: (W_i.copy(), b_i.copy()) for i, (W_i, b_i) in enumerate(initial)}  # weights after its last epoch
    histories = [plain.empty_history() for _ in cfgs]
    results: list[TrainResult | None] = [None] * len(cfgs)
    Xb_buf = np.empty((first.n_batch, d), first.dtype)

    # a diverging run overflows; it is caught below. One BLAS thread: threads would split a stack by its size
    with np.errstate(over="ignore", invalid="ignore"), threadpool_limits(limits=1):
        for epoch in range(max(c.n_epochs for c in cfgs)):
            t0 = time.perf_counter()
            order = shuffle_rng.permutation(n)
            mirrored = flip_rng.random(n) < 0.5 if first.flip else None
            moves = shift_rng.integers(-first.shift, first.shift + 1, size=(n, 2)) if first.shift else None
            rates, losses = [(cfgs[i].eta_at(epoch), cfgs[i].lam) for i in training], [cfgs[i].loss for i in training]
            for start in range(0, n, first.n_batch):
                batch = order[start:start + first.n_batch]
                Xb = np.take(X, batch, axis=0, out=Xb_buf[:len(batch)], mode="clip")  # a permutation: valid
                if first.flip:
                    rows = np.flatnonzero(mirrored[start:start + first.n_batch])
                    Xb[rows] = mirror(Xb[rows])
                if first.shift:
                    Xb = translate(Xb, moves[start:start + first.n_batch])
                step(W, b, Xb, y[batch], K, losses, rates)
            current = {i: (slot(W, j, K), slot(b, j, K)) for j, i in enumerate(training)}
            out = {i: current[i] if epoch < cfgs[i].first_averaged else
                   plain.average(*averages[i], *current[i], epoch - cfgs[i].first_averaged) for i in training}
            measured = [i for i in training if cfgs[i].evaluate_train]
            train_metrics = dict(zip(measured, evaluate([out[i] for i in measured], X, Y, [cfgs[i] for i in measured])))
            val_metrics = evaluate(list(out.values()), X_val, Y_val, [cfgs[i] for i in training])
            seconds = (time.perf_counter() - t0) / len(training)
            for i, va in zip(list(training), val_metrics):
                tr = train_metrics.get(i, plain.NOT_MEASURED)
                if not plain.finite(tr, va):  # the run keeps the weights of its last epoch whose cost was finite
                    results[i] = TrainResult(*kept.pop(i), history=histories[i], diverged=True)
                    training.remove(i)
                    continue
                kept[i] = out[i][0].copy(), out[i][1].copy()
                plain.record(histories[i], epoch + 1, cfgs[i].eta_at(epoch), seconds, tr, va)
                if on_epoch is not None:
                    on_epoch(i, histories[i])
                left = leave is not None and leave(i, histories[i])
                if left or epoch + 1 == cfgs[i].n_epochs or (stop is not None and stop.is_set()):
                    results[i] = TrainResult(*kept.pop(i), history=histories[i], stopped=epoch + 1 < cfgs[i].n_epochs)
                    training.remove(i)
            if not training:
                break
            if len(training) < len(current):  # a run left: the others close ranks
                W, b = stack([current[i] for i in training], run_rows)
    return results
