"""Training runs: one run's result, and many runs on one data source, stored ones reused.

Runs to train are grouped into sweeps (runs that read the same batches train
in one pass, :mod:`assignment1.sweep`), and the sweeps execute in parallel
processes through joblib, each with one BLAS thread, largest first; a run's
numbers do not depend on its sweep or its process. Under
``joblib.parallel_config(backend="dask")`` they go to a Dask cluster instead.
Each finished run is stored as soon as its sweep arrives (:mod:`.store`), so
an interrupted report resumes from what was done.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from .. import data, fetch, files, model, sweep, train
from ..config import RunConfig
from . import paths
from .progress import ProgressFile, announced, named_directory, training_slot
from .store import RunResult, RunStore, code_hash, run_key


def grid(settings: Iterable, seeds: Iterable[int], **common) -> list[RunConfig]:
    """One :class:`RunConfig` per ``(lam, eta)`` in ``settings`` and seed in ``seeds``, sharing ``common``."""
    seeds = list(seeds)
    return [RunConfig(lam=lam, eta=eta, seed=s, **common) for lam, eta in settings for s in seeds]


def train_run(cfg: RunConfig, ds: data.Dataset, on_epoch: Callable[[dict], object] | None = None,
              stop: threading.Event | None = None) -> RunResult:
    """Train ``cfg`` on ``ds``'s training split with its engine; the test set is not looked at.

    ``on_epoch(history)`` shows progress; only ``stop`` ends a run early (see :func:`assignment1.train.train`).
    """
    return train_sweep([cfg], ds, [on_epoch], stop)[0]


def train_sweep(cfgs: list[RunConfig], ds: data.Dataset, on_epoch: list | None = None,
                stop: threading.Event | None = None,
                leave: Callable[[int, dict], bool] | None = None) -> list[RunResult]:
    """Train ``cfgs`` together (runs that :func:`assignment1.sweep.shared` groups; one after another, for the plain
    engine).

    ``on_epoch[i](history)`` shows the progress of run ``i``; ``leave(i, history)``, if true, ends run ``i`` after
    that epoch and ``stop`` every run (see :func:`assignment1.sweep.train`). BLAS runs on one thread: a product
    split among threads may round differently, and a run's numbers must not depend on the process it ran in.
    """
    shows = on_epoch or [None] * len(cfgs)

    def plain(i: int, cfg: RunConfig) -> train.TrainResult:  # the textbook loop, ended by a stop of its own
        ends = threading.Event()

        def epoch_done(history: dict) -> None:
            if shows[i]:
                shows[i](history)
            if (leave is not None and leave(i, history)) or (stop is not None and stop.is_set()):
                ends.set()
        return train.train(ds.train.X, ds.train.Y, ds.val.X, ds.val.Y, cfg, epoch_done, ends)

    with training_slot(), threadpool_limits(limits=1):
        if cfgs[0].engine == "plain":
            trained = [plain(i, c) for i, c in enumerate(cfgs)]
        else:
            trained = sweep.train(ds.train.X, ds.train.Y, ds.val.X, ds.val.Y, cfgs, stop=stop, leave=leave,
                                  on_epoch=lambda i, history: shows[i](history) if shows[i] else None)
    return [RunResult(config=c, W=r.W, b=r.b, history=r.history, diverged=r.diverged, test=None, test_pred=None,
                      test_p_true=None, seconds=sum(r.history["seconds"])) for c, r in zip(cfgs, trained)]


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
def cached_dataset(data_dir: str, url: str | None, md5: str | None, runs_dir: str, val_size: int, normalize: str,
                   dtype: str) -> data.Dataset:
    """The data set :func:`assignment1.data.load_cifar10` makes, its images mapped read-only from a file.

    The first process to need it writes ``<runs_dir>/data-<settings>-<key>.npy`` (the training, validation
    and test images, normalized) and ``.json`` (labels, statistics), the key hashing the batches' md5s and the
    code, and deletes those of the same settings made from other data or code; every other process maps the
    same file, so the processes of a report share one copy in memory and none normalizes the data again. A
    file that cannot be read is named and written again.
    """
    provenance = fetch.prepare(data_dir, url, md5, progress=False)
    load = functools.partial(data.load_cifar10, data_dir, val_size, normalize, dtype, url=url, md5=md5, progress=False)
    settings = f"data-{val_size}-{normalize}-{dtype}"
    what = json.dumps({"data": provenance["files"], "code": code_hash()}, sort_keys=True)
    stem = Path(runs_dir) / f"{settings}-{hashlib.sha256(what.encode()).hexdigest()[:16]}"
    images, labels, claim = stem.with_suffix(".npy"), stem.with_suffix(".json"), stem.with_name(f".{stem.name}.claim")
    try:
        Path(runs_dir).mkdir(parents=True, exist_ok=True)
        while not files.claim(claim):  # another process is writing it: wait, then map what it wrote
            time.sleep(0.2)
    except OSError:  # a store this process cannot write in: the data set is made in its memory
        return load()
    try:
        try:
            return mapped_dataset(images, labels, normalize, provenance)
        except FileNotFoundError:
            pass
        except Exception as e:  # truncated or garbled: it fails in many ways, all meaning the same
            warnings.warn(f"{images} cannot be read ({type(e).__name__}: {e}); it is written again", stacklevel=2)
        ds = load()
        for outdated in Path(runs_dir).glob(f"{settings}-*"):  # from other data or code: 0.7 GB never read again
            outdated.unlink(missing_ok=True)
        try:
            write_dataset(ds, images, labels)
        except OSError as e:  # a full disk, say
            warnings.warn(f"cannot write {images} ({e}); the data set stays in this process's memory", stacklevel=2)
            return ds
        return mapped_dataset(images, labels, normalize, provenance)
    finally:
        claim.unlink(missing_ok=True)


def write_dataset(ds: data.Dataset, images: Path, labels: Path) -> None:
    """Write ``ds`` as :func:`mapped_dataset` reads it: its images ``X: (n, 3072)`` (training, validation, test)
    to ``images`` as one ``.npy`` array, the rest to ``labels``; each is on disk before it is renamed into place."""
    splits = (ds.train, ds.val, ds.test)
    files.write_atomic(labels, json.dumps({
        "n_train": ds.train.n, "n_val": ds.val.n, "label_names": ds.label_names, "mean": ds.mean.tolist(),
        "std": ds.std.tolist(), "y": np.concatenate([s.y for s in splits]).tolist()}), durable=True)

    def write_images(f) -> None:  # split by split, so the 0.7 GB are never copied into one array
        header = {"descr": np.lib.format.dtype_to_descr(ds.train.X.dtype), "fortran_order": False,
                  "shape": (sum(s.n for s in splits), data.D)}
        np.lib.format.write_array_header_1_0(f, header)
        for s in splits:
            f.write(np.ascontiguousarray(s.X).data)

    files.write_atomic(images, write_images, durable=True)


def mapped_dataset(images: Path, labels: Path, normalize: str, provenance: dict) -> data.Dataset:
    """The data set that :func:`cached_dataset` wrote to ``images`` (``X: (n, 3072)``, mapped read-only) and
    ``labels``. Raises if either cannot be read or they do not fit together."""
    X, record = np.asarray(np.load(images, mmap_mode="r")), json.loads(labels.read_text())
    y = np.array(record["y"], np.int64)
    if X.shape != (y.size, data.D) or len(record["mean"]) != data.D:
        raise ValueError(f"it holds {X.shape[0]} images for {y.size} labels")
    ends = (0, record["n_train"], record["n_train"] + record["n_val"], y.size)
    train, val, test = (data.Split(X=X[a:b], Y=data.one_hot(y[a:b], len(record["label_names"]), X.dtype), y=y[a:b])
                        for a, b in zip(ends, ends[1:]))
    return data.Dataset(train=train, val=val, test=test, label_names=record["label_names"],
                        mean=np.array(record["mean"]), std=np.array(record["std"]), normalize=normalize,
                        provenance=provenance)


@functools.cache
def exit_with_parent(interval: float = 1.0) -> None:
    """From now on, end this process as soon as the process that started it is gone.

    A worker whose report was killed (even by SIGKILL, which leaves no time to
    stop it) would otherwise go on training for nobody, holding its memory.
    """
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def _train_sweep(cfgs: list[RunConfig], keys: list[str], source: tuple, progress_dir: str | None,
                 test: bool) -> list[RunResult]:
    """Train one sweep (in a worker) and, if ``test``, evaluate its runs on the test set."""
    exit_with_parent()
    ds = cached_dataset(*source, cfgs[0].val_size, cfgs[0].normalize, cfgs[0].dtype)
    files = [ProgressFile(progress_dir, k, c) for k, c in zip(keys, cfgs)] if progress_dir else []
    try:
        results = train_sweep(cfgs, ds, files or None)
    finally:
        for f in files:
            f.close()
    return [with_test(r, ds) for r in results] if test else results


def cost(cfgs: list[RunConfig]) -> int:
    """Roughly what a sweep costs, in epochs of one run: its longest run, plus one more for each run-epoch."""
    return max(c.n_epochs for c in cfgs) + sum(c.n_epochs for c in cfgs)


#: What starting a worker process and loading the data into it costs, in epochs of one run (about 3 s).
WORKER_COST = 15


def schedule(cfgs: list[RunConfig], workers: int) -> tuple[list[list[int]], int]:
    """The runs to train, as sweeps (lists of indices into ``cfgs``), largest first, and the worker
    processes to train them in (1: here, one after another).

    Runs that can share their batches form one sweep (plain-engine runs train alone). A sweep is then
    halved while that shortens the greedy placement of the sweeps on ``workers`` processes by more than
    a worker costs to start, so that no process waits idle at the end for one long sweep.
    """
    groups: dict = {}
    for i, c in enumerate(cfgs):
        groups.setdefault((c.engine, sweep.shared(c)) if c.engine == "fast" else i, []).append(i)

    def makespan(sweeps):  # largest first, each to the least loaded process; one sweep trains where it is
        loads = [0] * workers
        for s in sorted(sweeps, key=lambda s: -cost([cfgs[i] for i in s])):
            loads[loads.index(min(loads))] += cost([cfgs[i] for i in s])
        return max(loads) + (WORKER_COST if len(sweeps) > 1 and workers > 1 else 0)

    sweeps = list(groups.values())
    while True:
        largest = max(sweeps, key=len)
        halved = [s for s in sweeps if s is not largest] + [largest[:len(largest) // 2], largest[len(largest) // 2:]]
        if len(largest) < 2 or makespan(halved) >= makespan(sweeps):
            alone = sum(cost([cfgs[i] for i in s]) for s in sweeps)  # all here, with no worker to start
            return sorted(sweeps, key=lambda s: -cost([cfgs[i] for i in s])), 1 if alone <= makespan(sweeps) \
                else workers
        sweeps = halved


class Experiments:
    """Runs configurations on one data source, reusing stored runs.

    ``n_jobs`` processes train at once (-1: one per core). Progress is a bar over
    the runs, or, under a report runner, a file per run (:mod:`.progress`).
    ``n_trained`` counts the runs :meth:`run` trained, ``n_along`` the announced runs trained with them.
    """

    def __init__(self, data_dir=None, url: str | None = None, md5: str | None = None, reports_dir=None,
                 n_jobs: int = 1, progress: bool = True):
        url, md5 = paths.data_source(url, md5)
        self.store = RunStore(paths.runs_dir(reports_dir))
        self.source = (str(paths.data_dir(data_dir)), url, md5, str(self.store.directory))
        self.provenance = fetch.prepare(self.source[0], url, md5, progress=progress)
        self.n_jobs = n_jobs
        self.progress_dir = named_directory()
        self.progress = progress and self.progress_dir is None
        self.n_trained = self.n_along = 0

    def dataset(self, val_size: int = RunConfig.val_size, normalize: str = RunConfig.normalize,
                dtype: str = RunConfig.dtype) -> data.Dataset:
        """The data set the runs of that validation size, normalization and dtype use."""
        return cached_dataset(*self.source, val_size, normalize, dtype)

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

    def problem(self, r: RunResult, cfg: RunConfig) -> str | None:
        """What is wrong with stored run ``r`` as the run ``cfg`` on this data, or None."""
        K, n = len(self.label_names), len(r.history.get("epoch", []))
        n_test = self.n_images // len(fetch.TRAIN_BATCHES)  # the test batch is as large as each training batch
        if r.config != cfg:
            return "it holds the run of another configuration"
        if r.W.shape != (K, data.D) or r.b.shape != (K,) or r.W.dtype != cfg.dtype or r.b.dtype != cfg.dtype:
            return (f"W is {r.W.shape} {r.W.dtype} and b {r.b.shape} {r.b.dtype}, not ({K}, {data.D}) and ({K},) "
                    f"{cfg.dtype}")
        if set(r.history) != set(train.empty_history()) or {len(v) for v in r.history.values()} != {n} \
                or not (n == cfg.n_epochs or (r.diverged and n < cfg.n_epochs)):
            return f"its history is not one of {cfg.n_epochs} epochs"
        if r.test is not None and (r.test_pred.shape != (n_test,) or r.test_p_true.shape != (n_test,)):
            return f"its test predictions cover {r.test_pred.size} of the {n_test} test images"
        return None

    def load(self, key: str, cfg: RunConfig) -> RunResult | None:
        """The stored run of ``cfg`` under ``key``, checked against it and the data (see :meth:`RunStore.load`)."""
        return self.store.load(key, lambda r: self.problem(r, cfg))

    def run(self, configs: list[RunConfig], test: bool = True) -> list[RunResult]:
        """Results for ``configs``, in order: stored ones reused, the others trained (in sweeps, in parallel).

        Every configuration is checked against the data's size before any is
        trained. With ``test=False`` the test set is not looked at (results have
        ``test=None`` unless a stored run already had it); with ``test=True`` a
        stored run that lacks it gets it now. Each finished run is stored as soon as it arrives.
        A run that another process is training (one sharing the store) is waited for, not trained again.
        Runs that the report announced (:meth:`along`) train with those that read their batches.
        """
        for cfg in configs:
            cfg.check_data_size(self.n_images)
        keys = [self.key(c) for c in configs]
        pending, done = dict(zip(keys, configs)), {}
        while pending:
            mine, along = [k for k in pending if self.store.claim(k)], {}
            try:
                # looked for after claiming, so that a run another process stored meanwhile is not trained again
                found = {k: r for k, c in pending.items() if (r := self.load(k, c)) is not None}
                todo = {k: pending[k] for k in mine if k not in found}
                along = self.along(todo)
                done.update(found | (self._train(todo, along, test) if todo else {}))
            finally:
                for k in mine + list(along):
                    self.store.release(k)
            pending = {k: c for k, c in pending.items() if k not in done}
            if pending and not todo:  # another process trains them: their results will be in the store
                time.sleep(1)
        if test:
            for k, c in zip(keys, configs):
                if done[k].test is None:
                    done[k] = with_test(done[k], self.dataset(c.val_size, c.normalize, c.dtype))
                    self.store.save(k, done[k])
        return [done[k] for k in keys]

    def along(self, todo: dict[str, RunConfig]) -> dict[str, RunConfig]:
        """Runs the report runner announced (:func:`.progress.announced`) that read the same batches as a run of
        ``todo`` and are neither stored nor claimed by another process, now claimed by this one, by key.

        Trained with ``todo``, each adds a run to a sweep instead of taking a sweep of its own when the process
        that announced it asks for it (an M-BCE run, say, joins the cross-entropy runs of its seed).
        """
        batches = {sweep.shared(c) for c in todo.values() if c.engine == "fast"}
        if not batches:  # nothing to train here (waiting for another process, say): the announcement is not read
            return {}
        announced_runs = {self.key(c): c for c in announced() if c.engine == "fast" and sweep.shared(c) in batches}
        along = {k: c for k, c in announced_runs.items() if k not in todo and self.store.claim(k)}
        for k in [k for k, c in along.items() if self.load(k, c) is not None]:  # stored already
            self.store.release(k)
            del along[k]
        return along

    def _train(self, todo: dict[str, RunConfig], along: dict[str, RunConfig], test: bool) -> dict[str, RunResult]:
        """Train ``todo`` and ``along`` (by key) in sweeps, in parallel; store each run as its sweep arrives;
        return ``todo``'s."""
        runs = todo | along
        keys, cfgs = list(runs), list(runs.values())
        sweeps, processes = schedule(cfgs, effective_n_jobs(self.n_jobs))
        tasks = (delayed(_train_sweep)([cfgs[i] for i in s], [keys[i] for i in s], self.source, self.progress_dir,
                                       test) for s in sweeps)
        done = {}
        with tqdm(total=len(cfgs), desc="training runs", unit="run", disable=not self.progress) as bar:
            for trained in Parallel(n_jobs=processes, return_as="generator_unordered")(tasks):
                for r in trained:
                    k = self.key(r.config)
                    self.store.save(k, r)
                    done[k] = r
                bar.update(len(trained))
        self.n_trained, self.n_along = self.n_trained + len(todo), self.n_along + len(along)
        return {k: done[k] for k in todo}
