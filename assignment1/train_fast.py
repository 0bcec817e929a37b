"""The loop of :mod:`assignment1.train`, arranged to run faster.

Same arithmetic, same random streams, same history; what changes is how the
work is laid out for the machine:

- each batch is gathered once into a reused buffer (``np.take(..., mode="clip")``
  spares the temporary copy that ``mode="raise"`` makes);
- BLAS runs on one thread, on blocks of at most :data:`MAX_BLOCK_ROWS` rows,
  where OpenBLAS's small-matrix kernels run near peak;
- the step ``W <- W - eta (dW + 2 lam W)`` is one ``gemm`` per block that
  accumulates straight into ``W``, with the L2 term folded into its ``beta``;
- the evaluation of epoch ``e``'s weights on the training set is fused into
  epoch ``e + 1``: each gathered block is also multiplied by those weights
  (before any row is flipped), so the data is read once per epoch, not twice;
- with ``workers=2``, a forked :class:`BatchPrefetcher` gathers the next batch
  and computes that evaluation on the second core.

``tests/test_train.py`` trains with both loops and checks they agree: float64
weights to 1e-12 relative, float32 test predictions identical.
"""

from __future__ import annotations

import functools
import mmap
import os
import threading
import time
from collections.abc import Callable

import numpy as np
from scipy.linalg import get_blas_funcs
from threadpoolctl import threadpool_limits

from . import model
from . import train as plain
from .config import RunConfig
from .data import flip as mirror
from .train import TrainResult

MAX_BLOCK_ROWS = 32  # BLAS products of at most this many rows by (3072 x 10) run near peak speed here


