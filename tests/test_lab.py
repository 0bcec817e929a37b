"""The explorer in JupyterLab, in a real browser: run all cells, move a slider, press Train."""

import importlib.util
import os
import re

import nbformat
import pytest

from conftest import ROOT, run_env

# the tests' helper module, named for what it drives (not the jupyterlab package)
_spec = importlib.util.spec_from_file_location("lab_helper", ROOT / "tests" / "jupyterlab.py")
lab = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lab)


def need_browser_and_lab() -> None:
    missing = [what for what, ok in (("chromium", os.path.exists(lab.CHROMIUM)),
                                     ("the Python package playwright", importlib.util.find_spec("playwright")),
                                     ("the Python package jupyterlab", importlib.util.find_spec("jupyterlab")))
               if not ok]
    if missing:
        if os.environ.get("A1_REQUIRE_TOOLS"):
            pytest.fail(f"A1_REQUIRE_TOOLS is set but {', '.join(missing)} is missing")
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install chromium; pip install -e '.[browser,lab]')")


def tiny_notebook(tmp_path):
    """The explorer notebook with its parameters cell edited for the tests' tiny data."""
    nb = nbformat.read(ROOT / "notebooks" / "00_explore.ipynb", as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    edits = {"val_size": "50", "n_batch": "10", "n_epochs": "4"}
    cell.source = "\n".join(
        re.sub(r"= \S+", f"= {edits[name]}", line, count=1) if (name := line.split(":")[0]) in edits else line
        for line in cell.source.splitlines())
    path = tmp_path / "notebook" / "00_explore.ipynb"
    path.parent.mkdir()
    nbformat.write(nb, path)
    return path


def test_the_explorer_in_jupyterlab(tiny_env, tmp_path):
    need_browser_and_lab()
    workdir = tmp_path / "lab"
    workdir.mkdir()
    with lab.lab_server(tiny_notebook(tmp_path), workdir, run_env()) as url, lab.browser_page() as page:
        page.goto(url)
        try:
            lab.run_all_cells(page)
        finally:
            page.screenshot(path=str(tmp_path / "after-run-all.png"))  # to look at, if it did not finish
        # the controls are there, and the starting setting was trained once: one row in the table
        train = page.locator(".widget-button", has_text="Train")
        train.wait_for(timeout=60_000)
        runs = page.locator("table.a1-runs").first.locator("tr")
        assert runs.count() == 2
        # in a 1280-pixel window beside JupyterLab's file browser, and in a 1024-pixel one (where the second column
        # of controls goes below the first), no control reaches past the cell's output
        controls = page.locator(".widget-dropdown, .widget-toggle-buttons, .widget-slider, .widget-text, "
                                ".widget-checkbox, .widget-button, .widget-progress")
        for width in (1280, 1024):
            page.set_viewport_size({"width": width, "height": 1500})
            page.wait_for_timeout(500)  # JupyterLab lays the panel out again
            output = page.locator(".jp-OutputArea-output").filter(has=train).first.bounding_box()
            ends = [box["x"] + box["width"] for box in (c.bounding_box() for c in controls.all())]
            assert len(ends) >= 10 and max(ends) <= output["x"] + output["width"], width
        page.set_viewport_size({"width": 1280, "height": 1500})
        # move the epochs slider one step to the right with the keyboard, as a reader would
        slider = page.locator(".widget-slider", has_text="epochs")
        slider.locator(".noUi-handle").focus()
        page.keyboard.press("ArrowRight")
        page.keyboard.press("Tab")  # the slider reports its value when it lets go
        assert slider.locator(".widget-readout").inner_text().strip() == "5"
        train.click()
        # the new run appears in the table, with the curves and the templates drawn for it
        page.wait_for_function("document.querySelector('table.a1-runs').rows.length === 3", timeout=120_000)
        status = page.locator(".widget-html", has_text="final validation accuracy").first
        assert "5 epochs, trained" in status.inner_text()
        images = page.locator(".widget-image")
        assert images.count() == 2
        assert all(page.evaluate("img => img.complete && img.naturalWidth > 0", images.nth(i).element_handle())
                   for i in range(2))
        assert page.locator("table.a1-runs").first.locator("tr").nth(2).locator("td").nth(4).inner_text() == "5"
        # no cell shows an error
        assert not [t for t in lab.errors_shown(page) if "Error" in t or "Traceback" in t]
        page.locator(".widget-button", has_text="Train").scroll_into_view_if_needed()
        page.screenshot(path=str(tmp_path / "explorer.png"))
    assert (tmp_path / "explorer.png").stat().st_size > 10_000
