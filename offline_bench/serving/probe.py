"""Serving mode: a streaming OpenAI-API client measured like `run`, and a launcher for a preset server.

Token counts come from the server's own usage report (`stream_options.include_usage`), not from counting SSE
chunks: one chunk can carry several tokens, so chunk counts mis-state output tokens and TPOT.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import re
import sys
import time
from typing import Any

import httpx

from offline_bench.core import power
from offline_bench.core.config import Prices
from offline_bench.core.environment import capture_environment, has_cuda
from offline_bench.core.errors import BenchError
from offline_bench.core.gpus import table_name
from offline_bench.engine.llm import kv_size_kwargs
from offline_bench.model.presets import resolve_model
from offline_bench.results import build
from offline_bench.results.build import ms
from offline_bench.results.energy import cost_of, energy_of
from offline_bench.results.run import Kept, RequestRecord, RunResult
from offline_bench.serving.client import (
    Driven,
    ProbeConfig,
    StreamResult,
    auto_processes,
    check_base_url,
    drive,
    drive_processes,
    headers,
    http_error,
)
from offline_bench.serving.metrics import MetricsSampler, server_limits
from offline_bench.workloads.arrivals import arrival_offsets
from offline_bench.workloads.levels import Level, keep_level
from offline_bench.workloads.requests import Request, build_workload

CHECK_TIMEOUT_S = 30.0  # GET /v1/models before a probe: a live server answers at once
FACTS_TIMEOUT_S = 10.0  # /version and /metrics: optional facts, not worth a long wait
__all__ = ["ProbeConfig", "StreamResult", "check_base_url", "probe", "probe_levels", "serving_result"]


async def check_server(cfg: ProbeConfig) -> list[str]:
    """GET /v1/models: reachable, key accepted, model served. Returns the served names."""
    try:
        async with httpx.AsyncClient(timeout=min(cfg.timeout_s, CHECK_TIMEOUT_S)) as client:
            r = await client.get(f"{cfg.root}/v1/models", headers=headers(cfg))
    except httpx.ConnectError as e:
        raise BenchError(f"cannot reach {cfg.root} ({type(e).__name__}): is the server running? "
                         "(offline-bench serve-preset NAME --port P starts one)") from None
    except httpx.TimeoutException:
        raise BenchError(f"{cfg.root} did not answer within {min(cfg.timeout_s, CHECK_TIMEOUT_S):g} s "
                         "(--timeout)") from None
    if r.status_code != 200:
        raise http_error(cfg, r.status_code, r.text)
    names = [m.get("id") for m in r.json().get("data", [])]
    if cfg.served_model_name not in names:
        raise BenchError(f"model '{cfg.served_model_name}' is not served at {cfg.root}; it serves: "
                         f"{', '.join(map(str, names)) or 'nothing'} (--served-model-name)")
    return names


async def server_facts(cfg: ProbeConfig) -> dict[str, Any]:
    """What a vLLM server says about itself: its version (GET /version), KV cache set-up (the
    vllm:cache_config_info gauge of GET /metrics) and scheduler limits (GET /server_info, which vLLM serves in
    dev mode: serve-preset turns it on for loopback servers). Best effort: other servers give {}."""
    facts: dict[str, Any] = {}
    async with httpx.AsyncClient(timeout=min(cfg.timeout_s, FACTS_TIMEOUT_S)) as client:
        try:
            r = await client.get(f"{cfg.root}/server_info", params={"config_format": "json"},
                                 headers=headers(cfg))
            if r.status_code == 200:
                facts.update(server_limits(r.json()))
        except (httpx.HTTPError, ValueError):
            pass
        try:
            r = await client.get(f"{cfg.root}/version", headers=headers(cfg))
            if r.status_code == 200:
                facts["vllm_version"] = r.json().get("version")
        except (httpx.HTTPError, ValueError):
            pass
        try:
            r = await client.get(f"{cfg.root}/metrics", headers=headers(cfg))
            if r.status_code == 200:
                facts.update(parse_cache_config_info(r.text))
        except httpx.HTTPError:
            pass
    return {k: v for k, v in facts.items() if v is not None}


def parse_cache_config_info(metrics_text: str) -> dict[str, Any]:
    """Labels of `vllm:cache_config_info{...} 1.0` (Prometheus text), typed."""
    for line in metrics_text.splitlines():
        if line.startswith("vllm:cache_config_info{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
            out: dict[str, Any] = {}
            for key in ("block_size", "num_gpu_blocks"):
                if labels.get(key, "").isdigit():
                    out[key] = int(labels[key])
            if labels.get("enable_prefix_caching") in ("True", "False"):
                out["enable_prefix_caching"] = labels["enable_prefix_caching"] == "True"
            try:
                out["gpu_memory_utilization"] = float(labels["gpu_memory_utilization"])
            except (KeyError, ValueError):
                pass
            if labels.get("cache_dtype"):
                out["cache_dtype"] = labels["cache_dtype"]
            return out
    return {}


async def _timed(cfg: ProbeConfig, reqs: list[Request], concurrency: int, arrivals: list[float] | None,
                 sampler: MetricsSampler) -> Driven:
    """The timed pass (in one client process or several) with the server's /metrics sampled from just before it
    until just after."""
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(sampler.run(stop, ready))
    await ready.wait()
    try:
        if (cfg.client_processes or 1) > 1:
            return await asyncio.to_thread(drive_processes, cfg, reqs, concurrency, arrivals, cfg.client_processes)
        return await drive(cfg, reqs, concurrency, arrivals)
    finally:
        stop.set()
        await task


def client_workload(cfg: ProbeConfig, tokenizer_path: str | None) -> tuple[list[Request], list[Request]]:
    """(warm-up, timed) requests as `run` builds them; synthetic token ids and ShareGPT reply lengths need the
    model's tokenizer on the client side (as `vllm bench serve` does)."""
    wl = cfg.workload
    if not (wl.synthetic or wl.dataset == "sharegpt"):
        return build_workload(wl, 0, [])
    if tokenizer_path is None:
        what = "synthetic prompts" if wl.synthetic else "--dataset sharegpt (to count each reply's tokens)"
        raise BenchError(f"{what} need the model's tokenizer: pass --tokenizer (an HF id, a path or preset:NAME)")
    from transformers import AutoTokenizer  # transformers is heavy to import: only for an HF tokenizer

    tok = AutoTokenizer.from_pretrained(resolve_model(tokenizer_path).path)
    encode = lambda text: tok.encode(text, add_special_tokens=False)  # noqa: E731 - as the engine counts a reply
    return build_workload(wl, len(tok), list(tok.all_special_ids), encode)


