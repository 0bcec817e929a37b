"""Figures of the report, drawn from returned histories and weights (nothing is recomputed).

A "run" here is anything with a ``history`` dict as :func:`assignment1.train.train`
returns it (a :class:`~assignment1.train.TrainResult`, or a stored run of the report).

Every figure is at most :data:`MAX_WIDTH` inches wide, the width of the report's
text on A4 and Letter, so it prints at its own size, and no text in it is smaller
than :data:`MIN_FONT` points. Each figure takes :data:`STYLE` as it is drawn
(:func:`styled`); matplotlib's global settings are left alone. The report's
notebooks show figures as PNGs at twice the screen resolution ("retina"): sharp
on screen, and 200 pixels per inch on paper.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .data import template_image
from .page import DPI, MAX_WIDTH

PANELS = (("loss", "Loss"), ("cost", "Cost"), ("acc", "Accuracy"))
COLORS = {"train": "tab:blue", "val": "tab:orange"}
MIN_FONT = 7.0  # points
STYLE = {"figure.dpi": DPI, "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 7,
         "ytick.labelsize": 7, "legend.fontsize": 7, "figure.titlesize": 9}


def styled(draw):
    """``draw`` making its figure in :data:`STYLE`, leaving matplotlib's global settings as they were."""
    @functools.wraps(draw)
    def drawn(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            fig = draw(*args, **kwargs)
        for ax in fig.axes:  # ticks are made, and spaced by their labels' size, when it is shown: after the context
            ax.tick_params("x", labelsize=STYLE["xtick.labelsize"])
            ax.tick_params("y", labelsize=STYLE["ytick.labelsize"])
        return fig
    return drawn


def mean_std(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (ddof 1) and number of ``values`` (one per run, e.g. per seed).

    The mean is nan without values, the std nan with fewer than two; the sums are exactly rounded
    (``math.fsum``), so the order of the runs does not change them.
    """
    xs = [float(v) for v in values]
    n = len(xs)
    mean = math.fsum(xs) / n if n else math.nan
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else math.nan
    return mean, std, n


def _figure(rows: int, cols: int, width: float, height: float) -> tuple[Figure, np.ndarray]:
    """A figure of ``rows x cols`` axes (a 2-d array), outside pyplot: safe in any thread, shown when returned."""
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots(rows, cols, squeeze=False)


def curve_stats(runs: Sequence, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Epochs ``(n,)``, and mean and std ``(n,)`` over ``runs`` of ``history[key]`` (:func:`mean_std`; std 0 where
    one run reached the epoch).

    Runs that stopped early (diverged) contribute to the epochs they completed.
    """
    n = max(len(r.history[key]) for r in runs)  # 0 if every run diverged in its first epoch
    mean, std, count = np.array([mean_std([r.history[key][e] for r in runs if e < len(r.history[key])])
                                 for e in range(n)], dtype=float).reshape(n, 3).T
    return np.arange(1, n + 1), mean, np.where(count > 1, std, 0.0)


def _band(ax, runs, key, label, color, linestyle="-"):
    x, mean, std = curve_stats(runs, key)
    ax.plot(x, mean, color=color, linestyle=linestyle, label=label, linewidth=1.2)
    ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)


def _epochs_axis(ax) -> None:
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)


@styled
def history_figure(groups: Sequence[Sequence], titles: Sequence[str], panels=PANELS) -> Figure:
    """One row per group of runs (the seeds of one setting), titled ``titles[i]``, one column per quantity:
    training and validation curves.

    Lines are the mean over the group; bands are ± one std (absent for a single run).
    """
    fig = Figure(figsize=(MAX_WIDTH, 0.4 + 1.8 * len(groups)), layout="constrained")
    # a row title, not the setting in every panel's title: a long one (a schedule) would run into its neighbours
    for row, runs, title in zip(fig.subfigures(len(groups), 1, squeeze=False)[:, 0], groups, titles):
        row.suptitle(title)
        axes = row.subplots(1, len(panels))
        for ax, (key, name) in zip(axes, panels):
            for split in ("train", "val"):
                _band(ax, runs, f"{split}_{key}", {"train": "training", "val": "validation"}[split], COLORS[split])
            ax.set_title(name)
            _epochs_axis(ax)
        axes[0].legend()
    return fig


@styled
def weights_figure(Ws: Sequence[np.ndarray], titles: Sequence[str], class_names: Sequence[str]) -> Figure:
    """Each ``W: (K, 3072)`` as a row of K class templates, labelled with class names; ``titles`` label the rows."""
    K = Ws[0].shape[0]
    fig, axes = _figure(len(Ws), K, MAX_WIDTH, 0.25 + 0.6 * len(Ws))
    fig.get_layout_engine().set(w_pad=0.01, h_pad=0.01, wspace=0.02, hspace=0.02)
    for row, W, title in zip(axes, Ws, titles):
        for k, ax in enumerate(row):
            ax.imshow(template_image(W[k]), interpolation="nearest")
            ax.set(xticks=[], yticks=[])
        row[0].set_ylabel(title, rotation=0, ha="right", va="center", fontsize=MIN_FONT)
    for k, ax in enumerate(axes[0]):
        ax.set_title(class_names[k], fontsize=MIN_FONT, parse_math=False)  # a name, never TeX: it comes from the data
    return fig


