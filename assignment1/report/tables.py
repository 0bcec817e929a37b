"""Report tables: rows aggregated over seeds, as markdown and as JSON records.

A section records each of its tables under ``reports/tables/<section>/<name>.json``;
the report runner merges them into ``reports/summary.json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from .. import config
from ..files import write_atomic
from . import stats
from .runs import RunResult

METRICS = ("loss", "cost", "acc")


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
            "section": section,
            "table": table,
            "setting": c.label,
            "lam": c.lam,
            "eta": c.eta,
            "loss": c.loss,
            "flip": c.flip,
            "val_size": c.val_size,
            "n_epochs": c.n_epochs,
            "n_batch": c.n_batch,
            "schedule": c.to_dict()["schedule"],
            "eta_text": c.eta_text,
            "seeds": [r.config.seed for r in group],
            "test": {m: stats.mean_std([r.test[m] for r in group]) for m in METRICS},
            "diverged": any(r.diverged for r in group),
            "n_diverged": sum(r.diverged for r in group),
        })
    return rows


def seeds_text(seeds: Sequence[int]) -> str:
    """``5 seeds (0, 1, 2, 3, 4)``, or ``1 seed (0)``."""
    return f"{len(seeds)} seed{'s' * (len(seeds) != 1)} ({', '.join(map(str, seeds))})"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A plain markdown table.

    The separator's dashes follow each column's widest cell, which pandoc (the PDF
    route) turns into relative column widths when the table is wider than a line.
    """
    cells = [[str(c) for c in header], *([str(c) for c in row] for row in rows)]
    widths = [max(8, min(30, max(len(r[i]) for r in cells))) for i in range(len(header))]
    lines = ["| " + " | ".join(cells[0]) + " |", "|" + "|".join("-" * w for w in widths) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in cells[1:]]
    return "\n".join(lines)


def mean_std_text(stat: dict, digits: int = 3) -> str:
    """A ``{"mean", "std"}`` statistic as ``mean ± std`` (the mean alone for one value)."""
    if stat["mean"] is None:
        return "n/a"
    if stat["std"] is None:
        return f"{stat['mean']:.{digits}f}"
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def results_table(rows: Sequence[dict], columns: Sequence[tuple[str, str]] | None = None) -> str:
    """Rows of :func:`summarize` as a markdown table: ``columns`` ((header, row key) pairs), then the test metrics."""
    columns = columns or [("λ", "lam"), ("η", "eta")]
    body = []
    for r in rows:
        cells = [f"{r[k]:g}" if isinstance(r[k], float) else str(r[k]) for _, k in columns]
        cells = [c if c else "-" for c in cells]
        runs = f"{r['test']['acc']['n']}"
        if r["n_diverged"]:
            runs += f" ({r['n_diverged']} diverged)"
        body.append(cells + [mean_std_text(r["test"][m]) for m in METRICS] + [runs])
    return markdown_table([h for h, _ in columns] + ["Loss", "Cost", "Accuracy", "Runs"], body)


def record(section: str, name: str, rows: list[dict] | dict, reports_dir=None) -> Path:
    """Write one table of a section to ``<output dir>/tables/<section>/<name>.json`` atomically."""
    directory = config.output_dir(reports_dir) / "tables" / section
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    write_atomic(path, json.dumps(rows, indent=2, sort_keys=True) + "\n")
    return path


def significance_row(section: str, comparison: str, a: str, b: str, result: dict) -> dict:
    """A summary record of :func:`assignment1.stats.compare_runs`: B against A."""
    t = result["paired_t"]
    n = len(result["mcnemar"])
    significant = result["t_significant"] if t["p"] is not None else result["mcnemar_significant"] == n
    return {
        "section": section, "table": "significance", "comparison": comparison, "a": a, "b": b,
        "acc_a": result["acc_a"], "acc_b": result["acc_b"],
        "diff": result["acc_b"]["mean"] - result["acc_a"]["mean"],
        "paired_t": t, "mcnemar": result["mcnemar"], "mcnemar_significant": result["mcnemar_significant"],
        "n_seeds": n, "alpha": result["alpha"], "significant": bool(significant),
    }


def compare(section: str, comparison: str, a: str, b: str, runs_a: Sequence[RunResult],
            runs_b: Sequence[RunResult], y: np.ndarray) -> dict:
    """One significance row: the runs of B against those of A, paired by seed, on the test labels ``y: (n,)``."""
    return significance_row(section, comparison, a, b, stats.compare_runs(runs_a, runs_b, y))


