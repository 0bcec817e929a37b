"""Mini-batch gradient descent for the one-layer network: the textbook loop.

Each epoch shuffles the training samples, walks through them in mini-batches,
takes the cost's gradients from :mod:`assignment1.model` and steps
``W -= eta * dW``, then records loss, cost and accuracy on the training and
validation data. :mod:`assignment1.train_fast` runs exactly this loop faster
(and is what the report and the command line use); a test keeps the two equal.

Randomness comes from one seed split into independent streams (initialization,
shuffling, flipping), so two runs with the same seed are bit-identical and runs
that differ only in ``lam`` or ``eta`` start from the same weights.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import model, validate
from .data import DTYPES
from .data import flip as mirror

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
            raise validate.ParameterError("milestones", "be strictly increasing", list(self.milestones))
        object.__setattr__(self, "milestones", ms)

    def __call__(self, epoch: int) -> float:
        return self.eta0 * self.factor ** sum(epoch >= m for m in self.milestones)


@dataclass
class TrainResult:
    """What a run produced: final ``W: (K, d)``, ``b: (K,)`` and the per-epoch history.

    ``history`` maps ``epoch`` (1-based), ``eta``, ``seconds`` and each of
    :data:`HISTORY_KEYS` to one value per completed epoch. A run whose cost
    became non-finite is ``diverged``; it keeps the weights and history of its
    last finite epoch. A run ended early by its ``stop`` event is ``stopped``.
    """

    W: np.ndarray
    b: np.ndarray
    history: dict[str, list[float]] = field(default_factory=dict)
    diverged: bool = False
    stopped: bool = False


def init_params(K: int, d: int, seed: int | np.random.SeedSequence = 0, std: float = 0.1,
                dtype: str = "float32") -> tuple[np.ndarray, np.ndarray]:
    """``W: (K, d)`` and ``b: (K,)`` drawn from N(0, std^2) (the reference report used std 0.1)."""
    rng = np.random.default_rng(seed)
    W = rng.normal(0.0, std, size=(K, d))
    b = rng.normal(0.0, std, size=K)
    return W.astype(dtype), b.astype(dtype)


def random_streams(seed: int) -> tuple[np.random.SeedSequence, np.random.Generator, np.random.Generator]:
    """Three independent random streams from one seed: initialization (a seed sequence), shuffling and flipping."""
    init_seq, shuffle_seq, flip_seq = np.random.SeedSequence(seed).spawn(3)
    return init_seq, np.random.default_rng(shuffle_seq), np.random.default_rng(flip_seq)


def check_params(*, lam, eta, n_epochs, n_batch, seed, loss, init_std, dtype, n: int | None = None) -> None:
    """Refuse bad training parameters before any work, naming the parameter; ``n``: training samples, if known."""
    validate.non_negative("lam", lam)
    validate.positive("eta", eta)
    validate.integer("n_epochs", n_epochs, low=1)
    validate.integer("n_batch", n_batch, low=1, high=n)
    validate.integer("seed", seed, low=0)
    validate.choice("loss", loss, model.LOSSES)
    validate.positive("init_std", init_std)
    validate.choice("dtype", dtype, DTYPES)


def empty_history() -> dict[str, list[float]]:
    return {k: [] for k in ("epoch", "eta", "seconds", *HISTORY_KEYS)}


def record(history: dict, epoch: int, eta: float, seconds: float, train: dict, val: dict) -> None:
    """Append one epoch: its number (1-based), learning rate, wall time and the metrics of its weights."""
    for key, value in (("epoch", epoch), ("eta", eta), ("seconds", seconds)):
        history[key].append(value)
    for k in ("loss", "cost", "acc"):
        history[f"train_{k}"].append(train[k])
        history[f"val_{k}"].append(val[k])


def finite(*metrics: dict) -> bool:
    """Whether every cost in ``metrics`` is finite (a diverged run's is inf or nan)."""
    return all(np.isfinite(m["cost"]) for m in metrics)


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
    on_epoch: Callable[[dict], object] | None = None,
    stop: threading.Event | None = None,
) -> TrainResult:
    """Train ``(W, b)`` on ``X: (n, d)``, ``Y: (n, K)`` one-hot by mini-batch gradient descent.

    Each epoch visits the samples in a fresh random order in batches of
    ``n_batch`` (the last one smaller if ``n_batch`` does not divide ``n``);
    with ``flip`` each sample is mirrored with probability 0.5, drawn afresh
    each epoch. ``loss`` names the cost (``"ce"`` or ``"mbce"``, see
    :data:`assignment1.model.LOSSES`); ``eta_schedule(epoch)`` (0-based), if
    given, replaces ``eta``. After each epoch the loss, cost and accuracy on
    the training and validation data are recorded, then ``on_epoch(history)``
    is called (to show progress: what it returns is ignored). Training ends
    early only if ``stop`` is set: after the epoch under way. Returns a :class:`TrainResult`.
    """
    check_params(lam=lam, eta=eta, n_epochs=n_epochs, n_batch=n_batch, seed=seed, loss=loss,
                 init_std=init_std, dtype=dtype, n=X.shape[0])
    cost_and_gradients = model.LOSSES[loss]
    X, Y, X_val, Y_val = (np.asarray(a, dtype=dtype) for a in (X, Y, X_val, Y_val))
    n, d = X.shape
    init_seq, shuffle_rng, flip_rng = random_streams(seed)
    W, b = init_params(Y.shape[1], d, init_seq, init_std, dtype)
    history = empty_history()
    diverged = stopped = False

    with np.errstate(over="ignore", invalid="ignore"):  # a diverging run overflows; it is caught below
        for epoch in range(n_epochs):
            t0 = time.perf_counter()
            eta_e = float(eta_schedule(epoch)) if eta_schedule else eta
            W_before, b_before = W.copy(), b.copy()
            order = shuffle_rng.permutation(n)
            mirrored = flip_rng.random(n) < 0.5 if flip else None
            for start in range(0, n, n_batch):
                batch = order[start:start + n_batch]
                Xb = X[batch]
                if flip:
                    to_flip = mirrored[start:start + n_batch]
                    Xb[to_flip] = mirror(Xb[to_flip])
                _, _, dW, db = cost_and_gradients(W, b, Xb, Y[batch], lam)
                W -= eta_e * dW
                b -= eta_e * db
            train_metrics = model.evaluate(W, b, X, Y, lam, loss)
            val_metrics = model.evaluate(W, b, X_val, Y_val, lam, loss)
            if not finite(train_metrics, val_metrics):
                W, b, diverged = W_before, b_before, True  # keep the last epoch whose cost was finite
                break
            record(history, epoch + 1, eta_e, time.perf_counter() - t0, train_metrics, val_metrics)
            if on_epoch is not None:
                on_epoch(history)
            if stop is not None and stop.is_set():
                stopped = epoch + 1 < n_epochs
                break
    return TrainResult(W=W, b=b, history=history, diverged=diverged, stopped=stopped)
