"""Claims (assignment1.files.claim): one holder at a time, across processes, even when they race."""

import os
import subprocess
import sys
import time

from assignment1 import files

from conftest import run_env

#: A process that takes one claim at a moment agreed with the others, says whether it got it, and keeps it
#: until told to end. ``hook`` widens a window of the claiming code, to make a race certain.
CLAIMANT = """
import os, sys, time
from pathlib import Path
from assignment1 import files

path, role, sync, hook = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), sys.argv[4]

def wait_for(*names):
    deadline = time.monotonic() + 60
    while not all((sync / n).exists() for n in names):
        assert time.monotonic() < deadline, f"{role} waited for {names} in vain"
        time.sleep(0.01)

exec(hook)
(sync / f"ready-{role}").touch()
wait_for(*sys.argv[5:])
got = str(files.claim(path))
(sync / f".got-{role}").write_text(got)
(sync / f".got-{role}").rename(sync / f"got-{role}")  # whole when it appears: the test reads it once it exists
wait_for("done")
"""

#: Between seeing a claim's process dead and replacing its claim, both claimants wait for each other,
#: then the late one waits a second more: the window in which a takeover by deleting and linking a pid file
#: (62be89b) let the late one delete the early one's fresh claim. Claims that never ask whose a claim is
#: leave this hook unused.
TAKEOVER_WINDOW = """
seen_by = files.holder
def holder(p):
    pid = seen_by(p)
    if pid is None:
        (sync / f"saw-{role}").touch()
        wait_for("saw-early", "saw-late")
        if role == "late":
            time.sleep(1)
    return pid
files.holder = holder
"""

#: Between opening the claim's file and locking it, the claimant waits until told to go on: meanwhile its
#: holder releases the claim (deleting the file) and another process takes the new one.
OPEN_THEN_LOCK = """
import fcntl
lock = fcntl.flock
def flock(fd, how):
    (sync / "opened").touch()
    wait_for("go")
    return lock(fd, how)
fcntl.flock = flock
"""


def claimant(path, role, sync, hook="", *wait_for):
    return subprocess.Popen([sys.executable, "-c", CLAIMANT, str(path), role, str(sync), hook, *wait_for],
                            env=run_env())


def wait_for(*paths, timeout=60):
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        assert time.monotonic() < deadline, f"waited for {paths} in vain"
        time.sleep(0.01)


def test_two_processes_taking_over_a_dead_claim_at_once_get_it_once(tmp_path):
    path, sync = tmp_path / ".run.claim", tmp_path / "sync"
    sync.mkdir()
    # a claim whose process has ended
    subprocess.run([sys.executable, "-c", "import sys; from assignment1 import files; files.claim(sys.argv[1])",
                    str(path)], env=run_env(), check=True)
    assert path.exists() and files.holder(path) is None
    # two processes take it over at the same moment, the window between seeing it dead and taking it wide open
    procs = {role: claimant(path, role, sync, TAKEOVER_WINDOW, "ready-early", "ready-late")
             for role in ("early", "late")}
    try:
        wait_for(sync / "got-early", sync / "got-late")
        got = {role: (sync / f"got-{role}").read_text() for role in procs}
        # exactly one holds it, and the claim names that one
        assert sorted(got.values()) == ["False", "True"], got
        (winner,) = [role for role, g in got.items() if g == "True"]
        assert files.holder(path) == procs[winner].pid
    finally:
        (sync / "done").touch()
        for p in procs.values():
            p.wait(timeout=60)


def test_a_claim_released_while_another_process_opens_it_is_not_held_twice(tmp_path):
    path, sync = tmp_path / ".run.claim", tmp_path / "sync"
    sync.mkdir()
    # this process holds the claim; another has opened its file and is about to lock it
    assert files.claim(path)
    late = claimant(path, "late", sync, OPEN_THEN_LOCK)
    try:
        wait_for(sync / "opened")
        # meanwhile the claim is released and taken again, as a new file
        files.release(path)
        assert not path.exists() and files.claim(path)
        (sync / "go").touch()
        wait_for(sync / "got-late")
        # the late process locked the deleted file: it sees that, and finds the new claim held
        assert (sync / "got-late").read_text() == "False"
        assert files.holder(path) == os.getpid()
    finally:
        (sync / "done").touch()
        late.wait(timeout=60)
        files.release(path)


def test_a_claim_ends_with_its_process_and_its_file_with_a_release(tmp_path):
    path, sync = tmp_path / ".run.claim", tmp_path / "sync"
    sync.mkdir()
    # held by a live process: not this one's to take, and the claim names it
    other = claimant(path, "other", sync)
    try:
        wait_for(sync / "got-other")
        assert not files.claim(path) and files.holder(path) == other.pid
    finally:
        other.kill()
        other.wait()
    # killed, it holds nothing: the claim is free, and released it leaves no file
    assert files.claim(path) and files.holder(path) == os.getpid()
    files.release(path)
    assert not path.exists() and files.holder(path) is None
