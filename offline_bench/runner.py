"""`run`: one benchmark = warm-up, R timed passes, then a result in the versioned schema."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

from offline_bench import __version__
from offline_bench.config import RunConfig
from offline_bench.engine import BatchOutcome, Engine, check_max_model_len
from offline_bench.environment import capture_environment
from offline_bench.errors import BenchError
from offline_bench.presets import resolve_model
from offline_bench.schema import (
    KVCache,
    Latency,
    Memory,
    RequestRecord,
    RunResult,
    Throughput,
    ThroughputSummary,
    TimelinePoint,
    Workload,
)
from offline_bench.stats import Distribution, MeanCI
from offline_bench.workloads import Request, build_workload, load_prompt_file

ProgressFactory = Callable[[str, int], contextlib.AbstractContextManager[Callable[[int], None]]]

NOTES = [
    "Timed window: from submitting the first request to the last request's final output; it includes "
    "tokenization of text prompts, scheduling, sampling and (unless --no-detokenize) detokenization.",
    "Warm-up requests run first and are not timed; the prefix cache is reset after warm-up and between "
    "repeats, so hits counted here come from prompts shared within the timed batch.",
    "Per-request queue/prefill/decode use the engine core's monotonic timestamps; TTFT and E2E are measured "
    "in the front end from arrival (RequestOutput.metrics).",
    "prefill_tokens_per_s = input tokens / time during which at least one request was in prefill; "
    "decode_tokens_per_s = (output tokens - one per request) / time during which at least one request was "
    "decoding. Under continuous batching the two windows overlap, so they do not add up to the wall time.",
]


@contextlib.contextmanager
def _no_progress(_desc: str, _total: int) -> Iterator[Callable[[int], None]]:
    yield lambda _n: None


def _throughput(outcome: BatchOutcome) -> Throughput:
    recs = outcome.records
    wall = outcome.wall_s
    inp = sum(r["input_tokens"] for r in recs)
    out = sum(r["output_tokens"] for r in recs)
    decode_tokens = sum(max(r["output_tokens"] - 1, 0) for r in recs)
    pw, dw = outcome.prefill_window_s, outcome.decode_window_s
    return Throughput(
        duration_s=round(wall, 6), requests_per_s=len(recs) / wall, input_tokens_per_s=inp / wall,
        output_tokens_per_s=out / wall, total_tokens_per_s=(inp + out) / wall,
        prefill_tokens_per_s=inp / pw if pw else None, decode_tokens_per_s=decode_tokens / dw if dw else None)


def summarize_passes(passes: list[Throughput]) -> ThroughputSummary:
    fields = [f for f in Throughput.model_fields if f != "duration_s"]
    ci = {}
    means: dict[str, Any] = {}
    for f in fields:
        values = [getattr(p, f) for p in passes if getattr(p, f) is not None]
        if values:
            ci[f] = MeanCI.from_values(values)
            means[f] = ci[f].mean
        else:
            means[f] = None
    durations = [p.duration_s for p in passes if p.duration_s is not None]
    means["duration_s"] = sum(durations) / len(durations) if durations else None
    return ThroughputSummary(**means, repeats=passes, ci95=ci)


def check_lengths(engine: Engine, requests: list[Request], max_model_len: int) -> list[int]:
    """Prompt lengths, refusing any request that cannot fit max_model_len (one line naming the fix)."""
    lens = []
    for i, req in enumerate(requests):
        n = engine.prompt_len(req)
        if n + req.output_len > max_model_len:
            raise BenchError(f"request {i} needs {n} prompt + {req.output_len} output tokens, more than "
                             f"--max-model-len {max_model_len}: raise --max-model-len or shorten the workload")
        lens.append(n)
    return lens


def preflight(cfg: RunConfig) -> None:
    """Every check that needs no engine, so bad input fails in a second, not after an engine start."""
    cfg.validate_values()
    model = resolve_model(cfg.engine.model)
    info = model.info
    check_max_model_len(cfg.engine, info, model.config)
    mml = cfg.engine.max_model_len or (info.max_position_embeddings if info else None)
    wl = cfg.workload
    if mml is None:
        return
    kv_bytes = cfg.engine.kv_cache_memory_bytes
    if kv_bytes and info:  # one request of max_model_len tokens must fit (vLLM refuses the start otherwise)
        e = cfg.engine
        per_token = info.kv_bytes_per_token(e.kv_cache_dtype if e.kv_cache_dtype != "auto" else None)
        per_gpu = per_token * max(1, info.num_kv_heads // e.tensor_parallel_size) / info.num_kv_heads
        per_gpu *= -(-info.num_layers // e.pipeline_parallel_size) / info.num_layers
        if kv_bytes < mml * per_gpu:
            need = int(mml * per_gpu)
            raise BenchError(f"not enough memory for the KV cache: --kv-cache-memory-bytes {kv_bytes} holds "
                             f"{int(kv_bytes // per_gpu)} tokens, fewer than one request of max_model_len {mml}: "
                             f"give at least {need} ({need / 2**20:.1f} MiB) or lower --max-model-len")
    flag = "--max-model-len" if cfg.engine.max_model_len else "the model's limit"
    if wl.synthetic:
        longest_in, longest_out = (max(1, int(n * (1 + wl.range_ratio))) for n in (wl.input_len, wl.output_len))
        if longest_in + longest_out > mml:
            raise BenchError(f"synthetic requests need up to {longest_in} prompt + {longest_out} output tokens, more "
                             f"than {flag} {mml}: raise --max-model-len or lower --input-len/--output-len")
    else:
        longest_out = max(r.output_len for r in load_prompt_file(wl.prompts_file, wl.output_len))
        if longest_out >= mml:
            raise BenchError(f"requests of {wl.prompts_file} ask for {longest_out} output tokens, not fewer than "
                             f"{flag} {mml}: raise --max-model-len or lower --output-len")


def run_benchmark(cfg: RunConfig, engine: Engine | None = None, progress: ProgressFactory | None = None,
                  shard: tuple[int, int] | None = None) -> RunResult:
    """Run one benchmark. With `engine` given, reuse it (its arguments are what gets recorded).
    `shard=(rank, size)` runs every size-th request from rank (a data-parallel replica's share)."""
    cfg.validate_values()
    if cfg.engine.data_parallel_size > 1 and engine is None and shard is None:
        from offline_bench.parallel import run_data_parallel

        return run_data_parallel(cfg)
    own = engine is None
    if engine is None:
        preflight(cfg)
        engine = Engine(cfg.engine, echo_log=cfg.verbose)
    try:
        return _run(cfg, engine, progress or _no_progress, shard)
    finally:
        if own:
            engine.close()


def _run(cfg: RunConfig, engine: Engine, progress: ProgressFactory, shard: tuple[int, int] | None) -> RunResult:
    wl = cfg.workload
    resolved = engine.resolved_args()
    vocab, special = engine.vocab()
    warm, timed = build_workload(wl, vocab, special)
    if shard is not None:
        timed = timed[shard[0]::shard[1]]
    mml = resolved["max_model_len"]
    check_lengths(engine, warm + timed, mml)
    ignore_eos = wl.effective_ignore_eos

    def params(reqs: list[Request]) -> list[Any]:
        return [engine.sampling_params(r, wl.temperature, wl.top_p, ignore_eos, wl.detokenize) for r in reqs]

    if warm:
        with progress("warm-up", len(warm)) as tick:
            engine.run_batch(warm, params(warm), "warmup", on_finish=tick)
    passes: list[BatchOutcome] = []
    for rep in range(wl.repeats):
        engine.reset_prefix_cache()
        desc = "timed" if wl.repeats == 1 else f"timed {rep + 1}/{wl.repeats}"
        with progress(desc, len(timed)) as tick:
            passes.append(engine.run_batch(timed, params(timed), f"r{rep}", cfg.timeline_interval_ms / 1000.0,
                                           concurrency=cfg.concurrency, on_finish=tick))
    result = assemble(cfg, engine, passes, resolved, ignore_eos)
    if shard is not None:
        result.parallel = {**(result.parallel or {}), "replica": shard[0],
                           "windows_wall_s": [list(p.window_wall or (0.0, 0.0)) for p in passes]}
        for r in result.requests:
            r.replica = shard[0]
    return result


def assemble(cfg: RunConfig, engine: Engine, passes: list[BatchOutcome], resolved: dict[str, Any],
             ignore_eos: bool) -> RunResult:
    wl = cfg.workload
    records = [RequestRecord(repeat=rep, **r) for rep, p in enumerate(passes) for r in p.records]
    timeline = [TimelinePoint(repeat=rep, **t) for rep, p in enumerate(passes) for t in p.timeline]
    first = passes[0].records
    lat = Latency(**{k: Distribution.from_values(getattr(r, k) for r in records)
                     for k in ("queue_ms", "prefill_ms", "decode_ms", "ttft_ms", "tpot_ms", "e2e_ms")})
    facts = engine.startup_facts()
    cap = engine.kv_capacity()
    t_sum = summarize_passes([_throughput(p) for p in passes])
    peaks = [p.peak_kv_pct for p in passes if p.peak_kv_pct is not None]
    queries = sum(p.counters_delta.get("prefix_queries", 0.0) for p in passes)
    hits = sum(p.counters_delta.get("prefix_hits", 0.0) for p in passes)
    kv = KVCache(**cap, logged_capacity_tokens=facts.get("kv_cache_tokens"),
                 peak_usage_pct=round(max(peaks), 3) if peaks else None,
                 preemptions=int(sum(p.counters_delta.get("preemptions", 0.0) for p in passes)),
                 prefix_cache_queries=int(queries), prefix_cache_hits=int(hits),
                 prefix_cache_hit_rate=round(hits / queries, 6) if queries else None)
    parts = [facts.get(k) for k in ("weights_gib", "peak_activation_gib", "cuda_graph_gib", "non_torch_gib")]
    kv_gib = facts.get("kv_cache_gib") or cap.get("capacity_gib")
    memory = Memory(weights_gib=facts.get("weights_gib"), peak_activation_gib=facts.get("peak_activation_gib"),
                    cuda_graph_gib=facts.get("cuda_graph_gib"), non_torch_gib=facts.get("non_torch_gib"),
                    kv_cache_gib=kv_gib,
                    total_gib=round(sum(parts) + kv_gib, 3) if None not in parts and kv_gib else None)
    workload = Workload(
        source="synthetic" if wl.synthetic else str(wl.prompts_file), num_prompts=len(first),
        total_input_tokens=sum(r["input_tokens"] for r in first),
        total_output_tokens=sum(r["output_tokens"] for r in first),
        input_len=wl.input_len if wl.synthetic else None, output_len=wl.output_len,
        range_ratio=wl.range_ratio if wl.synthetic else None, seed=wl.seed, ignore_eos=ignore_eos,
        temperature=wl.temperature, top_p=wl.top_p, detokenize=wl.detokenize, warmup_requests=wl.warmup,
        repeats=wl.repeats, concurrency=cfg.concurrency)
    env = capture_environment()
    roof = None
    from offline_bench.roofline import achieved, detect_gpu

    gpu = detect_gpu(env.gpu_name)
    if gpu and engine.info and first:
        running = [t.running for t in timeline if t.running > 0]
        roof = achieved(engine.info, gpu, sum(running) / len(running) if running else 1.0,
                        sum(r["input_tokens"] for r in first) / len(first),
                        sum(r["output_tokens"] for r in first) / len(first), t_sum.prefill_tokens_per_s,
                        t_sum.decode_tokens_per_s, resolved.get("tensor_parallel_size") or 1)
    world = (resolved.get("tensor_parallel_size") or 1) * (resolved.get("pipeline_parallel_size") or 1)
    parallel = {"world_size": world, "tensor_parallel_size": resolved.get("tensor_parallel_size"),
                "pipeline_parallel_size": resolved.get("pipeline_parallel_size"), "data_parallel_size": 1,
                "gpus_used": world if env.device == "cuda" else 0,
                "output_tokens_per_s_per_gpu": t_sum.output_tokens_per_s / world if t_sum.output_tokens_per_s else None,
                "total_tokens_per_s_per_gpu": t_sum.total_tokens_per_s / world if t_sum.total_tokens_per_s else None,
                "kv_capacity_tokens_per_replica": [cap.get("capacity_tokens")],
                "kv_capacity_tokens_total": cap.get("capacity_tokens"),
                "executor_backend": cfg.engine.distributed_executor_backend or "mp (vLLM default)",
                "safe_allreduce": cfg.engine.safe_allreduce, "env": engine.env}
    notes = list(NOTES)
    if resolved.get("enable_prefix_caching"):
        notes.append("Prefix caching was on (vLLM's default); pass --no-enable-prefix-caching to measure without.")
    return RunResult(
        tool_version=__version__, created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        model=cfg.engine.model, environment=env, roofline=roof, parallel=parallel,
        engine_args={**engine.kwargs, "resolved": resolved}, workload=workload, startup=facts, kv_cache=kv,
        memory=memory, throughput=t_sum, latency=lat,
        timeline=timeline, requests=records, notes=notes)


def aggregate_replicas(cfg: RunConfig, replicas: list[dict[str, Any]]) -> RunResult:
    """One result for N data-parallel replicas: rates over the union of their windows, every request kept."""
    rs = [RunResult.model_validate(r) for r in replicas]
    base = rs[0]
    n_rep = len(base.throughput.repeats)
    passes = []
    for k in range(n_rep):
        windows = [r.parallel["windows_wall_s"][k] for r in rs]
        wall = max(w[1] for w in windows) - min(w[0] for w in windows)
        recs = [q for r in rs for q in r.requests if q.repeat == k]
        inp = sum(q.input_tokens for q in recs)
        out = sum(q.output_tokens for q in recs)
        pre = [r.throughput.repeats[k].prefill_tokens_per_s for r in rs]
        dec = [r.throughput.repeats[k].decode_tokens_per_s for r in rs]
        passes.append(Throughput(duration_s=wall, requests_per_s=len(recs) / wall, input_tokens_per_s=inp / wall,
                                 output_tokens_per_s=out / wall, total_tokens_per_s=(inp + out) / wall,
                                 prefill_tokens_per_s=sum(pre) if None not in pre else None,
                                 decode_tokens_per_s=sum(dec) if None not in dec else None))
    t = summarize_passes(passes)
    records = [q for r in rs for q in r.requests]
    lat = Latency(**{k: Distribution.from_values(getattr(q, k) for q in records)
                     for k in ("queue_ms", "prefill_ms", "decode_ms", "ttft_ms", "tpot_ms", "e2e_ms")})
    caps = [r.kv_cache.capacity_tokens for r in rs]
    peaks = [r.kv_cache.peak_usage_pct for r in rs if r.kv_cache.peak_usage_pct is not None]
    kv = base.kv_cache.model_copy(update={
        "peak_usage_pct": max(peaks) if peaks else None,
        "preemptions": sum(r.kv_cache.preemptions or 0 for r in rs),
        "prefix_cache_queries": sum(r.kv_cache.prefix_cache_queries or 0 for r in rs),
        "prefix_cache_hits": sum(r.kv_cache.prefix_cache_hits or 0 for r in rs)})
    world = (base.parallel or {}).get("world_size", 1)
    dp = len(rs)
    gpus = world * dp if base.environment.device == "cuda" else 0
    parallel = {**(base.parallel or {}), "data_parallel_size": dp, "gpus_used": gpus,
                "world_size": world * dp,
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
    workload = base.workload.model_copy(update={
        "num_prompts": sum(r.workload.num_prompts or 0 for r in rs),
        "total_input_tokens": sum(r.workload.total_input_tokens or 0 for r in rs),
        "total_output_tokens": sum(r.workload.total_output_tokens or 0 for r in rs)})
    notes = base.notes + [f"Data parallel: {dp} engine replicas, each in its own process; the workload was dealt "
                          "round-robin; rates are over the union of the replicas' timed windows (wall clock)."]
    return base.model_copy(update={
        "environment": capture_environment(), "engine_args": {**base.engine_args, "data_parallel_size": dp},
        "workload": workload, "kv_cache": kv, "throughput": t, "latency": lat, "requests": records,
        "timeline": [p for r in rs for p in r.timeline], "parallel": parallel, "notes": notes,
        "roofline": None})
