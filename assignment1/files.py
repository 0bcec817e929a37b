"""Files that several processes share: written whole or not at all, and claimed by one process at a time."""

from __future__ import annotations

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
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            if callable(payload):
                payload(f)
            else:
                f.write(payload.encode() if isinstance(payload, str) else payload)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (ours or another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def holder(path: Path) -> int | None:
    """The live process whose id the file at ``path`` holds, or None (no file, or its process is gone)."""
    try:
        pid = int(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return pid if alive(pid) else None


def claim(path: Path) -> bool:
    """Create ``path`` holding this process's id, unless a live process holds it; a dead one's is taken over."""
    path = Path(path)
    # written whole first, then linked into place: whoever sees the claim sees whose it is
    mine = path.with_name(f".{path.name}.{threading.get_ident()}.{os.getpid()}.tmp")
    mine.write_text(str(os.getpid()))
    try:
        for _ in range(2):
            try:
                os.link(mine, path)
                return True
            except FileExistsError:
                if holder(path) is not None:
                    return False
                path.unlink(missing_ok=True)  # its process is gone: take the claim over
        return False
    finally:
        mine.unlink()


def remove_orphans(directory: Path) -> None:
    """Delete what dead processes left in ``directory``: temporary files of :func:`write_atomic` and claims."""
    for tmp in Path(directory).glob(".*.tmp"):
        writer = tmp.name.split(".")[-2]
        if not (writer.isdigit() and alive(int(writer))):
            tmp.unlink(missing_ok=True)
    for claimed in Path(directory).glob(".*.claim"):
        if holder(claimed) is None:
            claimed.unlink(missing_ok=True)