def compare_each_setting(section: str, what: str, a: str, b: str, groups_a: Sequence[Sequence[RunResult]],
                         groups_b: Sequence[Sequence[RunResult]], y: np.ndarray) -> list[dict]:
    """:func:`compare` for each pair of settings (groups of seeds) in turn, labelled with ``what`` and the setting."""
    rows = []
    for ga, gb in zip(groups_a, groups_b):
        c = ga[0].config
        label = f"{what}, λ={c.lam:g}, η={c.eta:g}" if c.schedule is None else what
        rows.append(compare(section, label, a, b, ga, gb, y))
    return rows


def significance_markdown(rows: Sequence[dict]) -> str:
    """Significance rows as a markdown table."""
    body = []
    for r in rows:
        t = r["paired_t"]
        body.append([r["comparison"], f"{r['acc_a']['mean']:.3f}", f"{r['acc_b']['mean']:.3f}", f"{r['diff']:+.3f}",
                     "n/a" if t["p"] is None else f"{t['p']:.3g}",
                     f"{r['mcnemar_significant']} of {r['n_seeds']}",
                     "yes" if r["significant"] else "no"])
    return markdown_table(["comparison", "accuracy A", "accuracy B", "B - A", "paired t p",
                           "McNemar p < 0.05 (seeds)", "significant"], body)


def significance_text(rows: Sequence[dict]) -> str:
    """Sentences saying which differences are significant at the 5% level, from the numbers."""
    if not rows:
        return ""
    alpha = rows[0]["alpha"]
    yes = [r for r in rows if r["significant"]]
    no = [r for r in rows if not r["significant"]]
    rule = ("a paired t-test over seeds" if rows[0]["paired_t"]["p"] is not None
            else "McNemar's exact test (one seed only)")
    parts = [f"Judged by {rule} at the {alpha:.0%} level:"]
    if yes:
        parts.append("significant: " + "; ".join(f"{r['comparison']} ({r['diff']:+.3f})" for r in yes) + ".")
    if no:
        parts.append("not significant: " + "; ".join(f"{r['comparison']} ({r['diff']:+.3f})" for r in no) + ".")
    return " ".join(parts)


GRADIENT_STATISTICS = [("abs_diff_mean", "mean abs. diff"), ("abs_diff_std", "std abs. diff"),
                       ("abs_diff_max", "max abs. diff"), ("grad_min", "grad min"), ("grad_max", "grad max"),
                       ("grad_std", "grad std"), ("max_rel_err", "max rel. err"), ("rel_err_norm", "rel. err (norm)")]


def gradient_check_table(check: dict[str, dict]) -> str:
    """:func:`assignment1.gradcheck.check_gradients`'s statistics as a table: one row per statistic, W and b."""
    return markdown_table(["", *check], [[label, *(f"{s[key]:.2e}" for s in check.values())]
                                         for key, label in GRADIENT_STATISTICS])


def search_table(ranked: Sequence[dict]) -> str:
    """The rows of :func:`assignment1.report.search.table` as a markdown table."""
    body = [[r["rank"], f"{r['lam']:.3g}", f"{r['eta']:.3g}", r["n_batch"], "yes" if r["flip"] else "no",
             "yes" if r["schedule"] else "no", "diverged" if r["diverged"] else f"{r['val_acc']:.4f}",
             "" if r["diverged"] else f"{r['val_loss']:.4f}"] for r in ranked]
    return markdown_table(["rank", "λ", "η", "batch", "flip", "decay", "val. accuracy",
                           "val. loss"], body)


def per_class(section: str, class_names: Sequence[str], accuracy: np.ndarray) -> list[dict]:
    """Rows of per-class test accuracy, ``accuracy: (runs, classes)``, as mean and std over the runs."""
    return [{"section": section, "table": "Table 7", "class": name, "acc": stats.mean_std(accuracy[:, k])}
            for k, name in enumerate(class_names)]


def per_class_table(rows: Sequence[dict]) -> str:
    """:func:`per_class` rows as a markdown table, best class first."""
    ordered = sorted(rows, key=lambda r: -r["acc"]["mean"])
    return markdown_table(["class", "accuracy"], [[r["class"], mean_std_text(r["acc"])] for r in ordered])
