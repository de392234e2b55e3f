"""Small HTML building blocks of the report: escaping, numbers that carry their source, tables, sections, CSS.

A number that comes straight from a result is written as <span data-src=ITEM data-key=DOTTED.PATH data-value=RAW>
so a reader (and the browser test) can check it against the JSON it came from.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg: #ffffff; --card: #f6f8fa; --accent: #1f6feb; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--fg);
       background: var(--bg); margin: 0; }
header, main, footer { max-width: 1120px; margin: 0 auto; padding: 0 20px; }
header { padding-top: 18px; border-bottom: 1px solid var(--line); }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 28px 0 6px; border-bottom: 1px solid var(--line); }
h3 { font-size: 16px; margin: 20px 0 4px; } h4 { font-size: 14px; margin: 14px 0 4px; }
p.how { color: var(--muted); margin: 2px 0 10px; max-width: 900px; }
nav > ul { padding-left: 18px; margin: 6px 0 12px; } nav a { color: var(--accent); text-decoration: none; }
nav ul ul { display: inline; padding: 0; } nav ul ul li { display: inline; }
nav ul ul li + li::before { content: " · "; }
nav ul ul::before { content: ": "; }
table { border-collapse: collapse; margin: 6px 0 12px; font-size: 13px; max-width: 100%; }
th, td { border: 1px solid var(--line); padding: 3px 6px; text-align: left; vertical-align: top;
         overflow-wrap: break-word; }
table.kv td, td.label { overflow-wrap: anywhere; }
th { background: var(--card); font-weight: 600; }
td.num, .nw { white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 8px 0; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px;
        min-width: 150px; }
.card .v { font-size: 20px; font-weight: 600; } .card .k { color: var(--muted); font-size: 12px; }
.missing { color: var(--muted); font-style: italic; }
.scroll { overflow-x: auto; max-width: 100%; }
.warn { color: #9a6700; }
section.item { border-top: 3px solid var(--card); margin-top: 18px; }
details.fold > section.item { border-top: 0; margin-top: 0; }
svg.chart { max-width: 100%; height: auto; display: block; margin: 4px 0 10px; }
svg.chart .g { stroke: #d8dee4; stroke-width: .7; } svg.chart .a { stroke: var(--muted); fill: none; }
svg.chart text { fill: var(--fg); }
nav.top { margin: 4px 0 10px; } nav.top a { margin-right: 12px; }
#findings ul { padding-left: 20px; } #findings li { margin: 4px 0; max-width: 1000px; }
#findings .topic { font-weight: 600; }
details.fold { border-top: 3px solid var(--card); margin-top: 10px; }
details.fold > summary { padding: 4px 0; font-weight: 600; }
details.fold > summary .how { font-weight: 400; color: var(--muted); }
code, pre { font: 12px/1.4 ui-monospace, "DejaVu Sans Mono", monospace; background: var(--card); }
pre { padding: 8px; overflow-x: auto; white-space: pre-wrap; word-break: break-all; border-radius: 4px; }
details summary { cursor: pointer; color: var(--accent); }
footer { color: var(--muted); border-top: 1px solid var(--line); margin-top: 30px; padding: 12px 20px 30px; }
"""


def esc(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def fmt(v: Any, spec: str = ",.1f") -> str:
    """A number for reading: thousands separated; ints as ints; None as 'unknown'."""
    if v is None:
        return "unknown"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return format(v, spec)
    return str(v)


def num(v: Any, src: str | None = None, key: str | None = None, spec: str = ",.1f") -> str:
    """A number, tagged with where it came from when `src` and `key` are given."""
    if v is None:
        return '<span class="missing">unknown</span>'
    if src and key:
        return (f'<span data-src="{esc(src)}" data-key="{esc(key)}" data-value="{esc(repr(v))}">'
                f"{esc(fmt(v, spec))}</span>")
    return esc(fmt(v, spec))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[int] = ()) -> str:
    """Cells are HTML already (use esc/num); columns in `numeric` are right-aligned."""
    head = "".join(f'<th{" class=num" if i in numeric else ""}>{esc(h)}</th>' for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f'<td{" class=num" if i in numeric else ""}>{c}</td>' for i, c in enumerate(r))
                   + "</tr>" for r in rows)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def kv_table(pairs: Sequence[tuple[str, str]]) -> str:
    return '<table class="kv"><tbody>' + "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in pairs) + \
        "</tbody></table>"


def section(anchor: str, title: str, how: str, body: str, level: int = 2, kind: str = "") -> str:
    """A titled section with its one or two sentences on what it shows and how to read it."""
    cls = f' class="{esc(kind)}"' if kind else ""
    return (f'<section id="{esc(anchor)}"{cls}><h{level}>{esc(title)}</h{level}><p class="how">{esc(how)}</p>'
            f"{body}</section>")


def folded(anchor: str, summary: str, body: str) -> str:
    """A closed <details> (a run's whole section): `summary` (HTML) is what shows until it is opened."""
    return f'<details class="fold" id="{esc(anchor)}-fold"><summary>{summary}</summary>{body}</details>'


def breakable(text: str) -> str:
    """A name (a path, a label) that may break after each / (long ones would widen their table)."""
    return esc(text).replace("/", "/<wbr>")


def nowrap(text: str) -> str:
    """A short value kept on one line (a model or GPU name breaking at its hyphens reads badly)."""
    return f'<span class="nw">{esc(text)}</span>'


def link(anchor: str, text: str) -> str:
    return f'<a href="#{esc(anchor)}">{breakable(text)}</a>'


def missing(what: str) -> str:
    return f'<p class="missing">{esc(what)}</p>'


def cards(pairs: Sequence[tuple[str, str]]) -> str:
    return '<div class="cards">' + "".join(f'<div class="card"><div class="v">{v}</div><div class="k">{esc(k)}'
                                           "</div></div>" for k, v in pairs) + "</div>"
