"""Training runs as cached, reproducible experiments.

A run is a :class:`RunConfig` trained on one data set. Its result is stored
under ``reports/runs/<key>.npz``, where the key hashes the full configuration,
the data's checksums and the source of the modules that compute results, so a
later section (or a rerun after an interruption) reuses it instead of training
again, and a change to any of them trains afresh. Files are written to a
temporary name and renamed, so an entry is never half-written; an entry that is
damaged anyway is detected, recomputed and reported with a warning.

Independent runs execute in parallel processes through joblib, each with one
BLAS thread, so results do not depend on how they were scheduled.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed

from . import config, data, fetch, model, train, validate
from .files import remove_stale_temporaries, write_atomic
from .progress import bar as progress_bar
from .train import StepSchedule

#: Modules whose source determines a run's numbers; editing one retrains.
CODE_MODULES = ("data", "model", "train", "experiments")
PROGRESS_ENV = "A1_PROGRESS_DIR"


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines one training run (with the data and the code)."""

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

    def __post_init__(self):
        # Store numbers in one canonical type so 0 and 0.0 give the same key.
        object.__setattr__(self, "lam", validate.non_negative("lam", self.lam))
        object.__setattr__(self, "eta", validate.positive("eta", self.eta))
        validate.integer("n_epochs", self.n_epochs, low=1)
        validate.integer("n_batch", self.n_batch, low=1)
        validate.integer("seed", self.seed, low=0)
        validate.choice("loss", self.loss, model.LOSSES)
        validate.choice("flip", self.flip, (True, False))
        validate.integer("val_size", self.val_size, low=1)
        validate.choice("normalize", self.normalize, data.NORMALIZATIONS)
        validate.choice("dtype", self.dtype, data.DTYPES)
        object.__setattr__(self, "init_std", validate.positive("init_std", self.init_std))
        if isinstance(self.schedule, dict):
            sched = self.schedule
            object.__setattr__(self, "schedule", StepSchedule(sched["eta0"], tuple(sched["milestones"]),
                                                             sched["factor"]))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def label(self) -> str:
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

    def without_seed(self) -> str:
        """A hashable identity shared by the seeds of one setting."""
        return json.dumps({k: v for k, v in self.to_dict().items() if k != "seed"}, sort_keys=True)


