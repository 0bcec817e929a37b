"""CIFAR-10 in memory: safe unpickling, validation, splits, normalization, flips.

Arrays hold one sample per row (``X: (n, d)``), so a mini-batch gather copies
contiguous rows. An image's 3072 values are its R, G and B planes, each 32
rows of 32 pixels, as in the python-version batches.
"""

from __future__ import annotations

import codecs
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import fetch
from .config import RunConfig
from .fetch import DataError

D = 3072  # 3 x 32 x 32
K = 10


def _latin1_encode(text, encoding="latin1"):
    # Protocol-2 pickles written by Python 3 store bytes as _codecs.encode(str, "latin1");
    # nothing else is admitted, so no codec machinery can be reached through it.
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refusing _codecs.encode({type(text).__name__}, {encoding!r})")
    return codecs.encode(text, encoding)


_RECONSTRUCT = np.empty(0).__reduce__()[0]  # numpy's _reconstruct, without a private import
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class _BatchUnpickler(pickle.Unpickler):
    """An unpickler that builds numpy arrays and plain containers, and nothing else."""

    def __init__(self, file, path):
        super().__init__(file, encoding="bytes")
        self.path = path

    def find_class(self, module, name):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise DataError(
                f"{self.path}: refusing to load global {module}.{name} "
                "(a CIFAR-10 batch needs only numpy arrays); the file is not a genuine batch"
            ) from None


def unpickle(path: str | os.PathLike):
    """Load a CIFAR-10 pickle file without letting it run code.

    Returns the unpickled object (dict keys are bytes, as in the official
    loader). Raises :class:`DataError` naming the file if it is corrupt,
    truncated or asks for any global beyond numpy array reconstruction.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return _BatchUnpickler(f, path).load()
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path} is missing; run `python -m assignment1 fetch`") from None
    except Exception as e:  # a damaged pickle can fail in many ways; all mean the same
        raise DataError(f"{path} is truncated or corrupt ({type(e).__name__}: {e}); fetch the data again") from e


def load_meta(path: str | os.PathLike) -> tuple[list[str], int]:
    """Class names and samples per batch from ``batches.meta``."""
    meta = unpickle(path)
    try:
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in meta[b"label_names"]]
        per_batch = int(meta[b"num_cases_per_batch"])
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise DataError(f"{path} is not a CIFAR-10 batches.meta ({e})") from e
    if len(names) != K:
        raise DataError(f"{path} names {len(names)} classes, expected {K}")
    return names, per_batch


def load_batch(path: str | os.PathLike, n_expected: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One batch file as ``(X, y)``: ``X: (n, 3072) uint8``, ``y: (n,) int64`` in 0..9.

    Raises :class:`DataError` naming the file if its shape, dtype or labels are wrong.
    """
    batch = unpickle(path)
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise DataError(f"{path} is not a CIFAR-10 batch (no data/labels entries)")
    X, labels = batch[b"data"], batch[b"labels"]
    if not isinstance(X, np.ndarray) or X.dtype != np.uint8 or X.ndim != 2 or X.shape[1] != D:
        desc = f"{X.shape} {X.dtype}" if isinstance(X, np.ndarray) else type(X).__name__
        raise DataError(f"{path}: data must be an (n, {D}) uint8 array, got {desc}")
    if n_expected is not None and X.shape[0] != n_expected:
        raise DataError(f"{path}: expected {n_expected} samples, got {X.shape[0]}")
    try:
        y = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError, OverflowError) as e:
        raise DataError(f"{path}: labels are not integers ({e})") from e
    if y.shape != (X.shape[0],):
        raise DataError(f"{path}: {y.size} labels for {X.shape[0]} samples")
    if y.size and (y.min() < 0 or y.max() >= K):
        raise DataError(f"{path}: labels must lie in 0..{K - 1}, found {y.min()}..{y.max()}")
    return X, y


def one_hot(y: np.ndarray, n_classes: int = K, dtype="float32") -> np.ndarray:
    """``y: (n,)`` integer labels -> ``Y: (n, n_classes)`` one-hot."""
    Y = np.zeros((y.shape[0], n_classes), dtype=dtype)
    Y[np.arange(y.shape[0]), y] = 1
    return Y


def flip(X: np.ndarray) -> np.ndarray:
    """Mirror images horizontally. ``X: (..., 3072)`` -> a flipped copy of the same shape."""
    # A reversed-stride view of the (3, 32, 32) image copies much faster than a fancy-index gather.
    return X.reshape(*X.shape[:-1], 3, 32, 32)[..., ::-1].reshape(X.shape)


