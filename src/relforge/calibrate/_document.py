"""A small report document rendered twice, as Markdown and as self-contained HTML (images inlined).

The step reports (calibration, annotation) are lists of blocks: headings, paragraphs, bullet
lists, tables and images. Markdown links the images by their path on the bus; the HTML embeds
them as ``data:`` URIs, so the KFP ``HTML`` artifact shows them with nothing else to fetch.

Example:
    >>> doc = Document("Calibration")
    >>> doc.paragraph("The gate passed.")
    >>> doc.table(["tier", "share"], [["tier0", "40%"]])
    >>> print(doc.markdown().splitlines()[0])
    # Calibration
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path

_STYLE = (
    "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;"
    "font-size:0.9em}th{background:#f2f2f2}img{max-width:100%;border:1px solid #eee}</style>"
)


class Document:
    """Blocks in order; :meth:`markdown` and :meth:`html` render them."""

    def __init__(self, title: str):
        self.title = title
        self.blocks: list[tuple] = []

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(("h", level, text))

    def paragraph(self, text: str) -> None:
        self.blocks.append(("p", text))

    def bullets(self, items: Sequence[str]) -> None:
        self.blocks.append(("ul", list(items)))

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        self.blocks.append(("table", list(headers), [[str(c) for c in r] for r in rows]))

    def image(self, caption: str, local: Path, bus_path: str) -> None:
        """An image: ``local`` is read for the HTML, ``bus_path`` (relative to the report) is linked in Markdown."""
        self.blocks.append(("img", caption, Path(local), bus_path))

    def markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for block in self.blocks:
            kind = block[0]
            if kind == "h":
                out += ["#" * block[1] + " " + block[2], ""]
            elif kind == "p":
                out += [block[1], ""]
            elif kind == "ul":
                out += [f"- {item}" for item in block[1]] + [""]
            elif kind == "table":
                headers, rows = block[1], block[2]
                out.append("| " + " | ".join(headers) + " |")
                out.append("|" + "|".join("---" for _ in headers) + "|")
                out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
                out.append("")
            elif kind == "img":
                out += [f"![{block[1]}]({block[3]})", ""]
        return "\n".join(out)

    def html(self) -> str:
        esc = html.escape
        out = [
            "<!DOCTYPE html>",
            '<html><head><meta charset="utf-8">',
            f"<title>{esc(self.title)}</title>",
            _STYLE,
            "</head><body>",
            f"<h1>{esc(self.title)}</h1>",
        ]
        for block in self.blocks:
            kind = block[0]
            if kind == "h":
                out.append(f"<h{block[1]}>{esc(block[2])}</h{block[1]}>")
            elif kind == "p":
                out.append(f"<p>{_inline(block[1])}</p>")
            elif kind == "ul":
                out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in block[1]) + "</ul>")
            elif kind == "table":
                head = "".join(f"<th>{esc(h)}</th>" for h in block[1])
                body = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in block[2])
                out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            elif kind == "img":
                data = base64.b64encode(block[2].read_bytes()).decode("ascii")
                out.append(f'<figure><img alt="{esc(block[1])}" src="data:image/png;base64,{data}">'
                           f"<figcaption>{esc(block[1])}</figcaption></figure>")
        out.append("</body></html>")
        return "\n".join(out)


def _inline(text: str) -> str:
    """Escape, then the two Markdown marks the reports use: **bold** and `code`."""
    out = html.escape(text)
    parts = out.split("**")
    out = "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))
    parts = out.split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
