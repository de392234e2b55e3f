"""Compare runs (offline, serving, imported) metric by metric, with ratios and a warning for every condition
that differs between a run and the baseline."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offline_bench.core.errors import BenchError
from offline_bench.results.load import load_as
from offline_bench.results.run import RunResult, result_name

# (row label, getter); None values print as "unknown", a row unknown for every run is left out
METRICS: list[tuple[str, Any]] = [
    ("requests_per_s", lambda r: r.throughput.requests_per_s),
    ("output_tokens_per_s", lambda r: r.throughput.output_tokens_per_s),
    ("total_tokens_per_s", lambda r: r.throughput.total_tokens_per_s),
    ("total_output_tokens", lambda r: r.workload.total_output_tokens),
    ("goodput_requests_per_s", lambda r: r.throughput.goodput_requests_per_s),
    ("good_requests_pct", lambda r: r.throughput.good_requests_pct),
]
for _name in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"):
    for _q in ("mean", "p50", "p90", "p99"):
        METRICS.append((f"{_name} {_q}", lambda r, n=_name, q=_q: getattr(getattr(r.latency, n) or _NONE, q)))
METRICS.append(("peak_kv_usage_pct", lambda r: r.kv_cache.peak_usage_pct))
METRICS.append(("preemptions", lambda r: r.kv_cache.preemptions))


def _measured(r: RunResult) -> Any:
    """The run's energy when it was measured (else every energy row is unknown for it)."""
    return r.energy if r.energy is not None and r.energy.status == "measured" else _NONE


# energy (NVML) and cost (--gpu-hour-cost / --kwh-cost): left out, as every row, where no run has them
METRICS += [
    ("joules_per_output_token", lambda r: _measured(r).joules_per_output_token),
    ("output_tokens_per_joule", lambda r: _measured(r).output_tokens_per_joule),
    ("avg_watts", lambda r: _measured(r).avg_watts),
    ("idle_watts", lambda r: _measured(r).idle_watts),
    ("usd_per_mtok_gpu_time", lambda r: (r.cost or _NONE).usd_per_million_output_tokens),
    ("usd_per_mtok_energy", lambda r: (r.cost or _NONE).energy_usd_per_million_output_tokens),
]


class _None:
    def __getattr__(self, _name: str) -> None:
        return None


_NONE = _None()


GOODPUT_ROWS = ("goodput_requests_per_s", "good_requests_pct")  # only when some run was given SLOs
RESULT_SUFFIXES = (".json", ".json.gz")


@dataclass
class Labeled:
    label: str
    result: RunResult
    name: str = ""  # the file's name alone: a column header short enough for many runs side by side
    path: str = ""  # the file read


def label_for(path: str | Path, r: RunResult) -> str:
    conc, rate = r.workload.concurrency, r.workload.request_rate
    return (f"{result_name(path)} [{r.mode}{'' if conc is None else f', c={conc}'}"
            f"{'' if rate is None else f', {rate:g} req/s'}]")


def load_runs(paths: list[str]) -> list[Labeled]:
    """`compare`'s inputs: run results of any mode; any other file named is refused in one line. A directory
    stands for the run results in it (a sweep's: its points), its other files left out."""
    runs = []
    for p in paths:
        runs += [(p, load_as(p, "run", "compare"))] if not Path(p).is_dir() else _runs_in(Path(p))
    names = [result_name(p) for p, _ in runs]
    return [Labeled(label_for(p, r), r, n if names.count(n) == 1 else "", p) for (p, r), n in zip(runs, names)]


def _runs_in(directory: Path) -> list[tuple[str, RunResult]]:
    points = directory / "points"
    root = points if (directory / "sweep.json").is_file() and points.is_dir() else directory
    found = []
    for f in sorted(root.iterdir(), key=_natural):
        if f.is_file() and f.name.endswith(RESULT_SUFFIXES):
            try:
                found.append((str(f), load_as(f, "run", "compare")))
            except BenchError:  # a ladder, a sweep's own files, a failed point: not a run
                continue
    if not found:
        raise BenchError(f"'{directory}' holds no run result (.json or .json.gz): give run result files or a "
                         "directory of them")
    return found


def _natural(path: Path) -> list:
    """Numbers in a name compared as numbers: a sweep's mml-2048 before mml-8192 before mml-32768."""
    parts = re.split(r"(\d+(?:\.\d+)?)", path.name)
    return [float(x) if i % 2 else x for i, x in enumerate(parts)]


class _About:
    """A figure equal to another within `rel` of the larger: the KV cache of one setting moves by a few blocks
    between engine starts, which changes no figure."""

    def __init__(self, value: float, unit: str, rel: float = 0.01) -> None:
        self.value, self.unit, self.rel = value, unit, rel

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _About) and abs(self.value - other.value) <= self.rel * max(self.value,
                                                                                             other.value)

    def __str__(self) -> str:
        return f"{self.value:,} {self.unit}"

    __hash__ = None  # type: ignore[assignment]


def _layout(r: RunResult, args: dict[str, Any]) -> str | None:
    """TP x PP x DP and the GPUs they took, for a run whose engine this tool started (None: a server's)."""
    if r.mode not in ("offline", "predicted"):
        return None
    par, resolved = r.parallel or {}, args.get("resolved") or {}
    tp, pp, dp = (int(par.get(k) or resolved.get(k) or args.get(k) or 1)
                  for k in ("tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size"))
    gpus = int(par.get("gpus_used") or tp * pp * dp)
    parts = [f"{name}={n}" for name, n in (("DP", dp), ("PP", pp), ("TP", tp)) if n > 1]
    return f"{' x '.join(parts)} ({gpus} GPUs)" if parts else f"{gpus} GPU{'s' if gpus > 1 else ''}"


