"""`plan`: one row per combination of settings: the KV cache an engine will get and where the memory goes."""

from __future__ import annotations

from typing import Any

from offline_bench.report.table import SIG4, Column, Document, Table
from offline_bench.results.plan import PlanRow, plan_json

PLAN_COLUMNS = ("kv_cache_tokens", "num_blocks", "kv_cache_gib", "max_concurrency", "fits", "weights_gib",
                "peak_activation_gib", "non_torch_gib", "requested_gib", "gpu_total_gib", "basis", "reason")
SETTING_COLUMNS = ("gpu_memory_utilization", "kv_cache_memory_bytes", "max_model_len", "kv_cache_dtype",
                   "max_num_batched_tokens", "max_num_seqs", "tensor_parallel_size", "block_size")


def _column(name: str, values: list[Any]) -> Column:
    """A column of numbers (the model's float fields hold floats only) shows 4 significant digits, ints whole,
    lined up on the point; bools and text go left."""
    unit = "GiB" if name.endswith("_gib") else ""
    kinds = {type(v) for v in values if v is not None}
    if not kinds or not kinds <= {int, float}:
        return Column(name, unit)
    return Column(name, unit, SIG4, "decimal")


def document(rows: list[PlanRow]) -> Document:
    settings = [c for c in SETTING_COLUMNS if any(getattr(r, c) is not None for r in rows)]
    names = settings + list(PLAN_COLUMNS)
    body = [[getattr(r, c) for c in names] for r in rows]
    columns = [_column(n, [row[i] for row in body]) for i, n in enumerate(names)]
    return Document([Table(columns, body)], final_newline=False,
                    own_json=lambda: plan_json(rows))