def probe(cfg: ProbeConfig, concurrency: int, tokenizer: str | None = None,
          requests: tuple[list[Request], list[Request]] | None = None,
          floor: dict[str, Any] | None = None) -> RunResult:
    """Warm up, then send the workload keeping `concurrency` requests in flight (and on its arrival schedule);
    a `run`-schema result with the server's own state sampled from /metrics. `requests`: (warm-up, timed)
    requests instead of the workload's (named scenarios); `floor`: the GPUs' idle floor, measured by the first
    probe of a series and kept there for the others (after a level's load the GPUs take seconds to fall back)."""
    cfg.check()
    cfg = dataclasses.replace(cfg, client_processes=cfg.client_processes
                              or auto_processes(concurrency, cfg.workload.request_rate))
    asyncio.run(check_server(cfg))
    facts = asyncio.run(server_facts(cfg))
    warm, timed = requests or client_workload(cfg, tokenizer)
    world = server_gpus(facts)
    floor = {} if floor is None else floor  # the idle floor: once per serve-probe, before its first level's load
    meter, why, idle = power.begin_local(cfg.root, has_cuda(), world, idle_s=0 if "idle" in floor else power.IDLE_S)
    idle = floor.setdefault("idle", idle)
    try:
        w0 = time.time()
        if warm:
            _raise_first_error(asyncio.run(drive(cfg, warm, concurrency)).results)
        warm_window = (w0, time.time())
        wl = cfg.workload  # the same seeded schedule `run` follows, so both sides see the same arrivals
        arrivals = arrival_offsets(len(timed), wl.request_rate, wl.burstiness, wl.seed)
        sampler = MetricsSampler(f"{cfg.root}/metrics", headers(cfg))
        driven = asyncio.run(_timed(cfg, timed, concurrency, arrivals, sampler))
    finally:
        power.end(meter)
    _raise_first_error(driven.results)
    result = serving_result(cfg, concurrency, driven.results, driven.wall_s, facts, driven.lateness_s,
                            sampler=sampler, t0=driven.t0)
    start = driven.t0 + time.time() - time.perf_counter()  # the pass's start on the samples' clock
    windows = [meter.window(start, start + driven.wall_s), meter.window(*warm_window)] if meter else [None, None]
    add_energy(result, (meter, why), windows[0], windows[1] if warm else None, idle, cfg.prices, facts)
    return result


