"""What a user does around the report: cleaning, JupyterLab, reading progress in a log."""

import io
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from assignment1.config import RunConfig
from assignment1.experiments.progress import RunBars
from assignment1.experiments.store import RunResult, RunStore

from conftest import ROOT, run_env


def make(*args, cwd, **env):
    return subprocess.run(["make", "--no-print-directory", "-C", str(cwd), *args], capture_output=True, text=True,
                          env=run_env(**env), timeout=120)


@pytest.fixture
def project(tmp_path):
    """A directory with the project's Makefile and a reports directory holding two stored runs and a report."""
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    reports = tmp_path / "reports"
    store = RunStore(reports / "runs")
    for seed, seconds in ((0, 90.0), (1, 150.0)):
        cfg = RunConfig(lam=0.1, eta=0.001, seed=seed)
        store.save(f"run{seed}", RunResult(cfg, np.zeros((10, 3072)), np.zeros(10), {"epoch": [1]}, False, None,
                                           None, None, seconds))
    for name in ("report.html", "summary.json", "executed/01_gradient_check.ipynb", "quick/report.html",
                 "partial-quick/report.html", "search/search.db"):
        (reports / name).parent.mkdir(parents=True, exist_ok=True)
        (reports / name).write_text("generated")
    return tmp_path


def test_make_clean_keeps_the_stored_runs_and_the_search_and_says_so(project):
    r = make("clean", f"PY={sys.executable}", cwd=project, A1_REPORTS_DIR=project / "reports")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (project / "reports").iterdir()) == ["runs", "search"]
    assert len(list((project / "reports" / "runs").glob("*.npz"))) == 2
    assert (project / "reports" / "search" / "search.db").read_text() == "generated"
    assert "kept" in r.stdout and "2 stored runs, 4.0 min of training" in r.stdout and "make clean-runs" in r.stdout
    assert f"kept {project / 'reports' / 'search'}: the search's study" in r.stdout


@pytest.fixture
def live_runner():
    """Holds a report's lock as a live report runner does (assignment1.files.claim); returns its process id."""
    holders = []

    def hold(lock):
        holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from assignment1 import files; "
                                   "files.claim(sys.argv[1]); print(flush=True); time.sleep(120)", str(lock)],
                                  stdout=subprocess.PIPE, env=run_env())
        holder.stdout.readline()  # it holds the lock
        holders.append(holder)
        return holder.pid

    yield hold
    for holder in holders:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("held", ["quick", "."], ids=["a quick report", "the full report"])
def test_make_clean_deletes_nothing_of_a_report_a_live_runner_holds(project, live_runner, held):
    # the runner's lock, held by a process that is alive
    reports = project / "reports"
    live_process = live_runner(reports / held / ".report.lock")
    before = {p: p.read_bytes() for p in reports.rglob("*") if p.is_file()}
    r = make("clean", f"PY={sys.executable}", cwd=project, A1_REPORTS_DIR=reports)
    assert r.returncode == 0, r.stderr
    # the held report is whole, lock included, and said so in one line naming its runner
    kept = {p: data for p, data in before.items() if p.parent == reports / held
            or (held == "." and p.parent == reports / "executed")}
    assert kept and {p: p.read_bytes() for p in kept} == kept
    said = [line for line in r.stdout.splitlines() if f"process {live_process}" in line]
    assert len(said) == 1 and "is writing to it" in said[0]
    # the other reports are gone; the runs and the study stay
    others = {"quick", "partial-quick"} - {held}
    assert not any((reports / name).exists() for name in others)
    assert (reports / "search" / "search.db").exists() and len(list((reports / "runs").glob("*.npz"))) == 2


def test_make_clean_takes_over_the_lock_of_a_runner_that_died(project):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (project / "reports" / "quick" / ".report.lock").write_text(dead.stdout.strip())
    r = make("clean", f"PY={sys.executable}", cwd=project, A1_REPORTS_DIR=project / "reports")
    assert r.returncode == 0, r.stderr
    assert not (project / "reports" / "quick").exists() and "is writing" not in r.stdout


