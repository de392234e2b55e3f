"""A sweep's definition, its rows (one per finished point), the analysis over them, and its tables.

Running the grid is `sweep`; plots are `plots`; this module reads and explains what a sweep directory holds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from offline_bench.core.errors import BenchError
from offline_bench.predict.replay import OVERRIDABLE, Calibrated, predict
from offline_bench.results.load import load_as
from offline_bench.results.run import RunResult, write_atomic
from offline_bench.results.sweep import WORKLOAD_AXES, FailedPoint, PointRow, SweepSpec, SweepSummary, point_key

BREAKDOWN = ("handover_s", "import_vllm_s", "engine_init_s", "weights_load_s", "torch_compile_s", "cuda_graph_s",
             "warmup_s", "timed_s", "close_s", "other_s", "point_s")


def breakdown(r: RunResult) -> dict[str, float | None]:
    """Where a point's time went: handing it to a process (a fresh one: spawn and imports), importing vLLM, the
    engine's start (of which, from its log: weight loading, torch.compile, CUDA graphs), warm-up, the timed passes,
    closing the engine, and the rest (workload, result, writing); `point_s` is the sweep's own clock."""
    st = r.startup
    bd = st.get("breakdown") or {}
    if not bd:
        return {}
    timed = sum(x.duration_s or 0.0 for x in r.throughput.repeats)
    imp = st.get("import_vllm_s") or 0.0
    out = {"handover_s": bd.get("handover_s"), "import_vllm_s": st.get("import_vllm_s"),
           "engine_init_s": None if st.get("init_s") is None else round(st["init_s"] - imp, 3),
           "weights_load_s": st.get("weights_load_s"), "torch_compile_s": st.get("torch_compile_s"),
           "cuda_graph_s": st.get("cuda_graph_s"), "warmup_s": r.workload.warmup_s, "timed_s": round(timed, 3),
           "close_s": bd.get("close_s"), "point_s": bd.get("point_s")}
    if out["point_s"] is not None:
        known = [out[k] for k in ("handover_s", "import_vllm_s", "engine_init_s", "warmup_s", "timed_s", "close_s")]
        out["other_s"] = round(out["point_s"] - sum(v or 0.0 for v in known), 3)
    return out


_CALIBRATED: dict[str, Calibrated] = {}


def calibrated(spec: SweepSpec) -> Calibrated:
    """The sweep's calibration run, read and fitted once per process."""
    path = spec.calibrate
    if path is None:
        raise BenchError("--predict-only needs --calibrate RUN.json (a `run` result, which records its steps)")
    if path not in _CALIBRATED:
        _CALIBRATED[path] = Calibrated(path, purpose="sweep --calibrate")
    return _CALIBRATED[path]


def prediction_overrides(spec: SweepSpec, settings: dict[str, Any]) -> dict[str, Any]:
    """A point's engine settings as `predict` overrides (the sweep's single values too)."""
    e = spec.base.engine
    fixed = {k: getattr(e, k) for k in OVERRIDABLE if getattr(e, k, None) is not None}
    if e.kv_cache_dtype == "auto":
        fixed.pop("kv_cache_dtype", None)  # the calibration run's own dtype
    return {**fixed, **settings}


def _pct(a: float | None, b: float | None) -> float | None:
    return round(100.0 * (a / b - 1.0), 3) if a is not None and b else None


def _with_prediction(spec: SweepSpec, settings: dict[str, Any], r: RunResult, row: PointRow) -> PointRow:
    """A measured point with what was predicted for it; predictions that cannot be made stay empty."""
    if r.mode == "predicted":
        return row
    row.predicted_kv_tokens = r.kv_cache.predicted_tokens
    row.kv_error_pct = r.kv_cache.predicted_error_pct
    if spec.calibrate is None:
        return row
    try:
        p = predict(calibrated(spec), prediction_overrides(spec, settings), num_prompts=r.workload.num_prompts)
    except BenchError:
        return row
    row.predicted_kv_tokens, row.kv_error_pct = p.kv_cache.capacity_tokens, _pct(p.kv_cache.capacity_tokens,
                                                                                 r.kv_cache.capacity_tokens)
    row.predicted_output_tokens_per_s = round(p.throughput.output_tokens_per_s or 0.0, 2)
    row.output_tokens_per_s_error_pct = _pct(p.throughput.output_tokens_per_s, r.throughput.output_tokens_per_s)
    row.predicted_ttft_ms_p50 = p.latency.ttft_ms.p50
    row.ttft_ms_p50_error_pct = _pct(p.latency.ttft_ms.p50, r.latency.ttft_ms.p50)
    return row


