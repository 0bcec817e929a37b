"""A value a user gives is text wherever it lands in the report, never markup: HTML, Markdown, Typst or math.

The reference is what a reader gets: the page Chromium shows and the PDF's text (see ``test_rendering.py`` for the
tools and how they skip), and, for the Markdown helpers alone, what pandoc itself reads back.
"""

import json
import subprocess
import sys

import pypandoc
import pytest
from test_rendering import CHROMIUM, need, run

from assignment1.report import tables

from cifar_format import make_batches, write_archive
from conftest import run_env, sockets_dir

# The data directory: a code span's backtick, an image with a handler, a script, TeX math; then an entity,
# quotes and dashes (pandoc's smart typography), emphasis and a link
HOSTILE = "`<img src=x onerror=alert(2)>`<script>alert(1)</script>$\\lambda$ &amp; 'q' -- *e* [l](x)"


@pytest.fixture(scope="session")
def hostile_report(tmp_path_factory):
    """A report of section 01 on tiny data whose archive lies in the directory :data:`HOSTILE`, named with
    ``-p data_url``: ``(its output directory, the archive's path as given)``."""
    tmp = tmp_path_factory.mktemp("hostile")
    archive = tmp / "inj" / HOSTILE / "cifar-10-python.tar.gz"
    archive.parent.mkdir(parents=True)
    md5 = write_archive(archive, make_batches(n_per_batch=30))
    with sockets_dir() as sockets:
        env = run_env(A1_DATA_DIR=tmp / "data", A1_REPORTS_DIR=tmp / "reports", TMPDIR=sockets)
        r = subprocess.run([sys.executable, "-m", "assignment1.report", "--sections", "01", "-p", "val_size", "50",
                            "-p", "n_samples", "2", "-p", "data_url", str(archive), "-p", "data_md5", md5],
                           capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return tmp / "reports" / "partial-custom", str(archive)


def test_a_hostile_path_shows_as_given_and_runs_nothing_in_the_browser(hostile_report):
    need("chromium", module="playwright")
    from playwright.sync_api import sync_playwright

    out, source = hostile_report
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        try:
            page = browser.new_context(offline=True).new_page()
            dialogs = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto((out / "report.html").as_uri())
            page.wait_for_load_state("load")
            text = page.evaluate("document.body.innerText")
            # the DOM holds no script and no event handler attribute anywhere, and nothing ran
            assert page.evaluate("document.querySelectorAll('script').length") == 0
            handlers = page.evaluate("Array.from(document.querySelectorAll('*')).flatMap(e => "
                                     "Array.from(e.attributes).map(a => a.name)).filter(n => n.startsWith('on'))")
            assert handlers == [] and dialogs == []
        finally:
            browser.close()
    # the reader sees the path exactly as given: in the data's sentence, and (JSON-quoted) among the parameters
    assert f"Data from {source} (archive md5 " in text, text
    assert f"data_url = {json.dumps(source, ensure_ascii=False)}," in text


def test_a_hostile_path_shows_as_given_in_the_pdf(hostile_report):
    need("pdftotext")
    out, source = hostile_report
    # -raw: pdftotext keeps a hyphen that ends a line (without it, cifar-10-<break>python reads cifar-10python)
    text = run("pdftotext", "-raw", str(out / "report.pdf"), "-")
    # lines break where Typst broke them (in the path too, hyphenating a word there, which pdftotext gives as a soft
    # hyphen, U+00AD): compared without white space and soft hyphens. Where it breaks depends on the path's length
    assert "".join(f"Data from {source} (archive md5".split()) in "".join(text.replace("\u00ad", "").split()), text


VALUES = [HOSTILE, "1. a", "# b", "    c", "- d", "x\n\ny", "\\", "a\\", "`", "``a`", "a|b", "e\u2028f", "É’ «»",
          "@c ^s^ ~t~ ~~d~~ <!-- c --> {.x} :smile: <http://x> \\(x\\) \\[y\\] $$z$$"]


def test_text_and_code_are_read_back_by_pandoc_as_the_value():
    # each value as a paragraph's text, as inline code and as a table cell (tables.cell), through pandoc's own
    # Markdown reader
    markdown = "\n\n".join(f"Path: {tables.text(v)}.\n\n{tables.code(v)}\n\n"
                           + tables.markdown_table(["h"], [[tables.cell(v)]]) for v in VALUES)
    ast = json.loads(subprocess.run([pypandoc.get_pandoc_path(), "--from", "markdown", "--to", "json"],
                                    input=markdown, capture_output=True, text=True, check=True).stdout)

    def shown(inlines):  # the text of inlines that are text, spaces and code alone: anything else is markup
        kinds = {"Str": lambda c: c, "Space": lambda c: " ", "SoftBreak": lambda c: " ", "Code": lambda c: c[1]}
        return "".join(kinds[i["t"]](i.get("c")) for i in inlines)

    assert len(ast["blocks"]) == 3 * len(VALUES)
    for value, (paragraph, inline_code, table) in zip(VALUES, zip(*[iter(ast["blocks"])] * 3)):
        cell = table["c"][4][0][3][0][1][0][4][0]
        # each reads back as the value, its line breaks as spaces (a paragraph or a row would end there), its runs
        # of white space as one (as HTML and Typst show them)
        expected = " ".join(value.split())
        assert [b["t"] for b in (paragraph, inline_code, cell)] == ["Para", "Para", "Plain"], value
        assert shown(paragraph["c"]) == f"Path: {expected}.", value
        assert shown(cell["c"]) == " ".join(shown(inline_code["c"]).split()) == expected, value


def test_printed_text_is_one_code_block_whatever_backticks_it_holds():
    # a section's printed lines, holding fences of their own and markup, through the report's Markdown and pandoc
    import nbformat

    from assignment1.report import render

    printed = "a ``` fence\n````\n<script>alert(1)</script> $x$ *e*"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[
        nbformat.v4.new_output("stream", name="stdout", text=printed + "\n")])])
    (kind, markdown), = render._blocks(nb, show_code=False)
    ast = json.loads(subprocess.run([pypandoc.get_pandoc_path(), "--from", "markdown", "--to", "json"],
                                    input=markdown, capture_output=True, text=True, check=True).stdout)
    # one code block showing exactly the printed text
    assert [b["t"] for b in ast["blocks"]] == ["CodeBlock"]
    assert ast["blocks"][0]["c"][1] == printed


def test_class_names_in_figures_are_text_not_tex():
    # a class name from a user's archive that matplotlib would typeset as math, in each figure that shows names
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from assignment1 import plots

    name = "$\\lambda$ cat"
    figures = [plots.image_grid(np.zeros((1, 32, 32, 3), np.uint8), [name]),
               plots.weights_figure([np.zeros((1, 3072))], ["W"], [name]),
               plots.confusion_figure(np.ones((1, 1), int), [name])]
    for fig in figures:
        FigureCanvasAgg(fig).draw()
        title = next(t for ax in fig.axes for t in (ax.title, *ax.get_xticklabels()) if t.get_text() == name)
        # the reference: the same string drawn as plain text in the same font, beside it on the same figure
        plain = fig.text(0, 0, name, fontproperties=title.get_fontproperties(), rotation=title.get_rotation(),
                         parse_math=False)
        renderer = fig.canvas.get_renderer()
        assert title.get_window_extent(renderer).width == pytest.approx(plain.get_window_extent(renderer).width)