def translate(X: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Move each image of ``X: (m, 3072)`` by its row of ``shifts: (m, 2)`` pixels (down, right; negative:
    up, left), zeros (the mean, once normalized) filling what comes into view; returns a new ``(m, 3072)``."""
    images, out = X.reshape(-1, 3, 32, 32), np.zeros((len(X), 3, 32, 32), X.dtype)
    for dy, dx in np.unique(shifts, axis=0):
        rows = np.flatnonzero((shifts == (dy, dx)).all(axis=1))
        out[rows, :, max(dy, 0):32 + min(dy, 0), max(dx, 0):32 + min(dx, 0)] = \
            images[rows, :, max(-dy, 0):32 + min(-dy, 0), max(-dx, 0):32 + min(-dx, 0)]
    return out.reshape(X.shape)


def to_images(X: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Normalized rows ``X: (n, 3072)`` back to displayable images ``(n, 32, 32, 3)`` uint8."""
    raw = np.clip(np.rint(X * std + mean), 0, 255).astype(np.uint8)
    return raw.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def template_image(w: np.ndarray) -> np.ndarray:
    """One class's weights ``w: (3072,)`` as a ``(32, 32, 3)`` image scaled to [0, 1]."""
    img = w.reshape(3, 32, 32).transpose(1, 2, 0).astype(np.float64)
    lo, hi = img.min(), img.max()
    return (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)


@dataclass
class Split:
    """One part of the data: ``X: (n, d)``, ``Y: (n, K)`` one-hot, ``y: (n,)`` labels."""

    X: np.ndarray
    Y: np.ndarray
    y: np.ndarray

    @property
    def n(self) -> int:
        return self.X.shape[0]


@dataclass
class Dataset:
    """Normalized training, validation and test splits with their provenance."""

    train: Split
    val: Split
    test: Split
    label_names: list[str]
    mean: np.ndarray  # (d,) statistics of the training part, in float64
    std: np.ndarray
    normalize: str
    provenance: dict = field(default_factory=dict)


def normalization_stats(X: np.ndarray, normalize: str = "per_feature") -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of ``X: (n, d)``: per feature (``(d,)`` each) or one global value broadcast to ``(d,)``."""
    n, d = X.shape
    # Sums of values and squares in float64 blocks: exact for uint8 pixels (far below
    # 2**53), so var = E[x^2] - E[x]^2 loses nothing, and no (n, d) float64 copy is made.
    total, total_sq = np.zeros(d), np.zeros(d)
    for start in range(0, n, 4096):
        block = X[start:start + 4096].astype(np.float64)
        total += block.sum(axis=0)
        total_sq += np.einsum("ij,ij->j", block, block)
    if normalize == "global":
        total, total_sq, n = np.full(d, total.sum()), np.full(d, total_sq.sum()), n * d
    mean = total / n
    std = np.sqrt(np.maximum(total_sq / n - mean**2, 0.0))
    # A constant feature carries no information; dividing by 1 keeps it finite.
    std[std == 0] = 1.0
    return mean, std


def normalized(X: np.ndarray, mean: np.ndarray, std: np.ndarray, dtype) -> np.ndarray:
    """``(X - mean) / std`` in ``dtype``, for ``X: (n, d)`` and ``mean``, ``std``: ``(d,)``."""
    out = X.astype(dtype)
    out -= mean.astype(dtype)
    out /= std.astype(dtype)
    return out


def n_training_images(batch_dir: Path) -> int:
    """Images in the training batches of ``batch_dir`` (50,000 for CIFAR-10), from ``batches.meta``."""
    return load_meta(Path(batch_dir) / fetch.META)[1] * len(fetch.TRAIN_BATCHES)


def load_cifar10(data_dir: str | os.PathLike, val_size: int = RunConfig.val_size, normalize: str = RunConfig.normalize,
                 dtype: str = RunConfig.dtype, url: str | None = None, md5: str | None = None,
                 progress: bool = True) -> Dataset:
    """Fetch (if needed, see :func:`assignment1.fetch.prepare`), load and split CIFAR-10.

    Training is the five training batches minus their last ``val_size`` samples,
    which form the validation set (deterministic); test is the test batch.
    Normalization uses statistics of the training part only: per-feature mean
    and std by default, or the reference report's single global mean and std
    (``normalize="global"``). Train and validation ``X`` are views of one
    contiguous array, in the order they were loaded.
    """
    provenance = fetch.prepare(data_dir, url=url, md5=md5, progress=progress)
    batch_dir = Path(provenance["batch_dir"])
    label_names, per_batch = load_meta(batch_dir / fetch.META)
    n_total = per_batch * len(fetch.TRAIN_BATCHES)
    # the settings' own checks: a validation set the data can spare, a known normalization and dtype
    RunConfig(val_size=val_size, normalize=normalize, dtype=dtype, n_batch=1).check_data_size(n_total)

    parts = [load_batch(batch_dir / name, per_batch) for name in fetch.TRAIN_BATCHES]
    X_all = np.concatenate([p[0] for p in parts])
    y_all = np.concatenate([p[1] for p in parts])
    X_test, y_test = load_batch(batch_dir / fetch.TEST_BATCH)

    n_train = n_total - val_size
    mean, std = normalization_stats(X_all[:n_train], normalize)
    X_all = normalized(X_all, mean, std, dtype)

    def split(X, y):
        return Split(X=X, Y=one_hot(y, K, dtype), y=y)

    return Dataset(train=split(X_all[:n_train], y_all[:n_train]), val=split(X_all[n_train:], y_all[n_train:]),
                   test=split(normalized(X_test, mean, std, dtype), y_test), label_names=label_names, mean=mean,
                   std=std, normalize=normalize, provenance=provenance)
