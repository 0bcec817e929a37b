import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from assignment1.fetch import OFFICIAL_MD5  # noqa: E402

from cifar_format import make_batches, write_archive  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
STAND_IN = ROOT.parent / "shared" / "data" / "cifar-10-python.tar.gz"
# read before any test clears them: a user may point the tests at the stand-in archive from elsewhere
USER_SOURCE = (os.environ.get("CIFAR10_URL", "").strip(), os.environ.get("CIFAR10_MD5", "").strip())


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
    """The stand-in archive ``(path, md5)``: ``$CIFAR10_URL`` and ``$CIFAR10_MD5`` if they name a local file,
    else ../shared/data; skips when neither is there."""
    url, md5 = USER_SOURCE
    local = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path)) if url.startswith("file:") else Path(url)
    if url and md5 and md5.lower() != OFFICIAL_MD5 and local.is_file():  # the official archive is no stand-in
        return local, md5
    md5_file = STAND_IN.with_name(STAND_IN.name + ".md5")
    if not (STAND_IN.is_file() and md5_file.is_file()):
        pytest.skip(f"no stand-in archive: {STAND_IN} is absent and CIFAR10_URL/CIFAR10_MD5 do not name a local one")
    return STAND_IN, md5_file.read_text().split()[0]


# Every section on tiny data, small enough to run in a minute (a custom run: its parameters are not the defaults)
TINY = ["-p", "val_size", "50", "-p", "big_val_size", "20", "-p", "n_batch", "10", "-p", "n_epochs", "3",
        "-p", "decay_epochs", "4", "-y", "decay_milestones: [2, 3]", "-y", "seeds: [0, 1]", "-p", "n_samples", "3",
        "-p", "search_trials", "3", "-y", "search_epochs: [3]", "-y", "search_batches: [10, 20]",
        "-p", "final_val_size", "20"]


@pytest.fixture(scope="session")
def tiny_report(tmp_path_factory):
    """One report run on tiny data: ``(its output directory, env, completed process)``.

    Its parameters are not the defaults, so it is a custom run, in ``reports/custom/``. The first pytest-xdist
    worker to ask builds it; the others wait for it (a lock the kernel holds) and read it. Each gets an ``env`` with
    a directory of its own for its reports' sockets.
    """
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # the workers' common directory
    tmp, record = shared / "tiny-report", shared / "tiny-report.json"
    with open(shared / "tiny-report.lock", "w") as lock, sockets_dir() as sockets:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not record.exists():
            tmp.mkdir(exist_ok=True)  # a build that timed out is tried again
            archive = tmp / "cifar-10-python.tar.gz"
            md5 = write_archive(archive, make_batches(n_per_batch=60))
            env = run_env(CIFAR10_URL=archive, CIFAR10_MD5=md5, A1_DATA_DIR=tmp / "data",
                          A1_REPORTS_DIR=tmp / "reports", TMPDIR=sockets)
            r = report(*TINY, env=env, timeout=900)
            # the kernels talked over Unix sockets in a private directory, removed afterwards
            left = [p.name for p in Path(sockets).glob("a1-kernel-*")]
            record.write_text(json.dumps({"env": env, "returncode": r.returncode, "stdout": r.stdout,
                                          "stderr": r.stderr, "left": left}))
        built = json.loads(record.read_text())
        fcntl.flock(lock, fcntl.LOCK_UN)
        assert built["returncode"] == 0, built["stdout"] + built["stderr"]
        assert built["left"] == [], built["left"]
        r = subprocess.CompletedProcess(["assignment1.report", *TINY], 0, built["stdout"], built["stderr"])
        yield tmp / "reports" / "custom", dict(built["env"], TMPDIR=sockets), r


@contextlib.contextmanager
def sockets_dir():
    """A directory of its own for a report's temporary files (its kernels' sockets), removed afterwards, with a short
    name: a socket's path has at most 107 bytes, which pytest's directories under pytest-xdist
    (``/tmp/pytest-of-<user>/pytest-<n>/popen-gw0/test_<name>0/``) may pass."""
    path = tempfile.mkdtemp(prefix="a1-test-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def report(*args, env: dict, timeout: int = 600, **kw) -> subprocess.CompletedProcess:
    """``python -m assignment1.report args`` in a subprocess with ``env``, its output captured as text."""
    return subprocess.run([sys.executable, "-m", "assignment1.report", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, **kw)


def run_env(**extra) -> dict:
    """os.environ plus ``extra``, for subprocesses."""
    env = dict(os.environ)
    env.update({k: str(v) for k, v in extra.items()})
    return env