def resolved(row: PointRow, spec: SweepSpec, field: str) -> Any:
    if field in row.settings:
        return row.settings[field]
    base = getattr(spec.base.workload if field in WORKLOAD_AXES else spec.base.engine, field)
    return base if base is not None else row.resolved.get(field)


def energy_fields(r: RunResult) -> dict[str, Any]:
    """A point's energy and cost per token (results.energy), for its row: empty for results without them."""
    e, c = r.energy, r.cost
    out: dict[str, Any] = {}
    if e is not None and e.status == "measured":
        out |= {"joules_per_output_token": e.joules_per_output_token,
                "output_tokens_per_joule": e.output_tokens_per_joule, "avg_watts": e.avg_watts}
    elif e is not None:
        out["energy_unknown"] = e.reason or "not sampled"
    if c is not None:
        out |= {"usd_per_million_output_tokens": c.usd_per_million_output_tokens,
                "energy_usd_per_million_output_tokens": c.energy_usd_per_million_output_tokens}
    return out


KV_RULE_TOLERANCE = 0.02  # block rounding keeps concurrency x length within 2% of the capacity


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(sum(known) / len(known), 3) if known else None


def analyze(spec: SweepSpec, rows: list[PointRow]) -> dict[str, Any]:
    """Three readings of the grid: the KV rule, the throughput knee over gmu, and the gmu a target needs."""
    ok = [r for r in rows if r.status == "ok"]
    out: dict[str, Any] = {"points_total": len(spec.points()), "points_done": len(rows),
                           "points_ok": len(ok), "points_failed": len(rows) - len(ok),
                           "kv_grows_with_sequence_length": _kv_rule(spec, ok),
                           "throughput_knee": _knees(spec, ok)}
    if spec.target_concurrency:
        out["target_concurrency"] = _targets(spec, ok, spec.target_concurrency)
    timed = [r.startup_breakdown for r in ok if r.startup_breakdown.get("point_s") is not None]
    if timed:
        out["startup_breakdown"] = {k: _mean([b.get(k) for b in timed]) for k in BREAKDOWN} | {"points": len(timed)}
    if any(r.output_tokens_per_joule for r in ok):
        out["energy"] = _energy(ok)
    errors = {c: [abs(getattr(r, c)) for r in ok if getattr(r, c) is not None]
              for c in ("kv_error_pct", "output_tokens_per_s_error_pct", "ttft_ms_p50_error_pct")}
    if any(errors.values()):
        out["prediction"] = {"calibration": spec.calibrate or "plan's model (KV only)",
                             **{f"largest_{c}": round(max(v), 3) for c, v in errors.items() if v}}
    return out


def _energy(ok: list[PointRow]) -> dict[str, Any]:
    """The point that made the most output tokens per joule, against the one with the most output tokens/s."""
    known = [r for r in ok if r.output_tokens_per_joule]
    best = max(known, key=lambda r: r.output_tokens_per_joule or 0.0)
    fastest = max(known, key=lambda r: r.output_tokens_per_s or 0.0)
    text = (f"most output tokens per joule at {best.key} ({best.output_tokens_per_joule:.3g} tok/J, "
            f"{best.joules_per_output_token or 0.0:.3g} J/token at {best.avg_watts or 0.0:,.0f} W)")
    if fastest is not best and fastest.output_tokens_per_joule:
        text += (f"; the fastest point, {fastest.key}, makes {fastest.output_tokens_per_joule:.3g} tok/J "
                 f"({fastest.output_tokens_per_joule / (best.output_tokens_per_joule or 1.0) - 1:+.1%})")
    return {"points": len(known), "most_efficient_point": best.key,
            "output_tokens_per_joule": best.output_tokens_per_joule, "fastest_point": fastest.key, "text": text}


def _kv_rule(spec: SweepSpec, ok: list[PointRow]) -> dict[str, Any]:
    """KV cache grows with sequence length: concurrency x max_model_len ~ capacity, per gmu."""
    checks = []
    for r in ok:
        mml = resolved(r, spec, "max_model_len")
        if mml and r.max_concurrency and r.kv_capacity_tokens:
            product = r.max_concurrency * mml
            err = abs(product - r.kv_capacity_tokens) / r.kv_capacity_tokens
            checks.append({"point": r.key, "gpu_memory_utilization": resolved(r, spec, "gpu_memory_utilization"),
                           "max_model_len": mml, "max_concurrency": r.max_concurrency,
                           "concurrency_x_len": round(product), "capacity_tokens": r.kv_capacity_tokens,
                           "rel_diff": round(err, 5), "holds": err <= KV_RULE_TOLERANCE})
    return {"statement": "max_concurrency x max_model_len ~ capacity_tokens at each gmu: the KV pool is fixed by "
                         "memory, so doubling the context halves how many full-length requests fit",
            "holds": all(c["holds"] for c in checks) if checks else None, "checks": checks}


