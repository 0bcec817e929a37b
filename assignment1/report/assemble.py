"""Report assembly: executed section notebooks -> one notebook, HTML, PDF and summary.json.

Cells keep their order; papermill's injected-parameters cells are dropped,
every cell gets a fresh id, stderr streams (warnings, progress bars) are left
out, and code is hidden unless asked for. A provenance section, generated from
what was measured during the run, closes the report.
"""

from __future__ import annotations

import html
import json
import platform
import re
import shutil
import subprocess
import uuid
from importlib import metadata
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter, PDFExporter

from .. import config, fetch
from ..files import write_atomic
from .store import code_hash

TITLE = "DD2424 Assignment 1: a one-layer network on CIFAR-10"
PACKAGES = ("numpy", "matplotlib", "joblib", "threadpoolctl", "papermill", "nbconvert", "nbformat")
PDF_HINT = ("PDF skipped: nbconvert's LaTeX route needs xelatex and pandoc "
            "(Debian/Ubuntu: sudo apt-get install texlive-xetex texlive-fonts-recommended "
            "texlive-plain-generic pandoc), then rerun make report")


def _headings(cells) -> list[tuple[int, str]]:
    """``(level, text)`` of every first- and second-level heading in the markdown cells, in order."""
    out = []
    for c in cells:
        if c.cell_type == "markdown":
            out += [(len(hashes), text) for hashes, text in re.findall(r"^(##?) (.+)$", c.source, flags=re.M)]
    return out


def _toc(headings: list[tuple[int, str]]) -> str:
    """Nested HTML lists: second-level headings under their section."""
    items = []
    for level, text in headings:
        link = f'<a href="#{_anchor(text)}">{html.escape(text)}</a>'
        if level == 2 and items:
            items[-1][1].append(link)
        else:
            items.append((link, []))
    return "<ul>" + "".join(f"<li>{link}" + (f"<ul>{''.join(f'<li>{s}</li>' for s in subs)}</ul>" if subs else "")
                            + "</li>" for link, subs in items) + "</ul>"


def _anchor(heading: str) -> str:
    # nbconvert's HTML anchors are the heading text with spaces as hyphens
    return html.escape(heading.strip().replace(" ", "-"), quote=True)


def _raw(source: str, mimetype: str):
    cell = nbformat.v4.new_raw_cell(source)
    cell.metadata["raw_mimetype"] = mimetype
    return cell


def combine(executed: list[Path], closing_markdown: str) -> nbformat.NotebookNode:
    """One notebook from the executed sections, with a title, a table of contents and a closing section."""
    nbs = [nbformat.read(p, as_version=4) for p in executed]
    cells = []
    for nb in nbs:
        for cell in nb.cells:
            if "injected-parameters" in cell.metadata.get("tags", []):
                continue
            cell = nbformat.from_dict(cell)
            if cell.cell_type == "code":
                cell.outputs = [o for o in cell.outputs if not (o.output_type == "stream" and o.name == "stderr")]
                cell.metadata.pop("papermill", None)
                cell.metadata.pop("execution", None)
            cells.append(cell)
    cells.append(nbformat.v4.new_markdown_cell(closing_markdown))
    toc = _toc(_headings(cells))
    # The title and contents differ by format: HTML gets them as markup; LaTeX takes the title
    # from the metadata and builds its own contents (headings carry their numbers already).
    front = [
        _raw(f"<h1>{html.escape(TITLE)}</h1><nav><h2>Contents</h2>{toc}</nav>", "text/html"),
        _raw("\\setcounter{secnumdepth}{0}\n\\tableofcontents\n\\clearpage", "text/latex"),
    ]
    out = nbformat.v4.new_notebook(cells=front + cells, metadata=dict(nbs[0].metadata))
    out.metadata.pop("papermill", None)
    out.metadata["title"] = TITLE
    for cell in out.cells:
        cell["id"] = uuid.uuid4().hex[:8]
    nbformat.validate(out)
    return out


def _exporter_options(show_code: bool) -> dict:
    return {"exclude_input": not show_code, "exclude_input_prompt": True, "exclude_output_prompt": True}


def to_html(nb: nbformat.NotebookNode, show_code: bool = False) -> str:
    """Standalone HTML with figures embedded as data URIs."""
    body, _ = HTMLExporter(**_exporter_options(show_code)).from_notebook_node(nb)
    return body


