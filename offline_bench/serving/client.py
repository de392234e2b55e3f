"""The streaming OpenAI-API client of `serve-probe`: what to probe (ProbeConfig), one streamed request, and a
pass of requests kept N in flight and/or sent on an arrival schedule, in one process or split over several.

One asyncio process parses every SSE chunk of every stream; at thousands of chunks/s it falls behind, and then
requests leave late and chunks are read late (TTFT and ITL inflated by the client itself). Several processes,
each with a share of the requests and the same clock (perf_counter is CLOCK_MONOTONIC, system-wide), keep the
client out of the measurement; `arrival_lateness_ms` shows whether it kept up.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import multiprocessing
import os
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from offline_bench.core.config import Prices, WorkloadConfig
from offline_bench.core.errors import BenchError
from offline_bench.core.validate import Url
from offline_bench.workloads.levels import Level
from offline_bench.workloads.requests import Request

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
    client_processes: int | None = None  # processes sending the timed pass (None: auto_processes)
    prices: Prices | None = None  # --gpu-hour-cost / --kwh-cost

    def with_prompts(self, num_prompts: int | None) -> ProbeConfig:
        """The same probe with another request count (None: unchanged)."""
        if num_prompts is None:
            return self
        return dataclasses.replace(self, workload=self.workload.model_copy(update={"num_prompts": num_prompts}))

    def at_level(self, level: Level) -> ProbeConfig:
        """The probe of one level: its request count (None: unchanged) and arrival rate."""
        probe_cfg = self.with_prompts(level.num_prompts)
        return dataclasses.replace(probe_cfg, workload=probe_cfg.workload.model_copy(
            update={"request_rate": level.request_rate}))

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
        if self.client_processes is not None and self.client_processes < 1:
            raise BenchError(f"--client-processes {self.client_processes} must be at least 1")


BASE_URL = Url("http://127.0.0.1:8000")


def check_base_url(url: str) -> None:
    """An http(s) URL with a host, e.g. http://127.0.0.1:8000 (one line naming the fix otherwise): --base-url's
    own validator."""
    BASE_URL.check(url, "--base-url")


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


def headers(cfg: ProbeConfig) -> dict[str, str]:
    h = {"Content-Type": "application/json"}
    if cfg.api_key:
        h["Authorization"] = f"Bearer {cfg.api_key}"
    return h


def http_error(cfg: ProbeConfig, status: int, body: str) -> BenchError:
    if status in (401, 403):
        return BenchError(f"the server at {cfg.root} refused the API key (HTTP {status}): pass the right --api-key "
                          "or set OPENAI_API_KEY")
    if status == 404 and "model" in body.lower():
        return BenchError(f"model '{cfg.served_model_name}' is not served at {cfg.root}: check "
                          "--served-model-name against GET /v1/models")
    snippet = " ".join(body.split())[:200]
    return BenchError(f"the server at {cfg.root} answered HTTP {status}: {snippet}")


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


def not_a_stream(cfg: ProbeConfig, status: int, content_type: str | None, head: str) -> BenchError:
    """A reply that is not an OpenAI completion stream (an HTML page, a proxy's answer), named by what came back."""
    return BenchError(f"the server at {cfg.root} did not answer with an OpenAI completion stream (HTTP {status}, "
                      f"content-type {content_type or 'none'}, first bytes {head[:80]!r}): point --base-url at an "
                      "OpenAI-compatible server such as `vllm serve`")


@dataclass
class _Stream:
    """What one streamed reply carried: token times, the usage block, the finish reason."""

    first: float | None = None
    last: float | None = None
    itl: list[float] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)
    finish: str | None = None
    chunks: int = 0
    head: str = ""

    def add(self, chunk: dict[str, Any]) -> None:
        self.chunks += 1
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            text = choice.get("text") if "text" in choice else (choice.get("delta") or {}).get("content")
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
            if text:
                now = time.perf_counter()
                if self.first is None:
                    self.first = now
                else:
                    self.itl.append(now - self.last)
                self.last = now


async def _read_stream(resp: Any, cfg: ProbeConfig) -> _Stream:
    """Server-sent events of /v1/(chat/)completions; anything else is refused in one line."""
    st = _Stream()
    async for line in resp.aiter_lines():
        if len(st.head) < 200:
            st.head += line + "\n"
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            break
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError:
            chunk = None
        if isinstance(chunk, dict) and "error" in chunk and "choices" not in chunk:
            raise BenchError(f"the server at {cfg.root} reported an error mid-stream: "
                             f"{' '.join(str(chunk['error']).split())[:200]}")
        if not isinstance(chunk, dict) or not ({"choices", "usage"} & chunk.keys()):
            raise not_a_stream(cfg, resp.status_code, resp.headers.get("content-type"), st.head)
        st.add(chunk)
    if not st.chunks:
        raise not_a_stream(cfg, resp.status_code, resp.headers.get("content-type"), st.head)
    return st


