"""The report's sections for `run`-schema results (offline, serving, imported, predicted): a summary card,
throughput, latency, timeline, KV cache and memory, energy and cost, environment and the command; offline vs
serving, and the runs' energy and cost side by side."""

from __future__ import annotations

import shlex
from typing import Any

from offline_bench.analysis.compare import Labeled, mismatches
from offline_bench.analysis.compare import table as compare_table
from offline_bench.analysis.findings import compare_anchor, comparison_groups, gpu_of, gpus, short_gpu
from offline_bench.report import charts
from offline_bench.report.htmlparts import cards, esc, fmt, kv_table, link, missing, nowrap, num, section, table
from offline_bench.report.table import KNOWN, RATIO
from offline_bench.report.table import fmt as fmt_value
from offline_bench.report.tables.run import unknown_energy
from offline_bench.results.energy import Cost, Energy, check_note
from offline_bench.results.load import Item
from offline_bench.results.run import RunResult

RATES = ("requests_per_s", "input_tokens_per_s", "output_tokens_per_s", "total_tokens_per_s", "prefill_tokens_per_s",
         "decode_tokens_per_s", "goodput_requests_per_s")
LATENCIES = ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms", "queue_ms", "prefill_ms", "decode_ms", "frontend_ms",
             "arrival_lateness_ms")
# vllm.LLM's own defaults of the arguments every run passes: a summary lists only what differs from them
VLLM_DEFAULTS: dict[str, Any] = {"dtype": "auto", "kv_cache_dtype": "auto", "seed": 0, "tensor_parallel_size": 1,
                                 "pipeline_parallel_size": 1, "enforce_eager": False, "load_format": "auto",
                                 "gpu_memory_utilization": 0.9}
TYPICAL = (("p10", 0.10), ("p50", 0.50), ("p90", 0.90), ("p99", 0.99))  # requests shown in the breakdown bars


def summary(r: RunResult, src: str) -> str:
    t, lat, w = r.throughput, r.latency, r.workload
    given = {k: v for k, v in (r.engine_args or {}).items() if k not in ("model", "resolved", "server",
                                                                          "disable_log_stats", "llm_kwargs")
             and VLLM_DEFAULTS.get(k, object()) != v}
    device = gpu_of(r) or r.environment.device
    facts = [("model", esc(r.model)), ("mode", esc(r.mode)), ("device", esc(device)),
             ("vLLM", esc(r.environment.vllm_version or (r.engine_args or {}).get("server", {}).get("vllm_version"))),
             ("workload", esc(f"{w.source}: {w.num_prompts} requests"
                              + (f" of {w.input_len} -> {w.output_len} tokens" if w.input_len else "")
                              + (f", {w.concurrency} in flight" if w.concurrency else "")
                              + (f", {w.request_rate:g} req/s arriving" if w.request_rate else ""))),
             ("engine arguments that differ from vLLM's defaults",
              esc(", ".join(f"{k}={v}" for k, v in given.items()) or "none (or not recorded)"))]
    head = [("output tokens/s", num(t.output_tokens_per_s, src, "throughput.output_tokens_per_s")),
            ("requests/s", num(t.requests_per_s, src, "throughput.requests_per_s", ",.2f")),
            ("TTFT p50 ms", num(lat.ttft_ms.p50, src, "latency.ttft_ms.p50")),
            ("TTFT p99 ms", num(lat.ttft_ms.p99, src, "latency.ttft_ms.p99")),
            ("TPOT p50 ms", num(lat.tpot_ms.p50, src, "latency.tpot_ms.p50", ",.2f"))]
    if t.goodput_requests_per_s is not None:
        head.append(("goodput req/s", num(t.goodput_requests_per_s, src, "throughput.goodput_requests_per_s", ",.2f")))
    return cards(head) + kv_table(facts)