class _Axis:
    """The KV-size axis of a sweep: gmu (a share of memory, at most 1) or kv_cache_memory_bytes."""

    def __init__(self, spec: SweepSpec) -> None:
        by_bytes = "kv_cache_memory_bytes" in spec.grid and "gpu_memory_utilization" not in spec.grid
        self.field = "kv_cache_memory_bytes" if by_bytes else "gpu_memory_utilization"
        self.short = "kv_cache_memory_bytes" if by_bytes else "gmu"
        self.upper = None if by_bytes else 1.0

    def show(self, x: float) -> str:
        return f"{x / 2**20:,.0f} MiB" if self.upper is None else f"{x:g}"

    def name(self, x: float) -> str:
        return f"{'KV' if self.upper is None else 'gmu'} {self.show(x)}"


def _knees(spec: SweepSpec, ok: list[PointRow]) -> list[dict[str, Any]]:
    """Smallest KV size (gmu or bytes) whose throughput is within tolerance of the best, per series."""
    ax = _Axis(spec)
    knees = []
    for label, series in group_series(spec, ok, ax.field).items():
        pts = sorted((g, r.output_tokens_per_s) for g, r in series if g is not None and r.output_tokens_per_s)
        if len(pts) < 2:
            continue
        best = max(v for _, v in pts)
        knee = next(g for g, v in pts if v >= best * (1 - spec.knee_tolerance))
        name = label or "all points"
        if knee == pts[-1][0]:  # only the largest size reaches the best: no plateau inside the grid
            gain = pts[-1][1] / pts[-2][1] - 1
            text = (f"{name}: no knee inside the grid; output tokens/s still rises up to {ax.name(knee)} "
                    f"({gain:+.1%} over {ax.name(pts[-2][0])}, best {best:,.0f} tok/s)")
            knee_value = None
        else:
            text = (f"{name}: knee at {ax.name(knee)}; beyond it more KV memory raises output tokens/s by less "
                    f"than {spec.knee_tolerance:.0%} (best {best:,.0f} tok/s)")
            knee_value = knee
        knees.append({"series": label, f"knee_{ax.field}": knee_value, "best_output_tokens_per_s": best,
                      "points": [{ax.field: g, "output_tokens_per_s": v} for g, v in pts], "text": text})
    return knees


def _targets(spec: SweepSpec, ok: list[PointRow], n: int) -> list[dict[str, Any]]:
    """Smallest KV size (gmu or bytes) whose capacity holds n requests of max_model_len tokens, per series."""
    ax = _Axis(spec)
    recs = []
    for label, series in group_series(spec, ok, ax.field).items():
        pts = sorted((g, r.max_concurrency) for g, r in series if g is not None and r.max_concurrency is not None)
        if not pts:
            continue
        in_grid = next((g for g, c in pts if c >= n), None)
        interp = _solve_linear(pts, n, ax.upper)
        what = "gmu" if ax.upper else "a KV cache of"
        recs.append({"series": label, "target_concurrency": n, f"smallest_{ax.short}_in_grid": in_grid,
                     f"interpolated_{ax.short}": None if interp is None else round(interp, 4),
                     "text": f"{label or 'all'}: {n} requests of max_model_len need {what} "
                             + (f">= {ax.show(interp)} (linear fit of max_concurrency)"
                                if interp is not None else "beyond 1.0 (does not fit on this GPU)")
                             + (f"; smallest in the grid: {ax.show(in_grid)}" if in_grid is not None else
                                "; no grid point fits")})
    return recs


def group_series(spec: SweepSpec, rows: list[PointRow], x: str) -> dict[str, list[tuple[Any, PointRow]]]:
    """Group rows by every swept setting except x; label like 'max_model_len=2048'."""
    groups: dict[str, list[tuple[Any, PointRow]]] = {}
    for r in rows:
        label = ", ".join(f"{k}={v}" for k, v in r.settings.items() if k != x)
        groups.setdefault(label, []).append((resolved(r, spec, x), r))
    return groups


def _solve_linear(pts: list[tuple[float, float]], target: float, upper: float | None = 1.0) -> float | None:
    """x where the least-squares line through pts reaches target (KV capacity is linear in the KV size)."""
    if len(pts) == 1:
        g, c = pts[0]
        x = g * target / c if c else None  # through the origin: a rough guide only
    else:
        n = len(pts)
        mx = sum(p[0] for p in pts) / n
        my = sum(p[1] for p in pts) / n
        sxx = sum((p[0] - mx) ** 2 for p in pts)
        if sxx == 0:
            return None
        slope = sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx
        if slope <= 0:
            return None
        x = mx + (target - my) / slope
    return x if x is not None and 0 < x and (upper is None or x <= upper) else None


