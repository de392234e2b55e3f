"""A sweep's summary: one row per finished point, then the analysis (summary.md and summary.csv are this)."""

from __future__ import annotations

from offline_bench.analysis.sweep import ENERGY_COLUMNS, table_rows
from offline_bench.report.table import AUTO, Column, Document, Item, Table, Text, heading
from offline_bench.results.sweep import SweepSummary

INIT_NOTE = ("init_s is the engine start (LLM() wall time); vLLM's compile cache makes later points with an already "
             "compiled shape start faster, so compare init_s along the sweep order.")
ENERGY_NOTE = ("Energy: the engine's GPUs over a timed pass (NVML), per output token of the pass; avg_watts summed "
               "over the GPUs; usd_per_million_output_tokens: GPU time at --gpu-hour-cost, energy_...: at --kwh-cost.")


def analysis_lines(summary: SweepSummary) -> list[str]:
    """The analysis as bullets: KV growth, knees, target concurrency, time per point, prediction errors."""
    a = summary.analysis
    kv = a.get("kv_grows_with_sequence_length", {})
    lines = [f"- KV cache grows with sequence length: {kv.get('statement')} -- "
             f"{'holds' if kv.get('holds') else 'does not hold' if kv.get('holds') is False else 'unknown'} "
             f"at every point checked ({len(kv.get('checks', []))})."]
    lines += [f"- Knee: {k['text']}." for k in a.get("throughput_knee", [])]
    lines += [f"- Target concurrency: {t['text']}." for t in a.get("target_concurrency", [])]
    if a.get("startup_breakdown"):
        b = {k: "unknown" if v is None else f"{v:.1f}" if k != "points" else str(v)
             for k, v in a["startup_breakdown"].items()}
        lines.append(f"- Time per point (mean of {b['points']}): {b['point_s']} s = hand-over {b['handover_s']} + "
                     f"import vLLM {b['import_vllm_s']} + engine start {b['engine_init_s']} (weights "
                     f"{b['weights_load_s']}, torch.compile {b['torch_compile_s']}, CUDA graphs {b['cuda_graph_s']}) "
                     f"+ warm-up {b['warmup_s']} + timed {b['timed_s']} + engine close {b['close_s']} + other "
                     f"{b['other_s']} (engine-log parts: unknown where the engine does not log them, e.g. the CPU "
                     "build).")
    if a.get("prediction"):
        p = a["prediction"]
        worst = ", ".join(f"{k.removeprefix('largest_').removesuffix('_error_pct')} {v:.2f}%"
                          for k, v in p.items() if k.startswith("largest_"))
        lines.append(f"- Predicted vs measured ({p['calibration']}): largest errors {worst}.")
    if a.get("energy"):
        lines.append(f"- Energy: {a['energy']['text']}.")
    return lines


def notes(summary: SweepSummary, headers: list[str]) -> list[str]:
    """The table's notes: init_s, and what the energy columns are -- or why energy is unknown when no point has it."""
    out = [INIT_NOTE]
    if any(h in ENERGY_COLUMNS for h in headers):
        out.append(ENERGY_NOTE)
    else:
        why = next((r.energy_unknown for r in summary.rows if r.energy_unknown), None)
        if why:
            out.append(f"Energy per token: unknown ({why}).")
    return out


def document(summary: SweepSummary) -> Document:
    headers, body = table_rows(summary.spec, summary.rows)
    items: list[Item] = [heading("Sweep summary", 1)]
    if summary.spec.predict_only:
        items.append(Text([f"PREDICTED from {summary.spec.calibrate}, not measured (offline-bench predict)."]))
    items += [Table([Column(h, style=AUTO) for h in headers], body, notes=notes(summary, headers)), heading("Analysis"),
              Text(analysis_lines(summary))]
    return Document(items, own_json=lambda: summary.model_dump_json(indent=2))
