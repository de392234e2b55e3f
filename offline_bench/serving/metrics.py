"""A serving run's view of the server's own state: vLLM's Prometheus metrics (GET /metrics) sampled while the probe
runs, turned into the `timeline` and `kv_cache` fields an offline run fills from the same gauges and counters."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from offline_bench.engine.llm import probe_values
from offline_bench.results.run import KVCache, TimelinePoint

SAMPLE_INTERVAL_S = 0.25  # the rate; a slower server is sampled as fast as it answers
COUNTERS = ("preemptions", "prefix_queries", "prefix_hits")
_LINE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{.*\})?\s+(\S+)(?:\s+\S+)?$")

METRICS_NOTE = ("Server state (timeline, peak KV use, preemptions, prefix-cache hits) comes from the server's "
                "GET /metrics, sampled every {interval:g} s during the timed pass ({n} samples): peaks between "
                "two samples can be missed; counters are the difference between the samples just before and just "
                "after the pass (the warm-up excluded).")


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text -> the values engine.MetricsProbe reads in-process (engine.probe_values)."""
    return probe_values(_samples(text))


def _samples(text: str) -> Iterator[tuple[str, float]]:
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m or m.group(1).endswith("_created"):  # `_created`: a counter's creation time, not a count
            continue
        try:
            yield m.group(1), float(m.group(3))
        except ValueError:
            continue


@dataclass
class MetricsSampler:
    """Polls GET /metrics until stopped; samples keep the client's clock (perf_counter) at mid-request."""

    url: str
    headers: dict[str, str]
    interval_s: float = SAMPLE_INTERVAL_S
    samples: list[tuple[float, dict[str, float]]] = field(default_factory=list)
    available: bool = True

    async def read(self, client: httpx.AsyncClient) -> dict[str, float] | None:
        t = time.perf_counter()
        try:
            r = await client.get(self.url, headers=self.headers)
        except httpx.HTTPError:
            return None
        if r.status_code != 200:
            return None
        values = parse_metrics(r.text)
        if values:
            self.samples.append(((t + time.perf_counter()) / 2, values))
        return values or None

    async def run(self, stop: asyncio.Event, ready: asyncio.Event) -> None:
        """The first sample (the counters' base) is taken before `ready` is set: start the pass after it."""
        async with httpx.AsyncClient(timeout=httpx.Timeout(10.0)) as client:
            first = await self.read(client)
            ready.set()
            if first is None:  # no vLLM metrics here: say unknown, poll no further
                self.available = False
                return
            while not stop.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.interval_s)
                await self.read(client)  # one more after the stop: the counters' final values

    def timeline(self, t0: float) -> list[TimelinePoint]:
        base = self.samples[0][1].get("preemptions") if self.samples else None
        return [TimelinePoint(t_s=round(t - t0, 4), repeat=0, running=v.get("running", 0.0),
                              waiting=v.get("waiting", 0.0), kv_usage_pct=v.get("kv_usage", 0.0),
                              preemptions=v["preemptions"] - base if base is not None and "preemptions" in v
                              else None)
                for t, v in self.samples if t >= t0]

    def fill_kv_cache(self, kv: KVCache) -> None:
        """Peak KV use and counter deltas over the sampled window into `kv` (left unknown without samples)."""
        if len(self.samples) < 2:
            return
        first, last = self.samples[0][1], self.samples[-1][1]
        usage = [v["kv_usage"] for _, v in self.samples if "kv_usage" in v]
        kv.peak_usage_pct = max(usage) if usage else None
        delta = {k: last[k] - first[k] for k in COUNTERS if k in first and k in last}
        if "preemptions" in delta:
            kv.preemptions = int(delta["preemptions"])
        if "prefix_queries" in delta and "prefix_hits" in delta:
            kv.prefix_cache_queries, kv.prefix_cache_hits = int(delta["prefix_queries"]), int(delta["prefix_hits"])
            kv.prefix_cache_hit_rate = (delta["prefix_hits"] / delta["prefix_queries"]
                                        if delta["prefix_queries"] else None)

    def note(self) -> str:
        return METRICS_NOTE.format(interval=self.interval_s, n=len(self.samples))


def server_limits(server_info: Any) -> dict[str, Any]:
    """max_num_seqs, max_num_batched_tokens, max_model_len and the parallel sizes from vLLM's GET /server_info (dev
    mode), JSON or text form, and the server's GPU (its collect_env report)."""
    out: dict[str, Any] = {}
    env = server_info.get("system_env") if isinstance(server_info, dict) else None
    gpus = env.get("nvidia_gpu_models") if isinstance(env, dict) else None
    m = re.search(r"GPU 0: ([^\n(]+)", gpus) if isinstance(gpus, str) else None
    if m:
        out["gpu_name"] = m.group(1).strip()
    elif isinstance(gpus, str) and gpus.strip() and "\n" not in gpus.strip():
        out["gpu_name"] = gpus.strip()  # a single GPU is reported by name alone
    cfg = server_info.get("vllm_config") if isinstance(server_info, dict) else None
    for key, section in (("max_num_seqs", "scheduler_config"), ("max_num_batched_tokens", "scheduler_config"),
                         ("max_model_len", "model_config"), ("tensor_parallel_size", "parallel_config"),
                         ("pipeline_parallel_size", "parallel_config"), ("data_parallel_size", "parallel_config")):
        part = cfg.get(section) if isinstance(cfg, dict) else None
        value = part.get(key) if isinstance(part, dict) else None
        if value is None and isinstance(cfg, str):
            m = re.search(rf"\b{key}=(\d+)", cfg)
            value = int(m.group(1)) if m else None
        if isinstance(value, int) and not isinstance(value, bool):
            out[key] = value
    return out
