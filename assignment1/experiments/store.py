"""The run store: finished runs, on disk, found again by a key of what computed them.

A run is stored as ``reports/runs/<key>.npz``. The key hashes the run's full
configuration, the data's checksums and the code of the modules that compute
results (:data:`RESULT_MODULES`), read as syntax trees without docstrings: a
change to the code trains afresh; a change to a comment or a docstring does not.
An entry is checked when it is read; a damaged one is moved to ``damaged/``.
A process about to train a run claims it (``.<key>.claim``), so that two
reports sharing the store never train the same run twice.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import files
from ..config import RunConfig

PACKAGE_DIR = Path(__file__).resolve().parent.parent
#: Modules whose code determines a run's numbers, relative to the package.
RESULT_MODULES = ("config.py", "data.py", "model.py", "train.py", "sweep.py", "experiments/runs.py")


@dataclass
class RunResult:
    """A finished run: ``W: (K, d)``, ``b: (K,)``, history and test-set outcome.

    ``test`` holds loss, cost and accuracy; ``test_pred: (n_test,)`` the predicted
    labels; ``test_p_true: (n_test,)`` the probability given to the true class
    (softmax for ``ce``, the true class's sigmoid for ``mbce``). All three are
    None for a run whose test set was not to be looked at (a search candidate).
    ``seconds`` is the wall time its training took.
    """

    config: RunConfig
    W: np.ndarray
    b: np.ndarray
    history: dict[str, list]
    diverged: bool
    test: dict[str, float] | None
    test_pred: np.ndarray | None
    test_p_true: np.ndarray | None
    seconds: float


def code_fingerprint(source: str) -> str:
    """sha256 of a module's syntax tree without docstrings: it changes with the code, not with comments."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) \
                and ast.get_docstring(node, clean=False) is not None:
            node.body = node.body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()


@functools.lru_cache(maxsize=1)
def code_hash() -> str:
    """One hash of the code of :data:`RESULT_MODULES`."""
    h = hashlib.sha256()
    for name in RESULT_MODULES:
        h.update(code_fingerprint((PACKAGE_DIR / name).read_text()).encode())
    return h.hexdigest()


def run_key(cfg: RunConfig, data_files: dict[str, str]) -> str:
    """The store key of ``cfg`` trained on data whose batches have the md5s ``data_files``."""
    payload = {"config": cfg.to_dict(), "data": data_files, "code": code_hash()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


class RunStore:
    """Finished runs on disk, one ``<key>.npz`` each, written atomically and flushed to disk.

    Temporary files and claims left by a process that was killed are removed when a store is opened.
    """

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        files.remove_orphans(self.directory)

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.npz"

    def save(self, key: str, r: RunResult) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        meta = {"config": r.config.to_dict(), "history": r.history, "diverged": r.diverged,
                "test": r.test, "seconds": r.seconds}
        arrays = {"W": r.W, "b": r.b, "meta": np.array(json.dumps(meta))}
        if r.test is not None:
            arrays.update(test_pred=r.test_pred, test_p_true=r.test_p_true)
        files.write_atomic(self.path(key), lambda f: np.savez(f, **arrays), durable=True)

    def load(self, key: str, problem: Callable[[RunResult], str | None] = lambda r: None) -> RunResult | None:
        """The stored run, or None if there is none.

        An entry that cannot be read, or in which ``problem(run)`` finds something
        wrong, is moved to ``damaged/`` (to be looked at, not lost), said so in one
        warning line, and reported absent, so that it is trained again.
        """
        path = self.path(key)
        if not path.exists():
            return None
        try:
            why = problem(r := read(path))
        except KeyError as e:
            why = f"it lacks {e}"
        except Exception as e:  # truncated, garbled, or not ours: it fails in many ways, all meaning the same
            why = f"it cannot be read as a stored run ({type(e).__name__})"
        if why is None:
            return r
        aside = self.directory / "damaged" / path.name
        aside.parent.mkdir(exist_ok=True)
        os.replace(path, aside)
        warnings.warn(f"stored run {path} is damaged: {why}; moved to {aside}, and trained again", stacklevel=2)
        return None

    def claim(self, key: str) -> bool:
        """Take the training of ``key`` for this process; False while another live process has it."""
        self.directory.mkdir(parents=True, exist_ok=True)
        return files.claim(self.directory / f".{key}.claim")

    def release(self, key: str) -> None:
        files.release(self.directory / f".{key}.claim")


def read(path: Path) -> RunResult:
    """A stored run as written, without checks (see :meth:`RunStore.load`)."""
    with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        tested = meta["test"] is not None
        return RunResult(config=RunConfig(**meta["config"]), W=z["W"], b=z["b"], history=meta["history"],
                         diverged=meta["diverged"], test=meta["test"],
                         test_pred=z["test_pred"] if tested else None,
                         test_p_true=z["test_p_true"] if tested else None, seconds=meta["seconds"])


def describe(directory: Path) -> str:
    """``directory``, how many runs it holds and the minutes their training took (from their stored records)."""
    n, seconds = 0, 0.0
    for path in Path(directory).glob("*.npz"):
        try:
            seconds += read(path).seconds
            n += 1
        except Exception:  # a damaged entry counts for nothing; it would be recomputed anyway
            continue
    return f"{directory}: {n} stored run{'s' * (n != 1)}, {seconds / 60:.1f} min of training"


def main(argv: list[str] | None = None) -> int:
    """``python -m assignment1.experiments.store [--remove]``: describe the run store, or remove it."""
    import argparse
    import shutil

    from . import paths

    parser = argparse.ArgumentParser(prog="python -m assignment1.experiments.store", description=main.__doc__)
    parser.add_argument("--remove", action="store_true", help="delete every stored run")
    args = parser.parse_args(argv)
    directory = paths.runs_dir()
    what = describe(directory)
    if args.remove:
        shutil.rmtree(directory, ignore_errors=True)
        print(f"removed {what}; those runs train again when a report needs them")
    else:
        print(f"kept {what} (make clean-runs removes them)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