@dataclass
class RunResult:
    """A finished run: weights, history and test-set outcome.

    ``test`` holds loss, cost and accuracy; ``test_pred: (n_test,)`` the predicted
    labels; ``test_p_true: (n_test,)`` the probability given to the true class
    (softmax for ``ce``, the true class's sigmoid for ``mbce``). All three are
    None for a run whose test set was not to be looked at (a search candidate).
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


@functools.lru_cache(maxsize=1)
def code_hash() -> str:
    """sha256 of the source of :data:`CODE_MODULES`."""
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in CODE_MODULES:
        h.update((here / f"{name}.py").read_bytes())
    return h.hexdigest()


def run_key(cfg: RunConfig, provenance: dict) -> str:
    """The cache key of ``cfg`` trained on the data described by ``provenance``."""
    payload = {"config": cfg.to_dict(), "data": provenance["files"], "code": code_hash()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def grid(settings, seeds, **common) -> list[RunConfig]:
    """One :class:`RunConfig` per ``(lam, eta)`` in ``settings`` and seed in ``seeds``, sharing ``common``."""
    return [RunConfig(lam=lam, eta=eta, seed=s, **common) for lam, eta in settings for s in seeds]


class RunStore:
    """Finished runs on disk, one ``<key>.npz`` each, written atomically and flushed to disk.

    Temporary files left by a process that was killed while writing are removed
    when a store is opened.
    """

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        remove_stale_temporaries(self.directory)

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.npz"

    def save(self, key: str, r: RunResult) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        meta = {"config": r.config.to_dict(), "history": r.history, "diverged": r.diverged,
                "test": r.test, "seconds": r.seconds}
        arrays = {"W": r.W, "b": r.b, "meta": np.array(json.dumps(meta))}
        if r.test is not None:
            arrays.update(test_pred=r.test_pred, test_p_true=r.test_p_true)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        write_atomic(self.path(key), buf.getvalue(), durable=True)

    def load(self, key: str) -> RunResult | None:
        """The stored run, or None if absent; a damaged entry is removed with a warning."""
        path = self.path(key)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                tested = meta["test"] is not None
                return RunResult(config=RunConfig(**meta["config"]), W=z["W"], b=z["b"],
                                 history=meta["history"], diverged=meta["diverged"], test=meta["test"],
                                 test_pred=z["test_pred"] if tested else None,
                                 test_p_true=z["test_p_true"] if tested else None,
                                 seconds=meta["seconds"], cached=True)
        except Exception as e:  # a truncated or garbled file fails in many ways; all mean "recompute"
            warnings.warn(f"cached run {path.name} is damaged ({type(e).__name__}: {e}); recomputing it",
                          stacklevel=2)
            path.unlink(missing_ok=True)
            return None


# One data set per process: a worker holding two (~0.6 GB each) looks to joblib's loky like a
# memory leak, and it restarts the worker with a warning. Runs of one data set come together.
@functools.lru_cache(maxsize=1)
def _dataset(data_dir: str, url: str | None, md5: str | None, val_size: int, normalize: str,
             dtype: str) -> data.Dataset:
    return data.load_cifar10(data_dir, val_size=val_size, normalize=normalize, dtype=dtype, url=url, md5=md5,
                             progress=False)


def _progress_writer(progress_dir: str | None, key: str, label: str):
    if not progress_dir:
        return None, None
    path = Path(progress_dir) / f"{key}.txt"

    def on_epoch(done: int, total: int) -> None:
        write_atomic(path, f"{done} {total} {label}")

    return on_epoch, path


def with_test(r: RunResult, ds: data.Dataset) -> RunResult:
    """``r`` with its test-set loss, cost, accuracy, predictions and true-class probabilities."""
    cfg = r.config
    S = model.scores(r.W, r.b, ds.test.X)
    P = model.ACTIVATIONS[cfg.loss](S)
    return dataclasses.replace(
        r, test=model.evaluate_scores(S, ds.test.Y, r.W, cfg.lam, cfg.loss),
        test_pred=S.argmax(axis=1).astype(np.int16), test_p_true=P[np.arange(ds.test.n), ds.test.y].astype(np.float32))


def _run_one(cfg: RunConfig, key: str, data_args: dict, progress_dir: str | None, test: bool) -> RunResult:
    """Train one configuration (in a worker) and, if ``test``, evaluate it on the test set."""
    ds = _dataset(data_args["data_dir"], data_args["url"], data_args["md5"], cfg.val_size, cfg.normalize,
                  cfg.dtype)
    validate.integer("n_batch", cfg.n_batch, low=1, high=ds.train.n)
    on_epoch, progress_path = _progress_writer(progress_dir, key, cfg.label)
    t0 = time.perf_counter()
    try:
        r = train.train(ds.train.X, ds.train.Y, ds.val.X, ds.val.Y, lam=cfg.lam, eta=cfg.eta,
                        n_epochs=cfg.n_epochs, n_batch=cfg.n_batch, seed=cfg.seed, loss=cfg.loss, flip=cfg.flip,
                        eta_schedule=cfg.schedule, init_std=cfg.init_std, dtype=cfg.dtype, on_epoch=on_epoch)
    finally:
        if progress_path is not None:
            progress_path.unlink(missing_ok=True)
    result = RunResult(config=cfg, W=r.W, b=r.b, history=r.history, diverged=r.diverged, test=None,
                       test_pred=None, test_p_true=None, seconds=time.perf_counter() - t0)
    return with_test(result, ds) if test else result


class Experiments:
    """Runs configurations on one data source, reusing stored runs.

    ``n_jobs`` processes train at once (-1: one per core); ``progress`` shows a bar
    over the runs (off when a report runner collects progress through
    ``$A1_PROGRESS_DIR`` instead).
    """

    def __init__(self, data_dir=None, url: str | None = None, md5: str | None = None, reports_dir=None,
                 n_jobs: int = 1, progress: bool = True):
        self.data_args = {"data_dir": str(config.data_dir(data_dir)), "url": url or None, "md5": md5 or None}
        self.provenance = fetch.prepare(**self.data_args, progress=progress)
        self.store = RunStore(config.reports_dir(reports_dir) / "runs")
        self.n_jobs = validate.integer("n_jobs", n_jobs)
        if self.n_jobs == 0:
            raise validate.ParameterError("n_jobs must be a positive count or -1 (all cores), got 0")
        self.progress_dir = os.environ.get(PROGRESS_ENV) or None
        self.progress = progress and self.progress_dir is None
        self.n_trained = self.n_reused = 0

    def dataset(self, val_size: int = 5000, normalize: str = "per_feature", dtype: str = "float32") -> data.Dataset:
        """The data set the runs of that validation size, normalization and dtype use."""
        return _dataset(self.data_args["data_dir"], self.data_args["url"], self.data_args["md5"], val_size,
                        normalize, dtype)

    @functools.cached_property
    def label_names(self) -> list[str]:
        """Class names, from the data's ``batches.meta``."""
        return data.load_meta(Path(self.provenance["batch_dir"]) / fetch.META)[0]

    def key(self, cfg: RunConfig) -> str:
        return run_key(cfg, self.provenance)

    def run(self, configs: list[RunConfig], test: bool = True) -> list[RunResult]:
        """Results for ``configs``, in order: stored ones reused, the others trained (in parallel).

        With ``test=False`` the test set is not looked at (results have ``test=None``
        unless a stored run already had it); with ``test=True`` a stored run that
        lacks it gets it now. Each finished run is stored as soon as it arrives, so
        an interrupted sweep resumes from what was done.
        """
        keys = [self.key(c) for c in configs]
        done: dict[str, RunResult] = {}
        for k in dict.fromkeys(keys):
            r = self.store.load(k)
            if r is not None:
                done[k] = r
        todo = {k: c for k, c in zip(keys, configs) if k not in done}
        self.n_reused += len(set(keys)) - len(todo)
        if todo:
            tasks = (delayed(_run_one)(c, k, self.data_args, self.progress_dir, test) for k, c in todo.items())
            n_jobs = 1 if len(todo) == 1 else self.n_jobs
            results = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(tasks)
            for r in progress_bar(results, show=self.progress, total=len(todo), desc="training runs"):
                k = self.key(r.config)
                self.store.save(k, r)
                done[k] = r
            self.n_trained += len(todo)
        if test:
            for k, c in zip(keys, configs):
                if done[k].test is None:
                    done[k] = with_test(done[k], self.dataset(c.val_size, c.normalize, c.dtype))
                    self.store.save(k, done[k])
        return [done[k] for k in keys]
