"""`scaling`: what more GPUs bought. Runs of one workload on different layouts (TP x PP x DP) side by side, with
output tokens/s per GPU and the scaling efficiency against a baseline run; and from `phases` results, the batch-1
decode step against the memory-bound floor of its TP group -- the gap is everything that is not reading weights
and KV, and with TP > 1 it is charged to the step's all-reduces (two per layer) as an upper bound."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from pydantic import BaseModel
from tabulate import tabulate

from offline_bench.analysis.compare import Labeled, mismatches
from offline_bench.core.errors import BenchError
from offline_bench.core.formats import renders
from offline_bench.model.presets import resolve_model
from offline_bench.predict.stepmodel import full_batch_decode_step
from offline_bench.results.load import Item
from offline_bench.results.phases import PhasesResult
from offline_bench.results.run import RunResult


class RunScaling(BaseModel):
    result: str
    layout: str  # e.g. "TP=2", "DP=2 x TP=2", "PP=2 (ray)"
    gpus: int
    gpu_name: str | None
    output_tokens_per_s: float
    output_tokens_per_s_per_gpu: float
    speedup: float  # output tokens/s over the baseline's
    efficiency_pct: float  # per-GPU output tokens/s over the baseline's
    kv_capacity_tokens_total: int | None
    tpot_p50_ms: float | None
    preemptions: int | None
    # pure-decode steps at the run's full batch (stepmodel.full_batch_decode_step); a DP run: one replica's engine
    full_batch_step_ms: float | None = None
    full_batch_requests: float | None = None
    us_per_request: float | None = None  # step time per decoding request: what one engine core spends on each


class DecodeScaling(BaseModel):
    result: str
    layout: str
    gpus: int
    gpu_name: str | None
    batch_size: int
    step_ms: float
    floor_ms: float | None  # the TP group's ceiling for this batch as a step time
    pct_of_ceiling: float | None
    gap_ms: float | None  # step - floor
    allreduces_per_step: int | None  # 2 per layer with TP > 1; None where the model's layers are unknown
    gap_per_allreduce_us: float | None  # the whole gap charged to the all-reduces: an upper bound


class ScalingReport(BaseModel):
    baseline: str | None
    runs: list[RunScaling]
    decode: list[DecodeScaling]
    warnings: list[str]


def layout(tp: int, pp: int, dp: int, backend: str | None = None) -> str:
    parts = [f"{name}={n}" for name, n in (("DP", dp), ("PP", pp), ("TP", tp)) if n > 1] or ["1 GPU"]
    return " x ".join(parts) + (" (ray)" if backend == "ray" else "")


def _run_shape(r: RunResult) -> tuple[int, str]:
    par = r.parallel or {}
    args = r.engine_args or {}
    tp, pp, dp = (int(par.get(k) or args.get(k) or 1) for k in ("tensor_parallel_size", "pipeline_parallel_size",
                                                                "data_parallel_size"))
    return int(par.get("gpus_used") or tp * pp * dp), layout(tp, pp, dp, par.get("executor_backend"))


def _layers(model: str) -> int | None:
    try:
        info = resolve_model(model).info
    except BenchError:  # a path of another machine
        return None
    return info.num_layers if info else None


def run_rows(runs: list[Item], baseline: Item) -> tuple[list[RunScaling], list[str]]:
    """One row per run (ratios against `baseline`), and a warning for every condition that differs from it."""
    base: RunResult = baseline.data
    base_gpus, _ = _run_shape(base)
    base_per_gpu = base.throughput.output_tokens_per_s / base_gpus
    rows, warnings = [], []
    for item in runs:
        r: RunResult = item.data
        gpus, shape = _run_shape(r)
        out = r.throughput.output_tokens_per_s
        tpot = r.latency.tpot_ms
        step = full_batch_decode_step(r.steps) if r.steps else None
        rows.append(RunScaling(
            result=item.label, layout=shape, gpus=gpus, gpu_name=r.environment.gpu_name, output_tokens_per_s=out,
            output_tokens_per_s_per_gpu=out / gpus, speedup=out / base.throughput.output_tokens_per_s,
            efficiency_pct=100 * out / gpus / base_per_gpu,
            kv_capacity_tokens_total=(r.parallel or {}).get("kv_capacity_tokens_total", r.kv_cache.capacity_tokens),
            tpot_p50_ms=tpot.p50 if tpot else None, preemptions=r.kv_cache.preemptions,
            full_batch_step_ms=step[0] if step else None, full_batch_requests=step[1] if step else None,
            us_per_request=1000 * step[0] / step[1] if step else None))
        if item is not baseline:
            warnings += [f"{item.label} vs {baseline.label}: {m}"
                         for m in mismatches(Labeled(baseline.label, base), Labeled(item.label, r))]
    return rows, warnings


def decode_rows(item: Item, batch_sizes: tuple[int, ...] = (1,)) -> list[DecodeScaling]:
    """The decode rows of one phases result at `batch_sizes`, each against its TP group's floor."""
    p: PhasesResult = item.data
    args = p.engine_args
    tp, pp, dp = (int(args.get(k) or 1) for k in ("tensor_parallel_size", "pipeline_parallel_size",
                                                  "data_parallel_size"))
    layers = _layers(p.model)
    allreduces = (2 * layers if tp > 1 else 0) if layers else None
    out = []
    for row in p.rows:
        if row.phase != "decode" or row.batch_size not in batch_sizes or row.latency_ms is None:
            continue
        floor = 1000 * row.batch_size / row.ceiling_tokens_per_s if row.ceiling_tokens_per_s else None
        gap = row.latency_ms - floor if floor is not None else None
        out.append(DecodeScaling(
            result=item.label, layout=layout(tp, pp, dp), gpus=tp * pp, gpu_name=p.environment.gpu_name,
            batch_size=row.batch_size, step_ms=row.latency_ms, floor_ms=floor, pct_of_ceiling=row.pct_of_ceiling,
            gap_ms=gap, allreduces_per_step=allreduces,
            gap_per_allreduce_us=1000 * gap / allreduces if gap is not None and allreduces and pp == 1 else None))
    return out


