"""The reference report's numbers beside ours: each difference in units of our seed standard deviation, a verdict,
and the glance table that gathers them from every section's tables.

A section declares the reference's numbers in its parameters cell (``reference_table1`` and the like: rows of the
setting's values, then the numbers) and :func:`attach` puts them on the rows of its table; the runner gathers every
row so marked into the glance table (:func:`glance`, :func:`glance_markdown`).
"""

from __future__ import annotations

from collections.abc import Sequence

from .tables import code, difference, markdown_table, text

#: Decimals of the reference's numbers: its tables give two.
DECIMALS = 2
#: Half a unit of the reference's last decimal: its 0.32 stands for anything from 0.315 to 0.325.
ROUNDING = 0.5 * 10 ** -DECIMALS
#: Our seed standard deviations a difference may span (on top of :data:`ROUNDING`) and still read "reproduced".
WITHIN_STD = 2
REPRODUCED, DIFFERS, ONE_SEED, NO_SPREAD = "reproduced", "differs", "one seed: no spread", "no spread"
METRIC_NAMES = {"loss": "loss", "cost": "cost", "acc": "accuracy", "val_acc": "final validation accuracy"}


def _ours(row: dict, metric: str) -> dict:
    """Our ``{"mean", "std", "n"}`` of ``metric`` in ``row``: a test metric, or one the row carries itself."""
    return row["test"][metric] if metric in row.get("test", {}) else row[metric]


def verdict(mean: float, std: float | None, reference: float, rounding: float = ROUNDING) -> tuple[float | None, str]:
    """``(difference_in_std, verdict)`` of our ``mean ± std`` over seeds against the reference's ``reference``.

    ``difference_in_std`` is ``(mean - reference) / std``, None without a spread (``std`` None for one seed, or 0).
    The verdict is "reproduced" when ``|mean - reference| <= WITHIN_STD * std + rounding`` (the reference's number
    stands for anything within its rounding), else "differs"; without a spread there is no yardstick: "one seed: no
    spread" (``std`` None) or "no spread" (``std`` 0).
    """
    if std is None or std == 0:
        return None, ONE_SEED if std is None else NO_SPREAD
    diff = mean - reference
    return diff / std, REPRODUCED if abs(diff) <= WITHIN_STD * std + rounding else DIFFERS


def _same(a, b) -> bool:
    return a == b if isinstance(a, str) or isinstance(b, str) else float(a) == float(b)


def attach(rows: Sequence[dict], reference: Sequence[Sequence], keys: Sequence[str], metrics: Sequence[str], *,
           decimals: int = DECIMALS, **where) -> list[dict]:
    """``rows`` of :func:`assignment1.experiments.stats.summarize`, each matched by a reference row given
    ``reference``, ``difference_in_std`` and ``verdict`` (each by metric).

    A reference row is the values of ``keys`` (``["lam", "eta"]``) then the reference's numbers of ``metrics``
    (``["loss", "cost", "acc"]``); a row matches when its values of ``keys`` are those, and those of ``where``
    (``val_size=1000``) too. Rows no reference row matches are returned as they were. ``decimals``: those the
    reference gives its numbers with (its rounding counts in the verdict).
    """
    out = []
    for row in rows:
        match = next((ref for ref in reference if all(_same(row[k], v) for k, v in zip(keys, ref))
                      and all(_same(row[k], v) for k, v in where.items())), None)
        if match is None:
            out.append(row)
            continue
        numbers = dict(zip(metrics, match[len(keys):]))
        judged = {m: verdict(_ours(row, m)["mean"], _ours(row, m)["std"], v, 0.5 * 10 ** -decimals)
                  for m, v in numbers.items()}
        out.append(dict(row, reference=numbers, reference_decimals=decimals,
                        difference_in_std={m: j[0] for m, j in judged.items()},
                        verdict={m: j[1] for m, j in judged.items()}))
    return out


def numbers(rows: Sequence[dict]) -> list[dict]:
    """One row per reference number of ``rows`` (those :func:`attach` marked): its table, setting, metric, ours
    (``mean``, ``std``, ``n``), ``reference`` (and its ``decimals``), ``difference``, ``difference_in_std`` and
    ``verdict``."""
    out = []
    for row in rows:
        # in the order the tables show them (a record read back from its notebook has its keys sorted)
        for metric in [m for m in METRIC_NAMES if m in row.get("reference", {})]:
            ours, ref = _ours(row, metric), row["reference"][metric]
            out.append({"section": row["section"], "table": row["table"], "setting": row["setting"],
                        "metric": metric, **ours, "reference": ref,
                        "decimals": row.get("reference_decimals", DECIMALS), "difference": ours["mean"] - ref,
                        "difference_in_std": row["difference_in_std"][metric], "verdict": row["verdict"][metric]})
    return out


def glance(tables: dict[str, dict]) -> list[dict]:
    """:func:`numbers` of every table of every section (``{section: {table name: rows}}``), in their order."""
    return [n for section in tables.values() for _, rows in sorted(section.items()) if isinstance(rows, list)
            for n in numbers(rows)]


