"""`run`: one benchmark = warm-up, R timed passes, then a result in the versioned schema."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from offline_bench.core.config import RunConfig
from offline_bench.core.environment import capture_environment
from offline_bench.core.errors import BenchError
from offline_bench.core.gpus import detect_gpu, table_name
from offline_bench.engine.llm import BatchOutcome, Engine
from offline_bench.engine.steps import steady_window
from offline_bench.model.limits import check_model_limits
from offline_bench.model.presets import resolve_model
from offline_bench.predict.plan import check_supported, moved_term, plan_point
from offline_bench.predict.roofline import achieved
from offline_bench.results import build as results
from offline_bench.results.energy import Energy, check_note, cost_of, energy_note, energy_of
from offline_bench.results.plan import PlanSettings
from offline_bench.results.run import KVCache, Memory, RequestRecord, RunResult, ThroughputSummary, TimelinePoint
from offline_bench.results.stats import distribution_from_histogram
from offline_bench.workloads.arrivals import arrival_offsets
from offline_bench.workloads.requests import Request, build_workload, check_workload

log = logging.getLogger(__name__)
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
    "Every engine step of the first timed pass is recorded in `steps` (for `predict`): the engine runs with "
    "enable_logging_iteration_details (vLLM 0.26+), which counts each step's scheduled tokens in the engine core "
    "(a loop over the step's requests); its per-step log line is filtered out.",
    "Offline itl_ms comes from the engine's inter-token-latency histogram (vllm:inter_token_latency_seconds): "
    "percentiles interpolated linearly inside its buckets, the mean exact from its sum, no max/min.",
]


@contextlib.contextmanager
def _no_progress(_desc: str, _total: int) -> Iterator[Callable[[int], None]]:
    yield lambda _n: None


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
    cfg.engine.validate_values()
    from_file = check_workload(cfg.workload)
    model = resolve_model(cfg.engine.model)
    info = model.info
    e = cfg.engine
    check_model_limits(info, model.config, max_model_len=e.max_model_len, tensor_parallel_size=e.tensor_parallel_size,
                       pipeline_parallel_size=e.pipeline_parallel_size)
    mml = cfg.engine.max_model_len or (info.max_position_embeddings if info else None)
    wl = cfg.workload
    if mml is None:
        return
    kv_bytes = cfg.engine.kv_cache_memory_bytes
    if kv_bytes and info:  # one request of max_model_len tokens must fit (vLLM refuses the start otherwise)
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
        longest_in += wl.prefix_len
        if longest_in + longest_out > mml:
            raise BenchError(f"synthetic requests need up to {longest_in} prompt + {longest_out} output tokens, more "
                             f"than {flag} {mml}: raise --max-model-len or lower --input-len/--output-len")
    elif wl.dataset != "sharegpt":  # ShareGPT replies are sized (and filtered) by the engine's tokenizer
        longest_out = max(r.output_len for r in from_file or [])
        if longest_out >= mml:
            raise BenchError(f"requests of {wl.prompts_file} ask for {longest_out} output tokens, not fewer than "
                             f"{flag} {mml}: raise --max-model-len or lower --output-len")


def run_benchmark(cfg: RunConfig, engine: Engine | None = None, progress: ProgressFactory | None = None,
                  shard: tuple[int, int] | None = None) -> RunResult:
    """One benchmark on one engine: warm-up, timed passes, a result. With `engine` given it is reused, and the
    model and engine arguments recorded are the engine's own (cfg.engine is not consulted). `shard=(rank, size)`
    runs every size-th request from rank (a data-parallel replica's share; see `dataparallel`)."""
    cfg.validate_values()
    if cfg.engine.data_parallel_size > 1 and shard is None:
        raise ValueError("data parallel runs go through dataparallel.run_data_parallel (or bench.run_one)")
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
    warm, timed = build_workload(wl, vocab, special, engine.tokenizer.encode, resolved["max_model_len"])
    if shard is not None:
        timed = timed[shard[0]::shard[1]]
    timed_lens = check_lengths(engine, warm + timed, resolved["max_model_len"])[len(warm):]
    ignore_eos = wl.effective_ignore_eos

    def params(reqs: list[Request]) -> list[Any]:
        return [engine.sampling_params(r, wl.temperature, wl.top_p, ignore_eos, wl.detokenize) for r in reqs]

    t_warm = time.perf_counter()
    warmed = None
    if warm:
        with progress("warm-up", len(warm)) as tick:
            warmed = engine.run_batch(warm, params(warm), "warmup", on_finish=tick)
    warmup_s = time.perf_counter() - t_warm
    # the same seeded schedule every repeat (and for serve-probe): arrivals are part of the workload
    arrivals = arrival_offsets(len(timed), wl.request_rate, wl.burstiness, wl.seed)
    passes: list[BatchOutcome] = []
    for rep in range(wl.repeats):
        engine.reset_prefix_cache()
        desc = "timed" if wl.repeats == 1 else f"timed {rep + 1}/{wl.repeats}"
        with progress(desc, len(timed)) as tick:
            passes.append(engine.run_batch(timed, params(timed), f"r{rep}", cfg.timeline_interval_ms / 1000.0,
                                           concurrency=cfg.concurrency, on_finish=tick,
                                           prompt_lens=timed_lens if rep == 0 else None, arrivals=arrivals,
                                           sample_steps=cfg.step_timeline))
    result = assemble(cfg, engine, passes, resolved, ignore_eos, warmed)
    result.workload.warmup_s = round(warmup_s, 3)
    if shard is not None:
        result.parallel = {**(result.parallel or {}), "replica": shard[0],
                           "windows_wall_s": [list(p.window_wall or (0.0, 0.0)) for p in passes]}
        for r in result.requests:
            r.replica = shard[0]
    return result


def _kv_cache(engine: Engine, passes: list[BatchOutcome], facts: dict[str, Any]) -> KVCache:
    prompt = sum(r.input_tokens for p in passes for r in p.records)
    cached = [r.cached_tokens for p in passes for r in p.records]
    peaks = [p.peak_kv_pct for p in passes if p.peak_kv_pct is not None]
    queries = sum(p.counters_delta.get("prefix_queries", 0.0) for p in passes)
    hits = sum(p.counters_delta.get("prefix_hits", 0.0) for p in passes)
    return KVCache(**engine.kv_capacity(), logged_capacity_tokens=facts.get("kv_cache_tokens"),
                   peak_usage_pct=round(max(peaks), 3) if peaks else None,
                   preemptions=int(sum(p.counters_delta.get("preemptions", 0.0) for p in passes)),
                   prefix_cache_queries=int(queries), prefix_cache_hits=int(hits),
                   prefix_cache_hit_rate=round(hits / queries, 6) if queries else None,
                   prompt_cache_hit_rate=round(sum(cached) / prompt, 6)
                   if prompt and None not in cached else None)


def _itl(passes: list[BatchOutcome]) -> Any:
    """Offline inter-token latency from the engine's histogram, over every timed pass (bucket-interpolated)."""
    hists = [p.itl for p in passes if p.itl is not None]
    if not hists:
        return None
    bounds = [b for b, _ in hists[0][0]]
    merged = [(b, sum(dict(h[0]).get(b, 0.0) for h in hists)) for b in bounds]
    return distribution_from_histogram(merged, sum(h[1] for h in hists), scale=1000.0)


PREDICTION_WARN_PCT = 1.0


def _kv_prediction(engine: Engine, resolved: dict[str, Any], facts: dict[str, Any], kv: KVCache) -> str | None:
    """Store `plan`'s model-only prediction for this engine next to the measured KV tokens; a line if it missed
    by more than PREDICTION_WARN_PCT."""
    info = engine.info
    if info is None or not kv.capacity_tokens:
        return None
    try:
        check_supported(info, engine.model.config)
        device = "cpu" if resolved.get("device") == "cpu" else "cuda"
        kvb = engine.kwargs.get("kv_cache_memory_bytes")
        s = PlanSettings(gpu_memory_utilization=None if kvb else resolved.get("gpu_memory_utilization"),
                         kv_cache_memory_bytes=kvb, max_model_len=resolved["max_model_len"],
                         kv_cache_dtype=engine.kwargs.get("kv_cache_dtype") or "auto",
                         max_num_batched_tokens=resolved.get("max_num_batched_tokens"),
                         max_num_seqs=resolved.get("max_num_seqs"),
                         tensor_parallel_size=resolved.get("tensor_parallel_size") or 1,
                         pipeline_parallel_size=resolved.get("pipeline_parallel_size") or 1,
                         block_size=resolved.get("block_size"))
        row = plan_point(info, s, device, facts.get("cpu_memory_gib" if device == "cpu" else "gpu_total_gib"))
    except (BenchError, ValueError, KeyError):
        return None
    if row.kv_cache_tokens is None:
        return None
    kv.predicted_tokens, kv.predicted_basis = row.kv_cache_tokens, row.basis
    kv.predicted_error_pct = round(100.0 * (row.kv_cache_tokens / kv.capacity_tokens - 1.0), 4)
    if abs(kv.predicted_error_pct) <= PREDICTION_WARN_PCT:
        return None
    line = (f"plan predicted {row.kv_cache_tokens} KV tokens, the engine has {kv.capacity_tokens} "
            f"({kv.predicted_error_pct:+.2f}%); the term that moved most: {moved_term(row, facts)}")
    log.warning(line)  # the CLI prints it as "warning: ..." (on stderr: the engine log while it runs)
    return line


def _memory(facts: dict[str, Any], kv: KVCache) -> Memory:
    parts = [facts.get(k) for k in ("weights_gib", "peak_activation_gib", "cuda_graph_gib", "non_torch_gib")]
    kv_gib = facts.get("kv_cache_gib") or kv.capacity_gib
    return Memory(weights_gib=facts.get("weights_gib"), peak_activation_gib=facts.get("peak_activation_gib"),
                  cuda_graph_gib=facts.get("cuda_graph_gib"), non_torch_gib=facts.get("non_torch_gib"),
                  kv_cache_gib=kv_gib,
                  total_gib=round(sum(parts) + kv_gib, 3) if None not in parts and kv_gib else None)


def _roofline(engine: Engine, env: Any, first: list[RequestRecord], timeline: list[TimelinePoint],
              t_sum: ThroughputSummary, tp: int) -> Any:
    gpu = detect_gpu(env.gpu_name)
    if not (gpu and engine.info and first):
        return None
    running = [t.running for t in timeline if t.running > 0]
    return achieved(engine.info, gpu, sum(running) / len(running) if running else 1.0,
                    sum(r.input_tokens for r in first) / len(first), sum(r.output_tokens for r in first) / len(first),
                    t_sum.prefill_tokens_per_s, t_sum.decode_tokens_per_s, tp)


def _parallel(engine: Engine, resolved: dict[str, Any], env: Any, t_sum: ThroughputSummary,
              kv: KVCache) -> dict[str, Any]:
    tp, pp = resolved.get("tensor_parallel_size") or 1, resolved.get("pipeline_parallel_size") or 1
    world = tp * pp
    return {"world_size": world, "tensor_parallel_size": tp, "pipeline_parallel_size": pp, "data_parallel_size": 1,
            "gpus_used": world if env.device == "cuda" else 0,
            "output_tokens_per_s_per_gpu": t_sum.output_tokens_per_s / world if t_sum.output_tokens_per_s else None,
            "total_tokens_per_s_per_gpu": t_sum.total_tokens_per_s / world if t_sum.total_tokens_per_s else None,
            "kv_capacity_tokens_per_replica": [kv.capacity_tokens], "kv_capacity_tokens_total": kv.capacity_tokens,
            "executor_backend": engine.cfg.distributed_executor_backend or "mp (vLLM default)",
            "safe_allreduce": engine.cfg.safe_allreduce, "env": engine.env,
            **({"ray": engine.ray} if engine.ray is not None else {})}


def _energy(engine: Engine, passes: list[BatchOutcome], warm: BatchOutcome | None) -> Energy:
    """The GPUs' energy over each timed pass, per token over them all, beside the idle floor."""
    tokens = [(sum(r.output_tokens for r in p.records), sum(r.output_tokens + r.input_tokens for r in p.records))
              for p in passes]
    return energy_of(getattr(engine, "power", None), getattr(engine, "power_unknown", None),
                     [p.energy for p in passes], warm.energy if warm else None, getattr(engine, "idle", None), tokens)


def assemble(cfg: RunConfig, engine: Engine, passes: list[BatchOutcome], resolved: dict[str, Any],
             ignore_eos: bool, warm: BatchOutcome | None = None) -> RunResult:
    """The result of the timed passes: what was measured, and the engine's own model and arguments."""
    wl = cfg.workload
    records = [r.model_copy(update={"repeat": rep}) for rep, p in enumerate(passes) for r in p.records]
    timeline = [TimelinePoint(repeat=rep, **t) for rep, p in enumerate(passes) for t in p.timeline]
    first = passes[0].records
    facts = engine.startup_facts()
    t_sum = results.summarize_passes([results.throughput(p.records, p.wall_s, p.prefill_window_s,
                                                         p.decode_window_s, cfg.goodput_slo_ms) for p in passes])
    steady = steady_window(passes[0].steps) if passes[0].steps else None
    if steady:
        t_sum.steady_window_s = [round(steady[0], 4), round(steady[1], 4)]
        t_sum.steady_output_tokens_per_s = steady[2] / (steady[1] - steady[0])
    kv = _kv_cache(engine, passes, facts)
    env = capture_environment()
    notes = list(NOTES)
    missed = _kv_prediction(engine, resolved, facts, kv)
    if missed:
        notes.append(missed)
    energy = _energy(engine, passes, warm)
    notes += [n for n in (energy_note(energy), check_note(energy)) if n]
    parallel = _parallel(engine, resolved, env, t_sum, kv)
    if resolved.get("enable_prefix_caching"):
        notes.append("Prefix caching was on (vLLM's default); pass --no-enable-prefix-caching to measure without.")
    if not cfg.step_timeline:
        notes.append("--no-step-timeline: no gauge read after each step, so no timeline, no peak KV use and no step "
                     "records (predict cannot calibrate on this run).")
    return RunResult(
        **results.stamp(), model=engine.cfg.model, environment=env,
        roofline=_roofline(engine, env, first, timeline, t_sum, resolved.get("tensor_parallel_size") or 1),
        parallel=parallel, engine_args={**engine.kwargs, "resolved": resolved},
        workload=results.workload(wl, first, cfg.concurrency, ignore_eos, wl.detokenize, wl.repeats),
        startup=facts, kv_cache=kv, memory=_memory(facts, kv), throughput=t_sum,
        latency=results.latency(records, [s for p in passes for s in p.lateness_s] or None, _itl(passes)),
        timeline=timeline, requests=records, notes=notes, steps=passes[0].steps, goodput_slo_ms=cfg.goodput_slo_ms,
        energy=energy, cost=cost_of(cfg.prices, table_name(env.gpu_name), parallel["world_size"],
                                    t_sum.output_tokens_per_s, energy))
