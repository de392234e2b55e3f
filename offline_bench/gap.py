"""`explain-gap`: why is the server slower than the engine? Take the serving run (measured now, or a saved
`serve-probe` result when the server had to be stopped to free the GPU), then run a ladder of offline runs that
each switch one condition toward the serving setup; each step's change is its share of the gap and what is left
over is the HTTP/serving path itself."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from tabulate import tabulate

from offline_bench.config import EngineConfig, RunConfig, WorkloadConfig
from offline_bench.engine import Engine
from offline_bench.errors import BenchError
from offline_bench.formats import renders
from offline_bench.runner import run_benchmark
from offline_bench.schema import RunResult, write_atomic
from offline_bench.serving import ProbeConfig, probe

SCHED_KEYS = ("max_num_batched_tokens", "max_num_seqs")


class GapStep(BaseModel):
    step: str
    output_tokens_per_s: float
    ttft_ms_p50: float | None
    tpot_ms_p50: float | None
    change_tokens_per_s: float | None  # vs the step before (negative = slower)
    share_of_gap: float | None  # of (first offline step - serving)


class GapReport(BaseModel):
    concurrency: int
    num_prompts: int | None
    steps: list[GapStep]
    gap_tokens_per_s: float
    summary: str


def server_scheduler_defaults(engine: Engine, user_set: set[str]) -> dict[str, tuple[int, int]]:
    """{knob: (what this LLM-class engine runs with, what `vllm serve` would pick)} for the scheduler knobs the
    user left unset and where the two differ. vLLM gives the OpenAI server smaller defaults than the LLM class
    (H100: 8,192 vs 16,384 batched tokens; CPU: 2,048 vs 4,096 and 128 vs 256 sequences)."""
    try:
        # vLLM is heavy to import (torch, CUDA): only where an engine is used
        from vllm.engine.arg_utils import EngineArgs
        from vllm.usage.usage_lib import UsageContext

        resolved = engine.resolved_args()
        tokens, seqs = EngineArgs.get_batch_defaults(resolved["tensor_parallel_size"]
                                                     * resolved["pipeline_parallel_size"])
        serve = {"max_num_batched_tokens": tokens.get(UsageContext.OPENAI_API_SERVER),
                 "max_num_seqs": seqs.get(UsageContext.OPENAI_API_SERVER)}
    except (ImportError, AttributeError, TypeError, KeyError):  # a release without the probe: no step
        return {}
    if serve["max_num_batched_tokens"] and resolved.get("enable_chunked_prefill") is False:
        serve["max_num_batched_tokens"] = max(serve["max_num_batched_tokens"], resolved["max_model_len"])
    return {k: (resolved[k], serve[k]) for k in SCHED_KEYS
            if k not in user_set and serve[k] is not None and serve[k] != resolved[k]}


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


def check_serving_result(r: RunResult, path: str, concurrency: int, num_prompts: int | None,
                         wl: WorkloadConfig) -> None:
    """A saved serving result must be of this very workload, or the ladder explains a different gap."""
    source = "synthetic" if wl.synthetic else str(wl.prompts_file)
    want = {"mode": "serving", "concurrency": concurrency, "num_prompts": num_prompts, "source": source,
            "output_len": wl.output_len, "temperature": wl.temperature, "top_p": wl.top_p, "seed": wl.seed,
            "request_rate": wl.request_rate, "prefix_len": wl.prefix_len or None}
    got = {"mode": r.mode, "concurrency": r.workload.concurrency, "num_prompts": r.workload.num_prompts,
           "source": r.workload.source, "output_len": r.workload.output_len, "temperature": r.workload.temperature,
           "top_p": r.workload.top_p, "seed": r.workload.seed, "request_rate": r.workload.request_rate,
           "prefix_len": r.workload.prefix_len or None}
    if wl.request_rate is not None:
        want["burstiness"], got["burstiness"] = wl.burstiness, r.workload.burstiness
    if wl.synthetic:
        want["input_len"], got["input_len"] = wl.input_len, r.workload.input_len
    if num_prompts is None:
        want.pop("num_prompts")
    diff = [f"{k} {got[k]!r} (here {want[k]!r})" for k in want if got[k] != want[k]]
    if diff:
        raise BenchError(f"--serving-result {path} is not this workload: {', '.join(diff)}; give the same "
                         "workload flags as its serve-probe run")


def load_saved_serving(paths: list[str], levels: list[tuple[int, int | None]],
                       wl: WorkloadConfig) -> dict[int, RunResult]:
    """--serving-result files by concurrency level, each checked to be this workload at one of `levels`."""
    wanted = dict(levels)
    saved: dict[int, RunResult] = {}
    for path in paths:
        r = RunResult.load(path)
        level = r.workload.concurrency or 1
        if level not in wanted:
            raise BenchError(f"--serving-result {path} was measured at concurrency {level}, which is not in "
                             f"--concurrency {','.join(str(c) for c, _ in levels)}")
        check_serving_result(r, path, level, wanted[level], wl)
        saved[level] = r
    return saved


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
        for name, s in ladder(probe_cfg, engine_cfg, server_scheduler_defaults(engine, user_set or set())):
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


def report(results: list[tuple[str, RunResult]], concurrency: int, num_prompts: int | None = None) -> GapReport:
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
    return GapReport(concurrency=concurrency, num_prompts=num_prompts or results[-1][1].workload.num_prompts,
                     steps=steps, gap_tokens_per_s=gap, summary=text)


@renders("gap", ("table", "md"))
def render(reps: list[GapReport], fmt: str = "table") -> str:

    parts = []
    for rep in reps:
        rows = [[s.step, f"{s.output_tokens_per_s:,.1f}", "" if s.ttft_ms_p50 is None else f"{s.ttft_ms_p50:,.1f}",
                 "" if s.tpot_ms_p50 is None else f"{s.tpot_ms_p50:,.2f}",
                 "" if s.change_tokens_per_s is None else f"{s.change_tokens_per_s:+,.1f}",
                 "" if s.share_of_gap is None else f"{s.share_of_gap:.1%}"] for s in rep.steps]
        text = tabulate(rows, headers=["step", "output tok/s", "TTFT p50 ms", "TPOT p50 ms", "change",
                                       "share of gap"],
                        tablefmt="github" if fmt == "md" else "simple", disable_numparse=True)
        head = f"concurrency {rep.concurrency}, {rep.num_prompts} requests"
        parts.append(f"{'### ' if fmt == 'md' else ''}{head}\n\n{text}\n\n{rep.summary}\n")
    return "\n".join(parts) + ("\n(the last row's share is the HTTP/serving path: API server, serialization, "
                               "streaming, the client)\n")


def save_ladder(path: str, reps: list[GapReport], runs: dict[int, list[tuple[str, RunResult]]]) -> None:
    """The reports and every step's result, as one JSON file (atomically)."""
    write_atomic(path, json.dumps({"reports": [r.model_dump() for r in reps],
                                   "runs": {str(c): [{"step": n, "result": r.model_dump()} for n, r in steps]
                                            for c, steps in runs.items()}}, indent=2))
