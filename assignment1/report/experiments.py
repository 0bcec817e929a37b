"""Many training runs on one data source: stored ones reused, the others trained in parallel.

Independent runs execute in parallel processes through joblib, each with one
BLAS thread, so results do not depend on how they were scheduled; under
``joblib.parallel_config(backend="dask")`` they go to a Dask cluster instead.
Each finished run is stored as soon as it arrives (:mod:`.store`), so an
interrupted sweep resumes from what was done.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from joblib import Parallel, delayed

from .. import config, data, fetch, validate
from ..files import write_atomic
from ..progress import bar as progress_bar
from .runs import RunConfig, RunResult, train_run, with_test
from .store import RunStore, run_key

#: Where the report runner asks runs to write their progress (one small file per run).
PROGRESS_ENV = "A1_PROGRESS_DIR"


# One data set per process: a worker holding two (~0.6 GB each) looks to joblib's loky like a
# memory leak, and it restarts the worker with a warning. Runs of one data set come together.
@functools.lru_cache(maxsize=1)
def _dataset(data_dir: str, url: str | None, md5: str | None, val_size: int, normalize: str,
             dtype: str) -> data.Dataset:
    return data.load_cifar10(data_dir, val_size=val_size, normalize=normalize, dtype=dtype, url=url, md5=md5,
                             progress=False)


def _progress_writer(progress_dir: str | None, key: str, cfg: RunConfig):
    """An ``on_epoch`` callback writing ``<done> <total> <label>`` to ``<progress_dir>/<key>.txt``."""
    if not progress_dir:
        return None, None
    path = Path(progress_dir) / f"{key}.txt"
    label = f"{cfg.label}, seed {cfg.seed}"

    def on_epoch(history: dict) -> None:
        write_atomic(path, f"{len(history['epoch'])} {cfg.n_epochs} {label}")

    return on_epoch, path


def _run_one(cfg: RunConfig, key: str, data_args: dict, progress_dir: str | None, test: bool) -> RunResult:
    """Train one configuration (in a worker) and, if ``test``, evaluate it on the test set."""
    ds = _dataset(data_args["data_dir"], data_args["url"], data_args["md5"], cfg.val_size, cfg.normalize,
                  cfg.dtype)
    validate.integer("n_batch", cfg.n_batch, low=1, high=ds.train.n)
    on_epoch, progress_path = _progress_writer(progress_dir, key, cfg)
    try:
        result = train_run(cfg, ds, on_epoch)
    finally:
        if progress_path is not None:
            progress_path.unlink(missing_ok=True)
    return with_test(result, ds) if test else result


class Experiments:
    """Runs configurations on one data source, reusing stored runs.

    ``n_jobs`` processes train at once (-1: one per core); ``progress`` shows a bar
    over the runs (off when a report runner collects progress through
    ``$A1_PROGRESS_DIR`` instead). ``n_trained`` and ``n_reused`` count what
    :meth:`run` did.
    """

    def __init__(self, data_dir=None, url: str | None = None, md5: str | None = None, reports_dir=None,
                 n_jobs: int = 1, progress: bool = True):
        self.data_args = {"data_dir": str(config.data_dir(data_dir)), "url": url or None, "md5": md5 or None}
        self.provenance = fetch.prepare(**self.data_args, progress=progress)
        self.store = RunStore(config.runs_dir(reports_dir))
        self.n_jobs = validate.integer("n_jobs", n_jobs, low=-1)
        if self.n_jobs == 0:
            raise validate.ParameterError("n_jobs", "be a positive count or -1 (one per core)", 0)
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

    @functools.cached_property
    def n_training_images(self) -> int:
        """Images in the training batches (50,000 for CIFAR-10), before a validation set is held out."""
        return data.load_meta(Path(self.provenance["batch_dir"]) / fetch.META)[1] * len(fetch.TRAIN_BATCHES)

    def key(self, cfg: RunConfig) -> str:
        return run_key(cfg, self.provenance["files"])

    def run(self, configs: list[RunConfig], test: bool = True) -> list[RunResult]:
        """Results for ``configs``, in order: stored ones reused, the others trained (in parallel).

        With ``test=False`` the test set is not looked at (results have ``test=None``
        unless a stored run already had it); with ``test=True`` a stored run that
        lacks it gets it now. Each finished run is stored as soon as it arrives.
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
            for r in progress_bar(results, show=self.progress, total=len(todo), desc="training runs", unit="run"):
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
