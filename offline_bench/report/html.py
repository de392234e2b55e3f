"""`report`: every result given, as ONE self-contained HTML page (inline CSS, charts as inline SVG, no script, no
network at view time), grouped by kind, each section saying what it shows and how to read it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from offline_bench.analysis.sweep import group_series, table_rows
from offline_bench.core.version import __version__
from offline_bench.report import charts
from offline_bench.report.htmlparts import CSS, esc, fmt, kv_table, missing, num, section, table
from offline_bench.report.htmlruns import budget_parts, comparison, run_section
from offline_bench.report.inputs import load_items
from offline_bench.results.load import Item
from offline_bench.results.run import write_atomic
from offline_bench.results.sweep import SweepSummary

GROUPS = [  # (kind or mode, section title, how to read it)
    ("offline", "Offline runs", "In-process runs of vllm.LLM: one part per result."),
    ("serving", "Serving runs", "A server measured from the client (serve-probe): times include HTTP and "
                                "streaming; the server's state comes from its /metrics."),
    ("compare", "Offline vs serving", "Results of the same workload side by side, ratios against the offline run; "
                                      "warnings name every condition that differs or cannot be checked."),
    ("gap", "Explain-gap", "Offline runs that each switch one condition toward the server; each step's change in "
                           "output tokens/s is its share of the gap, the last is the HTTP/serving path."),
    ("sweep", "Sweeps", "One engine per grid point: KV capacity and throughput against the KV size per "
                        "max_model_len, the knee, the target-concurrency answer, and failed points."),
    ("phases", "Phases", "Prefill-only and decode-only tokens/s against batch size, with the GPU's roofline "
                         "ceilings dashed."),
    ("predicted", "Predictions", "Results predicted by `predict` (no engine ran): read them as estimates."),
    ("imported", "Imported results", "Figures converted from other tools; what they do not give stays unknown."),
    ("startup", "Start-up", "What a vLLM start-up log says: where the device memory and the start-up time went."),
    ("plan", "Plans", "`plan`'s KV capacity arithmetic before any engine start."),
    ("skipped", "Not shown", "Inputs that are not offline-bench results."),
]


def _sweep(s: SweepSummary, anchor: str) -> str:
    headers, body = table_rows(s.spec, s.rows)
    cells = [[esc(fmt(v, ",.2f")) if v is not None else "" for v in row] for row in body]
    out = table(headers, cells)
    field = "kv_cache_memory_bytes" if "kv_cache_memory_bytes" in s.spec.grid else "gpu_memory_utilization"
    ok = [r for r in s.rows if r.status == "ok"]
    for y, ylabel in (("kv_capacity_tokens", "KV cache capacity (tokens)"), ("output_tokens_per_s", "output tokens/s")):
        series = {label or "all points": [(x, getattr(r, y)) for x, r in pts if x is not None and getattr(r, y)]
                  for label, pts in group_series(s.spec, ok, field).items()}
        if any(len(v) > 1 for v in series.values()):
            out += charts.lines(series, field, ylabel, f"{ylabel} against {field}")
    a = s.analysis
    texts = [f"KV cache grows with sequence length: {a.get('kv_grows_with_sequence_length', {}).get('statement')}"]
    texts += [f"Knee: {k['text']}" for k in a.get("throughput_knee", [])]
    texts += [f"Target concurrency: {t['text']}" for t in a.get("target_concurrency", [])]
    out += "<ul>" + "".join(f"<li>{esc(t)}</li>" for t in texts) + "</ul>"
    failed = [r for r in s.rows if r.status != "ok"]
    out += ("<h4>Failed points</h4>" + table(["point", "error"], [[esc(r.key), esc(r.error)] for r in failed])
            if failed else "<p>No point failed.</p>")
    return out


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
        out += (f"<h4>concurrency {rep.concurrency}, {rep.num_prompts} requests</h4>"
                + table(["#", "step", "output tok/s", "TTFT p50 ms", "change", "share of gap"], rows,
                        numeric=(0, 2, 3, 4, 5))
                + charts.waterfall([(s.step, s.output_tokens_per_s) for s in rep.steps], "output tokens/s",
                                   f"explain-gap ladder at concurrency {rep.concurrency}")
                + f"<p>{esc(rep.summary)}</p>")
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
    return table(list(cols), [[esc(fmt(getattr(r, c), ",.2f")) for c in cols] for r in rows])


KIND_BODY = {"sweep": _sweep, "phases": _phases, "gap": _gap, "startup": _startup, "plan": _plan}


def _group_of(item: Item) -> str:
    return item.data.mode if item.kind == "run" else item.kind


def _item_body(item: Item) -> str:
    if item.kind == "run":
        return run_section(item.data, item.anchor, item.label)
    if item.kind == "skipped":
        return f"<li><code>{esc(item.path)}</code>: {esc(item.data)}</li>"
    how = {"sweep": "Every point of the grid; empty cells are unknown.", "phases": "One row per measured batch.",
           "gap": "One ladder per concurrency level.", "startup": "Facts read from the log.",
           "plan": "One row per combination."}[item.kind]
    return section(item.anchor, item.label, how, KIND_BODY[item.kind](item.data, item.anchor), level=3, kind="item")


def build_page(items: list[Item], title: str) -> str:
    """The whole report as one HTML document."""
    runs = [(i.label, i.data) for i in items if i.kind == "run"]
    body, nav = [], []
    for key, heading, how in GROUPS:
        if key == "compare":
            content = comparison(runs)
            members: list[Item] = []
        else:
            members = [i for i in items if _group_of(i) == key]
            content = "".join(_item_body(i) for i in members)
            if key == "skipped" and content:
                content = f"<ul>{content}</ul>"
        if not content:
            continue
        body.append(section(f"group-{key}", heading, how, content))
        sub = "".join(f'<li><a href="#{esc(i.anchor)}">{esc(i.label)}</a></li>' for i in members
                      if i.kind != "skipped")
        nav.append(f'<li><a href="#group-{key}">{esc(heading)}</a>{f"<ul>{sub}</ul>" if sub else ""}</li>')
    inputs = "".join(f"<li><code>{esc(i.path)}</code> ({esc(i.kind)})</li>" for i in items)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>{esc(title)}</title><style>{CSS}</style></head>
<body><header><h1>{esc(title)}</h1><p class="how">offline-bench {esc(__version__)} report, made {esc(stamp)} from
{len(items)} input(s). Self-contained: no script, no fonts or images to fetch; numbers marked in the page carry the
JSON field they come from (data-key).</p><nav><ul>{''.join(nav)}</ul></nav>
<details><summary>inputs</summary><ul>{inputs}</ul></details></header>
<main>{''.join(body)}</main>
<footer>Made by <code>offline-bench report</code>. Unknown means the result does not record the figure (serving and
imported results see the server from outside).</footer></body></html>
"""


def write_report(paths: list[str], output: str | Path, title: str | None = None) -> Path:
    """Read every input, build the page, write it atomically; returns the path."""
    return write_items(load_items(paths), output, title)


def write_items(items: list[Item], output: str | Path, title: str | None = None) -> Path:
    """`--html FILE` of run, sweep, phases, explain-gap and compare: the report of what the command just made."""
    write_atomic(output, build_page(items, title or "offline-bench report"))
    return Path(output)
