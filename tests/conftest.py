import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from cifar_format import write_archive  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
STAND_IN = ROOT.parent / "shared" / "data" / "cifar-10-python.tar.gz"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No test sees the user's data source or directories."""
    for var in ("CIFAR10_URL", "CIFAR10_MD5", "A1_DATA_DIR", "A1_REPORTS_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("A1_REPORTS_DIR", str(tmp_path / "reports"))


@pytest.fixture
def tiny_archive(tmp_path):
    """A tiny CIFAR-format archive: ``(path, md5)``."""
    path = tmp_path / "src" / "cifar-10-python.tar.gz"
    path.parent.mkdir()
    return path, write_archive(path)


@pytest.fixture
def tiny_env(tiny_archive, tmp_path, monkeypatch):
    """Environment pointing the package at the tiny archive and a fresh data directory."""
    path, md5 = tiny_archive
    env = {"CIFAR10_URL": str(path), "CIFAR10_MD5": md5, "A1_DATA_DIR": str(tmp_path / "data")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def stand_in():
    """The shared stand-in archive ``(path, md5)``; skips when ../shared is absent."""
    md5_file = STAND_IN.with_name(STAND_IN.name + ".md5")
    if not (STAND_IN.is_file() and md5_file.is_file()):
        pytest.skip("the shared stand-in archive is not on this machine")
    return STAND_IN, md5_file.read_text().split()[0]


def run_env(**extra) -> dict:
    """os.environ plus ``extra``, for subprocesses."""
    env = dict(os.environ)
    env.update({k: str(v) for k, v in extra.items()})
    return env
