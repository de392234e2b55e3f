"""`tune`'s answer: every engine setting searched, predicted (and the top ones measured with --verify), ranked by
the objective, with the Pareto frontier, the rejected regions and the recommended command lines."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from offline_bench.core.version import __version__
from offline_bench.results.run import write_atomic

OBJECTIVES = {"throughput": "output tokens/s", "goodput": "requests/s meeting every SLO",
              "gpus": "the fewest GPUs that meet the SLOs at the request rate",
              "cost": "output tokens/s per GPU (the least $ per million tokens at one GPU-hour price)"}
# a setting's status: ranked, or why it is rejected
STATUSES = {"ok": "meets every SLO", "slo": "misses an SLO", "no-start": "would not start"}


class TuneSetting(BaseModel):
    gpu_memory_utilization: float | None = None
    kv_cache_memory_bytes: int | None = None
    max_model_len: int
    max_num_seqs: int
    max_num_batched_tokens: int
    kv_cache_dtype: str = "auto"
    tensor_parallel_size: int = 1
    data_parallel_size: int = 1

    @property
    def gpus(self) -> int:
        return self.tensor_parallel_size * self.data_parallel_size


class Measured(BaseModel):
    """What `--verify` measured for one setting (None where the run failed: `error` says why)."""

    path: str
    output_tokens_per_s: float | None = None
    goodput_requests_per_s: float | None = None
    ttft_ms: float | None = None  # at the SLO percentile
    tpot_ms: float | None = None
    e2e_ms: float | None = None
    preemptions: int | None = None
    kv_cache_tokens: int | None = None
    error: str | None = None


class TuneRow(BaseModel):
    setting: TuneSetting
    status: Literal["ok", "slo", "no-start"]
    reason: str | None = None  # why it would not start, or which SLO it misses and by how much
    rank: int | None = None  # 1 = best by the objective, among rows with status ok
    pareto: bool = False  # on the frontier of output tokens/s against TTFT at the percentile
    kv_cache_tokens: int | None = None
    max_concurrency: float | None = None
    output_tokens_per_s: float | None = None
    goodput_requests_per_s: float | None = None
    good_requests_pct: float | None = None
    ttft_ms: dict[str, float] = {}  # "p50", "p99" (the SLO percentile's name), ...
    tpot_ms: dict[str, float] = {}
    e2e_ms: dict[str, float] = {}
    preemptions: int | None = None
    usd_per_million_output_tokens: float | None = None  # GPU time at --gpu-hour-cost
    slo_miss_pct: dict[str, float] = {}  # metric -> how far over its SLO at the percentile, in %
    expected_error: dict[str, Any] = {}
    measured: Measured | None = None

    def pct(self, metric: str, q: str) -> float | None:
        return getattr(self, metric).get(q)


class Region(BaseModel):
    """A rejected region: the settings that fail for one kind of reason, and the values they span."""

    status: str
    reason: str
    count: int
    spans: dict[str, list[Any]]


class TuneResult(BaseModel):
    kind: Literal["tune"] = "tune"
    schema_version: int = 1
    tool_version: str = __version__
    created_at: str = ""
    model: str
    basis: str  # the calibration run the prediction stands on
    gpu: str  # the GPU predicted for
    workload: dict[str, Any]
    slo_ms: dict[str, float] = {}
    percentile: float = 99.0
    objective: str = "throughput"
    gpu_hour_usd: float | None = None  # --gpu-hour-cost for this GPU
    grid: dict[str, list[Any]]
    settings_searched: int = 0
    simulations: int = 0  # distinct replays (settings with the same schedule share one)
    elapsed_s: float = 0.0
    rows: list[TuneRow]
    regions: list[Region] = []
    answer: str = ""
    recommended: dict[str, str] = {}  # "vllm serve", "LLM(...)"
    verify: dict[str, Any] | None = None  # --verify's verdict: stands, why, the measured noise used
    notes: list[str] = []

    def save(self, path: str) -> None:
        write_atomic(path, self.model_dump_json(indent=2))

    @property
    def ranked(self) -> list[TuneRow]:
        return sorted((r for r in self.rows if r.rank is not None), key=lambda r: r.rank or 0)


def distinct(rows: list[TuneRow], q: str) -> list[tuple[TuneRow, int]]:
    """The ranked rows whose prediction differs from every better-ranked one, each with how many it stands for
    (settings predicted alike: the same throughput, latency and preemptions)."""
    out: dict[tuple, list] = {}
    for r in rows:
        sig = (r.status, r.output_tokens_per_s, r.ttft_ms.get(q), r.tpot_ms.get(q), r.preemptions,
               r.measured is not None)
        out.setdefault(sig, [r, 0])[1] += 1
    return [(r, n) for r, n in out.values()]
