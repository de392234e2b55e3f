"""Building results: every mode (offline passes, serving streams, imported figures, data-parallel replicas)
turns its typed per-request records (`schema.RequestRecord`) into a `RunResult` through these functions, so
throughput, latency, workload and timestamps are computed one way."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

from offline_bench.core.config import Prices, WorkloadConfig
from offline_bench.core.environment import capture_environment
from offline_bench.core.version import __version__
from offline_bench.results.energy import Cost, cost_of
from offline_bench.results.energy import merge as merge_energy
from offline_bench.results.run import (
    KVCache,
    Latency,
    Memory,
    RequestRecord,
    RunResult,
    Throughput,
    ThroughputSummary,
    Workload,
)
from offline_bench.results.stats import Distribution, MeanCI

LATENCY_FIELDS = ("queue_ms", "prefill_ms", "decode_ms", "ttft_ms", "tpot_ms", "e2e_ms")


def ms(seconds: float | None) -> float | None:
    """Seconds -> milliseconds, rounded to 0.1 us (None stays None)."""
    return None if seconds is None else round(seconds * 1000.0, 4)


def stamp() -> dict[str, str]:
    """The fields every result carries about its making."""
    return {"tool_version": __version__,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def is_good(r: RequestRecord, slo_ms: dict[str, float]) -> bool:
    """Does a request meet every SLO (ttft_ms / tpot_ms / e2e_ms ceilings)? A figure it lacks (tpot of a
    one-token output) does not count against it, as in `vllm bench serve`."""
    return all(getattr(r, k) is None or getattr(r, k) <= v for k, v in slo_ms.items())


def throughput(records: Sequence[RequestRecord], wall_s: float, prefill_window_s: float | None = None,
               decode_window_s: float | None = None, slo_ms: dict[str, float] | None = None) -> Throughput:
    """Rates of one pass. prefill/decode rates need the windows in which some request was in that phase;
    goodput needs SLOs."""
    good = sum(is_good(r, slo_ms) for r in records) if slo_ms else None
    inp = sum(r.input_tokens for r in records)
    out = sum(r.output_tokens for r in records)
    decode_tokens = sum(max(r.output_tokens - 1, 0) for r in records)  # the first token comes from prefill
    return Throughput(
        duration_s=round(wall_s, 6), requests_per_s=len(records) / wall_s, input_tokens_per_s=inp / wall_s,
        output_tokens_per_s=out / wall_s, total_tokens_per_s=(inp + out) / wall_s,
        prefill_tokens_per_s=inp / prefill_window_s if prefill_window_s else None,
        decode_tokens_per_s=decode_tokens / decode_window_s if decode_window_s else None,
        goodput_requests_per_s=good / wall_s if good is not None else None,
        good_requests_pct=100.0 * good / len(records) if good is not None and records else None)


def summarize_passes(passes: list[Throughput]) -> ThroughputSummary:
    """Mean and 95% CI of each rate over the timed passes; every pass kept."""
    ci = {}
    means: dict[str, Any] = {}
    for f in (f for f in Throughput.model_fields if f != "duration_s"):
        values = [getattr(p, f) for p in passes if getattr(p, f) is not None]
        if values:
            ci[f] = MeanCI.from_values(values)
            means[f] = ci[f].mean
        else:
            means[f] = None
    durations = [p.duration_s for p in passes if p.duration_s is not None]
    means["duration_s"] = sum(durations) / len(durations) if durations else None
    return ThroughputSummary(**means, repeats=passes, ci95=ci)


def latency(records: Sequence[RequestRecord], lateness_s: Sequence[float] | None = None,
            itl: Distribution | None = None) -> Latency:
    """Distributions of every per-request latency; ITL from the requests' inter-token gaps (serving) or else
    `itl` (offline: the engine's histogram); arrival lateness where requests followed a schedule."""
    gaps = [g for r in records for g in (r.itl_ms or [])]
    has_itl = any(r.itl_ms is not None for r in records)
    return Latency(**{k: Distribution.from_values(getattr(r, k) for r in records) for k in LATENCY_FIELDS},
                   itl_ms=Distribution.from_values(gaps) if has_itl else itl,
                   frontend_ms=Distribution.from_values(r.frontend_ms for r in records)
                   if any(r.frontend_ms is not None for r in records) else None,
                   arrival_lateness_ms=Distribution.from_values(1000.0 * s for s in lateness_s)
                   if lateness_s else None)


def workload(wl: WorkloadConfig, records: Sequence[RequestRecord], concurrency: int | None, ignore_eos: bool,
             detokenize: bool, repeats: int) -> Workload:
    """The workload as run: settings plus the token counts of one pass."""
    return Workload(
        source="synthetic" if wl.synthetic else str(wl.prompts_file), num_prompts=len(records),
        total_input_tokens=sum(r.input_tokens for r in records),
        total_output_tokens=sum(r.output_tokens for r in records),
        input_len=wl.input_len if wl.synthetic else None, output_len=wl.output_len,
        range_ratio=wl.range_ratio if wl.synthetic else None, seed=wl.seed, ignore_eos=ignore_eos,
        temperature=wl.temperature, top_p=wl.top_p, detokenize=detokenize, warmup_requests=wl.warmup,
        repeats=repeats, concurrency=concurrency, request_rate=wl.request_rate,
        prefix_len=wl.prefix_len or None, num_prefixes=wl.num_prefixes if wl.prefix_len else None,
        burstiness=wl.burstiness if wl.request_rate is not None else None, dataset=wl.dataset)


def unknown_kv_cache() -> KVCache:
    return KVCache(**dict.fromkeys(KVCache.model_fields))


def unknown_memory() -> Memory:
    return Memory(**dict.fromkeys(Memory.model_fields))


# ---------------------------------------------------------------- data parallel


def _replica_passes(rs: list[RunResult]) -> list[Throughput]:
    """Pass k of all replicas as one pass: rates over the union of their wall-clock windows."""
    passes = []
    for k in range(len(rs[0].throughput.repeats)):
        windows = [r.parallel["windows_wall_s"][k] for r in rs]
        wall = max(w[1] for w in windows) - min(w[0] for w in windows)
        pass_k = throughput([q for r in rs for q in r.requests if q.repeat == k], wall)
        pre = [r.throughput.repeats[k].prefill_tokens_per_s for r in rs]
        dec = [r.throughput.repeats[k].decode_tokens_per_s for r in rs]
        passes.append(pass_k.model_copy(update={
            "duration_s": wall, "prefill_tokens_per_s": sum(pre) if None not in pre else None,
            "decode_tokens_per_s": sum(dec) if None not in dec else None}))
    return passes


def _replica_parallel(rs: list[RunResult], t: ThroughputSummary) -> dict[str, Any]:
    base = rs[0]
    world = (base.parallel or {}).get("world_size", 1)
    dp = len(rs)
    caps = [r.kv_cache.capacity_tokens for r in rs]
    parallel = {**(base.parallel or {}), "data_parallel_size": dp,
                "gpus_used": world * dp if base.environment.device == "cuda" else 0, "world_size": world * dp,
                "output_tokens_per_s_per_gpu": t.output_tokens_per_s / (world * dp),
                "total_tokens_per_s_per_gpu": t.total_tokens_per_s / (world * dp),
                "kv_capacity_tokens_per_replica": caps, "kv_capacity_tokens_total": sum(c or 0 for c in caps),
                "replicas": [{"replica": i, "num_prompts": r.workload.num_prompts,
                              "output_tokens_per_s": r.throughput.output_tokens_per_s,
                              "total_tokens_per_s": r.throughput.total_tokens_per_s,
                              "ttft_ms_p50": r.latency.ttft_ms.p50, "tpot_ms_p50": r.latency.tpot_ms.p50,
                              "kv_capacity_tokens": r.kv_cache.capacity_tokens} for i, r in enumerate(rs)]}
    parallel.pop("replica", None)
    parallel.pop("windows_wall_s", None)
    return parallel


def aggregate_replicas(replicas: Iterable[dict[str, Any] | RunResult]) -> RunResult:
    """One result for N data-parallel replicas (their results carry their settings): rates over the union of
    their windows, every request kept."""
    rs = [r if isinstance(r, RunResult) else RunResult.model_validate(r) for r in replicas]
    base = rs[0]
    t = summarize_passes(_replica_passes(rs))
    records = [q for r in rs for q in r.requests]
    peaks = [r.kv_cache.peak_usage_pct for r in rs if r.kv_cache.peak_usage_pct is not None]
    kv = base.kv_cache.model_copy(update={
        "peak_usage_pct": max(peaks) if peaks else None,
        "preemptions": sum(r.kv_cache.preemptions or 0 for r in rs),
        "prefix_cache_queries": sum(r.kv_cache.prefix_cache_queries or 0 for r in rs),
        "prefix_cache_hits": sum(r.kv_cache.prefix_cache_hits or 0 for r in rs)})
    wl = base.workload.model_copy(update={
        "num_prompts": sum(r.workload.num_prompts or 0 for r in rs),
        "total_input_tokens": sum(r.workload.total_input_tokens or 0 for r in rs),
        "total_output_tokens": sum(r.workload.total_output_tokens or 0 for r in rs)})
    notes = base.notes + [f"Data parallel: {len(rs)} engine replicas, each in its own process; the workload was "
                          "dealt round-robin; rates are over the union of the replicas' timed windows (wall clock)."]
    return base.model_copy(update={
        "environment": capture_environment(), "engine_args": {**base.engine_args, "data_parallel_size": len(rs)},
        "workload": wl, "kv_cache": kv, "throughput": t, "latency": latency(records), "requests": records,
        "timeline": [p for r in rs for p in r.timeline], "parallel": _replica_parallel(rs, t), "notes": notes,
        "roofline": None, **_replica_energy(rs, wl, t)})


def _replica_energy(rs: list[RunResult], wl: Any, t: Any) -> dict[str, Any]:
    """Every replica's GPUs' energy as one, and the cost of the whole (prices resolved by the replicas)."""
    out_tokens = wl.total_output_tokens or 0
    energy = merge_energy([r.energy for r in rs], out_tokens, out_tokens + (wl.total_input_tokens or 0))
    c = rs[0].cost  # each replica resolved the prices for its GPU: the same for all
    prices = Prices(gpu_hour_usd=c.gpu_hour_usd, kwh_usd=c.kwh_usd) if c else None
    gpus = sum((r.parallel or {}).get("world_size", 1) for r in rs)
    cost = cost_of(prices, None, gpus, t.output_tokens_per_s, energy)
    if c is not None and c.reason and (cost is None or not cost.reason):  # e.g. no price for this GPU
        cost = (cost or Cost(gpus=gpus)).model_copy(update={"reason": c.reason})
    return {"energy": energy, "cost": cost}
