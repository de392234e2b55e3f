"""`tune`: every engine setting of a grid replayed on one calibration run's step model and KV plan, scored
against the SLOs and ranked by the objective; the Pareto frontier, the rejected regions and the command lines of
the best.

Speed: settings whose replays are the same share one (the KV cache only matters up to what the whole workload
holds at once; max_model_len does not enter the replay), decode-only stretches are replayed at once
(`schedsim`), and the distinct replays run on a few processes when there are many.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from offline_bench.core.errors import BenchError
from offline_bench.predict import accuracy
from offline_bench.predict.basis import Basis
from offline_bench.predict.plan import batch_defaults
from offline_bench.predict.replay import graph_limit
from offline_bench.predict.schedsim import simulate
from offline_bench.predict.stepmodel import StepModel
from offline_bench.results import build as results
from offline_bench.results.energy import usd_per_million
from offline_bench.results.plan import PlanSettings
from offline_bench.results.stats import percentile
from offline_bench.results.tune import Region, TuneResult, TuneRow, TuneSetting
from offline_bench.workloads.arrivals import arrival_offsets

GMU = [round(0.5 + 0.05 * i, 2) for i in range(10)]  # 0.5 .. 0.95
MAX_NUM_SEQS = [64, 128, 256, 512, 1024]
MAX_NUM_BATCHED_TOKENS = [2048, 4096, 8192, 16384]
POOL_FROM = 24  # distinct replays from which they are spread over processes
SLO_NAMES = {"ttft": "TTFT", "tpot": "TPOT", "e2e": "E2E"}
PLAN_KNOBS = ("gpu_memory_utilization", "kv_cache_memory_bytes", "max_model_len", "max_num_seqs",
              "max_num_batched_tokens", "kv_cache_dtype")


@dataclass
class TuneWorkload:
    requests: list[tuple[int, int]]  # (prompt tokens, output tokens)
    request_rate: float | None = None  # None: a closed batch (all at once, or `concurrency` in flight)
    burstiness: float = 1.0
    seed: int = 0
    concurrency: int | None = None

    def describe(self) -> dict[str, Any]:
        n = len(self.requests)
        return {"num_prompts": n, "input_tokens_mean": sum(p for p, _ in self.requests) / n,
                "output_tokens_mean": sum(o for _, o in self.requests) / n, "request_rate": self.request_rate,
                "burstiness": self.burstiness if self.request_rate else None, "seed": self.seed,
                "concurrency": self.concurrency}


@dataclass
class TuneGrid:
    """The knobs searched: every combination, each with every (TP, DP) layout."""

    max_model_len: list[int]
    gpu_memory_utilization: list[float] | None = None  # or kv_cache_memory_bytes (the CPU build's knob)
    kv_cache_memory_bytes: list[int] | None = None
    max_num_seqs: list[int] = field(default_factory=lambda: list(MAX_NUM_SEQS))
    max_num_batched_tokens: list[int] = field(default_factory=lambda: list(MAX_NUM_BATCHED_TOKENS))
    kv_cache_dtype: list[str] = field(default_factory=lambda: ["auto"])
    layouts: list[tuple[int, int]] = field(default_factory=lambda: [(1, 1)])  # (tensor, data) parallel

    def lists(self) -> dict[str, list[Any]]:
        out = {k: v for k, v in vars(self).items() if v is not None and k != "layouts"}
        out["layouts"] = [f"TP{t}xDP{d}" for t, d in self.layouts]
        return out

    def settings(self) -> list[TuneSetting]:
        memory = [("gpu_memory_utilization", v) for v in self.gpu_memory_utilization or []] + \
                 [("kv_cache_memory_bytes", v) for v in self.kv_cache_memory_bytes or []]
        out = []
        for (mk, mv), mml, mns, mnbt, dt, (tp, dp) in itertools.product(
                memory, self.max_model_len, self.max_num_seqs, self.max_num_batched_tokens, self.kv_cache_dtype,
                self.layouts):
            out.append(TuneSetting(**{mk: mv}, max_model_len=mml, max_num_seqs=mns, max_num_batched_tokens=mnbt,
                                   kv_cache_dtype=dt, tensor_parallel_size=tp, data_parallel_size=dp))
        return out


@dataclass
class _Replay:
    """One distinct replay's inputs (picklable: run in another process when there are many)."""

    requests: list[tuple[int, int]]
    arrivals: list[float] | None
    num_blocks: int
    block_size: int
    mnbt: int
    mns: int
    mml: int
    model: StepModel
    graphs: int
    concurrency: int | None
    share: int = 1  # every share-th request of the workload (a data-parallel replica's)

    def run(self) -> tuple[list[tuple[float, float | None, float]], float, int, int]:
        """(per request (TTFT s, TPOT s, E2E s), duration s, preemptions, decode steps above the graphs)."""
        sim = simulate(self.requests, self.num_blocks, self.block_size, self.mnbt, self.mns, self.mml,
                       self.model.step_ms, concurrency=self.concurrency, start_s=self.model.start_ms / 1000.0,
                       graph_tokens=self.graphs, arrivals_s=self.arrivals, timeline_interval_s=math.inf)
        per = [(r.first_s - r.arrival_s, (r.finish_s - r.first_s) / (r.output - 1) if r.output > 1 else None,
                r.finish_s - r.arrival_s) for r in sim.requests]
        return per, sim.duration_s, sim.preemptions, sim.uncaptured_decode_steps


