"""Rendering a report's sections as Markdown and as one self-contained HTML page."""

from __future__ import annotations

import base64
import dataclasses
import html
import re
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Table:
    """A table of a report: its header and rows of text."""

    header: list[str]
    rows: list[list[str]]


@dataclasses.dataclass(frozen=True)
class Bullets:
    """A bullet list of a report."""

    items: list[str]


# A report section: a title and its blocks (paragraphs, tables, bullet lists, images).
Section = tuple[str, list["str | Table | Bullets | Path"]]


NUMBER = re.compile(r"^(–|[-+]?[\d,.]+( ± [\d,.]+)?)$")


def _numeric(table: Table) -> list[bool]:
    """Which columns hold only numbers (right-aligned)."""
    return [
        bool(table.rows) and all(NUMBER.match(row[i]) for row in table.rows)
        for i in range(len(table.header))
    ]


PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")  # what a backslash escapes


def escape_markdown(text: str) -> str:
    """`text` as Markdown that shows it and runs nothing: outside code spans, a `<` that could
    open an HTML tag, comment or autolink becomes `&lt;`, and `[` and `]` are backslashed, so
    that no link, image or link definition forms; code spans (found as CommonMark finds them)
    are left as they are, where nothing is interpreted. The report's own Markdown (tables,
    bullets, code spans, emphasis) is unchanged."""
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and text[i + 1 : i + 2] in PUNCTUATION:
            out.append(text[i : i + 2])  # an escaped character stays one
            i += 2
        elif c == "`":
            opening = re.compile(r"`+").match(text, i).group()
            close = next(
                (m for m in re.finditer(r"`+", text[i + len(opening) :]) if m.group() == opening),
                None,
            )
            end = i + len(opening) + (close.end() if close else 0)
            out.append(text[i:end])  # a code span, or a run of backticks that opens none
            i = end
        else:
            tag_like = c == "<" and re.match(r"[A-Za-z/!?]", text[i + 1 : i + 2])
            out.append("&lt;" if tag_like else "\\" + c if c in "[]" else c)
            i += 1
    return "".join(out)


def markdown_table(table: Table) -> str:
    """A Markdown table, numeric columns right-aligned; cells escaped (`escape_markdown`), on
    one line each."""
    cells = [
        [escape_markdown(" ".join(c.splitlines())).replace("|", "\\|") for c in row]
        for row in [table.header, *table.rows]
    ]
    lines = ["| " + " | ".join(cells[0]) + " |"]
    lines.append("|" + "|".join("---:" if n else ":---" for n in _numeric(table)) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in cells[1:]]
    return "\n".join(lines)


def to_markdown(title: str, sections: list[Section]) -> str:
    """The report as Markdown, every text escaped (`escape_markdown`: names and values come from
    runs); images are the PNG files beside it."""
    lines = [f"# {escape_markdown(title)}", ""]
    for heading, blocks in sections:
        lines += [f"## {escape_markdown(heading)}", ""]
        for block in blocks:
            if isinstance(block, Table):
                lines.append(markdown_table(block))
            elif isinstance(block, Bullets):
                lines += [
                    f"- {escape_markdown(' '.join(item.splitlines()))}" for item in block.items
                ]
            elif isinstance(block, Path):
                lines.append(f"![{escape_markdown(heading)}]({block.name})")
            else:
                lines.append(escape_markdown(block))
            lines.append("")
    return "\n".join(lines)


CSS = """
body { font-family: system-ui, sans-serif; color: #222; max-width: 1300px; margin: 1.5em auto;
       padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.92em; }
th, td { border: 1px solid #bbb; padding: 0.3em 0.7em; text-align: left; }
th { background: #eee; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
img { max-width: 100%; border: 1px solid #ddd; }
"""


def _html_table(table: Table) -> str:
    numeric = _numeric(table)

    def row(cells: list[str], tag: str) -> str:
        return (
            "<tr>"
            + "".join(
                f"<{tag}{' class=num' if n else ''}>{html.escape(c)}</{tag}>"
                for c, n in zip(cells, numeric, strict=True)
            )
            + "</tr>"
        )

    body = "\n".join(row(r, "td") for r in table.rows)
    return f"<table>\n<thead>{row(table.header, 'th')}</thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def to_html(title: str, sections: list[Section]) -> str:
    """The report as one self-contained HTML page (images inlined as data: URIs)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for heading, blocks in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        for block in blocks:
            if isinstance(block, Table):
                parts.append(_html_table(block))
            elif isinstance(block, Bullets):
                items = "".join(f"<li>{html.escape(item)}</li>" for item in block.items)
                parts.append(f"<ul>{items}</ul>")
            elif isinstance(block, Path):
                data = base64.b64encode(block.read_bytes()).decode("ascii")
                alt = html.escape(heading, quote=True)
                parts.append(f'<p><img alt="{alt}" src="data:image/png;base64,{data}"></p>')
            else:
                parts.append(f"<p>{html.escape(block)}</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
