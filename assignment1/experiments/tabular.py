"""The one table writer: the report's tables in Markdown, the explorer's in HTML."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

_CELL = "padding:2px 12px 2px 0;text-align:left"


def table(header: Sequence, rows: Sequence[Sequence], html_class: str | None = None) -> str:
    """``rows`` under ``header`` as a Markdown table, whose cells are Markdown (a value a user or a file gives goes
    in through :func:`assignment1.report.tables.cell` or ``text``), or with ``html_class`` as an HTML table of that
    class, whose cells are text (escaped here).

    The Markdown separator's dashes follow each column's widest cell, which pandoc (the PDF route) turns into
    relative column widths when the table is wider than a line.
    """
    cells = [[str(c) for c in header], *([str(c) for c in row] for row in rows)]
    if html_class is not None:
        head = "".join(f"<th style='{_CELL};border-bottom:1px solid #999'>{escape(c)}</th>" for c in cells[0])
        body = "".join("<tr>" + "".join(f"<td style='{_CELL}'>{escape(c)}</td>" for c in r) + "</tr>"
                       for r in cells[1:])
        return f"<table class='{html_class}' style='border-collapse:collapse'><tr>{head}</tr>{body}</table>"
    widths = [max(8, min(30, max(len(r[i]) for r in cells))) for i in range(len(header))]
    lines = ["| " + " | ".join(cells[0]) + " |", "|" + "|".join("-" * w for w in widths) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in cells[1:]])
