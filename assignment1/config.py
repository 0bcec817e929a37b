"""Paths and environment overrides, in one place.

Everything else asks this module where things live, so notebooks run under
papermill (or JupyterLab) from any working directory.

Environment variables:

- ``A1_DATA_DIR``: where the CIFAR-10 archive is extracted (default ``data/``
  under the project root);
- ``CIFAR10_URL``: the archive's source: http(s), ``file://`` or a local path;
- ``CIFAR10_MD5``: its expected md5 (default: the official one);
- ``A1_REPORTS_DIR``: where runs, executed notebooks and reports go (default
  ``reports/`` under the project root);
- ``A1_OUTPUT_DIR``: set by the report runner for the sections it runs: where
  this run's tables go (a quick or partial run has its own, beside the full report's).
"""

from __future__ import annotations

import os
from pathlib import Path

#: The project root: the directory holding ``pyproject.toml`` (the package is
#: installed editable, so this is the checkout).
ROOT = Path(os.environ.get("A1_ROOT", Path(__file__).resolve().parent.parent))
NOTEBOOKS_DIR = ROOT / "notebooks"

OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
OFFICIAL_MD5 = "c58f30108f718f92721af3b95e74349a"


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser().resolve() if value else default


def data_dir(override: str | os.PathLike | None = None) -> Path:
    """The data directory: ``override``, else ``$A1_DATA_DIR``, else ``ROOT/data``."""
    if override not in (None, ""):
        return Path(override).expanduser().resolve()
    return _env_path("A1_DATA_DIR", ROOT / "data")


def reports_dir(override: str | os.PathLike | None = None) -> Path:
    """The reports directory: ``override``, else ``$A1_REPORTS_DIR``, else ``ROOT/reports``."""
    if override not in (None, ""):
        return Path(override).expanduser().resolve()
    return _env_path("A1_REPORTS_DIR", ROOT / "reports")


def runs_dir(reports_override: str | os.PathLike | None = None) -> Path:
    """The run store: ``runs/`` in the reports directory, shared by every kind of run."""
    return reports_dir(reports_override) / "runs"


def output_dir(reports_override: str | os.PathLike | None = None) -> Path:
    """Where a section records its tables: ``$A1_OUTPUT_DIR`` (set by the report runner), else the reports directory."""
    return _env_path("A1_OUTPUT_DIR", reports_dir(reports_override))


def data_source(url: str | None = None, md5: str | None = None) -> tuple[str, str]:
    """The archive source and its expected md5, from arguments, environment or defaults.

    An empty string counts as unset, so notebooks can default parameters to ``""``.
    """
    url = url or os.environ.get("CIFAR10_URL", "").strip() or OFFICIAL_URL
    md5 = md5 or os.environ.get("CIFAR10_MD5", "").strip() or OFFICIAL_MD5
    return url, md5.lower()


def source_is_explicit(url: str | None = None, md5: str | None = None) -> bool:
    """Whether an archive source or checksum was named by argument or environment."""
    return bool(url or md5 or os.environ.get("CIFAR10_URL", "").strip()
                or os.environ.get("CIFAR10_MD5", "").strip())
