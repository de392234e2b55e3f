"""results.phases"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from offline_bench.core.environment import Environment
from offline_bench.core.gpus import GPUSpec
from offline_bench.results.run import SCHEMA_VERSION, write_atomic


class PhaseRow(BaseModel):
    phase: str  # "prefill" or "decode"
    batch_size: int
    input_len: int
    output_len: int | None
    context_tokens: int  # the context the ceiling assumes
    latency_ms: float | None  # prefill: the batch's prefill time; decode: one step; None: not run
    tokens_per_s: float | None
    ceiling_tokens_per_s: float | None
    pct_of_ceiling: float | None
    note: str | None = None  # why a row was not run, or how it ran
    # the pass's energy, all the engine's GPUs (None: not measured, PhasesResult.energy_unknown says why)
    joules_per_token: float | None = None  # prefill: per prompt token of the batch; decode: per generated token
    avg_watts: float | None = None  # over the whole pass


class PhasesResult(BaseModel):
    kind: Literal["phases"] = "phases"  # what the file is (results.kinds)
    schema_version: int = SCHEMA_VERSION  # the same versioning as run results
    mode: Literal["phases"] = "phases"
    tool_version: str
    created_at: str
    model: str
    environment: Environment
    engine_args: dict[str, Any]
    startup: dict[str, Any]
    gpu: GPUSpec | None
    rows: list[PhaseRow]
    notes: list[str]
    energy_unknown: str | None = None  # why no row has energy (no NVML, no GPU)
    idle_watts: float | None = None  # the engine's GPUs before it started

    def save(self, path: str | Path) -> None:
        write_atomic(path, self.model_dump_json(indent=2))