def throughput(r: RunResult, src: str) -> str:
    t = r.throughput
    rows = []
    for name in RATES:
        ci = t.ci95.get(name)
        rows.append([esc(name), num(getattr(t, name), src, f"throughput.{name}"),
                     "" if ci is None or ci.n < 2 else f"{fmt(ci.low)} - {fmt(ci.high)} (n={ci.n})"])
    if t.steady_output_tokens_per_s is not None:
        rows.append([esc("steady_output_tokens_per_s"),
                     num(t.steady_output_tokens_per_s, src, "throughput.steady_output_tokens_per_s"),
                     esc(f"window {fmt(t.steady_window_s[0], '.2f')} - {fmt(t.steady_window_s[1], '.2f')} s")
                     if t.steady_window_s else ""])
    return table(["rate", "mean", "95% CI over repeats"], rows, numeric=(1,))


def latency(r: RunResult, src: str) -> str:
    rows = []
    for name in LATENCIES:
        d = getattr(r.latency, name)
        if d is None or not d.count:
            continue
        rows.append([esc(name), fmt(d.count)] + [num(getattr(d, q), src, f"latency.{name}.{q}", ",.2f")
                                                 for q in ("mean", "p50", "p90", "p99", "max")])
    out = table(["metric", "n", "mean", "p50", "p90", "p99", "max"], rows, numeric=(1, 2, 3, 4, 5, 6))
    return out + distributions(r) + breakdown(r)


MIN_CDF = 20  # fewer requests than this make a staircase, not a distribution: the percentiles say it all


def distributions(r: RunResult) -> str:
    """CDFs of TTFT, E2E and TPOT over the requests, when there are enough of them to draw one."""
    series = {k: [getattr(q, k) for q in r.requests if getattr(q, k) is not None]
              for k in ("ttft_ms", "e2e_ms", "tpot_ms")}
    n = max(len(v) for v in series.values())
    if n == 0:
        return ""
    if n < MIN_CDF:
        return missing(f"{n} request(s) only: no distribution drawn below {MIN_CDF} (the percentiles above are "
                       "the requests themselves).")
    out = ""
    if series["ttft_ms"] or series["e2e_ms"]:
        out += charts.cdf({k: series[k] for k in ("ttft_ms", "e2e_ms") if series[k]}, "ms",
                          "TTFT and E2E, CDF over requests")
    if series["tpot_ms"]:
        out += charts.cdf({"tpot_ms": series["tpot_ms"]}, "ms per output token", "TPOT, CDF over requests")
    return out


def breakdown(r: RunResult) -> str:
    """Stacked bars of a few typical requests (by E2E percentile): where each one's time went."""
    reqs = sorted((q for q in r.requests if q.e2e_ms is not None and q.repeat == 0), key=lambda q: q.e2e_ms)
    if not reqs:
        return missing("No per-request records: the breakdown needs them.")
    picked = [(name, reqs[min(len(reqs) - 1, int(p * len(reqs)))]) for name, p in TYPICAL]
    if all(q.queue_ms is not None for _, q in picked):
        parts = ["queue", "prefill", "decode", "front end"]
        rows = [(f"{n} request #{q.index}", [q.queue_ms or 0.0, q.prefill_ms or 0.0, q.decode_ms or 0.0,
                                             max(0.0, q.frontend_ms or 0.0)]) for n, q in picked]
    elif all(q.ttft_ms is not None for _, q in picked):
        parts = ["to first token", "after it"]
        rows = [(f"{n} request #{q.index}", [q.ttft_ms, q.e2e_ms - q.ttft_ms]) for n, q in picked]
    else:
        return missing("Requests carry no TTFT or engine timestamps: no breakdown.")
    note = ("" if parts[0] == "queue" else " Serving results see only the client's side: queue, prefill and decode "
            "inside the server are unknown.")
    return (f'<p class="how">Typical requests picked at E2E percentiles of the first pass.{esc(note)}</p>'
            + charts.stacked_bars(rows, parts, "ms", "Per-request breakdown of typical requests"))


