"""PNG plots of a sweep (matplotlib, headless). Axes carry units; one line per series."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from offline_bench.sweepreport import SweepSummary, group_series

# (file, x field, y attribute of a row, y label, title)
SWEEP_PLOTS = [
    ("kv_capacity_vs_gmu.png", "gpu_memory_utilization", "kv_capacity_tokens", "KV cache capacity (tokens)",
     "KV cache capacity vs gpu_memory_utilization"),
    ("max_concurrency_vs_max_model_len.png", "max_model_len", "max_concurrency",
     "max concurrency (requests of max_model_len)", "Max concurrency vs max_model_len"),
    ("output_tokens_per_s_vs_gmu.png", "gpu_memory_utilization", "output_tokens_per_s", "output tokens/s",
     "Output throughput vs gpu_memory_utilization"),
    ("ttft_p99_vs_gmu.png", "gpu_memory_utilization", "ttft_ms_p99", "TTFT p99 (ms)",
     "TTFT p99 vs gpu_memory_utilization"),
]
# drawn when the sweep varies the arrival rate
RATE_PLOTS = [
    ("output_tokens_per_s_vs_rate.png", "request_rate", "output_tokens_per_s", "output tokens/s",
     "Output throughput vs request rate"),
    ("goodput_vs_rate.png", "request_rate", "goodput_requests_per_s", "goodput (requests/s meeting the SLOs)",
     "Goodput vs request rate"),
    ("ttft_p99_vs_rate.png", "request_rate", "ttft_ms_p99", "TTFT p99 (ms)", "TTFT p99 vs request rate"),
]
X_LABELS = {"request_rate": "request rate (requests/s arriving)",
            "gpu_memory_utilization": "gpu_memory_utilization (fraction of device memory)",
            "max_model_len": "max_model_len (tokens)"}


def sweep_plots(summary: SweepSummary, out_dir: Path) -> dict[str, Any]:
    """Write the sweep's plots; returns {"files": [...]} or {"skipped": reason}."""
    try:
        import matplotlib  # matplotlib is heavy to import: only when a plot is drawn

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # matplotlib is heavy to import: only when a plot is drawn
    except ImportError:
        return {"skipped": "matplotlib is not installed: pip install matplotlib, then offline-bench sweep --report"}

    ok = [r for r in summary.rows if r.status == "ok"]
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    by_rate = RATE_PLOTS if "request_rate" in summary.spec.grid else []
    for name, x, y, ylabel, title in SWEEP_PLOTS + by_rate:
        fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
        drawn = False
        styles = [("o", "-", 9), ("s", "--", 7), ("^", ":", 5), ("D", "-.", 4)]  # overlapping lines stay visible
        for k, (label, series) in enumerate(group_series(summary.spec, ok, x).items()):  # grid order, as given
            pts = sorted((xv, getattr(r, y)) for xv, r in series
                         if isinstance(xv, (int, float)) and getattr(r, y) is not None)  # "inf": no x position
            if pts:
                marker, ls, size = styles[k % len(styles)]
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=marker, ls=ls, markersize=size,
                        label=label or "all points")
                drawn = True
        if x == "max_model_len" and drawn:
            ax.set_xscale("log", base=2)
        ax.set_xlabel(X_LABELS.get(x, x))
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        if drawn:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "no successful points", ha="center", va="center", transform=ax.transAxes)
        fig.tight_layout()
        tmp = out_dir / f".{name}.tmp.png"
        fig.savefig(tmp)
        plt.close(fig)
        tmp.replace(out_dir / name)
        files.append(f"plots/{name}")
    return {"files": files}