def _run(replay: _Replay) -> tuple[list[tuple[float, float | None, float]], float, int, int]:
    return replay.run()


def workload_need(workload: TuneWorkload) -> int:
    return max(p + o for p, o in workload.requests)


def default_max_model_len(workload: TuneWorkload, limit: int | None = None) -> list[int]:
    """The smallest power of two (>= 256) that holds the workload's longest request, at most the model's context."""
    need = workload_need(workload)
    mml = max(256, 1 << (need - 1).bit_length())
    return [max(need, min(mml, limit)) if limit else mml]


def check_inputs(basis: Basis, workload: TuneWorkload, grid: TuneGrid, slo: dict[str, float],
                 objective: str) -> None:
    """One line for what no setting can answer, before any replay."""
    need = workload_need(workload)
    short = [m for m in grid.max_model_len if m < need]
    if short:
        raise BenchError(f"--max-model-len {short[0]} is shorter than the workload's longest request ({need} "
                         f"tokens): give values >= {need}")
    limit = basis.info.max_position_embeddings
    if limit and need > limit:
        raise BenchError(f"the workload's longest request ({need} tokens) exceeds {basis.model}'s context "
                         f"({limit} tokens): shorten --input-len / --output-len")
    over = [m for m in grid.max_model_len if limit and m > limit]
    if over:
        raise BenchError(f"--max-model-len {over[0]} exceeds {basis.model}'s context ({limit} tokens): give values "
                         f"<= {limit}")
    if objective in ("goodput", "gpus") and not slo:
        raise BenchError(f"--objective {objective} needs SLOs: add --goodput ttft:MS (and/or tpot:MS, e2e:MS)")
    if objective == "gpus" and (workload.request_rate is None or math.isinf(workload.request_rate)):
        raise BenchError("--objective gpus needs --request-rate: the fewest GPUs that keep up with a rate")


