"""The report end to end: notebooks through papermill on tiny data, assembly, summary, PDF."""

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import pytest

from assignment1.config import SETTINGS
from assignment1.experiments.store import RunStore
from assignment1.report import params, runner

from conftest import ROOT, TINY, report, run_env

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))  # the explorer and the report's sections
SECTIONS = [p for p in NOTEBOOKS if p.stem != "00_explore"]
HEADINGS = ["1 Checking the gradients", "2 Training and evaluation", "3 The learnt weights",
            "4 Bonus: improving the network", "5 Bonus: multiple binary cross-entropy",
            "6 Beyond the reference report: a hyperparameter search", "Provenance"]
SUBHEADINGS = ["Discussion", "(a) A bigger training set", "(b) Flip augmentation", "(c) Learning-rate decay",
               "The chosen model, class by class"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_are_committed_clean_with_typed_documented_parameters(path):
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") and not c.get("execution_count") for c in nb.cells if c.cell_type == "code")
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    statements = ast.parse(tagged[0].source).body  # a long literal may go on over lines
    declared = papermill.inspect_notebook(str(path))
    # papermill sees every statement, each a typed assignment, as the names they assign; each is a typed literal
    # with a comment
    assert all(isinstance(st, ast.AnnAssign) for st in statements)
    assert list(declared) == [st.target.id for st in statements]
    for name, info in declared.items():
        assert info["inferred_type_name"] in ("str", "int", "float", "bool", "list"), name
        assert info["help"], f"{name} has no comment"
    # what the package reads of the cell is what papermill reads
    assert params.declared(path.stem) == {name: ast.literal_eval(info["default"]) for name, info in declared.items()}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_run_settings_in_a_parameters_cell_default_as_the_run_configuration(path):
    # papermill needs literal defaults in the notebook; they stay those RunConfig declares
    declared = params.declared(path.stem)
    shared = {name: declared[name] for name in SETTINGS if name in declared}
    assert shared and shared == {name: SETTINGS[name].default for name in shared}


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_parameter_is_declared_once(path):
    # no cell but the parameters cell assigns a declared name, so the declaration is the only place it is set
    nb = nbformat.read(path, as_version=4)
    declared = set(papermill.inspect_notebook(str(path)))
    for cell in code_cells(nb):
        tree = ast.parse(cell.source)
        assigned = {t.id for node in ast.walk(tree) if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign))
                    for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
                    if isinstance(t, ast.Name)}
        assert not assigned & declared, (assigned & declared, cell.source)


def test_report_writes_every_section_table_and_figure(tiny_report):
    out, _, r = tiny_report
    assert {p.name for p in (out / "executed").glob("*.ipynb")} == {p.name for p in SECTIONS}
    html = (out / "report.html").read_text()
    for heading in HEADINGS + SUBHEADINGS:
        assert heading in html
    for caption in [*(f"Figure {i}:" for i in range(1, 9)), *(f"Table {i}:" for i in range(1, 8)),
                    "Gradient check.", "Search table:", "Significance of (a)", "Significance of (b)",
                    "Significance of (c)", "Significance:", "Significance of the choice:"]:
        assert caption in html
    # figures are embedded, code is hidden, and the table of contents links to the sections
    assert html.count('src="data:image/png;base64,') == 8  # Figures 1 to 8
    assert "globals()" not in html and "globals()" in (out / "executed" / "02_training.ipynb").read_text()
    assert 'href="#checking-the-gradients"' in html and 'href="#a-a-bigger-training-set"' in html
    # the closing provenance section names the data and its status
    assert "NOT the official CIFAR-10" in html
    for nb in SECTIONS:
        assert f"<strong>{nb.stem}</strong>: " in html  # the parameters each section's runs used
    # and the compute of the sections that train, from the stored runs
    assert all(f"<td>{nb.stem}</td>" in html for nb in SECTIONS[1:])


