"""A report whose disk is full or read-only ends in one line and leaves the previous report whole.

The disk is a real small tmpfs: the test needs root (as in CI) and skips cleanly where it cannot mount one.
"""

import os
import subprocess
import sys

import pytest

from cifar_format import make_batches, write_archive
from conftest import run_env

REPORT_FILES = ("report.ipynb", "report.html", "report.pdf", "summary.json")


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs mounted in ``tmp_path``, unmounted after the test."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs the tests as root)")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=True)


def report(out, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "assignment1.report", "--sections", "01", "-p", "val_size", "50",
                           "-p", "n_samples", "2", "--out", str(out)], capture_output=True, text=True, env=env,
                          timeout=600)


def test_a_full_or_read_only_reports_disk_ends_in_one_line_and_keeps_the_previous_report(small_disk, tmp_path):
    # a previous report on the small disk (its data and run store elsewhere)
    archive = tmp_path / "cifar-10-python.tar.gz"
    md5 = write_archive(archive, make_batches(n_per_batch=30))
    env = run_env(CIFAR10_URL=archive, CIFAR10_MD5=md5, A1_DATA_DIR=tmp_path / "data",
                  A1_REPORTS_DIR=tmp_path / "reports")
    out = small_disk / "report"
    first = report(out, env)
    assert first.returncode == 0, first.stdout + first.stderr
    before = {name: (out / name).read_bytes() for name in REPORT_FILES}

    # the disk filled until half the report's size is free: its section runs, its files do not fit
    room = sum(map(len, before.values())) // 2
    disk = os.statvfs(small_disk)
    (small_disk / "filler").write_bytes(b"\0" * (disk.f_bavail * disk.f_frsize - room))
    full = report(out, env)
    # one line, naming the full disk and what to do; the previous report whole, and no temporary file left
    assert full.returncode == 1 and "Traceback" not in full.stderr, full.stderr
    lines = full.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: the disk holding {out} is full"), full.stderr
    assert "--out" in lines[0] and "previous report" in lines[0]
    assert {name: (out / name).read_bytes() for name in REPORT_FILES} == before
    assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")] == []

    # the same disk read-only: one line naming the directory and what to do, the report as it was
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    read_only = report(out, env)
    assert read_only.returncode == 2 and "Traceback" not in read_only.stderr, read_only.stderr
    lines = read_only.stderr.strip().splitlines()
    assert len(lines) == 1 and "Read-only file system" in lines[0] and "--out" in lines[0], read_only.stderr
    assert {name: (out / name).read_bytes() for name in REPORT_FILES} == before
