"""The report as a reader sees it: the HTML in a real browser with no network, the PDF as pages.

These tests use tools outside Python: Debian's ``chromium`` (driven by Playwright) and
``poppler-utils`` (pdftotext, pdftoppm, pdfimages). Without them they skip, unless
``A1_REQUIRE_TOOLS`` is set (as CI sets it), when they fail.
"""

import importlib.util
import json
import os
import re
import shutil
import subprocess

import matplotlib
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image
from test_report import HEADINGS, SUBHEADINGS

from assignment1 import plots
from assignment1.experiments import stats

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def need(*commands: str, module: str | None = None) -> None:
    missing = [c for c in commands if shutil.which(c) is None]
    if module and importlib.util.find_spec(module) is None:
        missing.append(f"the Python package {module}")
    if missing:
        if os.environ.get("A1_REQUIRE_TOOLS"):
            pytest.fail(f"A1_REQUIRE_TOOLS is set but {', '.join(missing)} is missing")
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install chromium poppler-utils; "
                    "pip install -e '.[browser]')")


def run(*args) -> str:
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


def test_the_html_in_a_browser_with_no_network(tiny_report, tmp_path):
    need("chromium", module="playwright")
    from playwright.sync_api import sync_playwright

    out, _, _ = tiny_report
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_context(offline=True, viewport={"width": 1100, "height": 1400}).new_page()
            requests = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto((out / "report.html").as_uri())
            page.wait_for_load_state("load")
            # the file asks for nothing outside itself
            assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
            # every figure is decoded: eight images, each with pixels
            images = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
            assert len(images) == 8 and all(done and width > 0 for done, width in images)
            # every formula is laid out, and no TeX shows as text
            sizes = page.evaluate("Array.from(document.querySelectorAll('math')).map(m => {"
                                  "const r = m.getBoundingClientRect(); return [r.width, r.height]})")
            assert len(sizes) > 20 and all(w > 0 and h > 0 for w, h in sizes)
            text = page.evaluate("document.body.innerText")
            assert not [t for t in ("$", "\\lambda", "\\eta", "\\frac", "\\pm", "\\mathcal") if t in text]
            assert "±" in text and "λ" in text
            # the reader sees the title, every heading, and a table of contents whose links lead somewhere
            for heading in ["DD2424 Assignment 1: a one-layer network on CIFAR-10", *HEADINGS, *SUBHEADINGS]:
                assert heading in text
            links = page.evaluate("Array.from(document.querySelectorAll('nav a')).map(a => "
                                  "[a.textContent, !!document.getElementById(decodeURIComponent(a.hash.slice(1)))])")
            assert len(links) >= len(HEADINGS) + len(SUBHEADINGS) and all(ok for _, ok in links), links
            assert text.index("Custom run, not the full report") < text.index("Contents")
            page.screenshot(path=str(tmp_path / "report-top.png"))
            page.locator("figure").first.scroll_into_view_if_needed()
            page.screenshot(path=str(tmp_path / "report-figure-1.png"))
        finally:
            browser.close()
    assert Image.open(tmp_path / "report-top.png").size == (1100, 1400)


