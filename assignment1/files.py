"""Writing files so that a reader never sees half of one."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: Path, payload: bytes | str, *, durable: bool = False) -> None:
    """Write ``payload`` to a temporary file beside ``path``, then rename it over ``path``.

    The rename makes a kill harmless; ``durable`` also flushes the data to disk
    before it, so a power cut cannot leave an empty file under the final name.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(payload.encode() if isinstance(payload, str) else payload)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)


def remove_stale_temporaries(directory: Path) -> None:
    """Delete the temporary files of :func:`write_atomic` in ``directory`` whose writer has died."""
    for tmp in Path(directory).glob(".*.tmp"):
        try:
            os.kill(int(tmp.name.split(".")[-2]), 0)  # its writer is alive: leave it
        except (ProcessLookupError, ValueError):
            tmp.unlink(missing_ok=True)
        except PermissionError:  # alive, and another user's
            pass