def tune(basis: Basis, workload: TuneWorkload, grid: TuneGrid, slo: dict[str, float] | None = None,
         pct: float = 99.0, objective: str = "throughput", workers: int | None = None,
         gpu_hour_usd: float | None = None) -> TuneResult:
    """Every setting of `grid` predicted for `workload` on the basis (a calibration run, `basis.from_calibration`,
    or the reference, `basis.from_reference`), scored against the SLOs and ranked by the objective."""
    t0 = time.perf_counter()
    slo = {k.removesuffix("_ms"): v for k, v in (slo or {}).items()}  # parse_goodput's ttft_ms, or ttft
    check_inputs(basis, workload, grid, slo, objective)
    settings = grid.settings()
    rows, replays, keys = [], {}, []
    for s in settings:
        row, replay = _plan(basis, s, workload)
        rows.append(row)
        key = None if replay is None else _key(replay)
        if key is not None:
            replays.setdefault(key, replay)
        keys.append(key)
    outcomes = _run_all(list(replays.items()), workers)
    for row, key in zip(rows, keys):
        if key is not None:
            _score(row, outcomes[key], workload, slo, pct)
            row.expected_error = _expected(basis, row, workload, outcomes[key][3])
            row.usd_per_million_output_tokens = usd_per_million(gpu_hour_usd, row.setting.gpus,
                                                                 row.output_tokens_per_s)
    _rank(rows, objective, f"p{pct:g}", batch_defaults(basis.total_gib))
    out = TuneResult(**results.stamp(), model=basis.model, basis=basis.source, gpu=basis.gpu,
                     workload=workload.describe(), slo_ms=slo, percentile=pct, objective=objective,
                     gpu_hour_usd=gpu_hour_usd,
                     grid=grid.lists(), settings_searched=len(settings), simulations=len(replays), rows=rows,
                     notes=list(basis.notes))
    out.regions = regions(rows, grid)
    out.answer = answer(out)
    best = out.ranked[0] if out.ranked else None
    if best is not None:
        out.recommended = commands(basis, best.setting)
    out.elapsed_s = round(time.perf_counter() - t0, 3)
    return out


