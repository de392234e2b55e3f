"""`phases`: prefill and decode measured apart, each row against its ceiling."""

from __future__ import annotations

from offline_bench.report.table import TEXT, Column, Document, Style, Table
from offline_bench.results.phases import PhasesResult

COLUMNS = [Column("phase"), Column("batch", "requests"), Column("input", "tokens"), Column("output", "tokens"),
           Column("latency ms (prefill: batch, decode: step)", "ms", Style(",.2f", ints=None)),
           Column("tokens/s", "tokens/s", Style(",.1f", ints=None)),
           Column("ceiling tokens/s", "tokens/s", Style(",.0f", ints=None)),
           Column("% of ceiling", "%", Style(".1f", ints=None, suffix="%")), Column("note", style=TEXT)]


# shown when some row has them (energy measured through NVML)
ENERGY_COLUMNS = [Column("J/token (prefill: prompt, decode: generated)", "J/token", Style(".4g", ints=None)),
                  Column("avg W", "W", Style(",.0f", ints=None))]


def document(r: PhasesResult) -> Document:
    energy = any(x.joules_per_token is not None for x in r.rows)
    rows = [[x.phase, x.batch_size, x.input_len, x.output_len or None, x.latency_ms, x.tokens_per_s,
             x.ceiling_tokens_per_s, x.pct_of_ceiling, *([x.joules_per_token, x.avg_watts] if energy else []), x.note]
            for x in r.rows]
    notes = [f"ceilings for {r.gpu.name} ({r.gpu.source})" if r.gpu else "no GPU: ceilings unknown"]
    if r.energy_unknown and not energy:
        notes.append(f"energy per token: unknown ({r.energy_unknown})")
    if energy and r.idle_watts is not None:
        notes.append(f"idle: {r.idle_watts:,.0f} W before the engine started (every GPU of it)")
    columns = COLUMNS[:-1] + (ENERGY_COLUMNS if energy else []) + COLUMNS[-1:]
    return Document([Table(columns, rows, notes=notes)], own_json=lambda: r.model_dump_json(indent=2))
