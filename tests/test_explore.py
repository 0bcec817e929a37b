"""The live explorer (notebooks/00_explore.ipynb): its controls and buttons, pressed as a reader would."""

import json
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from assignment1.experiments.explore import Explorer
from assignment1.report import params
from assignment1.report.section import start

from conftest import ROOT, run_env


@pytest.fixture
def explorer(tiny_env):
    values = {**params.declared("00_explore"), "val_size": 50, "n_batch": 10, "n_epochs": 4}
    p, section = start("00_explore", values)
    return Explorer(p, section.experiments)


def test_train_button_trains_the_setting_of_the_controls(explorer):
    # move the controls, press Train
    explorer.eta.value, explorer.n_epochs.value, explorer.seed.value = 0.01, 6, 3
    explorer.regularize.value = False
    explorer.train_button.click()
    explorer.wait(timeout=120)
    f = explorer.finished[-1]
    c = f.result.config
    assert (c.lam, c.eta, c.n_epochs, c.seed, c.n_batch) == (0.0, 0.01, 6, 3, 10)
    assert f.result.history["epoch"] == [1, 2, 3, 4, 5, 6] and not f.cached and not f.stopped
    # the curves and templates were drawn, the progress bar is full, and the buttons are ready again
    assert explorer.curves.value[:4] == b"\x89PNG" and explorer.templates.value[:4] == b"\x89PNG"
    assert explorer.progress.value == 6 and not explorer.train_button.disabled and explorer.stop_button.disabled
    assert "final validation accuracy" in explorer.status.value


def test_a_batch_larger_than_the_training_set_is_refused_where_the_reader_looks(explorer):
    explorer.n_batch.value = 1000  # the tiny training set has 150 images
    explorer.train_button.click()
    assert not explorer.training and explorer.finished == []
    assert "n_batch must be an integer from 1 to 150, got 1000" in explorer.status.value


def test_each_run_adds_a_row_and_a_repeated_setting_comes_from_the_store(explorer):
    explorer.train()
    trained = explorer.experiments.store.path(explorer.experiments.key(explorer.config()))
    assert trained.exists() and len(explorer.rows()) == 1
    mtime = trained.stat().st_mtime_ns
    again = explorer.train()  # the same controls: the run store has it
    assert again.cached and trained.stat().st_mtime_ns == mtime
    assert np.array_equal(again.result.W, explorer.finished[0].result.W)
    rows = explorer.rows()
    assert len(rows) == 2 and rows[1][""] == "store" and ">store</td>" in explorer.table.value
    # test accuracy only when asked for, with a word on why
    assert "test accuracy" not in rows[0] and "test accuracy" not in explorer.table.value
    explorer.show_test.value = True
    assert "test accuracy" in explorer.rows()[0] and "not for choosing it" in explorer.table.value


def test_stop_ends_the_run_within_an_epoch_and_keeps_what_it_learnt(explorer):
    explorer.n_epochs.value = 100
    seen = []
    original = explorer._on_epoch

    def on_epoch(history):
        seen.append(len(history["epoch"]))
        if len(history["epoch"]) == 2:
            explorer.stop_button.click()  # pressed while the run goes on
        return original(history)

    explorer._on_epoch = on_epoch
    explorer.train_button.click()
    assert explorer.training and explorer.train_button.disabled  # a second Train does nothing meanwhile
    explorer.train_button.click()
    explorer.wait(timeout=120)
    f = explorer.finished[-1]
    # it ends after the epoch under way
    kept = f.result.history["epoch"]
    assert len(explorer.finished) == 1 and f.stopped and seen == kept == [1, 2]
    assert np.isfinite(f.result.W).all()
    # a stopped run is kept in the table, but not in the store: it is not the 100-epoch run asked for
    experiments = explorer.experiments
    assert not experiments.store.path(experiments.key(f.result.config)).exists()
    assert explorer.rows()[0][""] == "stopped"


def test_the_interface_stays_live_while_a_run_trains(explorer):
    explorer.n_epochs.value = 30
    explorer.train_button.click()
    # the run trains in its own thread: this one is free, and sees the progress move
    t0 = time.perf_counter()
    while explorer.progress.value < 2 and time.perf_counter() - t0 < 60:
        time.sleep(0.01)
    assert explorer.training and explorer.progress.value >= 2
    explorer.stop()
    explorer.wait(timeout=60)
    assert not explorer.training


def test_the_notebook_runs_headless_and_trains_the_starting_setting_once(tiny_env, tmp_path):
    out = tmp_path / "explore.ipynb"
    r = subprocess.run([sys.executable, "-m", "papermill", str(ROOT / "notebooks" / "00_explore.ipynb"), str(out),
                        "-p", "val_size", "50", "-p", "n_batch", "10", "-p", "n_epochs", "3"],
                       cwd=tmp_path, capture_output=True, text=True, env=run_env(), timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    nb = json.loads(out.read_text())
    html = ["".join(o["data"]["text/html"]) for c in nb["cells"] for o in c.get("outputs", [])
            if "text/html" in o.get("data", {})]
    # the static picture: the status line, the curves and templates, the table with its one run
    assert len(html) == 1 and "3 epochs, trained" in html[0] and html[0].count("data:image/png;base64,") == 2
    assert html[0].count("<tr>") == 2
    assert not [o for c in nb["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"]


def test_the_curves_grow_while_a_run_trains_and_the_run_trains_every_epoch(explorer, monkeypatch):
    # each epoch waits until the live curves show it: however busy the machine, drawing keeps pace with the run
    from assignment1.experiments import explore

    monkeypatch.setattr(explore, "FRAME_INTERVAL", 0.01)
    shown_epochs, shown = [], threading.Event()
    draw, on_epoch = explorer._draw_curves, explorer._on_epoch

    def draw_and_note():
        draw()
        if explorer.training and explorer._live is not None:
            shown_epochs.append(len(explorer._live["epoch"]))
            shown.set()

    def on_epoch_until_shown(history):
        shown.clear()
        on_epoch(history)
        shown.wait(timeout=10)

    monkeypatch.setattr(explorer, "_draw_curves", draw_and_note)
    monkeypatch.setattr(explorer, "_on_epoch", on_epoch_until_shown)
    explorer.n_epochs.value = 8
    f = explorer.train()
    # the run trained every epoch, and the curves were drawn while it trained, one epoch longer each time
    assert f.result.history["epoch"] == list(range(1, 9)) and not f.stopped
    assert shown_epochs == list(range(1, 9))


def test_the_table_of_runs_shows_every_value_as_text(explorer, monkeypatch):
    # a row whose header and cell look like markup, as the table of runs draws it
    from html.parser import HTMLParser

    monkeypatch.setattr(explorer, "rows", lambda: [{"<b>head</b>": "a & <i>b</i>", "run": 1}])
    explorer._draw_table()

    class Cells(HTMLParser):  # the browser's view: the text of each cell, and the tags it sees
        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)

        def handle_data(self, data):
            self.cells.append(data) if self.tags[-1] in ("th", "td") else None

    parser = Cells(convert_charrefs=True)
    parser.cells, parser.tags = [], []
    parser.feed(explorer.table.value)
    # each value comes back as the text it was, and no tag of it reached the page
    assert parser.cells == ["<b>head</b>", "run", "a & <i>b</i>", "1"]
    assert {"i"} & set(parser.tags) == set() and parser.tags.count("b") == 1  # the one <b>: the table's title
