"""Statistics over runs: summaries over seeds, significance tests, per-class counts.

Comparisons of two models are paired twice over: on the test set (McNemar's
exact test on the predictions of two models trained with the same seed) and
across seeds (a paired t-test on their test accuracies). The rows returned
here are the records of the report's tables (``summary.json``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence

import numpy as np

from .store import RunResult

METRICS = ("loss", "cost", "acc")


def mean_std(values: Sequence[float]) -> dict:
    """``{"mean", "std", "n"}`` of ``values`` (:func:`assignment1.plots.mean_std`); None where it is undefined."""
    from .. import plots  # here, not at the top: plots imports matplotlib, 0.3 s at every start of the runner

    mean, std, n = plots.mean_std(values)
    return {"mean": mean if n else None, "std": std if n > 1 else None, "n": n}


def mcnemar_exact(correct_a, correct_b) -> dict:
    """McNemar's exact test on paired predictions of two models on the same examples.

    ``correct_a, correct_b: (n,)`` booleans: whether each model got each example
    right. Only discordant pairs count: ``b`` = A right and B wrong, ``c`` = A wrong
    and B right. Under the null hypothesis (equal error rates) ``b ~ Binomial(b + c, 1/2)``:
    a two-sided exact binomial test. Returns ``{"b", "c", "p"}``.
    """
    a, b_ = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b_.shape:
        raise ValueError(f"paired predictions must have the same shape, got {a.shape} and {b_.shape}")
    from scipy.stats import binomtest  # here, not at the top: importing scipy.stats costs seconds at every report start

    b = int(np.sum(a & ~b_))
    c = int(np.sum(~a & b_))
    return {"b": b, "c": c, "p": float(binomtest(b, b + c).pvalue) if b + c else 1.0}


def paired_t(values_a: Sequence[float], values_b: Sequence[float]) -> dict:
    """Paired t-test of ``values_b - values_a`` against zero (one pair per seed).

    Returns ``{"n", "mean_diff", "std_diff", "t", "p"}``; ``t`` and ``p`` are None
    with fewer than two pairs, and ``p`` is 1 when every difference is zero.
    """
    a, b = np.asarray(values_a, dtype=np.float64), np.asarray(values_b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired values must have the same length, got {a.size} and {b.size}")
    d = mean_std(b - a)
    out = {"n": d["n"], "mean_diff": d["mean"], "std_diff": d["std"], "t": None, "p": None}
    if d["n"] < 2:
        return out
    if d["std"] == 0:  # scipy's t would be 0/0 or ±inf/nan: the same gain for every seed, or none
        m = d["mean"]
        return {**out, "t": math.copysign(math.inf, m) if m else 0.0, "p": 0.0 if m else 1.0}
    from scipy.stats import ttest_rel  # here, not at the top (see mcnemar_exact)

    with warnings.catch_warnings():  # the same gain for every seed up to rounding: scipy warns, the t stands
        warnings.filterwarnings("ignore", "Precision loss", RuntimeWarning)
        t = ttest_rel(b, a)
    return {**out, "t": float(t.statistic), "p": float(t.pvalue)}


def group_by_setting(results: Iterable[RunResult]) -> list[list[RunResult]]:
    """Results grouped by everything but the seed, in order of first appearance."""
    groups: dict[str, list[RunResult]] = {}
    for r in results:
        groups.setdefault(r.config.setting_id(), []).append(r)
    return list(groups.values())


def summarize(results: Iterable[RunResult], section: str, table: str) -> list[dict]:
    """One row per setting: its configuration and test metrics as ``{"mean", "std", "n"}`` over seeds."""
    rows = []
    for group in group_by_setting(results):
        c = group[0].config
        rows.append({
            "section": section, "table": table, "setting": c.label, "lam": c.lam, "eta": c.eta, "loss": c.loss,
            "flip": c.flip, "val_size": c.val_size, "n_epochs": c.n_epochs, "n_batch": c.n_batch,
            "milestones": list(c.milestones), "decay_factor": c.decay_factor, "eta_text": c.eta_text,
            "seeds": [r.config.seed for r in group],
            "test": {m: mean_std([r.test[m] for r in group]) for m in METRICS},
            "diverged": any(r.diverged for r in group), "n_diverged": sum(r.diverged for r in group),
        })
    return rows


def significance_row(section: str, comparison: str, a: str, b: str, runs_a: Sequence[RunResult],
                     runs_b: Sequence[RunResult], y: np.ndarray, alpha: float = 0.05) -> dict:
    """One comparison of the runs of B against those of A, paired by seed, on the test labels ``y: (n,)``.

    Each run needs ``config.seed``, ``test_pred: (n,)`` and ``test["acc"]``. The row holds the mean
    accuracies, McNemar's exact test for every seed and how many it finds significant at ``alpha``, and
    the paired t-test over seeds. Significant when the t-test says so (with one seed, when McNemar's does).
    """
    by_seed = {r.config.seed: r for r in runs_a}
    pairs = [(by_seed[r.config.seed], r) for r in runs_b if r.config.seed in by_seed]
    if not pairs:
        raise ValueError("no seed is shared by the two groups of runs: nothing to pair")
    mcnemar = [{"seed": a.config.seed, **mcnemar_exact(a.test_pred == y, b.test_pred == y)} for a, b in pairs]
    mcnemar_significant = sum(m["p"] < alpha for m in mcnemar)
    acc_a, acc_b = [a.test["acc"] for a, _ in pairs], [b.test["acc"] for _, b in pairs]
    mean_a, mean_b, t = mean_std(acc_a), mean_std(acc_b), paired_t(acc_a, acc_b)
    significant = t["p"] < alpha if t["p"] is not None else mcnemar_significant == len(pairs)
    return {
        "section": section, "table": "significance", "comparison": comparison, "a": a, "b": b,
        "acc_a": mean_a, "acc_b": mean_b, "diff": mean_b["mean"] - mean_a["mean"],
        "paired_t": t, "mcnemar": mcnemar, "mcnemar_significant": mcnemar_significant,
        "n_seeds": len(pairs), "alpha": alpha, "significant": bool(significant),
    }


def compare_each_setting(section: str, what: str, a: str, b: str, groups_a: Sequence[Sequence[RunResult]],
                         groups_b: Sequence[Sequence[RunResult]], y: np.ndarray) -> list[dict]:
    """:func:`significance_row` for each pair of settings (groups of seeds) in turn, labelled with ``what``."""
    rows = []
    for ga, gb in zip(groups_a, groups_b):
        c = ga[0].config
        label = f"{what}, λ={c.lam:g}, η={c.eta:g}" if not c.milestones else what
        rows.append(significance_row(section, label, a, b, ga, gb, y))
    return rows


def per_class_accuracy(runs: Sequence[RunResult], y: np.ndarray, n_classes: int) -> np.ndarray:
    """``(len(runs), n_classes)``: each run's test accuracy on each true class; ``y: (n_test,)``."""
    return np.array([[np.mean(r.test_pred[y == k] == k) for k in range(n_classes)] for r in runs])


def per_class(section: str, table: str, class_names: Sequence[str], accuracy: np.ndarray) -> list[dict]:
    """Rows of per-class test accuracy, ``accuracy: (runs, classes)``, as mean and std over the runs."""
    return [{"section": section, "table": table, "class": name, "acc": mean_std(accuracy[:, k])}
            for k, name in enumerate(class_names)]


def confusion_matrix(y: np.ndarray, y_pred: np.ndarray, n_classes: int = 10) -> np.ndarray:
    """``C: (K, K)`` with ``C[i, j]`` = examples of true class ``i`` predicted as ``j``."""
    C = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(C, (np.asarray(y), np.asarray(y_pred)), 1)
    return C
