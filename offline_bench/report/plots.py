"""PNG plots of a sweep (matplotlib, headless). Axes carry units; one line per series."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from offline_bench.analysis.compare import Labeled
from offline_bench.analysis.sweep import group_series, summarize
from offline_bench.core.errors import NotAResult
from offline_bench.report import formats  # noqa: F401 - registers summary.md and summary.csv, which summarize writes
from offline_bench.results.load import load
from offline_bench.results.phases import PhasesResult
from offline_bench.results.run import write_atomic
from offline_bench.results.sweep import SweepSummary

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


def plot(r: PhasesResult, path: str | Path) -> None:
    import matplotlib  # matplotlib is heavy to import: only when a plot is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # matplotlib is heavy to import: only when a plot is drawn

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), dpi=110)
    for ax, phase in zip(axes, ("prefill", "decode")):
        for length in sorted({x.input_len for x in r.rows}):
            pts = sorted((x.batch_size, x.tokens_per_s, x.ceiling_tokens_per_s) for x in r.rows
                         if x.phase == phase and x.input_len == length and x.tokens_per_s is not None)
            line = ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"input {length}")[0]
            if all(p[2] for p in pts):
                ax.plot([p[0] for p in pts], [p[2] for p in pts], ls="--", color=line.get_color(),
                        label=f"ceiling, input {length}")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("batch size (requests)")
        ax.set_ylabel(f"{phase} tokens/s")
        ax.set_title(f"{phase}: tokens/s vs batch size")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_summary(out_dir: str | Path, plots: bool = True) -> SweepSummary:
    """Summary files of DIR, and its plots."""
    out = Path(out_dir)
    summary = summarize(out)
    if plots:
        summary.analysis["plots"] = sweep_plots(summary, out / "plots")
        write_atomic(out / "summary.json", summary.model_dump_json(indent=2))
    return summary


def write_plots(result_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """The plots of a committed result set, drawn from its JSON (the docs site's build: plots are not kept in
    git): a sweep's under `plots/`, each phases result's as NAME.png beside NAME.json. Paths relative to out_dir."""
    src, out, files = Path(result_dir), Path(out_dir), []
    for path in sorted(src.rglob("*.json")):
        try:
            r = load(path)
        except NotAResult:  # another tool's file (vs-vllm-bench's, a script's summary)
            continue
        rel = path.parent.relative_to(src)
        if isinstance(r, SweepSummary) and path.name == "summary.json":
            made = sweep_plots(r, out / rel / "plots").get("files", [])
            files += [rel / f for f in made]
        elif isinstance(r, PhasesResult):
            (out / rel).mkdir(parents=True, exist_ok=True)
            plot(r, out / rel / f"{path.stem}.png")
            files.append(rel / f"{path.stem}.png")
    return files


def compare_plot(runs: list[Labeled], path: str | Path) -> None:
    """`compare --plot`: output tokens/s and TTFT p50 of each run, side by side."""
    import matplotlib  # matplotlib is heavy to import: only when a plot is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # matplotlib is heavy to import: only when a plot is drawn

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), dpi=110)
    labels = [r.label for r in runs]
    axes[0].barh(labels, [r.result.throughput.output_tokens_per_s or 0 for r in runs])
    axes[0].set_xlabel("output tokens/s")
    axes[1].barh(labels, [r.result.latency.ttft_ms.p50 or 0 for r in runs])
    axes[1].set_xlabel("TTFT p50 (ms)")
    for ax in axes:
        ax.grid(True, axis="x", alpha=0.3)
    axes[1].set_yticklabels([])
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