@styled
def p_true_histograms(models: dict[str, tuple[np.ndarray, np.ndarray]], y: np.ndarray, bins: int = 20) -> Figure:
    """Histograms of the probability given to the true class, correct and incorrect test examples apart.

    ``models`` maps a model name to ``(predicted labels: (n,), probability of the true class: (n,))``;
    ``y: (n,)`` are the true labels.
    """
    fig, axes = _figure(1, len(models), MAX_WIDTH, 2.5)
    edges = np.linspace(0, 1, bins + 1)
    for ax, (name, (pred, p_true)) in zip(axes[0], models.items()):
        correct = pred == y
        ax.hist(p_true[correct], bins=edges, alpha=0.6, label=f"correct ({correct.sum()})")
        ax.hist(p_true[~correct], bins=edges, alpha=0.6, label=f"incorrect ({(~correct).sum()})")
        ax.set(title=name, xlabel="probability of the true class", ylabel="test examples")
        ax.legend()
    return fig


@styled
def curves_figure(groups: dict[str, Sequence], key: str = "loss", ylabel: str = "loss") -> Figure:
    """Training (solid) and validation (dashed) ``key`` curves of several models, each in its own panel."""
    fig, axes = _figure(1, len(groups), MAX_WIDTH, 2.4)
    for ax, (name, runs) in zip(axes[0], groups.items()):
        _band(ax, runs, f"train_{key}", "training", COLORS["train"])
        _band(ax, runs, f"val_{key}", "validation", COLORS["val"], "--")
        ax.set(title=name, ylabel=ylabel)
        _epochs_axis(ax)
        ax.legend()
    return fig


@styled
def confusion_figure(C: np.ndarray, class_names: Sequence[str]) -> Figure:
    """The confusion matrix as rates per true class, with the counts written in."""
    rates = C / np.maximum(C.sum(axis=1, keepdims=True), 1)
    fig, axes = _figure(1, 1, 5.2, 4.4)
    ax = axes[0, 0]
    im = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    K = len(class_names)
    ax.set_xticks(range(K), class_names, rotation=45, ha="right", parse_math=False)  # names, never TeX
    ax.set_yticks(range(K), class_names, parse_math=False)
    ax.set(xlabel="predicted class", ylabel="true class")
    for i in range(K):
        for j in range(K):
            ax.text(j, i, str(C[i, j]), ha="center", va="center", fontsize=MIN_FONT,
                    color="white" if rates[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of the true class")
    return fig


@styled
def search_figure(finals: Sequence[tuple[int, str, float | None]], curves: Sequence[tuple[int, str, Sequence]],
                  importances: dict[str, float]) -> Figure:
    """A search in three panels: each trial's final validation accuracy with the best so far (``finals``:
    ``(trial, state, value)``), every trial's validation accuracy as its epochs went, pruned ones in grey
    (``curves``: ``(trial, state, [(percent of its epochs done, value)])``), and how much each parameter
    explains (``importances``)."""
    fig, axes = _figure(1, 3, MAX_WIDTH, 2.4)
    ax = axes[0, 0]
    for state, marker in (("complete", "o"), ("pruned", "x")):
        done = [(n, v) for n, s, v in finals if s == state and v is not None]
        ax.plot([n for n, _ in done], [v for _, v in done], marker, markersize=3, linestyle="none", label=state)
    best = np.maximum.accumulate([v if s == "complete" and v is not None else -np.inf for _, s, v in finals])
    ax.step([n for n, _, _ in finals], best, where="post", color="black", linewidth=1, label="best so far")
    ax.set(xlabel="trial", ylabel="validation accuracy")
    ax.legend()
    ax = axes[0, 1]
    for _, state, points in curves:
        ax.plot([x for x, _ in points], [v for _, v in points], color="0.7" if state == "pruned" else "tab:blue",
                linewidth=0.8)
    ax.set_xlabel("% of the trial's epochs")
    ax.grid(alpha=0.3)
    ax = axes[0, 2]
    names = list(importances)[::-1]
    ax.barh(names, [importances[n] for n in names])
    ax.set_xlabel("importance")
    return fig


@styled
def image_grid(images: np.ndarray, titles: Sequence[str], cols: int = 8) -> Figure:
    """``images: (n, 32, 32, 3)`` uint8 in a grid, each with its title."""
    rows = max(1, -(-len(images) // cols))
    fig, axes = _figure(rows, cols, MAX_WIDTH, 1.15 * rows)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, img, title in zip(axes.ravel(), images, titles):
        ax.imshow(img, interpolation="nearest")
        ax.set_title(title, fontsize=MIN_FONT, linespacing=1.1, parse_math=False)  # class names, never TeX
    return fig