def _engine_conditions(r: RunResult) -> dict[str, Any]:
    """The engine's settings that change a figure, as far as the result records them (None: unknown)."""
    args = r.engine_args or {}
    resolved, server = args.get("resolved") or {}, args.get("server") or {}
    kv_total = (r.parallel or {}).get("kv_capacity_tokens_total") or r.kv_cache.capacity_tokens
    eager = resolved.get("enforce_eager") if r.mode in ("offline", "predicted") else None
    return {
        "max_num_batched_tokens": resolved.get("max_num_batched_tokens"),
        "max_model_len": resolved.get("max_model_len") or r.kv_cache.max_model_len,
        "KV cache size": None if kv_total is None else _About(kv_total, "tokens"),
        "KV cache dtype": resolved.get("kv_cache_dtype") or server.get("cache_dtype"),
        "dtype": resolved.get("dtype") if r.mode in ("offline", "predicted") else None,
        "CUDA graphs": None if eager is None else "off (enforce_eager)" if eager else "on",
    }


def _conditions(r: RunResult) -> dict[str, Any]:
    w = r.workload
    resolved = r.engine_args.get("resolved", {}) if r.engine_args else {}
    return {
        "model": None if r.model in ("", "unknown") else r.model,
        "workload": (w.source, w.num_prompts, w.input_len, w.output_len, w.range_ratio, w.seed),
        "shared prefixes": "none" if not w.prefix_len else f"{w.num_prefixes} x {w.prefix_len} tokens",
        "sampling": (w.temperature, w.top_p, w.ignore_eos),
        "detokenization": w.detokenize,
        "prefix caching": resolved.get("enable_prefix_caching"),
        "max_num_seqs": resolved.get("max_num_seqs"),
        **_engine_conditions(r),
        "engine version": r.environment.vllm_version if r.mode == "offline"
        else (r.engine_args or {}).get("server", {}).get("vllm_version"),
        "GPU": r.environment.gpu_name if r.mode == "offline"
        else (r.engine_args or {}).get("server", {}).get("gpu_name"),
        "parallel layout": _layout(r, r.engine_args or {}),
        "concurrency": w.concurrency,
        "arrivals": "all at once" if w.request_rate is None else f"{w.request_rate:g} req/s, burstiness "
                                                                 f"{w.burstiness:g}",
        "goodput SLOs": ", ".join(f"{k.removesuffix('_ms')} <= {v:g} ms"
                                  for k, v in sorted((r.goodput_slo_ms or {}).items())) or "none",
    }


# each condition unknown on one side has a line of its own; those added later share one line
OWN_UNKNOWN_LINE = ("workload", "sampling", "detokenization", "prefix caching", "max_num_seqs", "engine version",
                    "GPU", "concurrency", "arrivals")
# what differs between layouts by design: `scaling` compares them, and shows the KV cache of each
LAYOUT_CONDITIONS = ("parallel layout", "KV cache size")


def _unknown(v: Any) -> bool:
    return v is None or (isinstance(v, tuple) and all(x is None for x in v[1:]))


def mismatches(base: Labeled, other: Labeled, skip: tuple[str, ...] = ()) -> list[str]:
    """Every condition that differs (or cannot be checked) between `other` and the baseline, values in that
    order: `other` first, as in the warning's "other vs baseline" prefix. `skip`: conditions not to check."""
    a, b = _conditions(other.result), _conditions(base.result)
    out, unknown = [], {}
    for key in a:
        if key in skip:
            continue
        if _unknown(a[key]) or _unknown(b[key]):
            if a[key] != b[key] and key != "concurrency":
                where = " and ".join(x.label for x, v in ((other, a[key]), (base, b[key])) if _unknown(v))
                if key in OWN_UNKNOWN_LINE:
                    out.append(f"{key}: unknown in {where} (serving or imported results do not record it), so it "
                               "cannot be checked")
                else:
                    unknown.setdefault(where, []).append(key)
            continue
        if a[key] != b[key]:
            out.append(f"{key} differs: {a[key]} vs {b[key]}")
    for where, keys in unknown.items():
        out.append(f"{', '.join(keys)}: unknown in {where} (serving or imported results do not record "
                   f"{'it' if len(keys) == 1 else 'them'}), so {'it' if len(keys) == 1 else 'they'} cannot be "
                   "checked")
    return out


def order(runs: list[Labeled]) -> list[Labeled]:
    """Line runs up by workload, then concurrency (batch runs last), then mode."""
    def key(x: Labeled) -> tuple:
        w = x.result.workload
        return (str(w.source), w.num_prompts or 0, w.concurrency is None, w.concurrency or 0, w.request_rate or 0.0,
                x.result.mode)
    return sorted(runs, key=key)


def table(runs: list[Labeled], baseline: Labeled) -> tuple[list[str], list[list[Any]]]:
    """Metrics x runs, then each run's ratio to the baseline; rows nobody asked for left out (goodput without
    SLOs, a metric no run records)."""
    headers = ["metric"] + [r.label for r in runs] + [f"{r.label} / baseline" for r in runs if r is not baseline]
    slos = any(r.result.goodput_slo_ms for r in runs)
    rows = []
    for name, get in METRICS:
        values = [get(r.result) for r in runs]
        if all(v is None for v in values) or (name in GOODPUT_ROWS and not slos):
            continue
        base = get(baseline.result)
        # 0 against 0 (no preemptions on either side, say) is no change, not an unknown ratio
        ratios = [(1.0 if v == base == 0 else v / base if v is not None and base else None)
                  for r, v in zip(runs, values) if r is not baseline]
        rows.append([name, *values, *ratios])
    return headers, rows
