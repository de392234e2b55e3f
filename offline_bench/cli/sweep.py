"""`sweep`: a grid of engine settings, resumable; its engine flags take comma lists."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

from offline_bench.cli import options as o
from offline_bench.cli.configs import CostFlags, EngineFlags, ParallelFlags, WorkloadFlags
from offline_bench.cli.flags import command
from offline_bench.cli.options import Fmt, Html, Opt
from offline_bench.cli.terminal import finish, sweep_progress, write_html
from offline_bench.core.config import EngineConfig, RunConfig
from offline_bench.core.errors import BenchError
from offline_bench.measure import sweep as sweep_mod
from offline_bench.predict import replay as predict_mod
from offline_bench.report.formats import check_format, render
from offline_bench.report.plots import write_summary
from offline_bench.results.load import Item
from offline_bench.results.run import Unwritten, check_writable
from offline_bench.results.sweep import SWEEPABLE

SweepKvBytes = Annotated[Optional[str], Opt(help="KV cache sizes instead of gmu, e.g. 32MiB,64MiB."), o.BYTE_SIZES]


@dataclass
class SweepEngineFlags:
    """`sweep`'s engine flags: a setting it can sweep takes a comma list (one value: set, not swept)."""
    model: o.Model = "preset:tiny-llama"
    gpu_memory_utilization: o.GmuList = None
    kv_cache_memory_bytes: SweepKvBytes = None
    max_model_len: o.LengthList = None
    max_num_seqs: o.CountList = None
    max_num_batched_tokens: o.LengthList = None
    kv_cache_dtype: o.KvDtypeList = None
    dtype: o.DtypeList = None
    tensor_parallel_size: o.SizeList = None
    pipeline_parallel_size: o.SizeList = None
    enforce_eager: o.Eager = None
    enable_prefix_caching: o.Prefix = None
    load_format: o.LoadFormat = None
    seed: o.Seed = 0
    engine_arg: o.EngineArg = None

    def axes(self) -> dict[str, str]:
        """The comma lists given, by field."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k in SWEEPABLE and v is not None}

    def base(self, parallel: ParallelFlags) -> EngineConfig:
        """The settings every point shares (the swept ones at their defaults; every value within the model's limits)."""
        shared = {k: v for k, v in dataclasses.asdict(self).items() if k not in SWEEPABLE}
        return EngineFlags(**shared).to_config(parallel, axes=self.axes())


@dataclass
class SweepWorkloadFlags(WorkloadFlags):
    """`sweep`'s workload: one request count; --request-rate is a sweep axis."""
    num_prompts: o.NumPrompts = None
    request_rate: Annotated[Optional[str], Opt(help="Requests/s arriving, a sweep axis like the engine's: e.g. "
                                                    "5,20,50,inf."), o.RATES] = None


@command()
def sweep(
    *, output_dir: Annotated[o.Dir, Opt("--output-dir", help="Sweep directory (points, summary, plots).")]
    = None,
    report: Annotated[o.Dir, Opt("--report", help="Re-render DIR's tables and plots; run nothing.")] = None,
    engine: SweepEngineFlags, workload: SweepWorkloadFlags,
    target_concurrency: Annotated[o.Count, Opt(help="Smallest gmu holding N full requests?")] = None,
    timeout_per_point: Annotated[o.Seconds, Opt(help="Seconds before a hung point is killed.")] = None,
    resume: Annotated[bool, Opt("--resume/--no-resume", help="Skip points already finished in DIR.")] = True,
    retry_failed: Annotated[bool, Opt(help="With resume, run failed points again.")] = False,
    knee_tolerance: Annotated[o.Share, Opt(help="Share of best = plateau.")] = 0.05,
    calibrate: Annotated[o.File, Opt("--calibrate", help="A `run` result: every point also gets its "
                                                        "prediction from it, and the error.")] = None,
    predict_only: Annotated[bool, Opt(help="Predict every point from --calibrate; start no engine.")] = False,
    fresh_process_per_point: Annotated[bool, Opt(help="Every point in a process of its own (default: one worker "
                                                      "process runs the points, replaced after a failure).")]
    = False,
    parallel: ParallelFlags, cost: CostFlags, html: Html = None, fmt: Fmt("sweep") = "md",
) -> None:
    """Run a grid of engine settings, a fresh engine per point.

    One worker process runs the points; resumable, with a summary and plots.

    Example: offline-bench sweep --output-dir sw --gpu-memory-utilization 0.5,0.7,0.9 --max-model-len 2048,8192

    In seconds, from one run: offline-bench sweep --output-dir sw --predict-only --calibrate run.json
    --gpu-memory-utilization 0.5,0.7,0.9 --max-num-seqs 128,256

    What rate holds an SLO: offline-bench sweep --output-dir rates --dataset sharegpt prompts/sharegpt-mini.json
    --num-prompts 200 --request-rate 2,5,10,20 --goodput ttft:500 --goodput tpot:50
    """
    check_writable(html, "--html")
    check_format("sweep", fmt)
    if report:
        summary, lost = sweep_mod.written_summary(report, write_summary)
        typer.echo(render("sweep", fmt, summary))
        finish(lost + write_html(html, [Item("sweep", report, summary, Path(report).name)]))
        return
    if not output_dir:
        raise BenchError("give --output-dir DIR (or --report DIR to re-render a finished sweep)")
    check_writable(output_dir, "--output-dir", is_dir=True)
    if calibrate and not predict_only:
        # a bad --calibrate fails now, not after the sweep's engines ran
        predict_mod.Calibrated(calibrate, purpose="sweep --calibrate")
    if predict_only:
        engine, workload = _calibration_defaults(engine, workload, calibrate)
    rates = {} if workload.request_rate is None else {"request_rate": workload.request_rate}
    cfg = RunConfig(engine=engine.base(parallel),
                    workload=workload.to_config(seed=engine.seed, num_prompts=workload.num_prompts),
                    goodput_slo_ms=workload.slo(), prices=cost.to_prices())
    spec = sweep_mod.build_spec(cfg, {**engine.axes(), **rates}, timeout_per_point_s=timeout_per_point,
                                target_concurrency=target_concurrency, knee_tolerance=knee_tolerance)
    spec.calibrate, spec.predict_only, spec.fresh_process = calibrate, predict_only, fresh_process_per_point
    lost: list[Unwritten] = []  # point files that could not be written (kept in the temp directory)
    try:
        with sweep_progress(len(spec.points())) as on_point:
            sweep_mod.run_sweep(spec, output_dir, resume=resume, retry_failed=retry_failed, on_point=on_point,
                                lost=lost)
    finally:  # the plots of every point finished, however the sweep ended
        if (Path(output_dir) / "sweep.json").is_file():
            summary, summary_lost = sweep_mod.written_summary(output_dir, write_summary)
    typer.echo(render("sweep", fmt, summary))
    lost += summary_lost + write_html(html, [Item("sweep", output_dir, summary, Path(output_dir).name)])
    typer.echo(f"summary, points and plots in {output_dir}", err=True)
    finish(lost)


def _calibration_defaults(engine: SweepEngineFlags, workload: SweepWorkloadFlags,
                          calibrate: str | None) -> tuple[SweepEngineFlags, SweepWorkloadFlags]:
    """--predict-only: the calibration run's model and (unless told) its request count."""
    if workload.request_rate:
        raise BenchError("--predict-only replays a batch: it cannot sweep --request-rate; measure rates instead")
    if not calibrate:
        raise BenchError("--predict-only needs --calibrate RUN.json (a `run` result, which records its steps)")
    cal_run = predict_mod.Calibrated(calibrate, purpose="sweep --calibrate").result
    return (dataclasses.replace(engine, model=cal_run.model),  # a prediction holds for the calibration's model
            dataclasses.replace(workload, num_prompts=workload.num_prompts or cal_run.workload.num_prompts))
