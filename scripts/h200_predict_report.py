"""The H200 blind check of issue 30: the predictions committed before the GPU ran (docs/results/h200-predict/blind,
commit 3dbe806) beside what it measured (h200-predict/measured), and what today's model predicts for the same
points (it may have changed since: the blind column is the honest one).

    python scripts/h200_predict_report.py        # prints the Markdown tables of docs/results/h200-predict.md
"""

from __future__ import annotations

import json
from pathlib import Path

from tabulate import tabulate

from offline_bench import Calibrated, RunResult, predict_run

ROOT = Path(__file__).resolve().parents[1]
DIR = ROOT / "docs" / "results" / "h200-predict"
CALIBRATION = ROOT / "docs" / "results" / "h100-predict" / "calibration.json.gz"
MOVABLE = ("gpu_memory_utilization", "max_model_len", "max_num_seqs", "max_num_batched_tokens")


def pct(a: float | None, b: float | None) -> str:
    return "" if a is None or not b else f"{100.0 * (a / b - 1.0):+.2f}"


def _figs(r: RunResult) -> list[float | None]:
    return [r.kv_cache.capacity_tokens, r.throughput.output_tokens_per_s, r.latency.tpot_ms.p50,
            r.latency.ttft_ms.p50, r.kv_cache.preemptions]


def _plan_kv() -> dict[tuple, int]:
    """KV tokens `plan` (its model alone) gave before the run, by (model, gmu, mnbt, kv dtype)."""
    out = {}
    moe, dense = "qwen3-30b-a3b", "llama-3.1-8b"
    for path, model in (("plan-moe.json", moe), ("plan-moe-heldout.json", moe), ("plan-8b-model.json", dense),
                        ("plan-8b-fp8-model.json", dense), ("plan-8b-mnbt-model.json", dense)):
        for row in json.loads((DIR / "blind" / path).read_text())["rows"]:
            key = (model, row["gpu_memory_utilization"], row["max_num_batched_tokens"], row["kv_cache_dtype"])
            out.setdefault(key, row["kv_cache_tokens"])
    return out


def rows() -> tuple[list[list], list[list]]:
    cal = Calibrated(CALIBRATION)
    plan_kv = _plan_kv()
    perf, kv = [], []
    for path in sorted((DIR / "measured").glob("*.json.gz")):
        name = path.name.removesuffix(".json.gz")
        m = RunResult.load(path)
        res, kvd = m.engine_args["resolved"], m.engine_args.get("kv_cache_dtype") or "auto"
        key = (m.model.removeprefix("preset:"), res["gpu_memory_utilization"],
               res["max_num_batched_tokens"] if res["max_num_batched_tokens"] != 16384 else 16384, kvd)
        planned = plan_kv.get(key)
        kv.append([name, m.model.removeprefix("preset:"), f"{m.kv_cache.capacity_tokens:,}",
                   f"{planned:,}" if planned else "", pct(planned, m.kv_cache.capacity_tokens)])
        blind_path = DIR / "blind" / path.name
        if not blind_path.is_file():
            continue  # the MoE preset: KV only (predict needs a calibration run of that model)
        b = RunResult.load(blind_path)
        n = len([q for q in m.requests if q.repeat == 0])
        now = predict_run(cal, {**{k: res[k] for k in MOVABLE}, "kv_cache_dtype": kvd}, num_prompts=n, gpu="h200")
        mf, bf, nf = _figs(m), _figs(b), _figs(now)
        row = [name]
        for i, nd in ((1, 0), (2, 2), (3, 0)):
            row += [f"{mf[i]:,.{nd}f}", f"{bf[i]:,.{nd}f}", pct(bf[i], mf[i]), pct(nf[i], mf[i])]
        perf.append(row + [mf[4], bf[4], nf[4]])
    return perf, kv


def main() -> None:
    perf, kv = rows()
    gfm = {"tablefmt": "github", "disable_numparse": True}
    print(tabulate(kv, headers=["point", "model", "KV tokens measured", "plan (blind)", "err %"], **gfm))
    print()
    print(tabulate(perf, headers=["point", "out tok/s", "blind", "err %", "now err %", "TPOT p50 ms", "blind",
                                  "err %", "now err %", "TTFT p50 ms", "blind", "err %", "now err %", "preempt",
                                  "blind", "now"], **gfm))


if __name__ == "__main__":
    main()