def server_gpus(facts: dict[str, Any]) -> int | None:
    """The server's GPUs (TP x PP x DP from /server_info), None when it does not say."""
    if not facts.get("tensor_parallel_size"):
        return None
    return math.prod(facts.get(k) or 1 for k in ("tensor_parallel_size", "pipeline_parallel_size",
                                                 "data_parallel_size"))


def add_energy(result: RunResult, meter: tuple[power.PowerSampler | None, str | None],
               timed: power.WindowEnergy | None, warm: power.WindowEnergy | None, idle: power.WindowEnergy | None,
               prices: Prices | None, facts: dict[str, Any]) -> None:
    """A serving result's energy (a local server's GPUs over the timed pass) and cost (the server's GPUs at the
    server's GPU's price)."""
    out = result.workload.total_output_tokens or 0
    e = energy_of(*meter, [timed], warm, idle, [(out, out + (result.workload.total_input_tokens or 0))])
    result.energy, world = e, server_gpus(facts)
    which = "the server's (TP x PP x DP of /server_info)" if world else \
        "every GPU this process sees (the server did not say how many it uses)"
    if e.status == "measured":
        result.notes.append(f"Energy: {len(e.gpus)} GPU(s), {which}, over the timed pass ({e.method}); idle_watts "
                            "is the server's, model loaded, before the first level; other work on them counts too.")
    gpus = world or (len(e.gpus) if e.gpus else 1)
    result.cost = cost_of(prices, table_name(facts.get("gpu_name") or result.environment.gpu_name), gpus,
                          result.throughput.output_tokens_per_s, e)
    if result.cost is not None and world is None and result.cost.gpu_hour_usd is not None:
        result.cost.reason = "; ".join(x for x in (result.cost.reason, f"the server's GPU count is unknown (no "
                                                   f"/server_info): counted {gpus}") if x)


def _raise_first_error(results: list[StreamResult]) -> None:
    bad = [r for r in results if not r.ok]
    if bad:
        raise BenchError(f"{len(bad)} of {len(results)} requests failed; first: {bad[0].error}")


SERVING_NOTES = [
    "Serving mode: times are taken by the client around HTTP streaming requests; token counts are the server's "
    "usage report. The server always detokenizes; the per-request queue/prefill/decode split is unknown from "
    "outside; engine_args.server holds what the server reports about itself (/version, the "
    "vllm:cache_config_info gauge of /metrics, /server_info where served).",
    "ITL is the time between SSE chunks that carry text; a chunk can hold more than one token."]


