"""results.scaling: what `scaling` finds (runs against a baseline, decode steps against their floor)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class RunScaling(BaseModel):
    result: str
    layout: str  # e.g. "TP=2", "DP=2 x TP=2", "PP=2 (ray)"
    gpus: int
    gpu_name: str | None
    output_tokens_per_s: float
    output_tokens_per_s_per_gpu: float
    speedup: float  # output tokens/s over the baseline's
    efficiency_pct: float  # per-GPU output tokens/s over the baseline's
    kv_capacity_tokens_total: int | None
    tpot_p50_ms: float | None
    preemptions: int | None
    # pure-decode steps at the run's full batch (stepmodel.full_batch_decode_step); a DP run: one replica's engine
    full_batch_step_ms: float | None = None
    full_batch_requests: float | None = None
    us_per_request: float | None = None  # step time per decoding request: what one engine core spends on each
    # energy (None: not measured): output tokens per joule of all the run's GPUs, each GPU's mean draw, and the
    # tokens per joule over the baseline's (more GPUs at lower utilisation: below 100%)
    output_tokens_per_joule: float | None = None
    watts_per_gpu: float | None = None
    energy_efficiency_pct: float | None = None


class DecodeScaling(BaseModel):
    result: str
    layout: str
    gpus: int
    gpu_name: str | None
    batch_size: int
    step_ms: float
    floor_ms: float | None  # the TP group's ceiling for this batch as a step time
    pct_of_ceiling: float | None
    gap_ms: float | None  # step - floor
    allreduces_per_step: int | None  # 2 per layer with TP > 1; None where the model's layers are unknown
    gap_per_allreduce_us: float | None  # the whole gap charged to the all-reduces: an upper bound
    joules_per_token: float | None = None  # the decode pass's joules (all its GPUs) per generated token


class ScalingReport(BaseModel):
    """What `scaling --format json` prints."""

    kind: Literal["scaling"] = "scaling"  # what the file is (results.kinds)
    baseline: str | None
    runs: list[RunScaling]
    decode: list[DecodeScaling]
    warnings: list[str]
