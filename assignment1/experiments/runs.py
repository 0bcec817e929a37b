"""Training runs: one run's result, and many runs on one data source, stored ones reused.

Independent runs execute in parallel processes through joblib, each with one
BLAS thread, so results do not depend on how they were scheduled; under
``joblib.parallel_config(backend="dask")`` they go to a Dask cluster instead.
Each finished run is stored as soon as it arrives (:mod:`.store`), so an
interrupted sweep resumes from what was done.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from .. import data, fetch, model, train, train_fast
from ..config import RunConfig
from . import paths
from .progress import ProgressFile, named_directory
from .store import RunResult, RunStore, run_key

#: The two training loops by name: the textbook one and the fast one. Results agree to rounding.
ENGINES = {"plain": train.train, "fast": train_fast.train}


def grid(settings: Iterable, seeds: Iterable[int], **common) -> list[RunConfig]:
    """One :class:`RunConfig` per ``(lam, eta)`` in ``settings`` and seed in ``seeds``, sharing ``common``."""
    seeds = list(seeds)
    return [RunConfig(lam=lam, eta=eta, seed=s, **common) for lam, eta in settings for s in seeds]


def train_run(cfg: RunConfig, ds: data.Dataset, on_epoch: Callable[[dict], object] | None = None,
              stop: threading.Event | None = None) -> RunResult:
    """Train ``cfg`` on ``ds``'s training split with its engine; the test set is not looked at.

    ``on_epoch(history)`` shows progress; only ``stop`` ends a run early (see :func:`assignment1.train.train`).
    BLAS runs on one thread: a product split among threads may round differently, and a run's
    numbers must not depend on the process it ran in (the report's runs go to parallel workers).
    """
    t0 = time.perf_counter()
    with threadpool_limits(limits=1):
        r = ENGINES[cfg.engine](ds.train.X, ds.train.Y, ds.val.X, ds.val.Y, cfg, on_epoch=on_epoch, stop=stop)
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


# One data set per process: a worker holding two (~0.6 GB each) looks to joblib's loky like a
# memory leak, and it restarts the worker with a warning. Runs of one data set come together.
@functools.lru_cache(maxsize=1)
def _dataset(data_dir: str, url: str | None, md5: str | None, val_size: int, normalize: str,
             dtype: str) -> data.Dataset:
    return data.load_cifar10(data_dir, val_size, normalize, dtype, url=url, md5=md5, progress=False)


def _run_one(cfg: RunConfig, key: str, source: tuple, progress_dir: str | None, test: bool) -> RunResult:
    """Train one configuration (in a worker) and, if ``test``, evaluate it on the test set."""
    ds = _dataset(*source, cfg.val_size, cfg.normalize, cfg.dtype)
    progress_file = ProgressFile(progress_dir, key, cfg) if progress_dir else None
    try:
        result = train_run(cfg, ds, progress_file)
    finally:
        if progress_file is not None:
            progress_file.close()
    return with_test(result, ds) if test else result


class Experiments:
    """Runs configurations on one data source, reusing stored runs.

    ``n_jobs`` processes train at once (-1: one per core). Progress is a bar over
    the runs, or, under a report runner, a file per run (:mod:`.progress`).
    ``n_trained`` counts the runs :meth:`run` trained.
    """

    def __init__(self, data_dir=None, url: str | None = None, md5: str | None = None, reports_dir=None,
                 n_jobs: int = 1, progress: bool = True):
        url, md5 = paths.data_source(url, md5)
        self.source = (str(paths.data_dir(data_dir)), url, md5)
        self.provenance = fetch.prepare(self.source[0], url, md5, progress=progress)
        self.store = RunStore(paths.runs_dir(reports_dir))
        self.n_jobs = n_jobs
        self.progress_dir = named_directory()
        self.progress = progress and self.progress_dir is None
        self.n_trained = 0

    def dataset(self, val_size: int = RunConfig.val_size, normalize: str = RunConfig.normalize,
                dtype: str = RunConfig.dtype) -> data.Dataset:
        """The data set the runs of that validation size, normalization and dtype use."""
        return _dataset(*self.source, val_size, normalize, dtype)

    @functools.cached_property
    def label_names(self) -> list[str]:
        """Class names, from the data's ``batches.meta``."""
        return data.load_meta(Path(self.provenance["batch_dir"]) / fetch.META)[0]

    @functools.cached_property
    def n_images(self) -> int:
        """Images in the training batches (50,000 for CIFAR-10), before a validation set is held out."""
        return data.n_training_images(self.provenance["batch_dir"])

    def key(self, cfg: RunConfig) -> str:
        return run_key(cfg, self.provenance["files"])

    def run(self, configs: list[RunConfig], test: bool = True) -> list[RunResult]:
        """Results for ``configs``, in order: stored ones reused, the others trained (in parallel).

        Every configuration is checked against the data's size before any is
        trained. With ``test=False`` the test set is not looked at (results have
        ``test=None`` unless a stored run already had it); with ``test=True`` a
        stored run that lacks it gets it now. Each finished run is stored as soon as it arrives.
        """
        for cfg in configs:
            cfg.check_data_size(self.n_images)
        keys = [self.key(c) for c in configs]
        done = {k: r for k in dict.fromkeys(keys) if (r := self.store.load(k)) is not None}
        todo = {k: c for k, c in zip(keys, configs) if k not in done}
        if todo:
            tasks = (delayed(_run_one)(c, k, self.source, self.progress_dir, test) for k, c in todo.items())
            results = Parallel(n_jobs=1 if len(todo) == 1 else self.n_jobs, return_as="generator_unordered")(tasks)
            for r in tqdm(results, total=len(todo), desc="training runs", unit="run", disable=not self.progress):
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
