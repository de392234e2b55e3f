"""`scaling`: runs on different layouts side by side, and the batch-1 decode step against its TP group's floor."""

from __future__ import annotations

import json

from offline_bench.report.table import Column, Document, Item, Style, Table, decimals, fmt, warnings
from offline_bench.results.scaling import ScalingReport

RUN_HEADERS = ["result", "layout", "GPUs", "GPU", "output tok/s", "per GPU", "speedup", "efficiency per GPU",
               "KV tokens (all)", "TPOT p50 ms", "preemptions", "decode step ms", "at batch", "us per request"]
DECODE_HEADERS = ["result", "layout", "GPUs", "GPU", "batch", "step ms", "floor ms", "% of ceiling", "gap ms",
                  "all-reduces / step", "gap per all-reduce us"]
SPEEDUP = Style(".2f", ints=None, suffix="x")
EFFICIENCY = Style(".1f", ints=None, suffix="%")
JOULES = Style(".4g", ints=None)  # joules per token: 0.0712
BASELINE_NOTE = ("speedup and efficiency against {} (per-GPU output tokens/s); decode step: the median of the "
                 "pure-decode steps at the run's full batch (a DP run: one replica's engine), and that step's time "
                 "per decoding request")
ENERGY_HEADERS = ["output tok/J", "W per GPU", "tok/J vs baseline"]  # shown when some run has energy
ENERGY_NOTE = ("energy: output tokens per joule of every GPU of the run over its timed passes (NVML); W per GPU: "
               "their mean draw; tok/J vs baseline: the run's tokens per joule over the baseline's")
FLOOR_NOTE = ("floor: the TP group's ceiling for the batch as a step time (weights and KV read at the GPUs' "
              "bandwidth); gap = step - floor, charged to the all-reduces as an upper bound")


def _n(v: float | int | None, digits: int = 1) -> str:
    return fmt(v, decimals(digits))


def document(r: ScalingReport) -> Document:
    energy = any(x.output_tokens_per_joule is not None for x in r.runs)
    runs = [[x.result, x.layout, str(x.gpus), x.gpu_name or "", _n(x.output_tokens_per_s, 0),
             _n(x.output_tokens_per_s_per_gpu, 0), fmt(x.speedup, SPEEDUP), fmt(x.efficiency_pct, EFFICIENCY),
             _n(x.kv_capacity_tokens_total), _n(x.tpot_p50_ms), _n(x.preemptions), _n(x.full_batch_step_ms),
             _n(x.full_batch_requests, 0), _n(x.us_per_request)]
            + ([_n(x.output_tokens_per_joule, 2), _n(x.watts_per_gpu, 0), fmt(x.energy_efficiency_pct, EFFICIENCY)]
               if energy else []) for x in r.runs]
    decode_energy = any(x.joules_per_token is not None for x in r.decode)
    decode = [[x.result, x.layout, str(x.gpus), x.gpu_name or "", str(x.batch_size), _n(x.step_ms, 2),
               _n(x.floor_ms, 2), _n(x.pct_of_ceiling), _n(x.gap_ms, 2), _n(x.allreduces_per_step),
               _n(x.gap_per_allreduce_us)] + ([fmt(x.joules_per_token, JOULES)] if decode_energy else [])
              for x in r.decode]
    items: list[Item] = []
    if runs:
        notes = ([BASELINE_NOTE.format(r.baseline)] if r.baseline else []) + ([ENERGY_NOTE] if energy else [])
        items.append(Table([Column(h) for h in RUN_HEADERS + (ENERGY_HEADERS if energy else [])], runs, notes=notes))
    if decode:
        headers = DECODE_HEADERS + (["J per token"] if decode_energy else [])
        items.append(Table([Column(h) for h in headers], decode, notes=[FLOOR_NOTE]))
    items += [warnings([w]) for w in r.warnings]
    return Document(items, final_newline=False, own_json=lambda: json.dumps(r.model_dump(), indent=2))
