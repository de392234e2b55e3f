"""`tune --verify K`: the top K settings measured on the engine, through the sweep's worker (one engine start
each), beside their predictions; the answer stands when the measured best is the predicted best, or within the
measured noise of it (the 95% interval of the predicted best's repeats)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from offline_bench.core.config import EngineConfig, RunConfig, WorkloadConfig
from offline_bench.core.errors import BenchError
from offline_bench.measure.sweep import run_configs
from offline_bench.predict.replay import Calibrated
from offline_bench.predict.tune import TuneWorkload
from offline_bench.results.load import load_as
from offline_bench.results.stats import percentile
from offline_bench.results.tune import Measured, TuneResult, TuneRow, distinct

KNOBS = ("gpu_memory_utilization", "kv_cache_memory_bytes", "max_model_len", "max_num_seqs", "max_num_batched_tokens",
         "kv_cache_dtype", "tensor_parallel_size", "data_parallel_size")


def base_config(model: str, engine_args: dict, workload: WorkloadConfig, slo: dict[str, float] | None,
                concurrency: int | None = None) -> RunConfig:
    """The calibration run's engine arguments (as it passed them; none for the reference) with the tune's
    workload (and its in-flight cap)."""
    args = {k: v for k, v in engine_args.items() if k in EngineConfig.model_fields and k != "engine_args"}
    engine = EngineConfig(**{**args, "model": model})
    return RunConfig(engine=engine, workload=workload, goodput_slo_ms=slo or None, concurrency=concurrency)


def point_config(base: RunConfig, row: TuneRow) -> RunConfig:
    s = row.setting
    engine = base.engine.model_copy(update={k: getattr(s, k) for k in KNOBS})
    if s.kv_cache_memory_bytes is not None:
        engine.gpu_memory_utilization = None
    return base.model_copy(update={"engine": engine})


def point_name(row: TuneRow) -> str:
    s = row.setting
    mem = f"gmu-{s.gpu_memory_utilization:g}" if s.gpu_memory_utilization is not None else \
        f"kv-{s.kv_cache_memory_bytes}"
    name = f"rank-{row.rank}_{mem}_mml-{s.max_model_len}_mns-{s.max_num_seqs}_mnbt-{s.max_num_batched_tokens}"
    if s.kv_cache_dtype != "auto":
        name += f"_kv-{s.kv_cache_dtype}"
    if s.gpus > 1:
        name += f"_tp-{s.tensor_parallel_size}_dp-{s.data_parallel_size}"
    return name


def measured(path: Path, pct: float) -> Measured:
    r = load_as(path, "run", "tune --verify")
    vals = {m: sorted(getattr(q, f"{m}_ms") for q in r.requests if getattr(q, f"{m}_ms") is not None)
            for m in ("ttft", "tpot", "e2e")}
    at = {m: round(percentile(v, pct), 3) if v else None for m, v in vals.items()}
    return Measured(path=str(path), output_tokens_per_s=r.throughput.output_tokens_per_s,
                    goodput_requests_per_s=r.throughput.goodput_requests_per_s, ttft_ms=at["ttft"],
                    tpot_ms=at["tpot"], e2e_ms=at["e2e"], preemptions=r.kv_cache.preemptions,
                    kv_cache_tokens=r.kv_cache.capacity_tokens)


def verify(t: TuneResult, base: RunConfig, k: int, out_dir: str | Path, timeout_s: float | None = None,
           on_point: Callable[[int, int, str, str], None] | None = None) -> TuneResult:
    """Measure the top `k` distinct predictions (settings predicted alike are measured once: the best-ranked of
    them), results in out_dir, one file each, and judge the answer."""
    rows = to_verify(t, k)
    if not rows:
        raise BenchError("nothing to verify: no setting of the grid would start")
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BenchError(f"cannot create {out} ({e.strerror or e}): choose another --verify-dir") from None
    items = [(point_config(base, r), out / f"{point_name(r)}.json") for r in rows]
    errors = run_configs(items, timeout_s, on_point)
    for r, (_, path), err in zip(rows, items, errors):
        r.measured = Measured(path=str(path), error=err) if err else measured(path, t.percentile)
    t.verify = judge(t, rows)
    if len(rows) < k:
        t.notes.append(f"--verify {k}: the ranked settings hold {len(rows)} distinct prediction(s) (the rest predict "
                       f"alike), so {len(rows)} measured.")
    return t


def to_verify(t: TuneResult, k: int) -> list[TuneRow]:
    """The top `k` distinct predictions: settings predicted alike are measured once, the best-ranked of them."""
    return [r for r, _ in distinct(t.ranked, f"p{t.percentile:g}")][:k]


def misses(m: Measured, slo: dict[str, float], pct: float = 99.0) -> list[str]:
    """Each SLO a measured setting misses at the percentile (or lacks a figure for), and by how much."""
    got = {k: getattr(m, f"{k}_ms") for k in slo}
    return [f"{k.upper()} p{pct:g} " + ("unmeasured" if got[k] is None else f"{got[k]:,.1f} ms against {v:g}")
            for k, v in slo.items() if got[k] is None or got[k] > v]


def meets(m: Measured, slo: dict[str, float]) -> bool:
    """Does a measured setting meet every SLO at the tune's percentile?"""
    return not misses(m, slo)


