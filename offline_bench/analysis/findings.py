"""What a set of results says, as sentences with their numbers: computed from the results given (never written
by hand), each naming the section of the report that holds its evidence (an anchor there).

- offline vs serving at equal concurrency (or arrival rate): the throughput ratio and the TTFT that HTTP adds;
- explain-gap: each ladder's biggest step, and what is left to the HTTP path;
- sweeps: the knee (where more KV memory or max_model_len stops paying), preemption onset, failed points;
- predictions: predicted against measured, where results carry both;
- scaling: per-GPU throughput of multi-GPU runs against a single-GPU run of the same workload.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offline_bench.analysis.compare import LAYOUT_CONDITIONS, Labeled, mismatches, order
from offline_bench.analysis.scaling import run_rows
from offline_bench.analysis.sweep import resolved
from offline_bench.results.load import Item
from offline_bench.results.run import RunResult
from offline_bench.results.sweep import PointRow, SweepSummary

SAME_WITHIN = 0.02  # throughput ratios within 2% of 1 read as "the same"
SCALING_ANCHOR = "scaling"
PREDICTIONS_ANCHOR = "predictions"


@dataclass
class Finding:
    topic: str  # what it is about: "Offline vs serving", "Explain-gap", "Sweep", "Prediction", "Scaling"
    text: str  # one or two sentences, numbers in them
    links: list[tuple[str, str]]  # (link text, anchor of the section with the evidence)
    values: dict[str, Any] = field(default_factory=dict)  # the figures behind the text, as computed


def compare_anchor(base: Item) -> str:
    """The anchor of the comparison table whose baseline is `base`."""
    return f"cmp-{base.anchor}"


def short_gpu(name: str | None) -> str:
    """'NVIDIA H100 80GB HBM3' -> 'H100'."""
    return (name or "").removeprefix("NVIDIA ").split(" ")[0] or "unknown"


def gpu_of(r: RunResult) -> str | None:
    return r.environment.gpu_name or (r.engine_args or {}).get("server", {}).get("gpu_name")


def short_model(name: str) -> str:
    return Path(name.removeprefix("preset:")).name


def _pct(a: float, b: float) -> float:
    return 100.0 * (a / b - 1.0)


def _nums(values: list[float], spec: str, sign: bool = False) -> str:
    return ", ".join(format(v, ("+" if sign else "") + spec) for v in values)


def find(items: list[Item]) -> list[Finding]:
    """Every finding of these results, in the order the page shows them."""
    runs = [i for i in items if i.kind == "run"]
    return [*serving(runs), *gaps(items), *sweeps(items), *predictions(items), *scaling(runs)]


# ---------------------------------------------------------------- offline vs serving

def _pair_key(r: RunResult) -> tuple[Any, ...]:
    w = r.workload
    return (w.source, w.num_prompts, w.concurrency, w.request_rate, w.output_len)


def comparison_groups(runs: list[Item]) -> list[tuple[tuple[Any, ...], Item, list[Item]]]:
    """Results of one workload in more than one mode: (workload key, the baseline (offline first), members in
    compare's order)."""
    groups: dict[tuple[Any, ...], list[Item]] = {}
    for item in runs:
        if item.data.mode in ("offline", "serving", "imported"):
            groups.setdefault(_pair_key(item.data), []).append(item)
    out = []
    for key, members in groups.items():
        if len({m.data.mode for m in members}) < 2:
            continue
        by_label = {id(m.data): m for m in members}
        ordered = [by_label[id(x.result)] for x in order([Labeled(m.label, m.data) for m in members])]
        base = next((m for m in ordered if m.data.mode == "offline"), ordered[0])
        out.append((key, base, ordered))
    return out


def _level(key: tuple[Any, ...]) -> str:
    return f"{key[3]:g} req/s" if key[3] else f"c={key[2]}" if key[2] else "all at once"


def serving(runs: list[Item]) -> list[Finding]:
    """Serving against offline of the same workload: one finding for the equal-concurrency pairs, one for the
    equal-arrival-rate pairs."""
    kinds: dict[str, list[dict[str, Any]]] = {}
    for key, base, members in sorted(comparison_groups(runs), key=lambda g: (g[0][3] or 0.0, g[0][2] or 0)):
        if base.data.mode != "offline":
            continue
        for m in members:
            if m.data.mode != "serving":
                continue
            o, s = base.data, m.data
            several = sum(x.data.mode == "serving" for x in members) > 1
            kinds.setdefault("arrival rate" if key[3] else "concurrency", []).append({
                "offline": base.label, "serving": m.label, "anchor": compare_anchor(base),
                "level": _level(key) + (f" ({m.label.split('/')[-1]})" if several else ""),
                "ratio": s.throughput.output_tokens_per_s / o.throughput.output_tokens_per_s,
                "ttft_p50_added_ms": _diff(s.latency.ttft_ms.p50, o.latency.ttft_ms.p50),
                "ttft_p99_added_ms": _diff(s.latency.ttft_ms.p99, o.latency.ttft_ms.p99)})
    return [_serving_finding(kind, pairs) for kind, pairs in kinds.items()]


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _serving_finding(kind: str, pairs: list[dict[str, Any]]) -> Finding:
    ratios = [p["ratio"] for p in pairs]
    levels = ", ".join(p["level"] for p in pairs)
    same = all(abs(r - 1) <= SAME_WITHIN for r in ratios)
    verdict = (f"the same throughput (within {max(abs(r - 1) for r in ratios):.1%})" if same else
               f"{min(ratios):.3f}-{max(ratios):.3f}x the offline throughput")
    text = (f"At equal {kind} ({levels}), serving delivers {verdict}: serving / offline output tok/s = "
            f"{_nums(ratios, '.3f')}.")
    p50 = [p["ttft_p50_added_ms"] for p in pairs]
    if all(v is not None for v in p50):
        p99 = [p["ttft_p99_added_ms"] for p in pairs]
        text += (f" What HTTP adds is time to first token: TTFT p50 {_nums(p50, ',.1f', True)} ms"
                 + (f" (p99 {_nums(p99, ',.1f', True)} ms)" if all(v is not None for v in p99) else "") + ".")
    links = [(f"comparison {p['level']}", p["anchor"]) for p in pairs]
    return Finding("Offline vs serving", text, list(dict.fromkeys(links)), {"kind": kind, "pairs": pairs})


# ---------------------------------------------------------------- explain-gap

def gap_anchor(anchor: str, concurrency: int) -> str:
    """The anchor of one ladder of the explain-gap result whose anchor is `anchor`."""
    return f"{anchor}-c{concurrency}"


def gaps(items: list[Item]) -> list[Finding]:
    """Per ladder: the step that takes the largest share of the gap, and what the HTTP path itself takes."""
    out = []
    for item in (i for i in items if i.kind == "gap"):
        for rep in item.data[0]:
            steps = rep.steps
            if len(steps) < 2:
                continue
            first, last = steps[0], steps[-1]
            values = {"concurrency": rep.concurrency, "offline": first.output_tokens_per_s,
                      "serving": last.output_tokens_per_s, "gap": rep.gap_tokens_per_s}
            text = (f"At c={rep.concurrency} ({rep.num_prompts} requests): offline "
                    f"{first.output_tokens_per_s:,.1f} -> serving {last.output_tokens_per_s:,.1f} output tok/s")
            if rep.gap_tokens_per_s <= 0:
                text += ": serving was not slower."
            else:
                i, big = max(enumerate(steps[1:], 1), key=lambda s: s[1].share_of_gap or 0.0)
                values |= {"biggest_step": i + 1, "biggest_share": big.share_of_gap, "http_share": last.share_of_gap}
                text += (f"; the biggest step is #{i + 1} '{big.step}' ({big.change_tokens_per_s:+,.1f} tok/s, "
                         f"{big.share_of_gap:.0%} of the gap); the HTTP/serving path itself takes "
                         f"{last.share_of_gap:.1%}")
                before = steps[-2].ttft_ms_p50
                if before is not None and last.ttft_ms_p50 is not None:
                    values["http_ttft_added_ms"] = last.ttft_ms_p50 - before
                    text += f" and adds {last.ttft_ms_p50 - before:+,.1f} ms TTFT p50"
                text += "."
            link = (f"ladder c={rep.concurrency}", gap_anchor(item.anchor, rep.concurrency))
            out.append(Finding("Explain-gap", text, [link], values))
    return out


# ---------------------------------------------------------------- sweeps

def kv_field(s: SweepSummary) -> str:
    grid = s.spec.grid
    return "kv_cache_memory_bytes" if "kv_cache_memory_bytes" in grid and "gpu_memory_utilization" not in grid \
        else "gpu_memory_utilization"


def _kv_name(fld: str, v: Any) -> str:
    return f"KV {v / 2**20:,.0f} MiB" if fld == "kv_cache_memory_bytes" else f"gmu {v:g}"


def sweeps(items: list[Item]) -> list[Finding]:
    out = []
    for item in (i for i in items if i.kind == "sweep"):
        s: SweepSummary = item.data
        ok = [r for r in s.rows if r.status == "ok"]
        link = [(f"sweep {item.label}", item.anchor)]
        texts = [t for t in (_knee(s), _length(s, ok), _preemption(s, ok), _failed(s)) if t]
        out += [Finding("Sweep", f"{item.label}: {text}", link, values) for text, values in texts]
    return out


def _knee(s: SweepSummary) -> tuple[str, dict[str, Any]] | None:
    """Where more KV memory stops paying, over every series of the sweep's analysis (series named only when some
    have a knee inside the grid and some do not)."""
    knees = s.analysis.get("throughput_knee") or []
    if not knees:
        return None
    fld = kv_field(s)
    at = [k.get(f"knee_{fld}") for k in knees]
    inside = [(k, a) for k, a in zip(knees, at) if a is not None]
    outside = [k for k, a in zip(knees, at) if a is None]
    mixed = bool(inside and outside)

    def names(ks: list[dict[str, Any]]) -> str:
        return f" for {', '.join(_short_series(k['series']) for k in ks)}" if mixed else ""

    parts, values = [], {"knee": at}
    if inside:
        where = ", ".join(sorted({_kv_name(fld, a) for _, a in inside}))
        parts.append(f"the knee is at {where}{names([k for k, _ in inside])}: beyond it more KV memory adds less "
                     f"than {s.spec.knee_tolerance:.0%} output tok/s")
    if outside:
        gains = [_pct(k["points"][-1]["output_tokens_per_s"], k["points"][-2]["output_tokens_per_s"])
                 for k in outside]
        last = outside[0]["points"]
        values["last_step_gain_pct"] = gains
        parts.append(f"no knee inside the grid{names(outside)}: output tok/s still rises {min(gains):+.1f}% to "
                     f"{max(gains):+.1f}% from {_kv_name(fld, last[-2][fld])} to {_kv_name(fld, last[-1][fld])}, "
                     "the largest in the grid")
    return "; ".join(parts) + ".", values


def _short_series(label: str) -> str:
    return (label or "all points").replace("gpu_memory_utilization", "gmu")


def _by_kv(s: SweepSummary, ok: list[PointRow]) -> dict[Any, list[PointRow]]:
    fld = kv_field(s)
    out: dict[Any, list[PointRow]] = {}
    for r in sorted(ok, key=lambda r: resolved(r, s.spec, fld) or 0):
        out.setdefault(resolved(r, s.spec, fld), []).append(r)
    return out


def _length(s: SweepSummary, ok: list[PointRow]) -> tuple[str, dict[str, Any]] | None:
    """Whether max_model_len changes throughput at a fixed KV size (it only divides the pool into slots)."""
    if len(s.spec.grid.get("max_model_len", [])) < 2:
        return None
    spread = {}
    for kv, rows in _by_kv(s, ok).items():
        rates = [r.output_tokens_per_s for r in rows if r.output_tokens_per_s]
        if len(rates) > 1:
            spread[kv] = _pct(max(rates), min(rates))
    if not spread:
        return None
    lens = sorted(s.spec.grid["max_model_len"])
    worst = max(spread.values())
    if worst > 100 * s.spec.knee_tolerance:
        return (f"max_model_len ({lens[0]:,}-{lens[-1]:,}) moves output tok/s by up to {worst:.1f}% at one KV "
                "size.", {"max_model_len_spread_pct": spread})
    fld, (kv, rows) = kv_field(s), list(_by_kv(s, ok).items())[-1]
    conc = sorted(r.max_concurrency for r in rows if r.max_concurrency)
    return (f"max_model_len ({lens[0]:,}-{lens[-1]:,}) stops paying at once: it moves output tok/s by at most "
            f"{worst:.1f}% at any KV size; it only sets how many full-length requests fit"
            + (f" ({conc[-1]:,.1f} -> {conc[0]:,.1f} at {_kv_name(fld, kv)})." if len(conc) > 1 else "."),
            {"max_model_len_spread_pct": spread})


def _preemption(s: SweepSummary, ok: list[PointRow]) -> tuple[str, dict[str, Any]] | None:
    """Which points preempt, how many, and the throughput step where preemptions stop."""
    known = [r for r in ok if r.preemptions is not None]
    if not known:
        return None
    hit = [r for r in known if r.preemptions]
    values: dict[str, Any] = {"preempting": {r.key: r.preemptions for r in hit}}
    if not hit:
        peak = max((r.peak_kv_usage_pct or 0.0 for r in known), default=0.0)
        return f"no point preempts (peak KV use at most {peak:.1f}%).", values
    fld, groups = kv_field(s), _by_kv(s, known)
    levels = list(groups)
    pre = [kv for kv in levels if any(r.preemptions for r in groups[kv])]
    clean = [kv for kv in levels if kv not in pre]
    counts = [r.preemptions for r in hit]
    text = (f"{len(hit)} of {len(known)} points preempt ({min(counts):,}-{max(counts):,} preemptions each: "
            + ", ".join(f"{r.key} {r.preemptions:,}" for r in hit[:6]) + ("..." if len(hit) > 6 else "") + ")")
    if not clean or len(levels) < 2 or max(pre) > min(clean):
        return text + ".", values
    below, onset = max(pre), min(clean)
    rate = {kv: _mean([r.output_tokens_per_s for r in groups[kv]]) for kv in levels}
    gain = _pct(rate[onset], rate[below])
    values |= {"onset": onset, "last_preempting": below, "gain_pct": gain}
    text = (f"preemption stops at {_kv_name(fld, onset)}: every point below it preempts "
            f"({min(counts):,}-{max(counts):,} each), none from it on. Preemptions "
            f"{min(r.preemptions for r in groups[below]):,} -> 0 from {_kv_name(fld, below)} to "
            f"{_kv_name(fld, onset)} go with {gain:+.1f}% output tok/s (mean over its points)")
    i = levels.index(below)
    if i > 0:
        step = _pct(rate[below], rate[levels[i - 1]])
        values["gain_while_preempting_pct"] = step
        text += f", against {step:+.1f}% from {_kv_name(fld, levels[i - 1])} to {_kv_name(fld, below)}"
    return text + ".", values


def sweep_preemptions(s: SweepSummary) -> str | None:
    """The preemption sentence of a sweep (its section says it too)."""
    found = _preemption(s, [r for r in s.rows if r.status == "ok"])
    return found[0] if found else None


def _mean(values: list[float | None]) -> float:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else 0.0


def _failed(s: SweepSummary) -> tuple[str, dict[str, Any]] | None:
    failed = [r for r in s.rows if r.status != "ok"]
    if not failed:
        return None
    why = sorted({(r.error or "no error recorded").split(" (")[0] for r in failed})
    return (f"{len(failed)} of {len(s.rows)} points failed ({', '.join(r.key for r in failed)}): {'; '.join(why)}.",
            {"failed": [r.key for r in failed]})


# ---------------------------------------------------------------- predictions

SETTINGS = ("gpu_memory_utilization", "max_num_seqs", "max_num_batched_tokens", "max_model_len", "kv_cache_dtype",
            "tensor_parallel_size", "pipeline_parallel_size")
# (quantity, predicted figure of a predicted run / measured run)
QUANTITIES: list[tuple[str, Any]] = [
    ("output tok/s", lambda r: r.throughput.output_tokens_per_s), ("TTFT p50 ms", lambda r: r.latency.ttft_ms.p50),
    ("KV tokens", lambda r: r.kv_cache.capacity_tokens)]
ROW_QUANTITIES = [("output tok/s", "predicted_output_tokens_per_s", "output_tokens_per_s"),
                  ("TTFT p50 ms", "predicted_ttft_ms_p50", "ttft_ms_p50"),
                  ("KV tokens", "predicted_kv_tokens", "kv_capacity_tokens")]


@dataclass
class Prediction:
    """One predicted figure against its measurement."""

    result: str  # the predicted result (or the measured one that carries its own prediction)
    measured_in: str  # where the measured figure comes from
    quantity: str
    predicted: float
    measured: float
    anchor: str  # the section with the measured figure
    note: str = ""  # what makes the two not quite comparable

    @property
    def error_pct(self) -> float:
        return _pct(self.predicted, self.measured)


def _signature(model: str, w: Any, concurrency: int | None, settings: dict[str, Any]) -> tuple[Any, ...]:
    return (short_model(model), w.num_prompts, w.input_len, w.output_len, concurrency,
            *(settings.get(k) for k in SETTINGS))


def _run_signature(r: RunResult) -> tuple[Any, ...]:
    args = r.engine_args or {}
    return _signature(r.model, r.workload, r.workload.concurrency, {**args, **(args.get("resolved") or {})})


def _row_signature(s: SweepSummary, row: PointRow) -> tuple[Any, ...]:
    base = s.spec.base
    return _signature(base.engine.model, base.workload, base.concurrency, {**row.resolved, **row.settings})


def _shape(w: Any) -> str:
    return f"{w.num_prompts} x {w.input_len} -> {w.output_len} tokens"


def _measured_for(p: Item, items: list[Item]) -> tuple[str, str, Any, str] | None:
    """(label, anchor, a RunResult or a sweep's PointRow, its workload's shape) measured with the predicted run's
    settings: a run of the same file name first (a prediction kept beside its measurement), else one of the same
    settings and workload."""
    runs = [i for i in items if i.kind == "run" and i.data.mode == "offline"]
    name = Path(p.path).name
    same = next((i for i in runs if Path(i.path).name == name), None) or next(
        (i for i in runs if _run_signature(i.data) == _run_signature(p.data)), None)
    if same:
        return same.label, same.anchor, same.data, _shape(same.data.workload)
    for s in (i for i in items if i.kind == "sweep"):
        row = next((r for r in s.data.rows if r.status == "ok" and r.mode == "offline"
                    and _row_signature(s.data, r) == _run_signature(p.data)), None)
        if row:
            return f"{s.label}/{row.key}", s.anchor, row, _shape(s.data.spec.base.workload)
    return None


def prediction_table(items: list[Item]) -> list[Prediction]:
    """Every predicted figure the results carry next to its measurement: predicted runs matched to a measured
    run (or sweep point), sweep points measured with their predictions, and runs' KV capacity against plan's."""
    out = []
    for p in (i for i in items if i.kind == "run" and i.data.mode == "predicted"):
        match = _measured_for(p, items)
        if match is None:
            continue
        label, anchor, m, shape = match
        note = "" if shape == _shape(p.data.workload) else f"recorded workloads differ: {_shape(p.data.workload)} " \
                                                            f"predicted, {shape} measured"
        for (name, get), (_, _, measured_col) in zip(QUANTITIES, ROW_QUANTITIES):
            a, b = get(p.data), get(m) if isinstance(m, RunResult) else getattr(m, measured_col)
            if a is not None and b:
                out.append(Prediction(p.label, label, name, a, b, anchor, note))
    for s in (i for i in items if i.kind == "sweep"):
        for row in (r for r in s.data.rows if r.status == "ok"):
            point = f"{s.label}/{row.key}"
            out += [Prediction(point, point, name, getattr(row, col), getattr(row, measured), s.anchor)
                    for name, col, measured in ROW_QUANTITIES
                    if getattr(row, col) is not None and getattr(row, measured)]
    for m in (i for i in items if i.kind == "run" and i.data.mode == "offline"):
        kv = m.data.kv_cache
        if kv.predicted_tokens is not None and kv.capacity_tokens:
            out.append(Prediction(m.label, m.label, "KV tokens (plan)", kv.predicted_tokens, kv.capacity_tokens,
                                  m.anchor))
    return out


def predictions(items: list[Item]) -> list[Finding]:
    rows = prediction_table(items)
    link = [("predicted vs measured", PREDICTIONS_ANCHOR)]
    out = []
    for result in dict.fromkeys(r.result for r in rows if r.result != r.measured_in):
        mine = [r for r in rows if r.result == result]
        text = (f"Predicted {result} against measured {mine[0].measured_in}: "
                + "; ".join(f"{r.quantity} {r.predicted:,.0f} vs {r.measured:,.0f} ({r.error_pct:+.1f}%)"
                            for r in mine) + (f" ({mine[0].note})" if mine[0].note else "") + ".")
        out.append(Finding("Prediction", text, link, {r.quantity: r.error_pct for r in mine}))
    own = [r for r in rows if r.result == r.measured_in and r.quantity != "KV tokens (plan)"]
    for q in dict.fromkeys(r.quantity for r in own):
        errs = [r for r in own if r.quantity == q]
        worst = max(errs, key=lambda r: abs(r.error_pct))
        text = (f"Sweep points measured next to their prediction: {q} within {abs(worst.error_pct):.2f}% over "
                f"{len(errs)} points (largest: {worst.result}, {worst.error_pct:+.2f}%).")
        out.append(Finding("Prediction", text, link, {"largest_error_pct": worst.error_pct}))
    plan = [r for r in rows if r.quantity == "KV tokens (plan)"]
    if plan:
        worst = max(plan, key=lambda r: abs(r.error_pct))
        out.append(Finding("Prediction", f"plan's KV model against the measured KV cache of {len(plan)} runs: within "
                                         f"{abs(worst.error_pct):.2f}% (largest: {worst.result}, "
                                         f"{worst.error_pct:+.3f}%).", link, {"largest_error_pct": worst.error_pct}))
    return out


# ---------------------------------------------------------------- scaling

def gpus(r: RunResult) -> int:
    par, args = r.parallel or {}, r.engine_args or {}
    tp, pp, dp = (int(par.get(k) or args.get(k) or 1) for k in ("tensor_parallel_size", "pipeline_parallel_size",
                                                                "data_parallel_size"))
    return int(par.get("gpus_used") or tp * pp * dp)


def _scaling_key(r: RunResult) -> tuple[Any, ...]:
    w = r.workload
    return (r.model, gpu_of(r), w.source, w.num_prompts, w.input_len, w.output_len, w.concurrency, w.request_rate)


def scaling_groups(runs: list[Item]) -> list[tuple[Item, list[Item]]]:
    """(single-GPU baseline, multi-GPU runs) of one model, GPU and workload; the baseline is the single-GPU run of
    the first multi-GPU run's folder, else the one whose conditions differ from it least."""
    groups: dict[tuple[Any, ...], list[Item]] = {}
    for item in (i for i in runs if i.data.mode == "offline"):
        groups.setdefault(_scaling_key(item.data), []).append(item)
    out = []
    for members in groups.values():
        multi = [i for i in members if gpus(i.data) > 1]
        single = [i for i in members if gpus(i.data) == 1]
        if not multi or not single:
            continue
        first = multi[0]
        base = next((i for i in single if Path(i.path).parent == Path(first.path).parent), None) or min(
            single, key=lambda i: len(mismatches(Labeled(i.label, i.data), Labeled(first.label, first.data),
                                                 skip=LAYOUT_CONDITIONS)))
        out.append((base, multi))
    return out


def scaling(runs: list[Item]) -> list[Finding]:
    out = []
    for base, multi in scaling_groups(runs):
        rows, _ = run_rows([base, *multi], base)
        b, others = rows[0], rows[1:]
        head = (f"Scaling on {short_gpu(b.gpu_name)} ({short_model(base.data.model)}, "
                f"{base.data.workload.num_prompts:,} requests): against the single-GPU run {b.result} "
                f"({b.output_tokens_per_s:,.0f} output tok/s), ")
        if len(others) <= 4:
            text = head + "; ".join(f"{r.result} ({r.layout}) gives {r.output_tokens_per_s_per_gpu:,.0f} tok/s per "
                                    f"GPU, {r.efficiency_pct:.0f}% efficiency ({r.speedup:.2f}x)" for r in others)
        else:
            lo, hi = min(others, key=lambda r: r.efficiency_pct), max(others, key=lambda r: r.efficiency_pct)
            text = head + (f"{len(others)} multi-GPU runs reach {lo.efficiency_pct:.0f}%-{hi.efficiency_pct:.0f}% "
                           f"per-GPU efficiency (lowest {lo.result}, {lo.layout}; highest {hi.result}, {hi.layout})")
        out.append(Finding("Scaling", text + ".", [("scaling table", SCALING_ANCHOR)],
                           {"baseline": b.result, "efficiency_pct": {r.result: r.efficiency_pct for r in others}}))
    return out
