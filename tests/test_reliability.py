"""Faults tried and survived: bad downloads, bad parameters, divergence, interruption, determinism."""

import contextlib
import json
import os
import re
import shutil
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
from assignment1.report import runner

from cifar_format import make_batches, write_archive
from conftest import ROOT, report, run_env, sockets_dir
from test_fetch import ArchiveServer

# section 2 alone, on tiny data: the cheapest complete report (a partial custom run, in reports/partial-custom/)
TINY_02 = ["--sections", "02", "--no-pdf", "-p", "val_size", "50", "-p", "n_batch", "10", "-p", "n_epochs", "3",
           "-y", "seeds: [0, 1]"]


def partial(env, *parts) -> str:
    """A path in the place of a run of some sections with other parameters (reports/partial-custom/)."""
    return os.path.join(env["A1_REPORTS_DIR"], "partial-custom", *parts)


def refused(*args, env, monkeypatch, capsys):
    """``python -m assignment1.report args`` run in this process, for what is refused before any work (the
    command's start-up, 4 s, paid once): ``(exit status, stdout, stderr)``. One test runs the real command."""
    for name in ("CIFAR10_URL", "CIFAR10_MD5", "A1_DATA_DIR", "A1_REPORTS_DIR"):
        monkeypatch.setenv(name, env[name])
    sigterm = signal.getsignal(signal.SIGTERM)  # main() takes SIGTERM over, as the command does
    try:
        status = runner.main(list(args))
    except SystemExit as e:  # argparse's refusals
        status = e.code
    finally:
        signal.signal(signal.SIGTERM, sigterm)
    out, err = capsys.readouterr()
    return status, out, err


def papermill_02(out, *params, env):
    """Section 2 run by papermill directly (not through the runner) on tiny data, with extra ``-p`` pairs."""
    return subprocess.run([sys.executable, "-m", "papermill", str(ROOT / "notebooks" / "02_training.ipynb"), str(out),
                           "-p", "val_size", "50", "-p", "n_batch", "10", *params],
                          capture_output=True, text=True, env=env, timeout=300)


#: What the runner and a notebook say of a list given with -p, which arrives as its text
LIST_AS_TEXT = "seeds must be a non-empty list of integers, got '[0,1]'; -p passes text: give a list as YAML, " \
               "-y 'seeds: [0,1]'"


@contextlib.contextmanager
def tiny_place(place: Path):
    """Environment for subprocesses in ``place``: a tiny archive, a data directory and a reports directory."""
    archive = place / "cifar-10-python.tar.gz"
    md5 = write_archive(archive, make_batches(n_per_batch=60))
    with sockets_dir() as sockets:
        yield run_env(CIFAR10_URL=archive, CIFAR10_MD5=md5, A1_DATA_DIR=place / "data",
                      A1_REPORTS_DIR=place / "reports", TMPDIR=sockets)


@pytest.fixture
def tiny_data(tmp_path):
    """Environment for subprocesses: a tiny archive, a data directory and a reports directory of the test's own."""
    with tiny_place(tmp_path) as env:
        yield env


# section 2 in batches of 25 (two blocks of rows), so that its runs are trained in sweeps of several
SWEPT_02 = [*TINY_02, "-p", "n_batch", "25"]