@functools.lru_cache(maxsize=8)
def row_blocks(m: int) -> tuple[slice, ...]:
    """Split ``m`` rows into the fewest near-equal blocks of at most :data:`MAX_BLOCK_ROWS`.

    The split depends on ``m`` only, so results do not depend on the machine's timing.
    """
    count = -(-m // MAX_BLOCK_ROWS)
    edges = [round(i * m / count) for i in range(count + 1)]
    return tuple(slice(a, b) for a, b in zip(edges, edges[1:]))


def score_rows(Xb: np.ndarray, W: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = Xb W^T`` for ``Xb: (m, d)``, ``W: (K, d)``, in :func:`row_blocks`, bit-identical wherever it runs."""
    for sl in row_blocks(Xb.shape[0]):
        np.matmul(Xb[sl], W.T, out=out[sl])
    return out


def ce_score_gradients(S: np.ndarray, y: np.ndarray) -> np.ndarray:
    """In place, scores ``S: (m, K)`` -> ``softmax(S) - onehot(y)``, ``m`` times :func:`model.ce_of_scores`'s ``G``."""
    model.softmax(S, out=S)
    S[np.arange(y.shape[0]), y] -= 1
    return S


def mbce_score_gradients(S: np.ndarray, y: np.ndarray) -> np.ndarray:
    """In place, scores ``S: (m, K)`` -> ``(sigmoid(S) - onehot(y)) / K``: ``m`` times the ``G`` of
    :func:`model.mbce_of_scores`."""
    S[...] = model.sigmoid(S)
    S[np.arange(y.shape[0]), y] -= 1
    S /= S.shape[1]
    return S


SCORE_GRADIENTS = {"ce": ce_score_gradients, "mbce": mbce_score_gradients}


def _epoch_metrics(S_eval, W_prev, b_prev, Y_perm, X_val, Y_val, lam, loss) -> tuple[dict, dict]:
    """Training and validation loss, cost and accuracy of ``(W_prev, b_prev)``.

    ``S_eval: (n, K)`` holds ``X[perm] W_prev^T`` (bias not yet added; it is added
    in place), ``Y_perm: (n, K)`` the labels in the same order.
    """
    S_eval += b_prev
    tr = model.evaluate_scores(S_eval, Y_perm, W_prev, lam, loss)
    return tr, model.evaluate(W_prev, b_prev, X_val, Y_val, lam, loss)


def _shared(shape, dtype) -> np.ndarray:
    """A zeroed array in anonymous shared memory, which a forked child reads and writes too."""
    count = int(np.prod(shape))
    buf = mmap.mmap(-1, max(1, count * np.dtype(dtype).itemsize))
    return np.frombuffer(buf, dtype=dtype, count=count).reshape(shape)


class BatchPrefetcher:
    """A forked process that gathers each next batch and, on the way, evaluates the previous epoch.

    Python threads cannot share this work (hundreds of small BLAS calls hold the GIL
    in turn); a child process can, seeing the data through fork, and the order,
    the weights and two batch buffers through shared memory. For each batch it
    gathers the rows into a buffer, multiplies them (still unflipped) by the
    previous epoch's weights, block by block exactly as the training process
    would, and hands the buffer over; at the end of the epoch it computes the
    metrics with the same code, so everything is bit-identical to ``workers=1``.

    Protocol, one byte per message on two pipes. To the child: ``E`` (an epoch
    with evaluation) or ``G`` (gathering only), ``c`` (a buffer is free again),
    ``Q`` (stop). From the child: ``r`` (the next batch is ready), ``k`` (the
    metrics are ready). A buffer is refilled only after its ``c``.
    """

    KEYS = ("loss", "cost", "acc")

    def __init__(self, X, Y, X_val, Y_val, n_batch: int, lam: float, loss: str):
        (n, d), K = X.shape, Y.shape[1]
        self.n, self.n_batch = n, n_batch
        self.perm = _shared((n,), np.int64)
        self.W_prev, self.b_prev = _shared((K, d), X.dtype), _shared((K,), X.dtype)
        self.buffers = [_shared((n_batch, d), X.dtype) for _ in range(2)]
        self.metrics = _shared((6,), np.float64)
        cmd_r, self.cmd_w = os.pipe()
        self.ack_r, ack_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the child: serve until told to stop, and never return into the caller
            os.close(self.cmd_w)
            os.close(self.ack_r)
            status = 0
            try:
                self._serve(cmd_r, ack_w, X, Y, X_val, Y_val, lam, loss)
            except BaseException:  # the parent sees a failure as a missing message
                status = 1
            os._exit(status)
        os.close(cmd_r)
        os.close(ack_w)

    def _serve(self, cmd_r, ack_w, X, Y, X_val, Y_val, lam, loss) -> None:
        S_eval = np.empty((self.n, Y.shape[1]), X.dtype)
        while True:
            cmd = os.read(cmd_r, 1)
            if cmd == b"c":  # a free-buffer message left over from the end of the last epoch
                continue
            if cmd not in (b"E", b"G"):
                return
            for j, start in enumerate(range(0, self.n, self.n_batch)):
                if j >= 2 and os.read(cmd_r, 1) != b"c":
                    return
                idx = self.perm[start:start + self.n_batch]
                Xb = np.take(X, idx, axis=0, out=self.buffers[j % 2][:idx.size], mode="clip")
                if cmd == b"E":
                    score_rows(Xb, self.W_prev, S_eval[start:start + idx.size])
                os.write(ack_w, b"r")
            if cmd == b"E":
                tr, va = _epoch_metrics(S_eval, self.W_prev, self.b_prev, Y[self.perm], X_val, Y_val, lam, loss)
                self.metrics[:] = [tr[k] for k in self.KEYS] + [va[k] for k in self.KEYS]
                os.write(ack_w, b"k")

    def _expect(self, what: bytes) -> None:
        if os.read(self.ack_r, 1) != what:
            raise RuntimeError("the batch prefetching process failed; rerun with workers=1 to see why")

    def epoch(self, perm: np.ndarray, W_prev: np.ndarray | None, b_prev: np.ndarray | None):
        """Start an epoch in ``perm`` order (evaluating ``W_prev`` if given); yield each batch's rows."""
        self.perm[:] = perm
        if W_prev is not None:
            self.W_prev[:] = W_prev
            self.b_prev[:] = b_prev
        os.write(self.cmd_w, b"E" if W_prev is not None else b"G")
        for j, start in enumerate(range(0, self.n, self.n_batch)):
            self._expect(b"r")
            yield self.buffers[j % 2][:min(self.n_batch, self.n - start)]
            os.write(self.cmd_w, b"c")

    def metrics_of_previous(self) -> tuple[dict, dict]:
        self._expect(b"k")
        m = self.metrics.tolist()
        return dict(zip(self.KEYS, m[:3])), dict(zip(self.KEYS, m[3:]))

    def close(self) -> None:
        try:
            os.write(self.cmd_w, b"Q")
        except OSError:
            pass
        os.close(self.cmd_w)
        os.close(self.ack_r)
        os.waitpid(self.pid, 0)


def _gathered(X: np.ndarray, perm: np.ndarray, n_batch: int, buf: np.ndarray):
    """Yield each batch's rows ``X[perm[start:start + n_batch]]``, gathered into ``buf``."""
    for start in range(0, perm.size, n_batch):
        idx = perm[start:start + n_batch]
        yield np.take(X, idx, axis=0, out=buf[:idx.size], mode="clip")  # the indices are a permutation: valid


def train(X: np.ndarray, Y: np.ndarray, X_val: np.ndarray, Y_val: np.ndarray, cfg: RunConfig,
          on_epoch: Callable[[dict], object] | None = None, stop: threading.Event | None = None,
          workers: int = 1) -> TrainResult:
    """:func:`assignment1.train.train`, faster: the same arguments, the same result to rounding.

    ``workers=2`` (where ``os.fork`` exists) gives the gathering of batches and
    the per-epoch evaluation to a second process, on the second core; results
    are bit-identical to ``workers=1``, which uses one core (as each of the
    report's parallel runs does). The history of an epoch is complete once the
    next epoch has run, so ``on_epoch`` is called one epoch late. A ``stop`` set
    while an epoch trains ends the run after that epoch, as in the plain loop;
    one set by ``on_epoch`` ends it one epoch later than there.
    """
    lam, loss, n_batch, dtype = cfg.lam, cfg.loss, cfg.n_batch, cfg.dtype
    score_gradients = SCORE_GRADIENTS[loss]
    X, Y, X_val, Y_val = (np.ascontiguousarray(a, dtype=dtype) for a in (X, Y, X_val, Y_val))
    y = Y.argmax(axis=1)
    n, d = X.shape
    K = Y.shape[1]
    init_seq, shuffle_rng, flip_rng = plain.random_streams(cfg.seed)
    W, b = plain.init_params(K, d, init_seq, cfg.init_std, dtype)
    gemm = get_blas_funcs("gemm", (W,))

    Xb_buf, S_buf = np.empty((n_batch, d), dtype), np.empty((n_batch, K), dtype)
    S_eval = np.empty((n, K), dtype)  # scores of the previous epoch's weights, in this epoch's order
    history = plain.empty_history()
    snapshots = [(W.copy(), b.copy())]  # weights after the last two epochs (at first: the initial ones)
    pending = None  # (epoch, eta, seconds) of the epoch whose evaluation is under way
    diverged = stopped = False
    prefetcher = None

    with threadpool_limits(limits=1), np.errstate(over="ignore", invalid="ignore"):
        if workers == 2 and hasattr(os, "fork"):
            prefetcher = BatchPrefetcher(X, Y, X_val, Y_val, n_batch, lam, loss)
        try:
            for epoch in range(cfg.n_epochs):
                t0 = time.perf_counter()
                eta_e = cfg.eta_at(epoch)
                W_prev, b_prev = snapshots[-1]
                fused = epoch > 0  # evaluate the previous epoch's weights on the way
                perm = shuffle_rng.permutation(n)
                flips = flip_rng.random(n) < 0.5 if cfg.flip else None
                ye = y[perm]
                decay = 1 - 2 * eta_e * lam  # the L2 term of the gradient, 2 lam W, folded into the step
                batches = (prefetcher.epoch(perm, *((W_prev, b_prev) if fused else (None, None)))
                           if prefetcher is not None else _gathered(X, perm, n_batch, Xb_buf))
                for start, Xb in zip(range(0, n, n_batch), batches):
                    m = Xb.shape[0]
                    if fused and prefetcher is None:  # before any row is flipped
                        score_rows(Xb, W_prev, S_eval[start:start + m])
                    if cfg.flip:
                        rows = np.flatnonzero(flips[start:start + m])
                        Xb[rows] = mirror(Xb[rows])
                    S = score_rows(Xb, W, S_buf[:m])
                    S += b
                    G = score_gradients(S, ye[start:start + m])
                    G *= eta_e / m
                    for k, sl in enumerate(row_blocks(m)):  # W^T <- decay W^T - Xb^T G, block by block, in place
                        gemm(-1.0, Xb[sl].T, G[sl].T, beta=decay if k == 0 else 1.0, c=W.T, trans_b=True,
                             overwrite_c=True)
                    b -= G.sum(axis=0)
                seconds = time.perf_counter() - t0
                if fused:
                    tr, va = prefetcher.metrics_of_previous() if prefetcher is not None else _epoch_metrics(
                        S_eval, W_prev, b_prev, Y[perm], X_val, Y_val, lam, loss)
                    if not plain.finite(tr, va):
                        (W, b), diverged = snapshots[0], True  # the previous epoch failed: keep the one before
                        break
                    plain.record(history, *pending, tr, va)
                    if on_epoch is not None:
                        on_epoch(history)
                if not (np.isfinite(W).all() and np.isfinite(b).all()):
                    (W, b), diverged = snapshots[-1], True
                    break
                snapshots = [snapshots[-1], (W.copy(), b.copy())]
                pending = (epoch + 1, eta_e, seconds)
                if stop is not None and stop.is_set():
                    stopped = epoch + 1 < cfg.n_epochs
                    break
            if not diverged:  # the last epoch has no next one to fuse its evaluation into
                tr, va = (model.evaluate(W, b, X, Y, lam, loss), model.evaluate(W, b, X_val, Y_val, lam, loss))
                if not plain.finite(tr, va):
                    (W, b), diverged, stopped = snapshots[0], True, False
                else:
                    plain.record(history, *pending, tr, va)
                    if on_epoch is not None:
                        on_epoch(history)
        finally:
            if prefetcher is not None:
                prefetcher.close()
    return TrainResult(W=W, b=b, history=history, diverged=diverged, stopped=stopped)
