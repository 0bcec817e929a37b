"""Executing section notebooks with papermill, in kernels over Unix sockets that a stopped report stops."""

from __future__ import annotations

import json
import os
import re
import signal
import weakref
from contextlib import suppress
from pathlib import Path

import papermill
from jupyter_client.manager import AsyncKernelManager
from traitlets.config import Config

from ..experiments import paths

#: Arguments of the kernel process: its own log stays out of the terminal. jupyter_client interrupts a kernel
#: before asking it to stop, and one section in six logged ``KeyboardInterrupt caught in kernel`` there.
KERNEL_ARGS = ["--IPKernelApp.log_level=CRITICAL"]


class SectionKernel(AsyncKernelManager):
    """papermill's kernel manager, remembered so that :func:`stop_kernels` can stop a report midway."""

    async def start_kernel(self, **kw) -> None:
        _started.add(self)
        await super().start_kernel(**kw)


_started: weakref.WeakSet = weakref.WeakSet()  # this process's section kernels, for stop_kernels


def stop_kernels() -> None:
    """Kill the section kernels of this process that still run, with their training workers.

    jupyter_client starts each kernel as the leader of a process group of its own, which the
    kernel's workers join.
    """
    for manager in list(_started):
        process = getattr(manager.provisioner, "process", None)
        if process is not None and process.poll() is None:
            # papermill may be stopping a failed section's kernel on its own thread: gone by now is stopped
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


def run_section(name: str, out: Path, parameters: dict, socket_dir: Path) -> None:
    """Execute ``notebooks/<name>.ipynb`` with ``parameters`` into ``out`` (kept, with outputs, even on failure),
    its kernel talking over Unix sockets in ``socket_dir`` (over TCP where there are none)."""
    # no port opened to the machine, and no "Kernel is running over TCP without encryption" from ipykernel 7
    sockets = {"transport": "ipc", "ip": str(socket_dir / name)} if os.name == "posix" else {}
    # the kernel starts in the notebooks' directory: papermill's cwd= would change this whole process's
    papermill.execute_notebook(str(paths.NOTEBOOKS_DIR / f"{name}.ipynb"), str(out), parameters=parameters,
                               resources={"metadata": {"path": str(paths.NOTEBOOKS_DIR)}}, progress_bar=False,
                               kernel_manager_class=SectionKernel, config=Config(KernelManager=sockets),
                               extra_arguments=KERNEL_ARGS)


def failure(section: str, e: Exception, out: Path) -> str:
    """What went wrong in a section, and where: the cell, its first line, the error."""
    if isinstance(e, papermill.PapermillExecutionError):
        first = next((ln.strip() for ln in e.source.splitlines() if ln.strip()), "")
        where = f"in cell {e.cell_index} of the executed notebook (In [{e.exec_count}]: {first[:60]})"
        why = f"{e.ename}: {e.evalue}".strip()
    else:
        where, why = "outside its cells' code (in its kernel or in papermill)", f"{type(e).__name__}: {e}"
    return (f"section {section} failed {where}: {why}\n"
            f"  the executed notebook is kept at {out}; the previous report is left as it was")


def warnings_in(executed: Path) -> list[str]:
    """Warning lines a section printed (on stderr) while it ran, e.g. a damaged stored run recomputed.

    The project's own warnings are given in its words, without Python's ``file:line: UserWarning:``.
    """
    nb = json.loads(executed.read_text())
    lines = []
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                text = "".join(out.get("text", ""))
                lines += [re.sub(r"^\S+:\d+: (UserWarning: )?", "", ln.strip())
                          for ln in text.splitlines() if "Warning:" in ln]
    return lines
