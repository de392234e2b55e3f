"""`compare`: runs metric by metric, with ratios to the baseline and a warning for every condition that differs.

The console and markdown keep one table with the runs' whole labels when it fits ~120 columns; else they name each
run by its file (the rest of its label in a note) and, if still too wide, split it (the values, then the ratios,
each in as many tables as fit). csv and json keep one table with the whole labels.
"""

from __future__ import annotations

import textwrap
from typing import Any

from offline_bench.analysis.compare import Labeled, mismatches, table
from offline_bench.report.table import KNOWN, RATIO, Column, Document, Table, fmt, warnings

WIDTH = 120  # a table's lines, within a ~120-column terminal
HEAD_PAD, GAP = 2, 2  # the console writer's (tabulate's) room beside a header, and between columns


def _width(name: str, cells: list[str]) -> int:
    return max([len(name) + HEAD_PAD, *map(len, cells)])


def _chunks(first: int, widths: list[int]) -> list[list[int]]:
    """Column indices in as few tables as keep each (with the metric column, `first` wide) within WIDTH, as even
    as they fit (9 runs in 3 tables of 3, not 4, 4 and 1)."""
    greedy = _greedy(first, widths)
    size = -(-len(widths) // len(greedy))
    even = [list(range(i, min(i + size, len(widths)))) for i in range(0, len(widths), size)]
    fits = all(first + sum(GAP + widths[i] for i in chunk) <= WIDTH for chunk in even)
    return even if fits and len(even) == len(greedy) else greedy


def _greedy(first: int, widths: list[int]) -> list[list[int]]:
    out: list[list[int]] = []
    used = WIDTH  # forces a new table at the first column
    for i, w in enumerate(widths):
        if used + GAP + w > WIDTH and (not out or out[-1]):
            out.append([])
            used = first
        out[-1].append(i)
        used += GAP + w
    return out


def _split(metric: Column, columns: list[Column], rows: list[list[Any]], title: str) -> list[Table]:
    """`columns` (the cells of `rows` after the metric) in as many tables as keep each within WIDTH."""
    first = _width(metric.name, [str(row[0]) for row in rows])
    chunks = _chunks(first, [_width(c.name, [fmt(row[i + 1], c.style) for row in rows]) for i, c in enumerate(columns)])
    return [Table([metric, *(columns[i] for i in chunk)], [[row[0], *(row[i + 1] for i in chunk)] for row in rows],
                  title=title if len(chunks) == 1 else f"{title} ({k + 1} of {len(chunks)})")
            for k, chunk in enumerate(chunks)]


def _one_table(runs: list[Labeled], baseline: Labeled, rows: list[list[Any]], names: list[str]) -> list[Table]:
    """Values and ratios side by side, the runs under `names`: one table, or several when that is too wide."""
    ratios = [Column(f"{name} / baseline", "x baseline", RATIO) for r, name in zip(runs, names) if r is not baseline]
    return _split(Column("metric"), [Column(name, style=KNOWN) for name in names] + ratios, rows, "")


def _shown(runs: list[Labeled], baseline: Labeled, rows: list[list[Any]], notes: list[str]) -> list[Table]:
    """The console's tables: one with the runs' whole labels when it fits; else the runs by file name (the rest of
    their labels in a note), in one table if that fits, else the values, then the ratios, each split to fit."""
    whole = _one_table(runs, baseline, rows, [r.label for r in runs])
    if len(whole) == 1:
        whole[0].notes = notes
        return whole
    names, n = [r.name or r.label for r in runs], len(runs)
    tables = _one_table(runs, baseline, rows, names)
    if len(tables) > 1:
        ratios = [Column(name, "x baseline", RATIO) for r, name in zip(runs, names) if r is not baseline]
        tables = (_split(Column("metric"), [Column(name, style=KNOWN) for name in names],
                         [row[:n + 1] for row in rows], "values")
                  + _split(Column("metric"), ratios, [[row[0], *row[n + 1:]] for row in rows],
                           f"ratio to the baseline, {baseline.name or baseline.label}"))
    tables[-1].notes = notes + _legend(runs)
    return tables


def _legend(runs: list[Labeled]) -> list[str]:
    """What the file names leave out of the labels (mode, concurrency, rate): once if every run shares it."""
    named = {r.name: r.label.removeprefix(r.name).strip() for r in runs if r.name and r.name != r.label}
    if not named:
        return []
    if len(set(named.values())) == 1 and len(named) == len(runs):
        return [f"every run: {next(iter(named.values())).strip('[]')}"]
    return [textwrap.fill("runs: " + ", ".join(f"{k} {v}" for k, v in named.items()), WIDTH - 2,
                          subsequent_indent="    ", break_on_hyphens=False)]


def document(runs: list[Labeled], baseline: Labeled) -> Document:
    headers, rows = table(runs, baseline)
    n = len(runs)
    columns = ([Column(headers[0])] + [Column(h, style=KNOWN) for h in headers[1:n + 1]]
               + [Column(h, "x baseline", RATIO) for h in headers[n + 1:]])
    notes = [f"baseline: {baseline.label}"]
    full = Table(columns, rows, notes=notes)
    found = [f"{r.label} vs {baseline.label}: {m}" for r in runs if r is not baseline for m in mismatches(baseline, r)]
    return Document([*_shown(runs, baseline, rows, notes)] + ([warnings(found)] if found else []),
                    data=[full])
