"""Report assembly: executed section notebooks -> one notebook, HTML, PDF and summary.json.

Cells keep their order; papermill's injected-parameters cells are dropped,
every cell gets a fresh id, stderr streams (warnings, progress bars) are left
out, and code is hidden unless asked for. A provenance section, generated from
what the runs recorded, closes the report; :mod:`.render` turns the whole into
HTML and PDF.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import uuid
from importlib import metadata
from pathlib import Path

import nbformat

from .. import fetch, files
from ..experiments import paths
from ..experiments.store import code_hash
from . import reproduction
from .render import render
from .section import RECORD
from .tables import code, markdown_table, text

TITLE = "DD2424 Assignment 1: a one-layer network on CIFAR-10"
#: The one resolution of every dependency that ``make lock`` writes; ``make setup`` installs from it.
LOCK_FILE = "requirements/all.txt"
PACKAGES = ("numpy", "matplotlib", "joblib", "threadpoolctl", "papermill", "nbconvert", "nbformat", "pypandoc-binary",
            "typst")


def combine(executed: list[Path], closing_markdown: str, opening_markdown: str = "") -> nbformat.NotebookNode:
    """One notebook from the executed sections and a closing section, titled :data:`TITLE`; ``opening_markdown``,
    if any, comes first (the reproduction at a glance, which gathers numbers of later sections)."""
    nbs = [nbformat.read(p, as_version=4) for p in executed]
    cells = [nbformat.v4.new_markdown_cell(opening_markdown)] if opening_markdown else []
    for nb in nbs:
        for cell in nb.cells:
            if "injected-parameters" in cell.metadata.get("tags", []):
                continue
            cell = nbformat.from_dict(cell)
            if cell.cell_type == "code":
                cell.outputs = [o for o in cell.outputs if not (o.output_type == "stream" and o.name == "stderr")
                                and "compute" not in o.get("metadata", {}).get("text/markdown", {}).get(RECORD, {})]
                cell.metadata.pop("papermill", None)
                cell.metadata.pop("execution", None)
            cells.append(cell)
    cells.append(nbformat.v4.new_markdown_cell(closing_markdown))
    out = nbformat.v4.new_notebook(cells=cells, metadata=dict(nbs[0].metadata))
    out.metadata.pop("papermill", None)
    out.metadata["title"] = TITLE
    for cell in out.cells:
        cell["id"] = uuid.uuid4().hex[:8]
    nbformat.validate(out)
    return out


def _git(*args) -> str:
    try:
        return subprocess.run(["git", *args], cwd=paths.ROOT, capture_output=True, text=True,
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
    lock = paths.ROOT / LOCK_FILE
    lock_hash = hashlib.sha256(lock.read_bytes()).hexdigest()[:16] if lock.exists() else "absent"
    return {"versions": versions, "commit": commit, "code_hash": code_hash()[:16], "lock_hash": lock_hash}


def provenance_markdown(provenance: dict, parameters: dict[str, dict], compute: dict[str, dict],
                        sw: dict) -> str:
    """The closing provenance section: the data, the software, the parameters the runs used, their compute.

    Every value in it (the data's source, a path in a parameter) is shown as text, never read as markup."""
    files = [[text(name), code(md5), "yes" if md5 == fetch.OFFICIAL_BATCH_MD5[name] else "no"]
             for name, md5 in provenance["files"].items()]
    lines = ["# Provenance", "", "## Data", "", text(fetch.describe(provenance)), "",
             markdown_table(["file", "md5", "official"], files), "", "## Software", "",
             f"Code: git commit {code(sw['commit'])}; result-defining code hash {code(sw['code_hash'])}. Versions as "
             f"locked in {code(LOCK_FILE)} (sha256 {code(sw['lock_hash'])}):", "",
             markdown_table(["package", "version"], [[text(k), text(v)] for k, v in sw["versions"].items()]), "",
             "## Parameters", "", "The values each section's runs used (quick mode applied, where it was on).", ""]
    for section, values in parameters.items():
        shown = (f"{text(k)} = {code(json.dumps(v, ensure_ascii=False))}" for k, v in values.items())
        lines += [f"**{text(section)}**: " + ", ".join(shown), ""]
    lines += ["## Compute", "", "Training runs each section used, and the time they took to train, as stored with "
              "the runs (a run shared by sections counts in each).", "",
              markdown_table(["section", "runs", "epochs", "training time (s)"], [
                  [text(k), c["runs"], f"{c['epochs']:,}", f"{c['seconds']:.0f}"] for k, c in compute.items()])]
    return "\n".join(lines)


def summary(provenance: dict, parameters: dict[str, dict], tables: dict[str, dict]) -> dict:
    """Every table of the report, machine-readable (``tables``: by section, by name). Deterministic: no
    times, no paths that vary; ``rows`` lists every row of every table, section by section, tables by name;
    ``reproduction`` every reference number beside ours (:func:`.reproduction.summary`)."""
    rows = [row for section in tables.values() for _, content in sorted(section.items())
            if isinstance(content, list) for row in content]
    data = {k: provenance[k] for k in ("source", "archive_md5", "official", "files")}
    return {"data": data, "parameters": parameters, "tables": tables, "rows": rows,
            "reproduction": reproduction.summary(reproduction.glance(tables))}


def opening_markdown(provenance: dict, parameters: dict[str, dict], tables: dict[str, dict]) -> str:
    """The reproduction at a glance (:func:`.reproduction.glance_markdown`) of the sections' tables; empty when
    none has a reference number."""
    init_stds = {p["init_std"] for p in parameters.values() if "init_std" in p}
    return reproduction.glance_markdown(reproduction.glance(tables), provenance["official"],
                                        init_stds.pop() if len(init_stds) == 1 else None)


def write_report(executed: list[Path], out_dir: Path, closing_markdown: str, summary_obj: dict, banner: str = "",
                 show_code: bool = False, pdf: bool = True, paper: str = "a4", opening_markdown: str = "") -> dict:
    """Write report.ipynb, report.html, report.pdf (unless ``pdf`` is False) and summary.json into ``out_dir``.

    Returns the paths written, and ``notes`` (lines for the terminal) about the PDF. Without ``pdf``, a PDF
    already there is kept when the results (summary.json) are unchanged, and removed otherwise. The files are
    written together (:func:`assignment1.files.write_together`): a write that fails, on a full disk, raises its
    :class:`OSError` and leaves the previous report as it was.
    """
    nb = combine(executed, closing_markdown, opening_markdown)
    html_text, pdf_bytes = render(nb, TITLE, banner, show_code=show_code, pdf=pdf, paper=paper)
    summary_text = json.dumps(summary_obj, indent=2, sort_keys=True) + "\n"
    old_pdf, old_summary = out_dir / "report.pdf", out_dir / "summary.json"
    same_results = old_summary.exists() and old_summary.read_text() == summary_text
    contents = {"report.ipynb": nbformat.writes(nb), "report.html": html_text, "summary.json": summary_text}
    if pdf_bytes is not None:
        contents["report.pdf"] = pdf_bytes
    files.write_together({out_dir / name: payload for name, payload in contents.items()})
    written: dict = {"notes": [], "html": out_dir / "report.html"}
    if pdf_bytes is not None:
        written["pdf"] = old_pdf
    elif old_pdf.exists() and same_results:
        written["notes"].append(f"PDF skipped (--no-pdf); {old_pdf} shows the same results and is kept")
    else:
        if old_pdf.exists():
            old_pdf.unlink()
            written["notes"].append(f"removed {old_pdf}: it showed other results")
        written["notes"].append("PDF skipped (--no-pdf)")
    written["summary"] = old_summary
    return written
