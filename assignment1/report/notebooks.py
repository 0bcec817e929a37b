"""Executing section notebooks: papermill, in kernels over private Unix sockets."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import tempfile
import uuid
import weakref
from contextlib import contextmanager, suppress
from pathlib import Path

import papermill
from jupyter_client.manager import AsyncKernelManager
from traitlets import CaselessStrEnum, Dict, Unicode, default
from traitlets.config import Config

from ..experiments import paths


class LocalKernelManager(AsyncKernelManager):
    """Section kernels that talk over Unix sockets in a private directory, not TCP, and stop without SIGINT.

    No port is opened to the machine (ipykernel 7 warns about unencrypted TCP on
    every start), and the sockets stay out of the notebooks' working directory.
    jupyter_client's shutdown interrupts a kernel before asking it to stop, and a
    kernel caught at the wrong moment logs ``KeyboardInterrupt caught in kernel``
    to the terminal; a section's kernel has finished its work by then, so the
    request to stop is sent alone. ``extra_env`` adds to the kernel's environment
    (the runner names its progress directory there, see :mod:`assignment1.experiments.progress`),
    and what the kernel process itself prints (not its cells' output, which goes to the notebook) goes to
    ``log_file``: a kernel stopped by Ctrl-C would otherwise fill the terminal with its shutdown.
    """

    transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)
    socket_dir = Unicode("", config=True, help="directory for the kernel's sockets (the temporary directory if empty)")
    extra_env = Dict(config=True, help="variables added to the kernel's environment")
    log_file = Unicode("", config=True, help="file for what the kernel process prints (empty: the terminal)")

    @default("ip")
    def _ip_default(self):
        if self.transport == "tcp":
            return "127.0.0.1"
        # a name of its own: two kernels starting at once would otherwise pick the same free socket names
        return os.path.join(self.socket_dir or tempfile.gettempdir(), f"kernel-{uuid.uuid4().hex[:8]}")

    async def _async_interrupt_kernel(self) -> None:
        if not self.shutting_down:
            await super()._async_interrupt_kernel()

    async def _async_pre_start_kernel(self, **kw):
        _started.add(self)
        cmd, kw = await super()._async_pre_start_kernel(**kw)
        kw["env"] = {**kw.get("env", os.environ), **self.extra_env}
        if self.log_file:
            with open(self.log_file, "ab") as log:  # the kernel keeps its own copy of the descriptor
                kw["stdout"] = kw["stderr"] = os.dup(log.fileno())
        return cmd, kw


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


@contextmanager
def kernel_options(env: dict[str, str], log_file: Path):
    """papermill's keyword arguments for :class:`LocalKernelManager` kernels with ``env`` added to their
    environment and their own output in ``log_file``, over Unix sockets in a private directory (over TCP
    where there are none)."""
    socket_dir = tempfile.mkdtemp(prefix="a1-kernel-")  # short, so the socket paths stay under the length limit
    transport = "ipc" if os.name == "posix" else "tcp"
    try:
        yield {"kernel_manager_class": LocalKernelManager,
               "config": Config({"LocalKernelManager": {"socket_dir": socket_dir, "extra_env": env,
                                                        "transport": transport, "log_file": str(log_file)}})}
    finally:
        shutil.rmtree(socket_dir, ignore_errors=True)


def run_section(name: str, out: Path, parameters: dict, kernel: dict) -> None:
    """Execute ``notebooks/<name>.ipynb`` with ``parameters`` into ``out`` (kept, with outputs, even on failure)."""
    # the kernel starts in the notebooks' directory: papermill's cwd= would change this whole process's
    papermill.execute_notebook(str(paths.NOTEBOOKS_DIR / f"{name}.ipynb"), str(out), parameters=parameters,
                               resources={"metadata": {"path": str(paths.NOTEBOOKS_DIR)}}, progress_bar=False,
                               **kernel)


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
