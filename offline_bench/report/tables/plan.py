"""`plan`: one row per combination of settings. The console leads with the answer (the KV cache an engine will
get, the requests it holds, whether it fits and why: each reason once, under the table) for the settings that
differ between rows; `wide` (and csv, json always) adds every setting and the memory budget behind the answer."""

from __future__ import annotations

import textwrap
from typing import Any

from offline_bench.report.table import SIG4, YES_NO, Column, Document, Table, fmt
from offline_bench.results.plan import PlanRow, plan_json

PLAN_COLUMNS = ("kv_cache_tokens", "num_blocks", "kv_cache_gib", "max_concurrency", "fits", "weights_gib",
                "peak_activation_gib", "non_torch_gib", "requested_gib", "gpu_total_gib", "basis", "reason")
SETTING_COLUMNS = ("gpu_memory_utilization", "kv_cache_memory_bytes", "max_model_len", "kv_cache_dtype",
                   "max_num_batched_tokens", "max_num_seqs", "tensor_parallel_size", "block_size")
# the console's short headers; the answer columns, in order, after the settings that differ
SHORT = {"gpu_memory_utilization": "gmu", "kv_cache_memory_bytes": "KV bytes", "kv_cache_dtype": "KV dtype",
         "max_num_batched_tokens": "batched tokens", "max_num_seqs": "max seqs", "tensor_parallel_size": "TP",
         "block_size": "block", "kv_cache_tokens": "KV tokens", "kv_cache_gib": "KV GiB",
         "max_concurrency": "max concurrency", "reason": "why", "gpu_total_gib": "device GiB"}
ANSWER = ("kv_cache_tokens", "kv_cache_gib", "max_concurrency", "fits", "reason")
ALWAYS = ("max_model_len",)  # shown even when every row has the same
WIDTH = 118  # the console's notes are wrapped to stay within ~120 columns, as the table does


def _column(name: str, values: list[Any], header: str | None = None) -> Column:
    """A column of numbers (the model's float fields hold floats only) shows 4 significant digits, ints whole,
    lined up on the point; fits shows yes / no; text goes left."""
    unit = "GiB" if name.endswith("_gib") else ""
    kinds = {type(v) for v in values if v is not None}
    if name == "fits":
        return Column(header or name, unit, YES_NO)
    if not kinds or not kinds <= {int, float}:
        return Column(header or name, unit)
    return Column(header or name, unit, SIG4, "decimal")


def _table(rows: list[PlanRow], names: list[str], short: bool = False) -> Table:
    body = [[getattr(r, c) for c in names] for r in rows]
    return Table([_column(n, [row[i] for row in body], SHORT.get(n, n) if short else None)
                  for i, n in enumerate(names)], body)


def _same(rows: list[PlanRow], name: str) -> bool:
    return len({getattr(r, name) for r in rows}) == 1


def document(rows: list[PlanRow], wide: bool = False) -> Document:
    settings = [c for c in SETTING_COLUMNS if any(getattr(r, c) is not None for r in rows)]
    full = _table(rows, settings + list(PLAN_COLUMNS))
    if wide:
        return Document([full], final_newline=False, own_json=lambda: plan_json(rows))
    differ = [c for c in settings if c in ALWAYS or c in ("gpu_memory_utilization", "kv_cache_memory_bytes")
              or not _same(rows, c)]
    constant = [c for c in settings if c not in differ] + [c for c in ("basis", "gpu_total_gib") if _same(rows, c)]
    reasons = list(dict.fromkeys(r.reason for r in rows if r.reason))  # each once, in order
    shown = _table(rows, differ + [c for c in ANSWER if reasons or c != "reason"], short=True)
    for row in shown.rows if reasons else []:  # the reason's number in the row, its text under the table
        row[-1] = f"({reasons.index(row[-1]) + 1})" if row[-1] else None
    notes = [f"({i}) {why}" for i, why in enumerate(reasons, 1)]
    if rows:
        notes.append("every row: " + ", ".join(f"{SHORT.get(c, c)} {fmt(getattr(rows[0], c), SIG4)}"
                                               for c in constant))
    if rows and rows[0].expected_kv_kind:
        e = rows[0].expected_kv_error_pct
        notes.append(f"expected KV error ({rows[0].expected_kv_kind}): " + (
            f"within {e:.2f}% (largest miss on measured starts, docs/results/prediction-accuracy.md)"
            if e is not None else "never checked on a held-out start of this kind"))
    notes.append("the memory budget behind each answer (weights, activation, non-torch, requested): --wide, or "
                 "--format csv / json")
    shown.notes = [textwrap.fill(n, WIDTH, subsequent_indent="    ", break_on_hyphens=False) for n in notes]
    return Document([shown], final_newline=False, own_json=lambda: plan_json(rows), data=[full])
