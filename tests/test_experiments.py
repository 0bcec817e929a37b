"""Runs as stored experiments: parallel equals serial, the store is reused, keyed on code, and survives damage."""

import dataclasses
import errno
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest

from assignment1 import data, files
from assignment1.config import RunConfig
from assignment1.experiments import progress, runs, store
from assignment1.experiments.runs import Experiments, grid


def configs(**kw):
    base = dict(n_epochs=2, n_batch=10, val_size=50)
    base.update(kw)
    return grid([[0.0, 0.01], [0.1, 0.01]], [0, 1], **base)


def same(a, b):
    """Bit-identical results (wall times aside)."""
    def values(h):
        return {k: v for k, v in h.items() if k != "seconds"}

    return (np.array_equal(a.W, b.W) and np.array_equal(a.b, b.b) and values(a.history) == values(b.history)
            and a.test == b.test and np.array_equal(a.test_pred, b.test_pred))


def test_parallel_and_serial_runs_are_identical(tiny_env, tmp_path):
    serial = Experiments(reports_dir=tmp_path / "serial", n_jobs=1, progress=False).run(configs())
    parallel = Experiments(reports_dir=tmp_path / "parallel", n_jobs=2, progress=False).run(configs())
    assert all(same(a, b) for a, b in zip(serial, parallel))
    assert not np.array_equal(serial[0].W, serial[1].W)  # different seeds really differ


def test_runs_are_cached_and_reused(tiny_env, tmp_path):
    ex = Experiments(reports_dir=tmp_path, progress=False)
    first = ex.run(configs())
    assert ex.n_trained == 4
    again = Experiments(reports_dir=tmp_path, progress=False)
    second = again.run(configs() + configs(flip=True)[:1])
    assert again.n_trained == 1  # the four others were stored
    assert all(same(a, b) for a, b in zip(first, second))


def test_announced_runs_that_read_the_same_batches_train_with_the_asked_ones(tiny_env, tmp_path, monkeypatch):
    # a report runner announces runs its sections will ask for: M-BCE runs of seeds 0 and 1, and a flipped run
    monkeypatch.setenv(progress.PROGRESS_ENV, str(tmp_path / "progress"))
    (tmp_path / "progress").mkdir()
    mbce, flipped = configs(loss="mbce")[:2], configs(flip=True)[:1]
    progress.announce(tmp_path / "progress", configs()[:2] + mbce + flipped)
    ex = Experiments(reports_dir=tmp_path / "report", progress=False)
    asked = ex.run(configs()[::2])  # seed 0's two settings
    # the M-BCE run of seed 0 shares their batches: trained with them, stored, not returned; seed 1's does not
    assert (ex.n_trained, ex.n_along) == (2, 1) and [r.config for r in asked] == configs()[::2]
    later = Experiments(reports_dir=tmp_path / "report", progress=False)
    found = later.run(mbce[:1])
    assert later.n_trained == 0
    # each is bit for bit the run trained in a store of its own, where nothing was announced
    monkeypatch.delenv(progress.PROGRESS_ENV)
    alone = Experiments(reports_dir=tmp_path / "alone", progress=False)
    assert all(same(a, b) for a, b in zip(asked + found, alone.run(configs()[::2] + mbce[:1])))
    assert (alone.n_trained, alone.n_along) == (3, 0)


def test_a_changed_parameter_retrains_only_what_it_touches(tiny_env, tmp_path):
    ex = Experiments(reports_dir=tmp_path, progress=False)
    ex.run(configs())
    ex2 = Experiments(reports_dir=tmp_path, progress=False)
    ex2.run(configs()[:2] + configs(n_epochs=3)[2:])
    assert ex2.n_trained == 2