def test_the_pdf_as_pages(tiny_report, tmp_path):
    need("pdftotext", "pdftoppm", "pdfimages", "pdfinfo")
    out, _, _ = tiny_report
    pdf = str(out / "report.pdf")
    info = run("pdfinfo", pdf)
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))
    assert 6 <= pages <= 20
    assert re.search(r"Title:\s+DD2424 Assignment 1: a one-layer network on CIFAR-10", info)
    assert re.search(r"Page size:\s+595.\d+ x 841.\d+ pts \(A4\)", info)
    text = run("pdftotext", "-layout", pdf, "-")
    for needed in ["Contents", *HEADINGS, *SUBHEADINGS, "Table 1:", "Figure 1:", "Figure 8:"]:
        assert needed in text, needed
    assert not [t for t in ("$", "\\lambda", "\\frac", "\\pm") if t in text]
    # the contents give page numbers: "2 Training and evaluation ..... 3"
    assert re.search(r"2 Training and evaluation[ .\u2060]+\d+", text)  # typst joins the number with U+2060
    # figures are sharp enough to print: 200 pixels per inch or more
    listing = run("pdfimages", "-list", pdf).splitlines()[2:]
    ppi = [min(int(row.split()[12]), int(row.split()[13])) for row in listing]
    assert len(ppi) >= 8 and min(ppi) >= 200, ppi
    # in reading order each figure lies in its own section: none rises above its section's heading
    body = text[text.index("Contents"):]
    starts = [body.rindex(h) for h in HEADINGS]  # the last occurrence: the heading itself, not its contents line
    section_of = {n: sum(start < body.index(f"Figure {n}:") for start in starts) for n in range(1, 9)}
    assert section_of == {1: 2, 2: 3, 3: 4, 4: 5, 5: 5, 6: 6, 7: 6, 8: 6}, section_of
    # each figure caption is on a page that holds an image
    with_images = {int(row.split()[0]) for row in listing}
    for page in range(1, pages + 1):
        if re.search(r"Figure \d+:", run("pdftotext", "-f", str(page), "-l", str(page), pdf, "-")):
            assert page in with_images, f"a figure caption on page {page}, whose figure is elsewhere"
    # no page but the first and the last ends before half its height (a figure that did not fit leaves a gap)
    run("pdftoppm", "-png", "-r", "40", pdf, str(tmp_path / "page"))
    for i, path in enumerate(sorted(tmp_path.glob("page-*.png")), start=1):
        ink = np.asarray(Image.open(path).convert("L")) < 200
        body = ink[: int(0.9 * ink.shape[0])]  # the page number sits below
        lowest = np.flatnonzero(body.any(axis=1)).max() / ink.shape[0]
        if 1 < i < pages:
            assert lowest > 0.5, f"page {i} ends at {lowest:.0%} of its height"


FIGURES = ["history", "history_schedule", "weights", "histograms", "curves", "confusion", "grid", "search"]


def figure(name: str) -> matplotlib.figure.Figure:
    """One of the report's figures, drawn from made-up runs as the notebooks draw it."""
    rng = np.random.default_rng(0)
    history = {k: list(rng.random(5)) for k in ("train_loss", "val_loss", "train_cost", "val_cost", "train_acc",
                                                  "val_acc")}
    run = type("Run", (), {"history": history})
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    y = rng.integers(0, 10, 200)
    return {
        "history": lambda: plots.history_figure([[run(), run()]] * 4, ["$\\lambda=0.1, \\eta=0.001$"] * 4),
        "history_schedule": lambda: plots.history_figure(  # section 4's decay, its schedule in the row title
            [[run(), run()]] * 2, ["$\\eta$ = 0.01, x0.1 at epochs 11, 50, 90", "$\\eta$ = 0.001 constant"]),
        "weights": lambda: plots.weights_figure([rng.normal(size=(10, 3072))] * 4, ["$\\lambda=0.1, \\eta=0.001$"] * 4,
                                                names),
        "histograms": lambda: plots.p_true_histograms({"a": (y, rng.random(200)), "b": (y, rng.random(200))}, y),
        "curves": lambda: plots.curves_figure({"a": [run()], "b": [run()]}),
        "confusion": lambda: plots.confusion_figure(stats.confusion_matrix(y, rng.integers(0, 10, 200)), names),
        "grid": lambda: plots.image_grid(rng.integers(0, 255, (24, 32, 32, 3), dtype=np.uint8),
                                         ["automobile\n(true: truck)"] * 24),
        "search": lambda: plots.search_figure(
            [(i, "pruned" if i % 3 else "complete", 0.3 + 0.01 * i) for i in range(24)],
            [(i, "complete", list(zip(range(1, 101), rng.random(100)))) for i in range(24)],
            {"eta": 0.5, "lam": 0.2, "schedule": 0.1, "n_epochs": 0.1, "n_batch": 0.05, "average": 0.03, "flip": 0.02}),
    }[name]()


