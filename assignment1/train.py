"""Mini-batch gradient descent for the one-layer network.

Training returns its history; it prints nothing unless ``progress`` is set.
Randomness comes from one seed split into independent streams (initialization,
shuffling, flipping), so two runs with the same seed are bit-identical and runs
that differ only in ``lam`` or ``eta`` start from the same weights.
"""

from __future__ import annotations

import functools
import mmap
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import get_blas_funcs
from threadpoolctl import threadpool_limits

from . import model, validate
from .data import DTYPES
from .data import flip as mirror
from .progress import bar as progress_bar

HISTORY_KEYS = ("train_loss", "train_cost", "train_acc", "val_loss", "val_cost", "val_acc")


@dataclass(frozen=True)
class StepSchedule:
    """Learning rate ``eta0 * factor ** m`` where ``m`` milestones are <= the epoch (0-based).

    ``StepSchedule(0.01, (40, 80))`` gives 0.01 for epochs 0-39, 0.001 for 40-79
    and 0.0001 from 80 on.
    """

    eta0: float
    milestones: tuple[int, ...] = ()
    factor: float = 0.1

    def __post_init__(self):
        validate.positive("eta0", self.eta0)
        validate.positive("factor", self.factor)
        ms = tuple(validate.integer("milestones", m, low=1) for m in self.milestones)
        if list(ms) != sorted(set(ms)):
            raise validate.ParameterError(f"milestones must be increasing, got {list(self.milestones)}")
        object.__setattr__(self, "milestones", ms)

    def __call__(self, epoch: int) -> float:
        return self.eta0 * self.factor ** sum(epoch >= m for m in self.milestones)


@dataclass
class TrainResult:
    """What a run produced: final ``W: (K, d)``, ``b: (K,)`` and the per-epoch history.

    ``history`` maps ``epoch`` (1-based), ``eta``, ``seconds`` and each of
    :data:`HISTORY_KEYS` to one value per completed epoch. A run whose cost
    became non-finite is ``diverged``; it keeps the weights and history of its
    last finite epoch.
    """

    W: np.ndarray
    b: np.ndarray
    history: dict[str, list[float]] = field(default_factory=dict)
    diverged: bool = False


def init_params(K: int, d: int, seed: int | np.random.SeedSequence = 0, std: float = 0.1,
                dtype: str = "float32") -> tuple[np.ndarray, np.ndarray]:
    """``W: (K, d)`` and ``b: (K,)`` drawn from N(0, std^2) (the seed's code used std 0.1)."""
    rng = np.random.default_rng(seed)
    W = rng.normal(0.0, std, size=(K, d))
    b = rng.normal(0.0, std, size=K)
    return W.astype(dtype), b.astype(dtype)


def check_params(n: int, *, lam, eta, n_epochs, n_batch, seed, loss, init_std, dtype) -> None:
    """Refuse bad training parameters before any work, naming the parameter."""
    validate.non_negative("lam", lam)
    validate.positive("eta", eta)
    validate.integer("n_epochs", n_epochs, low=1)
    validate.integer("n_batch", n_batch, low=1, high=n)
    validate.integer("seed", seed, low=0)
    validate.choice("loss", loss, model.LOSSES)
    validate.positive("init_std", init_std)
    validate.choice("dtype", dtype, DTYPES)


MAX_BLOCK_ROWS = 32  # BLAS products of at most this many rows by (3072 x 10) run near peak speed here


