"""A small SVG plotter for the HTML report: axes with readable ticks, lines, markers, bars and a legend, written
as SVG text directly. A page of fifty runs draws some 250 charts: drawing them through matplotlib took most of a
report's time (~0.25 s a chart); this writes each in about a millisecond, and the text stays text (the page's
font draws it)."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

WIDTH = 720
FONT = 11
CHAR_W = 6.2  # average width of a FONT-px sans-serif character: enough to lay out labels and the legend
Point = tuple[float, float]


def label(v: float, base: int = 0) -> str:
    """A tick label: short, thousands as k, millions as M (on a log2 axis: 1k = 1,024)."""
    a = abs(v)
    if base == 2 and a >= 1024:
        return f"{v / 1024:g}k"
    if a >= 1e6:
        return f"{v / 1e6:g}M"
    if a >= 1e4:
        return f"{v / 1e3:g}k"
    if a >= 1000:
        return f"{v:,.0f}"
    return f"{v:.4g}"


class Axis:
    """Data values to pixels over [lo, hi]; linear (bounds widened to round ticks) or logarithmic."""

    def __init__(self, values: Sequence[float], start: float, end: float, log: int = 0, zero: bool = False,
                 bounds: tuple[float, float] | None = None) -> None:
        self.log, self.start, self.end = log, start, end
        vs = [v for v in values if v is not None and (v > 0 or not log)] or [1.0]
        lo, hi = bounds or (min(vs), max(vs))
        if zero and not log:
            lo, hi = min(lo, 0.0), max(hi, 0.0)
        if hi <= lo:
            lo, hi = (lo / 2, lo * 2) if log else (lo - 1, hi + 1)
        if log:
            self.lo, self.hi = log ** math.floor(math.log(lo, log)), log ** math.ceil(math.log(hi, log))
            self.step = 0.0
        else:
            self.step = _step(hi - lo) if bounds is None else 0.0
            self.lo = math.floor(lo / self.step) * self.step if self.step else lo
            self.hi = math.ceil(hi / self.step) * self.step if self.step else hi

    def __call__(self, v: float) -> float:
        if self.log:
            v = math.log(max(v, self.lo), self.log)
            lo, hi = math.log(self.lo, self.log), math.log(self.hi, self.log)
        else:
            lo, hi = self.lo, self.hi
        return self.start + (v - lo) / (hi - lo) * (self.end - self.start)

    def ticks(self) -> list[float]:
        if self.log:
            k0, k1 = round(math.log(self.lo, self.log)), round(math.log(self.hi, self.log))
            every = max(1, math.ceil((k1 - k0 + 1) / 9))
            return [self.log ** k for k in range(k0, k1 + 1, every)]
        step = self.step or _step(self.hi - self.lo)
        first = math.ceil(self.lo / step - 1e-9) * step
        return [first + i * step for i in range(int((self.hi - first) / step + 1e-9) + 1)]


def _step(span: float, n: int = 5) -> float:
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * 0.999)


def _f(v: float) -> str:
    return f"{v:.1f}"


def esc(s: str) -> str:
    return html.escape(s)


MARKERS = {  # a point's marker as a path around (0, 0)
    "o": lambda s: f"m{-s},0a{s},{s} 0 1,0 {2 * s},0a{s},{s} 0 1,0 {-2 * s},0z",
    "s": lambda s: f"m{-s},{-s}h{2 * s}v{2 * s}h{-2 * s}z",
    "^": lambda s: f"m0,{-s * 1.2}l{s * 1.1},{s * 2}h{-s * 2.2}z",
    "D": lambda s: f"m0,{-s * 1.3}l{s * 1.3},{s * 1.3}l{-s * 1.3},{s * 1.3}l{-s * 1.3},{-s * 1.3}z",
}


class Plot:
    """One chart: a plot area of `height` px below a top margin, axes drawn by `frame`, items added in data
    coordinates, and a legend under the x axis label."""

    def __init__(self, title: str, height: int = 230, left: int = 64, right: int = 30) -> None:
        self.title, self.top, self.left, self.right = title, 12, left, WIDTH - right
        self.bottom = self.top + height
        self.items: list[str] = []
        self.legend: list[str] = []  # each entry: its swatch and text, drawn at (0, 0)
        self.legend_w: list[float] = []
        self.x = self.y = self.y2 = None  # type: ignore[assignment]

    def axes(self, xs: Sequence[float], ys: Sequence[float], logx: int = 0, logy: int = 0, zero: bool = True,
             xbounds: tuple[float, float] | None = None, ybounds: tuple[float, float] | None = None) -> None:
        self.x = Axis(xs, self.left, self.right, logx, bounds=xbounds)
        self.y = Axis(ys, self.bottom, self.top, logy, zero=zero, bounds=ybounds)

    def frame(self, xlabel: str, ylabel: str, xticks: Sequence[tuple[float, str]] | None = None,
              y2label: str | None = None, yticks: Sequence[tuple[float, str]] | None = None) -> None:
        """Grid, axes and their labels; `xticks`, `yticks` replace an axis' own (categories)."""
        out = []
        for v, text in yticks if yticks is not None else [(v, label(v, self.y.log)) for v in self.y.ticks()]:
            py = _f(self.y(v))
            out.append(f'<line x1="{self.left}" x2="{self.right}" y1="{py}" y2="{py}" class="g"/>'
                       f'<text x="{self.left - 5}" y="{py}" dy="0.32em" text-anchor="end">{esc(text)}</text>')
        for v, text in xticks if xticks is not None else [(v, label(v, self.x.log)) for v in self.x.ticks()]:
            px = _f(self.x(v))
            out.append(f'<line x1="{px}" x2="{px}" y1="{self.top}" y2="{self.bottom}" class="g"/>'
                       f'<text x="{px}" y="{self.bottom + 14}" text-anchor="middle">{esc(text)}</text>')
        if self.y2 is not None:
            for v in self.y2.ticks():
                out.append(f'<text x="{self.right + 5}" y="{_f(self.y2(v))}" dy="0.32em">{esc(label(v))}</text>')
            mid = (self.top + self.bottom) / 2
            out.append(f'<text transform="translate({WIDTH - 6},{_f(mid)}) rotate(90)" text-anchor="middle">'
                       f"{esc(y2label or '')}</text>")
        out.append(f'<path d="M{self.left},{self.top}V{self.bottom}H{self.right}" class="a"/>'
                   f'<text x="{_f((self.left + self.right) / 2)}" y="{self.bottom + 32}" text-anchor="middle">'
                   f'{esc(xlabel)}</text><text transform="translate(12,{_f((self.top + self.bottom) / 2)}) '
                   f'rotate(-90)" text-anchor="middle">{esc(ylabel)}</text>')
        self.items.insert(0, "".join(out))

    def line(self, pts: Sequence[Point], color: str, name: str | None = None, dash: str = "", width: float = 1.6,
             step: bool = False, marker: str = "", second: bool = False) -> None:
        """A polyline through `pts` (sorted by the caller); `step`: horizontal then vertical (a CDF)."""
        y = self.y2 if second else self.y
        coords = [(self.x(a), y(b)) for a, b in pts]
        if step:
            coords = [c for i, (px, py) in enumerate(coords)
                      for c in ([(px, coords[i - 1][1])] if i else []) + [(px, py)]]
        d = " ".join([f"{a:.1f},{b:.1f}" for a, b in coords])
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        self.items.append(f'<polyline points="{d}" fill="none" stroke="{color}" stroke-width="{width}"{extra}/>')
        if marker:
            shape = MARKERS[marker](3.5)
            self.items.append(f'<path fill="{color}" d="' + "".join(f"M{_f(a)},{_f(b)}{shape}" for a, b in coords)
                              + '"/>')
        if name:
            self.key(name, color, dash=dash or None, marker=marker)

    def bar(self, x0: float, x1: float, y0: float, y1: float, color: str) -> None:
        """A rectangle between two x and two y data values."""
        a, b, c, d = self.x(x0), self.x(x1), self.y(y0), self.y(y1)
        self.items.append(f'<rect x="{_f(min(a, b))}" y="{_f(min(c, d))}" width="{_f(abs(b - a))}" '
                          f'height="{_f(abs(d - c))}" fill="{color}"/>')

    def text(self, x: float, y: float, text: str, anchor: str = "middle", dy: str = "-0.3em") -> None:
        self.items.append(f'<text x="{_f(self.x(x))}" y="{_f(self.y(y))}" dy="{dy}" text-anchor="{anchor}">'
                          f"{esc(text)}</text>")

    def key(self, name: str, color: str, dash: str | None = None, marker: str = "", box: bool = False) -> None:
        """A legend entry: a line (dashed, marked) or a filled box, then its text."""
        if box:
            swatch = f'<rect x="0" y="-5" width="14" height="10" fill="{color}"/>'
        else:
            swatch = (f'<line x1="0" x2="18" y1="0" y2="0" stroke="{color}" stroke-width="2"'
                      + (f' stroke-dasharray="{dash}"' if dash else "") + "/>"
                      + (f'<path fill="{color}" d="M9,0{MARKERS[marker](3)}"/>' if marker else ""))
        self.legend.append(f'{swatch}<text x="23" y="0" dy="0.32em">{esc(name)}</text>')
        self.legend_w.append(30 + CHAR_W * len(name))

    def svg(self) -> str:
        """The chart as one <svg> element (scales with the page; its <title> read by screen readers; the page's CSS
        styles its grid `.g` and axes `.a`)."""
        placed, x, row = [], float(self.left), 0
        for entry, w in zip(self.legend, self.legend_w):
            if x + w > WIDTH - 10 and x > self.left:
                x, row = float(self.left), row + 1
            placed.append(f'<g transform="translate({_f(x)},{self.bottom + 52 + 17 * row})">{entry}</g>')
            x += w + 12
        height = self.bottom + 44 + (17 * (row + 1) + 4 if placed else 0)
        return (f'<svg role="img" class="chart" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
                f'font-size="{FONT}"><title>{esc(self.title)}</title>' + "".join(self.items) + "".join(placed)
                + "</svg>")