def judge(t: TuneResult, rows: list[TuneRow]) -> dict:
    """Does the answer stand? Among the measured settings that meet the SLOs as measured, the best by the
    objective's measured figure (gpus: the fewest GPUs, then output tok/s) against the predicted best."""
    key = "goodput_requests_per_s" if t.objective == "goodput" else "output_tokens_per_s"
    done = [r for r in rows if r.measured and r.measured.error is None and getattr(r.measured, key) is not None]
    if not done or rows[0] not in done:
        return {"stands": None, "verdict": "the predicted best could not be measured: nothing to judge"}
    top = rows[0]
    if not meets(top.measured, t.slo_ms):
        return {"stands": False, "metric": key, "measured_best_rank": None, "noise_ci95": None,
                "verdict": f"does not stand: the predicted best misses an SLO as measured (TTFT "
                           f"{top.measured.ttft_ms} ms, TPOT {top.measured.tpot_ms} ms at p{t.percentile:g})"}
    done = [r for r in done if meets(r.measured, t.slo_ms)]
    if t.objective == "gpus":
        done = [r for r in done if r.setting.gpus == min(x.setting.gpus for x in done)]
        if top not in done:
            return {"stands": False, "metric": "gpus", "measured_best_rank": done[0].rank, "noise_ci95": None,
                    "verdict": f"does not stand: rank {done[0].rank} meets the SLOs on fewer GPUs as measured"}
    best = max(done, key=lambda r: getattr(r.measured, key))
    value, top_value = getattr(best.measured, key), getattr(top.measured, key)
    ci = _ci_half(top.measured.path, key)
    if best is top:
        verdict, stands = f"stands: the predicted best measured best ({top_value:,.1f})", True
    elif ci is not None and value - top_value <= ci:
        verdict, stands = (f"stands: rank {best.rank} measured {value:,.1f} against the predicted best's "
                           f"{top_value:,.1f}, within its repeats' 95% interval (+/-{ci:,.1f})"), True
    else:
        noise = f"+/-{ci:,.1f}" if ci is not None else "unknown (one pass each: --verify-repeats 2 or more gives it)"
        verdict, stands = (f"does not stand: rank {best.rank} measured {value:,.1f} against the predicted best's "
                           f"{top_value:,.1f} (noise {noise})"), False
    wrong = contradicted(t, rows)
    if wrong:  # the answer may stand while a lower setting's SLO prediction was wrong: say so, it is a model miss
        verdict += "; predicted to meet the SLOs, missed them as measured: " + "; ".join(wrong)
    return {"stands": stands, "verdict": verdict, "metric": key, "measured_best_rank": best.rank,
            "noise_ci95": ci, "contradicted": wrong}


def contradicted(t: TuneResult, rows: list[TuneRow]) -> list[str]:
    """Measured settings predicted to meet every SLO that miss one as measured, and by how much."""
    return [f"rank {r.rank} ({', '.join(missed)})" for r in rows
            if r.status == "ok" and r.measured is not None and r.measured.error is None
            and (missed := misses(r.measured, t.slo_ms, t.percentile))]


def _ci_half(path: str, key: str) -> float | None:
    r = load_as(path, "run", "tune --verify")
    ci = r.throughput.ci95.get(key)
    return None if ci is None or ci.high is None else ci.high - ci.mean


def verify_workload(cal: Calibrated | None, w: TuneWorkload, input_len: int | None,
                     output_len: int | None, repeats: int) -> WorkloadConfig:
    """The tune's workload as `run` measures it: synthetic prompts of the calibration's lengths (or those given)."""
    wl = cal.result.workload if cal else WorkloadConfig(input_len=input_len or 128, output_len=output_len or 128)
    if cal and wl.source != "synthetic" and not (input_len and output_len):
        raise BenchError("--verify measures synthetic prompts: give --input-len and --output-len (the calibration "
                         "ran a prompt file)")
    return WorkloadConfig(num_prompts=len(w.requests), input_len=input_len or wl.input_len or 128,
                          output_len=output_len or wl.output_len or 128, seed=w.seed, ignore_eos=True,
                          range_ratio=0.0 if input_len else wl.range_ratio or 0.0, temperature=wl.temperature,
                          top_p=wl.top_p, request_rate=w.request_rate, burstiness=w.burstiness, repeats=repeats)