@pytest.mark.parametrize("name", FIGURES)
def test_figures_print_at_their_own_size_with_readable_labels(name):
    # every figure fits the text width of the PDF, so it is never shrunk, and no text in it is under 7 pt
    fig = figure(name)
    canvas = FigureCanvasAgg(fig)  # as saving a PNG does
    canvas.draw()
    assert fig.get_figwidth() <= plots.MAX_WIDTH + 1e-9
    sizes = [t.get_fontsize() for t in fig.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text()]
    assert sizes and min(sizes) >= plots.MIN_FONT
    # and nothing is drawn outside the figure: every label fits
    drawn = fig.get_tightbbox(canvas.get_renderer())
    assert drawn.x0 >= -0.01 and drawn.y0 >= -0.01, drawn
    assert drawn.x1 <= fig.get_figwidth() + 0.01 and drawn.y1 <= fig.get_figheight() + 0.01, drawn


@pytest.mark.parametrize("name", FIGURES)
def test_no_title_runs_into_other_text(name):
    # as drawn, no panel or row title overlaps another title, a tick label or an axis label
    fig = figure(name)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    titles = [ax.title for ax in fig.axes] + [row._suptitle for row in fig.subfigs if row._suptitle]
    labels = [t for ax in fig.axes if ax.axison for t in (ax.xaxis.label, ax.yaxis.label)]
    for ax in (ax for ax in fig.axes if ax.axison):  # the tick labels drawn: those within the axes' limits
        (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
        labels += [t for t in ax.get_xticklabels() if x0 <= t.get_position()[0] <= x1]
        labels += [t for t in ax.get_yticklabels() if y0 <= t.get_position()[1] <= y1]
    boxes = {t: t.get_window_extent(canvas.get_renderer()) for t in titles + labels if t.get_visible() and t.get_text()}
    clashes = [(a.get_text(), b.get_text()) for a in titles if a in boxes for b in boxes
               if b is not a and boxes[a].overlaps(boxes[b])]
    assert not clashes


def test_the_reproduction_at_a_glance_as_chromium_shows_it(tiny_report):
    need("chromium", module="playwright")
    from playwright.sync_api import sync_playwright

    out, _, _ = tiny_report
    expected = json.loads((out / "summary.json").read_text())["reproduction"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_context(offline=True).new_page()
            page.goto((out / "report.html").as_uri())
            # the first table after the glance's heading, cell by cell as shown, and the text a reader sees
            rows = page.evaluate("""() => {
                const h = Array.from(document.querySelectorAll('h1')).find(e => e.textContent.includes('Reproduction'));
                let e = h; while (e && e.tagName !== 'TABLE') e = e.nextElementSibling;
                return Array.from(e.querySelectorAll('tbody tr')).map(r => Array.from(r.cells).map(c => c.innerText));
            }""")
            text = page.evaluate("document.body.innerText")
        finally:
            browser.close()
    # the glance comes before section 1, and counts what summary.json counts
    assert text.rindex("Reproduction at a glance") < text.rindex("1 Checking the gradients")  # headings, not contents
    assert f"{expected['reproduced']} of {expected['numbers']} reference numbers reproduced" in text
    # one row per reference number, each with its table, setting, reference and verdict as summary.json has them
    names = {"loss": "loss", "cost": "cost", "acc": "accuracy", "val_acc": "final validation accuracy"}
    assert [[r[0].replace("\xa0", " "), r[1], r[2], r[4], r[7]] for r in rows] == [  # "Table 1" does not break
        [n["table"], n["setting"], names[n["metric"]], f"{n['reference']:.{n['decimals']}f}", n["verdict"]]
        for n in expected["rows"]]
    assert len(rows) == 39  # Tables 1, 2 and 3 give 12 numbers each, Table 5 two, Table 4 its decayed run's one
