"""HTML building blocks: escaped text, tables, sections, and the one page around them.

The page is a single file with its CSS inline and its images as data URIs, so it opens offline,
from an e-mail attachment or a copied run folder; no script, font or stylesheet is fetched.
"""
from __future__ import annotations

import html
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# Phone first: one column that widens up to a readable line length; wide tables scroll inside
# their own box instead of widening the page (a page wider than the screen breaks phone zoom).
CSS = """
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d232b;background:#f4f6f8}
main{max-width:1100px;margin:0 auto;padding:12px}
header{padding:6px 4px 2px}
h1{font-size:1.45em;margin:.2em 0;overflow-wrap:anywhere}
h2{font-size:1.15em;margin:0 0 .5em;border-bottom:1px solid #dde3ea;padding-bottom:.25em}
h3{font-size:1em;margin:.8em 0 .3em}
section{background:#fff;border:1px solid #dde3ea;border-radius:8px;padding:12px 14px;margin:12px 0}
p,li{overflow-wrap:anywhere}
nav{font-size:.9em;line-height:1.9}
nav a{margin-right:.7em;white-space:nowrap}
a{color:#1f5fa8}
img{max-width:100%;height:auto;display:block;margin:8px auto}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;max-width:100%}
table{border-collapse:collapse;font-size:.9em;margin:6px 0}
th,td{border-bottom:1px solid #e6eaef;padding:4px 8px;text-align:left;vertical-align:top}
td{overflow-wrap:break-word}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
thead th{background:#f0f3f6}
.muted{color:#5f6b78;font-size:.9em}
.verdict{padding:8px 10px;border-left:4px solid #1f5fa8;background:#f2f6fb;margin:8px 0}
.sev-ok{color:#2e7d32}.sev-warn{color:#b26a00}.sev-error{color:#c62828}.sev-skipped{color:#5f6b78}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:8px}
.card{background:#f7f9fb;border:1px solid #e6eaef;border-radius:6px;padding:6px 10px}
.card b{display:block;font-size:1.2em}
code{background:#f0f3f6;padding:0 3px;border-radius:3px;overflow-wrap:anywhere}
pre{background:#f0f3f6;padding:8px;overflow-x:auto;font-size:.85em}
"""


@dataclass
class Section:
    id: str
    title: str
    body: str


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def fmt(value: Any, digits: int = 4) -> str:
    """Numbers short and aligned: 0.8240, 1.2e-05, 22,713,986; anything else as text."""
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
            return f"{value:.3g}"
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.{digits}f}"
    return str(value)


def table(headers: list[str] | None, rows: Iterable[list[Any]], *, raw: set[int] | None = None) -> str:
    """A table in a horizontally scrolling box; numbers right-aligned. Columns in `raw` hold HTML."""
    raw = raw or set()
    head = "<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr></thead>" if headers else ""
    body = []
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            text = value if i in raw else esc(fmt(value))
            cells.append(f'<td class="num">{text}</td>' if number else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<div class="scroll"><table>{head}<tbody>{"".join(body)}</tbody></table></div>'


def key_values(pairs: Iterable[tuple[str, Any]]) -> str:
    """Two-column table of labelled values, skipping missing ones."""
    return table(None, [[k, fmt(v)] for k, v in pairs if v is not None and v != ""])


def cards(pairs: Iterable[tuple[str, Any]]) -> str:
    """Headline numbers as small tiles that wrap on narrow screens."""
    tiles = "".join(f'<div class="card"><span class="muted">{esc(k)}</span><b>{esc(fmt(v))}</b></div>'
                    for k, v in pairs if v is not None)
    return f'<div class="grid">{tiles}</div>'


def image(uri: str | None, alt: str) -> str:
    return f'<img src="{uri}" alt="{esc(alt)}" loading="eager">' if uri else ""


def verdict(text: str | None) -> str:
    return f'<p class="verdict">{esc(text)}</p>' if text else ""


def link(href: str, text: str) -> str:
    return f'<a href="{esc(href)}">{esc(text)}</a>'


def bullets(items: Iterable[str], *, raw: bool = False) -> str:
    items = list(items)
    if not items:
        return ""
    return "<ul>" + "".join(f"<li>{item if raw else esc(item)}</li>" for item in items) + "</ul>"


def page(title: str, subtitle: str, sections: list[Section]) -> str:
    nav = " ".join(link(f"#{s.id}", s.title) for s in sections)
    body = "\n".join(f'<section id="{esc(s.id)}"><h2>{esc(s.title)}</h2>\n{s.body}\n</section>' for s in sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>{CSS}</style>
</head>
<body>
<main>
<header><h1>{esc(title)}</h1><p class="muted">{esc(subtitle)}</p><nav>{nav}</nav></header>
{body}
<p class="muted">Written by ftkit report. Self-contained: plots are embedded, nothing is fetched.</p>
</main>
</body>
</html>
"""
