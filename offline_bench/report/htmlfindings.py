"""The top of the report: the findings (analysis.findings: sentences computed from the results, each linked to
its evidence), one overview row per run, and the evidence sections only findings need (scaling, predictions)."""

from __future__ import annotations

from offline_bench.analysis.findings import (
    PREDICTIONS_ANCHOR,
    SCALING_ANCHOR,
    Finding,
    gpu_of,
    gpus,
    prediction_table,
    scaling_groups,
    short_gpu,
    short_model,
)
from offline_bench.analysis.scaling import run_rows
from offline_bench.report.htmlparts import esc, link, nowrap, num, section, table
from offline_bench.results.load import Item

NO_FINDING = ("No finding: these results hold no offline/serving pair, explain-gap ladder, sweep, prediction with "
              "its measurement or multi-GPU run. The overview below has every run's figures.")


def findings_section(found: list[Finding]) -> str:
    """The page's first section: one line per finding, its links going down to the evidence."""
    lines = [f'<li><span class="topic">{esc(f.topic)}.</span> {esc(f.text)} '
             + " ".join(f"[{link(anchor, text)}]" for text, anchor in f.links) + "</li>" for f in found]
    body = f"<ul>{''.join(lines)}</ul>" if lines else f"<p>{esc(NO_FINDING)}</p>"
    return section("findings", "Findings", "What these results say, computed from them; each line links to the "
                                           "section that holds its evidence.", body)


OVERVIEW = ["run", "mode", "GPU", "model", "requests", "output tok/s", "TTFT p50 ms", "TTFT p99 ms", "TPOT p50 ms",
            "KV tokens", "pre\u00adempt\u00adions"]


def _gpu(item: Item) -> str:
    n = gpus(item.data)
    return f"{n}x {short_gpu(gpu_of(item.data))}" if n > 1 else short_gpu(gpu_of(item.data))


def overview_section(runs: list[Item]) -> str:
    """One row per run, its label linking to the run's (folded) details."""
    rows = []
    for item in runs:
        r, a = item.data, item.anchor
        kv = (r.parallel or {}).get("kv_capacity_tokens_total") or r.kv_cache.capacity_tokens
        w = r.workload
        rows.append([link(a, item.label), nowrap(r.mode), nowrap(_gpu(item)), nowrap(short_model(r.model)),
                     esc(f"{w.num_prompts:,}" + (f" x{w.repeats}" if w.repeats > 1 else "")) if w.num_prompts else "",
                     num(r.throughput.output_tokens_per_s, a, "throughput.output_tokens_per_s"),
                     num(r.latency.ttft_ms.p50, a, "latency.ttft_ms.p50"),
                     num(r.latency.ttft_ms.p99, a, "latency.ttft_ms.p99"),
                     num(r.latency.tpot_ms.p50, a, "latency.tpot_ms.p50", ",.2f"),
                     num(kv, spec=",.0f"), num(r.kv_cache.preemptions, a, "kv_cache.preemptions")])
    return section("overview", "Runs at a glance", "One row per run (requests: per pass, x repeats); a run's name "
                                                   "opens its details further down.",
                   table(OVERVIEW, rows, numeric=(4, 5, 6, 7, 8, 9, 10)))


SCALING = ["run", "layout", "GPUs", "output tok/s", "per GPU", "speedup", "efficiency per GPU", "KV tokens (all)",
           "TPOT p50 ms", "preemptions"]


def scaling_section(runs: list[Item]) -> str:
    """Multi-GPU runs against the single-GPU run of the same model, GPU and workload."""
    out = []
    for base, multi in scaling_groups(runs):
        rows, warns = run_rows([base, *multi], base)
        cells = [[esc(x.result), esc(x.layout), str(x.gpus), num(x.output_tokens_per_s, spec=",.0f"),
                  num(x.output_tokens_per_s_per_gpu, spec=",.0f"), esc(f"{x.speedup:.2f}x"),
                  esc(f"{x.efficiency_pct:.1f}%"), num(x.kv_capacity_tokens_total, spec=",.0f"), num(x.tpot_p50_ms),
                  num(x.preemptions)] for x in rows]
        out.append(f"<h4>{esc(short_gpu(rows[0].gpu_name))}: against {esc(base.label)}</h4>"
                   + table(SCALING, cells, numeric=(2, 3, 4, 5, 6, 7, 8, 9))
                   + "".join(f'<p class="warn">warning: {esc(w)}</p>' for w in warns[:8])
                   + (f'<p class="warn">... and {len(warns) - 8} more warnings.</p>' if len(warns) > 8 else ""))
    if not out:
        return ""
    return section(SCALING_ANCHOR, "Scaling", "Output tokens/s per GPU of each multi-GPU run against the single-GPU "
                                              "run of the same model, GPU and workload (efficiency 100%: each GPU "
                                              "as fast as the one alone).", "".join(out))


def predictions_section(items: list[Item]) -> str:
    rows = prediction_table(items)
    if not rows:
        return ""
    cells = [[esc(r.result), link(r.anchor, r.measured_in) if r.measured_in != r.result else link(r.anchor, "itself"),
              esc(r.quantity), num(r.predicted, spec=",.1f"), num(r.measured, spec=",.1f"),
              esc(f"{r.error_pct:+.2f}%")] for r in rows]
    return section(PREDICTIONS_ANCHOR, "Predicted vs measured",
                   "Every predicted figure the results carry beside its measurement: predicted results matched to a "
                   "measured run of the same settings, sweep points with their predictions, and plan's KV cache "
                   "size in measured runs; error = predicted / measured - 1.",
                   table(["predicted", "measured in", "figure", "predicted", "measured", "error"], cells,
                         numeric=(3, 4, 5)))
