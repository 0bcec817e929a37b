"""Training across processes: the one channel between a report's runs and its terminal, the slots
that keep its sections from training more runs at once than there are cores, and the runs the
report's sections will ask for, announced before they start.

A run trained in a worker process (:mod:`.runs`) writes ``<done> <total> <label>``
to ``<directory>/<key>.txt`` after every epoch and removes the file when it
ends; :class:`RunBars`, in the report runner's process, reads those files and
shows a bar per run on a terminal, or a line per finished run in a log. The
runner names the directory to the section kernels it starts through their
environment (:data:`PROGRESS_ENV`), which is read here and nowhere else.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from joblib import cpu_count
from tqdm import tqdm

from .. import files
from ..config import RunConfig

PROGRESS_ENV = "A1_PROGRESS_DIR"
#: The file of the directory in which a report runner announces its sections' runs (:func:`announce`).
ANNOUNCED = "announced.json"


def named_directory() -> str | None:
    """The progress directory a report runner named to this process, if any."""
    return os.environ.get(PROGRESS_ENV) or None


@contextmanager
def training_slot(poll: float = 0.1):
    """Wait for, then hold, one of a report's training slots, one per core (outside a report: no wait).

    The report runs two sections at a time, each with a worker per core; more training processes
    than cores would only slow each other down, while a section that starts its kernel, draws or
    waits leaves its core to the other's runs. A slot is ``<directory>/.slot-<i>``, claimed
    (:func:`assignment1.files.claim`): its claim ends if its holder dies.
    """
    directory = named_directory()
    if directory is None:
        yield
        return
    while True:
        for slot in (Path(directory) / f".slot-{i}" for i in range(cpu_count())):
            if files.claim(slot):
                try:
                    yield
                finally:
                    files.release(slot)
                return
        time.sleep(poll)


def announce(directory: Path, configs: list[RunConfig]) -> None:
    """Tell the processes of a report the runs its sections will ask for (read by :func:`announced`)."""
    files.write_atomic(Path(directory) / ANNOUNCED, json.dumps([c.to_dict() for c in configs]))


def announced() -> list[RunConfig]:
    """The runs the report runner of this process announced (:func:`announce`); none outside a report."""
    directory = named_directory()
    try:
        return [RunConfig(**c) for c in json.loads((Path(directory) / ANNOUNCED).read_text())] if directory else []
    except FileNotFoundError:
        return []


#: Settings that :attr:`RunConfig.label` names, or that the progress shows apart (the seed, the epochs).
LABELLED = ("lam", "eta", "loss", "flip", "shift", "milestones", "decay_factor", "schedule", "average", "seed",
            "n_epochs")


def run_label(cfg: RunConfig) -> str:
    """A run as its progress names it: its setting, every other setting that is not the default, and its seed.

    Two runs of a report never share a label: section 4's run on a smaller validation set is
    ``lam=0, eta=0.001, val_size=1000, evaluate_train=False, seed 0``, not section 2's ``lam=0, eta=0.001, seed 0``.
    """
    default = RunConfig()
    apart = [f"{f.name}={getattr(cfg, f.name)}" for f in dataclasses.fields(cfg)
             if f.name not in LABELLED and getattr(cfg, f.name) != getattr(default, f.name)]
    return ", ".join([cfg.label, *apart, f"seed {cfg.seed}"])


class ProgressFile:
    """An ``on_epoch`` callback writing a run's progress to ``<directory>/<key>.txt``, removed by :meth:`close`."""

    def __init__(self, directory: str, key: str, cfg: RunConfig):
        self.path = Path(directory) / f"{key}.txt"
        self.total, self.label = cfg.n_epochs, run_label(cfg)

    def __call__(self, history: dict) -> None:
        files.write_atomic(self.path, f"{len(history['epoch'])} {self.total} {self.label}")

    def close(self) -> None:
        self.path.unlink(missing_ok=True)


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

    def poll(self) -> None:
        """Read the progress files once: update the bars, and close those whose run has ended."""
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
            self.poll()

    def __enter__(self):
        self.directory.mkdir(parents=True, exist_ok=True)
        for stale in self.directory.glob("*"):
            stale.unlink(missing_ok=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.poll()
        for bar in self.bars.values():
            bar.close()
