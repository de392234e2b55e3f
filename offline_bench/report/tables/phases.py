"""`phases`: prefill and decode measured apart, each row against its ceiling."""

from __future__ import annotations

from offline_bench.report.table import TEXT, Column, Document, Style, Table
from offline_bench.results.phases import PhasesResult

COLUMNS = [Column("phase"), Column("batch", "requests"), Column("input", "tokens"), Column("output", "tokens"),
           Column("latency ms (prefill: batch, decode: step)", "ms", Style(",.2f", ints=None)),
           Column("tokens/s", "tokens/s", Style(",.1f", ints=None)),
           Column("ceiling tokens/s", "tokens/s", Style(",.0f", ints=None)),
           Column("% of ceiling", "%", Style(".1f", ints=None, suffix="%")), Column("note", style=TEXT)]


def document(r: PhasesResult) -> Document:
    rows = [[x.phase, x.batch_size, x.input_len, x.output_len or None, x.latency_ms, x.tokens_per_s,
             x.ceiling_tokens_per_s, x.pct_of_ceiling, x.note] for x in r.rows]
    gpu = f"ceilings for {r.gpu.name} ({r.gpu.source})" if r.gpu else "no GPU: ceilings unknown"
    return Document([Table(COLUMNS, rows, notes=[gpu])], own_json=lambda: r.model_dump_json(indent=2))
