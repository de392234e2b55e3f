"""results.plan"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel


class PlanSettings(BaseModel):
    """The engine arguments that decide the KV cache."""

    gpu_memory_utilization: float | None = None
    kv_cache_memory_bytes: int | None = None
    max_model_len: int
    kv_cache_dtype: str = "auto"
    max_num_batched_tokens: int | None = None
    max_num_seqs: int | None = None
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    block_size: int | None = None


class Calibration(BaseModel):
    """The measured memory of one engine start."""

    source: str
    model: str | None = None  # what the calibration run ran (None for a raw log)
    device: str  # "cuda" or "cpu"
    total_gib: float | None  # device memory (CPU: the NUMA node's)
    settings: PlanSettings
    num_blocks: int
    block_size: int
    weights_gib: float | None = None
    peak_activation_gib: float | None = None
    non_torch_gib: float | None = None
    non_kv_gib: float | None = None  # everything but the KV cache, from the run's own block count


class PlanRow(BaseModel):
    gpu_memory_utilization: float | None
    kv_cache_memory_bytes: int | None
    max_model_len: int
    kv_cache_dtype: str
    max_num_batched_tokens: int | None
    max_num_seqs: int | None
    tensor_parallel_size: int
    block_size: int
    fits: bool
    reason: str | None
    kv_cache_gib: float | None
    kv_cache_tokens: int | None
    num_blocks: int | None
    max_concurrency: float | None
    weights_gib: float | None
    peak_activation_gib: float | None
    non_torch_gib: float | None
    gpu_total_gib: float | None
    requested_gib: float | None
    basis: str
    # the largest KV miss measured for this kind of plan (basis and model family: model-dense, model-moe,
    # calibrated), from docs/results/prediction-accuracy.md
    expected_kv_error_pct: float | None = None
    expected_kv_kind: str | None = None


class PlanTable(BaseModel):
    """What `plan --format json` prints (before kinds: the bare list of rows)."""

    kind: Literal["plan"] = "plan"  # what the file is (results.kinds)
    rows: list[PlanRow]


def plan_json(rows: list[PlanRow]) -> str:
    """`plan --format json`: {"kind": "plan", "rows": [...]}."""
    return json.dumps({"kind": "plan", "rows": [r.model_dump() for r in rows]}, indent=2)