def comparison_table(numbers_: Sequence[dict], with_table: bool = False) -> str:
    """Rows of :func:`numbers` as a markdown table: ours beside the reference, the difference, in our seed standard
    deviations, and the verdict (``with_table``: a first column naming each number's table)."""
    body = []
    for n in numbers_:
        digits = max(3, n["decimals"] + 1)  # one more than the reference gives
        # no-break spaces: a narrow column would otherwise break "Table 1" and "0.345 ± 0.004" over two lines
        ours = f"{n['mean']:.{digits}f}" + (f"\u00a0±\u00a0{n['std']:.{digits}f}" if n["std"] is not None else "")
        in_std = "-" if n["difference_in_std"] is None else f"{n['difference_in_std']:+.1f}"
        body.append(([text(n["table"]).replace(" ", "\u00a0")] if with_table else []) + [
            text(n["setting"]), METRIC_NAMES[n["metric"]], ours, f"{n['reference']:.{n['decimals']}f}",
            difference(n["difference"], digits), in_std, n["verdict"]])
    header = ["setting", "metric", "ours", "reference", "difference", "in std", "verdict"]
    return markdown_table((["table"] if with_table else []) + header, body)


def count_text(numbers_: Sequence[dict]) -> str:
    """The sentence that counts the verdicts, with the rule: "9 of 12 reference numbers reproduced ..."."""
    if not numbers_:
        return ""
    counts = {v: sum(n["verdict"] == v for n in numbers_) for v in (REPRODUCED, DIFFERS, ONE_SEED, NO_SPREAD)}
    parts = [f"{counts[DIFFERS]} differ{'s' * (counts[DIFFERS] == 1)}"]
    parts += [f"{counts[v]} with {v}" for v in (ONE_SEED, NO_SPREAD) if counts[v]]
    return (f"{counts[REPRODUCED]} of {len(numbers_)} reference numbers reproduced; " + ", ".join(parts) + ". "
            f"A number is reproduced when ours lies within {WITHIN_STD} of our standard deviations over seeds of the "
            f"reference's, plus its rounding: each of its numbers stands for anything within half a unit of its last "
            f"decimal (±{ROUNDING:g} for its tables' {DECIMALS} decimals). One seed gives no standard deviation, hence "
            "no verdict.")


def why_text(numbers_: Sequence[dict], official: bool, init_std: float | None) -> str:
    """What is known of why numbers differ: the data when it is not the official archive, and the settings the
    reference's text leaves open (the initialization's standard deviation, here ``init_std``)."""
    differing = [n for n in numbers_ if n["verdict"] == DIFFERS]
    if not differing:
        return ""
    grouped: dict[str, dict[str, list[str]]] = {}  # table -> setting -> metrics, in the order shown
    for n in differing:
        grouped.setdefault(n["table"], {}).setdefault(n["setting"], []).append(METRIC_NAMES[n["metric"]])
    which = "; ".join(f"{text(table)}: " + ", ".join(f"{text(setting)} ({', '.join(metrics)})"
                                                     for setting, metrics in settings.items())
                      for table, settings in grouped.items())
    data = ("The data is the official CIFAR-10, as the reference's. " if official else
            "The data is not the official CIFAR-10 archive (see Provenance: its checksums differ), so its images are "
            "not the reference's and its numbers need not be; on the official archive they may agree. ")
    open_settings = ("The reference's text does not give the standard deviation of its initial weights"
                     + (f" (here {code(f'init_std = {init_std:g}')})" if init_std is not None else "")
                     + ", nor whether its z-scoring is per feature (as here) or global, nor the order its samples "
                     "are shuffled in; each changes a run's numbers.")
    return f"**Why numbers differ.** Differing: {which}. {data}{open_settings}"


def glance_markdown(numbers_: Sequence[dict], official: bool, init_std: float | None) -> str:
    """The report's opening section: every reference number beside ours, counted (:func:`count_text`), with what
    is known of why some differ; empty without any."""
    if not numbers_:
        return ""
    parts = ["# Reproduction at a glance", count_text(numbers_),
             "**Every number of the reference report beside ours:** test metrics, ours the mean ± standard deviation "
             "over seeds.", comparison_table(numbers_, with_table=True), why_text(numbers_, official, init_std)]
    return "\n\n".join(p for p in parts if p)


def summary(numbers_: Sequence[dict]) -> dict:
    """The glance for ``summary.json``: its rows and counts."""
    return {"rows": list(numbers_), "numbers": len(numbers_),
            "reproduced": sum(n["verdict"] == REPRODUCED for n in numbers_), "text": count_text(numbers_)}


def beside_markdown(rows: Sequence[dict], source: str) -> str:
    """Under a section's table: the reference's numbers (from ``source``, where the reference gives them) beside
    ours, as :func:`comparison_table`, and their count; empty when no row of ``rows`` has a reference number."""
    marked = numbers(rows)
    if not marked:
        return ""
    return (f"**Beside the reference:** {text(source)}; ours the mean ± standard deviation over seeds, the difference "
            f"also in our standard deviations.\n\n{comparison_table(marked)}\n\n{count_text(marked)}")
