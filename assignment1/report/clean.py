"""``make clean``: delete the reports, but keep what took training to make and every report being written.

Kept in the reports directory: ``runs/`` (the run store) and ``search/`` (the search's study: its
trials are not in the run store), and the files of any report that a live report runner holds by
its ``.report.lock`` (:func:`assignment1.files.claim`). The full report writes in the reports
directory itself, every other report in a folder of its own there (``quick/``, ``partial-quick/``,
or one named by ``--out``). Before deleting a report, cleaning claims its lock, so that no runner
starts writing to it meanwhile.
"""

from __future__ import annotations

import itertools
import shutil
import sys
from pathlib import Path

from .. import files
from ..experiments import paths

#: What cleaning never deletes: the run store and the search's study.
KEPT = ("runs", "search")
# Declared here, which plain python3 can import (make clean before make setup); the runner takes them from here.
#: The file a report's runner holds (:func:`assignment1.files.claim`) while it writes into that report's place.
LOCK = ".report.lock"
#: What makes a run not the full report, in the order they name its folder (``reports/partial-quick/``).
KINDS = ("partial", "quick", "custom")
#: The folders the other reports write in, named by their kinds.
REPORT_FOLDERS = frozenset("-".join(kinds) for n in range(1, len(KINDS) + 1)
                           for kinds in itertools.combinations(KINDS, n))


def _report_folder(entry: Path) -> bool:
    """Whether ``entry`` is a folder another report writes in: named by its kinds, or with a report's lock."""
    return entry.is_dir() and not entry.is_symlink() and (entry.name in REPORT_FOLDERS or (entry / LOCK).exists())


def _held(what: str, lock: Path) -> str:
    pid = files.holder(lock)  # None if its runner ended since
    return (f"kept {what}: a report{f' (process {pid})' if pid else ''} is writing to it; "
            "make clean again once it has ended")


def clean(reports: Path) -> tuple[list[str], list[str]]:
    """Delete the reports in ``reports``; return the names removed and the lines saying what was kept."""
    removed, said = [], []
    if not reports.is_dir():
        return removed, said
    full_lock = reports / LOCK
    full_held = not files.claim(full_lock)
    try:
        for entry in sorted(reports.iterdir()):
            if entry.name in KEPT or entry == full_lock:
                continue
            if _report_folder(entry):  # deleted only while cleaning holds its lock
                if not files.claim(entry / LOCK):
                    said.append(_held(str(entry), entry / LOCK))
                    continue
            elif full_held:
                continue  # the full report's own file or folder, which its runner is writing
            removed.append(entry.name + "/" * entry.is_dir())
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
    finally:
        if not full_held:
            files.release(full_lock)
    if full_held:
        said.insert(0, _held(f"the full report in {reports}", full_lock))
    if (reports / "search").exists():
        said.append(f"kept {reports / 'search'}: the search's study (delete it yourself to search anew)")
    return removed, said


def describe_runs(directory: Path) -> str:
    """What the run store at ``directory`` holds, in one line (its size needs numpy: without it, its files)."""
    try:
        from ..experiments.store import describe
    except ImportError:  # `make clean` before `make setup`: plain python3
        return f"kept {directory} (make clean-runs removes it)"
    return f"kept {describe(directory)} (make clean-runs removes them)"


def main() -> int:
    """``python -m assignment1.report.clean``: clean ``$A1_REPORTS_DIR`` (default ``reports/``), saying what it kept."""
    reports = paths.reports_dir()
    try:
        removed, said = clean(reports)
    except OSError as e:
        print(f"error: cannot clean {reports} ({e.strerror or e}): {e.filename or reports}", file=sys.stderr)
        return 1
    if removed:
        print(f"removed from {reports}: {', '.join(removed)}")
    for line in said:
        print(line)
    if (reports / "runs").is_dir():
        print(describe_runs(reports / "runs"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
