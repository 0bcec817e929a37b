"""Random hyperparameter search, selected on the validation set only.

The candidates are drawn from a seeded generator, trained without any look at
the test set, and ranked by their final validation accuracy. Only the chosen
configuration is then evaluated on the test set.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..config import RunConfig
from .store import RunResult


@dataclass(frozen=True)
class Space:
    """Where candidates come from.

    ``lam`` and ``eta`` are log-uniform over their ranges; ``n_batch``, ``decay``
    and ``flip`` are uniform choices. A decaying candidate multiplies its learning
    rate by 0.1 after half and after four fifths of its epochs.
    """

    lam: tuple[float, float] = (1e-3, 0.3)
    eta: tuple[float, float] = (3e-4, 3e-2)
    n_batch: tuple[int, ...] = (50, 100, 200, 500)
    decay: tuple[bool, ...] = (False, True)
    flip: tuple[bool, ...] = (False, True)


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def decay_milestones(n_epochs: int) -> tuple[int, ...]:
    """The search's step decay of eta: x0.1 after 1/2 and after 4/5 of the epochs (none if too short)."""
    return tuple(sorted({m for m in (round(n_epochs / 2), round(4 * n_epochs / 5)) if 0 < m < n_epochs}))


def sample(n_configs: int, draw_seed: int, space: Space, **common) -> list[RunConfig]:
    """``n_configs`` candidates drawn with ``numpy.random.default_rng(draw_seed)``; ``common`` fills the
    rest of each :class:`RunConfig` (``n_epochs`` is required, ``seed`` is the training seed)."""
    rng = np.random.default_rng(draw_seed)
    out = []
    for _ in range(n_configs):
        # rounded so the table shows what ran
        lam = float(f"{_log_uniform(rng, *space.lam):.3g}")
        eta = float(f"{_log_uniform(rng, *space.eta):.3g}")
        n_batch = int(space.n_batch[rng.integers(len(space.n_batch))])
        decay = bool(space.decay[rng.integers(len(space.decay))])
        flip = bool(space.flip[rng.integers(len(space.flip))])
        milestones = decay_milestones(common["n_epochs"]) if decay else ()
        out.append(RunConfig(lam=lam, eta=eta, n_batch=n_batch, flip=flip, milestones=milestones, **common))
    return out


def validation_score(r: RunResult) -> tuple[float, float]:
    """How a candidate ranks: final validation accuracy, then lower validation loss. Never the test set."""
    if r.diverged or not r.history["val_acc"]:
        return (-math.inf, -math.inf)
    return (r.history["val_acc"][-1], -r.history["val_loss"][-1])


def select(results: Sequence[RunResult]) -> int:
    """Index of the best candidate by :func:`validation_score` (the first of equals)."""
    scores = [validation_score(r) for r in results]
    return max(range(len(scores)), key=lambda i: (scores[i], -i))


def table(results: Sequence[RunResult]) -> list[dict]:
    """The search table: each candidate's configuration and validation results, ranked."""
    rows = []
    for rank, i in enumerate(sorted(range(len(results)), key=lambda i: validation_score(results[i]), reverse=True)):
        r = results[i]
        c = r.config
        rows.append({
            "section": "06_search", "table": "search", "rank": rank + 1, "candidate": i,
            "lam": c.lam, "eta": c.eta, "n_batch": c.n_batch, "flip": c.flip,
            "milestones": list(c.milestones),
            "n_epochs": c.n_epochs, "seed": c.seed, "diverged": r.diverged,
            "val_acc": r.history["val_acc"][-1] if r.history["val_acc"] else None,
            "val_loss": r.history["val_loss"][-1] if r.history["val_loss"] else None,
        })
    return rows