def pdf_available() -> bool:
    return shutil.which("xelatex") is not None and shutil.which("pandoc") is not None


def to_pdf(nb: nbformat.NotebookNode, show_code: bool = False) -> bytes:
    """PDF through nbconvert's LaTeX exporter (xelatex)."""
    latex = PDFExporter(raw_mimetypes=["text/latex"], **_exporter_options(show_code))
    pdf, _ = latex.from_notebook_node(nb, resources={"metadata": {"name": "report"}})
    return pdf


def _git(*args) -> str:
    try:
        return subprocess.run(["git", *args], cwd=config.ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def software() -> dict:
    """Versions of Python and the packages the report rests on, and the code's identity."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    commit = _git("rev-parse", "HEAD") or "unknown (not a git checkout)"
    if _git("status", "--porcelain", "--untracked-files=no"):
        commit += " with uncommitted changes"
    return {"versions": versions, "commit": commit, "code_hash": code_hash()[:16]}


def _fmt_value(v) -> str:
    return f"`{json.dumps(v)}`"


def provenance_markdown(provenance: dict, parameters: dict[str, dict], timings: dict[str, float],
                        sw: dict) -> str:
    """The closing provenance section, from what the run measured."""
    lines = ["# Provenance", "", "## Data", "", fetch.describe(provenance), "",
             "| file | md5 | official |", "|---|---|---|"]
    for name, md5 in provenance["files"].items():
        lines.append(f"| {name} | `{md5}` | {'yes' if md5 == fetch.OFFICIAL_BATCH_MD5[name] else 'no'} |")
    lines += ["", "## Software", "", f"Code: git commit `{sw['commit']}`; result-defining code hash "
              f"`{sw['code_hash']}`.", "", "| package | version |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in sw["versions"].items()]
    lines += ["", "## Parameters", "", "Values each section ran with (defaults, and overrides where given).", ""]
    for section, values in parameters.items():
        lines += [f"**{section}**: " + ", ".join(f"{k} = {_fmt_value(v)}" for k, v in values.items()), ""]
    total = sum(timings.values())
    lines += ["## Wall time", "", "| section | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in timings.items()]
    lines += [f"| total | {total:.1f} |"]
    return "\n".join(lines)


def summary(provenance: dict, parameters: dict[str, dict], tables_dir: Path, sections: list[str]) -> dict:
    """Every table of the report, machine-readable. Deterministic: no times, no paths that vary."""
    tables: dict[str, dict] = {}
    rows: list[dict] = []
    for section in sections:
        tables[section] = {}
        for path in sorted((tables_dir / section).glob("*.json")):
            content = json.loads(path.read_text())
            tables[section][path.stem] = content
            if isinstance(content, list):
                rows += content
    data = {k: provenance[k] for k in ("source", "archive_md5", "official", "files")}
    return {"data": data, "parameters": parameters, "tables": tables, "rows": rows}


def write_report(executed: list[Path], out_dir: Path, closing_markdown: str, summary_obj: dict,
                 show_code: bool = False, pdf: bool = True) -> dict[str, Path | str]:
    """Write report.ipynb, report.html, report.pdf (when possible) and summary.json into ``out_dir``.

    Returns the paths written, and ``pdf_note`` when the PDF was skipped.
    """
    nb = combine(executed, closing_markdown)
    written: dict[str, Path | str] = {}
    html_text = to_html(nb, show_code)
    pdf_bytes = None
    if pdf and pdf_available():
        pdf_bytes = to_pdf(nb, show_code)
    write_atomic(out_dir / "report.ipynb", nbformat.writes(nb))
    write_atomic(out_dir / "report.html", html_text)
    written["html"] = out_dir / "report.html"
    if pdf_bytes is not None:
        write_atomic(out_dir / "report.pdf", pdf_bytes)
        written["pdf"] = out_dir / "report.pdf"
    else:
        (out_dir / "report.pdf").unlink(missing_ok=True)  # a stale PDF would not match the HTML
        written["pdf_note"] = PDF_HINT if pdf else "PDF skipped (--no-pdf)"
    write_atomic(out_dir / "summary.json", json.dumps(summary_obj, indent=2, sort_keys=True) + "\n")
    written["summary"] = out_dir / "summary.json"
    return written
