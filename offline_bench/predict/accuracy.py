"""How far off a prediction is expected to be, by the kind of change it makes: the largest misses on held-out
measured points, as `scripts/prediction_accuracy.py` computed them from the committed results
(docs/results/prediction-accuracy.md; the figures in accuracy.json beside this module)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

# kinds of change, in the order the sentence names them
KINDS = {
    "reference": "no calibration run (a reference calibration's step cost scaled to the model and GPU)",
    "uncaptured": "decode batches above vLLM's largest CUDA graph, which the calibration run never ran",
    "other-gpu": "another GPU",
    "kv-dtype": "another KV dtype",
    "preempting": "a preempting batch",
    "batch": "max_num_seqs / max_num_batched_tokens",
    "memory": "gpu_memory_utilization / KV size / max_model_len",
    "workload": "another workload",
    "rate": "requests arriving at a rate (small, changing batches)",
}
METRICS = {"output_tokens_per_s": "output tok/s", "tpot_p50": "TPOT p50", "ttft_p50": "TTFT p50"}
DOC = "docs/results/prediction-accuracy.md"


@cache
def table() -> dict[str, Any]:
    try:
        return json.loads((resources.files("offline_bench.predict") / "accuracy.json").read_text())
    except (OSError, ValueError):
        return {}


def kinds_of(changed: dict[str, Any], gpu_moved: bool, preemptions: int, workload_moved: bool,
             uncaptured: bool = False, rate: bool = False) -> list[str]:
    """The kinds of change a prediction makes (none: the calibration's own settings)."""
    kinds = ["uncaptured"] if uncaptured else []
    if gpu_moved:
        kinds.append("other-gpu")
    if changed.get("kv_cache_dtype") not in (None, "auto"):
        kinds.append("kv-dtype")
    if preemptions:
        kinds.append("preempting")
    if any(changed.get(k) is not None for k in ("max_num_seqs", "max_num_batched_tokens")):
        kinds.append("batch")
    if any(changed.get(k) is not None for k in ("gpu_memory_utilization", "kv_cache_memory_bytes", "max_model_len")):
        kinds.append("memory")
    if workload_moved:
        kinds.append("workload")
    if rate:
        kinds.append("rate")
    return kinds


def expected(kinds: list[str]) -> dict[str, Any]:
    """The worst measured miss over the given kinds, per metric (percent), with the points behind it."""
    rows = [table().get("kinds", {}).get(k) for k in kinds]
    known = [r for r in rows if r]
    out: dict[str, Any] = {"kinds": kinds, "points": {k: r["points"] for k, r in zip(kinds, rows) if r},
                           "source": DOC}
    for m in METRICS:
        vals = [r[m] for r in known if r.get(m) is not None]
        out[m + "_pct"] = max(vals) if vals else None
    out["unmeasured"] = [k for k, r in zip(kinds, rows) if not r]
    return out


def sentence(e: dict[str, Any]) -> str:
    """One line for a prediction's notes."""
    if not e["kinds"]:
        return (f"Expected error: the calibration run's own settings (the fit itself; see {DOC} for held-out "
                "points).")
    what = ", ".join(KINDS[k] for k in e["kinds"])
    figs = ", ".join(f"{label} within {e[m + '_pct']:.1f}%" for m, label in METRICS.items()
                     if e.get(m + "_pct") is not None)
    gap = f"; never measured for {', '.join(KINDS[k] for k in e['unmeasured'])}" if e["unmeasured"] else ""
    return (f"Expected error for {what}: {figs or 'no held-out point yet'} (largest miss over the measured "
            f"points of each kind: {_counts(e)}; {DOC}){gap}.")


def _counts(e: dict[str, Any]) -> str:
    return ", ".join(f"{k} {n}" for k, n in e["points"].items()) or "none"


def kv_sentence(basis: str, moe: bool) -> str:
    """plan's expected KV error for its basis and model family."""
    kv = table().get("kv", {})
    key = "calibrated" if basis == "calibrated" else ("model-moe" if moe else "model-dense")
    r = kv.get(key)
    if not r:
        return f"expected KV error: never measured for this kind of plan ({key}; {DOC})"
    return f"expected KV error: within {r['max_abs_pct']:.2f}% ({key}, largest miss over {r['points']} " \
           f"measured starts, {DOC})"


def brief(e: dict[str, Any]) -> str:
    """The same, short: for a table cell."""
    if not e.get("kinds"):
        return "the calibration's own settings (the fit itself)"
    figs = ", ".join(f"{label} +/-{e[m + '_pct']:.1f}%" for m, label in METRICS.items()
                     if e.get(m + "_pct") is not None) or "never measured"
    return f"{figs} (largest miss on measured points: {_counts(e)})"