def _plan(basis: Basis, s: TuneSetting, workload: TuneWorkload) -> tuple[TuneRow, _Replay | None]:
    """The setting's KV plan, and the replay of its share of the workload (None: it would not start)."""
    ps = PlanSettings(**{**basis.base, **{k: getattr(s, k) for k in PLAN_KNOBS}})
    plan = basis.plan(ps)
    row = TuneRow(setting=s, status="ok" if plan.fits else "no-start", reason=plan.reason,
                  kv_cache_tokens=plan.kv_cache_tokens, max_concurrency=plan.max_concurrency)
    if not plan.fits:
        return row, None
    blocks, longest = plan.num_blocks or 0, -(-workload_need(workload) // plan.block_size)
    if longest > blocks - 1:  # vLLM keeps one block back (the null block): the longest request must fit the rest
        row.status, row.reason = "no-start", (
            f"the longest request needs {longest} blocks of {plan.block_size} tokens, the cache holds {blocks} and "
            "vLLM keeps one back: raise --gpu-memory-utilization or --kv-cache-memory-bytes")
        return row, None
    dp = s.data_parallel_size
    reqs = workload.requests[0::dp]  # replica 0's share (round robin): the replicas are alike
    mns = plan.max_num_seqs or s.max_num_seqs
    conc = None if workload.concurrency is None else -(-workload.concurrency // dp)
    # at most min(max_num_seqs, in flight) requests hold blocks at once: a cache larger than the largest of them
    # need replays the same (one null block besides)
    sizes = sorted((-(-(p + o) // plan.block_size) for p, o in reqs), reverse=True)
    need = sum(sizes[:min(mns, conc or len(sizes))]) + 1
    model = basis.steps.model_copy(update={"kv_scale": basis.kv_scale(s.kv_cache_dtype)})
    arrivals = arrival_offsets(len(workload.requests), workload.request_rate, workload.burstiness, workload.seed)
    return row, _Replay(requests=reqs, arrivals=arrivals[0::dp] if arrivals else None,
                        num_blocks=min(blocks, need), block_size=plan.block_size,
                        mnbt=plan.max_num_batched_tokens or s.max_num_batched_tokens, mns=mns,
                        mml=s.max_model_len, model=model,
                        graphs=graph_limit({**basis.resolved, "max_num_seqs": mns}) if model.graph_tokens else 0,
                        concurrency=conc, share=dp)


def _key(r: _Replay) -> tuple:
    # max_model_len only refuses requests longer than it (checked before): not part of the replay; the workload is
    # the same for every setting, and `share` (the data-parallel size) decides which part of it a replica replays
    return (r.share, r.num_blocks, r.block_size, r.mnbt, r.mns, r.model.kv_scale, r.graphs, r.concurrency)


def _run_all(items: list[tuple[tuple, _Replay]], workers: int | None) -> dict[tuple, Any]:
    n = workers if workers is not None else min(4, os.cpu_count() or 1)
    if n <= 1 or len(items) < POOL_FROM or "fork" not in multiprocessing.get_all_start_methods():
        return {k: r.run() for k, r in items}
    # fork: the workers inherit the loaded package (no import per process); no engine runs in this process
    with ProcessPoolExecutor(max_workers=n, mp_context=multiprocessing.get_context("fork")) as pool:
        done = pool.map(_run, [r for _, r in items], chunksize=max(1, len(items) // (4 * n)))
        return {k: v for (k, _), v in zip(items, done)}


def _dist(values: Iterable[float | None], q: str, pct: float) -> dict[str, float]:
    vals = sorted(1000.0 * v for v in values if v is not None)
    if not vals:
        return {}
    return {"p50": round(percentile(vals, 50), 3), q: round(percentile(vals, pct), 3),
            "mean": round(sum(vals) / len(vals), 3)}


def _score(row: TuneRow, outcome: Any, workload: TuneWorkload, slo: dict[str, float], pct: float) -> None:
    per, duration, preemptions, _unc = outcome
    q = f"p{pct:g}"
    scale = len(workload.requests) / len(per)  # replica 0 replayed its share: the replicas together, all of it
    row.output_tokens_per_s = round(sum(o for _, o in workload.requests) / duration, 3)
    row.ttft_ms, row.tpot_ms, row.e2e_ms = (_dist((p[i] for p in per), q, pct) for i in range(3))
    row.preemptions = round(preemptions * scale)
    if slo:
        good = sum(all(v is None or 1000.0 * v <= slo[m] for m, v in zip(("ttft", "tpot", "e2e"), p) if m in slo)
                   for p in per)
        row.goodput_requests_per_s = round(scale * good / duration, 3)
        row.good_requests_pct = round(100.0 * good / len(per), 2)
        for m, limit in slo.items():
            value = getattr(row, f"{m}_ms").get(q)
            if value is not None and value > limit:
                row.slo_miss_pct[m] = round(100.0 * (value / limit - 1.0), 2)
        if row.slo_miss_pct:
            row.status = "slo"
            row.reason = "misses " + ", ".join(f"{SLO_NAMES[m]} {q} {slo[m]:g} ms by {v:.1f}%"
                                               for m, v in row.slo_miss_pct.items())


def _expected(basis: Basis, row: TuneRow, workload: TuneWorkload, uncaptured: int) -> dict[str, Any]:
    s = row.setting
    changed = {k: getattr(s, k) for k in PLAN_KNOBS
               if getattr(s, k) is not None and getattr(s, k) != basis.base.get(k)}
    moved = workload.requests != basis.requests or workload.request_rate != basis.request_rate \
        or s.data_parallel_size > 1
    kinds = accuracy.kinds_of(changed, basis.gpu_moved, row.preemptions or 0, moved,
                              uncaptured > 0 and basis.steps.uncaptured_ms is None, workload.request_rate is not None)
    if basis.reference:
        kinds.insert(0, "reference")
    e = accuracy.expected(kinds)
    return {k: v for k, v in e.items() if k != "source"}


def _objective(row: TuneRow, objective: str) -> float:
    if objective == "goodput":
        return row.goodput_requests_per_s or 0.0
    if objective == "cost":  # at one price per GPU-hour, the least $ per token is the most tokens per GPU
        return (row.output_tokens_per_s or 0.0) / row.setting.gpus
    return row.output_tokens_per_s or 0.0


def _rank(rows: list[TuneRow], objective: str, q: str, defaults: tuple[int, int]) -> None:
    """Rank the rows that meet every SLO, by the objective (3 significant digits), then TTFT and TPOT at the
    percentile; settings predicted alike go in order of closeness to vLLM's defaults (gmu 0.9, `defaults` =
    (max_num_batched_tokens, max_num_seqs) for this GPU), fewer GPUs, shorter max_model_len, the model's KV dtype.
    The frontier: rows that start and that no other beats on both output tok/s and TTFT at the percentile."""
    def distance(r: TuneRow) -> tuple[float, float, float]:
        s = r.setting
        mem = abs(s.gpu_memory_utilization - 0.9) if s.gpu_memory_utilization is not None else \
            -float(s.kv_cache_memory_bytes or 0)
        return (mem, abs(math.log2(s.max_num_seqs / defaults[1])),
                abs(math.log2(s.max_num_batched_tokens / defaults[0])))

    def key(r: TuneRow) -> tuple:
        s = r.setting
        lead = (s.gpus, -_sig3(_objective(r, "throughput"))) if objective == "gpus" else \
            (-_sig3(_objective(r, objective)),)
        return (*lead, r.ttft_ms.get(q, math.inf), r.tpot_ms.get(q, math.inf), s.gpus, *distance(r), s.max_model_len,
                s.kv_cache_dtype != "auto")

    ok = sorted((r for r in rows if r.status == "ok"), key=key)
    if not ok:  # no setting meets the SLOs: the answer is the closest, ranked by how far they miss
        ok = sorted((r for r in rows if r.status == "slo"), key=lambda r: (max(r.slo_miss_pct.values()), key(r)))
    for i, r in enumerate(ok, 1):
        r.rank = i
    started = sorted((r for r in rows if r.status != "no-start" and r.ttft_ms.get(q) is not None),
                     key=lambda r: (-(r.output_tokens_per_s or 0.0), r.ttft_ms[q], *key(r)[1:]))
    best_ttft = math.inf
    for r in started:  # by throughput, best first: on the frontier when its TTFT beats every faster row's
        if r.ttft_ms[q] < best_ttft:
            r.pareto, best_ttft = True, r.ttft_ms[q]


def _sig3(x: float) -> float:
    """Three significant digits: objectives closer than that (an arrival-bound rate's output tok/s) tie, and
    latency decides."""
    return float(f"{x:.3g}") if x else 0.0


REGION_KNOBS = ("gpu_memory_utilization", "kv_cache_memory_bytes", "max_model_len", "max_num_seqs",
                "max_num_batched_tokens", "kv_cache_dtype", "tensor_parallel_size", "data_parallel_size")


NO_START = (("no memory left", "no memory left for the KV cache (weights + activation + non-torch)"),
            ("one request of max_model_len", "the cache cannot hold one request of max_model_len"),
            ("the longest request needs", "the cache cannot hold the workload's longest request"))


def _reason_class(r: TuneRow) -> tuple[str, str]:
    if r.status == "no-start":
        why = r.reason or "would not start"
        return "no-start", next((text for start, text in NO_START if why.startswith(start)), why.split(":")[0])
    if r.status == "slo":
        return "slo", "misses " + " and ".join(SLO_NAMES[m] for m in r.slo_miss_pct)
    return "preempts", "preempts (recomputes evicted requests): slower than the same setting with more KV cache"


def _sorted(values: set) -> list:
    try:
        return sorted(values)
    except TypeError:  # None beside numbers
        return sorted(values, key=str)


def regions(rows: list[TuneRow], grid: TuneGrid) -> list[Region]:
    """The rejected settings grouped by why (would not start, misses which SLO) and the preempting ones, each
    with the values of the knobs the grid varies that the group spans."""
    groups: dict[tuple[str, str], list[TuneRow]] = {}
    for r in rows:
        if r.status != "ok" or r.preemptions:
            groups.setdefault(_reason_class(r), []).append(r)
    varied = [k for k in REGION_KNOBS if len({getattr(r.setting, k) for r in rows}) > 1]
    return [Region(status=st, reason=why, count=len(rs),
                   spans={k: _sorted({getattr(r.setting, k) for r in rs}) for k in varied})
            for (st, why), rs in sorted(groups.items(), key=lambda kv: -len(kv[1]))]


def answer(t: TuneResult) -> str:
    """The answer in one sentence."""
    q = f"p{t.percentile:g}"
    ranked = t.ranked
    if ranked and ranked[0].status == "ok":
        b = ranked[0]
        what = f"{b.output_tokens_per_s:,.0f} output tok/s"
        if t.objective == "goodput":
            what = f"{b.goodput_requests_per_s:,.2f} good req/s at {what}"
        elif t.objective == "gpus":
            what = f"{b.setting.gpus} GPU(s) at {what}"
        elif t.objective == "cost":
            what = f"{b.output_tokens_per_s / b.setting.gpus:,.0f} output tok/s per GPU ({b.setting.gpus} GPU(s))"
        if b.usd_per_million_output_tokens is not None:
            what += f", ${b.usd_per_million_output_tokens:,.3f} per million output tokens"
        alike = sum(r.output_tokens_per_s == b.output_tokens_per_s and r.ttft_ms.get(q) == b.ttft_ms.get(q)
                    and r.tpot_ms.get(q) == b.tpot_ms.get(q) for r in ranked) - 1
        same = f" {alike} other settings predict the same (at this load those knobs do not matter)." if alike else ""
        tpot = f", TPOT {q} {b.tpot_ms[q]:,.2f} ms" if q in b.tpot_ms else ""
        return (f"Best of {t.settings_searched} settings: {describe(b.setting)}: {what} predicted, TTFT {q} "
                f"{b.ttft_ms.get(q, 0):,.1f} ms{tpot}.{same}")
    if not ranked:
        return f"None of the {t.settings_searched} settings would start: see the rejected regions."
    c = ranked[0]
    return (f"No setting meets every SLO; the closest, {describe(c.setting)}, {c.reason} at "
            f"{c.output_tokens_per_s:,.0f} output tok/s predicted (the ranking orders the settings by how far they "
            "miss).")


def describe(s: TuneSetting) -> str:
    mem = f"gmu {s.gpu_memory_utilization:g}" if s.gpu_memory_utilization is not None else \
        f"KV {s.kv_cache_memory_bytes / 2**30:g} GiB"
    out = f"{mem}, max_num_seqs {s.max_num_seqs}, max_num_batched_tokens {s.max_num_batched_tokens}, " \
          f"max_model_len {s.max_model_len}"
    if s.kv_cache_dtype != "auto":
        out += f", KV {s.kv_cache_dtype}"
    if s.gpus > 1:
        out += f", TP {s.tensor_parallel_size} x DP {s.data_parallel_size}"
    return out


def commands(basis: Basis, s: TuneSetting) -> dict[str, str]:
    """The setting as `vllm serve` flags and `LLM(...)` arguments, with the calibration run's other engine
    arguments that change what runs (dummy weights, eager mode, dtype; a preset's server loads dummy weights
    itself)."""
    model = basis.model
    skip = {"model", "tokenizer", "seed", "disable_log_stats", "enable_logging_iteration_details", "engine_args",
            *s.model_dump(), *(("load_format",) if model.startswith("preset:") else ())}
    args: dict[str, Any] = {k: v for k, v in basis.engine_args.items() if k not in skip and not (
        v is None or v is False or v == "auto" or (type(v) is int and v == 1))}
    args.update({k: v for k, v in s.model_dump().items() if v is not None and not (
        (k == "kv_cache_dtype" and v == "auto") or (k in ("tensor_parallel_size", "data_parallel_size") and v == 1))})
    flags = " ".join(f"--{k.replace('_', '-')}" + ("" if v is True else f" {v}") for k, v in args.items())
    serve = (f"offline-bench serve-preset {model.split(':', 1)[1]} {flags}" if model.startswith("preset:")
             else f"vllm serve {model} {flags}")
    per_replica = {k: v for k, v in args.items() if k != "data_parallel_size"}
    llm = "LLM(model={!r}, {})".format(model, ", ".join(f"{k}={v!r}" for k, v in per_replica.items()))
    if s.data_parallel_size > 1:  # vLLM's LLM class takes no data_parallel_size: one per replica
        llm += f" in each of {s.data_parallel_size} processes, one per GPU group (offline-bench run -dp does this)"
    return {"vllm serve": serve, "LLM(...)": llm}
