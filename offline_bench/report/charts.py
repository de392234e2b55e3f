"""Charts for the HTML report as inline SVG strings (report.svg draws them): no network, no fonts to fetch, the
text kept as text. Long series are thinned to MAX_POINTS a line: a chart 720 px wide shows no more."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from offline_bench.report.svg import Axis, Plot, Point

MAX_POINTS = 300
COLORS = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#0a3069", "#57606a"]
LINE_STYLES = [("o", ""), ("s", "6 3"), ("^", "2 3"), ("D", "8 3 2 3")]  # lines that coincide stay visible


def _thin(pts: Sequence[Point]) -> list[Point]:
    """At most MAX_POINTS evenly spread points, the first and the last kept."""
    if len(pts) <= MAX_POINTS:
        return list(pts)
    last = len(pts) - 1
    return [pts[round(i * last / (MAX_POINTS - 1))] for i in range(MAX_POINTS)]


def cdf(series: dict[str, list[float]], xlabel: str, title: str) -> str:
    """Empirical CDF per series (share of requests at or below x)."""
    curves = {}
    for name, values in series.items():
        vs = sorted(v for v in values if v is not None)
        if vs:
            curves[f"{name} (n={len(vs)})"] = [(vs[0], 0.0)] + _thin([(v, (i + 1) / len(vs)) for i, v in enumerate(vs)])
    p = Plot(title)
    p.axes([x for c in curves.values() for x, _ in c], [0.0], ybounds=(0.0, 1.0))
    p.frame(xlabel, "share of requests")
    for color, (name, pts) in zip(COLORS, curves.items()):
        p.line(pts, color, name, step=True)
    return p.svg()


def stacked_bars(rows: list[tuple[str, list[float]]], parts: list[str], xlabel: str, title: str) -> str:
    """One horizontal bar per row, split into `parts` (e.g. queue / prefill / decode of a request)."""
    p = Plot(title, height=34 * len(rows) + 10, left=int(14 + 6.2 * max(len(name) for name, _ in rows)))
    p.axes([0.0, max(sum(v) for _, v in rows) * 1.03], [0.0], ybounds=(-0.6, len(rows) - 0.4))
    top = len(rows) - 1  # the first row drawn at the top
    p.frame(xlabel, "", yticks=[(top - i, name) for i, (name, _) in enumerate(rows)])
    for i, (_, values) in enumerate(rows):
        left = 0.0
        for j, v in enumerate(values):
            p.bar(left, left + v, top - i - 0.32, top - i + 0.32, COLORS[j % len(COLORS)])
            left += v
    for j, name in enumerate(parts):
        p.key(name, COLORS[j % len(COLORS)], box=True)
    return p.svg()


def timeline(points: list[dict[str, float]], preempted_at: list[float], title: str) -> str:
    """Running and waiting requests (left axis) and KV use % (right axis) over time; preemptions as red ticks."""
    p = Plot(title, right=58)
    t = [q["t_s"] for q in points]
    p.axes(t, [q["running"] for q in points] + [q["waiting"] for q in points], xbounds=(min(t), max(t)))
    p.y2 = Axis([0.0], p.bottom, p.top, bounds=(0.0, 105.0))
    p.frame("time since the timed window began (s)", "requests", y2label="KV cache use (%)")
    for key, color in (("running", COLORS[0]), ("waiting", COLORS[3])):
        p.line(_thin([(q["t_s"], q[key]) for q in points]), color, f"{key} requests")
    p.line(_thin([(q["t_s"], q["kv_usage_pct"]) for q in points]), COLORS[2], "KV cache use %", dash="5 3",
           second=True)
    if preempted_at:
        ticks = "".join(f"M{p.x(x):.1f},{p.top - 2}v9" for x in preempted_at)
        p.items.append(f'<path d="{ticks}" stroke="{COLORS[1]}" stroke-width="1.5"/>')
        p.key(f"preemption ({len(preempted_at)} marked)", COLORS[1])
    return p.svg()


def budget_bar(parts: list[tuple[str, float]], total: float | None, title: str) -> str:
    """The device memory as one stacked bar (GiB), each part labelled."""
    p = Plot(title, height=40, left=20)
    left = sum(g for _, g in parts)
    p.axes([0.0, max(total or 0.0, left)], [0.0], ybounds=(-0.5, 0.5))
    p.frame("GiB" + (f" (device: {total:,.2f} GiB)" if total else ""), "", yticks=[])
    left = 0.0
    for j, (name, gib) in enumerate(parts):
        p.bar(left, left + gib, -0.4, 0.4, COLORS[j % len(COLORS)])
        p.key(f"{name} {gib:,.2f}", COLORS[j % len(COLORS)], box=True)
        left += gib
    return p.svg()


def lines(series: dict[str, list[tuple[float, float]]], xlabel: str, ylabel: str, title: str, logx: bool = False,
          dashed: dict[str, list[tuple[float, float]]] | None = None, logy: bool = False) -> str:
    """One marked line per series; `dashed` series (ceilings) drawn thin and dashed in the same colours."""
    every = [pt for pts in [*series.values(), *(dashed or {}).values()] for pt in pts]
    p = Plot(title)
    p.axes([x for x, _ in every], [y for _, y in every], logx=2 if logx else 0, logy=10 if logy else 0)
    p.frame(xlabel, ylabel)
    for color, (marker, dash), (name, pts) in zip(itertools.cycle(COLORS), itertools.cycle(LINE_STYLES),
                                                   series.items()):
        p.line(sorted(pts), color, name, dash=dash, marker=marker)
        ceiling = sorted((dashed or {}).get(name, []))
        if ceiling:
            p.line(ceiling, color, f"{name}: ceiling", dash="4 3", width=1.0)
    return p.svg()


def waterfall(steps: list[tuple[str, float]], ylabel: str, title: str) -> str:
    """The first and last steps as full bars, each step between as the change it made (green up, red down)."""
    p = Plot(title)
    p.axes([0.0], [v for _, v in steps], xbounds=(-0.6, len(steps) - 0.4))
    p.frame("step (see the table)", ylabel, xticks=[(i, str(i + 1)) for i in range(len(steps))])
    prev = None
    for i, (_, value) in enumerate(steps):
        if prev is None or i == len(steps) - 1:
            p.bar(i - 0.4, i + 0.4, 0.0, value, COLORS[0])
        else:
            p.bar(i - 0.4, i + 0.4, prev, value, COLORS[2] if value >= prev else COLORS[1])
        p.text(i, value, f"{value:,.0f}")
        prev = value
    return p.svg()
