"""`roofline`: the hardware's ceiling for a model, and the decode step floor at each batch size."""

from __future__ import annotations

from offline_bench.predict.roofline import Roofline
from offline_bench.report.table import NUM, Column, Document, Style, Table, fmt

WHOLE = Style(",.0f", ints=None)
GIB = Style(".2f", ints=None, suffix=" GiB")


def document(r: Roofline) -> Document:
    head = [["model", r.model], ["GPU", f"{r.gpu.name} x{r.num_gpus} ({r.gpu.source})"],
            ["weight_bytes", f"{fmt(r.weight_bytes, NUM)} ({fmt(r.weight_bytes / 2**30, GIB)})"],
            ["kv_bytes_per_token", fmt(r.kv_bytes_per_token, NUM)],
            ["flops_per_token", f"{fmt(r.flops_per_token, WHOLE)} (context {fmt(r.context_tokens, NUM)})"],
            ["prefill_tokens_per_s_ceiling", fmt(r.prefill_tokens_per_s_ceiling, WHOLE)]]
    rows = [[b, r.decode_step_ms_floor[b], r.decode_tokens_per_s_ceiling[b], r.decode_bound.get(b, "")]
            for b in r.decode_tokens_per_s_ceiling]
    columns = [Column("batch", "requests"), Column("decode step floor (ms)", "ms", Style(".3f", ints=None)),
               Column("decode tokens/s ceiling", "tokens/s", Style(",.1f", ints=None)), Column("bound by")]
    return Document([Table([Column(""), Column("")], head, header=False), Table(columns, rows)],
                    own_json=lambda: r.model_dump_json(indent=2))