#: What is wrong with each damaged entry, as the warning says it (the tiny data's test batch holds 40 images).
DAMAGE_SAID = {
    "truncated": r"it cannot be read as a stored run \(\w+\)",
    "random bytes": r"it cannot be read as a stored run \(\w+\)",
    "W of another shape": re.escape("W is (10, 100) float32 and b (10,) float32, not (10, 3072) and (10,) float32"),
    "test predictions cut": re.escape("its test predictions cover 5 of the 40 test images"),
    "history cut": re.escape("its history is not one of 2 epochs"),
    "another configuration": re.escape("it holds the run of another configuration"),
}


@pytest.mark.parametrize("damage", ["truncated", "random bytes", "W of another shape", "test predictions cut",
                                    "history cut", "another configuration"])
def test_a_damaged_stored_run_is_named_moved_aside_and_trained_again(tiny_env, tmp_path, damage):
    ex = Experiments(reports_dir=tmp_path, progress=False)
    cfg = configs()[:1]
    good = ex.run(cfg)[0]
    path = ex.store.path(ex.key(cfg[0]))
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "random bytes":
        path.write_bytes(np.random.default_rng(0).bytes(5000))
    else:  # the right keys, read without error, but not the run it claims to be
        changed = {"W of another shape": {"W": good.W[:, :100]},
                   "test predictions cut": {"test_pred": good.test_pred[:5]},
                   "history cut": {"history": {k: v[:1] for k, v in good.history.items()}},
                   "another configuration": {"config": configs(n_epochs=3)[0]}}[damage]
        ex.store.save(ex.key(cfg[0]), dataclasses.replace(good, **changed))
    damaged_bytes = path.read_bytes()
    with pytest.warns(UserWarning) as said:
        again = Experiments(reports_dir=tmp_path, progress=False)
        redone = again.run(cfg)[0]
    # one warning, in the project's words, naming the entry and where it went; the run trained again
    aside = path.parent / "damaged" / path.name
    expected = (re.escape(f"stored run {path} is damaged: ") + DAMAGE_SAID[damage]
                + re.escape(f"; moved to {aside}, and trained again"))
    assert len(said) == 1 and re.fullmatch(expected, str(said[0].message)), [str(w.message) for w in said]
    assert "allow_pickle" not in str(said[0].message) and "trust" not in str(said[0].message)
    assert again.n_trained == 1 and same(good, redone)
    assert aside.read_bytes() == damaged_bytes  # kept, to be looked at
    third = Experiments(reports_dir=tmp_path, progress=False)
    third.run(cfg)
    assert third.n_trained == 0  # stored whole again


def test_a_data_set_is_written_once_then_mapped_as_load_cifar10_makes_it(tiny_env, tmp_path):
    # in memory, then through the run store twice: the first process writes the file, the next maps it
    source = (tiny_env["A1_DATA_DIR"], tiny_env["CIFAR10_URL"], tiny_env["CIFAR10_MD5"], str(tmp_path / "runs"))
    expected = data.load_cifar10(*source[:1], 30, "per_feature", "float64", *source[1:3], progress=False)
    outdated = tmp_path / "runs" / f"data-30-per_feature-float64-{'0' * 16}.npy"  # as other code would have named it
    outdated.parent.mkdir()
    outdated.write_bytes(b"0.7 GB")
    for _ in range(2):
        runs.cached_dataset.cache_clear()
        ds = runs.cached_dataset(*source, 30, "per_feature", "float64")
        for part in ("train", "val", "test"):
            for name in ("X", "Y", "y"):
                a, b = getattr(getattr(ds, part), name), getattr(getattr(expected, part), name)
                assert a.dtype == b.dtype and np.array_equal(a, b), (part, name)
        assert np.array_equal(ds.mean, expected.mean) and np.array_equal(ds.std, expected.std)
        assert (ds.label_names, ds.normalize, ds.provenance) == (expected.label_names, "per_feature",
                                                                 expected.provenance)
    # read-only pages of the one file, not a copy in this process; another dtype is another file
    assert not ds.train.X.flags.writeable and not ds.test.X.flags.writeable
    assert isinstance(ds.val.X.base.base, np.memmap)
    assert len(list((tmp_path / "runs").glob("data-*.npy"))) == 1 and not outdated.exists()
    runs.cached_dataset.cache_clear()
    assert runs.cached_dataset(*source, 30, "per_feature", "float32").train.X.dtype == np.float32
    assert len(list((tmp_path / "runs").glob("data-*.npy"))) == 2
    runs.cached_dataset.cache_clear()