def test_clean_run_warns_of_nothing_and_leaves_no_kernel_sockets(tiny_report):
    out, env, r = tiny_report
    # nothing went wrong, so nothing is surfaced: no section warning, no kernel log line
    assert "warning in" not in r.stdout + r.stderr and "TqdmWarning" not in r.stdout + r.stderr
    clean(r)  # as every report of these tests
    # no kernel file was left beside the notebooks (nor in the report's sockets directory: tiny_report checks that)
    assert list((ROOT / "notebooks").glob("kernel*")) == []


def test_combined_notebook_drops_injected_cells_and_has_fresh_ids(tiny_report):
    out, _, _ = tiny_report
    nb = nbformat.read(out / "report.ipynb", as_version=4)
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    ids = [c["id"] for c in nb.cells]
    assert len(ids) == len(set(ids))
    executed = nbformat.read(out / "executed" / "02_training.ipynb", as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    assert not set(ids) & {c["id"] for c in executed.cells}


def test_summary_json_holds_every_table(tiny_report):
    out, _, _ = tiny_report
    summary = json.loads((out / "summary.json").read_text())
    table1 = summary["tables"]["02_training"]["table1"]
    assert len(table1) == 4
    assert [(r["lam"], r["eta"]) for r in table1] == [(0.0, 0.1), (0.0, 0.001), (0.1, 0.001), (1.0, 0.001)]
    for row in summary["tables"]["02_training"]["table1"]:
        for key in ("section", "lam", "eta", "loss", "flip", "val_size", "diverged"):
            assert key in row
        for metric in ("loss", "cost", "acc"):
            stat = row["test"][metric]
            assert stat["n"] == 2 and stat["std"] is not None and stat["mean"] is not None
    # significance of every bonus comparison: 4 + 4 + 1 in section 4, 1 in section 5, 1 in section 6
    assert len(summary["tables"]["04_bonus_improvements"]["significance"]) == 9
    for row in summary["tables"]["05_bonus_mbce"]["significance"]:
        assert len(row["mcnemar"]) == 2 and row["paired_t"]["n"] == 2 and 0 <= row["paired_t"]["p"] <= 1
    # the search: its trials counted, its table of validation results only; the chosen configuration: test
    # results over the seeds
    trials = summary["tables"]["06_search"]["search_trials"]
    assert trials["complete"] + trials["pruned"] == 3 and trials["failed"] == 0
    assert any("The search ran 3 trials" in text for text in markdown_outputs(out / "executed" / "06_search.ipynb"))
    search = summary["tables"]["06_search"]["search"]
    assert [r["rank"] for r in search] == list(range(1, trials["complete"] + 1))
    assert all("test" not in r for r in search)
    assert summary["tables"]["06_search"]["table6_chosen"][0]["test"]["acc"]["n"] == 2
    results = [r for r in summary["rows"] if "test" in r]
    for row in results:
        for metric in ("loss", "cost", "acc"):
            assert row["test"][metric]["n"] == 2
    sections = {r["section"] for r in summary["rows"]}
    assert sections == {"02_training", "04_bonus_improvements", "05_bonus_mbce", "06_search"}
    assert {r["loss"] for r in results} == {"ce", "mbce"}
    assert any(r["flip"] for r in results) and any(r["val_size"] == 20 for r in results)
    assert summary["tables"]["01_gradient_check"]["gradient_check"]["W"]["rel_err_norm"] < 1e-6
    assert summary["data"]["official"] is False
    assert summary["parameters"]["02_training"]["n_epochs"] == 3


def test_every_stored_run_trained_the_epochs_it_was_asked_for(tiny_report):
    # the runs report their progress after every epoch (a file the runner's bars read); it never ends a run
    out, _, _ = tiny_report
    store = RunStore(out.parent / "runs")
    runs = [store.load(p.stem) for p in store.directory.glob("*.npz")]
    assert len(runs) > 20
    for r in runs:
        assert r.history["epoch"] == list(range(1, r.config.n_epochs + 1)), r.config


def markdown_outputs(executed: Path) -> list[str]:
    """The text a reader sees in an executed notebook: its markdown outputs, in order."""
    nb = nbformat.read(executed, as_version=4)
    return [o["data"]["text/markdown"] for c in nb.cells if c.cell_type == "code" for o in c.outputs
            if "text/markdown" in o.get("data", {})]


def clean(r: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    """``r``, a report that must have ended well and printed no error or warning. A kernel stopped by SIGINT once
    printed its traceback 1 run in 4, so every report these tests run is checked for it."""
    assert r.returncode == 0, r.stdout + r.stderr
    for word in ("ERROR", "WARNING", "KeyboardInterrupt", "Traceback"):
        assert word not in r.stdout + r.stderr, r.stdout + r.stderr
    return r


def section_times(executed_dir: Path) -> dict[str, tuple[str, str]]:
    """When each executed section started and ended, as papermill recorded it (ISO times)."""
    meta = {p.stem: nbformat.read(p, as_version=4).metadata.papermill for p in executed_dir.glob("*.ipynb")}
    return {name: (m["start_time"], m["end_time"]) for name, m in meta.items()}


def test_two_sections_at_once_compute_what_one_at_a_time_does(tiny_report, tmp_path):
    # the first report ran its sections two at a time: some overlapped
    out, env, _ = tiny_report
    times = section_times(out / "executed")
    spans = sorted(times.values())
    assert len(spans) == len(SECTIONS) and any(b[0] < a[1] for a, b in zip(spans, spans[1:]))
    # the search and section 4 started first, before the sections that use their runs (runner.START_ORDER)
    assert max(times["06_search"][0], times["04_bonus_improvements"][0]) < \
        min(times[name][0] for name in ("01_gradient_check", "02_training", "03_weights", "05_bonus_mbce"))
    # one at a time, from an empty store: no overlap, and the same summary
    fresh = dict(env, A1_REPORTS_DIR=str(tmp_path / "reports"))
    clean(report(*TINY, "-p", "n_jobs", "1", "--no-pdf", env=fresh, timeout=900))
    spans = sorted(section_times(tmp_path / "reports" / "custom" / "executed").values())
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    summaries = [json.loads(p.read_text()) for p in (out / "summary.json", tmp_path / "reports/custom/summary.json")]
    for summary in summaries:  # where it ran is recorded, and differs; what it computed must not
        for used in summary["parameters"].values():
            used.pop("n_jobs", None)
    assert summaries[0] == summaries[1]


def test_a_rerun_trains_nothing_and_writes_the_same_text(tiny_report, tmp_path):
    # the whole report again, into another place: every run from the store, every sentence as the first time
    out, env, _ = tiny_report
    r = clean(report(*TINY, "--out", str(tmp_path / "again"), "--no-pdf", env=env))
    assert " trained now" in r.stdout and not [line for line in r.stdout.splitlines()
                                              if " trained now" in line and "(0 trained now" not in line]
    for name in (p.stem for p in SECTIONS):
        assert markdown_outputs(tmp_path / "again" / "executed" / f"{name}.ipynb") == \
            markdown_outputs(out / "executed" / f"{name}.ipynb"), name


def test_a_partial_rerun_trains_nothing_says_the_same_and_leaves_the_report_alone(tiny_report):
    out, env, first = tiny_report
    runs = {p: p.stat().st_mtime_ns for p in (out.parent / "runs").glob("*.npz")}
    before = {name: (out / name).read_bytes() for name in ("report.html", "summary.json")}
    r = clean(report(*TINY, "--sections", "02", "03", env=env))
    # every run came from the store, and the terminal (not the report) says so
    assert {p: p.stat().st_mtime_ns for p in (out.parent / "runs").glob("*.npz")} == runs
    assert "02_training" in r.stdout and f"8 runs (0 trained now, 8 reused from {out.parent / 'runs'})" in r.stdout
    # the first report trained each stored run once: in whichever section reached it first, with the runs of
    # the same batches another section would ask for (section 5's M-BCE runs: it trained none), or as a search trial
    trained = [int(n) for n in re.findall(r"\((\d+) trained now", first.stdout)]
    along = [int(n) for n in re.findall(r"; (\d+) runs of other sections trained with them", first.stdout)]
    trials = json.loads((out / "summary.json").read_text())["tables"]["06_search"]["search_trials"]
    assert sum(trained) + sum(along) + trials["complete"] + trials["pruned"] == len(runs) > trials["complete"] > 0
    assert re.search(r"^05_bonus_mbce: .*\(0 trained now", first.stdout, re.M) and sum(along) >= 2, first.stdout
    # and section 6's line counts the trials its search trained, which no run line does
    n_trials = trials["complete"] + trials["pruned"] + trials["failed"]
    assert re.search(rf"06_search: .*\); {n_trials} search trials trained now$", first.stdout, re.M), first.stdout
    # the partial report went to its own place and says what it is; the first report is untouched
    partial = out.parent / "partial-custom"
    assert {name: (out / name).read_bytes() for name in ("report.html", "summary.json")} == before
    html = (partial / "report.html").read_text()
    assert "Partial custom run, not the full report:</strong> sections 02, 03 only; overrides " in html
    assert 'n_epochs = 3' in html
    # the report describes the results, not the cache: the text of a cached rerun is that of the first run
    for name in ("02_training", "03_weights"):
        assert markdown_outputs(partial / "executed" / f"{name}.ipynb") == markdown_outputs(out / "executed" /
                                                                                            f"{name}.ipynb")


def test_a_quick_run_has_its_own_place_and_shows_the_values_it_used(tiny_report, tmp_path):
    # in a copy of the tiny report's place: the quick run adds runs to its store, which other tests read meanwhile
    shutil.copytree(tiny_report[0].parent, tmp_path / "reports")
    out, env = tmp_path / "reports" / "custom", dict(tiny_report[1], A1_REPORTS_DIR=str(tmp_path / "reports"))
    before = (out / "summary.json").read_bytes()
    clean(report(*TINY, "--quick", "-p", "quick_epochs", "2", "--no-pdf", env=env))
    quick = out.parent / "quick-custom"
    # its sections started in their own order: its search is short (runner.START_ORDER)
    times = section_times(quick / "executed")
    assert times["02_training"][0] < times["06_search"][0] and times["04_bonus_improvements"][0] < times["06_search"][0]
    html = (quick / "report.html").read_text()
    assert html.index("Quick custom run, not the full report:") < html.index("Contents")  # what a reader sees first
    assert "1 seed and at most 2 epochs per run" in html
    summary = json.loads((quick / "summary.json").read_text())
    # Provenance and summary.json show what the runs used (quick mode applied), not the values asked for
    used = summary["parameters"]["02_training"]
    assert used["n_epochs"] == 2 and used["seeds"] == [0]
    assert "n_epochs = <code>2</code>" in html and "seeds = <code>[0]</code>" in html
    # the reference's numbers stand beside ours as in the full report, with one seed no verdict
    glance = summary["reproduction"]
    assert glance["numbers"] == 39 and {n["verdict"] for n in glance["rows"]} == {"one seed: no spread"}
    assert "0 of 39 reference numbers reproduced; 0 differ, 39 with one seed: no spread." in html
    assert (out / "summary.json").read_bytes() == before


def test_kinds_of_run_and_where_they_go(tmp_path):
    declared = {name: params.declared(name) for name in params.sections()}
    everything = params.sections()
    assert runner.kinds_of(everything, {}, declared) == []
    # where the data is and how many processes train change no result
    neutral = {"data_dir": "/x", "n_jobs": 1, "quick": False, "n_epochs": 40}
    assert runner.kinds_of(everything, neutral, declared) == []
    assert runner.kinds_of(everything, {"n_epochs": 10}, declared) == ["custom"]
    assert runner.kinds_of(everything, {"quick": True}, declared) == ["quick"]
    assert runner.kinds_of(everything[1:3], {"quick": True, "n_epochs": 2}, declared) == ["partial", "quick", "custom"]
    # each combination has its own place
    assert runner.report_dir([], tmp_path) == tmp_path
    assert runner.report_dir(["quick"], tmp_path) == tmp_path / "quick"
    assert runner.report_dir(["partial", "quick"], tmp_path) == tmp_path / "partial-quick"
    assert runner.report_dir(["quick"], tmp_path, out=str(tmp_path / "mine")) == tmp_path / "mine"
    # and the first line says all that makes it not the full report
    used = {n: vars(params.resolve({**declared[n], "quick": True})) for n in everything[1:3]}
    line = runner.banner(["partial", "quick"], everything[1:3], {"quick": True}, declared, used)
    assert line.startswith("**Partial quick run, not the full report:** sections 02, 03 only; 1 seed and at most 3 ")


def test_unknown_or_bad_parameters_are_refused_before_anything_runs(tmp_path, tiny_env, capsys):
    # the data and reports directories are named, so that nothing appearing in them goes unseen
    places = {"reports_dir": str(tmp_path / "mine"), "data_dir": str(tmp_path / "my-data")}
    for overrides, message in [({"n_epoch": 3}, "unknown parameter n_epoch (did you mean n_epochs?): no section"),
                               ({"learning_rate": 0.1}, "unknown parameter learning_rate: no section"),
                               ({"n_epochs": "ten"}, "n_epochs must be an integer, got 'ten'"),
                               ({"settings": [[0, -0.1]]}, "settings[0] eta must be > 0")]:
        assert runner.run({**places, **overrides}) == 2
        assert message in capsys.readouterr().out
    # refused before the data was fetched and before any report directory was made
    assert not (tmp_path / "mine").exists() and not (tmp_path / "my-data").exists()


def test_command_line_overrides_are_what_papermill_makes_of_them(tmp_path):
    # the same options given to papermill itself, which writes what it made of them into a parameters cell
    cfg = tmp_path / "my.yaml"
    cfg.write_text("seeds: [3, 4]\nn_epochs: 7\ndata_dir: 2024-01-01\n")
    given = ["-f", str(cfg), "-p", "n_epochs", "10", "-p", "eta", "1e-3", "-p", "quick", "True", "-p", "lam", "None",
             "-p", "loss", "ce", "-r", "data_md5", "123", "-y", "settings: [[0, 0.1]]", "-y", "reports_dir: 2024-02-03"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("n_epochs = 1", metadata={"tags": ["parameters"]})],
                                  metadata={"kernelspec": {"name": "python3", "language": "python",
                                                           "display_name": "Python 3"}})
    nbformat.write(nb, tmp_path / "in.ipynb")
    r = subprocess.run([sys.executable, "-m", "papermill", str(tmp_path / "in.ipynb"), str(tmp_path / "out.ipynb"),
                        "--prepare-only", *given], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    injected = nbformat.read(tmp_path / "out.ipynb", as_version=4).cells[1].source
    papermills = {a.targets[0].id: ast.literal_eval(a.value) for a in ast.parse(injected).body}
    # the runner's overrides are papermill's, the dates read as text, with --quick on top
    _, overrides = runner.parse_args([*given, "--quick"])
    assert overrides == {**papermills, "quick": True}
    assert overrides["data_dir"] == "2024-01-01" and overrides["eta"] == 1e-3 and overrides["lam"] is None


def test_failing_section_keeps_previous_report_and_names_the_cell(tmp_path, tiny_env):
    # a copy of the project's notebooks in which section 2 fails after its setup
    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    for nb_path in SECTIONS:
        nb = nbformat.read(nb_path, as_version=4)
        if nb_path.stem == "02_training":
            nb.cells.insert(4, nbformat.v4.new_code_cell('raise RuntimeError("boom in section 2")'))
        nbformat.write(nb, root / "notebooks" / nb_path.name)
    out = tmp_path / "reports" / "partial-custom"
    out.mkdir(parents=True)
    (out / "report.html").write_text("previous report")
    r = subprocess.run([sys.executable, "-m", "assignment1.report", "--sections", "01", "02", "-p", "val_size", "50",
                        "-p", "n_batch", "10", "-p", "n_epochs", "1", "-y", "seeds: [0]", "-p", "n_samples", "2"],
                       capture_output=True, text=True, env=run_env(A1_ROOT=root), timeout=600)
    assert r.returncode == 1
    assert "section 02_training failed in cell" in r.stderr
    assert 'raise RuntimeError("boom in section 2")' in r.stderr and "RuntimeError: boom in section 2" in r.stderr
    assert (out / "report.html").read_text() == "previous report"
    assert "boom in section 2" in (out / "executed" / "02_training.ipynb").read_text()


def test_notebook_runs_under_papermill_from_any_directory(tiny_env, tmp_path):
    # papermill run directly, from an unrelated working directory, as a user would
    out = tmp_path / "out.ipynb"
    r = subprocess.run([sys.executable, "-m", "papermill", str(ROOT / "notebooks" / "03_weights.ipynb"), str(out),
                        "-p", "val_size", "50", "-p", "n_batch", "10", "-p", "quick", "True", "-p", "n_jobs", "1"],
                       cwd=tmp_path, capture_output=True, text=True, env=run_env(), timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Figure 2:" in out.read_text()


def test_section_kernels_keep_their_own_log_out_of_the_terminal(tmp_path):
    # jupyter_client interrupts a kernel before stopping it, and a kernel caught at the wrong moment logged
    # "KeyboardInterrupt caught in kernel" to the terminal (one section in six); a kernel over TCP logs a warning at
    # every start, every time: started with the runner's arguments, it logs neither
    code = """
import sys
from jupyter_client.manager import KernelManager
from assignment1.report.notebooks import KERNEL_ARGS

km = KernelManager(transport="tcp")
km.start_kernel(extra_arguments=KERNEL_ARGS, stdout=sys.stderr, stderr=sys.stderr)
client = km.blocking_client()
client.start_channels()
client.wait_for_ready(timeout=60)  # it has started and logged what it logs at its start
client.stop_channels()
km.interrupt_kernel()
km.shutdown_kernel()
"""
    # in a process of its own, whose stderr the kernel shares, as a section's kernel shares the runner's terminal
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=run_env(), timeout=120)
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_stopping_a_kernel_that_ends_meanwhile_is_quiet():
    # a failed section's kernel, which papermill stops on its own thread while the runner stops every kernel:
    # still running when the runner looks (poll() is None), its process group gone when the runner kills it
    from types import SimpleNamespace

    from assignment1.report import notebooks

    ended = subprocess.Popen(["true"], start_new_session=True)
    ended.wait()

    class Manager:  # what stop_kernels reads of a kernel manager
        provisioner = SimpleNamespace(process=SimpleNamespace(pid=ended.pid, poll=lambda: None))

    manager = Manager()
    notebooks._started.add(manager)
    try:
        notebooks.stop_kernels()  # raised ProcessLookupError, and the user saw it instead of the failed cell
    finally:
        notebooks._started.discard(manager)


def test_the_runner_starts_without_matplotlib_or_the_slow_iri_checks_and_still_validates_notebooks():
    # in a fresh process: importing the package changes nothing; the runner, started as python -m starts it,
    # leaves rfc3987_syntax (2.6 to 3.7 s of parser building) out, and matplotlib (0.3 s; it never draws)
    code = """
import runpy, sys
import assignment1.report
assert "rfc3987_syntax" not in sys.modules, "importing the package marked rfc3987_syntax"
sys.argv = ["python -m assignment1.report", "--help"]
try:
    runpy.run_module("assignment1.report", run_name="__main__")
except SystemExit:
    pass
assert sys.modules.get("rfc3987_syntax", 0) is None, "the runner imported rfc3987_syntax"
assert "matplotlib" not in sys.modules, "the runner imported matplotlib"
import nbformat
nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
nbformat.validate(nb)
nb.cells[0]["not_in_the_schema"] = 1
try:
    nbformat.validate(nb)
except nbformat.ValidationError:
    print("refused")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=run_env(), timeout=120)
    # a valid notebook passes and an invalid one is still refused
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "refused"


def test_a_section_failing_outside_its_cells_says_so_in_a_sentence(tmp_path):
    # a kernel that died, not a cell's error: the line says where it failed in words, then the error
    from assignment1.report import notebooks

    line = notebooks.failure("01_gradient_check", RuntimeError("Kernel died"), tmp_path / "01.ipynb")
    assert line.splitlines()[0] == ("section 01_gradient_check failed outside its cells' code (in its kernel or in "
                                    "papermill): RuntimeError: Kernel died")
