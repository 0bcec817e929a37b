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

from assignment1 import sweep
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
    # in the user info (also holding an @, which the last @ ends), or in the query; the rest as it was
    assert search.hidden("postgresql://ann:s3cret@db.example/optuna") == "postgresql://ann:***@db.example/optuna"
    assert search.hidden("postgresql://a1:p@ss@db.example/optuna") == "postgresql://a1:***@db.example/optuna"
    assert search.hidden("postgresql+psycopg://a1@127.0.0.1:5433/a1?sslmode=require&password=s3cret") == (
        "postgresql+psycopg://a1@127.0.0.1:5433/a1?sslmode=require&password=***")
    assert search.hidden("sqlite:////tmp/r/search.db") == "sqlite:////tmp/r/search.db"
    assert "s3cret" not in search.hidden("not a url with s3cret")
    # an unreachable server is named at once, in the driver's words, the password hidden wherever it was; without the
    # postgres extra, the missing driver is named, with what to install
    named = "refused" if importlib.util.find_spec("psycopg") else "No module named 'psycopg'; install its driver"
    for url in ("postgresql://ann:s3cret@127.0.0.1:1/optuna", "postgresql://ann@127.0.0.1:1/optuna?password=s3cret",
                "postgresql://ann:s3%40cret@127.0.0.1:1/optuna"):
        with pytest.raises(RuntimeError) as e:
            search.open_study(url, "x")
        assert "s3cret" not in str(e.value) and "s3%40cret" not in str(e.value) and "s3@cret" not in str(e.value)
        assert "ann" in str(e.value) and "***" in str(e.value) and named in str(e.value)
    # an @ left in a password would make the driver take its rest for the host: said before it is tried
    with pytest.raises(RuntimeError, match="write it as %40") as e:
        search.open_study("postgresql://ann:p@ss@127.0.0.1:1/optuna", "x")
    assert "ss@" not in str(e.value)


def test_a_reports_path_with_url_characters_holds_its_study(tmp_path):
    reports = tmp_path / "r %41?a=b#c"
    url = search.storage_url(reports)
    # the path is quoted into the URL: the driver reads it back as it was
    from sqlalchemy.engine import make_url

    assert make_url(url).database == str(reports / "search" / "search.db")
    search.open_study(url, "s").ask()
    assert (reports / "search" / "search.db").stat().st_size > 0 and {p.name for p in tmp_path.iterdir()} == {
        reports.name}


