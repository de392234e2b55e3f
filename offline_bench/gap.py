"""`explain-gap`: why is the server slower than the engine? Measure the serving run, then a ladder of offline
runs that each switch one condition toward the serving setup; each step's change is its share of the gap and
what is left over is the HTTP/serving path itself."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from offline_bench.config import EngineConfig, RunConfig
from offline_bench.engine import Engine
from offline_bench.runner import run_benchmark
from offline_bench.schema import RunResult
from offline_bench.serving import ProbeConfig, probe


class GapStep(BaseModel):
    step: str
    output_tokens_per_s: float
    ttft_ms_p50: float | None
    tpot_ms_p50: float | None
    change_tokens_per_s: float | None  # vs the step before (negative = slower)
    share_of_gap: float | None  # of (first offline step - serving)


class GapReport(BaseModel):
    concurrency: int
    steps: list[GapStep]
    gap_tokens_per_s: float
    summary: str


def ladder(probe_cfg: ProbeConfig, engine_cfg: EngineConfig, concurrency: int) -> list[tuple[str, dict[str, Any]]]:
    wl = probe_cfg.workload
    server_prefix = engine_cfg.enable_prefix_caching if engine_cfg.enable_prefix_caching is not None else True
    return [
        ("offline: whole batch at once, no detokenization, greedy, prefix caching off",
         {"detokenize": False, "temperature": 0.0, "top_p": 1.0, "prefix": False, "concurrency": None}),
        ("+ detokenization (a server always detokenizes)",
         {"detokenize": True, "temperature": 0.0, "top_p": 1.0, "prefix": False, "concurrency": None}),
        (f"+ the serving sampling parameters (temperature {wl.temperature:g}, top_p {wl.top_p:g})",
         {"detokenize": True, "temperature": wl.temperature, "top_p": wl.top_p, "prefix": False,
          "concurrency": None}),
        (f"+ prefix caching {'on' if server_prefix else 'off'}, as the server runs",
         {"detokenize": True, "temperature": wl.temperature, "top_p": wl.top_p, "prefix": server_prefix,
          "concurrency": None}),
        (f"+ {concurrency} requests in flight in-process (like {concurrency} client threads)",
         {"detokenize": True, "temperature": wl.temperature, "top_p": wl.top_p, "prefix": server_prefix,
          "concurrency": concurrency}),
    ]


def explain_gap(probe_cfg: ProbeConfig, engine_cfg: EngineConfig, concurrency: int, tokenizer: str | None,
                echo_log: bool = False) -> tuple[GapReport, list[tuple[str, RunResult]]]:
    serving = probe(probe_cfg, concurrency, tokenizer)
    results: list[tuple[str, RunResult]] = []
    engine: Engine | None = None
    engine_prefix: bool | None = None
    try:
        for name, s in ladder(probe_cfg, engine_cfg, concurrency):
            if engine is None or engine_prefix != s["prefix"]:
                if engine is not None:
                    engine.close()
                engine = Engine(engine_cfg.model_copy(update={"enable_prefix_caching": s["prefix"]}),
                                echo_log=echo_log)
                engine_prefix = s["prefix"]
            wl = probe_cfg.workload.model_copy(update={"detokenize": s["detokenize"], "temperature": s["temperature"],
                                                       "top_p": s["top_p"]})
            cfg = RunConfig(engine=engine.cfg, workload=wl, concurrency=s["concurrency"])
            results.append((name, run_benchmark(cfg, engine=engine)))
    finally:
        if engine is not None:
            engine.close()
    results.append((f"serving over HTTP ({probe_cfg.root}), concurrency {concurrency}", serving))
    return report(results, concurrency), results


def report(results: list[tuple[str, RunResult]], concurrency: int) -> GapReport:
    rates = [r.throughput.output_tokens_per_s or 0.0 for _, r in results]
    gap = rates[0] - rates[-1]
    steps = []
    for i, (name, r) in enumerate(results):
        change = None if i == 0 else rates[i] - rates[i - 1]
        share = None if i == 0 or gap == 0 else -(change or 0.0) / gap
        steps.append(GapStep(step=name, output_tokens_per_s=rates[i], ttft_ms_p50=r.latency.ttft_ms.p50,
                             tpot_ms_p50=r.latency.tpot_ms.p50, change_tokens_per_s=change, share_of_gap=share))
    if gap <= 0:
        text = f"serving was not slower than the offline engine ({rates[-1]:,.1f} vs {rates[0]:,.1f} output tok/s)"
    else:
        biggest = max(steps[1:], key=lambda s: s.share_of_gap or 0.0)
        text = (f"serving gives {rates[-1]:,.1f} output tok/s against {rates[0]:,.1f} offline "
                f"({rates[-1] / rates[0]:.1%}); the largest part of the gap ({biggest.share_of_gap:.0%}) comes "
                f"from: {biggest.step}")
    return GapReport(concurrency=concurrency, steps=steps, gap_tokens_per_s=gap, summary=text)


def render(rep: GapReport, fmt: str = "table") -> str:
    from tabulate import tabulate

    rows = [[s.step, f"{s.output_tokens_per_s:,.1f}", "" if s.ttft_ms_p50 is None else f"{s.ttft_ms_p50:,.1f}",
             "" if s.tpot_ms_p50 is None else f"{s.tpot_ms_p50:,.2f}",
             "" if s.change_tokens_per_s is None else f"{s.change_tokens_per_s:+,.1f}",
             "" if s.share_of_gap is None else f"{s.share_of_gap:.1%}"] for s in rep.steps]
    text = tabulate(rows, headers=["step", "output tok/s", "TTFT p50 ms", "TPOT p50 ms", "change", "share of gap"],
                    tablefmt="github" if fmt == "md" else "simple", disable_numparse=True)
    return (f"{text}\n\n{rep.summary}\n(the last row's share is the HTTP/serving path: API server, "
            "serialization, streaming, the client)\n")
