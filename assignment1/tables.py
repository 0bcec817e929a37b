"""Report tables: rows aggregated over seeds, as markdown and as JSON records.

A section records each of its tables under ``reports/tables/<section>/<name>.json``;
the report runner merges them into ``reports/summary.json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from . import config
from .experiments import RunResult
from .files import write_atomic
from .stats import mean_std

METRICS = ("loss", "cost", "acc")


def group_by_setting(results: Iterable[RunResult]) -> list[list[RunResult]]:
    """Results grouped by everything but the seed, in order of first appearance."""
    groups: dict[str, list[RunResult]] = {}
    for r in results:
        groups.setdefault(r.config.without_seed(), []).append(r)
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
            "test": {m: mean_std([r.test[m] for r in group]) for m in METRICS},
            "diverged": any(r.diverged for r in group),
            "n_diverged": sum(r.diverged for r in group),
        })
    return rows


def final(runs: Sequence[RunResult], key: str) -> float:
    """Mean over ``runs`` of the last recorded value of ``history[key]`` (nan if no run recorded one)."""
    last = [r.history[key][-1] for r in runs if r.history[key]]
    return sum(last) / len(last) if last else float("nan")


def roughness(runs: Sequence[RunResult], key: str) -> float:
    """Mean absolute epoch-to-epoch change of ``history[key]`` over the second half of training, averaged over runs."""
    values = []
    for r in runs:
        h = r.history[key]
        tail = h[len(h) // 2:]
        if len(tail) > 1:
            values.append(sum(abs(b - a) for a, b in zip(tail, tail[1:])) / (len(tail) - 1))
    return sum(values) / len(values) if values else 0.0


def simple(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A plain markdown table.

    The separator's dashes follow each column's widest cell, which pandoc (the PDF
    route) turns into relative column widths when the table is wider than a line.
    """
    cells = [[str(c) for c in header], *([str(c) for c in row] for row in rows)]
    widths = [max(8, min(30, max(len(r[i]) for r in cells))) for i in range(len(header))]
    lines = ["| " + " | ".join(cells[0]) + " |", "|" + "|".join("-" * w for w in widths) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in cells[1:]]
    return "\n".join(lines)


def fmt(stat: dict, digits: int = 3) -> str:
    """``mean $\\pm$ std`` (or the mean alone for one value)."""
    if stat["mean"] is None:
        return "n/a"
    if stat["std"] is None:
        return f"{stat['mean']:.{digits}f}"
    return f"{stat['mean']:.{digits}f} $\\pm$ {stat['std']:.{digits}f}"


def markdown(rows: Sequence[dict], columns: Sequence[tuple[str, str]] | None = None) -> str:
    """A markdown table of summary rows. ``columns``: (header, row key) pairs shown before the metrics."""
    columns = columns or [(r"$\lambda$", "lam"), (r"$\eta$", "eta")]
    body = []
    for r in rows:
        cells = [f"{r[k]:g}" if isinstance(r[k], float) else str(r[k]) for _, k in columns]
        cells = [c if c else "-" for c in cells]
        runs = f"{r['test']['acc']['n']}"
        if r["n_diverged"]:
            runs += f" ({r['n_diverged']} diverged)"
        body.append(cells + [fmt(r["test"][m]) for m in METRICS] + [runs])
    return simple([h for h, _ in columns] + ["Loss", "Cost", "Accuracy", "Runs"], body)


def record(section: str, name: str, rows: list[dict] | dict, reports_dir=None) -> Path:
    """Write one table of a section to ``reports/tables/<section>/<name>.json`` atomically."""
    directory = config.reports_dir(reports_dir) / "tables" / section
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


def significance_markdown(rows: Sequence[dict]) -> str:
    """Significance rows as a markdown table."""
    body = []
    for r in rows:
        t = r["paired_t"]
        body.append([r["comparison"], f"{r['acc_a']['mean']:.3f}", f"{r['acc_b']['mean']:.3f}", f"{r['diff']:+.3f}",
                     "n/a" if t["p"] is None else f"{t['p']:.3g}",
                     f"{r['mcnemar_significant']} of {r['n_seeds']}",
                     "yes" if r["significant"] else "no"])
    return simple(["comparison", "accuracy A", "accuracy B", "B - A", "paired t p", "McNemar p < 0.05 (seeds)",
                   "significant"], body)


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
