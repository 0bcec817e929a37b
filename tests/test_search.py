"""The hyperparameter search: Optuna's, on validation data only, resumable, shared by processes and machines."""

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
import pytest

from assignment1.experiments import search
from assignment1.experiments.runs import Experiments

from cifar_format import make_batches, write_archive
from conftest import run_env

SPACE = search.Space(n_batch=(10, 20), n_epochs=(3, 5), average=(0.0, 0.5))
COMMON = dict(seed=0, val_size=50, evaluate_train=False)  # as the report searches


def test_suggestions_are_seeded_and_inside_the_space():
    def draws(seed):
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
        return [search.suggest(study.ask(), SPACE, **COMMON) for _ in range(12)]

    a = draws(3)
    assert a == draws(3) and a != draws(4)
    for c in a:
        assert 1e-4 <= c.lam <= 0.3 and 1e-3 <= c.eta <= 0.1 and c.n_batch in (10, 20) and c.n_epochs in (3, 5)
        assert c.milestones in ((), (2, 4), (2,), (3, 4)) and c.average in (0.0, 0.5)
    # every schedule and both sides of each choice were drawn, so the checks above saw them
    assert {c.schedule for c in a} == {"step", "cosine"} and {bool(c.milestones) for c in a} == {True, False}
    assert {c.flip for c in a} == {True, False}


def test_a_storage_password_is_never_shown():
    assert search.hidden("postgresql://ann:s3cret@db.example/optuna") == "postgresql://ann:***@db.example/optuna"
    assert "s3cret" not in search.hidden("not a url with s3cret")
    with pytest.raises(RuntimeError) as e:
        search.open_study("postgresql://ann:s3cret@127.0.0.1:1/optuna", "x", 0, "median")
    assert "s3cret" not in str(e.value) and "ann:***@" in str(e.value)


def tiny_experiments(tmp_path, name, poison=False, n_jobs=1):
    files = make_batches(n_per_batch=60)
    if poison:  # the same data, but every test label changed
        import pickle

        test = pickle.loads(files["test_batch"], encoding="bytes")
        test[b"labels"] = [(v + 1) % 10 for v in test[b"labels"]]
        files["test_batch"] = pickle.dumps(test, protocol=2)
    archive = tmp_path / f"{name}.tar.gz"
    md5 = write_archive(archive, files)
    return Experiments(data_dir=tmp_path / f"data-{name}", url=str(archive), md5=md5,
                       reports_dir=tmp_path / f"reports-{name}", progress=False, n_jobs=n_jobs)


def test_poisoned_test_labels_do_not_change_the_search(tmp_path):
    # two searches from scratch, one on data whose test labels are all wrong, each with two worker processes
    studies, experiments = {}, {}
    for name, poison in (("clean", False), ("poisoned", True)):
        ex = experiments[name] = tiny_experiments(tmp_path, name, poison, n_jobs=2)
        studies[name] = search.search(ex, SPACE, 6, 0, "median", COMMON, reports_dir=tmp_path / f"reports-{name}",
                                      trials_per_round=2)
    clean, bad = studies["clean"], studies["poisoned"]
    assert experiments["clean"].provenance["files"]["test_batch"] != experiments["poisoned"].provenance["files"][
        "test_batch"]
    # the same trials, values and choice: timing aside, a search is a function of the validation data
    assert [(t.params, t.value, t.state) for t in clean.trials] == [(t.params, t.value, t.state) for t in bad.trials]
    assert search.table(clean, SPACE, **COMMON) == search.table(bad, SPACE, **COMMON)
    assert all("test" not in row for row in search.table(clean, SPACE, **COMMON))
    # the test set, used once for the choice, does see the poison
    chosen = search.config_of(search.selected(clean), SPACE, **COMMON)
    a, b = (experiments[name].run([chosen])[0] for name in ("clean", "poisoned"))
    assert np.array_equal(a.W, b.W) and a.test["acc"] != b.test["acc"]
    # its first seed is the trial's run, from the store
    assert experiments["clean"].n_trained == experiments["poisoned"].n_trained == 0


