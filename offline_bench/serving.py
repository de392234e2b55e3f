"""Serving mode: a streaming OpenAI-API client measured like `run`, and a launcher for a preset server.

Token counts come from the server's own usage report (`stream_options.include_usage`), not from counting SSE
chunks: one chunk can carry several tokens, so chunk counts mis-state output tokens and TPOT.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from offline_bench import results as build
from offline_bench.arrivals import arrival_offsets
from offline_bench.bench import keep_level
from offline_bench.config import WorkloadConfig
from offline_bench.engine import kv_size_kwargs
from offline_bench.environment import capture_environment, has_cuda
from offline_bench.errors import BenchError
from offline_bench.presets import resolve_model
from offline_bench.results import ms
from offline_bench.schema import RequestRecord, RunResult
from offline_bench.workloads import Request, build_workload

CHECK_TIMEOUT_S = 30.0  # GET /v1/models before a probe: a live server answers at once
FACTS_TIMEOUT_S = 10.0  # /version and /metrics: optional facts, not worth a long wait
SPARE_CONNECTIONS = 4  # beyond the requests in flight: the pool never makes a request wait for a socket


@dataclass
class ProbeConfig:
    base_url: str
    served_model_name: str
    api_key: str | None = None  # never stored or printed
    chat: bool = False
    timeout_s: float = 300.0
    workload: WorkloadConfig = field(default_factory=WorkloadConfig)
    goodput_slo_ms: dict[str, float] | None = None  # as RunConfig's: requests meeting every SLO

    def with_prompts(self, num_prompts: int | None) -> ProbeConfig:
        """The same probe with another request count (None: unchanged)."""
        if num_prompts is None:
            return self
        return dataclasses.replace(self, workload=self.workload.model_copy(update={"num_prompts": num_prompts}))

    @property
    def root(self) -> str:
        url = self.base_url.rstrip("/")
        return url[:-3] if url.endswith("/v1") else url

    def check(self) -> None:
        check_base_url(self.base_url)
        if not self.served_model_name.strip():
            raise BenchError("--served-model-name is empty: give the name the server answers to (GET /v1/models)")
        if self.timeout_s <= 0:
            raise BenchError(f"--timeout {self.timeout_s:g} must be positive (seconds)")


def check_base_url(url: str) -> None:
    """An http(s) URL with a host, e.g. http://127.0.0.1:8000 (one line naming the fix otherwise)."""
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and (parts.port or 1) > 0
    except ValueError:  # e.g. a port that is not a number
        ok = False
    if not ok:
        raise BenchError(f"--base-url '{url}' is not an http(s) URL: give the server's root, e.g. "
                         "http://127.0.0.1:8000")


@dataclass
class StreamResult:
    ok: bool
    error: str | None
    input_tokens: int
    output_tokens: int
    start: float
    ttft_s: float | None
    e2e_s: float | None
    itl_s: list[float]
    finish_reason: str | None


def _headers(cfg: ProbeConfig) -> dict[str, str]:
    h = {"Content-Type": "application/json"}
    if cfg.api_key:
        h["Authorization"] = f"Bearer {cfg.api_key}"
    return h


def _http_error(cfg: ProbeConfig, status: int, body: str) -> BenchError:
    if status in (401, 403):
        return BenchError(f"the server at {cfg.root} refused the API key (HTTP {status}): pass the right --api-key "
                          "or set OPENAI_API_KEY")
    if status == 404 and "model" in body.lower():
        return BenchError(f"model '{cfg.served_model_name}' is not served at {cfg.root}: check "
                          "--served-model-name against GET /v1/models")
    snippet = " ".join(body.split())[:200]
    return BenchError(f"the server at {cfg.root} answered HTTP {status}: {snippet}")


async def check_server(cfg: ProbeConfig) -> list[str]:
    """GET /v1/models: reachable, key accepted, model served. Returns the served names."""
    try:
        async with httpx.AsyncClient(timeout=min(cfg.timeout_s, CHECK_TIMEOUT_S)) as client:
            r = await client.get(f"{cfg.root}/v1/models", headers=_headers(cfg))
    except httpx.ConnectError as e:
        raise BenchError(f"cannot reach {cfg.root} ({type(e).__name__}): is the server running? "
                         "(offline-bench serve-preset NAME --port P starts one)") from None
    except httpx.TimeoutException:
        raise BenchError(f"{cfg.root} did not answer within {min(cfg.timeout_s, CHECK_TIMEOUT_S):g} s "
                         "(--timeout)") from None
    if r.status_code != 200:
        raise _http_error(cfg, r.status_code, r.text)
    names = [m.get("id") for m in r.json().get("data", [])]
    if cfg.served_model_name not in names:
        raise BenchError(f"model '{cfg.served_model_name}' is not served at {cfg.root}; it serves: "
                         f"{', '.join(map(str, names)) or 'nothing'} (--served-model-name)")
    return names