def timeline(r: RunResult) -> str:
    pts = [p for p in r.timeline if p.repeat == 0]
    if not pts:
        return missing("No timeline in this result (imported results and older serving results do not have one).")
    marks, prev = [], 0.0
    for p in pts:
        if p.preemptions is not None and p.preemptions > prev:
            marks.append(p.t_s)
            prev = p.preemptions
    note = "" if any(p.preemptions is not None for p in pts) else (
        f"Preemption times are not recorded in this result (total preemptions: {fmt(r.kv_cache.preemptions)}).")
    return (missing(note) if note else "") + charts.timeline(
        [p.model_dump() for p in pts], marks, "Running and waiting requests and KV cache use over the first pass")


BUDGET_PARTS = (("weights", "weights_gib"), ("activations (peak)", "peak_activation_gib"),
                ("CUDA graphs", "cuda_graph_gib"), ("non-torch", "non_torch_gib"), ("KV cache", "kv_cache_gib"))


def budget_parts(values: dict[str, Any], total: float | None) -> list[tuple[str, float]]:
    """The device memory budget's parts (named as in a result's `memory` and the start-up facts) and, under the
    device's total, what is left free."""
    parts = [(name, values[key]) for name, key in BUDGET_PARTS if values.get(key)]
    if parts and total and total > sum(v for _, v in parts):
        parts.append(("left free", round(total - sum(v for _, v in parts), 2)))
    return parts


def _budget(r: RunResult) -> tuple[list[tuple[str, float]], float | None]:
    total = r.startup.get("gpu_total_gib") or r.environment.gpu_memory_gib
    return budget_parts(r.memory.model_dump(), total), total


def kv_cache(r: RunResult, src: str) -> str:
    kv = r.kv_cache
    pairs = [("capacity (tokens)", num(kv.capacity_tokens, src, "kv_cache.capacity_tokens")),
             ("num_blocks x block_size", f"{num(kv.num_blocks, src, 'kv_cache.num_blocks')} x "
                                         f"{num(kv.block_size, src, 'kv_cache.block_size')}"),
             ("bytes per token", num(kv.bytes_per_token, src, "kv_cache.bytes_per_token")),
             ("capacity (GiB)", num(kv.capacity_gib, src, "kv_cache.capacity_gib", ",.2f")),
             ("max_model_len", num(kv.max_model_len, src, "kv_cache.max_model_len")),
             ("max concurrency (requests of max_model_len)", num(kv.max_concurrency, src, "kv_cache.max_concurrency",
                                                                  ",.2f")),
             ("peak use %", num(kv.peak_usage_pct, src, "kv_cache.peak_usage_pct", ",.2f")),
             ("preemptions", num(kv.preemptions, src, "kv_cache.preemptions")),
             ("prefix-cache hit rate", num(kv.prefix_cache_hit_rate, src, "kv_cache.prefix_cache_hit_rate", ".3f"))]
    arith = ""
    if kv.num_blocks and kv.block_size and kv.capacity_tokens:
        arith = (f"{fmt(kv.num_blocks)} blocks x {fmt(kv.block_size)} tokens = {fmt(kv.capacity_tokens)} tokens"
                 + (f"; x {fmt(kv.bytes_per_token)} bytes = {fmt(kv.capacity_gib, ',.2f')} GiB"
                    if kv.bytes_per_token and kv.capacity_gib else "")
                 + (f"; / {fmt(kv.max_model_len)} tokens = {fmt(kv.max_concurrency, ',.2f')} full-length requests "
                    "at once" if kv.max_model_len and kv.max_concurrency else ""))
    parts, total = _budget(r)
    chart = charts.budget_bar(parts, total, "Device memory budget") if parts else missing(
        "No memory budget in this result (the CPU build, serving and imported results do not report one).")
    return kv_table(pairs) + (f"<p>{esc(arith)}</p>" if arith else "") + chart