@pytest.mark.parametrize("damage", ["truncated images", "garbled labels"])
def test_a_damaged_data_set_file_is_named_and_written_again(tiny_env, tmp_path, damage):
    source = (tiny_env["A1_DATA_DIR"], tiny_env["CIFAR10_URL"], tiny_env["CIFAR10_MD5"], str(tmp_path / "runs"))
    runs.cached_dataset.cache_clear()
    good = runs.cached_dataset(*source, 30, "per_feature", "float32")
    images = next((tmp_path / "runs").glob("data-*.npy"))
    if damage == "truncated images":
        images.write_bytes(images.read_bytes()[:-100])
    else:
        images.with_suffix(".json").write_text('{"y": [1, 2')
    runs.cached_dataset.cache_clear()
    with pytest.warns(UserWarning, match=f"{images} cannot be read .*; it is written again"):
        again = runs.cached_dataset(*source, 30, "per_feature", "float32")
    assert np.array_equal(again.train.X, good.train.X) and np.array_equal(again.test.y, good.test.y)
    runs.cached_dataset.cache_clear()
    with warnings.catch_warnings():  # whole again: read without a word
        warnings.simplefilter("error")
        runs.cached_dataset(*source, 30, "per_feature", "float32")
    runs.cached_dataset.cache_clear()


def test_a_data_set_that_cannot_be_written_stays_in_memory(tiny_env, tmp_path):
    (tmp_path / "a file").write_text("")
    runs.cached_dataset.cache_clear()
    source = (tiny_env["A1_DATA_DIR"], tiny_env["CIFAR10_URL"], tiny_env["CIFAR10_MD5"])
    ds = runs.cached_dataset(*source, str(tmp_path / "a file" / "runs"), 30, "per_feature", "float32")
    runs.cached_dataset.cache_clear()
    expected = data.load_cifar10(source[0], 30, url=source[1], md5=source[2], progress=False)
    assert ds.train.X.flags.writeable and np.array_equal(ds.train.X, expected.train.X)


def test_a_data_set_whose_writing_fails_stays_in_memory_and_leaves_no_partial_file(tiny_env, tmp_path, monkeypatch):
    # a disk that fills up under the images: the labels reach the disk, the images' flush to it fails
    real_fsync, flushed = os.fsync, []

    def fsync(fd):
        flushed.append(fd)
        if len(flushed) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    runs.cached_dataset.cache_clear()
    source = (tiny_env["A1_DATA_DIR"], tiny_env["CIFAR10_URL"], tiny_env["CIFAR10_MD5"])
    with pytest.warns(UserWarning, match="cannot write .*No space left on device"):
        ds = runs.cached_dataset(*source, str(tmp_path), 30, "per_feature", "float32")
    runs.cached_dataset.cache_clear()
    # the data set, as load_cifar10 makes it; no images file, temporary file or claim behind
    expected = data.load_cifar10(source[0], 30, url=source[1], md5=source[2], progress=False)
    assert np.array_equal(ds.train.X, expected.train.X) and np.array_equal(ds.test.y, expected.test.y)
    assert not list(tmp_path.glob("*.npy")) and not list(tmp_path.glob(".*"))