async def server_facts(cfg: ProbeConfig) -> dict[str, Any]:
    """What a vLLM server says about itself: its version (GET /version) and KV cache set-up (the
    vllm:cache_config_info gauge of GET /metrics). Best effort: other servers give {}."""
    facts: dict[str, Any] = {}
    async with httpx.AsyncClient(timeout=min(cfg.timeout_s, FACTS_TIMEOUT_S)) as client:
        try:
            r = await client.get(f"{cfg.root}/version", headers=_headers(cfg))
            if r.status_code == 200:
                facts["vllm_version"] = r.json().get("version")
        except (httpx.HTTPError, ValueError):
            pass
        try:
            r = await client.get(f"{cfg.root}/metrics", headers=_headers(cfg))
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


def _body(cfg: ProbeConfig, req: Request) -> tuple[str, dict[str, Any]]:
    wl = cfg.workload
    common = {"model": cfg.served_model_name, "max_tokens": req.output_len, "temperature": wl.temperature,
              "top_p": wl.top_p, "stream": True, "stream_options": {"include_usage": True},
              "ignore_eos": wl.effective_ignore_eos}
    if cfg.chat:
        if req.prompt is None:
            raise BenchError("--chat needs text prompts (--prompts FILE): token-id prompts have no chat form")
        return "/v1/chat/completions", {**common, "messages": [{"role": "user", "content": req.prompt}]}
    prompt: Any = req.token_ids if req.token_ids is not None else req.prompt
    return "/v1/completions", {**common, "prompt": prompt}


async def _one(client: Any, cfg: ProbeConfig, req: Request) -> StreamResult:

    path, body = _body(cfg, req)
    start = time.perf_counter()
    first = last = None
    itl: list[float] = []
    usage: dict[str, Any] = {}
    finish = None
    try:
        async with client.stream("POST", f"{cfg.root}{path}", json=body, headers=_headers(cfg)) as resp:
            if resp.status_code != 200:
                text = (await resp.aread()).decode(errors="replace")
                raise _http_error(cfg, resp.status_code, text)
            async for line in resp.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                chunk = json.loads(data)
                if chunk.get("usage"):
                    usage = chunk["usage"]
                for choice in chunk.get("choices") or []:
                    text = choice.get("text") if "text" in choice else (choice.get("delta") or {}).get("content")
                    if choice.get("finish_reason"):
                        finish = choice["finish_reason"]
                    if text:
                        now = time.perf_counter()
                        if first is None:
                            first = now
                        else:
                            itl.append(now - last)
                        last = now
    except httpx.TimeoutException:
        return StreamResult(False, f"no response within --timeout {cfg.timeout_s:g} s", 0, 0, start, None, None,
                            [], None)
    except httpx.HTTPError as e:
        return StreamResult(False, f"{type(e).__name__}: {e}", 0, 0, start, None, None, [], None)
    end = time.perf_counter()
    return StreamResult(True, None, int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)),
                        start, None if first is None else first - start, end - start, itl, finish)


async def _drive(cfg: ProbeConfig, reqs: list[Request], concurrency: int,
                 arrivals: list[float] | None = None) -> tuple[list[StreamResult], float, list[float]]:
    """Keep `concurrency` requests in flight until all are done (a client with N threads); with `arrivals`
    (seconds from the start), request i is not sent before its time. Returns results, wall time and how late
    each scheduled request was sent (s)."""
    results: list[StreamResult | None] = [None] * len(reqs)
    lateness: list[float] = []
    queue = list(range(len(reqs)))[::-1]
    limits = httpx.Limits(max_connections=concurrency + SPARE_CONNECTIONS,
                          max_keepalive_connections=concurrency + SPARE_CONNECTIONS)
    async with httpx.AsyncClient(timeout=httpx.Timeout(cfg.timeout_s), limits=limits) as client:
        t0 = time.perf_counter()

        async def worker() -> None:
            while queue:
                i = queue.pop()
                if arrivals is not None:
                    await asyncio.sleep(max(0.0, t0 + arrivals[i] - time.perf_counter()))
                    lateness.append(time.perf_counter() - t0 - arrivals[i])
                results[i] = await _one(client, cfg, reqs[i])

        await asyncio.gather(*(worker() for _ in range(min(concurrency, len(reqs)))))
        wall = time.perf_counter() - t0
    return [r for r in results if r is not None], wall, lateness