def _gpu_energy(e: Energy, src: str) -> str:
    """One row per GPU: its joules per pass, watts, and how far its integrated samples are from its counter."""
    rows = [[esc(g.index), esc(g.name), num(g.joules, src, f"energy.gpus.{i}.joules"),
             num(g.avg_watts, src, f"energy.gpus.{i}.avg_watts"), num(g.peak_watts, src, f"energy.gpus.{i}.peak_watts"),
             num(g.idle_watts, src, f"energy.gpus.{i}.idle_watts"),
             num(g.counter_vs_samples_pct, src, f"energy.gpus.{i}.counter_vs_samples_pct", "+,.2f")
             if g.counter_vs_samples_pct is not None else esc("no counter check")] for i, g in enumerate(e.gpus)]
    return table(["GPU", "name", "J per pass", "average W", "peak W", "idle W", "samples vs counter %"], rows,
                 numeric=(0, 2, 3, 4, 5, 6))


def _cost(c: Cost | None, src: str) -> str:
    """$ per million output tokens at the prices given; nothing when no price was given."""
    if c is None:
        return ""
    pairs = []
    if c.gpu_hour_usd is not None:
        pairs.append(("$ per million output tokens (GPU time)",
                      num(c.usd_per_million_output_tokens, src, "cost.usd_per_million_output_tokens", ",.4f")
                      + esc(f" at {c.gpus} GPU(s) x ${c.gpu_hour_usd:g} per GPU-hour")))
    if c.kwh_usd is not None:
        pairs.append(("$ per million output tokens (energy)",
                      num(c.energy_usd_per_million_output_tokens, src, "cost.energy_usd_per_million_output_tokens",
                          ",.4f") + esc(f" at ${c.kwh_usd:g} per kWh")))
    why = f'<p class="warn">cost: unknown ({esc(c.reason)})</p>' if c.reason else ""
    return (kv_table(pairs) if pairs else "") + why


def energy(r: RunResult, src: str) -> str:
    """The GPUs' energy over the timed passes and what a token cost; an energy not measured is one line: why."""
    e = r.energy
    if e is None or e.status != "measured":
        return missing(f"energy: {unknown_energy(e)}") + _cost(r.cost, src)
    head = [("J per output token", num(e.joules_per_output_token, src, "energy.joules_per_output_token", ",.4f")),
            ("output tokens per J", num(e.output_tokens_per_joule, src, "energy.output_tokens_per_joule", ",.3f")),
            ("average W (all GPUs)", num(e.avg_watts, src, "energy.avg_watts"))]
    passes = ", ".join(num(j, src, f"energy.joules_per_pass.{i}") for i, j in enumerate(e.joules_per_pass))
    pairs = [("J per total token (prompt + output)",
              num(e.joules_per_total_token, src, "energy.joules_per_total_token", ",.4f")),
             ("above-idle J per output token",
              num(e.above_idle_joules_per_output_token, src, "energy.above_idle_joules_per_output_token", ",.4f")),
             ("peak W (sum of each GPU's peak)", num(e.peak_watts, src, "energy.peak_watts")),
             ("idle W (1 s before the engine started)", num(e.idle_watts, src, "energy.idle_watts")),
             ("J per timed pass", passes or num(None)),
             ("warm-up J (not in the per-token figures)", num(e.warmup_joules, src, "energy.warmup_joules")),
             ("samples in the timed passes", num(e.samples, src, "energy.samples")), ("method", esc(e.method))]
    warn = check_note(e)
    return (cards(head) + kv_table(pairs) + _gpu_energy(e, src)
            + (f'<p class="warn">warning: {esc(warn)}</p>' if warn else "") + _cost(r.cost, src))


ENERGY_COLUMNS = ["run", "mode", "GPU", "J / output token", "J / total token", "output tokens / J", "average W",
                  "$ / M output tokens (GPU time)", "$ / M output tokens (energy)"]


