"""`tune`: the answer first, then the ranked settings (predicted, and measured where --verify ran), the Pareto
frontier, the rejected regions and the recommended command lines. json is the whole TuneResult."""

from __future__ import annotations

import json

from offline_bench.report.table import Column, Document, Item, Table, Text, decimals, fmt, heading
from offline_bench.results.tune import TuneResult, TuneRow, distinct

SHORT = {"gpu_memory_utilization": "gmu", "kv_cache_memory_bytes": "KV bytes", "max_model_len": "max len",
         "max_num_seqs": "max seqs", "max_num_batched_tokens": "batched tok", "kv_cache_dtype": "KV dtype",
         "tensor_parallel_size": "TP", "data_parallel_size": "DP"}


def _n(v: float | int | None, digits: int = 1) -> str:
    return fmt(v, decimals(digits))


def varied(t: TuneResult) -> list[str]:
    """The knobs whose value differs between the rows (the others are the same everywhere)."""
    return [k for k in SHORT if len({getattr(r.setting, k) for r in t.rows}) > 1] or ["max_num_seqs"]


def row_cells(r: TuneRow, knobs: list[str], q: str, priced: bool = False) -> list[str]:
    cells = [str(r.rank or ""), *(str(getattr(r.setting, k)) for k in knobs), _n(r.output_tokens_per_s, 0),
             *([_n(r.usd_per_million_output_tokens, 3)] if priced else []), _n(r.goodput_requests_per_s, 2),
             _n(r.ttft_ms.get(q)), _n(r.tpot_ms.get(q), 2), _n(r.kv_cache_tokens, 0),
             _n(r.max_concurrency, 1), _n(r.preemptions, 0), "yes" if r.pareto else ""]
    return cells


def _measured(r: TuneRow, q: str) -> list[str]:
    m = r.measured
    if m is None:
        return ["", "", "", ""]
    if m.error:
        return ["failed", "", "", m.error[:60]]
    err = None if not (m.output_tokens_per_s and r.output_tokens_per_s) else \
        100.0 * (r.output_tokens_per_s / m.output_tokens_per_s - 1.0)
    return [_n(m.output_tokens_per_s, 0), _n(m.ttft_ms), _n(m.tpot_ms, 2), "" if err is None else f"{err:+.1f}%"]


def document(t: TuneResult, top: int = 10) -> Document:
    q = f"p{t.percentile:g}"
    knobs = varied(t)
    headers = ["rank", *(SHORT[k] for k in knobs), "output tok/s", "goodput req/s", f"TTFT {q} ms",
               f"TPOT {q} ms", "KV tokens", "max conc.", "preempt.", "frontier", "+ alike"]
    priced = t.gpu_hour_usd is not None
    if priced:
        headers.insert(headers.index("goodput req/s"), "$/M out tok")
    verified = any(r.measured for r in t.rows)
    if verified:
        headers += ["measured tok/s", f"TTFT {q} meas.", f"TPOT {q} meas.", "tok/s error"]
    ranked = distinct(t.ranked, q)[:top]
    body = [row_cells(r, knobs, q, priced) + [str(n - 1) if n > 1 else ""] + (_measured(r, q) if verified else [])
            for r, n in ranked]
    ranked = [r for r, _ in ranked]
    fixed = {SHORT[k]: getattr(t.rows[0].setting, k) for k in SHORT if k not in knobs and t.rows}
    slo = ", ".join(f"{k} {v:g} ms" for k, v in t.slo_ms.items()) or "none"
    items: list[Item] = [
        Text([t.answer]),
        Text([f"Predicted for {t.gpu} from {t.basis}; workload {_workload(t)}; SLOs at {q}: {slo}; objective "
              f"{t.objective}; {t.settings_searched} settings ({t.simulations} distinct replays) in "
              f"{t.elapsed_s:.1f} s. Same in every row: " + ", ".join(f"{k} {v}" for k, v in fixed.items()
                                                                         if v is not None) + "."]),
        Table([Column(h) for h in headers], body, title=f"Top {len(body)} of {len(t.ranked)} ranked",
              notes=([ALIKE] + [_expected(ranked[0])]) if ranked else []),
    ]
    frontier = sorted((r for r in t.rows if r.pareto), key=lambda r: -(r.output_tokens_per_s or 0))
    if frontier:
        items.append(Table([Column(h) for h in ["rank", *(SHORT[k] for k in knobs), "output tok/s",
                                                f"TTFT {q} ms", "status"]],
                           [[str(r.rank or ""), *(str(getattr(r.setting, k)) for k in knobs),
                             _n(r.output_tokens_per_s, 0), _n(r.ttft_ms.get(q)), r.status] for r in frontier],
                           title=f"Pareto frontier (output tok/s against TTFT {q})"))
    if t.regions:
        items.append(Table([Column("settings"), Column("why"), Column("spanning", wrap=70)],
                           [[str(g.count), g.reason, "; ".join(f"{SHORT.get(k, k)} {_span(v)}"
                                                               for k, v in g.spans.items())] for g in t.regions],
                           title="Rejected and preempting regions"))
    if t.recommended:
        items += [heading("Recommended", 3), Text([f"{k}: {v}" for k, v in t.recommended.items()])]
    if t.verify:
        items.append(Text([f"Verify: {t.verify.get('verdict', '')}"]))
    items += [Text(t.notes)] if t.notes else []
    return Document(items, final_newline=False, own_json=lambda: json.dumps(t.model_dump(), indent=2))


ALIKE = ("+ alike: lower-ranked settings predicted the same (same throughput, latency and preemptions), not shown; "
         "json has every row.")


def _span(values: list) -> str:
    return ",".join(str(v) for v in values)


__all__ = ["SHORT", "distinct", "document", "varied"]


def _workload(t: TuneResult) -> str:
    w = t.workload
    shape = f"{w['num_prompts']} x {w['input_tokens_mean']:.0f} -> {w['output_tokens_mean']:.0f} tokens"
    if w.get("request_rate"):
        return f"{shape} at {w['request_rate']:g} req/s (burstiness {w.get('burstiness') or 1:g})"
    return shape + (f", {w['concurrency']} in flight" if w.get("concurrency") else ", a closed batch")


def _expected(r: TuneRow) -> str:
    e = r.expected_error
    figs = ", ".join(f"{label} +/-{e[m + '_pct']:.1f}%" for m, label in
                     (("output_tokens_per_s", "output tok/s"), ("tpot_p50", "TPOT p50"), ("ttft_p50", "TTFT p50"))
                     if e.get(m + "_pct") is not None)
    kinds = ", ".join(e.get("kinds") or []) or "the calibration's own settings"
    never = f"; never measured: {', '.join(e['unmeasured'])}" if e.get("unmeasured") else ""
    return (f"Expected error of the top row ({kinds}): {figs or 'never measured for this kind of change'} "
            f"(largest misses on measured points, docs/results/prediction-accuracy.md){never}.")