def _tokenizer_vocab(cfg: ProbeConfig, tokenizer_path: str | None) -> tuple[int, list[int]]:
    if not cfg.workload.synthetic:
        return 0, []
    if tokenizer_path is None:
        raise BenchError("synthetic prompts need the model's tokenizer: pass --tokenizer (an HF id, a path or "
                         "preset:NAME), or use --prompts FILE")
    from transformers import AutoTokenizer  # transformers is heavy to import: only for an HF tokenizer


    tok = AutoTokenizer.from_pretrained(resolve_model(tokenizer_path).path)
    return len(tok), list(tok.all_special_ids)


def probe(cfg: ProbeConfig, concurrency: int, tokenizer: str | None = None) -> RunResult:
    """Warm up, then send the workload keeping `concurrency` requests in flight; a `run`-schema result."""
    cfg.check()
    asyncio.run(check_server(cfg))
    facts = asyncio.run(server_facts(cfg))
    vocab, special = _tokenizer_vocab(cfg, tokenizer)
    warm, timed = build_workload(cfg.workload, vocab, special)
    if warm:
        results, _, _ = asyncio.run(_drive(cfg, warm, concurrency))
        _raise_first_error(results)
    wl = cfg.workload  # the same seeded schedule `run` follows, so both sides see the same arrivals
    arrivals = arrival_offsets(len(timed), wl.request_rate, wl.burstiness, wl.seed)
    results, wall, lateness = asyncio.run(_drive(cfg, timed, concurrency, arrivals))
    _raise_first_error(results)
    return serving_result(cfg, concurrency, results, wall, facts, lateness)


def _raise_first_error(results: list[StreamResult]) -> None:
    bad = [r for r in results if not r.ok]
    if bad:
        raise BenchError(f"{len(bad)} of {len(results)} requests failed; first: {bad[0].error}")


SERVING_NOTES = [
    "Serving mode: times are taken by the client around HTTP streaming requests; token counts are the server's "
    "usage report. The server always detokenizes; what the engine did inside (KV cache, queue/prefill/decode "
    "split) is unknown from outside; engine_args.server holds what the server reports about itself (/version, "
    "the vllm:cache_config_info gauge of /metrics).",
    "ITL is the time between SSE chunks that carry text; a chunk can hold more than one token."]


def serving_result(cfg: ProbeConfig, concurrency: int, results: list[StreamResult], wall: float,
                   facts: dict[str, Any] | None = None, lateness_s: list[float] | None = None) -> RunResult:
    """The probe's result; token counts are the server's usage report."""
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
    resolved = {k: facts[k] for k in ("enable_prefix_caching", "gpu_memory_utilization", "block_size")
                if k in facts}
    return RunResult(
        **build.stamp(), mode="serving", model=cfg.served_model_name,
        endpoint=f"{cfg.root}/v1/{'chat/' if cfg.chat else ''}completions", environment=capture_environment(),
        engine_args={"server": facts, "resolved": resolved} if facts else {},
        workload=build.workload(wl, records, concurrency, wl.effective_ignore_eos, True, 1), startup={},
        kv_cache=kv, memory=build.unknown_memory(),
        throughput=build.summarize_passes([build.throughput(records, wall, slo_ms=cfg.goodput_slo_ms)]),
        latency=build.latency(records, lateness_s or None), timeline=[], requests=records,
        notes=list(SERVING_NOTES), goodput_slo_ms=cfg.goodput_slo_ms)


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


def api_key_from_env(explicit: str | None) -> str | None:
    return explicit or os.environ.get("OPENAI_API_KEY") or None


def probe_levels(cfg: ProbeConfig, levels: list[tuple[int | None, int | None]], tokenizer: str | None,
                 output: str | None) -> list[tuple[RunResult, str | None]]:
    """serve-probe at each (concurrency, count) level; each result saved as soon as it exists."""
    out = []
    for level, n in levels:
        keep_level(out, probe(cfg.with_prompts(n), level or 1, tokenizer), output, level, len(levels) > 1)
    return out
