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
    for name in ("report.html", "summary.json", "quick/report.html"):
        (reports / name).parent.mkdir(parents=True, exist_ok=True)
        (reports / name).write_text("generated")
    return tmp_path


def test_make_clean_keeps_the_stored_runs_and_says_so(project):
    r = make("clean", f"PY={sys.executable}", cwd=project, A1_REPORTS_DIR=project / "reports")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (project / "reports").iterdir()) == ["runs"]
    assert len(list((project / "reports" / "runs").glob("*.npz"))) == 2
    assert "kept" in r.stdout and "2 stored runs, 4.0 min of training" in r.stdout and "make clean-runs" in r.stdout


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