COLUMNS = ["status", "kv_capacity_tokens", "kv_capacity_gib", "max_concurrency", "output_tokens_per_s",
           "total_tokens_per_s", "ttft_ms_p50", "ttft_ms_p99", "tpot_ms_p50", "peak_kv_usage_pct", "preemptions",
           "init_s", "point_s"]
GOODPUT_COLUMNS = ["goodput_requests_per_s", "good_requests_pct"]  # shown when the sweep has --goodput SLOs
# shown when some point has them: energy measured (NVML) and prices given (--gpu-hour-cost / --kwh-cost)
ENERGY_COLUMNS = ["joules_per_output_token", "output_tokens_per_joule", "avg_watts", "usd_per_million_output_tokens",
                  "energy_usd_per_million_output_tokens"]
PREDICTED_COLUMNS = ["predicted_kv_tokens", "kv_error_pct", "predicted_output_tokens_per_s",
                     "output_tokens_per_s_error_pct", "predicted_ttft_ms_p50", "ttft_ms_p50_error_pct"]


# Renderings written next to summary.json, by file name: report.formats adds summary.md and summary.csv when it is
# imported (the writers live above this layer); without them a sweep still writes summary.json.
SUMMARY_FILES: dict[str, Callable[[SweepSummary], str]] = {}


def table_rows(spec: SweepSpec, rows: list[PointRow]) -> tuple[list[str], list[list[Any]]]:
    swept = list(spec.grid)
    extra = GOODPUT_COLUMNS + ENERGY_COLUMNS + PREDICTED_COLUMNS
    cols = COLUMNS + [c for c in extra if any(getattr(r, c) is not None for r in rows)]
    if spec.predict_only:
        cols = [c for c in cols if c not in ("init_s", "point_s")]
    headers = swept + cols + ["error"]
    body = []
    for r in rows:
        vals = [r.settings.get(k) for k in swept] + [getattr(r, c) for c in cols] + [r.error or ""]
        body.append(vals)
    return headers, body


def summarize(out_dir: str | Path) -> SweepSummary:
    """Rows and analysis of DIR, written as summary.json and the SUMMARY_FILES (plots: `report.plots.write_summary`)."""
    out = Path(out_dir)
    spec, rows = load_rows(out)
    summary = SweepSummary(spec=spec, rows=rows, analysis=analyze(spec, rows))
    write_atomic(out / "summary.json", summary.model_dump_json(indent=2))
    for name, render in SUMMARY_FILES.items():
        write_atomic(out / name, render(summary))
    return summary


def load_rows(out_dir: str | Path) -> tuple[SweepSpec, list[PointRow]]:
    out = Path(out_dir)
    spec_file = out / "sweep.json"
    if not spec_file.exists():
        raise BenchError(f"{out} has no sweep.json: point --report at a sweep's --output-dir")
    spec: SweepSpec = load_as(spec_file, "sweep-spec", "sweep")
    rows = []
    for settings in spec.points():
        key = point_key(settings)
        path = out / "points" / f"{key}.json"
        if not path.exists():
            path = path.with_name(path.name + ".gz")  # kept gzipped (docs/results)
            if not path.exists():
                continue
        r: RunResult | FailedPoint = load_as(path, ("run", "failed-point"), "sweep")
        if isinstance(r, FailedPoint):
            rows.append(PointRow(key=key, settings=settings, status="failed", error=r.error, elapsed_s=r.elapsed_s))
            continue
        rows.append(_with_prediction(spec, settings, r, PointRow(
            key=key, settings=settings, status="ok", kv_capacity_tokens=r.kv_cache.capacity_tokens,
            kv_capacity_gib=r.kv_cache.capacity_gib, max_concurrency=r.kv_cache.max_concurrency,
            output_tokens_per_s=r.throughput.output_tokens_per_s, total_tokens_per_s=r.throughput.total_tokens_per_s,
            ttft_ms_p50=r.latency.ttft_ms.p50, ttft_ms_p99=r.latency.ttft_ms.p99, tpot_ms_p50=r.latency.tpot_ms.p50,
            peak_kv_usage_pct=r.kv_cache.peak_usage_pct, preemptions=r.kv_cache.preemptions,
            goodput_requests_per_s=r.throughput.goodput_requests_per_s,
            good_requests_pct=r.throughput.good_requests_pct, init_s=r.startup.get("init_s"),
            point_s=(r.startup.get("breakdown") or {}).get("point_s"), startup_breakdown=breakdown(r),
            resolved=r.engine_args.get("resolved", {}), mode=r.mode, **energy_fields(r))))
    return spec, rows