def test_a_search_is_its_first_trials_whatever_else_the_study_holds(tmp_path):
    ex = tiny_experiments(tmp_path, "clean")
    six = search.search(ex, SPACE, 6, 0, "median", COMMON, reports_dir=tmp_path / "reports-clean", trials_per_round=2)
    # asking for four afterwards trains nothing more and gives the first four of the six
    four = search.search(ex, SPACE, 4, 0, "median", COMMON, reports_dir=tmp_path / "reports-clean", trials_per_round=2)
    first = [t for t in six.trials if t.number <= sorted(
        t.number for t in six.trials if t.state.name in ("COMPLETE", "PRUNED"))[3]]
    assert [(t.number, t.params, t.value, t.state) for t in four.trials] == [
        (t.number, t.params, t.value, t.state) for t in first]
    assert search.counts(four)["complete"] + search.counts(four)["pruned"] == 4
    stored = optuna.load_study(study_name=six.study_name,
                               storage=search.storage(search.storage_url(tmp_path / "reports-clean")))
    assert len(stored.trials) == len(six.trials)


def test_a_search_is_the_same_with_any_number_of_processes(tmp_path):
    # one search, from scratch, with one worker process, with two and with three
    def trials(n_jobs, trials_per_round=2):
        where = tmp_path / f"{n_jobs}-{trials_per_round}"
        where.mkdir()
        study = search.search(tiny_experiments(where, "clean", n_jobs=n_jobs), SPACE, 8, 0, "median", COMMON,
                              reports_dir=where / "reports-clean", trials_per_round=trials_per_round)
        return [(t.number, t.params, t.value, t.state) for t in study.trials]

    one = trials(1)
    assert one == trials(2) == trials(3)
    # rounds of another size are another search (the pruner judges a trial against those told before its round)
    assert trials(2, trials_per_round=1) != one


def test_trials_of_dead_processes_and_unowned_ones_are_failed(tmp_path, monkeypatch):
    study = search.open_study(search.storage_url(tmp_path), "s", 0, "median")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    trials = {name: study.ask() for name in ("alive", "dead", "unowned")}
    trials["alive"].set_user_attr("owner", search.owner())
    trials["dead"].set_user_attr("owner", f"{search.socket.gethostname()}:{dead.pid}")
    # a trial asked for a moment ago may still be getting its owner
    assert search.fail_abandoned(study) == [trials["dead"].number]
    monkeypatch.setattr(search, "UNOWNED_SECONDS", 0)
    time.sleep(0.01)
    assert search.fail_abandoned(study) == [trials["unowned"].number]
    assert [t.state.name for t in study.trials] == ["RUNNING", "FAIL", "FAIL"]


SEARCH = """
import sys
from pathlib import Path
from assignment1.experiments import search
from assignment1.experiments.runs import Experiments
space = search.Space(n_batch=(10, 20), n_epochs=(int(sys.argv[2]),), average=(0.0,))
ex = Experiments(n_jobs=int(sys.argv[3]), progress=False)
study = search.search(ex, space, int(sys.argv[1]), 0, "median", dict(seed=0, val_size=50), trials_per_round=2)
print("counts", search.counts(study))
"""


def run_search(env, n_trials, n_epochs, n_jobs=1, wait=True):
    cmd = [sys.executable, "-c", SEARCH, str(n_trials), str(n_epochs), str(n_jobs)]
    if not wait:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def study_of(env) -> optuna.Study:
    url = search.storage_url(env["A1_REPORTS_DIR"])
    names = optuna.get_all_study_names(storage=search.storage(url))
    assert len(names) == 1
    return optuna.load_study(study_name=names[0], storage=search.storage(url))


