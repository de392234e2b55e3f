"""`scaling`: what more GPUs bought. Runs of one workload on different layouts (TP x PP x DP) side by side, with
output tokens/s per GPU and the scaling efficiency against a baseline run; and from `phases` results, the batch-1
decode step against the memory-bound floor of its TP group -- the gap is everything that is not reading weights
and KV, and with TP > 1 it is charged to the step's all-reduces (two per layer) as an upper bound."""

from __future__ import annotations

from offline_bench.analysis.compare import LAYOUT_CONDITIONS, Labeled, mismatches
from offline_bench.core.errors import BenchError
from offline_bench.model.presets import resolve_model
from offline_bench.predict.stepmodel import full_batch_decode_step
from offline_bench.results.load import Item
from offline_bench.results.phases import PhasesResult
from offline_bench.results.run import RunResult
from offline_bench.results.scaling import DecodeScaling, RunScaling, ScalingReport


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


def _energy(r: RunResult, gpus: int, base_tpj: float | None) -> dict[str, float | None]:
    """A run's output tokens per joule (all its GPUs), each GPU's mean draw, and the tokens per joule against the
    baseline's; empty where energy was not measured."""
    e = r.energy
    if e is None or e.status != "measured" or not e.output_tokens_per_joule:
        return {}
    return {"output_tokens_per_joule": e.output_tokens_per_joule,
            "watts_per_gpu": e.avg_watts / gpus if e.avg_watts is not None else None,
            "energy_efficiency_pct": 100 * e.output_tokens_per_joule / base_tpj if base_tpj else None}


def run_rows(runs: list[Item], baseline: Item) -> tuple[list[RunScaling], list[str]]:
    """One row per run (ratios against `baseline`), and a warning for every condition that differs from it (but
    the layout and its KV cache, which the rows show)."""
    base: RunResult = baseline.data
    base_gpus, _ = _run_shape(base)
    base_per_gpu = base.throughput.output_tokens_per_s / base_gpus
    base_tpj = _energy(base, base_gpus, None).get("output_tokens_per_joule")
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
            us_per_request=1000 * step[0] / step[1] if step else None, **_energy(r, gpus, base_tpj)))
        if item is not baseline:
            warnings += [f"{item.label} vs {baseline.label}: {m}"  # the layouts, and so their KV caches, differ
                         for m in mismatches(Labeled(baseline.label, base), Labeled(item.label, r),
                                             skip=LAYOUT_CONDITIONS)]
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
            gap_per_allreduce_us=1000 * gap / allreduces if gap is not None and allreduces and pp == 1 else None,
            joules_per_token=row.joules_per_token))
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
