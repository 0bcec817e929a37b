"""Faults tried and survived: bad downloads, bad parameters, divergence, interruption, determinism."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from assignment1 import fetch
from assignment1.experiments.store import RunStore
from assignment1.fetch import DataError

from cifar_format import make_batches, write_archive
from conftest import ROOT, run_env
from test_fetch import ArchiveServer

# section 2 alone, on tiny data: the cheapest complete report (a partial run, so in reports/partial/)
TINY_02 = ["--sections", "02", "--no-pdf", "-p", "val_size", "50", "-p", "n_batch", "10", "-p", "n_epochs", "3",
           "-y", "seeds: [0, 1]"]


def partial(env, *parts) -> str:
    """A path in the partial run's output directory."""
    return os.path.join(env["A1_REPORTS_DIR"], "partial", *parts)


def report(*args, env, timeout=600, **kw):
    return subprocess.run([sys.executable, "-m", "assignment1.report", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, **kw)


def papermill_02(out, *params, env):
    """Section 2 run by papermill directly (not through the runner) on tiny data, with extra ``-p`` pairs."""
    return subprocess.run([sys.executable, "-m", "papermill", str(ROOT / "notebooks" / "02_training.ipynb"), str(out),
                           "-p", "val_size", "50", "-p", "n_batch", "10", *params],
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture
def tiny_data(tmp_path):
    """Environment for subprocesses: a tiny archive, a data directory and a reports directory."""
    archive = tmp_path / "cifar-10-python.tar.gz"
    md5 = write_archive(archive, make_batches(n_per_batch=60))
    (tmp_path / "tmp").mkdir()  # temporary files (the kernels' socket directory) stay in the test's own space
    return run_env(CIFAR10_URL=archive, CIFAR10_MD5=md5, A1_DATA_DIR=tmp_path / "data",
                   A1_REPORTS_DIR=tmp_path / "reports", TMPDIR=tmp_path / "tmp")


# --- downloads ---------------------------------------------------------------------------------

@pytest.mark.parametrize("fault", ["dropped", "different bytes", "unreachable", "truncated"])
def test_a_failed_download_leaves_nothing_and_a_good_source_then_works(tiny_archive, tmp_path, fault):
    path, md5 = tiny_archive
    payload = path.read_bytes()
    data_dir = tmp_path / "data"
    bad = {"dropped": (payload, "drop"), "different bytes": (payload[::-1], "ok"),
           "truncated": (payload[: len(payload) // 3], "ok")}
    if fault == "unreachable":
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{s.getsockname()[1]}/cifar-10-python.tar.gz"
        with pytest.raises(DataError, match="by hand"):
            fetch.prepare(url=url, md5=md5, data_dir=data_dir, progress=False)
    else:
        body, mode = bad[fault]
        with ArchiveServer(body, mode) as server, pytest.raises(DataError):
            fetch.prepare(url=server.url, md5=md5, data_dir=data_dir, progress=False)
    # no partial or unverified file is left to be used later, nor the directory the fetch created
    assert not data_dir.exists()
    with ArchiveServer(payload) as server:
        provenance = fetch.prepare(url=server.url, md5=md5, data_dir=data_dir, progress=False)
    assert provenance["archive_md5"] == md5 and (data_dir / "cifar-10-batches-py" / "test_batch").is_file()


def test_a_batch_lost_after_extraction_is_extracted_again(tiny_env):
    data_dir, url, md5 = tiny_env["A1_DATA_DIR"], tiny_env["CIFAR10_URL"], tiny_env["CIFAR10_MD5"]
    provenance = fetch.prepare(data_dir, url, md5, progress=False)
    lost = os.path.join(provenance["batch_dir"], "data_batch_2")
    os.remove(lost)
    assert fetch.prepare(data_dir, progress=False) == provenance
    assert os.path.isfile(lost)


# --- parameters --------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "args, message",
    [(["-p", "n_batch", "1000"], "n_batch must be an integer from 1 to 250, got 1000"),
     (["-p", "val_size", "300"], "val_size must be an integer from 1 to 299, got 300"),
     (["-y", "seeds: []"], "seeds must be a non-empty list of integers, got []"),
     (["-y", "seeds: [1, 1]"], "seeds must not repeat a seed, got [1, 1]"),
     (["-y", "settings: [[0, 0]]"], "settings[0] eta must be > 0"),
     (["-y", "settings: [[-1, 0.1]]"], "settings[0] lam must be >= 0"),
     (["-p", "n_epochs", "ten"], "n_epochs must be an integer"),
     (["-p", "dtype", "float16"], "dtype must be one of 'float32', 'float64'"),
     (["-p", "learning_rate", "0.1"], "unknown parameter learning_rate")],
)
def test_bad_report_parameters_are_refused_before_anything_runs(tiny_data, args, message):
    r = report("--no-pdf", "-p", "val_size", "50", "-p", "n_batch", "10", *args, env=tiny_data, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert message in r.stderr
    assert not os.path.exists(partial(tiny_data, "executed"))


def test_unknown_names_in_a_yaml_file_are_refused(tiny_data, tmp_path):
    cfg = tmp_path / "my.yaml"
    cfg.write_text("n_epochs: 3\nlearning_rat: 0.1\n")
    r = report("-f", str(cfg), env=tiny_data, timeout=120)
    assert r.returncode == 2 and "unknown parameter learning_rat" in r.stderr


def test_papermill_directly_refuses_a_bad_value_before_training(tiny_data, tmp_path):
    out = tmp_path / "out.ipynb"
    r = papermill_02(out, "-p", "n_epochs", "-3", env=tiny_data)
    assert r.returncode != 0
    assert "n_epochs must be at least 1, got -3" in out.read_text()
    assert not os.path.exists(os.path.join(tiny_data["A1_REPORTS_DIR"], "runs"))


def test_papermill_directly_refuses_a_misspelled_name_before_training(tiny_data, tmp_path):
    # papermill itself only warns about a name the notebook does not declare; the notebook refuses it
    out = tmp_path / "out.ipynb"
    r = papermill_02(out, "-p", "n_epocs", "5", env=tiny_data)
    assert r.returncode != 0
    assert ("unknown parameter n_epocs (did you mean n_epochs?): the parameters cell of 02_training declares no such "
            "name") in r.stderr
    assert not os.path.exists(os.path.join(tiny_data["A1_REPORTS_DIR"], "runs"))


# --- divergence --------------------------------------------------------------------------------

def test_a_diverging_setting_is_reported_as_such(tiny_data):
    # lam = 1 with eta = 10 multiplies W by 1 - 2 eta lam = -19 every step: it must blow up
    r = report(*TINY_02, "-y", "settings: [[1, 10], [0, 0.01]]", env=tiny_data)
    assert r.returncode == 0, r.stderr
    html = open(partial(tiny_data, "report.html")).read()
    assert "2 (2 diverged)" in html and "Diverged:" in html
    rows = json.load(open(partial(tiny_data, "summary.json")))["rows"]
    assert [(r["lam"], r["diverged"], r["n_diverged"]) for r in rows] == [(1.0, True, 2), (0.0, False, 0)]
    assert all(np.isfinite(r["test"]["acc"]["mean"]) for r in rows)


# --- interruption, damage, determinism ---------------------------------------------------------

def run_files(env):
    return sorted(os.listdir(os.path.join(env["A1_REPORTS_DIR"], "runs")))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_an_interrupted_report_resumes_from_the_finished_runs(tiny_data, sig):
    # enough epochs that the runs take a while; one job at a time, so they finish one by one
    args = [*TINY_02, "-p", "n_epochs", "400", "-p", "n_jobs", "1", "-y", "seeds: [0, 1, 2]"]
    proc = subprocess.Popen([sys.executable, "-m", "assignment1.report", *args], env=tiny_data,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    runs_dir = os.path.join(tiny_data["A1_REPORTS_DIR"], "runs")
    deadline = time.time() + 300
    while time.time() < deadline and not (os.path.isdir(runs_dir) and any(f.endswith(".npz") and not f.startswith(".")
                                                                           for f in os.listdir(runs_dir))):
        time.sleep(0.2)
    os.killpg(proc.pid, sig)  # the runner, its kernel and its workers, as Ctrl-C or kill -9 would
    proc.communicate(timeout=120)
    assert proc.returncode != 0
    if sig == signal.SIGINT:  # Ctrl-C lets the runner clean up after its kernels
        assert not list(Path(tiny_data["TMPDIR"]).glob("a1-kernel-*"))
    done = [f for f in run_files(tiny_data) if not f.startswith(".")]
    assert 0 < len(done) < 12
    store = RunStore(runs_dir)
    for f in done:  # every entry on disk is whole
        assert store.load(f.removesuffix(".npz")) is not None
    finished = {f: os.stat(os.path.join(runs_dir, f)).st_mtime_ns for f in done}
    r = report(*args, env=tiny_data)
    assert r.returncode == 0, r.stderr
    # the rerun trained only what was missing: the finished runs are the same files, untouched
    assert len(run_files(tiny_data)) == 12
    assert {f: os.stat(os.path.join(runs_dir, f)).st_mtime_ns for f in done} == finished
    assert not [f for f in run_files(tiny_data) if f.startswith(".")]  # no temporary file left behind


def test_a_damaged_cache_entry_is_recomputed_and_reported(tiny_data):
    assert report(*TINY_02, env=tiny_data).returncode == 0
    summary = open(partial(tiny_data, "summary.json")).read()
    victim = os.path.join(tiny_data["A1_REPORTS_DIR"], "runs", run_files(tiny_data)[0])
    with open(victim, "r+b") as f:
        f.truncate(os.path.getsize(victim) // 2)
    r = report(*TINY_02, env=tiny_data)
    assert r.returncode == 0, r.stderr
    assert "warning in 02_training" in r.stdout and "damaged" in r.stdout
    assert open(partial(tiny_data, "summary.json")).read() == summary


def test_the_same_command_gives_the_same_summary(tiny_data, tmp_path):
    assert report(*TINY_02, env=tiny_data).returncode == 0
    first = open(partial(tiny_data, "summary.json")).read()
    # again with the cache, and again from scratch in a fresh reports directory
    assert report(*TINY_02, env=tiny_data).returncode == 0
    assert open(partial(tiny_data, "summary.json")).read() == first
    fresh = dict(tiny_data, A1_REPORTS_DIR=str(tmp_path / "fresh"))
    assert report(*TINY_02, env=fresh).returncode == 0
    assert open(partial(fresh, "summary.json")).read() == first