async def _one(client: Any, cfg: ProbeConfig, req: Request) -> StreamResult:

    path, body = _body(cfg, req)
    start = time.perf_counter()
    try:
        async with client.stream("POST", f"{cfg.root}{path}", json=body, headers=headers(cfg)) as resp:
            if resp.status_code != 200:
                text = (await resp.aread()).decode(errors="replace")
                raise http_error(cfg, resp.status_code, text)
            st = await _read_stream(resp, cfg)
    except httpx.TimeoutException:
        return StreamResult(False, f"no response within --timeout {cfg.timeout_s:g} s", 0, 0, start, None, None,
                            [], None)
    except httpx.HTTPError as e:
        return StreamResult(False, f"{type(e).__name__}: {e}", 0, 0, start, None, None, [], None)
    end = time.perf_counter()
    return StreamResult(True, None, int(st.usage.get("prompt_tokens", 0)), int(st.usage.get("completion_tokens", 0)),
                        start, None if st.first is None else st.first - start, end - start, st.itl, st.finish)


@dataclass
class Driven:
    results: list[StreamResult]
    wall_s: float
    lateness_s: list[float]  # how late each scheduled request was sent
    t0: float  # perf_counter at the start of the pass


async def drive(cfg: ProbeConfig, reqs: list[Request], concurrency: int,
                arrivals: list[float] | None = None, t0: float | None = None) -> Driven:
    """Keep `concurrency` requests in flight until all are done (a client with N threads); with `arrivals`
    (seconds from the start), request i is not sent before its time. `t0`: the start (perf_counter, which is
    system-wide), when several processes share one schedule."""
    results: list[StreamResult | None] = [None] * len(reqs)
    lateness: list[float] = []
    queue = list(range(len(reqs)))[::-1]
    limits = httpx.Limits(max_connections=concurrency + SPARE_CONNECTIONS,
                          max_keepalive_connections=concurrency + SPARE_CONNECTIONS)
    async with httpx.AsyncClient(timeout=httpx.Timeout(cfg.timeout_s), limits=limits) as client:
        if t0 is None:
            t0 = time.perf_counter()
        else:
            await asyncio.sleep(max(0.0, t0 - time.perf_counter()))

        async def worker() -> None:
            while queue:
                i = queue.pop()
                if arrivals is not None:
                    await asyncio.sleep(max(0.0, t0 + arrivals[i] - time.perf_counter()))
                    lateness.append(time.perf_counter() - t0 - arrivals[i])
                results[i] = await _one(client, cfg, reqs[i])

        await asyncio.gather(*(worker() for _ in range(min(concurrency, len(reqs)))))
        wall = time.perf_counter() - t0
    return Driven([r for r in results if r is not None], wall, lateness, t0)


START_MARGIN_S = 0.05  # after every client process is ready, the shared start lies this far ahead
READY_TIMEOUT_S = 120.0  # a client process imports httpx and this package: seconds, not minutes


def auto_processes(concurrency: int, rate: float | None) -> int:
    """One process for a few streams; for rate-driven or wide runs up to 8, half the CPU cores."""
    if rate is None and concurrency <= 32:
        return 1
    return max(1, min(8, (os.cpu_count() or 2) // 2))


def _child(part: int, cfg: ProbeConfig, reqs: list[Request], concurrency: int, arrivals: list[float] | None,
           ready: Any, start: Any, out: Any) -> None:
    """One client process: say ready, wait for the shared start time, drive its share, send the outcome back."""
    ready.put(part)
    t0 = start.get()
    out.put((part, asyncio.run(drive(cfg, reqs, concurrency, arrivals, t0))))


def drive_processes(cfg: ProbeConfig, reqs: list[Request], concurrency: int, arrivals: list[float] | None,
                    processes: int) -> Driven:
    """`drive` split over `processes` client processes (request i in process i mod P, the concurrency cap split
    evenly), started together; results back in request order."""
    processes = max(1, min(processes, len(reqs)))
    ctx = multiprocessing.get_context("spawn")  # no fork of a process that may hold an event loop
    ready, out = ctx.Queue(), ctx.Queue()
    starts = [ctx.Queue() for _ in range(processes)]
    share = math.ceil(concurrency / processes)
    parts = [list(range(k, len(reqs), processes)) for k in range(processes)]
    procs = [ctx.Process(target=_child, daemon=True, args=(
        k, cfg, [reqs[i] for i in idx], share, None if arrivals is None else [arrivals[i] for i in idx],
        ready, starts[k], out)) for k, idx in enumerate(parts)]
    for p in procs:
        p.start()
    try:
        for _ in procs:
            ready.get(timeout=READY_TIMEOUT_S)
        t0 = time.perf_counter() + START_MARGIN_S
        for q in starts:
            q.put(t0)
        outcomes = dict(out.get() for _ in procs)
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
    results: list[StreamResult | None] = [None] * len(reqs)
    for k, idx in enumerate(parts):
        for i, r in zip(idx, outcomes[k].results):
            results[i] = r
    return Driven([r for r in results if r is not None], max(d.wall_s for d in outcomes.values()),
                  [x for d in outcomes.values() for x in d.lateness_s], t0)