@pytest.mark.parametrize("damage", ["junk", "truncated"])
def test_a_damaged_study_file_is_moved_aside_and_the_search_starts_anew(tmp_path, damage):
    # a study with trials in it, then its file overwritten with junk or cut short
    url = search.storage_url(tmp_path)
    study = search.open_study(url, "s")
    for _ in range(30):
        study.tell(study.ask(), 0.5)
    path = tmp_path / "search" / "search.db"
    if damage == "junk":
        path.write_bytes(np.random.default_rng(0).bytes(100_000))
    else:
        os.truncate(path, path.stat().st_size // 2)
    damaged = path.read_bytes()
    # named in one warning, moved aside as it was, and a new study opened at once
    start = time.monotonic()
    with pytest.warns(UserWarning, match=f"study file {path} is damaged .*; moved to {path.parent / 'damaged'}"):
        study = search.open_study(url, "s")
    assert time.monotonic() - start < 5
    assert (path.parent / "damaged" / "search.db").read_bytes() == damaged and study.trials == []


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
    # two searches from scratch, one on data whose test labels are all wrong
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
    assert search.table(clean, SPACE, "s", "t", **COMMON) == search.table(bad, SPACE, "s", "t", **COMMON)
    assert all("test" not in row for row in search.table(clean, SPACE, "s", "t", **COMMON))
    # the search counts the trials it trained (each a run, pruned or not)
    assert experiments["clean"].n_trained == len(clean.trials) == experiments["poisoned"].n_trained
    # the test set, used once for the choice, does see the poison
    chosen = search.config_of(search.selected(clean), SPACE, **COMMON)
    a, b = (experiments[name].run([chosen])[0] for name in ("clean", "poisoned"))
    assert np.array_equal(a.W, b.W) and a.test["acc"] != b.test["acc"]
    # its first seed is the trial's run, from the store
    assert experiments["clean"].n_trained == experiments["poisoned"].n_trained == len(clean.trials)


IMPORTANCES = """
import sys, optuna
from assignment1.experiments import search
optuna.logging.set_verbosity(optuna.logging.ERROR)
print(list(search.importances(optuna.load_study(study_name="ties", storage=sys.argv[1]))))
"""


def test_parameters_of_equal_importance_come_in_the_order_of_their_names_in_every_process(tmp_path):
    # a study whose p and q always take the same value: they explain the accuracy equally, x explains most of it
    storage = f"sqlite:///{tmp_path / 'ties.db'}"
    study = optuna.create_study(storage=storage, study_name="ties", direction="maximize")
    both = optuna.distributions.CategoricalDistribution([False, True])
    space = {"x": optuna.distributions.FloatDistribution(0, 1), "p": both, "q": both}
    for i in range(8):
        study.add_trial(optuna.trial.create_trial(params={"x": i / 8, "p": i % 2 == 0, "q": i % 2 == 0},
                                                  distributions=space, value=i / 8))
    # processes hashing strings differently (Optuna passes the names through a set; q came first with seed 0): one order
    orders = {subprocess.run([sys.executable, "-c", IMPORTANCES, storage], capture_output=True, text=True, check=True,
                             env=run_env(PYTHONHASHSEED=seed)).stdout.strip() for seed in (0, 1)}
    assert orders == {"['x', 'p', 'q']"}


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


def test_a_search_is_the_same_whatever_the_store_holds_and_the_processes(tmp_path):
    # one search from scratch with one process; again, each with a study of its own, with two processes on a store
    # holding half of the first search's runs, and with three on a store holding all of them
    def trials(name, n_jobs, stored=()):
        ex = tiny_experiments(tmp_path, name, n_jobs=n_jobs)
        ex.store.directory.mkdir(parents=True, exist_ok=True)
        for run in stored:
            shutil.copy(run, ex.store.directory)
        study = search.search(ex, SPACE, 8, 0, "median", COMMON, reports_dir=tmp_path / f"reports-{name}",
                              trials_per_round=2)
        assert ex.n_trained == len(study.trials)  # every trial trained: none was read from the store
        return [(t.number, t.params, t.value, t.state) for t in study.trials], ex

    empty, ex = trials("empty", 1)
    runs = sorted(ex.store.directory.glob("*.npz"))
    assert len(runs) >= 2 and empty == trials("half", 2, runs[::2])[0] == trials("full", 3, runs)[0]


def test_a_round_draws_what_a_sweep_shares_and_trains_as_one_sweep_that_pruned_trials_leave(tmp_path, monkeypatch):
    # a search of three rounds of three trials, each sweep it trains recorded
    sweeps, train = [], sweep.train

    def recorded(X, Y, X_val, Y_val, cfgs, **kwargs):
        sweeps.append(cfgs)
        return train(X, Y, X_val, Y_val, cfgs, **kwargs)

    monkeypatch.setattr(sweep, "train", recorded)
    ex = tiny_experiments(tmp_path, "clean")
    trials = search.search(ex, SPACE, 9, 0, "median", COMMON, reports_dir=tmp_path / "reports-clean",
                           trials_per_round=3).trials
    # each round is one sweep of its three trials: they share the mini-batch size and flips, and differ in the rest
    assert [len(s) for s in sweeps] == [3, 3, 3] and len(trials) == 9
    for k in range(0, 9, 3):
        assert len({(t.params["n_batch"], t.params["flip"]) for t in trials[k:k + 3]}) == 1
        assert len({t.params["lam"] for t in trials[k:k + 3]}) == 3
    assert len({(t.params["n_batch"], t.params["flip"]) for t in trials}) > 1  # the rounds draw them anew
    # after each of its epochs, every trial reported what its run trained alone reaches; a pruned one left early
    monkeypatch.setattr(sweep, "train", train)
    ds = ex.dataset(COMMON["val_size"])
    for t in trials:
        cfg = search.config_of(t, SPACE, **COMMON)
        alone = sweep.train(ds.train.X, ds.train.Y, ds.val.X, ds.val.Y, [cfg])[0]
        values = [v for _, v in sorted(t.intermediate_values.items())]
        assert values == alone.history["val_acc"][:len(values)]
        assert (len(values) < cfg.n_epochs) == (t.state.name == "PRUNED")
    assert {t.state.name for t in trials} == {"COMPLETE", "PRUNED"}  # so the checks above saw both


def test_trials_of_dead_processes_are_failed_and_marked_killed(tmp_path):
    study = search.open_study(search.storage_url(tmp_path), "s")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    trials = {name: study.ask() for name in ("alive", "dead")}
    trials["alive"].set_user_attr("owner", search.owner())
    trials["dead"].set_user_attr("owner", f"{search.socket.gethostname()}:{dead.pid}")
    # the dead one is failed once, and marked killed, so that its slot is trained again
    assert search.fail_abandoned(study) == [trials["dead"].number]
    assert search.fail_abandoned(study) == []
    assert [(t.state.name, "killed" in t.user_attrs) for t in study.trials] == [("RUNNING", False), ("FAIL", True)]


SEARCH = """
import json, os, sys, time
from pathlib import Path
from assignment1.experiments import search
from assignment1.experiments.runs import Experiments
n_trials, n_epochs, n_jobs, per_round = map(int, sys.argv[1:5])
if gate := os.environ.get("SEARCH_GATE"):  # start when the test opens the gate, with the other process
    Path(f"{gate}.{os.getpid()}").touch()
    while not Path(gate).exists():
        time.sleep(0.01)
space = search.Space(n_batch=(10, 20), n_epochs=(n_epochs,), average=(0.0,))
study = search.search(Experiments(n_jobs=n_jobs, progress=False), space, n_trials, 0, "median",
                      dict(seed=0, val_size=50), trials_per_round=per_round)
print("counts", search.counts(study))
print(json.dumps([(t.params, t.state.name, t.value, sorted(t.intermediate_values.items())) for t in study.trials]))
"""


def run_search(env, n_trials, n_epochs, n_jobs=1, wait=True, per_round=2):
    cmd = [sys.executable, "-c", SEARCH, str(n_trials), str(n_epochs), str(n_jobs), str(per_round)]
    if not wait:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def study_of(env) -> optuna.Study:
    url = search.storage_url(env["A1_REPORTS_DIR"])
    names = optuna.get_all_study_names(storage=search.storage(url))
    assert len(names) == 1
    return optuna.load_study(study_name=names[0], storage=search.storage(url))


def kill_while(env, start, done) -> list[str]:
    """SIGKILL the search ``start()`` starts once the states of its stored trials satisfy ``done``; return the
    states it left, read once it is dead. Between a look and the kill it may have started another trial of its
    round, or finished its only running one: if the kill found no trial running, the search is started again (it
    resumes) and killed again."""
    deadline, proc = time.time() + 300, start()
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
        try:  # the search may be creating the database's tables right now, as open_study allows for
            states = [t.state.name for t in study_of(env).trials]
        except (RuntimeError, AssertionError):
            continue
        if done(states):
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=60)
            if "RUNNING" in (left := [t.state.name for t in study_of(env).trials]):
                return left
            proc = start()
    pytest.fail(f"the search never reached the state to kill it in: {proc.communicate(timeout=60)}")