def scaling_report(items: list[Item], baseline: str | None = None, batch_sizes: tuple[int, ...] = (1,)
                   ) -> ScalingReport:
    """Runs against `baseline` (a path given; default: the run on the fewest GPUs, the first of equals)."""
    runs = [i for i in items if i.kind == "run" and i.data.mode == "offline"]
    phases = [i for i in items if i.kind == "phases"]
    others = [i for i in items if i not in runs and i not in phases]
    if others:
        bad = others[0]
        kind = bad.data.mode if bad.kind == "run" else bad.kind  # a serving run, a sweep, ...
        what = "" if bad.kind == "skipped" else f" (a {kind} result)"
        raise BenchError(f"'{bad.path}' is not an offline `run` or `phases` result{what}: scaling compares offline "
                         "runs (throughput) and phases results (decode step)")
    base = None
    if baseline is not None:
        base = next((i for i in runs if i.path == baseline), None)
        if base is None:
            raise BenchError(f"--baseline {baseline} is not one of the offline runs given")
    elif runs:
        base = min(runs, key=lambda i: _run_shape(i.data)[0])
    rows, warnings = run_rows(runs, base) if base else ([], [])
    decode = [d for i in phases for d in decode_rows(i, batch_sizes)]
    return ScalingReport(baseline=base.label if base else None, runs=rows, decode=decode, warnings=warnings)


def _num(v: Any, digits: int = 1) -> str:
    if v is None:
        return ""
    return f"{v:,.{digits}f}" if isinstance(v, float) else f"{v:,}"


RUN_HEADERS = ["result", "layout", "GPUs", "GPU", "output tok/s", "per GPU", "speedup", "efficiency per GPU",
               "KV tokens (all)", "TPOT p50 ms", "preemptions", "decode step ms", "at batch", "us per request"]
DECODE_HEADERS = ["result", "layout", "GPUs", "GPU", "batch", "step ms", "floor ms", "% of ceiling", "gap ms",
                  "all-reduces / step", "gap per all-reduce us"]


def _tables(r: ScalingReport) -> list[tuple[list[str], list[list[str]]]]:
    runs = [[x.result, x.layout, str(x.gpus), x.gpu_name or "", _num(x.output_tokens_per_s, 0),
             _num(x.output_tokens_per_s_per_gpu, 0), f"{x.speedup:.2f}x", f"{x.efficiency_pct:.1f}%",
             _num(x.kv_capacity_tokens_total), _num(x.tpot_p50_ms), _num(x.preemptions),
             _num(x.full_batch_step_ms), _num(x.full_batch_requests, 0), _num(x.us_per_request)] for x in r.runs]
    decode = [[x.result, x.layout, str(x.gpus), x.gpu_name or "", str(x.batch_size), _num(x.step_ms, 2),
               _num(x.floor_ms, 2), _num(x.pct_of_ceiling), _num(x.gap_ms, 2), _num(x.allreduces_per_step),
               _num(x.gap_per_allreduce_us)] for x in r.decode]
    return [(RUN_HEADERS, runs), (DECODE_HEADERS, decode)]


@renders("scaling", ("table", "md", "csv", "json"))
def render(r: ScalingReport, fmt: str = "table") -> str:
    if fmt == "json":
        return json.dumps(r.model_dump(), indent=2)
    tables = [(h, rows) for h, rows in _tables(r) if rows]
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf)
        for headers, rows in tables:
            writer.writerows([headers, *rows, []])
        return buf.getvalue().rstrip("\n")
    style = "github" if fmt == "md" else "simple"
    parts = [tabulate(rows, headers=headers, tablefmt=style, disable_numparse=True) for headers, rows in tables]
    if r.baseline:
        parts.insert(1, f"speedup and efficiency against {r.baseline} (per-GPU output tokens/s); decode step: the "
                        "median of the pure-decode steps at the run's full batch (a DP run: one replica's engine), "
                        "and that step's time per decoding request")
    if r.decode:
        parts.append("floor: the TP group's ceiling for the batch as a step time (weights and KV read at the "
                     "GPUs' bandwidth); gap = step - floor, charged to the all-reduces as an upper bound")
    parts += [f"warning: {w}" for w in r.warnings]
    return "\n\n".join(parts)