@functools.lru_cache(maxsize=8)
def row_blocks(m: int) -> tuple[slice, ...]:
    """Split ``m`` rows into the fewest near-equal blocks of at most :data:`MAX_BLOCK_ROWS`.

    The split depends on ``m`` only, so results do not depend on the machine's timing.
    """
    count = -(-m // MAX_BLOCK_ROWS)
    edges = [round(i * m / count) for i in range(count + 1)]
    return tuple(slice(a, b) for a, b in zip(edges, edges[1:]))


def _score_rows(Xb: np.ndarray, W: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = Xb W^T`` for ``Xb: (m, d)``, in :func:`row_blocks`, so it is bit-identical wherever it runs."""
    for sl in row_blocks(Xb.shape[0]):
        np.matmul(Xb[sl], W.T, out=out[sl])
    return out


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


class _Partner:
    """A forked process that gathers the batches and evaluates the previous epoch, beside training.

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
                    _score_rows(Xb, self.W_prev, S_eval[start:start + idx.size])
                os.write(ack_w, b"r")
            if cmd == b"E":
                tr, va = _epoch_metrics(S_eval, self.W_prev, self.b_prev, Y[self.perm], X_val, Y_val, lam, loss)
                self.metrics[:] = [tr[k] for k in self.KEYS] + [va[k] for k in self.KEYS]
                os.write(ack_w, b"k")

    def _expect(self, what: bytes) -> None:
        if os.read(self.ack_r, 1) != what:
            raise RuntimeError("the helper process failed; rerun with workers=1 to see why")

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
        # mode='clip' (the indices are a permutation, always valid) spares the copy that
        # 'raise' makes through a temporary buffer
        yield np.take(X, idx, axis=0, out=buf[:idx.size], mode="clip")


def train(
    X: np.ndarray,
    Y: np.ndarray,
    X_val: np.ndarray,
    Y_val: np.ndarray,
    *,
    lam: float,
    eta: float,
    n_epochs: int = 40,
    n_batch: int = 100,
    seed: int = 0,
    loss: str = "ce",
    flip: bool = False,
    eta_schedule: Callable[[int], float] | None = None,
    init_std: float = 0.1,
    dtype: str = "float32",
    workers: int = 1,
    progress: bool = False,
    on_epoch: Callable[[int, int], None] | None = None,
) -> TrainResult:
    """Train ``(W, b)`` on ``X: (n, d)``, ``Y: (n, K)`` by mini-batch gradient descent.

    Each epoch visits the samples in a fresh random order in batches of
    ``n_batch`` (the last one smaller if ``n_batch`` does not divide ``n``);
    with ``flip`` each sample is mirrored with probability 0.5 (drawn afresh
    each epoch). ``eta_schedule(epoch)`` (0-based), if given, replaces ``eta``
    each epoch. After each epoch, loss, cost and accuracy on the training and
    validation data are recorded. ``workers=2`` (where ``os.fork`` exists) gives
    the gathering of batches and that evaluation to a second process, on the
    second core; results are bit-identical to ``workers=1``, which uses one core
    (as runs in parallel do). ``on_epoch(epochs_done, n_epochs)`` is called after
    each epoch (for progress reporting). Returns a :class:`TrainResult`.

    How the work is arranged (the arithmetic is plain mini-batch gradient descent,
    ``W <- W - eta (G^T X_b / m + 2 lam W)``): each batch is gathered once into
    a reused buffer; BLAS runs on one thread, on blocks of at most 32 rows, where
    its small-matrix kernels are fast, and the backward product accumulates
    straight into ``W``. The training-set evaluation of epoch ``e``'s weights is
    fused into epoch ``e + 1``: each gathered block is also multiplied by those
    weights, before any of its rows is flipped, so the data is read once per
    epoch instead of twice; the last epoch is evaluated by a separate pass. Independent
    runs go to separate processes, one core each (:mod:`assignment1.experiments`).
    """
    check_params(X.shape[0], lam=lam, eta=eta, n_epochs=n_epochs, n_batch=n_batch, seed=seed,
                 loss=loss, init_std=init_std, dtype=dtype)
    validate.integer("workers", workers, low=1, high=2)
    sample_grads = model.SAMPLE_GRADS[loss]
    X, Y, X_val, Y_val = (np.ascontiguousarray(a, dtype=dtype) for a in (X, Y, X_val, Y_val))
    y = Y.argmax(axis=1)
    n, d = X.shape
    K = Y.shape[1]
    init_seq, shuffle_seq, flip_seq = np.random.SeedSequence(seed).spawn(3)
    W, b = init_params(K, d, init_seq, init_std, dtype)
    shuffle_rng, flip_rng = np.random.default_rng(shuffle_seq), np.random.default_rng(flip_seq)
    gemm = get_blas_funcs("gemm", (W,))

    Xb_buf, S_buf = np.empty((n_batch, d), dtype), np.empty((n_batch, K), dtype)
    S_eval = np.empty((n, K), dtype)  # scores of the previous epoch's weights, in this epoch's order
    partner = None  # with workers=2, the process that evaluates instead
    history: dict[str, list[float]] = {k: [] for k in ("epoch", "eta", "seconds", *HISTORY_KEYS)}
    snapshots = [(W.copy(), b.copy())]  # weights after the last two epochs (at first: the initial ones)
    diverged = False

    def record(tr, va) -> bool:
        if not (np.isfinite(tr["cost"]) and np.isfinite(va["cost"])):
            return False
        for k in tr:
            history[f"train_{k}"].append(tr[k])
            history[f"val_{k}"].append(va[k])
        bar.set_postfix(val_acc=f"{va['acc']:.3f}")
        return True

    def evaluate(W_e, b_e):
        return model.evaluate(W_e, b_e, X, Y, lam, loss), model.evaluate(W_e, b_e, X_val, Y_val, lam, loss)

    with threadpool_limits(limits=1), np.errstate(over="ignore", invalid="ignore"), \
            progress_bar(range(n_epochs), show=progress, desc=f"lam={lam:g} eta={eta:g}", leave=False) as bar:
        if workers == 2 and hasattr(os, "fork"):
            partner = _Partner(X, Y, X_val, Y_val, n_batch, lam, loss)
        try:
            for epoch in bar:
                t0 = time.perf_counter()
                eta_e = float(eta_schedule(epoch)) if eta_schedule else eta
                W_prev, b_prev = snapshots[-1]
                fused = epoch > 0  # evaluate the previous epoch's weights on the way
                perm = shuffle_rng.permutation(n)
                flips = flip_rng.random(n) < 0.5 if flip else None
                ye = y[perm]
                decay = 1 - 2 * eta_e * lam  # the L2 term of the gradient, 2 lam W, folded into the step
                batches = (partner.epoch(perm, *((W_prev, b_prev) if fused else (None, None)))
                           if partner is not None else _gathered(X, perm, n_batch, Xb_buf))
                for start, Xb in zip(range(0, n, n_batch), batches):
                    m = Xb.shape[0]
                    if fused and partner is None:  # before any row is flipped
                        _score_rows(Xb, W_prev, S_eval[start:start + m])
                    if flip:
                        rows = np.flatnonzero(flips[start:start + m])
                        Xb[rows] = mirror(Xb[rows])
                    S = _score_rows(Xb, W, S_buf[:m])
                    S += b
                    G = sample_grads(S, ye[start:start + m])
                    G *= eta_e / m
                    for k, sl in enumerate(row_blocks(m)):  # W^T <- decay W^T - Xb^T G, block by block, in place
                        gemm(-1.0, Xb[sl].T, G[sl].T, beta=decay if k == 0 else 1.0, c=W.T, trans_b=True,
                             overwrite_c=True)
                    b -= G.sum(axis=0)
                if fused:
                    tr, va = partner.metrics_of_previous() if partner is not None else _epoch_metrics(
                        S_eval, W_prev, b_prev, Y[perm], X_val, Y_val, lam, loss)
                    if not record(tr, va):
                        # that epoch failed: keep the one before it
                        diverged, keep, restore = True, epoch - 1, snapshots[0]
                        break
                if not (np.isfinite(W).all() and np.isfinite(b).all()):
                    diverged, keep, restore = True, epoch, snapshots[-1]
                    break
                snapshots = [snapshots[-1], (W.copy(), b.copy())]
                for key, value in (("epoch", epoch + 1), ("eta", eta_e), ("seconds", time.perf_counter() - t0)):
                    history[key].append(value)
                if on_epoch is not None:
                    on_epoch(epoch + 1, n_epochs)
            else:
                if not record(*evaluate(W, b)):
                    diverged, keep, restore = True, n_epochs - 1, snapshots[0]
        finally:
            if partner is not None:
                partner.close()
    if diverged:
        # keep only the epochs whose weights and evaluation are finite, and those weights
        for key in history:
            del history[key][keep:]
        W, b = restore
    return TrainResult(W=W, b=b, history=history, diverged=diverged)
