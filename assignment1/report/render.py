"""The report as one Markdown document, rendered to self-contained HTML and to PDF, with no TeX.

The combined notebook becomes Markdown: markdown cells as they are, markdown
outputs (tables, computed sentences) as text, figures as PNG files. A figure
is joined with the caption cell that follows it (``**Figure N:** ...``), a
table with the bold caption paragraph that precedes it, so that each caption
stays with its figure or table on the page. pandoc (from the
``pypandoc-binary`` wheel) turns the Markdown into HTML with MathML and every
image embedded, and into Typst, which the ``typst`` wheel compiles to PDF.
"""

from __future__ import annotations

import base64
import datetime
import json
import re
import subprocess
import tempfile
from pathlib import Path

import nbformat
import pypandoc
import typst

from ..page import DPI, MAX_WIDTH

TEMPLATES = Path(__file__).resolve().parent / "templates"
PAPERS = {"a4": "a4", "letter": "us-letter"}
FIGURE_CAPTION = re.compile(r"^\*\*Figure \d+:\*\*")
TABLE_CAPTION = re.compile(r"^\*\*[^*\n]+[:.]\*\*")  # "**Table 1:** ...", "**Gradient check.** ..."


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _fenced(text: str, language: str = "") -> str:
    """``text`` as a fenced code block, its fence longer than any run of backticks inside (which would end it)."""
    fence = "`" * max(3, 1 + max(map(len, re.findall("`+", text)), default=0))
    return f"{fence}{language}\n{text}\n{fence}"


def _blocks(nb: nbformat.NotebookNode, show_code: bool) -> list[tuple[str, object]]:
    """The document in order, as ``("md", text)``, ``("table", text)``, ``("image", (png, width in inches))``."""
    out: list[tuple[str, object]] = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            out += [("md", p) for p in _paragraphs(cell.source)]
            continue
        if cell.cell_type != "code":
            continue
        if show_code and cell.source.strip():
            out.append(("md", _fenced(cell.source.strip(), "python")))
        for o in cell.get("outputs", []):
            if o.output_type == "stream" and o.name == "stdout" and o.text.strip():
                out.append(("md", _fenced(o.text.rstrip())))
            elif o.output_type in ("display_data", "execute_result"):
                data = o.get("data", {})
                if "text/markdown" in data:
                    for p in _paragraphs(data["text/markdown"]):
                        out.append(("table" if p.startswith("|") else "md", p))
                elif "image/png" in data:
                    css_width = o.get("metadata", {}).get("image/png", {}).get("width")  # retina: CSS pixels
                    width = min(MAX_WIDTH, css_width / DPI) if css_width else MAX_WIDTH
                    out.append(("image", (base64.b64decode(data["image/png"]), width)))
    return out


def to_markdown(nb: nbformat.NotebookNode, image_dir: Path, show_code: bool = False) -> str:
    """The notebook as pandoc Markdown; its images are written to ``image_dir`` as ``figure-N.png``."""
    blocks = _blocks(nb, show_code)
    parts, used = [], set()
    for i, (kind, value) in enumerate(blocks):
        if i in used:
            continue
        if kind == "image":
            png, width = value
            path = image_dir / f"figure-{i}.png"
            path.write_bytes(png)
            caption = ""
            if i + 1 < len(blocks) and blocks[i + 1][0] == "md" and FIGURE_CAPTION.match(blocks[i + 1][1]):
                caption = _one_line(blocks[i + 1][1])
                used.add(i + 1)
            parts.append(f"![{caption}]({path.name}){{width={width:.2f}in}}")
        elif kind == "md" and TABLE_CAPTION.match(value) and i + 1 < len(blocks) and blocks[i + 1][0] == "table":
            parts.append(f"{blocks[i + 1][1]}\n\n: {_one_line(value)}")
            used.add(i + 1)
        else:
            parts.append(value)
    return "\n\n".join(parts) + "\n"


def _pandoc(markdown: str, to: str, template: str, metadata: dict, resource_dir: Path, *extra: str) -> str:
    header = "---\n" + "".join(f"{k}: {json.dumps(v)}\n" for k, v in metadata.items() if v) + "---\n\n"
    result = subprocess.run(
        [pypandoc.get_pandoc_path(), "--from", "markdown", "--to", to, "--standalone",
         "--template", str(TEMPLATES / template), "--resource-path", str(resource_dir), *extra],
        input=header + markdown, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"pandoc could not convert the report to {to}: {result.stderr.strip()}")
    return result.stdout


def to_html(markdown: str, image_dir: Path, title: str, banner: str = "") -> str:
    """One self-contained HTML file: images embedded, math as MathML, no script and no external resource."""
    html = _pandoc(markdown, "html5", "report.html", {"title": title, "banner": banner}, image_dir,
                   "--embed-resources", "--mathml", "--toc", "--toc-depth=2", "--table-caption-position=above",
                   "--wrap=none")
    # pandoc marks each figure's <img> with role="img", the role it has anyway (the Nu HTML Checker's warning)
    return html.replace('<img role="img" ', "<img ")


def to_pdf(markdown: str, image_dir: Path, title: str, banner: str = "", paper: str = "a4") -> bytes:
    """A PDF through Typst: a title (also in its metadata), contents with page numbers, numbered pages."""
    source = _pandoc(markdown, "typst", "report.typ", {"title": title, "banner": banner, "papersize": PAPERS[paper]},
                     image_dir, "--table-caption-position=above")
    path = image_dir / "report.typ"
    path.write_text(source)
    # a fixed timestamp: the same report gives the same file
    return typst.compile(str(path), root=str(image_dir), timestamp=datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC))


def render(nb: nbformat.NotebookNode, title: str, banner: str = "", show_code: bool = False, pdf: bool = True,
           paper: str = "a4") -> tuple[str, bytes | None]:
    """``(html, pdf or None)`` of a combined report notebook."""
    with tempfile.TemporaryDirectory(prefix="a1-render-") as tmp:
        markdown = to_markdown(nb, Path(tmp), show_code)
        html = to_html(markdown, Path(tmp), title, banner)
        return html, to_pdf(markdown, Path(tmp), title, banner, paper) if pdf else None
