"""Mini-batch gradient descent for the one-layer network.

Training returns its history; it prints nothing unless ``progress`` is set.
Randomness comes from one seed split into independent streams (initialization,
shuffling, flipping), so two runs with the same seed are bit-identical and runs
that differ only in ``lam`` or ``eta`` start from the same weights.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from . import model, validate
from .data import DTYPES, FLIP_INDEX

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
    blas_threads: int | None = 1,
    progress: bool = False,
    on_epoch: Callable[[int, int], None] | None = None,
) -> TrainResult:
    """Train ``(W, b)`` on ``X: (n, d)``, ``Y: (n, K)`` by mini-batch gradient descent.

    Each epoch visits the samples in a fresh random order in batches of
    ``n_batch`` (the last one smaller if ``n_batch`` does not divide ``n``);
    with ``flip`` each sample of a batch is mirrored with probability 0.5.
    ``eta_schedule(epoch)`` (0-based), if given, replaces ``eta`` each epoch.
    After each epoch, loss, cost and accuracy on the training and validation
    data are recorded. ``blas_threads`` pins the BLAS thread count (None leaves
    it), which keeps results bit-identical however runs are scheduled.
    ``on_epoch(epochs_done, n_epochs)`` is called after each epoch (for progress
    reporting). Returns a :class:`TrainResult`.
    """
    check_params(X.shape[0], lam=lam, eta=eta, n_epochs=n_epochs, n_batch=n_batch, seed=seed,
                 loss=loss, init_std=init_std, dtype=dtype)
    loss_fn = model.LOSSES[loss]
    X, Y, X_val, Y_val = (np.asarray(a, dtype=dtype) for a in (X, Y, X_val, Y_val))
    n, d = X.shape
    init_seq, shuffle_seq, flip_seq = np.random.SeedSequence(seed).spawn(3)
    W, b = init_params(Y.shape[1], d, init_seq, init_std, dtype)
    shuffle_rng, flip_rng = np.random.default_rng(shuffle_seq), np.random.default_rng(flip_seq)
    history: dict[str, list[float]] = {k: [] for k in ("epoch", "eta", "seconds", *HISTORY_KEYS)}
    diverged = False

    with threadpool_limits(limits=blas_threads), np.errstate(over="ignore", invalid="ignore"), \
            tqdm(range(n_epochs), desc=f"lam={lam:g} eta={eta:g}", disable=not progress, leave=False) as bar:
        for epoch in bar:
            t0 = time.perf_counter()
            eta_e = float(eta_schedule(epoch)) if eta_schedule else eta
            W_prev, b_prev = W.copy(), b.copy()
            perm = shuffle_rng.permutation(n)
            for start in range(0, n, n_batch):
                idx = perm[start:start + n_batch]
                Xb, Yb = X[idx], Y[idx]
                if flip:
                    mirror = flip_rng.random(idx.size) < 0.5
                    Xb[mirror] = Xb[mirror][:, FLIP_INDEX]
                step = loss_fn(W, b, Xb, Yb, lam)
                W -= eta_e * step.dW
                b -= eta_e * step.db
            tr = model.evaluate(W, b, X, Y, lam, loss)
            va = model.evaluate(W, b, X_val, Y_val, lam, loss)
            if not (np.isfinite(tr["cost"]) and np.isfinite(va["cost"]) and np.isfinite(W).all()):
                diverged = True
                W, b = W_prev, b_prev
                break
            for key, value in (("epoch", epoch + 1), ("eta", eta_e), ("seconds", time.perf_counter() - t0),
                               *((f"train_{k}", v) for k, v in tr.items()),
                               *((f"val_{k}", v) for k, v in va.items())):
                history[key].append(value)
            bar.set_postfix(train_acc=f"{tr['acc']:.3f}", val_acc=f"{va['acc']:.3f}")
            if on_epoch is not None:
                on_epoch(epoch + 1, n_epochs)
    return TrainResult(W=W, b=b, history=history, diverged=diverged)