def serving_result(cfg: ProbeConfig, concurrency: int, results: list[StreamResult], wall: float,
                   facts: dict[str, Any] | None = None, lateness_s: list[float] | None = None,
                   sampler: MetricsSampler | None = None, t0: float = 0.0) -> RunResult:
    """The probe's result; token counts are the server's usage report, server state its /metrics samples."""
    records = []
    for i, r in enumerate(results):
        tpot = (r.e2e_s - r.ttft_s) / (r.output_tokens - 1) if r.ttft_s is not None and r.output_tokens > 1 else None
        records.append(RequestRecord(repeat=0, index=i, input_tokens=r.input_tokens, output_tokens=r.output_tokens,
                                     cached_tokens=None, finish_reason=r.finish_reason, preemptions=None,
                                     queue_ms=None, prefill_ms=None, decode_ms=None, ttft_ms=ms(r.ttft_s),
                                     tpot_ms=ms(tpot), e2e_ms=ms(r.e2e_s), itl_ms=[ms(x) for x in r.itl_s]))
    wl = cfg.workload
    facts = facts or {}
    kv = build.unknown_kv_cache()
    if facts.get("num_gpu_blocks") and facts.get("block_size"):
        kv.num_blocks, kv.block_size = facts["num_gpu_blocks"], facts["block_size"]
        kv.capacity_tokens = kv.num_blocks * kv.block_size
    kv.max_model_len = facts.get("max_model_len")
    notes = list(SERVING_NOTES)
    if cfg.client_processes:
        notes.append(f"The timed pass was sent by {cfg.client_processes} client process(es), each with a share of "
                     "the requests and the same start; arrival_lateness_ms shows whether the client kept up.")
    if sampler is not None and sampler.available:
        sampler.fill_kv_cache(kv)
        notes.append(sampler.note())
    resolved = {k: facts[k] for k in ("enable_prefix_caching", "gpu_memory_utilization", "block_size",
                                      "max_num_seqs", "max_num_batched_tokens", "max_model_len") if k in facts}
    return RunResult(
        **build.stamp(), mode="serving", model=cfg.served_model_name,
        endpoint=f"{cfg.root}/v1/{'chat/' if cfg.chat else ''}completions", environment=capture_environment(),
        engine_args={"server": facts, "resolved": resolved} if facts else {},
        workload=build.workload(wl, records, concurrency, wl.effective_ignore_eos, True, 1), startup={},
        kv_cache=kv, memory=build.unknown_memory(),
        throughput=build.summarize_passes([build.throughput(records, wall, slo_ms=cfg.goodput_slo_ms)]),
        latency=build.latency(records, lateness_s or None),
        timeline=sampler.timeline(t0) if sampler is not None else [], requests=records, notes=notes,
        goodput_slo_ms=cfg.goodput_slo_ms)


def serve_preset_command(name: str, port: int, host: str = "127.0.0.1", extra: list[str] | None = None,
                         max_model_len: int | None = None, gpu_memory_utilization: float | None = None,
                         api_key: str | None = None, kv_cache_memory_bytes: int | None = None) -> list[str]:
    """The `vllm serve` command line for a preset (dummy weights, served under the name 'preset:NAME')."""
    model = resolve_model(f"preset:{name}")
    gpu = has_cuda()
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model.path,
           "--served-model-name", f"preset:{name}", "--load-format", "dummy", "--host", host, "--port", str(port),
           "--seed", "0"]
    for key, value in kv_size_kwargs(gpu_memory_utilization, kv_cache_memory_bytes, gpu).items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    if max_model_len:
        cmd += ["--max-model-len", str(max_model_len)]
    if not gpu:
        cmd += ["--enforce-eager"]
    if api_key:
        cmd += ["--api-key", api_key]
    return cmd + list(extra or [])


def serve_env(host: str) -> dict[str, str]:
    """The server's environment: dev-mode endpoints (GET /server_info: scheduler limits) only on loopback, where
    nobody else can reach them."""
    env = dict(os.environ)
    if host in ("127.0.0.1", "localhost", "::1"):
        env.setdefault("VLLM_SERVER_DEV_MODE", "1")
    return env


def api_key_from_env(explicit: str | None) -> str | None:
    return explicit or os.environ.get("OPENAI_API_KEY") or None


def probe_levels(cfg: ProbeConfig, levels: list[Level], tokenizer: str | None, output: str | None) -> list[Kept]:
    """serve-probe at each level (concurrency, count, rate); each result saved as soon as it exists (in the temp
    directory when its file cannot be written: `Kept.unwritten`)."""
    out: list[Kept] = []
    floor: dict[str, Any] = {}
    for level in levels:
        at = cfg.at_level(level)
        keep_level(out, probe(at, in_flight_cap(level.concurrency, at.workload.request_rate,
                                                at.workload.num_prompts), tokenizer, floor=floor), output, level,
                   levels)
    return out


def in_flight_cap(concurrency: int | None, request_rate: float | None, num_prompts: int) -> int:
    """Requests in flight at most: the given cap; else, with a request rate, none (every request may be in flight
    at once, as `vllm bench serve --request-rate` without --max-concurrency); else one."""
    if concurrency is not None:
        return concurrency
    return max(1, num_prompts) if request_rate is not None else 1