def energy_overview(runs: list[Item]) -> str:
    """The runs' energy and cost side by side (a multi-run report); empty when no run has either, as each run's
    own part says why."""
    known = [i for i in runs if (i.data.energy and i.data.energy.status == "measured") or i.data.cost]
    if len(runs) < 2 or not known:
        return ""
    rows, why = [], {}
    for item in runs:
        r, a = item.data, item.anchor
        e, c = r.energy if r.energy and r.energy.status == "measured" else None, r.cost
        n = gpus(r)
        if e is None:
            reason = unknown_energy(r.energy)
            why[reason] = why.get(reason, 0) + 1
        rows.append([link(a, item.label), nowrap(r.mode),
                     nowrap(f"{n}x {short_gpu(gpu_of(r))}" if n > 1 else short_gpu(gpu_of(r))),
                     num(e and e.joules_per_output_token, a, "energy.joules_per_output_token", ",.4f"),
                     num(e and e.joules_per_total_token, a, "energy.joules_per_total_token", ",.4f"),
                     num(e and e.output_tokens_per_joule, a, "energy.output_tokens_per_joule", ",.3f"),
                     num(e and e.avg_watts, a, "energy.avg_watts"),
                     num(c and c.usd_per_million_output_tokens, a, "cost.usd_per_million_output_tokens", ",.4f"),
                     num(c and c.energy_usd_per_million_output_tokens, a, "cost.energy_usd_per_million_output_tokens",
                         ",.4f")])
    notes = "".join(f"<li>energy {esc(w)}: {n} run(s)</li>" for w, n in why.items())
    return section("energy", "Energy and cost", "The engine's GPUs over the timed passes, per token of one pass, and "
                                                "USD per million output tokens at the prices given (--gpu-hour-cost, "
                                                "--kwh-cost); a run's name opens its details.",
                   table(ENERGY_COLUMNS, rows, numeric=(3, 4, 5, 6, 7, 8)) + (f"<ul>{notes}</ul>" if notes else ""))


def rerun_command(r: RunResult) -> tuple[list[str], bool]:
    """(command, recorded): the command line stored with the result, or one rebuilt from its recorded settings."""
    if r.environment.command:
        return r.environment.command, True
    w, e = r.workload, r.engine_args or {}
    cmd = ["offline-bench", "serve-probe" if r.mode == "serving" else "run"]
    cmd += ["--served-model-name", r.model] if r.mode == "serving" else ["--model", r.model]
    for key in ("gpu_memory_utilization", "kv_cache_memory_bytes", "max_model_len", "max_num_seqs",
                "max_num_batched_tokens", "tensor_parallel_size", "pipeline_parallel_size"):
        if e.get(key) is not None and not (key.endswith("parallel_size") and e[key] == 1) and r.mode != "serving":
            cmd += [f"--{key.replace('_', '-')}", str(e[key])]
    if e.get("kv_cache_dtype") not in (None, "auto") and r.mode != "serving":
        cmd += ["--kv-cache-dtype", str(e["kv_cache_dtype"])]
    if w.source == "synthetic":
        cmd += ["--num-prompts", str(w.num_prompts), "--input-len", str(w.input_len), "--output-len", str(w.output_len)]
    else:
        cmd += (["--dataset", w.dataset, w.source] if w.dataset else ["--prompts", w.source]) + [
            "--num-prompts", str(w.num_prompts)]
    for flag, value in (("--concurrency", w.concurrency), ("--request-rate", w.request_rate),
                        ("--temperature", w.temperature), ("--seed", w.seed), ("--warmup", w.warmup_requests),
                        ("--repeats", w.repeats if w.repeats != 1 else None)):
        if value is not None:
            cmd += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    return cmd, False


def environment(r: RunResult) -> str:
    env = r.environment.model_dump(exclude={"command"})
    cmd, recorded = rerun_command(r)
    how = "as recorded" if recorded else "rebuilt from the recorded settings (this result predates recorded commands)"
    return (f"<h4>Command ({esc(how)})</h4><pre>{esc(shlex.join(cmd))}</pre>"
            f"<details><summary>environment and every engine argument</summary>"
            + kv_table([(k, esc(v)) for k, v in env.items()])
            + kv_table([(k, esc(v)) for k, v in (r.engine_args or {}).items()]) + "</details>")