def test_a_store_removes_what_dead_processes_left_only(tmp_path):
    # a writer and a claimer that have exited, and ones that are alive (this process)
    code = "import os, sys; from assignment1 import files; files.claim(sys.argv[1]); print(os.getpid())"
    dead = int(subprocess.run([sys.executable, "-c", code, tmp_path / ".a.claim"], capture_output=True,
                              text=True, check=True).stdout)
    (tmp_path / f".a.npz.{dead}.tmp").write_text("half")
    (tmp_path / f".b.npz.{os.getpid()}.tmp").write_text("half")
    assert files.claim(tmp_path / ".b.claim")
    orphans = [tmp_path / f".a.npz.{dead}.tmp", tmp_path / ".a.claim"]
    in_progress = [tmp_path / f".b.npz.{os.getpid()}.tmp", tmp_path / ".b.claim"]
    runs = store.RunStore(tmp_path)
    assert not any(p.exists() for p in orphans) and all(p.exists() for p in in_progress)
    # a live claim is respected, a dead one taken over
    assert not runs.claim("b") and runs.claim("a")
    runs.release("a")
    files.release(tmp_path / ".b.claim")


def test_two_experiments_sharing_a_store_train_each_run_once(tiny_env, tmp_path):
    # the first claims the runs and trains them; the second, meanwhile, waits for their results
    import threading

    first, second = (Experiments(reports_dir=tmp_path, progress=False) for _ in range(2))
    results = {}
    threads = [threading.Thread(target=lambda name, ex: results.__setitem__(name, ex.run(configs(n_epochs=30))),
                                args=(name, ex)) for name, ex in (("first", first), ("second", second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert first.n_trained + second.n_trained == 4
    assert all(same(a, b) for a, b in zip(results["first"], results["second"]))
    assert not list(tmp_path.glob("runs/.*.claim"))


def test_a_report_trains_no_more_runs_at_once_than_it_has_slots(tmp_path, monkeypatch):
    def most_at_once(n_runs=5):
        holding, most, lock = 0, 0, threading.Lock()

        def train():
            nonlocal holding, most
            with progress.training_slot(poll=0.01):
                with lock:
                    holding += 1
                    most = max(most, holding)
                time.sleep(0.3)
                with lock:
                    holding -= 1

        threads = [threading.Thread(target=train) for _ in range(n_runs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert not any(t.is_alive() for t in threads) and holding == 0  # every run had its turn
        return most

    # outside a report nothing waits; under one, with two slots (two cores), two train at a time
    monkeypatch.setattr(progress, "cpu_count", lambda: 2)
    monkeypatch.delenv(progress.PROGRESS_ENV, raising=False)
    assert most_at_once() == 5
    monkeypatch.setenv(progress.PROGRESS_ENV, str(tmp_path))
    assert most_at_once() == 2


def test_test_set_is_left_alone_until_asked_for(tiny_env, tmp_path):
    ex = Experiments(reports_dir=tmp_path, progress=False)
    blind = ex.run(configs()[:1], test=False)[0]
    assert blind.test is None and blind.test_pred is None
    tested = ex.run(configs()[:1])[0]
    assert tested.test is not None and np.array_equal(tested.W, blind.W)
    assert ex.n_trained == 1  # the test results were added to the stored run, not retrained


def test_key_depends_on_config_data_and_code(tiny_env, tmp_path):
    ex = Experiments(reports_dir=tmp_path, progress=False)
    a, b = RunConfig(lam=0, eta=0.01), RunConfig(lam=0.0, eta=0.01)
    assert ex.key(a) == ex.key(b)  # 0 and 0.0 are the same setting
    assert ex.key(a) != ex.key(RunConfig(lam=0, eta=0.01, seed=1))
    assert store.run_key(a, {**ex.provenance["files"], "test_batch": "0" * 32}) != ex.key(a)
    assert ex.key(a) != ex.key(RunConfig(lam=0, eta=0.01, engine="plain"))  # the plain loop trains its own runs


@pytest.fixture
def package_copy(tmp_path, monkeypatch):
    """The result modules' sources copied to ``tmp_path``, which the run store now reads its code hash from."""
    for name in store.RESULT_MODULES:
        (tmp_path / "pkg" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(store.PACKAGE_DIR / name, tmp_path / "pkg" / name)
    monkeypatch.setattr(store, "PACKAGE_DIR", tmp_path / "pkg")
    store.code_hash.cache_clear()
    yield tmp_path / "pkg"
    store.code_hash.cache_clear()


def edit(path, old, new):
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))
    store.code_hash.cache_clear()


def test_editing_a_docstring_or_comment_retrains_nothing(tiny_env, tmp_path, package_copy):
    ex = Experiments(reports_dir=tmp_path, progress=False)
    ex.run(configs())
    # a docstring and a comment of the loop that computes the results
    edit(package_copy / "train.py", "Mini-batch gradient descent for the one-layer network", "Edited docstring")
    edit(package_copy / "sweep.py", "# a diverging run overflows; it is caught below", "# an edited comment")
    again = Experiments(reports_dir=tmp_path, progress=False)
    again.run(configs())
    assert again.n_trained == 0


def test_editing_code_retrains(tiny_env, tmp_path, package_copy):
    ex = Experiments(reports_dir=tmp_path, progress=False)
    ex.run(configs())
    edit(package_copy / "model.py", "return float(lam * np.vdot(W, W)) if lam else 0.0",
         "return float(lam * np.vdot(W, W)) if lam != 0 else 0.0")
    again = Experiments(reports_dir=tmp_path, progress=False)
    again.run(configs())
    assert again.n_trained == 4


@pytest.mark.skipif(importlib.util.find_spec("distributed") is None, reason="dask.distributed is not installed")
def test_runs_on_a_dask_cluster_match_local_runs(tiny_env, tmp_path):
    from dask.distributed import Client, LocalCluster, get_task_stream
    from joblib import parallel_config

    local = Experiments(reports_dir=tmp_path / "local", n_jobs=1, progress=False).run(configs())
    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                      processes=True) as cluster, Client(cluster) as client, parallel_config(backend="dask"):
        workers = set(client.scheduler_info()["workers"])
        with get_task_stream(client) as stream:
            remote = Experiments(reports_dir=tmp_path / "dask", n_jobs=2, progress=False).run(configs())
    # the four runs (two sweeps, one per seed) went through the cluster's workers (and nowhere else), and came
    # back bit for bit the same
    assert len(stream.data) >= 2 and {t["worker"] for t in stream.data} <= workers
    assert all(same(a, b) for a, b in zip(local, remote))


def test_runs_leave_a_sweep_as_they_leave_the_textbook_loop(tiny_env, tmp_path):
    # runs of one sweep that ask to leave after epochs 1 and 2, trained by each engine (float64)
    cfgs = [RunConfig(lam=lam, eta=eta, n_epochs=4, n_batch=10, val_size=50, dtype="float64", engine=engine)
            for engine in ("fast", "plain") for lam, eta in ((0.0, 0.01), (0.1, 0.02), (0.01, 0.05))]
    ds = Experiments(reports_dir=tmp_path, progress=False).dataset(50, dtype="float64")
    asked = {"fast": [], "plain": []}

    def leave(engine):
        def ask(i, history):
            asked[engine].append((i, len(history["epoch"])))
            return len(history["epoch"]) == (1, 2, 9)[i]
        return ask

    fast, plain = (runs.train_sweep(cfgs[k:k + 3], ds, leave=leave(cfgs[k].engine)) for k in (0, 3))
    # each run asked after each of its epochs, until it left; the same epochs and numbers from both engines
    assert sorted(asked["fast"]) == sorted(asked["plain"]) == [(0, 1), (1, 1), (1, 2), (2, 1), (2, 2), (2, 3), (2, 4)]
    for a, b in zip(fast, plain):
        assert a.history["epoch"] == b.history["epoch"] and not a.diverged and not b.diverged
        assert np.abs(a.W - b.W).max() <= 1e-10 * np.abs(b.W).max()
    assert [len(r.history["epoch"]) for r in fast] == [1, 2, 4]
