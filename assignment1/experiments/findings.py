"""Facts the report's sentences state, computed from results.

Where the wording of the report depends on the results (which setting is best,
whether regularization narrows the gap), the decision is made here, by a tested
function that returns the facts; the notebook only phrases them. A function
returns None where its comparison does not exist (a parameter override left out
the settings it needs), and the notebook then says nothing about it. A setting
some of whose runs diverged is left out of every comparison: its numbers are
those of runs cut short, which the report states apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..data import template_image
from ..plots import mean_std
from .store import RunResult

#: Relative error of the whole gradient below which finite differences explain the gap (float64, h ~ 1e-5).
GRADIENT_TOLERANCE = 1e-5
#: Element-wise relative errors above this are explained when the gradient there is tiny.
ELEMENT_TOLERANCE = 1e-4
#: A learning rate "keeps overshooting" when its validation loss moves this many times more per epoch.
OVERSHOOT_RATIO = 3.0


def final(runs: Sequence[RunResult], key: str) -> float:
    """Mean over ``runs`` of the last recorded value of ``history[key]`` (nan if no run recorded one)."""
    return mean_std([r.history[key][-1] for r in runs if r.history[key]])[0]


def roughness(runs: Sequence[RunResult], key: str) -> float:
    """Mean absolute epoch-to-epoch change of ``history[key]`` over the second half of training, averaged over runs."""
    tails = [r.history[key][len(r.history[key]) // 2:] for r in runs]
    values = [np.abs(np.diff(tail)).mean() for tail in tails if len(tail) > 1]
    return mean_std(values)[0] if values else 0.0


@dataclass(frozen=True)
class GradientCheck:
    """How far the analytic gradients are from the numerical ones, and whether that is rounding."""

    abs_diff_max: float  # largest |analytic - numerical| over W and b
    rel_err: float  # largest ||a - n|| / (||a|| + ||n||) over W and b
    correct: bool  # rel_err below GRADIENT_TOLERANCE
    tiny_gradient_peaks: dict  # parameter -> (max element-wise relative error, |gradient| there), where it exceeds
    #                            ELEMENT_TOLERANCE: a tiny gradient where the cost's rounding dominates


def gradient_check(stats: dict[str, dict]) -> GradientCheck:
    """Facts of :func:`assignment1.gradcheck.check_gradients`'s ``{"W": ..., "b": ...}`` statistics."""
    rel = max(s["rel_err_norm"] for s in stats.values())
    return GradientCheck(
        abs_diff_max=max(s["abs_diff_max"] for s in stats.values()), rel_err=rel, correct=rel < GRADIENT_TOLERANCE,
        tiny_gradient_peaks={k: (s["max_rel_err"], s["grad_at_max_rel_err"]) for k, s in stats.items()
                             if s["max_rel_err"] > ELEMENT_TOLERANCE})


def _by_setting(groups: Sequence[Sequence[RunResult]]) -> dict[tuple[float, float], Sequence[RunResult]]:
    """The groups by ``(lam, eta)``, without those of which a run diverged."""
    return {(g[0].config.lam, g[0].config.eta): g for g in groups if not any(r.diverged for r in g)}


def _test_accuracy(runs: Sequence[RunResult]) -> float:
    return mean_std([r.test["acc"] for r in runs])[0]


@dataclass(frozen=True)
class LearningRateEffect:
    """The largest learning rate against the smallest (of those that did not diverge), at the same lambda where
    there is one."""

    eta_high: float
    eta_low: float
    lam: float  # lambda of the high-rate setting
    roughness_high: float  # see :func:`roughness` of the validation loss
    roughness_low: float
    acc_high: float  # mean test accuracy
    acc_low: float
    overshoots: bool  # the high rate's validation loss moves OVERSHOOT_RATIO times more


def learning_rate_effect(groups: Sequence[Sequence[RunResult]]) -> LearningRateEffect | None:
    """Compare the largest and the smallest learning rate of ``groups`` (one group of seeds per setting), leaving
    out the settings that diverged; None with fewer than two learning rates left."""
    by = _by_setting(groups)
    etas = sorted({eta for _, eta in by})
    if len(etas) < 2:
        return None
    low, high = etas[0], etas[-1]
    k_high = min(k for k in by if k[1] == high)
    k_low = (k_high[0], low) if (k_high[0], low) in by else min(k for k in by if k[1] == low)
    r_high, r_low = roughness(by[k_high], "val_loss"), roughness(by[k_low], "val_loss")
    return LearningRateEffect(eta_high=high, eta_low=low, lam=k_high[0], roughness_high=r_high, roughness_low=r_low,
                              acc_high=_test_accuracy(by[k_high]), acc_low=_test_accuracy(by[k_low]),
                              overshoots=r_high > OVERSHOOT_RATIO * r_low)


@dataclass(frozen=True)
class RegularizationGap:
    """Final training minus validation accuracy, without and with regularization, at the smallest learning rate."""

    eta: float
    gap_without: float  # lambda = 0
    gaps: dict  # lambda > 0 -> its gap, by increasing lambda
    narrows: bool  # every lambda > 0 has a smaller gap than lambda = 0