def parallel(r: RunResult, src: str) -> str:
    """Several GPUs: the layout, per-GPU rates, and each data-parallel replica's own figures."""
    par = r.parallel or {}
    keys = ("world_size", "tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size", "gpus_used",
            "output_tokens_per_s_per_gpu", "total_tokens_per_s_per_gpu", "kv_capacity_tokens_total",
            "executor_backend")
    out = kv_table([(k, num(par[k], src, f"parallel.{k}") if isinstance(par[k], (int, float)) else esc(par[k]))
                    for k in keys if k in par])
    reps = par.get("replicas") or []
    if reps:
        cols = [c for c in reps[0] if c != "replica"]
        out += table(["replica", *cols], [[esc(x["replica"]), *(num(x.get(c), spec=",.1f") for c in cols)]
                                          for x in reps], numeric=tuple(range(1, len(cols) + 1)))
    return out


def run_section(r: RunResult, anchor: str, label: str) -> str:
    parts = [("Summary", "Headline numbers of the timed passes; the device, vLLM version and the engine arguments "
                         "given.", summary(r, anchor)),
             ("Throughput", "Rates over the timed window (mean over repeats and its 95% interval; prefill and "
                            "decode rates over the time a request was in that phase).", throughput(r, anchor)),
             ("Latency", "Percentiles per request, their distribution (read a CDF at 0.5 for the median), and where "
                         "the time of a few typical requests went.", latency(r, anchor)),
             ("Timeline", "Requests running and waiting and KV cache use % during the first timed pass; a flat "
                          "'waiting' above zero means the KV cache or max_num_seqs limited the batch.", timeline(r)),
             ("KV cache and memory", "How many tokens the KV cache holds and why (the arithmetic), how much was "
                                     "used, and the device memory split.", kv_cache(r, anchor)),
             ("Energy and cost", "The GPUs' energy over the timed passes (NVML; start-up and warm-up excluded), per "
                                 "token of one pass, and USD per million output tokens at the prices given.",
              energy(r, anchor)),
             ("Environment and command", "What the result was measured on, and the command that reruns it.",
              environment(r))]
    if r.parallel:
        parts.insert(1, ("Parallel layout", "How the run was spread over GPUs; per-GPU rates divide by the GPUs "
                                            "used; data-parallel replicas each ran their share.", parallel(r, anchor)))
    body = "".join(section(f"{anchor}-{i}", title, how, content, level=4) for i, (title, how, content)
                   in enumerate(parts))
    notes = "".join(f"<li>{esc(n)}</li>" for n in r.notes)
    return section(anchor, label, f"{r.mode} result from {label}.", body + (f"<details><summary>notes</summary>"
                                                                              f"<ul>{notes}</ul></details>"
                                                                              if notes else ""), level=3, kind="item")


def comparison(runs: list[Item]) -> str:
    """Offline and serving results of the same workload side by side, one table per workload (its id:
    findings.compare_anchor, where the findings link)."""
    out = []
    for key, base, members in comparison_groups(runs):
        labeled = [Labeled(f"{m.label.split('/')[-1]} [{m.data.mode}]", m.data) for m in members]
        headers, rows = compare_table(labeled, labeled[members.index(base)])
        n = len(members)
        cells = [[esc(c) if i == 0 else esc(fmt_value(c, RATIO if i > n else KNOWN)) for i, c in enumerate(row)]
                 for row in rows]
        what = f"{key[0]}, {key[1]} requests" + (f", {key[2]} in flight" if key[2] else "") + (
            f", {key[3]:g} req/s" if key[3] else "")
        warns = [f"{m.label}: {w}" for m, x in zip(members, labeled) if m is not base
                 for w in mismatches(labeled[members.index(base)], x)]
        names = ", ".join(f"{m.label} [{m.data.mode}]" for m in members)
        out.append(f'<div id="{esc(compare_anchor(base))}"><h4>{esc(what)}</h4><p class="how">{esc(names)}</p>'
                   + table(headers, cells, numeric=tuple(range(1, len(headers))))
                   + "".join(f'<p class="warn">warning: {esc(w)}</p>' for w in warns) + "</div>")
    return "".join(out)
