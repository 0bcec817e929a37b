"""Where things are: paths from the project root, and the environment overrides, in one place.

Everything above the assignment's own modules asks this module where things
live, so notebooks run under papermill (or JupyterLab) from any working
directory. The assignment's modules take their paths as arguments.

Environment variables (an empty value counts as unset):

- ``A1_DATA_DIR``: where the CIFAR-10 archive is extracted (default ``data/``);
- ``CIFAR10_URL``: the archive's source: http(s), ``file://`` or a local path;
- ``CIFAR10_MD5``: its expected md5 (default: the official one);
- ``A1_REPORTS_DIR``: where runs and reports go (default ``reports/``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

#: The project root: the directory holding ``pyproject.toml`` (the package is
#: installed editable, so this is the checkout).
ROOT = Path(os.environ.get("A1_ROOT") or Path(__file__).resolve().parents[2])
NOTEBOOKS_DIR = ROOT / "notebooks"


def _chosen(override, variable: str) -> str:
    return str(override or "").strip() or os.environ.get(variable, "").strip()


def data_dir(override: str | os.PathLike | None = None) -> Path:
    """The data directory: ``override``, else ``$A1_DATA_DIR``, else ``ROOT/data``."""
    chosen = _chosen(override, "A1_DATA_DIR")
    return Path(chosen).expanduser().resolve() if chosen else ROOT / "data"


def reports_dir(override: str | os.PathLike | None = None) -> Path:
    """The reports directory: ``override``, else ``$A1_REPORTS_DIR``, else ``ROOT/reports``."""
    chosen = _chosen(override, "A1_REPORTS_DIR")
    return Path(chosen).expanduser().resolve() if chosen else ROOT / "reports"


def runs_dir(reports_override: str | os.PathLike | None = None) -> Path:
    """The run store: ``runs/`` in the reports directory, shared by every kind of run."""
    return reports_dir(reports_override) / "runs"


def data_source(url: str | None = None, md5: str | None = None) -> tuple[str | None, str | None]:
    """The archive source and md5 named by argument or environment; None where neither names one.

    :func:`assignment1.fetch.prepare` then reuses the data directory's recorded
    source, or the official archive.
    """
    return _chosen(url, "CIFAR10_URL") or None, _chosen(md5, "CIFAR10_MD5").lower() or None


class PlaceError(ValueError):
    """A place the user named that cannot be used, said in one line with what to do."""


def usable_dir(path: Path, what: str, fix: str) -> Path:
    """``path``, made if missing, once it is known to be a directory this process can write in.

    Raises :class:`PlaceError` naming ``what`` and ``path``, and saying ``fix``, if it is not.
    """
    if path.exists() and not path.is_dir():
        raise PlaceError(f"{what} {path} is a file, not a directory: {fix}")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise PlaceError(f"cannot write in {what} {path} ({e.strerror or e}): {fix}") from None
    return path
