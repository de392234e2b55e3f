"""Predicted vs measured for every committed H100 point: the tables of docs/results/h100-predict.md.

    python scripts/predict_report.py                      # prints the Markdown tables, writes predictions.json
    python scripts/predict_report.py --check               # exit 1 if a goal of issue 14 is missed (a report)

Predictions come from docs/results/h100-predict/calibration.json.gz alone (`plan` for KV tokens, model-only and
calibrated; `predict` for throughput and latency); measurements from measured/*.json and the earlier H100 sweep.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tabulate import tabulate

from offline_bench import Calibrated, PlanSettings, RunResult, plan_point, predict_run, resolve_model, write_atomic

ROOT = Path(__file__).resolve().parents[1]
DIR = ROOT / "docs" / "results" / "h100-predict"
POINTS = [DIR / "calibration.json.gz", *sorted((DIR / "measured").glob("*.json*")),
          *sorted((ROOT / "docs/results/h100-sweep/points").glob("*.json*"))]
MOVABLE = ("gpu_memory_utilization", "max_model_len", "max_num_seqs", "max_num_batched_tokens")


def pct(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else round(100.0 * (a / b - 1.0), 2)


def compare_point(cal: Calibrated, path: Path) -> dict:
    r = RunResult.load(path)
    res = r.engine_args["resolved"]
    kvd = r.engine_args.get("kv_cache_dtype", "auto")
    info = resolve_model(r.model).info
    s = PlanSettings(kv_cache_dtype=kvd, tensor_parallel_size=res["tensor_parallel_size"],
                     **{k: res[k] for k in MOVABLE})
    model_row = plan_point(info, s, "cuda", r.startup.get("gpu_total_gib"))
    row = {"point": f"{path.parent.parent.name}/{path.stem}" if "sweep" in str(path) else path.stem,
           "model": r.model, "settings": {**{k: res[k] for k in MOVABLE}, "kv_cache_dtype": kvd},
           "kv_tokens": r.kv_cache.capacity_tokens, "kv_model": model_row.kv_cache_tokens,
           "kv_model_err_pct": pct(model_row.kv_cache_tokens, r.kv_cache.capacity_tokens)}
    measured = {"output_tokens_per_s": r.throughput.output_tokens_per_s, "ttft_p50": r.latency.ttft_ms.p50,
                "ttft_p99": r.latency.ttft_ms.p99, "tpot_p50": r.latency.tpot_ms.p50,
                "preemptions": r.kv_cache.preemptions}
    row["measured"] = measured
    if r.model != cal.result.model:
        return row  # another model: its KV from plan's model only; throughput needs its own calibration run
    p = predict_run(cal, {**{k: res[k] for k in MOVABLE}, "kv_cache_dtype": kvd})
    row["kv_calibrated"] = p.kv_cache.capacity_tokens
    row["kv_calibrated_err_pct"] = pct(p.kv_cache.capacity_tokens, r.kv_cache.capacity_tokens)
    predicted = {"output_tokens_per_s": p.throughput.output_tokens_per_s, "ttft_p50": p.latency.ttft_ms.p50,
                 "ttft_p99": p.latency.ttft_ms.p99, "tpot_p50": p.latency.tpot_ms.p50,
                 "preemptions": p.kv_cache.preemptions}
    row["predicted"] = predicted
    row["err_pct"] = {k: pct(predicted[k], measured[k]) for k in predicted if k != "preemptions"}
    return row


def tables(rows: list[dict]) -> str:
    kv = [[r["point"], r["kv_tokens"], r["kv_model"], r["kv_model_err_pct"], r.get("kv_calibrated", ""),
           r.get("kv_calibrated_err_pct", "")] for r in rows]
    out = ["### KV cache tokens", "", tabulate(kv, headers=["point", "measured", "plan (model)", "err %",
                                                             "plan (calibrated)", "err %"], tablefmt="github",
                                                intfmt=","), ""]
    perf = []
    for r in rows:
        if "predicted" not in r:
            continue
        m, p, e = r["measured"], r["predicted"], r["err_pct"]
        perf.append([r["point"], f"{m['output_tokens_per_s']:,.0f}", f"{p['output_tokens_per_s']:,.0f}",
                     e["output_tokens_per_s"], f"{m['ttft_p50']:,.0f}", f"{p['ttft_p50']:,.0f}", e["ttft_p50"],
                     f"{m['ttft_p99']:,.0f}", f"{p['ttft_p99']:,.0f}", e["ttft_p99"], f"{m['tpot_p50']:.2f}",
                     f"{p['tpot_p50']:.2f}", e["tpot_p50"], m["preemptions"], p["preemptions"]])
    out += ["### Throughput, latency, preemptions (predict, from calibration.json.gz)", "",
            tabulate(perf, headers=["point", "out tok/s", "pred", "err %", "TTFT p50 ms", "pred", "err %",
                                    "TTFT p99 ms", "pred", "err %", "TPOT p50 ms", "pred", "err %", "preempt",
                                    "pred"], tablefmt="github", disable_numparse=True), ""]
    return "\n".join(out)


def blind_rows() -> list[list]:
    """Predictions committed before their measurement (blind/), against what the GPU then measured."""
    sweep = json.loads((DIR / "blind-measured" / "sweep" / "summary.json").read_text())
    measured = {f"gmu-{r['settings']['gpu_memory_utilization']}_mns-256_mnbt-8192": r for r in sweep["rows"]}
    out = []
    for path in sorted((DIR / "blind").glob("*.json")):
        p = RunResult.load(path)
        pred = [p.kv_cache.capacity_tokens, p.throughput.output_tokens_per_s, p.latency.ttft_ms.p50,
                p.latency.ttft_ms.p99, p.latency.tpot_ms.p50, p.kv_cache.preemptions]
        if path.stem in measured:
            r = measured[path.stem]
            meas = [r["kv_capacity_tokens"], r["output_tokens_per_s"], r["ttft_ms_p50"], r["ttft_ms_p99"],
                    r["tpot_ms_p50"], r["preemptions"]]
        else:
            m = RunResult.load(DIR / "blind-measured" / path.name)
            meas = [m.kv_cache.capacity_tokens, m.throughput.output_tokens_per_s, m.latency.ttft_ms.p50,
                    m.latency.ttft_ms.p99, m.latency.tpot_ms.p50, m.kv_cache.preemptions]
        row = [path.stem]
        for a, b in zip(pred[:-1], meas[:-1]):
            row += [f"{b:,.0f}" if b > 100 else f"{b:.2f}", f"{a:,.0f}" if a > 100 else f"{a:.2f}", pct(a, b)]
        out.append(row + [meas[-1], pred[-1]])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    args = ap.parse_args()
    cal = Calibrated(DIR / "calibration.json.gz")
    rows = [compare_point(cal, p) for p in POINTS]
    write_atomic(DIR / "predictions.json", json.dumps({"calibration": "calibration.json.gz",
                                                       "step_model": cal.steps.model_dump(), "points": rows},
                                                      indent=2))
    print(tables(rows))
    print("### Blind: predicted first (blind/, committed before the run), then measured (blind-measured/)\n")
    print(tabulate(blind_rows(), headers=["point", "KV tokens", "pred", "err %", "out tok/s", "pred", "err %",
                                          "TTFT p50", "pred", "err %", "TTFT p99", "pred", "err %", "TPOT p50",
                                          "pred", "err %", "preempt", "pred"], tablefmt="github",
                   disable_numparse=True))
    if args.check:
        worst_kv = max(abs(r["kv_model_err_pct"]) for r in rows)
        worst_out = max(abs(r["err_pct"]["output_tokens_per_s"]) for r in rows if "err_pct" in r)
        print(f"largest KV error (model) {worst_kv}%, largest output tokens/s error {worst_out}%")
        raise SystemExit(0 if worst_kv <= 1.0 and worst_out <= 5.0 else 1)


if __name__ == "__main__":
    main()