def regularization_gap(groups: Sequence[Sequence[RunResult]]) -> RegularizationGap | None:
    """The train-validation gap of each lambda at the smallest learning rate; None without lambda 0 and another."""
    by = _by_setting(groups)
    if not by:
        return None
    eta = min(eta for _, eta in by)
    gap = {lam: final(g, "train_acc") - final(g, "val_acc") for (lam, e), g in by.items() if e == eta}
    regularized = {lam: v for lam, v in sorted(gap.items()) if lam > 0}
    if 0.0 not in gap or not regularized:
        return None
    return RegularizationGap(eta=eta, gap_without=gap[0.0], gaps=regularized,
                             narrows=all(v < gap[0.0] for v in regularized.values()))


@dataclass(frozen=True)
class LambdaSweep:
    """Test accuracy as lambda grows, at the smallest learning rate."""

    eta: float
    accuracies: dict  # lambda -> mean test accuracy, by increasing lambda
    best: float  # the lambda with the highest accuracy
    strongest: float  # the largest lambda
    strongest_falls_back: bool  # the largest lambda is not the best


def lambda_sweep(groups: Sequence[Sequence[RunResult]]) -> LambdaSweep | None:
    """Test accuracy by lambda at the smallest learning rate; None with fewer than two lambdas there."""
    by = _by_setting(groups)
    if not by:
        return None
    eta = min(eta for _, eta in by)
    acc = {lam: _test_accuracy(g) for (lam, e), g in sorted(by.items()) if e == eta}
    if len(acc) < 2:
        return None
    best, strongest = max(acc, key=acc.get), max(acc)
    return LambdaSweep(eta=eta, accuracies=acc, best=best, strongest=strongest, strongest_falls_back=best != strongest)


def template_roughness(W: np.ndarray) -> float:
    """Mean absolute difference between neighbouring pixels of ``W: (K, 3072)``'s templates as displayed.

    Lower is smoother; each template is scaled to [0, 1] first, as the report's Figure 2 shows it.
    """
    imgs = np.stack([template_image(w) for w in W])  # (K, 32, 32, 3)
    return float((np.abs(np.diff(imgs, axis=1)).mean() + np.abs(np.diff(imgs, axis=2)).mean()) / 2)


@dataclass(frozen=True)
class TemplateSmoothness:
    """How rough W's class templates look as lambda grows, at the smallest learning rate."""

    eta: float
    roughness: dict  # lambda -> :func:`template_roughness`, by increasing lambda
    smoother_with_lambda: bool  # strictly decreasing


def template_smoothness(runs: Sequence[RunResult]) -> TemplateSmoothness | None:
    """From one run per setting (``W: (K, 3072)`` each)."""
    eta = min(r.config.eta for r in runs)
    rough = {r.config.lam: template_roughness(r.W) for r in sorted(runs, key=lambda r: r.config.lam)
             if r.config.eta == eta}
    if len(rough) < 2:
        return None
    values = list(rough.values())
    return TemplateSmoothness(eta=eta, roughness=rough,
                              smoother_with_lambda=all(b < a for a, b in zip(values, values[1:])))


@dataclass(frozen=True)
class Confusions:
    """The most frequent confusion of a confusion matrix, and the best and worst class."""

    true_class: int  # the most frequent confusion: true_class taken for predicted_class, count times
    predicted_class: int
    count: int
    best_class: int  # by mean per-class accuracy
    worst_class: int


def confusions(C: np.ndarray, class_accuracy: np.ndarray) -> Confusions | None:
    """From ``C: (K, K)`` (rows true, columns predicted) and ``class_accuracy: (K,)``; None if nothing is confused."""
    off = C - np.diag(np.diag(C))
    if not off.any():
        return None
    i, j = np.unravel_index(off.argmax(), off.shape)
    return Confusions(true_class=int(i), predicted_class=int(j), count=int(off[i, j]),
                      best_class=int(np.argmax(class_accuracy)), worst_class=int(np.argmin(class_accuracy)))


@dataclass(frozen=True)
class SearchReach:
    """Whether a search has settled: how far its best trial leads the next, against the seeds' spread."""

    lead: float  # final validation accuracy of the best complete trial minus the second best
    seed_std: float  # std over the seeds of the chosen configuration's final validation accuracy
    settled: bool  # lead below seed_std: the best trials differ by less than a change of seed does


def search_reach(trial_val_accs: Sequence[float], finals: Sequence[RunResult]) -> SearchReach | None:
    """From the complete trials' final validation accuracies and the chosen configuration's runs (one per seed);
    None with fewer than two trials or two seeds."""
    best = sorted(trial_val_accs, reverse=True)[:2]
    _, seed_std, seeds = mean_std([r.history["val_acc"][-1] for r in finals if r.history["val_acc"]])
    if len(best) < 2 or seeds < 2:
        return None
    lead = best[0] - best[1]
    return SearchReach(lead=lead, seed_std=seed_std, settled=lead < seed_std)
