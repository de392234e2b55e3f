"""`tune`'s part of the HTML report: the answer, the distinct ranked settings (measured beside predicted where
--verify ran), the Pareto frontier as a chart, the rejected regions and the recommended command lines."""

from __future__ import annotations

from offline_bench.report import charts
from offline_bench.report.htmlparts import esc, num, table
from offline_bench.report.tables.tune import SHORT, varied
from offline_bench.results.tune import TuneResult, distinct

TOP = 15


def tune_body(t: TuneResult, anchor: str) -> str:
    q = f"p{t.percentile:g}"
    knobs = varied(t)
    rows = []
    for r, n in distinct(t.ranked, q)[:TOP]:
        m = r.measured
        rows.append([num(r.rank), *(esc(getattr(r.setting, k)) for k in knobs),
                     num(r.output_tokens_per_s, anchor, f"rows.{t.rows.index(r)}.output_tokens_per_s", ",.0f"),
                     num(m.output_tokens_per_s if m else None, spec=",.0f"), num(r.ttft_ms.get(q)),
                     num(m.ttft_ms if m else None), num(r.tpot_ms.get(q), spec=",.2f"),
                     num(m.tpot_ms if m else None, spec=",.2f"), num(r.preemptions), esc(n - 1 or ""),
                     "yes" if r.pareto else ""])
    headers = ["rank", *(SHORT[k] for k in knobs), "output tok/s", "measured", f"TTFT {q} ms", "measured",
               f"TPOT {q} ms", "measured", "preemptions", "+ alike", "frontier"]
    front = sorted((r.ttft_ms[q], r.output_tokens_per_s or 0.0) for r in t.rows if r.pareto)
    others = sorted((r.ttft_ms[q], r.output_tokens_per_s or 0.0) for r in t.ranked[:TOP] if not r.pareto
                    and q in r.ttft_ms)
    series = {"Pareto frontier": front, **({f"top {TOP} ranked, off the frontier": others} if others else {})}
    chart = charts.lines(series, f"TTFT {q} (ms)", "output tokens/s", "output tokens/s against TTFT: the frontier")
    regions = table(["settings", "why", "spanning"],
                    [[num(g.count), esc(g.reason), esc("; ".join(f"{SHORT.get(k, k)} {','.join(map(str, v))}"
                                                                 for k, v in g.spans.items()))]
                     for g in t.regions], numeric=(0,)) if t.regions else ""
    rec = "".join(f"<p><b>{esc(k)}</b>: <code>{esc(v)}</code></p>" for k, v in t.recommended.items())
    verdict = f"<p><b>Verify</b>: {esc(t.verify.get('verdict'))}</p>" if t.verify else ""
    return (f"<p><b>{esc(t.answer)}</b></p><p>{esc(_context(t))}</p>" + verdict +
            table(headers, rows, numeric=tuple(range(len(knobs) + 1, len(headers) - 1))) + chart + regions + rec)


def _context(t: TuneResult) -> str:
    slo = ", ".join(f"{k} {v:g} ms" for k, v in t.slo_ms.items()) or "none"
    w = t.workload
    rate = f" at {w['request_rate']:g} req/s" if w.get("request_rate") else \
        f", {w['concurrency']} in flight" if w.get("concurrency") else ", a closed batch"
    return (f"Predicted for {t.gpu} from {t.basis}: {w['num_prompts']} requests{rate}; SLOs at "
            f"p{t.percentile:g}: {slo}; objective {t.objective}; {t.settings_searched} settings in "
            f"{t.elapsed_s:.1f} s.")