def test_a_search_killed_mid_round_resumes_with_its_trials_and_the_killed_ones_failed(tiny_env, tmp_path):
    env = run_env(A1_REPORTS_DIR=tmp_path / "reports")
    proc = run_search(env, 6, 400, wait=False)
    deadline = time.time() + 300
    url = search.storage_url(env["A1_REPORTS_DIR"])
    while time.time() < deadline:  # until one round has been told and the next is training
        time.sleep(0.5)
        try:  # the search may be creating the database's tables right now, as open_study allows for
            started = (tmp_path / "reports" / "search" / "search.db").exists() and optuna.get_all_study_names(
                storage=search.storage(url))
        except RuntimeError:
            continue
        if started:
            states = [t.state.name for t in study_of(env).trials]
            if "COMPLETE" in states and states[-2:] == ["RUNNING", "RUNNING"]:
                break
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    before = study_of(env).trials
    told = sum(t.state.name != "RUNNING" for t in before)
    assert [t.state.name for t in before[told:]] == ["RUNNING"] * 2  # the killed round's two trials
    r = run_search(env, 6, 400)
    assert r.returncode == 0, r.stderr
    after = study_of(env).trials
    # the finished trials kept as they were, the killed round's marked failed, and new ones up to six finished
    assert [(t.params, t.value) for t in after[:told]] == [(t.params, t.value) for t in before[:told]]
    assert [t.state.name for t in after[told:len(before)]] == ["FAIL"] * 2
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in after) == 6


def test_two_processes_share_one_study_in_sqlite(tiny_env, tmp_path):
    env = run_env(A1_REPORTS_DIR=tmp_path / "reports")
    procs = [run_search(env, 8, 30, wait=False) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert not any("locked" in err for _, err in outs)
    trials = study_of(env).trials
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in trials) >= 8
    assert not [t for t in trials if t.state.name in ("RUNNING", "FAIL")]
    # both see the same eight trials: the first eight of the study, whichever process trained them
    assert outs[0][0] == outs[1][0] and "counts" in outs[0][0]


@pytest.fixture
def postgres():
    """A PostgreSQL server in a temporary directory, for this test only: its URL, with a password in it."""
    # on the PATH, or where Debian's postgresql package puts them
    where = os.pathsep.join([os.environ.get("PATH", ""), *map(str, sorted(Path("/usr/lib/postgresql").glob("*/bin")))])
    initdb, pg_ctl = shutil.which("initdb", path=where), shutil.which("pg_ctl", path=where)
    root = os.geteuid() == 0
    missing = ("PostgreSQL's initdb and pg_ctl are not installed" if not (initdb and pg_ctl) else
               "as root, initdb needs runuser to run as the postgres user" if root and not shutil.which("runuser")
               else "the postgres extra is not installed (pip install -e '.[postgres]')"
               if importlib.util.find_spec("psycopg") is None else None)
    if missing:
        if os.environ.get("A1_REQUIRE_TOOLS"):
            pytest.fail(f"A1_REQUIRE_TOOLS is set but {missing}")
        pytest.skip(missing)
    as_postgres = ["runuser", "-u", "postgres", "--"] if root else []
    base = Path(tempfile.mkdtemp(prefix="a1-pg-"))  # not under pytest's directories, which postgres cannot enter
    base.chmod(0o755)
    if root:
        shutil.chown(base, "postgres")
    data, sockets, port = base / "data", base / "sockets", 40000 + os.getpid() % 20000
    try:
        subprocess.run([*as_postgres, initdb, "-D", str(data), "-U", "postgres", "--auth=trust"], check=True,
                       capture_output=True)
        subprocess.run([*as_postgres, "mkdir", str(sockets)], check=True)
        subprocess.run([*as_postgres, pg_ctl, "-D", str(data), "-l", str(base / "log"), "-w", "-o",
                        f"-p {port} -k {sockets} -c listen_addresses=''", "start"], check=True, capture_output=True)
        # the password is not checked (trust), but it is in the URL, where it must never be shown
        yield f"postgresql+psycopg://postgres:s3cret@/postgres?host={sockets}&port={port}"
    finally:
        subprocess.run([*as_postgres, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def test_two_processes_share_one_study_in_postgresql(tiny_env, tmp_path, postgres):
    env = run_env(A1_REPORTS_DIR=tmp_path / "reports", A1_SEARCH_STORAGE=postgres)
    # both create Optuna's tables and the study at the same moment on a fresh database, then add trials
    procs = [run_search(env, 8, 30, wait=False) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert not any("s3cret" in out + err for out, err in outs)
    study = optuna.load_study(study_name=optuna.get_all_study_names(postgres)[0], storage=postgres)
    finished = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) >= 8 and len({t.user_attrs["owner"] for t in study.trials}) == 2  # both added trials
    assert not (tmp_path / "reports" / "search").exists()  # nothing went to SQLite
