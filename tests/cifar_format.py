"""Tiny data in the CIFAR-10 python-version format, built by the tests themselves.

Each class has its own mean image plus noise, so a linear classifier can learn
it, which lets tests check that training and the report do something sensible.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

LABEL_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def make_batches(n_per_batch: int = 40, seed: int = 0, noise: float = 60.0) -> dict[str, bytes]:
    """The pickled files of a CIFAR-format archive, as ``{name: bytes}``."""
    rng = np.random.default_rng(seed)
    templates = rng.uniform(40, 215, size=(10, 3072))
    files = {}
    for name in BATCHES:
        labels = np.arange(n_per_batch) % 10
        rng.shuffle(labels)
        X = templates[labels] + rng.normal(0, noise, size=(n_per_batch, 3072))
        batch = {
            b"batch_label": name.encode(),
            b"labels": [int(v) for v in labels],
            b"data": np.clip(X, 0, 255).astype(np.uint8),
            b"filenames": [f"{name}_{i}.png".encode() for i in range(n_per_batch)],
        }
        files[name] = pickle.dumps(batch, protocol=2)
    meta = {b"num_cases_per_batch": n_per_batch, b"label_names": [n.encode() for n in LABEL_NAMES],
            b"num_vis": 3072}
    files["batches.meta"] = pickle.dumps(meta, protocol=2)
    files["readme.html"] = b"<html>tiny test data</html>"
    return files


def add_file(tar: tarfile.TarFile, name: str, payload: bytes, **attrs) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    for key, value in attrs.items():
        setattr(info, key, value)
    tar.addfile(info, io.BytesIO(payload))


def write_archive(path: Path, files: dict[str, bytes] | None = None, extra=None) -> str:
    """Write a ``.tar.gz`` with ``cifar-10-batches-py/<name>`` members; return its md5.

    ``extra(tar)`` may add further (possibly hostile) members.
    """
    files = make_batches() if files is None else files
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py")
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        tar.addfile(info)
        for name, payload in files.items():
            add_file(tar, f"cifar-10-batches-py/{name}", payload)
        if extra is not None:
            extra(tar)
    return hashlib.md5(path.read_bytes()).hexdigest()
