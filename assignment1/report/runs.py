"""One training run of the report: what determines it, what it produced, and how it is computed."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from .. import data, model, train, validate
from ..train import StepSchedule
from ..train_fast import ENGINES


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines one training run (with the data and the code).

    ``engine`` names the training loop: ``"fast"`` (:mod:`assignment1.train_fast`)
    or ``"plain"`` (:mod:`assignment1.train`, the textbook loop); they agree to rounding.
    """

    lam: float
    eta: float
    n_epochs: int = 40
    n_batch: int = 100
    seed: int = 0
    loss: str = "ce"
    flip: bool = False
    val_size: int = 5000
    schedule: StepSchedule | None = None
    normalize: str = "per_feature"
    dtype: str = "float32"
    init_std: float = 0.1
    engine: str = "fast"

    def __post_init__(self):
        # numbers in one canonical type, so 0 and 0.0 give the same cache key
        for name in ("lam", "eta", "init_std"):
            object.__setattr__(self, name, validate.real(name, getattr(self, name)))
        train.check_params(lam=self.lam, eta=self.eta, n_epochs=self.n_epochs, n_batch=self.n_batch, seed=self.seed,
                           loss=self.loss, init_std=self.init_std, dtype=self.dtype)
        validate.choice("flip", self.flip, (True, False))
        validate.integer("val_size", self.val_size, low=1)
        validate.choice("normalize", self.normalize, data.NORMALIZATIONS)
        validate.choice("engine", self.engine, ENGINES)
        if isinstance(self.schedule, dict):
            s = self.schedule
            object.__setattr__(self, "schedule", StepSchedule(s["eta0"], tuple(s["milestones"]), s["factor"]))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def label(self) -> str:
        """The setting in a few words: ``lam=0.1, eta=0.001`` (with the loss, flips and schedule if any)."""
        parts = [f"lam={self.lam:g}", f"eta={self.eta_text if self.schedule else format(self.eta, 'g')}"]
        if self.loss != "ce":
            parts.append(self.loss)
        if self.flip:
            parts.append("flip")
        return ", ".join(parts)

    @property
    def eta_text(self) -> str:
        """The learning rate as tables show it: a constant, or where it starts and when it drops."""
        if self.schedule is None:
            return f"{self.eta:g} constant"
        s = self.schedule
        return f"{s.eta0:g}, x{s.factor:g} at epochs {', '.join(map(str, s.milestones))}"

    def setting_id(self) -> str:
        """What identifies the setting: every field but the seed (the runs of one setting share it)."""
        return json.dumps({k: v for k, v in self.to_dict().items() if k != "seed"}, sort_keys=True)


def grid(settings: Iterable, seeds: Iterable[int], **common) -> list[RunConfig]:
    """One :class:`RunConfig` per ``(lam, eta)`` in ``settings`` and seed in ``seeds``, sharing ``common``."""
    seeds = list(seeds)
    return [RunConfig(lam=lam, eta=eta, seed=s, **common) for lam, eta in settings for s in seeds]


@dataclass
class RunResult:
    """A finished run: ``W: (K, d)``, ``b: (K,)``, history and test-set outcome.

    ``test`` holds loss, cost and accuracy; ``test_pred: (n_test,)`` the predicted
    labels; ``test_p_true: (n_test,)`` the probability given to the true class
    (softmax for ``ce``, the true class's sigmoid for ``mbce``). All three are
    None for a run whose test set was not to be looked at (a search candidate).
    ``seconds`` is the wall time its training took; ``cached`` says it was
    read from the run store rather than trained by this process.
    """

    config: RunConfig
    W: np.ndarray
    b: np.ndarray
    history: dict[str, list]
    diverged: bool
    test: dict[str, float] | None
    test_pred: np.ndarray | None
    test_p_true: np.ndarray | None
    seconds: float
    cached: bool = field(default=False, compare=False)


def train_run(cfg: RunConfig, ds: data.Dataset, on_epoch: Callable[[dict], object] | None = None,
              stop: threading.Event | None = None) -> RunResult:
    """Train ``cfg`` on ``ds``'s training split with its engine; the test set is not looked at.

    ``on_epoch(history)`` shows progress; only ``stop`` ends a run early (see :func:`assignment1.train.train`).

    BLAS runs on one thread: a product split among threads may round differently, and a run's
    numbers must not depend on the process it ran in (the report's runs go to parallel workers).
    """
    t0 = time.perf_counter()
    with threadpool_limits(limits=1):
        r = ENGINES[cfg.engine](ds.train.X, ds.train.Y, ds.val.X, ds.val.Y, lam=cfg.lam, eta=cfg.eta,
                                n_epochs=cfg.n_epochs, n_batch=cfg.n_batch, seed=cfg.seed, loss=cfg.loss,
                                flip=cfg.flip, eta_schedule=cfg.schedule, init_std=cfg.init_std, dtype=cfg.dtype,
                                on_epoch=on_epoch, stop=stop)
    return RunResult(config=cfg, W=r.W, b=r.b, history=r.history, diverged=r.diverged, test=None,
                     test_pred=None, test_p_true=None, seconds=time.perf_counter() - t0)


def with_test(r: RunResult, ds: data.Dataset) -> RunResult:
    """``r`` with its test-set loss, cost, accuracy, predictions and true-class probabilities (one BLAS thread)."""
    cfg = r.config
    with threadpool_limits(limits=1):
        S = model.scores(r.W, r.b, ds.test.X)
    P = model.ACTIVATIONS[cfg.loss](S)
    return dataclasses.replace(
        r, test=model.evaluate_scores(S, ds.test.Y, r.W, cfg.lam, cfg.loss),
        test_pred=S.argmax(axis=1).astype(np.int16), test_p_true=P[np.arange(ds.test.n), ds.test.y].astype(np.float32))