@pytest.mark.parametrize("per_round", [1, 2])
def test_a_search_killed_and_resumed_is_the_uninterrupted_search(tiny_env, tmp_path, per_round):
    # a search killed (SIGKILL) while it trains, after two trials finished, then run again to its end
    killed = run_env(A1_REPORTS_DIR=tmp_path / "killed")
    states = kill_while(killed, lambda: run_search(killed, 6, 150, per_round=per_round, wait=False),
                        lambda states: states.count("COMPLETE") >= 2 and "RUNNING" in states)
    resumed = run_search(killed, 6, 150, per_round=per_round)
    assert resumed.returncode == 0, resumed.stderr
    # the same search never interrupted, in a storage of its own: the same trials, parameters, states and values
    whole = run_search(run_env(A1_REPORTS_DIR=tmp_path / "whole"), 6, 150, per_round=per_round)
    assert whole.returncode == 0, whole.stderr
    assert resumed.stdout == whole.stdout and "COMPLETE" in whole.stdout
    # the killed trials were kept, marked, and their slots trained again with their own parameters
    stored = study_of(killed).trials
    dead = [t for t in stored if "killed" in t.user_attrs]
    assert len(dead) == states.count("RUNNING") > 0 and {t.state.name for t in dead} == {"FAIL"}
    for t in dead:
        again = [u for u in stored if u.user_attrs["slot"] == t.user_attrs["slot"] and u.number > t.number]
        assert [u.params for u in again] == [t.params] and again[0].state.name in ("COMPLETE", "PRUNED")


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
    (base / "password").write_text("s3cret\n")
    try:
        subprocess.run([*as_postgres, initdb, "-D", str(data), "-U", "postgres", "--auth=scram-sha-256",
                        f"--pwfile={base / 'password'}"], check=True, capture_output=True)
        subprocess.run([*as_postgres, "mkdir", str(sockets)], check=True)
        subprocess.run([*as_postgres, pg_ctl, "-D", str(data), "-l", str(base / "log"), "-w", "-o",
                        f"-p {port} -k {sockets} -c listen_addresses=''", "start"], check=True, capture_output=True)
        # the password is checked, and it is in the URL, where it must never be shown
        yield f"postgresql+psycopg://postgres:s3cret@/postgres?host={sockets}&port={port}"
    finally:
        subprocess.run([*as_postgres, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def test_two_processes_share_one_study_in_postgresql(tiny_env, tmp_path, postgres):
    env = run_env(A1_REPORTS_DIR=tmp_path / "reports", A1_SEARCH_STORAGE=postgres)
    # both create Optuna's tables and the study at the same moment on a fresh database, then add trials: started
    # together once both have imported, or one could draw every round before the other began
    gate = tmp_path / "gate"
    procs = [run_search({**env, "SEARCH_GATE": str(gate)}, 8, 30, wait=False) for _ in range(2)]
    deadline = time.time() + 120
    while len(list(tmp_path.glob("gate.*"))) < 2 and time.time() < deadline and all(p.poll() is None for p in procs):
        time.sleep(0.05)
    gate.touch()
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert not any("s3cret" in out + err for out, err in outs)
    study = optuna.load_study(study_name=optuna.get_all_study_names(postgres)[0], storage=postgres)
    finished = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    # a round trains as one sweep in the process that drew it, so the other may only have waited: both end with
    # the same eight trials
    assert len(finished) >= 8 and outs[0][0] == outs[1][0] and "counts" in outs[0][0]
    assert not (tmp_path / "reports" / "search").exists()  # nothing went to SQLite


def test_wrong_credentials_and_a_missing_database_are_named(postgres):
    # a wrong password (in the query, holding an @) and a database that does not exist, on a live server
    wrong = postgres.replace("postgres:s3cret@", "postgres@") + "&password=wr%40ng"
    missing = postgres.replace("@/postgres?", "@/nodb?")
    for url, why in ((wrong, 'password authentication failed for user "postgres"'),
                     (missing, 'database "nodb" does not exist')):
        start = time.monotonic()
        with pytest.raises(RuntimeError) as e:
            search.open_study(url, "x")
        # the driver's words, at once, without the password
        assert why in str(e.value) and time.monotonic() - start < 5
        assert "s3cret" not in str(e.value) and "wr@ng" not in str(e.value) and "wr%40ng" not in str(e.value)