def test_make_clean_runs_says_what_it_throws_away(project):
    r = make("clean-runs", f"PY={sys.executable}", cwd=project, A1_REPORTS_DIR=project / "reports")
    assert r.returncode == 0, r.stderr
    assert not (project / "reports" / "runs").exists()
    assert "removed" in r.stdout and "2 stored runs, 4.0 min of training" in r.stdout


def test_make_lab_works_as_root_and_passes_lab_args(tmp_path):
    # a stand-in venv whose `jupyter` prints its arguments: make runs every line of the recipe for real
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    jupyter = venv / "bin" / "jupyter"
    jupyter.write_text('#!/bin/sh\necho "jupyter called with: $*"\n')
    jupyter.chmod(0o755)
    (venv / ".installed-dev,lab").touch()  # newer than pyproject.toml: setup has nothing to do
    r = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "lab", f"VENV={venv}",
                        "LAB_ARGS=--no-browser --port 8899"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    called = [line for line in r.stdout.splitlines() if line.startswith("jupyter called with:")]
    as_root = ["--allow-root"] if os.geteuid() == 0 else []
    assert called == [" ".join(["jupyter called with: lab notebooks/00_explore.ipynb", *as_root,
                                "--no-browser --port 8899"])]
    assert "JupyterLab prints its address below" in r.stdout
    assert ("running as root: adding --allow-root" in r.stdout) == (os.geteuid() == 0)


@pytest.mark.parametrize("edit, message", [("n_epochs: int = 0", "n_epochs must be at least 1, got 0"),
                                           ("engine: str = 'slow'", "engine must be one of 'fast', 'plain'")])
def test_a_bad_value_typed_into_the_parameters_cell_is_one_clear_line(tiny_env, edit, message):
    # as in JupyterLab: the reader edits the parameters cell and runs the notebook top to bottom
    nb = nbformat.read(ROOT / "notebooks" / "02_training.ipynb", as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    name = edit.split(":")[0]
    cell.source = "\n".join(edit if line.startswith(f"{name}:") else line for line in cell.source.splitlines())
    client = NotebookClient(nb, timeout=300, resources={"metadata": {"path": str(ROOT / "notebooks")}})
    with pytest.raises(CellExecutionError):
        client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    # one error, shown as one line instead of a traceback, and nothing trained
    assert len(errors) == 1
    assert len(errors[0]["traceback"]) == 1 and errors[0]["traceback"][0].startswith(f"ParameterError: {message}")
    assert not (Path(os.environ["A1_REPORTS_DIR"]) / "runs").exists()


def markdown_outputs(nb, after: str, before: str | None = None) -> str:
    """The text of the markdown cells and shown markdown between the heading ``after`` and ``before`` (or the end)."""
    start = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and c.source.startswith(after))
    end = next((i for i, c in enumerate(nb.cells) if before and c.source.startswith(before)), len(nb.cells))
    texts = [c.source if c.cell_type == "markdown" else o.get("data", {}).get("text/markdown", "")
             for c in nb.cells[start:end] for o in (c.get("outputs", []) if c.cell_type == "code" else [c])]
    return " ".join(" ".join(texts).split())


def test_a_quick_section_describes_the_decay_runs_it_trained(tiny_env, tmp_path):
    # section 4 in quick mode, as the runner executes it (tiny data): (c)'s decay is moved into 6 epochs
    import papermill

    from assignment1.report.section import records

    out = tmp_path / "04.ipynb"
    papermill.execute_notebook(str(ROOT / "notebooks" / "04_bonus_improvements.ipynb"), str(out),
                               parameters={"quick": True, "val_size": 50, "big_val_size": 20, "n_batch": 10},
                               cwd=str(ROOT / "notebooks"), progress_bar=False)
    # the decayed run that Table 4 shows: the reference's milestones 11, 50, 90 of 100 epochs, moved to 6 epochs
    decay = next(row for row in records(out)[0]["table4_decay"] if row["milestones"])
    assert (decay["eta"], decay["milestones"], decay["decay_factor"], decay["n_epochs"]) == (0.01, [1, 3, 5], 0.1, 6)
    # the text says that schedule, and the reference's 100 epochs only as the reference's
    text = markdown_outputs(nbformat.read(out, as_version=4), "## (c)")
    reference = ("0.01 for the first 11 epochs, then 0.001, multiplied by 0.1 again at epochs 50 and 90, "
                 "over 100 epochs")
    assert ("Here the rate is 0.01 for the first 1 epoch, then 0.001, multiplied by 0.1 again at epochs 3 and 5, "
            "over 6 epochs, with $\\lambda = 0.1$; the constant rate is 0.001.") in text
    assert f"The reference report's (its code's `lr_scheduler`) are {reference} (quick mode" in text
    assert "At the end of its 6 epochs the decayed run" in text and "the reference report's run of 100 epochs" in text
    assert "100 epochs" not in text.replace(reference, "").replace("run of 100 epochs", "")
    # one seed: its figure and its accuracy are of one run, not a mean with a band
    assert "(Table 4): one run, seed 0." in text and "(one run, seed 0), against" in text
    assert "mean over" not in text and "band" not in text