@pytest.fixture(scope="module")
def stored_02(tmp_path_factory):
    """:data:`SWEPT_02` run once from an empty store, for the tests that run it again: ``(env, its summary.json's
    text)``. Each test works in a copy of its reports directory (:func:`copy_of`); they share its data."""
    with tiny_place(tmp_path_factory.mktemp("stored-02")) as env:
        r = report(*SWEPT_02, env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        yield env, open(partial(env, "summary.json")).read()


def copy_of(stored, tmp_path):
    """``(env, summary)`` of :func:`stored_02` with its reports directory (store and report) copied to ``tmp_path``."""
    env, summary = stored
    shutil.copytree(env["A1_REPORTS_DIR"], tmp_path / "reports")
    return dict(env, A1_REPORTS_DIR=str(tmp_path / "reports")), summary


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
def test_bad_report_parameters_are_refused_before_anything_runs(tiny_data, args, message, monkeypatch, capsys):
    status, out, err = refused("--no-pdf", "-p", "val_size", "50", "-p", "n_batch", "10", *args, env=tiny_data,
                               monkeypatch=monkeypatch, capsys=capsys)
    assert status == 2, out + err
    assert message in err
    assert not os.path.exists(partial(tiny_data, "executed"))


def test_unknown_names_in_a_yaml_file_are_refused(tiny_data, tmp_path):
    # the real command, start-up included (the other refusals run it in this process)
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


def test_papermill_directly_says_how_to_give_a_list(tiny_data, tmp_path):
    # papermill's own -p turns [0,1] into text; the notebook's first cell says what to type instead
    out = tmp_path / "out.ipynb"
    r = papermill_02(out, "-p", "seeds", "[0,1]", env=tiny_data)
    assert r.returncode != 0
    assert LIST_AS_TEXT in out.read_text()
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

def as_in_a_terminal():
    """In the child: Ctrl-C's signal handled as in a terminal, even where the tests run in the background
    (a shell starts background jobs with SIGINT ignored, and Python then never raises KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_files(env):
    """The run store's entries and temporary files, not the data sets stored beside them (``data-*``)."""
    return sorted(f for f in os.listdir(os.path.join(env["A1_REPORTS_DIR"], "runs")) if "data-" not in f)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_an_interrupted_report_resumes_from_the_finished_runs(tiny_data, sig):
    # enough epochs that the runs take a while (0.4 s each); one job at a time, so they finish one by one
    args = [*TINY_02, "-p", "n_epochs", "100", "-p", "n_jobs", "1", "-y", "seeds: [0, 1, 2]"]
    proc = subprocess.Popen([sys.executable, "-m", "assignment1.report", *args], env=tiny_data,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=as_in_a_terminal)
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
    assert not [f for f in os.listdir(runs_dir) if f.startswith(".")]  # no temporary file or claim left behind


def test_a_damaged_cache_entry_is_recomputed_and_reported(stored_02, tmp_path):
    # section 2 run once (stored_02): one of its stored runs cut in half
    env, summary = copy_of(stored_02, tmp_path)
    victim = os.path.join(env["A1_REPORTS_DIR"], "runs", run_files(env)[0])
    with open(victim, "r+b") as f:
        f.truncate(os.path.getsize(victim) // 2)
    r = report(*SWEPT_02, env=env)
    assert r.returncode == 0, r.stderr
    # one line in the project's words, naming the entry and where it went
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("warning in 02_training"))
    assert line.startswith(f"warning in 02_training: stored run {victim} is damaged") and "moved to" in line
    assert open(partial(env, "summary.json")).read() == summary


def test_the_same_command_gives_the_same_summary_from_an_empty_a_half_full_and_a_full_store(stored_02, tmp_path):
    # the summary from an empty store (stored_02), then again with every run stored and with half of them
    env, first = copy_of(stored_02, tmp_path)
    assert report(*SWEPT_02, env=env).returncode == 0
    assert open(partial(env, "summary.json")).read() == first
    stored = sorted(Path(env["A1_REPORTS_DIR"], "runs").glob("*.npz"))
    for path in stored[::2]:
        path.unlink()
    r = report(*SWEPT_02, env=env)
    assert r.returncode == 0 and f"({len(stored[::2])} trained now" in r.stdout
    assert open(partial(env, "summary.json")).read() == first


# --- places, state files and selections (one line each, before any work) -----------------------

@pytest.mark.parametrize("place", ["reports dir is a file", "--out under a file", "data dir is a file"])
def test_a_place_that_cannot_be_used_is_one_line_before_any_work(tiny_data, tmp_path, place, monkeypatch, capsys):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    env, args = dict(tiny_data), [*TINY_02]
    if place == "reports dir is a file":
        env["A1_REPORTS_DIR"] = str(a_file)
        expected = f"error: the reports directory {a_file} is a file, not a directory: name another with"
    elif place == "--out under a file":
        args += ["--out", str(a_file / "report")]
        expected = f"error: cannot write in the report's directory {a_file / 'report'} (Not a directory): name"
    else:
        env["A1_DATA_DIR"] = str(a_file)
        expected = f"error: data directory {a_file} is a file, not a directory: point A1_DATA_DIR"
    status, out, err = refused(*args, env=env, monkeypatch=monkeypatch, capsys=capsys)
    assert status in (1, 2) and err.startswith(expected) and err.count("\n") == 1, err
    assert "Traceback" not in out + err
    assert not os.path.exists(os.path.join(tiny_data["A1_REPORTS_DIR"], "runs"))


def test_the_command_line_names_a_data_directory_or_json_path_it_cannot_use(tiny_data, tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    cmd = [sys.executable, "-m", "assignment1", "train", "--quiet", "--val-size", "50", "--batch", "10"]
    r = subprocess.run([*cmd, "--data-dir", str(a_file)], capture_output=True, text=True, env=tiny_data)
    assert r.returncode == 1 and r.stderr.startswith(f"error: data directory {a_file} is a file")
    r = subprocess.run([*cmd, "--json", str(tmp_path)], capture_output=True, text=True, env=tiny_data)
    assert r.returncode == 2 and r.stderr == f"error: json must name a file in an existing directory, got " \
                                             f"'{tmp_path}'\n" and "test loss" not in r.stdout


def test_a_damaged_provenance_record_is_named_moved_aside_and_the_data_checked_again(tiny_data):
    provenance = fetch.prepare(tiny_data["A1_DATA_DIR"], tiny_data["CIFAR10_URL"], tiny_data["CIFAR10_MD5"],
                               progress=False)
    record = os.path.join(tiny_data["A1_DATA_DIR"], "provenance.json")
    with open(record, "w") as f:
        f.write('{"source": "/some/where", "files": ')  # cut short
    said = []
    # its source named again, the batches are checked against it and the record written anew
    again = fetch.prepare(tiny_data["A1_DATA_DIR"], tiny_data["CIFAR10_URL"], tiny_data["CIFAR10_MD5"],
                          progress=False, notify=said.append)
    assert again == provenance and json.load(open(record)) == provenance
    assert len(said) == 1 and said[0].startswith(f"{record}, the record of where the data came from, is damaged")
    assert os.path.exists(record + ".damaged")
    # no source named: the error names the damaged record, not only the download that could not be made
    with open(record, "w") as f:
        f.write("[]")
    with pytest.raises(DataError, match=f"^{record}, the record of where the data came from, is damaged.*and "
                                        "extracting again failed"):
        fetch.prepare(tiny_data["A1_DATA_DIR"], progress=False, notify=said.append)


@pytest.mark.parametrize("args, message", [
    (["--sections", ""], "error: sections must name sections, like 01 02 03 04 05 06, got ''"),
    (["--sections", "02", "99"], "error: sections must name sections, like 01 02 03 04 05 06, got '99'"),
    (["-p", "seeds", "[0,1]"], f"error: {LIST_AS_TEXT}")])
def test_a_selection_that_selects_nothing_and_a_list_passed_with_p_are_refused(tiny_data, args, message,
                                                                               monkeypatch, capsys):
    status, _, err = refused(*args, env=tiny_data, monkeypatch=monkeypatch, capsys=capsys)
    assert status == 2 and err == message + "\n"


def test_papermill_run_directly_writes_its_notebook_and_stored_runs_only(tiny_data, tmp_path):
    out = tmp_path / "out.ipynb"
    r = papermill_02(out, "-p", "n_epochs", "2", "-y", "seeds: [0]", env=tiny_data)
    assert r.returncode == 0, r.stderr[-2000:]
    assert os.listdir(tiny_data["A1_REPORTS_DIR"]) == ["runs"]
    from assignment1.report.section import records

    tables, compute = records(out)  # what the report would take from it, it carries itself
    assert list(tables) == ["table1"] and compute["runs"] == 4


# --- processes end with the report that started them --------------------------------------------

def processes_marked(mark: str) -> list[int]:
    """Live processes whose environment holds ``mark`` (the runner's and all it started)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and mark.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def start_long_report(env, *extra):
    args = [*TINY_02, "-p", "n_epochs", "2000", "-y", "seeds: [0, 1, 2]", *extra]
    return subprocess.Popen([sys.executable, "-m", "assignment1.report", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, preexec_fn=as_in_a_terminal)


def wait_for_training(env, timeout=300):
    """Until the report's workers are training (their progress files are there)."""
    progress = Path(partial(env, ".progress"))
    deadline = time.time() + timeout
    while time.time() < deadline and not list(progress.glob("*.txt")):
        time.sleep(0.2)
    assert list(progress.glob("*.txt")), "the runs did not start"


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc to find the processes")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killing_the_runner_leaves_nothing_of_the_project_running(tiny_data, sig):
    mark = f"A1_TEST_MARK={os.getpid()}-{sig}"
    env = dict(tiny_data, A1_TEST_MARK=mark.split("=", 1)[1])
    proc = start_long_report(env)
    wait_for_training(env)
    assert len(processes_marked(mark)) >= 3  # the runner, its kernel and the kernel's workers
    os.kill(proc.pid, sig)  # the runner alone: what it started is left to notice
    proc.communicate(timeout=60)
    deadline = time.time() + 30
    while processes_marked(mark) and time.time() < deadline:
        time.sleep(0.5)
    assert processes_marked(mark) == []


def test_ctrl_c_ends_the_report_with_one_line(tiny_data):
    proc = start_long_report(tiny_data)
    wait_for_training(tiny_data)
    os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C in a terminal: the whole foreground group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert err.strip().splitlines() == ["interrupted: finished runs are stored; rerun to resume from them"], err


# --- two reports at once -------------------------------------------------------------------------

def test_two_reports_sharing_a_store_train_each_run_once(tiny_data, tmp_path):
    args = [*TINY_02, "-p", "n_epochs", "60", "--quick", "-y", "settings: [[0, 0.01], [0.1, 0.01], [1, 0.01]]"]
    first, second = (subprocess.Popen([sys.executable, "-m", "assignment1.report", *args, "--out",
                                       str(tmp_path / name)], env=tiny_data, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True) for name in ("one", "two"))
    outs = [p.communicate(timeout=600) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outs
    trained = [int(re.search(r"\((\d+) trained now", out).group(1)) for out, _ in outs]
    assert sum(trained) == 3  # three runs of one seed; whoever trained one, the other waited for it
    assert (tmp_path / "one" / "summary.json").read_text() == (tmp_path / "two" / "summary.json").read_text()
    # into one place, the second is refused while the first writes there
    first = start_long_report(tiny_data)
    wait_for_training(tiny_data)
    second = report(*TINY_02, "-p", "n_epochs", "2000", "-y", "seeds: [0, 1, 2]", env=tiny_data, timeout=120)
    assert second.returncode == 1
    assert second.stderr.startswith(f"error: another report (process {first.pid}) is writing to "
                                    f"{partial(tiny_data)}")
    first.send_signal(signal.SIGINT)
    first.communicate(timeout=120)


def test_two_searches_at_once_give_one_report_and_a_rerun_gives_it_again(tiny_data, tmp_path):
    args = ["--quick", "--sections", "06", "--no-pdf", "-p", "val_size", "50", "-p", "final_val_size", "50",
            "-p", "n_batch", "10", "-y", "search_batches: [10, 20]"]
    procs = [subprocess.Popen([sys.executable, "-m", "assignment1.report", *args, "--out", str(tmp_path / name)],
                              env=tiny_data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name in ("one", "two")]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    # both added trials to one study, and both reports show its first four
    summary = (tmp_path / "one" / "summary.json").read_text()
    assert json.loads(summary)["tables"]["06_search"]["search_trials"]["complete"] > 0
    assert (tmp_path / "two" / "summary.json").read_text() == summary
    # a rerun trains nothing and says the same
    again = report(*args, "--out", str(tmp_path / "one"), env=tiny_data)
    assert again.returncode == 0, again.stderr
    assert "(0 trained now" in again.stdout
    assert (tmp_path / "one" / "summary.json").read_text() == summary
