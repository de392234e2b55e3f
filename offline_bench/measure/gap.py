"""`explain-gap`: why is the server slower than the engine? Take the serving run (measured now, or a saved
`serve-probe` result when the server had to be stopped to free the GPU), then run a ladder of offline runs that
each switch one condition toward the serving setup; each step's change is its share of the gap and what is left
over is the HTTP/serving path itself."""

from __future__ import annotations

from typing import Any

from offline_bench.analysis.gap import report
from offline_bench.core.config import EngineConfig, RunConfig
from offline_bench.engine.args import server_scheduler_defaults
from offline_bench.engine.llm import Engine
from offline_bench.measure.runner import run_benchmark
from offline_bench.results.gap import GapReport
from offline_bench.results.run import RunResult
from offline_bench.serving.probe import ProbeConfig, probe


def ladder(probe_cfg: ProbeConfig, engine_cfg: EngineConfig,
           sched: dict[str, tuple[int, int]]) -> list[tuple[str, dict[str, Any]]]:
    """(step name, settings); settings["engine"] are engine overrides, "concurrency" True means the level's."""
    wl = probe_cfg.workload
    prefix = engine_cfg.enable_prefix_caching if engine_cfg.enable_prefix_caching is not None else True
    base = {"detokenize": False, "temperature": 0.0, "top_p": 1.0, "concurrency": False,
            "engine": {"enable_prefix_caching": False}}
    steps = [("offline: whole batch at once, no detokenization, greedy, prefix caching off", base)]
    s = {**base, "detokenize": True}
    steps.append(("+ detokenization (a server always detokenizes)", s))
    s = {**s, "temperature": wl.temperature, "top_p": wl.top_p}
    steps.append((f"+ the serving sampling parameters (temperature {wl.temperature:g}, top_p {wl.top_p:g})", s))
    s = {**s, "engine": {"enable_prefix_caching": prefix}}
    steps.append((f"+ prefix caching {'on' if prefix else 'off'}, as the server runs", s))
    if sched:
        s = {**s, "engine": {**s["engine"], **{k: v[1] for k, v in sched.items()}}}
        what = ", ".join(f"{k} {v[1]:,} (LLM class: {v[0]:,})" for k, v in sched.items())
        steps.append((f"+ the scheduler defaults of `vllm serve`: {what}", s))
    if wl.request_rate is None:
        last = "+ the same number of requests in flight in-process (like that many client threads)"
    else:
        last = (f"+ the serving arrival schedule ({wl.request_rate:g} req/s, burstiness {wl.burstiness:g}) with at "
                "most the same number of requests in flight")
    steps.append((last, {**s, "concurrency": True}))
    return steps


def explain_gap(probe_cfg: ProbeConfig, engine_cfg: EngineConfig, levels: list[tuple[int, int | None]],
                tokenizer: str | None, serving: dict[int, RunResult] | None = None, echo_log: bool = False,
                user_set: set[str] | None = None) -> tuple[list[GapReport], dict[int, list[tuple[str, RunResult]]]]:
    """levels: (concurrency, num_prompts or None for the workload's own). The serving runs come first (all
    levels), then each ladder step runs every level in one engine, so the engine restarts only when a step
    changes an engine setting."""
    serving = dict(serving or {})
    for c, n in levels:
        if c not in serving:
            serving[c] = probe(probe_cfg.with_prompts(n), c, tokenizer)
    runs: dict[int, list[tuple[str, RunResult]]] = {c: [] for c, _ in levels}
    over: dict[str, Any] = {"enable_prefix_caching": False}  # the first step's engine
    engine = Engine(engine_cfg.model_copy(update=over), echo_log=echo_log)
    try:
        # the scheduler step needs a running engine to read vLLM's defaults for this device
        sched = server_scheduler_defaults(engine.resolved_args(), user_set or set())
        for name, s in ladder(probe_cfg, engine_cfg, sched):
            if s["engine"] != over:
                engine.close()
                over = s["engine"]
                engine = Engine(engine_cfg.model_copy(update=over), echo_log=echo_log)
            for c, n in levels:
                wl = probe_cfg.with_prompts(n).workload.model_copy(
                    update={"detokenize": s["detokenize"], "temperature": s["temperature"], "top_p": s["top_p"],
                            "request_rate": probe_cfg.workload.request_rate if s["concurrency"] else None})
                cfg = RunConfig(engine=engine.cfg, workload=wl, concurrency=c if s["concurrency"] else None)
                runs[c].append((name.replace("the same number of", str(c)), run_benchmark(cfg, engine=engine)))
    finally:
        engine.close()
    reports = []
    for c, n in levels:
        runs[c].append((f"serving over HTTP ({probe_cfg.root}), concurrency {c}", serving[c]))
        reports.append(report(runs[c], c, n))
    return reports, runs


