"""`report`: every result given, as ONE self-contained HTML page (inline CSS, charts as inline SVG, no script, no
network at view time). It leads with what the results say (findings, computed from them, each linked to its
evidence), then one overview row per run, then the comparisons and analyses, then every run's details folded."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from offline_bench.analysis.findings import (
    PREDICTIONS_ANCHOR,
    SCALING_ANCHOR,
    find,
    gap_anchor,
    kv_field,
    sweep_preemptions,
)
from offline_bench.analysis.sweep import group_series, table_rows
from offline_bench.core.version import __version__
from offline_bench.report import charts
from offline_bench.report.htmlfindings import findings_section, overview_section, predictions_section, scaling_section
from offline_bench.report.htmlparts import CSS, esc, fmt, folded, kv_table, missing, num, section, table
from offline_bench.report.htmlruns import budget_parts, comparison, energy_overview, run_section
from offline_bench.report.htmltune import tune_body
from offline_bench.report.inputs import load_items
from offline_bench.results.load import Item
from offline_bench.results.run import write_atomic
from offline_bench.results.sweep import SweepSummary

# (kind or mode, section title, how to read it), in page order after the findings and the overview; "scaling" and
# "predictions" are the evidence of findings, made from several results
GROUPS = [
    ("compare", "Offline vs serving", "Results of the same workload side by side, ratios against the offline run; "
                                      "warnings name every condition that differs or cannot be checked."),
    ("gap", "Explain-gap", "Offline runs that each switch one condition toward the server; each step's change in "
                           "output tokens/s is its share of the gap, the last is the HTTP/serving path."),
    ("scaling", "", ""), ("predictions", "", ""),
    ("tune", "Tune", "Engine settings ranked for a workload and its SLOs, predicted from a calibration run (measured "
                     "beside where --verify ran); the frontier trades output tokens/s against time to first token."),
    ("sweep", "Sweeps", "One engine per grid point: the points' figures, max concurrency against max_model_len and "
                        "throughput against the KV size, the knee, preemptions, the target-concurrency answer, and "
                        "failed points."),
    ("phases", "Phases", "Prefill-only and decode-only tokens/s against batch size, with the GPU's roofline "
                         "ceilings dashed."),
    ("offline", "Offline runs", "In-process runs of vllm.LLM, one folded part per result: open one to see it."),
    ("serving", "Serving runs", "A server measured from the client (serve-probe): times include HTTP and "
                                "streaming; the server's state comes from its /metrics."),
    ("predicted", "Predictions", "Results predicted by `predict` (no engine ran): read them as estimates."),
    ("imported", "Imported results", "Figures converted from other tools; what they do not give stays unknown."),
    ("startup", "Start-up", "What a vLLM start-up log says: where the device memory and the start-up time went."),
    ("plan", "Plans", "`plan`'s KV capacity arithmetic before any engine start."),
    ("skipped", "Not shown", "Inputs that cannot be shown (not offline-bench results, or not readable), each "
                             "with the reason."),
]
SHORT = {"gpu_memory_utilization": "gmu", "max_model_len": "max model len", "max_num_seqs": "max num seqs",
         "max_num_batched_tokens": "max batched tokens", "kv_cache_memory_bytes": "KV bytes",
         "kv_cache_dtype": "KV dtype", "request_rate": "req/s", "kv_capacity_tokens": "KV tokens",
         "kv_capacity_gib": "KV GiB", "max_concurrency": "max conc.", "output_tokens_per_s": "output tok/s",
         "total_tokens_per_s": "total tok/s", "ttft_ms_p50": "TTFT p50 ms", "ttft_ms_p99": "TTFT p99 ms",
         "tpot_ms_p50": "TPOT p50 ms", "peak_kv_usage_pct": "peak KV %", "preemptions": "preemp\u00adtions",
         "init_s": "init s", "point_s": "point s", "goodput_requests_per_s": "goodput req/s",
         "good_requests_pct": "good %", "predicted_kv_tokens": "KV tokens predicted", "kv_error_pct": "KV error %",
         "predicted_output_tokens_per_s": "output tok/s predicted",
         "output_tokens_per_s_error_pct": "output tok/s error %", "predicted_ttft_ms_p50": "TTFT p50 predicted",
         "ttft_ms_p50_error_pct": "TTFT p50 error %"}
PREDICTED = ("predicted_kv_tokens", "kv_error_pct", "predicted_output_tokens_per_s", "output_tokens_per_s_error_pct",
             "predicted_ttft_ms_p50", "ttft_ms_p50_error_pct")


def _short(name: str) -> str:
    for long, short in (("gpu_memory_utilization", "gmu"), ("max_model_len", "max_model_len")):
        name = name.replace(long, short)
    return name


def _sweep_tables(s: SweepSummary) -> str:
    """The ok points' figures in one table, what was predicted for them in a second (one would not fit a page);
    failed points after them."""
    headers, body = table_rows(s.spec, [r for r in s.rows if r.status == "ok"])
    swept = len(s.spec.grid)
    empty = {i for i in range(len(headers)) if all(row[i] is None for row in body)}
    shown = [i for i, h in enumerate(headers) if h not in ("status", "error") and (i < swept or i not in empty)]
    measured = [i for i in shown if headers[i] not in PREDICTED]
    predicted = list(range(swept)) + [i for i in shown if headers[i] in PREDICTED]

    def part(cols: list[int]) -> str:
        cells = [[esc(fmt(row[i], ",.2f")) if row[i] is not None else "" for i in cols] for row in body]
        return table([SHORT.get(headers[i], headers[i].replace("_", " ")) for i in cols], cells,
                     numeric=tuple(range(swept, len(cols))))

    out = part(measured) if body else missing("No point finished.")
    if body and len(predicted) > swept:
        out += "<h4>Predicted for each point</h4>" + part(predicted)
    failed = [r for r in s.rows if r.status != "ok"]
    return out + ("<h4>Failed points</h4>" + table(["point", "error"], [[esc(r.key), esc(r.error)] for r in failed])
                  if failed else "<p>No point failed.</p>")


def _sweep_charts(s: SweepSummary) -> str:
    """Max concurrency against max_model_len, one line per KV size (when max_model_len is swept: the KV pool itself
    does not move with it), and output tokens/s against the KV size."""
    ok = [r for r in s.rows if r.status == "ok"]
    fld = kv_field(s)
    plots = [("kv_capacity_tokens", "KV cache capacity (tokens)", fld, False),
             ("output_tokens_per_s", "output tokens/s", fld, False)]
    if len(s.spec.grid.get("max_model_len", [])) > 1:
        plots[0] = ("max_concurrency", "max concurrency (full-length requests)", "max_model_len", True)
    out = ""
    for y, ylabel, x, logx in plots:
        series = {_short(label) or "all points": [(v, getattr(r, y)) for v, r in pts if v is not None and getattr(r, y)]
                  for label, pts in group_series(s.spec, ok, x).items()}
        if any(len(v) > 1 for v in series.values()):
            out += charts.lines(series, _short(x), ylabel, f"{ylabel} against {_short(x)}", logx=logx)
    return out


def _sweep(s: SweepSummary, anchor: str) -> str:
    a = s.analysis
    texts = [f"KV cache grows with sequence length: {a.get('kv_grows_with_sequence_length', {}).get('statement')}"]
    texts += [f"Knee: {k['text']}" for k in a.get("throughput_knee", [])]
    preempt = sweep_preemptions(s)
    texts += [f"Preemptions: {preempt}"] if preempt else []
    texts += [f"Target concurrency: {t['text']}" for t in a.get("target_concurrency", [])]
    return (_sweep_tables(s) + _sweep_charts(s) + "<ul>" + "".join(f"<li>{esc(t)}</li>" for t in texts) + "</ul>")


def _phases(p: Any, anchor: str) -> str:
    rows = [[esc(r.phase), num(r.batch_size), num(r.input_len), num(r.tokens_per_s, anchor, f"rows.{i}.tokens_per_s"),
             num(r.ceiling_tokens_per_s), num(r.pct_of_ceiling, spec=",.1f"), esc(r.note or "")]
            for i, r in enumerate(p.rows)]
    out = table(["phase", "batch", "input len", "tokens/s", "ceiling tokens/s", "% of ceiling", "note"], rows,
                numeric=(1, 2, 3, 4, 5))
    series: dict[str, list[tuple[float, float]]] = {}
    ceilings: dict[str, list[tuple[float, float]]] = {}
    for r in p.rows:
        if r.tokens_per_s:
            label = f"{r.phase}, input {r.input_len}"
            series.setdefault(label, []).append((r.batch_size, r.tokens_per_s))
            if r.ceiling_tokens_per_s:
                ceilings.setdefault(label, []).append((r.batch_size, r.ceiling_tokens_per_s))
    gpu = f" on {p.gpu.name}" if p.gpu else ""
    chart = (charts.lines(series, "batch size (requests)", "tokens/s (log scale)", f"tokens/s against batch size{gpu}",
                          logx=True, dashed=ceilings, logy=True) if series else missing("No phase was measured."))
    return chart + out


def _gap(data: tuple[list[Any], dict[str, Any]], anchor: str) -> str:
    reports, _ = data
    out = ""
    for k, rep in enumerate(reports):
        rows = [[str(i + 1), esc(s.step),
                 num(s.output_tokens_per_s, anchor, f"reports.{k}.steps.{i}.output_tokens_per_s"),
                 num(s.ttft_ms_p50), num(s.change_tokens_per_s),
                 "" if s.share_of_gap is None else f"{s.share_of_gap:.1%}"] for i, s in enumerate(rep.steps)]
        out += (f'<div id="{esc(gap_anchor(anchor, rep.concurrency))}"><h4>concurrency {rep.concurrency}, '
                f"{rep.num_prompts} requests</h4>"
                + table(["#", "step", "output tok/s", "TTFT p50 ms", "change", "share of gap"], rows,
                        numeric=(0, 2, 3, 4, 5))
                + charts.waterfall([(s.step, s.output_tokens_per_s) for s in rep.steps], "output tokens/s",
                                   f"explain-gap ladder at concurrency {rep.concurrency}")
                + f"<p>{esc(rep.summary)}</p></div>")
    return out


def _startup(facts: dict[str, Any], anchor: str) -> str:
    pairs = [(k, num(v, anchor, k, ",.2f") if isinstance(v, (int, float)) and not isinstance(v, bool) else esc(v))
             for k, v in facts.items()]
    total = facts.get("gpu_total_gib")
    parts = budget_parts(facts, total)
    return kv_table(pairs) + (charts.budget_bar(parts, total, "Device memory budget at start-up") if parts else "")


def _plan(rows: list[Any], anchor: str) -> str:
    cols = ("gpu_memory_utilization", "max_model_len", "kv_cache_dtype", "tensor_parallel_size", "fits",
            "kv_cache_tokens", "kv_cache_gib", "max_concurrency", "reason")
    return table([SHORT.get(c, c.replace("_", " ")) for c in cols],
                 [[esc(fmt(getattr(r, c), ",.2f")) for c in cols] for r in rows])


KIND_BODY = {"sweep": _sweep, "phases": _phases, "gap": _gap, "startup": _startup, "plan": _plan, "tune": tune_body}
HOW = {"sweep": "Every finished point of the grid; empty cells are unknown.", "phases": "One row per measured batch.",
       "gap": "One ladder per concurrency level.", "startup": "Facts read from the log.",
       "plan": "One row per combination.", "tune": "One row per distinct prediction, best first."}


def _group_of(item: Item) -> str:
    return item.data.mode if item.kind == "run" else item.kind


def _run_summary(item: Item) -> str:
    r = item.data
    rate = r.throughput.output_tokens_per_s
    facts = [r.mode, f"{r.workload.num_prompts} requests" if r.workload.num_prompts else "",
             f"{rate:,.1f} output tok/s" if rate is not None else ""]
    return f'{esc(item.label)} <span class="how">({esc(", ".join(f for f in facts if f))})</span>'


def _item_body(item: Item) -> str:
    if item.kind == "run":
        return folded(item.anchor, _run_summary(item), run_section(item.data, item.anchor, item.label))
    if item.kind == "skipped":
        return f"<li><code>{esc(item.path)}</code>: {esc(item.data)}</li>"
    body = section(item.anchor, item.label, HOW[item.kind], KIND_BODY[item.kind](item.data, item.anchor), level=3,
                   kind="item")
    return folded(item.anchor, esc(item.label), body) if item.kind == "startup" else body


def _group(key: str, heading: str, how: str, items: list[Item]) -> tuple[str, str, str]:
    """(anchor, heading, HTML) of one part of the page; the HTML is empty when the inputs have nothing for it."""
    runs = [i for i in items if i.kind == "run"]
    if key == "scaling":
        return SCALING_ANCHOR, "Scaling", scaling_section(runs)
    if key == "predictions":
        return PREDICTIONS_ANCHOR, "Predicted vs measured", predictions_section(items)
    if key == "compare":
        content = comparison(runs)
    else:
        content = "".join(_item_body(i) for i in items if _group_of(i) == key)
        if key == "skipped" and content:
            content = f"<ul>{content}</ul>"
    return f"group-{key}", heading, section(f"group-{key}", heading, how, content) if content else ""


def build_page(items: list[Item], title: str) -> str:
    """The whole report as one HTML document."""
    runs = [i for i in items if i.kind == "run"]
    parts = [("findings", "Findings", findings_section(find(items))),
             ("overview", "Runs at a glance", overview_section(runs) if runs else ""),
             ("energy", "Energy and cost", energy_overview(runs))]
    parts += [_group(key, heading, how, items) for key, heading, how in GROUPS]
    body = [html for _, _, html in parts if html]
    nav = "".join(f'<a href="#{a}">{esc(t)}</a>' for a, t, html in parts if html)
    inputs = "".join(f"<li><code>{esc(i.path)}</code> ({esc(i.kind)})</li>" for i in items)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>{esc(title)}</title><style>{CSS}</style></head>
<body><header><h1>{esc(title)}</h1><p class="how">offline-bench {esc(__version__)} report, made {esc(stamp)} from
{len(items)} input(s). Self-contained: no script, nothing to fetch; numbers marked in the page carry the JSON field
they come from (data-key).</p><nav class="top">{nav}</nav></header>
<main>{''.join(body)}</main>
<footer><details><summary>inputs</summary><ul>{inputs}</ul></details>Made by <code>offline-bench report</code>.
Unknown means the result does not record the figure (serving and imported results see the server from outside).
</footer></body></html>
"""


def write_report(paths: list[str], output: str | Path, title: str | None = None) -> Path:
    """Read every input, build the page, write it atomically; returns the path."""
    return write_items(load_items(paths), output, title)


def write_items(items: list[Item], output: str | Path, title: str | None = None) -> Path:
    """`--html FILE` of run, sweep, phases, explain-gap and compare: the report of what the command just made."""
    write_atomic(output, build_page(items, title or "offline-bench report"))
    return Path(output)
