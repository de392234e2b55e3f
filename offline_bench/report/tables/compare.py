"""`compare`: runs metric by metric, with ratios to the baseline and a warning for every condition that differs.

The console and markdown keep one table with the runs' whole labels when it fits ~120 columns; else they name each
run by its file (the rest of its label in a note) and, if still too wide, split it (the values, then the ratios,
each in as many tables as fit). csv and json keep one table with the whole labels.
"""

from __future__ import annotations

import textwrap
from typing import Any

from offline_bench.analysis.compare import Labeled, mismatches, table
from offline_bench.report.table import KNOWN, RATIO, Column, Document, Style, Table, fmt, warnings

WIDTH = 120  # a table's lines, within a ~120-column terminal
HEAD_PAD, GAP = 2, 2  # the console writer's (tabulate's) room beside a header, and between columns
VALUE = Style(KNOWN.spec, none=KNOWN.none, small=".3g")  # 3 significant digits below 1: joules per token (0.0712)
ENERGY_ROWS = ("joules_per_output_token", "output_tokens_per_joule", "avg_watts", "idle_watts")


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
    return _split(Column("metric"), [Column(name, style=VALUE) for name in names] + ratios, rows, "")


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
        tables = (_split(Column("metric"), [Column(name, style=VALUE) for name in names],
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


def _energy_notes(runs: list[Labeled], shown: list[str]) -> list[str]:
    """With the energy rows: what they are, and why a run's are unknown; with the cost rows: each run's prices."""
    out = []
    if any(name in ENERGY_ROWS for name in shown):
        out.append("energy: the engine's GPUs over a timed pass (NVML), per output token of the pass; watts summed "
                   "over the GPUs, idle before the engine started")
        why = {r.label: r.result.energy.reason if r.result.energy else "not recorded (an older result)"
               for r in runs if r.result.energy is None or r.result.energy.status != "measured"}
        out += _grouped("energy unknown in", why, runs)
    if any(name.startswith("usd_") for name in shown):
        out.append("usd_per_mtok: USD per million output tokens, in GPU time (GPUs x USD per GPU-hour / output "
                   "tokens per hour) and in the GPUs' energy (at USD per kWh)")
        out += _grouped("prices of", {r.label: _prices(r) for r in runs}, runs)
    return out


def _grouped(lead: str, by_run: dict[str, str | None], runs: list[Labeled]) -> list[str]:
    """One line per distinct value, naming its runs (every run: "every run")."""
    groups: dict[str, list[str]] = {}
    for label, value in by_run.items():
        groups.setdefault(value or "unknown", []).append(label)
    return [f"{lead} {'every run' if len(labels) == len(runs) > 1 else ', '.join(labels)}: {value}"
            for value, labels in groups.items()]


def _prices(r: Labeled) -> str:
    c = r.result.cost
    if c is None:
        return "none given"
    parts = ([f"${c.gpu_hour_usd:g} per GPU-hour x {c.gpus} GPU{'s' if c.gpus > 1 else ''}"]
             if c.gpu_hour_usd is not None else []) + ([f"${c.kwh_usd:g} per kWh"] if c.kwh_usd is not None else [])
    return ", ".join(parts) + (f" ({c.reason})" if c.reason else "")


def document(runs: list[Labeled], baseline: Labeled) -> Document:
    headers, rows = table(runs, baseline)
    n = len(runs)
    columns = ([Column(headers[0])] + [Column(h, style=VALUE) for h in headers[1:n + 1]]
               + [Column(h, "x baseline", RATIO) for h in headers[n + 1:]])
    notes = [f"baseline: {baseline.label}", *_energy_notes(runs, [row[0] for row in rows])]
    full = Table(columns, rows, notes=notes)
    found = [f"{r.label} vs {baseline.label}: {m}" for r in runs if r is not baseline for m in mismatches(baseline, r)]
    return Document([*_shown(runs, baseline, rows, notes)] + ([warnings(found)] if found else []),
                    data=[full])
