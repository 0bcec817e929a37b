"""The report's tables and the sentences that summarize them, as markdown, from the rows of
:mod:`assignment1.experiments.stats` (which are also what ``summary.json`` records)."""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

from ..experiments.stats import METRICS
from ..experiments.tabular import table as markdown_table  # the one table writer, here for Markdown

_PUNCTUATION = re.compile("([" + re.escape(string.punctuation) + "])")
_LINE_BREAK = re.compile(r"\r\n|[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]")


def text(value) -> str:
    """``str(value)`` as Markdown that pandoc reads back as exactly that text: never markup, math or HTML.

    Every ASCII punctuation character is backslash-escaped (pandoc's Markdown lets any be), which also keeps
    pandoc's smart quotes and dashes away; a line break, which would end a paragraph or a table row, becomes a
    space. Every value a user or a file gives (a path, a URL, a name) goes into the report's Markdown through
    here, or through :func:`code`; pandoc then escapes it for HTML and for Typst itself.
    """
    return _PUNCTUATION.sub(r"\\\1", _LINE_BREAK.sub(" ", str(value)))


def code(value) -> str:
    """``str(value)`` as a Markdown code span showing exactly that text: its backtick fence is longer than any run
    of backticks inside (pandoc ends a code span at a run as long as its fence)."""
    content = _LINE_BREAK.sub(" ", str(value))
    fence = "`" * (1 + max((len(run) for run in re.findall("`+", content)), default=0))
    pad = " " if content.startswith("`") or content.endswith("`") else ""
    return f"{fence}{pad}{content}{pad}{fence}"


def seeds_text(seeds: Sequence[int]) -> str:
    """``5 seeds (0, 1, 2, 3, 4)``, or ``1 seed (0)``."""
    return f"{len(seeds)} seed{'s' * (len(seeds) != 1)} ({', '.join(map(str, seeds))})"


def mean_std_text(stat: dict, digits: int = 3) -> str:
    """A ``{"mean", "std"}`` statistic as ``mean ± std`` (the mean alone for one value)."""
    if stat["mean"] is None:
        return "n/a"
    if stat["std"] is None:
        return f"{stat['mean']:.{digits}f}"
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def cell(value) -> str:
    """A table cell as a reader writes it: ``0.001``, ``45,000``, ``yes``/``no``, ``-`` for nothing, and any other
    value as its text (:func:`text`), never markup."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int):
        return f"{value:,}"
    return text(value) or "-"


def difference(value: float, digits: int = 3) -> str:
    """A signed difference, ``+0.011``; one that would round to zero keeps its first digit (``-0.0003``), so that
    no sign stands before a zero; none at all is ``0.000``."""
    if value == 0:
        return f"{0:.{digits}f}"
    if round(abs(value), digits) > 0:
        return f"{value:+.{digits}f}"
    first_digit = int(f"{value:.0e}".split("e")[1])  # its power of ten, as rounded to one digit
    return f"{value:+.{-first_digit}f}"


def results_table(rows: Sequence[dict], columns: Sequence[tuple[str, str]] | None = None) -> str:
    """Rows of :func:`summarize` as a markdown table: ``columns`` ((header, row key) pairs), then the test metrics."""
    columns = columns or [("λ", "lam"), ("η", "eta")]
    body = [[cell(r[k]) for _, k in columns] + [mean_std_text(r["test"][m]) for m in METRICS]
            + [f"{r['test']['acc']['n']}" + (f" ({r['n_diverged']} diverged)" * bool(r["n_diverged"]))] for r in rows]
    return markdown_table([h for h, _ in columns] + ["Loss", "Cost", "Accuracy", "Runs"], body)


#: Decimals of accuracies set side by side with their difference (one test image in 10,000 is 0.0001)
COMPARED_DIGITS = 4


def compared(a: float, b: float) -> tuple[str, str, str]:
    """Accuracies ``a``, ``b`` and ``b - a`` as the report sets them side by side, to :data:`COMPARED_DIGITS`.

    The difference is that of the values shown, so that it reads off them (rounded apart, 0.40621 and 0.41766
    would show as 0.406 and 0.418 beside +0.011); where they show equal, the exact one says which is higher.
    """
    a_text, b_text = f"{a:.{COMPARED_DIGITS}f}", f"{b:.{COMPARED_DIGITS}f}"
    return a_text, b_text, difference(float(b_text) - float(a_text) if a_text != b_text else b - a, COMPARED_DIGITS)


def _compared(row: dict) -> tuple[str, str, str]:
    return compared(row["acc_a"]["mean"], row["acc_b"]["mean"])


def significance_markdown(rows: Sequence[dict]) -> str:
    """Significance rows as a markdown table."""
    body = [[cell(r["comparison"]), *_compared(r), "n/a" if r["paired_t"]["p"] is None else f"{r['paired_t']['p']:.3g}",
             f"{r['mcnemar_significant']} of {r['n_seeds']}", cell(r["significant"])] for r in rows]
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

    def listing(group):
        return "; ".join(f"{text(r['comparison'])} ({_compared(r)[2]})" for r in group) + "."

    judged = f"Judged by {rule} at the {alpha:.0%} level, "
    if not yes:
        return judged + "not significant: " + listing(no)
    return judged + "significant: " + listing(yes) + (" Not significant: " + listing(no) if no else "")


GRADIENT_STATISTICS = [("abs_diff_mean", "mean abs. diff"), ("abs_diff_std", "std abs. diff"),
                       ("abs_diff_max", "max abs. diff"), ("grad_min", "grad min"), ("grad_max", "grad max"),
                       ("grad_std", "grad std"), ("max_rel_err", "max rel. err"), ("rel_err_norm", "rel. err (norm)")]


def gradient_check_table(check: dict[str, dict]) -> str:
    """:func:`assignment1.gradcheck.check_gradients`'s statistics as a table: one row per statistic, W and b."""
    return markdown_table(["statistic", *check], [[label, *(f"{s[key]:.2e}" for s in check.values())]
                                                  for key, label in GRADIENT_STATISTICS])


def search_table(ranked: Sequence[dict]) -> str:
    """The rows of :func:`assignment1.experiments.search.table` as a markdown table."""
    body = [[r["rank"], r["trial"], f"{r['lam']:.3g}", cell(r["eta_text"]), r["n_batch"], r["n_epochs"],
             cell(r["flip"]), f"{r['average']:g}" if r["average"] else "-", f"{r['val_acc']:.4f}"]
            for r in ranked]
    return markdown_table(["rank", "trial", "λ", "η", "batch", "epochs", "flip", "average", "val. accuracy"], body)


def per_class_table(rows: Sequence[dict]) -> str:
    """:func:`per_class` rows as a markdown table, best class first."""
    ordered = sorted(rows, key=lambda r: -r["acc"]["mean"])
    return markdown_table(["class", "accuracy"], [[cell(r["class"]), mean_std_text(r["acc"])] for r in ordered])
