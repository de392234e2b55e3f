"""Charts for the HTML report as inline SVG strings (matplotlib's SVG backend): no network, no fonts to fetch.

Every chart keeps its text as text (svg.fonttype none: the browser's sans-serif draws it) and gets its own id
salt, so several charts in one page never share an element id.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Sequence
from typing import Any

MAX_POINTS = 300  # a line never needs more points than the chart has pixels to spare
COLORS = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#0a3069", "#57606a"]
_SALT = itertools.count()


def _plt() -> Any:
    import matplotlib  # matplotlib is heavy to import: only when a report draws a chart

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # matplotlib is heavy to import: only when a report draws a chart

    return plt


def _figure(height: float = 3.0) -> tuple[Any, Any]:
    plt = _plt()
    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": f"ob{next(_SALT)}", "font.size": 9,
                         "font.family": "sans-serif", "axes.spines.top": False, "axes.spines.right": False})
    return plt.subplots(figsize=(7.2, height), dpi=100)


def to_svg(fig: Any, title: str) -> str:
    """The figure as an <svg> element (no XML prolog), with a <title> for screen readers."""
    buf = io.StringIO()
    fig.tight_layout()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    _plt().close(fig)
    text = buf.getvalue()
    svg = text[text.index("<svg"):]
    if "<metadata>" in svg:  # RDF boilerplate (URLs of schemas, never fetched): nothing a reader needs
        svg = svg[:svg.index("<metadata>")] + svg[svg.index("</metadata>") + len("</metadata>"):]
    head_end = svg.index(">") + 1
    return f'{svg[:head_end]}<title>{title}</title>{svg[head_end:]}'.replace(
        "<svg ", '<svg role="img" class="chart" ', 1)


def _thin(xs: Sequence[float], ys: Sequence[float]) -> tuple[list[float], list[float]]:
    step = max(1, len(xs) // MAX_POINTS)
    keep = list(range(0, len(xs), step))
    if keep and keep[-1] != len(xs) - 1:
        keep.append(len(xs) - 1)
    return [xs[i] for i in keep], [ys[i] for i in keep]


def cdf(series: dict[str, list[float]], xlabel: str, title: str) -> str:
    """Empirical CDF per series (share of requests at or below x)."""
    fig, ax = _figure()
    for color, (label, values) in zip(COLORS, series.items()):
        vs = sorted(v for v in values if v is not None)
        if vs:
            xs, ys = _thin(vs, [(i + 1) / len(vs) for i in range(len(vs))])
            ax.step(xs, ys, where="post", color=color, label=f"{label} (n={len(vs)})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share of requests")
    ax.set_ylim(0, 1.02)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return to_svg(fig, title)


def stacked_bars(rows: list[tuple[str, list[float]]], parts: list[str], xlabel: str, title: str) -> str:
    """One horizontal bar per row, split into `parts` (e.g. queue / prefill / decode of a request)."""
    fig, ax = _figure(0.6 + 0.42 * len(rows))
    for i, (_, values) in enumerate(rows):
        left = 0.0
        for j, v in enumerate(values):
            ax.barh(i, v, left=left, color=COLORS[j % len(COLORS)], label=parts[j] if i == 0 else None)
            left += v
    ax.set_yticks(range(len(rows)), [label for label, _ in rows])
    ax.set_xlim(0, 1.03 * max((sum(values) for _, values in rows), default=1.0) or 1.0)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=8, ncol=len(parts), loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    ax.grid(True, axis="x", alpha=0.3)
    return to_svg(fig, title)


def timeline(points: list[dict[str, float]], preempted_at: list[float], title: str) -> str:
    """Running and waiting requests (left axis) and KV use % (right axis) over time; preemptions as red ticks."""
    fig, ax = _figure(3.2)
    t = [p["t_s"] for p in points]
    for key, color in (("running", COLORS[0]), ("waiting", COLORS[3])):
        xs, ys = _thin(t, [p[key] for p in points])
        ax.plot(xs, ys, color=color, label=f"{key} requests")
    ax.set_xlabel("time since the timed window began (s)")
    ax.set_ylabel("requests")
    kv = ax.twinx()
    xs, ys = _thin(t, [p["kv_usage_pct"] for p in points])
    kv.plot(xs, ys, color=COLORS[2], ls="--", label="KV cache use %")
    kv.set_ylabel("KV cache use (%)")
    kv.set_ylim(0, 105)
    kv.spines["right"].set_visible(True)
    if preempted_at:
        kv.plot(preempted_at, [102] * len(preempted_at), "|", color=COLORS[1], markersize=9,
                label=f"preemption ({len(preempted_at)} marked)")
    lines = ax.get_legend_handles_labels()
    more = kv.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="upper right")
    ax.grid(True, alpha=0.3)
    return to_svg(fig, title)


def budget_bar(parts: list[tuple[str, float]], total: float | None, title: str) -> str:
    """The device memory as one stacked bar (GiB), each part labelled."""
    fig, ax = _figure(2.0)
    left = 0.0
    for j, (name, gib) in enumerate(parts):
        ax.barh(0, gib, left=left, color=COLORS[j % len(COLORS)], label=f"{name} {gib:,.2f}")
        left += gib
    ax.set_yticks([])
    ax.set_xlabel("GiB" + (f" (device: {total:,.2f} GiB)" if total else ""))
    if total:
        ax.set_xlim(0, max(total, left))
    ax.legend(fontsize=7, ncol=min(len(parts), 3), loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    return to_svg(fig, title)


MARKERS = [("o", "-", 8), ("s", "--", 6), ("^", ":", 5), ("D", "-.", 4)]  # lines that coincide stay visible


def lines(series: dict[str, list[tuple[float, float]]], xlabel: str, ylabel: str, title: str, logx: bool = False,
          dashed: dict[str, list[tuple[float, float]]] | None = None, logy: bool = False) -> str:
    """One marked line per series; `dashed` series (ceilings) drawn thin and dashed in the same colours."""
    fig, ax = _figure(3.2)
    for color, style, (label, pts) in zip(itertools.cycle(COLORS), itertools.cycle(MARKERS), series.items()):
        pts = sorted(pts)
        marker, ls, size = style
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=marker, ls=ls, markersize=size, color=color,
                label=label)
        ceiling = sorted((dashed or {}).get(label, []))
        if ceiling:
            ax.plot([p[0] for p in ceiling], [p[1] for p in ceiling], ls="--", lw=1, color=color,
                    label=f"{label}: ceiling")
    if logx:
        ax.set_xscale("log", base=2)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    return to_svg(fig, title)


def waterfall(steps: list[tuple[str, float]], ylabel: str, title: str) -> str:
    """The first and last steps as full bars, each step between as the change it made (green up, red down)."""
    fig, ax = _figure(3.4)
    prev = None
    for i, (_, value) in enumerate(steps):
        if prev is None or i == len(steps) - 1:
            ax.bar(i, value, color=COLORS[0])
        else:
            change = value - prev
            ax.bar(i, change, bottom=prev, color=COLORS[2] if change >= 0 else COLORS[1])
        ax.text(i, value, f"{value:,.0f}", ha="center", va="bottom", fontsize=7)
        prev = value
    ax.set_xticks(range(len(steps)), [f"{i + 1}" for i in range(len(steps))])
    ax.set_xlabel("step (see the table)")
    ax.set_ylabel(ylabel)
    ax.grid(True, axis="y", alpha=0.3)
    return to_svg(fig, title)
