"""Mini-batch gradient descent for the one-layer network: the textbook loop.

Each epoch shuffles the training samples, walks through them in mini-batches,
takes the cost's gradients from :mod:`assignment1.model` and steps
``W -= eta * dW``, then records loss, cost and accuracy on the training and
validation data. :mod:`assignment1.sweep` runs this loop for several runs at
once, faster; a test keeps the two equal.

Randomness comes from one seed split into independent streams (initialization,
shuffling, flipping, translating), so two runs with the same seed are bit-identical and runs
that differ only in ``lam`` or ``eta`` start from the same weights.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import model
from .config import RunConfig
from .data import flip as mirror
from .data import translate

HISTORY_KEYS = ("train_loss", "train_cost", "train_acc", "val_loss", "val_cost", "val_acc")
#: The training metrics of a run that does not evaluate them (``evaluate_train=False``).
NOT_MEASURED = {"loss": float("nan"), "cost": float("nan"), "acc": float("nan")}


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


def random_streams(seed: int) -> tuple[np.random.SeedSequence, np.random.Generator, np.random.Generator,
                                       np.random.Generator]:
    """Independent random streams from one seed: initialization (a seed sequence), shuffling, flipping and
    translating (a fourth child of the seed leaves the first three as they were)."""
    init_seq, *seqs = np.random.SeedSequence(seed).spawn(4)
    return init_seq, *(np.random.default_rng(s) for s in seqs)


def empty_history() -> dict[str, list[float]]:
    return {k: [] for k in ("epoch", "eta", "seconds", *HISTORY_KEYS)}


def record(history: dict, epoch: int, eta: float, seconds: float, train: dict, val: dict) -> None:
    """Append one epoch: its number (1-based), learning rate, wall time and the metrics of its weights."""
    for key, value in (("epoch", epoch), ("eta", eta), ("seconds", seconds)):
        history[key].append(value)
    for k in ("loss", "cost", "acc"):
        history[f"train_{k}"].append(train[k])
        history[f"val_{k}"].append(val[k])


def average(W_avg: np.ndarray, b_avg: np.ndarray, W: np.ndarray, b: np.ndarray, k: int) -> tuple:
    """In place, the running means ``W_avg: (K, d)``, ``b_avg: (K,)`` of ``k`` epochs' weights with ``W, b``
    added (``k = 0``: they become ``W, b``); returns them."""
    W_avg += (W - W_avg) / (k + 1)
    b_avg += (b - b_avg) / (k + 1)
    return W_avg, b_avg


def finite(*metrics: dict) -> bool:
    """Whether every measured cost in ``metrics`` is finite (a diverged run's is inf or nan)."""
    return all(np.isfinite(m["cost"]) for m in metrics if m is not NOT_MEASURED)


def train(X: np.ndarray, Y: np.ndarray, X_val: np.ndarray, Y_val: np.ndarray, cfg: RunConfig,
          on_epoch: Callable[[dict], object] | None = None, stop: threading.Event | None = None) -> TrainResult:
    """Train ``(W, b)`` on ``X: (n, d)``, ``Y: (n, K)`` one-hot by mini-batch gradient descent.

    Each epoch visits the samples in a fresh random order in batches of
    ``cfg.n_batch`` (at most ``n``; the last batch is smaller if it does not
    divide ``n``); with ``cfg.flip`` each sample is mirrored with probability
    0.5, drawn afresh each epoch, and with ``cfg.shift`` moved by up to that many
    pixels down or up and right or left (:func:`assignment1.data.translate`). ``cfg.loss`` names the cost (see
    :data:`assignment1.model.LOSSES`) and ``cfg.eta_at(epoch)`` the learning
    rate. From epoch ``cfg.first_averaged`` on, the run's weights are the mean
    of its end-of-epoch weights so far (none, without ``cfg.average``). After
    each epoch the loss, cost and accuracy of the run's weights on the training
    data (NaN unless ``cfg.evaluate_train``) and the validation data are
    recorded, then ``on_epoch(history)`` is called (to show progress: what it
    returns is ignored). Training ends early only if ``stop`` is set: after
    the epoch under way. Returns a :class:`TrainResult`.
    """
    cost_and_gradients = model.LOSSES[cfg.loss]
    X, Y, X_val, Y_val = (np.asarray(a, dtype=cfg.dtype) for a in (X, Y, X_val, Y_val))
    n, d = X.shape
    init_seq, shuffle_rng, flip_rng, shift_rng = random_streams(cfg.seed)
    W, b = init_params(Y.shape[1], d, init_seq, cfg.init_std, cfg.dtype)
    kept, (W_avg, b_avg) = (W.copy(), b.copy()), (W.copy(), b.copy())  # the run's weights, and a running mean
    history = empty_history()
    diverged = stopped = False

    with np.errstate(over="ignore", invalid="ignore"):  # a diverging run overflows; it is caught below
        for epoch in range(cfg.n_epochs):
            t0 = time.perf_counter()
            eta = cfg.eta_at(epoch)
            order = shuffle_rng.permutation(n)
            mirrored = flip_rng.random(n) < 0.5 if cfg.flip else None
            moves = shift_rng.integers(-cfg.shift, cfg.shift + 1, size=(n, 2)) if cfg.shift else None
            for start in range(0, n, cfg.n_batch):
                batch = order[start:start + cfg.n_batch]
                Xb = X[batch]
                if cfg.flip:
                    to_flip = mirrored[start:start + cfg.n_batch]
                    Xb[to_flip] = mirror(Xb[to_flip])
                if cfg.shift:
                    Xb = translate(Xb, moves[start:start + cfg.n_batch])
                _, _, dW, db = cost_and_gradients(W, b, Xb, Y[batch], cfg.lam)
                W -= eta * dW
                b -= eta * db
            W_out, b_out = (W, b) if epoch < cfg.first_averaged else average(W_avg, b_avg, W, b,
                                                                             epoch - cfg.first_averaged)
            train_metrics = model.evaluate(W_out, b_out, X, Y, cfg.lam, cfg.loss) if cfg.evaluate_train \
                else NOT_MEASURED
            val_metrics = model.evaluate(W_out, b_out, X_val, Y_val, cfg.lam, cfg.loss)
            if not finite(train_metrics, val_metrics):
                diverged = True  # the run keeps the weights of its last epoch whose cost was finite
                break
            kept = W_out.copy(), b_out.copy()
            record(history, epoch + 1, eta, time.perf_counter() - t0, train_metrics, val_metrics)
            if on_epoch is not None:
                on_epoch(history)
            if stop is not None and stop.is_set():
                stopped = epoch + 1 < cfg.n_epochs
                break
    return TrainResult(*kept, history=history, diverged=diverged, stopped=stopped)