def test_run_progress_in_a_log_is_one_line_per_finished_run(tmp_path):
    log = io.StringIO()  # not a terminal
    with RunBars(tmp_path, interval=60, stream=log) as bars:  # polled by hand here
        (tmp_path / "a.txt").write_text("3 40 lam=0.1, eta=0.001, seed 0")
        (tmp_path / "b.txt").write_text("39 40 lam=0.1, eta=0.001, seed 1")
        bars.poll()
        (tmp_path / "a.txt").unlink()
        bars.poll()
        assert log.getvalue() == "  run lam=0.1, eta=0.001, seed 0: finished (40 epochs)\n"
        (tmp_path / "b.txt").unlink()
    assert log.getvalue().count("finished") == 2 and "\r" not in log.getvalue()


def test_the_progress_of_a_run_names_what_sets_it_apart(tmp_path):
    # section 4's run on a smaller validation set against section 2's run of the same setting and seed
    from assignment1.experiments.progress import ProgressFile

    labels = []
    for cfg in (RunConfig(lam=0, eta=0.001, n_epochs=3), RunConfig(lam=0, eta=0.001, n_epochs=3, val_size=1000,
                                                                    evaluate_train=False)):
        ProgressFile(str(tmp_path), "run", cfg)({"epoch": [1]})
        labels.append((tmp_path / "run.txt").read_text())
    assert labels == ["1 3 lam=0, eta=0.001, seed 0",
                      "1 3 lam=0, eta=0.001, val_size=1000, evaluate_train=False, seed 0"]


def test_every_package_directory_is_declared_so_installing_warns_of_nothing():
    # setuptools prints a 40-line "Package would be ignored" box on `make setup` for an importable
    # directory (templates/ has no .py, but counts) that pyproject.toml does not list
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {
        ".".join(d.relative_to(ROOT).parts)
        for d in [ROOT / "assignment1", *(ROOT / "assignment1").rglob("*")]
        if d.is_dir() and d.name != "__pycache__" and any(f.is_file() for f in d.iterdir())
    }
    assert on_disk == set(config["packages"])
    # and the report's templates travel with a non-editable install
    templates = ROOT / "assignment1" / "report" / "templates"
    patterns = config["package-data"]["assignment1.report.templates"]
    assert {f.name for f in templates.iterdir()} == {f.name for p in patterns for f in templates.glob(p)}


def test_the_readme_is_a_front_door_whose_links_lead_somewhere():
    import re

    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    assert "make setup" in readme and "make test" in readme and "make report" in readme
    # every relative link of the README and of docs/ names a file that exists
    pages = [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    links = [(page.parent / target) for page in pages
             for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text())]
    assert len(links) > 10
    assert [link for link in links if not link.exists()] == []


def test_what_the_readme_tells_papermill_to_write_is_ignored_by_git():
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    # `papermill INPUT OUTPUT ...`: the word two after the command is the notebook it writes
    commands = [line.split() for line in (ROOT / "README.md").read_text().splitlines()]
    written = [words[i + 2] for words in commands for i, word in enumerate(words) if word.endswith("bin/papermill")]
    assert written
    r = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "--no-index", *written], capture_output=True, text=True)
    assert r.stdout.split() == written
