"""results.sweep"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from offline_bench.core.config import RunConfig
from offline_bench.results.run import write_atomic

SWEEP_SCHEMA_VERSION = 1


# Fields a sweep may vary (comma lists on the command line), with short names for point keys: engine fields, and
# the arrival rate of the workload ("inf": all at once).
SWEEPABLE = {"gpu_memory_utilization": "gmu", "kv_cache_memory_bytes": "kvb", "max_model_len": "mml",
             "max_num_seqs": "mns", "max_num_batched_tokens": "mnbt", "kv_cache_dtype": "kvd", "dtype": "dt",
             "tensor_parallel_size": "tp", "pipeline_parallel_size": "pp", "request_rate": "rr"}


WORKLOAD_AXES = ("request_rate",)


def set_axis(cfg: RunConfig, field: str, value: Any) -> None:
    """Put one swept value into a run's config (the rate "inf" means all at once)."""
    if field in WORKLOAD_AXES:
        setattr(cfg.workload, field, None if value == "inf" else value)
    else:
        setattr(cfg.engine, field, value)


class SweepSpec(BaseModel):
    kind: Literal["sweep-spec"] = "sweep-spec"  # what the file is (results.kinds): a sweep's sweep.json
    schema_version: int = SWEEP_SCHEMA_VERSION
    base: RunConfig
    grid: dict[str, list[Any]]  # engine field -> values, in the order given
    timeout_per_point_s: float | None = None
    target_concurrency: int | None = None
    knee_tolerance: float = 0.05
    calibrate: str | None = None  # a run to predict every point from (default: the first measured point)
    predict_only: bool = False  # predict every point from `calibrate`, start no engine
    fresh_process: bool = False  # every point in a process of its own (default: one worker for all, renewed
    # after a failure)

    def points(self) -> list[dict[str, Any]]:
        keys = list(self.grid)
        return [dict(zip(keys, combo)) for combo in itertools.product(*(self.grid[k] for k in keys))]

    def comparable(self) -> dict[str, Any]:
        """What must match for a rerun to resume into the same directory."""
        return {"base": self.base.model_dump(exclude={"verbose"}), "grid": self.grid,
                "predict_only": self.predict_only}


class FailedPoint(BaseModel):
    """What points/KEY.json holds for a point that did not finish (a finished one holds its run result)."""

    kind: Literal["failed-point"] = "failed-point"  # what the file is (results.kinds)
    status: Literal["failed"] = "failed"
    settings: dict[str, Any]
    error: str | None = None
    elapsed_s: float | None = None
    engine_log: str | None = None  # the engine's log kept beside it (points/KEY.log), when the engine left one

    def save(self, path: str | Path) -> None:
        write_atomic(path, self.model_dump_json(indent=2, exclude_none=True))


class PointRow(BaseModel):
    key: str
    settings: dict[str, Any]
    status: str  # "ok" or "failed"
    error: str | None = None
    kv_capacity_tokens: int | None = None
    kv_capacity_gib: float | None = None
    max_concurrency: float | None = None
    output_tokens_per_s: float | None = None
    total_tokens_per_s: float | None = None
    ttft_ms_p50: float | None = None
    ttft_ms_p99: float | None = None
    tpot_ms_p50: float | None = None
    peak_kv_usage_pct: float | None = None
    preemptions: int | None = None
    goodput_requests_per_s: float | None = None  # with --goodput SLOs
    good_requests_pct: float | None = None
    init_s: float | None = None
    point_s: float | None = None  # the whole point as the sweep waited for it (startup_breakdown splits it)
    startup_breakdown: dict[str, float | None] = Field(default_factory=dict)
    elapsed_s: float | None = None
    resolved: dict[str, Any] = Field(default_factory=dict)  # what the engine ran with (e.g. the default mml)
    mode: str = "offline"  # "predicted" in a --predict-only sweep
    # measured points: what was predicted for them (KV: plan's model; the rest: `predict` from the calibration)
    predicted_kv_tokens: int | None = None
    kv_error_pct: float | None = None
    predicted_output_tokens_per_s: float | None = None
    output_tokens_per_s_error_pct: float | None = None
    predicted_ttft_ms_p50: float | None = None
    ttft_ms_p50_error_pct: float | None = None
    # the engine's GPUs over the timed passes (results.energy; None: not measured, `energy_unknown` says why)
    joules_per_output_token: float | None = None
    output_tokens_per_joule: float | None = None
    avg_watts: float | None = None
    energy_unknown: str | None = None
    # USD per million output tokens at --gpu-hour-cost (GPU time) and --kwh-cost (energy)
    usd_per_million_output_tokens: float | None = None
    energy_usd_per_million_output_tokens: float | None = None


class SweepSummary(BaseModel):
    kind: Literal["sweep"] = "sweep"  # what the file is (results.kinds): a sweep's summary.json
    schema_version: int = SWEEP_SCHEMA_VERSION
    spec: SweepSpec
    rows: list[PointRow]
    analysis: dict[str, Any] = Field(default_factory=dict)


def _fmt_value(v: Any) -> str:
    return str(v).replace("/", "_").replace(" ", "")


def point_key(settings: dict[str, Any]) -> str:
    return "_".join(f"{SWEEPABLE.get(k, k)}-{_fmt_value(v)}" for k, v in settings.items()) or "base"


def point_config(spec: SweepSpec, settings: dict[str, Any]) -> RunConfig:
    cfg = spec.base.model_copy(deep=True)
    for k, v in settings.items():
        set_axis(cfg, k, v)
    return cfg


