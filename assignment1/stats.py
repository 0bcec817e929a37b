"""Summary statistics across seeds."""

from __future__ import annotations

import math
from collections.abc import Sequence


def mean_std(values: Sequence[float]) -> dict:
    """``{"mean", "std", "n"}`` of ``values``; ``std`` is the sample std (ddof 1), None for one value."""
    xs = [float(v) for v in values]
    n = len(xs)
    if n == 0:
        return {"mean": None, "std": None, "n": 0}
    mean = math.fsum(xs) / n
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else None
    return {"mean": mean, "std": std, "n": n}
