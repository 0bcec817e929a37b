"""Running section notebooks: papermill, kernels over private Unix sockets, progress on the terminal."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

import papermill
from jupyter_client.manager import AsyncKernelManager
from tqdm import tqdm
from traitlets import CaselessStrEnum, Unicode, default
from traitlets.config import Config

from .. import config


class LocalKernelManager(AsyncKernelManager):
    """Section kernels that talk over Unix sockets in a private directory, not TCP, and stop without SIGINT.

    No port is opened to the machine (ipykernel 7 warns about unencrypted TCP on
    every start), and the sockets stay out of the notebooks' working directory.
    jupyter_client's shutdown interrupts a kernel before asking it to stop, and a
    kernel caught at the wrong moment logs ``KeyboardInterrupt caught in kernel``
    to the terminal; a section's kernel has finished its work by then, so the
    request to stop is sent alone.
    """

    transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)
    socket_dir = Unicode("", config=True, help="directory for the kernel's sockets (the temporary directory if empty)")

    @default("ip")
    def _ip_default(self):
        return os.path.join(self.socket_dir or tempfile.gettempdir(), "kernel")

    async def _async_interrupt_kernel(self) -> None:
        if not self.shutting_down:
            await super()._async_interrupt_kernel()


@contextmanager
def kernel_options():
    """papermill's keyword arguments for :class:`LocalKernelManager` kernels, in a private socket directory."""
    if os.name != "posix":  # no Unix sockets: papermill's default kernels over TCP
        yield {}
        return
    socket_dir = tempfile.mkdtemp(prefix="a1-kernel-")  # short, so the socket paths stay under the length limit
    try:
        yield {"kernel_manager_class": LocalKernelManager,
               "config": Config({"LocalKernelManager": {"socket_dir": socket_dir}})}
    finally:
        shutil.rmtree(socket_dir, ignore_errors=True)


def run_section(name: str, out: Path, parameters: dict, kernel: dict) -> None:
    """Execute ``notebooks/<name>.ipynb`` with ``parameters`` into ``out`` (kept, with outputs, even on failure)."""
    papermill.execute_notebook(str(config.NOTEBOOKS_DIR / f"{name}.ipynb"), str(out), parameters=parameters,
                               cwd=str(config.NOTEBOOKS_DIR), progress_bar=False, **kernel)


def failure(section: str, e: Exception, out: Path) -> str:
    """What went wrong in a section, and where: the cell, its first line, the error."""
    if isinstance(e, papermill.PapermillExecutionError):
        first = next((ln.strip() for ln in e.source.splitlines() if ln.strip()), "")
        where = f"cell {e.cell_index} of the executed notebook (In [{e.exec_count}]: {first[:60]})"
        why = f"{e.ename}: {e.evalue}".strip()
    else:
        where, why = "before or between cells", f"{type(e).__name__}: {e}"
    return (f"section {section} failed in {where}: {why}\n"
            f"  the executed notebook is kept at {out}; the previous report is left as it was")


def warnings_in(executed: Path) -> list[str]:
    """Warning lines a section printed (on stderr) while it ran, e.g. a damaged stored run recomputed."""
    nb = json.loads(executed.read_text())
    lines = []
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                text = "".join(out.get("text", ""))
                lines += [ln.strip() for ln in text.splitlines() if "Warning:" in ln]
    return lines


class RunBars:
    """Progress of the training runs, fed by the files runs write to ``directory``.

    On a terminal, one bar per run; otherwise (a log file) one line per finished run.
    """

    def __init__(self, directory: Path, interval: float = 0.5, stream=None):
        self.directory, self.interval = directory, interval
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.bars: dict[str, tqdm] = {}
        self.last: dict[str, tuple[str, str, str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _poll(self) -> None:
        seen = set()
        for path in self.directory.glob("*.txt"):
            try:
                done, total, label = path.read_text().split(" ", 2)
            except (OSError, ValueError):
                continue
            seen.add(path.stem)
            self.last[path.stem] = (done, total, label)
            if self.live:
                bar = self.bars.get(path.stem)
                if bar is None:
                    bar = self.bars[path.stem] = tqdm(total=int(total), desc=f"  run {label}", unit="epoch",
                                                      leave=False, position=1 + len(self.bars), file=self.stream)
                bar.update(int(done) - bar.n)
        for key in set(self.last) - seen:  # its file is gone: the run finished
            done, total, label = self.last.pop(key)
            if key in self.bars:
                self.bars.pop(key).close()
            else:
                print(f"  run {label}: finished ({total} epochs)", file=self.stream, flush=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._poll()

    def __enter__(self):
        self.directory.mkdir(parents=True, exist_ok=True)
        for stale in self.directory.glob("*"):
            stale.unlink(missing_ok=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._poll()
        for bar in self.bars.values():
            bar.close()
