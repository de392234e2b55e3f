"""Commands that measure the engine: `run` and `phases` (`sweep` and `explain-gap` have modules of their own)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Optional

import typer

from offline_bench.cli.configs import CostFlags, EngineFlags, ParallelFlags, WorkloadFlags
from offline_bench.cli.flags import Omit, command
from offline_bench.cli.options import INTS, LEVELS, OUT, Fmt, GpuName, Html, MeasureGpu, Opt, Output, PlotOut, Verbose
from offline_bench.cli.terminal import finish, print_results, run_progress, write_file, write_html
from offline_bench.core import validate as v
from offline_bench.core.config import RunConfig, parse_int_list
from offline_bench.core.environment import has_cuda
from offline_bench.core.errors import BenchError
from offline_bench.engine import probes
from offline_bench.engine.llm import Engine
from offline_bench.measure import levels as bench
from offline_bench.measure import phases as phases_mod
from offline_bench.measure.runner import preflight
from offline_bench.predict import roofline as roofline_mod
from offline_bench.report.formats import check_format, render
from offline_bench.report.plots import plot as plot_phases
from offline_bench.results.load import Item
from offline_bench.results.run import Unwritten, check_writable
from offline_bench.workloads.levels import concurrency_levels


@command()
def run(
    *, engine: EngineFlags, workload: WorkloadFlags,
    concurrency: Annotated[Optional[str], Opt("--concurrency", "--max-concurrency",
                                              help="Keep N requests in flight instead of one batch (with "
                                                   "--request-rate: at most N, as vllm bench serve's "
                                                   "--max-concurrency); a comma list runs each level in the same "
                                                   "engine."), LEVELS] = None,
    parallel: ParallelFlags, cost: CostFlags, output: Output = None, fmt: Fmt("run") = "table",
    verbose: Verbose = False,
    save_log: Annotated[Optional[str], Opt(help="Also write the engine's raw log to this file (also when the "
                                                "engine fails to start or the run is interrupted)."),
                        v.Text("engine.log")] = None,
    html: Html = None,
    step_timeline: Annotated[bool, Opt("--step-timeline/--no-step-timeline", help="Read the engine's gauges after "
                                       "every step (timeline, peak KV use, step records for predict); about 0.08 ms "
                                       "a step.")] = True,
) -> None:
    """Benchmark the engine on one workload.

    Example: offline-bench run --model preset:llama-3.1-8b --num-prompts 1000 --input-len 512 --output-len 256

    Like a client with N threads: offline-bench run --prompts prompts/seed.txt --concurrency 1,10,64
    --num-prompts 4,20,128 --output offline.json   (writes offline-c1.json, offline-c10.json, offline-c64.json)

    Like traffic: offline-bench run --request-rate 20 --burstiness 1 --num-prompts 400 --goodput ttft:500
    --goodput tpot:50

    Several rates, one engine: offline-bench run --dataset sharegpt prompts/sharegpt-mini.json --request-rate
    5,20,50 --num-prompts 200 --output rate.json   (writes rate-r5.json, rate-r20.json, rate-r50.json)
    """
    check_format("run", fmt)
    levels = concurrency_levels(concurrency, workload.num_prompts, workload.request_rate)
    ecfg = engine.to_config(parallel)
    wl = workload.to_config(seed=engine.seed, num_prompts=levels[0].num_prompts, request_rate=levels[0].request_rate)
    cfg = RunConfig(engine=ecfg, workload=wl, concurrency=levels[0].concurrency, verbose=verbose,
                    goodput_slo_ms=workload.slo(), step_timeline=step_timeline, prices=cost.to_prices())
    check_writable(output, "--output")
    check_writable(save_log, "--save-log")
    check_writable(html, "--html")
    preflight(cfg)  # every check that needs no engine, before the engine's start
    log_lost: list[Unwritten] = []  # --save-log, when it could not be written (kept in the temp directory)
    results = bench.run_levels(cfg, levels, output=output, save_log=save_log, progress=run_progress, lost=log_lost)
    # once the engine has stopped (its log capture owns the terminal); a file that could not be written is said
    # last, and the exit status is 1
    lost = print_results("run", fmt, results) + log_lost
    lost += write_html(html, [Item("run", k.path or f"run {i + 1}", k.result,
                                   Path(k.path).stem if k.path else f"run {i + 1}") for i, k in enumerate(results)])
    finish(lost)


@command()
def phases(
    *, batch_sizes: Annotated[str, Opt(help="Comma list of batch sizes."), INTS] = "1,8,32,128",
    input_len: Annotated[str, Opt(help="Comma list of prompt lengths."), v.int_list("512,2048")] = "512,2048",
    output_len: Annotated[int, Opt(help="Tokens generated in the decode-only runs."), v.positive_int("128")] = 128,
    gpu: GpuName = None, measure_gpu: MeasureGpu = False,
    engine: Annotated[EngineFlags, Omit("tokenizer", "kv_cache_dtype", "enable_prefix_caching",
                                        "pipeline_parallel_size")],
    output: Annotated[Optional[str], Opt("--output", "-o", "--output-json", help="Result JSON (mode: phases)."),
                      OUT] = None,
    plot: PlotOut = None, fmt: Fmt("phases") = "table", verbose: Verbose = False,
    parallel: Annotated[ParallelFlags, Omit("data_parallel_size")], html: Html = None,
) -> None:
    """Time prefill and decode apart, per batch size and length.

    Prefill-only and decode-only runs, each with its % of the hardware ceiling.

    Example: offline-bench phases --model preset:llama-3.1-8b --batch-sizes 1,8,32,128 --input-len 512,2048
    """
    check_format("phases", fmt)
    sizes = parse_int_list(batch_sizes, "--batch-sizes")
    lens = parse_int_list(input_len, "--input-len")
    if output_len < 2:
        raise BenchError("--output-len must be at least 2 (one prefill token, then decode)")
    ecfg = dataclasses.replace(engine, max_num_seqs=engine.max_num_seqs or max(sizes)).to_config(parallel)
    check_writable(output, "--output")
    check_writable(plot, "--plot")
    check_writable(html, "--html")
    if measure_gpu and not has_cuda():  # now, not after the engine's start
        raise BenchError("--measure-gpu needs a CUDA GPU visible to this process: leave it out here, or give --gpu "
                         "NAME for datasheet ceilings")
    spec = None if measure_gpu else roofline_mod.resolve_gpu(gpu, required=False)
    with Engine(ecfg, echo_log=verbose) as eng:
        if measure_gpu:  # on the GPU the engine holds, after its start
            spec = probes.measure_gpu()
        result = phases_mod.run_phases(eng, sizes, lens, output_len, spec, engine.seed, engine.tensor_parallel_size)
    typer.echo(render("phases", fmt, result))
    lost = write_file("result", output, result.save) + write_file("plot", plot, lambda p: plot_phases(result, p))
    lost += write_html(html, [Item("phases", output or "phases", result, Path(output).stem if output else "phases")])
    finish(lost)
