"""Files that several processes share: written whole or not at all, and claimed by one process at a time."""

from __future__ import annotations

import errno
import fcntl
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_atomic(path: Path, payload: bytes | str | Callable[[BinaryIO], object], *, durable: bool = False) -> None:
    """Write ``payload`` to a temporary file beside ``path``, then rename it over ``path``.

    ``payload`` may be a function that writes to the open binary file (for data too large to hold
    twice). The rename makes a kill harmless; ``durable`` also flushes the data to disk before it,
    so a power cut cannot leave an empty file under the final name. A failed write leaves nothing.
    """
    write_together({Path(path): payload}, durable=durable)


def write_together(contents: dict[Path, bytes | str | Callable[[BinaryIO], object]], *, durable: bool = False) -> None:
    """:func:`write_atomic` for several files at once: all of them, or none.

    Each is written to a temporary file beside its path; only when all are written are they renamed into place.
    A failed write (a full disk) removes the temporaries, leaves the files already there as they were, and raises.
    """
    temporaries = {Path(path): Path(path).with_name(f".{Path(path).name}.{os.getpid()}.tmp") for path in contents}
    try:
        for path, payload in contents.items():
            with open(temporaries[Path(path)], "wb") as f:
                if callable(payload):
                    payload(f)
                else:
                    f.write(payload.encode() if isinstance(payload, str) else payload)
                if durable:
                    f.flush()
                    os.fsync(f.fileno())
        for path, tmp in temporaries.items():
            os.replace(tmp, path)
    finally:
        for tmp in temporaries.values():
            tmp.unlink(missing_ok=True)


def disk_full(e: OSError) -> bool:
    """Whether a failed write's ``e`` says the disk (or the user's quota on it) is full."""
    return e.errno in (errno.ENOSPC, errno.EDQUOT)


def not_writable(e: OSError) -> bool:
    """Whether a failed write's ``e`` says the place cannot be written: read-only, or not permitted."""
    return e.errno in (errno.EROFS, errno.EACCES, errno.EPERM)


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (ours or another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: The claims this process holds: path -> the open file its lock is on; changed under ``_claiming``.
_claims: dict[Path, int] = {}
_claiming = threading.Lock()


def _names(path: Path, fd: int) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (not deleted, nor replaced by a new claim)."""
    try:
        here, there = os.stat(path), os.fstat(fd)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def claim(path: Path) -> bool:
    """Lock ``path`` (created if need be) for this process, unless another holds it; False then.

    The lock is the kernel's (``flock``): it ends with its holder, so the claim of a process that died
    is free to take, and two processes cannot both take it. The file holds the holder's id, for messages
    (:func:`holder`). End a claim with :func:`release`.
    """
    path = Path(path)
    with _claiming:
        for stale in [p for p, fd in _claims.items() if not _names(p, fd)]:  # released by deleting the file
            os.close(_claims.pop(stale))
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            if _names(path, fd):
                break
            os.close(fd)  # its holder released it between our open and our lock: ours is on a deleted file
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        _claims[path] = fd
        return True


def release(path: Path) -> None:
    """End this process's claim of ``path`` (if it holds one): delete the file, then unlock it."""
    with _claiming:
        fd = _claims.pop(Path(path), None)
        if fd is not None:
            # deleted while still locked: a process that opened it meanwhile finds it gone once it has the lock
            if _names(path, fd):
                Path(path).unlink()
            os.close(fd)


def holder(path: Path) -> int | None:
    """The live process whose id the claim at ``path`` holds, or None (no claim, or its process is gone)."""
    try:
        pid = int(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return pid if alive(pid) else None


def remove_orphans(directory: Path) -> None:
    """Delete what dead processes left in ``directory``: temporary files of :func:`write_atomic` and claims."""
    for tmp in Path(directory).glob(".*.tmp"):
        writer = tmp.name.split(".")[-2]
        if not (writer.isdigit() and alive(int(writer))):
            tmp.unlink(missing_ok=True)
    for claimed in Path(directory).glob(".*.claim"):
        if claim(claimed):  # nobody holds it
            release(claimed)
