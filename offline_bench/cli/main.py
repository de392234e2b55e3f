"""Thin CLI: parse flags, build configs with keyword-only builders, call the library, print.

Every option is declared once below (shared `Annotated` aliases); a command lists the ones it takes.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from offline_bench.analysis import scaling as scaling_mod
from offline_bench.analysis.compare import Labeled, label_for, order
from offline_bench.analysis.compare import plot as compare_plot
from offline_bench.analysis.gap import load_saved_serving
from offline_bench.core.config import (
    EngineConfig,
    RunConfig,
    WorkloadConfig,
    parse_bytes,
    parse_engine_arg,
    parse_goodput,
    parse_int_list,
)
from offline_bench.core.environment import has_cuda, record_command
from offline_bench.core.errors import BenchError
from offline_bench.core.formats import check_format, formats_of, render
from offline_bench.core.procs import raise_interrupt
from offline_bench.engine import probes
from offline_bench.engine.llm import Engine, check_max_model_len
from offline_bench.measure import gap
from offline_bench.measure import levels as bench
from offline_bench.measure import phases as phases_mod
from offline_bench.measure import sweep as sweep_mod
from offline_bench.measure.runner import preflight
from offline_bench.model import presets as presets_mod
from offline_bench.predict import plan as kvplan
from offline_bench.predict import replay as predict_mod
from offline_bench.predict import roofline as roofline_mod
from offline_bench.report import html as htmlreport
from offline_bench.report import run_tables as report
from offline_bench.report.inputs import load_items
from offline_bench.report.plots import plot as plot_phases
from offline_bench.report.plots import write_summary
from offline_bench.results import startup as startup_mod
from offline_bench.results.gap import save_ladder
from offline_bench.results.importers import import_file
from offline_bench.results.load import Item
from offline_bench.results.run import RunResult, check_writable
from offline_bench.results.sweep import SWEEPABLE
from offline_bench.serving import probe as serving
from offline_bench.workloads import scenarios
from offline_bench.workloads.levels import concurrency_levels
from offline_bench.workloads.requests import check_workload

del report  # imported for its "run" renderer (formats registry)
app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Measure what vLLM's in-process engine really does. Example: offline-bench run")
Opt = typer.Option

# ---------------------------------------------------------------- options, each declared once
# Engine flags keep vLLM's own names; None means vLLM's (or the machine's) default.
Model = Annotated[str, Opt("--model", help="HF id, local path, or preset:NAME (dummy weights).")]
Tokenizer = Annotated[Optional[str], Opt(help="Tokenizer (default: the model's).")]
Gmu = Annotated[Optional[float], Opt("--gpu-memory-utilization",
                                     help="Fraction of GPU memory for vLLM (default 0.9; on the CPU build, where it "
                                          "is a share of the NUMA node's RAM, the default is a 1 GiB KV cache "
                                          "instead).")]
KvBytes = Annotated[Optional[str], Opt("--kv-cache-memory-bytes",
                                       help="KV cache size per GPU instead of a share of memory, e.g. 64MiB, 2GiB "
                                            "(vLLM then ignores --gpu-memory-utilization).")]
Mml = Annotated[Optional[int], Opt("--max-model-len", help="Context length (default: the model's).")]
MaxNumSeqs = Annotated[Optional[int], Opt(help="Most requests in one batch (vLLM default).")]
Mnbt = Annotated[Optional[int], Opt(help="Token budget per step (vLLM default).")]
Dtype = Annotated[str, Opt(help="Weights/activations dtype.")]
KvDtype = Annotated[str, Opt(help="KV cache dtype: auto, fp8, ...")]
Eager = Annotated[Optional[bool], Opt("--enforce-eager/--no-enforce-eager",
                                      help="No CUDA graphs/compile (default: GPU off, CPU on).")]
Prefix = Annotated[Optional[bool], Opt("--enable-prefix-caching/--no-enable-prefix-caching",
                                       help="Prefix caching (vLLM default: on).")]
Tp = Annotated[int, Opt("--tensor-parallel-size", "-tp", help="GPUs each layer is split over.")]
Pp = Annotated[int, Opt("--pipeline-parallel-size", "-pp", help="Pipeline stages.")]
Dp = Annotated[int, Opt("--data-parallel-size", "-dp", help="Engine replicas, each on its own GPU group.")]
LoadFormat = Annotated[Optional[str], Opt(help="auto, dummy, safetensors... (presets: dummy).")]
Seed = Annotated[int, Opt(help="Engine and workload seed.")]
EngineArg = Annotated[Optional[list[str]], Opt(help="Extra vllm.LLM argument KEY=VALUE (repeatable).")]
Backend = Annotated[Optional[str], Opt(help="mp (one host) or ray (a Ray cluster).")]
RayAddress = Annotated[Optional[str], Opt(help="Ray cluster HOST:PORT (default $RAY_ADDRESS or local).")]
CompilationConfig = Annotated[Optional[str], Opt(help="vLLM compilation_config as JSON.")]
SafeAllreduce = Annotated[bool, Opt(help="No FlashInfer mnnvl all-reduce: for hosts without NVSwitch multicast.")]
# workload
Prompts = Annotated[Optional[str], Opt("--prompts", help="Prompt file: .txt (a line each) or .jsonl.")]
Dataset = Annotated[Optional[tuple[str, str]], Opt("--dataset", help="NAME FILE: sharegpt (ShareGPT JSON: first human "
                                                                     "turn = prompt, first gpt turn's tokens = "
                                                                     "output length) or custom (vllm bench's JSONL).")]
NumPromptsList = Annotated[Optional[str], Opt("--num-prompts", help="Synthetic: how many (default 100); file: "
                                              "cycle to N. One per --concurrency level, or one for all.")]
NumPrompts = Annotated[Optional[int], Opt("--num-prompts", help="Synthetic: how many (default 100); file: cycle.")]
InputLen = Annotated[int, Opt(help="Synthetic prompt length in tokens.")]
OutputLen = Annotated[int, Opt(help="Tokens to generate (max_tokens).")]
RangeRatio = Annotated[float, Opt(help="Lengths uniform in len x [1-r, 1+r].")]
IgnoreEos = Annotated[Optional[bool], Opt("--ignore-eos/--no-ignore-eos",
                                          help="Always generate output_len (default: on for synthetic).")]
Temperature = Annotated[float, Opt(help="Sampling temperature.")]
TopP = Annotated[float, Opt(help="Nucleus sampling.")]
Detokenize = Annotated[bool, Opt("--detokenize/--no-detokenize", help="Detokenize outputs.")]
Warmup = Annotated[int, Opt(help="Untimed warm-up requests.")]
Repeats = Annotated[int, Opt(help="Timed passes (mean and 95% CI).")]
PrefixLen = Annotated[int, Opt(help="Synthetic: shared prefix tokens before each prompt's own --input-len.")]
NumPrefixes = Annotated[int, Opt(help="Synthetic: distinct shared prefixes, used in turn.")]
RequestRate = Annotated[Optional[str], Opt(help="Requests/s arriving (seeded gamma gaps, as vllm bench serve); "
                                                "default inf: all at once. A comma list (5,20,50) runs each rate.")]
Burstiness = Annotated[float, Opt(help="Gamma shape of the gaps: 1 = Poisson, < 1 burstier, > 1 more regular.")]
Goodput = Annotated[Optional[list[str]], Opt(help="SLOs in ms, NAME:MS with NAME ttft, tpot or e2e (repeatable); "
                                                  "a request is good when it meets all.")]
# output and serving
Output = Annotated[Optional[str], Opt("--output", "-o", help="Write the result JSON here (atomically).")]
Verbose = Annotated[bool, Opt("--verbose", "-v", help="Show the engine's log.")]
PlotOut = Annotated[Optional[str], Opt("--plot", help="Also write a PNG here.")]
Html = Annotated[Optional[str], Opt("--html", help="Also write a self-contained HTML report here (as `report`).")]
ApiKey = Annotated[Optional[str], Opt("--api-key", help="Bearer key (default: $OPENAI_API_KEY). Never stored.",
                                      show_default=False)]
Timeout = Annotated[float, Opt(help="Seconds to wait for a response.")]
GpuName = Annotated[Optional[str], Opt("--gpu", help="GPU from the built-in table (default: detected).")]
MeasureGpu = Annotated[bool, Opt(help="Measure bandwidth and bf16 rate on this GPU instead of the datasheet.")]
SweepList = Annotated[Optional[str], Opt(help="Comma list to sweep, or one value.")]


def Fmt(kind: str) -> object:  # noqa: N802 - reads like the other option aliases
    """--format, listing exactly what `kind`'s renderer can write."""
    return Annotated[str, Opt("--format", help=f"{', '.join(formats_of(kind))}.")]


# ---------------------------------------------------------------- keyword-only config builders


def engine_config(*, model: str, tokenizer: str | None = None, gpu_memory_utilization: float | None = None,
                  kv_cache_memory_bytes: str | None = None, max_model_len: int | None = None,
                  max_num_seqs: int | None = None, max_num_batched_tokens: int | None = None, dtype: str = "auto",
                  kv_cache_dtype: str = "auto", enforce_eager: bool | None = None,
                  enable_prefix_caching: bool | None = None, tensor_parallel_size: int = 1,
                  pipeline_parallel_size: int = 1, data_parallel_size: int = 1, load_format: str | None = None,
                  seed: int = 0, engine_arg: list[str] | None = None, distributed_executor_backend: str | None = None,
                  ray_address: str | None = None, compilation_config: str | None = None,
                  safe_allreduce: bool = False) -> EngineConfig:
    """Flags -> EngineConfig (sizes and JSON parsed here, every value validated)."""
    comp = None
    if compilation_config:
        try:
            comp = json.loads(compilation_config)
        except json.JSONDecodeError as e:
            raise BenchError(f"--compilation-config is not valid JSON ({e.msg}): e.g. "
                             '\'{"pass_config": {"fuse_allreduce_rms": false}}\'') from None
    cfg = EngineConfig(
        model=model, tokenizer=tokenizer, gpu_memory_utilization=gpu_memory_utilization,
        kv_cache_memory_bytes=parse_bytes(kv_cache_memory_bytes) if kv_cache_memory_bytes is not None else None,
        max_model_len=max_model_len, max_num_seqs=max_num_seqs, max_num_batched_tokens=max_num_batched_tokens,
        dtype=dtype, kv_cache_dtype=kv_cache_dtype, enforce_eager=enforce_eager,
        enable_prefix_caching=enable_prefix_caching, tensor_parallel_size=tensor_parallel_size,
        pipeline_parallel_size=pipeline_parallel_size, data_parallel_size=data_parallel_size,
        distributed_executor_backend=distributed_executor_backend, ray_address=ray_address,
        compilation_config=comp, safe_allreduce=safe_allreduce, load_format=load_format, seed=seed,
        engine_args=dict(parse_engine_arg(a) for a in engine_arg or []))
    cfg.validate_values()
    return cfg


def workload_config(*, prompts: str | None = None, dataset: tuple[str, str] | None = None,
                    num_prompts: int | None = None, input_len: int = 128,
                    output_len: int = 128, range_ratio: float = 0.0, seed: int = 0, ignore_eos: bool | None = None,
                    temperature: float = 1.0, top_p: float = 1.0, detokenize: bool = True, warmup: int = 4,
                    repeats: int = 1, request_rate: float | None = None, burstiness: float = 1.0,
                    prefix_len: int = 0, num_prefixes: int = 1) -> WorkloadConfig:
    """Flags -> WorkloadConfig, checked (prompt file read) before any engine starts."""
    if dataset and prompts:
        raise BenchError("give --prompts FILE or --dataset NAME FILE, not both")
    wl = WorkloadConfig(prompts_file=dataset[1] if dataset else prompts, dataset=dataset[0] if dataset else None,
                        num_prompts=num_prompts, input_len=input_len, output_len=output_len,
                        range_ratio=range_ratio, seed=seed, ignore_eos=ignore_eos, temperature=temperature,
                        top_p=top_p, detokenize=detokenize, warmup=warmup, repeats=repeats,
                        request_rate=None if request_rate is not None and request_rate == float("inf")
                        else request_rate, burstiness=burstiness, prefix_len=prefix_len, num_prefixes=num_prefixes)
    check_workload(wl)
    return wl


def _rich_progress(console_file) -> Callable[[str, int], contextlib.AbstractContextManager]:  # noqa: ANN001

    console = Console(file=console_file)

    @contextlib.contextmanager
    def factory(desc: str, total: int) -> Iterator[Callable[[int], None]]:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=True) as bar:
            task = bar.add_task(desc, total=total)
            yield lambda n: bar.advance(task, n)

    return factory


def _print_results(kind: str, fmt: str, results: list[tuple[RunResult, str | None]]) -> None:
    for result, path in results:
        typer.echo(render(kind, fmt, result))
        if path:
            typer.echo(f"result written to {path}", err=True)


# ---------------------------------------------------------------- commands


@app.command()
def run(
    model: Model = "preset:tiny-llama", tokenizer: Tokenizer = None, gpu_memory_utilization: Gmu = None,
    kv_cache_memory_bytes: KvBytes = None, max_model_len: Mml = None, max_num_seqs: MaxNumSeqs = None,
    max_num_batched_tokens: Mnbt = None, dtype: Dtype = "auto", kv_cache_dtype: KvDtype = "auto",
    enforce_eager: Eager = None, enable_prefix_caching: Prefix = None, tensor_parallel_size: Tp = 1,
    pipeline_parallel_size: Pp = 1, load_format: LoadFormat = None, seed: Seed = 0, engine_arg: EngineArg = None,
    prompts: Prompts = None, dataset: Dataset = None, num_prompts: NumPromptsList = None, input_len: InputLen = 128,
    output_len: OutputLen = 128, range_ratio: RangeRatio = 0.0, ignore_eos: IgnoreEos = None,
    temperature: Temperature = 1.0, top_p: TopP = 1.0, detokenize: Detokenize = True, warmup: Warmup = 4,
    repeats: Repeats = 1, request_rate: RequestRate = None, burstiness: Burstiness = 1.0, goodput: Goodput = None,
    prefix_len: PrefixLen = 0, num_prefixes: NumPrefixes = 1,
    concurrency: Annotated[Optional[str], Opt(help="Keep N requests in flight instead of one batch (with "
                                                   "--request-rate: at most N); a comma list runs each level in "
                                                   "the same engine.")] = None,
    data_parallel_size: Dp = 1, distributed_executor_backend: Backend = None, ray_address: RayAddress = None,
    compilation_config: CompilationConfig = None, safe_allreduce: SafeAllreduce = False, output: Output = None,
    fmt: Fmt("run") = "table", verbose: Verbose = False,
    save_log: Annotated[Optional[str], Opt(help="Also write the engine's raw log to this file (also when the "
                                                "engine fails to start or the run is interrupted).")] = None,
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
    levels = concurrency_levels(concurrency, num_prompts, request_rate)
    ecfg = engine_config(**_pick(locals(), ENGINE_FLAGS))
    wl = workload_config(**_pick(locals(), WORKLOAD_FLAGS), num_prompts=levels[0].num_prompts,
                         request_rate=levels[0].request_rate)
    cfg = RunConfig(engine=ecfg, workload=wl, concurrency=levels[0].concurrency, verbose=verbose,
                    goodput_slo_ms=parse_goodput(goodput), step_timeline=step_timeline)
    check_writable(output, "--output")
    check_writable(save_log, "--save-log")
    check_writable(html, "--html")
    preflight(cfg)  # every check that needs no engine, before the engine's start
    results = bench.run_levels(cfg, levels, output=output, save_log=save_log, progress=_rich_progress)
    _print_results("run", fmt, results)  # once the engine has stopped: its log capture owns the terminal
    _html(html, [Item("run", path or f"run {i + 1}", r, Path(path).stem if path else f"run {i + 1}")
                 for i, (r, path) in enumerate(results)])


ENGINE_FLAGS = ("model", "tokenizer", "gpu_memory_utilization", "kv_cache_memory_bytes", "max_model_len",
                "max_num_seqs", "max_num_batched_tokens", "dtype", "kv_cache_dtype", "enforce_eager",
                "enable_prefix_caching", "tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size",
                "load_format", "seed", "engine_arg", "distributed_executor_backend", "ray_address",
                "compilation_config", "safe_allreduce")
WORKLOAD_FLAGS = ("prompts", "dataset", "input_len", "output_len", "range_ratio", "seed", "ignore_eos", "temperature",
                  "top_p", "detokenize", "warmup", "repeats", "burstiness", "prefix_len", "num_prefixes")
# --request-rate is a level (run, serve-probe: a comma list runs each) or a sweep axis: commands pass it themselves


def _pick(values: dict, names: tuple[str, ...]) -> dict:
    """The flags among a command's arguments that a builder takes (commands omit the ones they lack)."""
    return {k: values[k] for k in names if k in values}


@app.command()
def sweep(
    output_dir: Annotated[Optional[str], Opt("--output-dir", help="Sweep directory (points, summary, plots).")] = None,
    report: Annotated[Optional[str], Opt("--report", help="Re-render DIR's tables and plots; run nothing.")] = None,
    model: Model = "preset:tiny-llama", gpu_memory_utilization: SweepList = None,
    kv_cache_memory_bytes: Annotated[Optional[str], Opt(help="KV cache sizes instead of gmu, e.g. 32MiB,64MiB.")]
    = None,
    max_model_len: SweepList = None, max_num_seqs: SweepList = None, max_num_batched_tokens: SweepList = None,
    kv_cache_dtype: SweepList = None, dtype: SweepList = None, tensor_parallel_size: SweepList = None,
    pipeline_parallel_size: SweepList = None, enforce_eager: Eager = None, enable_prefix_caching: Prefix = None,
    load_format: LoadFormat = None, seed: Seed = 0, engine_arg: EngineArg = None, prompts: Prompts = None,
    dataset: Dataset = None, num_prompts: NumPrompts = None, input_len: InputLen = 128, output_len: OutputLen = 128,
    range_ratio: RangeRatio = 0.0, ignore_eos: IgnoreEos = None, temperature: Temperature = 1.0, top_p: TopP = 1.0,
    detokenize: Detokenize = True, warmup: Warmup = 4, repeats: Repeats = 1, prefix_len: PrefixLen = 0,
    num_prefixes: NumPrefixes = 1, request_rate: Annotated[Optional[str], Opt(
        help="Requests/s arriving, a sweep axis like the engine's: e.g. 5,20,50,inf.")] = None,
    burstiness: Burstiness = 1.0, goodput: Goodput = None,
    target_concurrency: Annotated[Optional[int], Opt(help="Smallest gmu holding N full requests?")] = None,
    timeout_per_point: Annotated[Optional[float], Opt(help="Seconds before a hung point is killed.")] = None,
    resume: Annotated[bool, Opt("--resume/--no-resume", help="Skip points already finished in DIR.")] = True,
    retry_failed: Annotated[bool, Opt(help="With resume, run failed points again.")] = False,
    knee_tolerance: Annotated[float, Opt(help="Share of best = plateau.")] = 0.05,
    calibrate: Annotated[Optional[str], Opt("--calibrate", help="A `run` result: every point also gets its "
                                                               "prediction from it, and the error.")] = None,
    predict_only: Annotated[bool, Opt(help="Predict every point from --calibrate; start no engine.")] = False,
    fresh_process_per_point: Annotated[bool, Opt(help="Every point in a process of its own (default: one worker "
                                                      "process runs the points, replaced after a failure).")]
    = False,
    data_parallel_size: Dp = 1, distributed_executor_backend: Backend = None, ray_address: RayAddress = None,
    compilation_config: CompilationConfig = None, safe_allreduce: SafeAllreduce = False, html: Html = None,
) -> None:
    """Run a grid of engine settings (a fresh engine per point, one worker process): resumable, with summary, plots.

    Example: offline-bench sweep --output-dir sw --gpu-memory-utilization 0.5,0.7,0.9 --max-model-len 2048,8192

    In seconds, from one run: offline-bench sweep --output-dir sw --predict-only --calibrate run.json
    --gpu-memory-utilization 0.5,0.7,0.9 --max-num-seqs 128,256

    What rate holds an SLO: offline-bench sweep --output-dir rates --dataset sharegpt prompts/sharegpt-mini.json
    --num-prompts 200 --request-rate 2,5,10,20 --goodput ttft:500 --goodput tpot:50
    """
    check_writable(html, "--html")
    if report:
        summary = write_summary(report)
        typer.echo(sweep_mod.render_markdown(summary))
        _html(html, [Item("sweep", report, summary, Path(report).name)])
        return
    if not output_dir:
        raise BenchError("give --output-dir DIR (or --report DIR to re-render a finished sweep)")
    check_writable(output_dir, "--output-dir", is_dir=True)
    if calibrate and not predict_only:
        predict_mod.Calibrated(calibrate)  # a bad --calibrate fails now, not after the sweep's engines ran
    if predict_only:
        if request_rate:
            raise BenchError("--predict-only replays a batch: it cannot sweep --request-rate; measure rates instead")
        if not calibrate:
            raise BenchError("--predict-only needs --calibrate RUN.json (a `run` result, which records its steps)")
        cal_run = predict_mod.Calibrated(calibrate).result
        model = cal_run.model  # a prediction holds for the calibration's model
        num_prompts = num_prompts or cal_run.workload.num_prompts  # and, unless told, for its workload
    lists = {k: v for k, v in locals().items() if k in SWEEPABLE and v is not None}
    base = {k: v for k, v in _pick(locals(), ENGINE_FLAGS).items() if k not in SWEEPABLE}
    cfg = RunConfig(engine=engine_config(**base), workload=workload_config(**_pick(locals(), WORKLOAD_FLAGS),
                                                                           num_prompts=num_prompts),
                    goodput_slo_ms=parse_goodput(goodput))
    spec = sweep_mod.build_spec(cfg, lists, timeout_per_point_s=timeout_per_point,
                                target_concurrency=target_concurrency, knee_tolerance=knee_tolerance)
    spec.calibrate, spec.predict_only, spec.fresh_process = calibrate, predict_only, fresh_process_per_point
    try:
        sweep_mod.run_with_progress(spec, output_dir, resume=resume, retry_failed=retry_failed)
    finally:  # the plots of every point finished, however the sweep ended
        if (Path(output_dir) / "sweep.json").is_file():
            summary = write_summary(output_dir)
    typer.echo(sweep_mod.render_markdown(summary))
    _html(html, [Item("sweep", output_dir, summary, Path(output_dir).name)])
    typer.echo(f"summary, points and plots in {output_dir}", err=True)


@app.command()
def startup(
    logfile: Annotated[str, typer.Argument(help="A vLLM log file (offline or `vllm serve`), or - for stdin.")],
    fmt: Fmt("startup") = "table",
) -> None:
    """Explain a vLLM start-up log: where the GPU memory and the start-up time went.

    Example: vllm serve MODEL 2>&1 | tee vllm.log; offline-bench startup vllm.log --format md
    """
    check_format("startup", fmt)
    typer.echo(render("startup", fmt, startup_mod.read_log(logfile)))


@app.command("serve-probe")
def serve_probe(
    base_url: Annotated[str, Opt("--base-url", help="Server root, e.g. http://127.0.0.1:8000")],
    served_model_name: Annotated[str, Opt("--served-model-name", help="Model name the server answers to.")],
    api_key: ApiKey = None,
    concurrency: Annotated[str, Opt(help="Requests kept in flight; a comma list runs each.")] = "1",
    chat: Annotated[bool, Opt("--chat/--completions", help="Use /v1/chat/completions.")] = False,
    timeout: Timeout = 300.0,
    tokenizer: Annotated[Optional[str], Opt(help="Tokenizer for synthetic token-id prompts (HF id, path, "
                                                 "preset:NAME).")] = None,
    prompts: Prompts = None, dataset: Dataset = None, num_prompts: NumPromptsList = None, input_len: InputLen = 128,
    output_len: OutputLen = 128, range_ratio: RangeRatio = 0.0, seed: Seed = 0, ignore_eos: IgnoreEos = None,
    temperature: Temperature = 1.0, top_p: TopP = 1.0, warmup: Warmup = 4, prefix_len: PrefixLen = 0,
    num_prefixes: NumPrefixes = 1, request_rate: RequestRate = None, burstiness: Burstiness = 1.0,
    goodput: Goodput = None,
    client_processes: Annotated[Optional[int], Opt(help="Processes sending the requests (default: 1, or up to 8 "
                                                        "for --request-rate and over 32 in flight).")] = None,
    scenario: Annotated[Optional[str], Opt(help="A named stress test instead of the workload flags: seed-single "
                                                "(one chat stream of the seed's first prompt, max_tokens 512, "
                                                "temperature 0.7) or seed-10 (10 concurrent streams of the "
                                                "second, temperature 0.8).")] = None,
    output: Annotated[Optional[str], Opt("--output", "-o", help="JSON file; with several levels, '-cN' (or "
                                                                 "'-rR') is added before .json.")] = None,
    fmt: Fmt("run") = "table",
) -> None:
    """Measure a running OpenAI-compatible server the way `run` measures the engine (streaming, exact usage), with
    the server's own state (KV use, running/waiting, preemptions, prefix-cache hits) sampled from its /metrics.

    With --request-rate the requests follow the same seeded schedule as `run --request-rate` (--concurrency then
    caps requests in flight: give a cap as large as you allow, e.g. the number of prompts).

    Example: offline-bench serve-probe --base-url http://127.0.0.1:8000 --served-model-name preset:tiny-llama
    --tokenizer preset:tiny-llama --concurrency 1,10,64 --num-prompts 64 --output serving.json

    The seed's stress test: offline-bench serve-probe --base-url http://127.0.0.1:8000 --served-model-name gpt-4o
    --api-key sk-123456 --scenario seed-10 --warmup 0
    """
    check_format("run", fmt)
    if scenario:
        _probe_scenario(scenario, base_url, served_model_name, api_key, timeout, warmup, seed, output, fmt)
        return
    levels = concurrency_levels(concurrency, num_prompts, request_rate)
    wl = workload_config(**_pick(locals(), WORKLOAD_FLAGS), num_prompts=levels[0].num_prompts,
                         request_rate=levels[0].request_rate)
    cfg = serving.ProbeConfig(base_url=base_url, served_model_name=served_model_name,
                              api_key=serving.api_key_from_env(api_key), chat=chat, timeout_s=timeout, workload=wl,
                              goodput_slo_ms=parse_goodput(goodput), client_processes=client_processes)
    cfg.check()
    check_writable(output, "--output")
    _print_results("run", fmt, serving.probe_levels(cfg, levels, tokenizer, output))


def _probe_scenario(name: str, base_url: str, served_model_name: str, api_key: str | None, timeout: float,
                    warmup: int, seed: int, output: str | None, fmt: str) -> None:
    """serve-probe --scenario: the named stress test as chat streams; the result, then the seed's own table."""
    wl, warm, timed = scenarios.scenario_workload(name, warmup, seed)
    cfg = serving.ProbeConfig(base_url=base_url, served_model_name=served_model_name,
                              api_key=serving.api_key_from_env(api_key), chat=True, timeout_s=timeout, workload=wl)
    cfg.check()
    check_writable(output, "--output")
    result = serving.probe(cfg, len(timed), requests=(warm, timed))
    if output:
        result.save(output)
    _print_results("run", fmt, [(result, output)])
    typer.echo(render("scenario", "md" if fmt == "md" else "table", result))


@app.command("serve-preset", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def serve_preset(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Preset name, e.g. tiny-llama.")],
    port: Annotated[int, Opt(help="Port to listen on.")] = 8000,
    host: Annotated[str, Opt(help="Address to bind.")] = "127.0.0.1",
    max_model_len: Mml = None, gpu_memory_utilization: Gmu = None, kv_cache_memory_bytes: KvBytes = None,
    api_key: Annotated[Optional[str], Opt("--api-key", help="Require this key from clients.",
                                          show_default=False)] = None,
    print_command: Annotated[bool, Opt(help="Print the vLLM command instead of running it.")] = False,
) -> None:
    """Start `vllm serve` on a preset (dummy weights), served as 'preset:NAME'; runs until stopped. Any further
    flags go to `vllm serve` as given (a later --served-model-name replaces the preset's name). On a loopback
    address vLLM's dev-mode endpoints are on (VLLM_SERVER_DEV_MODE=1: serve-probe reads the scheduler limits from
    /server_info).

    Example: offline-bench serve-preset tiny-llama --port 8011

    As the seed served its model: offline-bench serve-preset llama-3.1-8b --api-key sk-123456
    --served-model-name gpt-4o
    """
    ecfg = engine_config(model=f"preset:{name}", max_model_len=max_model_len,
                         gpu_memory_utilization=gpu_memory_utilization, kv_cache_memory_bytes=kv_cache_memory_bytes)
    cmd = serving.serve_preset_command(name, port, host, max_model_len=max_model_len,
                                       gpu_memory_utilization=gpu_memory_utilization, api_key=api_key,
                                       kv_cache_memory_bytes=ecfg.kv_cache_memory_bytes, extra=list(ctx.args))
    if print_command:
        typer.echo(" ".join("<key>" if api_key and c == api_key else c for c in cmd))
        return
    sys.stdout.flush()
    os.execve(cmd[0], cmd, serving.serve_env(host))


@app.command()
def compare(
    results: Annotated[list[str], typer.Argument(help="Result JSON files (run, serve-probe, import).")],
    baseline: Annotated[Optional[str], Opt(help="The run ratios are taken against (default: the first).")] = None,
    fmt: Fmt("compare") = "table", plot: PlotOut = None, html: Html = None,
) -> None:
    """Put runs side by side (metrics x runs, plus ratios to the baseline) and warn about every difference.

    Example: offline-bench compare offline-c10.json serving-c10.json --baseline offline-c10.json --format md
    """
    check_format("compare", fmt)
    check_writable(plot, "--plot")
    check_writable(html, "--html")
    if baseline and baseline not in results:
        raise BenchError(f"--baseline {baseline} is not one of the compared files")
    runs = [Labeled(label_for(p, r), r) for p, r in ((p, RunResult.load(p)) for p in results)]
    base = runs[results.index(baseline) if baseline else 0]
    typer.echo(render("compare", fmt, order(runs), base))
    if plot:
        compare_plot(order(runs), plot)
        typer.echo(f"plot written to {plot}", err=True)
    _html(html, [Item("run", p, r.result, Path(p).stem) for p, r in zip(results, runs)])


@app.command()
def scaling(
    results: Annotated[list[str], typer.Argument(help="Offline run results and phases results (JSON).")],
    baseline: Annotated[Optional[str], Opt(help="The run efficiencies are taken against (default: the run on "
                                                "the fewest GPUs).")] = None,
    batch_sizes: Annotated[str, Opt(help="Decode batch sizes to show from phases results.")] = "1",
    fmt: Fmt("scaling") = "table",
) -> None:
    """What more GPUs bought: runs of one workload on different layouts (TP x PP x DP) with output tokens/s per
    GPU and scaling efficiency against a baseline, and phases' decode step against the TP group's floor (the gap,
    charged to the all-reduces as an upper bound).

    Example: offline-bench scaling tp1.json tp2.json dp2.json phases-tp2.json phases-tp4.json --format md
    """
    check_format("scaling", fmt)
    sizes = tuple(parse_int_list(batch_sizes, "--batch-sizes"))
    typer.echo(render("scaling", fmt, scaling_mod.scaling_report(load_items(results), baseline, sizes)))


@app.command("import")
def import_results(
    source: Annotated[str, typer.Argument(help="`vllm bench serve --save-result` JSON, or hand-entered "
                                               "YAML/JSON figures.")],
    output_dir: Annotated[str, Opt("--output-dir", help="Where the converted results go.")] = ".",
) -> None:
    """Convert serving figures from elsewhere into this tool's result schema (unknowns stay unknown).

    Example: offline-bench import report.yaml --output-dir imported/
    """
    check_writable(output_dir, "--output-dir", is_dir=True)
    for path in import_file(source, output_dir):
        typer.echo(str(path))


@app.command("explain-gap")
def explain_gap_cmd(
    base_url: Annotated[Optional[str], Opt("--base-url", help="Server root, e.g. http://127.0.0.1:8000")] = None,
    served_model_name: Annotated[Optional[str], Opt("--served-model-name")] = None,
    serving_result: Annotated[Optional[list[str]], Opt(
        "--serving-result", help="A saved serve-probe result of this workload, one per level (repeatable): for a "
                                 "server that had to be stopped to free the GPU.")] = None,
    api_key: ApiKey = None,
    concurrency: Annotated[str, Opt(help="Requests in flight, for the serving run and the last offline step; a "
                                         "comma list explains each level.")] = "10",
    timeout: Timeout = 300.0, model: Model = "preset:tiny-llama", gpu_memory_utilization: Gmu = None,
    kv_cache_memory_bytes: KvBytes = None, max_model_len: Mml = None, max_num_seqs: MaxNumSeqs = None,
    max_num_batched_tokens: Mnbt = None, enable_prefix_caching: Prefix = None, engine_arg: EngineArg = None,
    prompts: Prompts = None, dataset: Dataset = None, num_prompts: NumPromptsList = None, input_len: InputLen = 128,
    output_len: OutputLen = 128, seed: Seed = 0, ignore_eos: IgnoreEos = None, temperature: Temperature = 1.0,
    top_p: TopP = 1.0, warmup: Warmup = 4, prefix_len: PrefixLen = 0, num_prefixes: NumPrefixes = 1,
    request_rate: Annotated[Optional[float], Opt(help="Requests/s of the serving run and the last offline step "
                                                      "(seeded gamma gaps; default: all at once).")] = None,
    burstiness: Burstiness = 1.0,
    output: Annotated[Optional[str], Opt("--output", "-o", help="Write the ladder (JSON) here.")] = None,
    fmt: Fmt("gap") = "table", verbose: Verbose = False, html: Html = None,
) -> None:
    """Measure the server, then offline runs that switch one condition at a time toward it; attribute the gap.

    Example: offline-bench explain-gap --base-url http://127.0.0.1:8011 --served-model-name preset:tiny-llama
    --model preset:tiny-llama --concurrency 4 --num-prompts 32

    Server and engine on one GPU: serve-probe first (--output s.json), stop the server, then
    offline-bench explain-gap --serving-result s-c10.json --serving-result s-c64.json --concurrency 10,64 ...
    """
    check_format("gap", fmt)
    check_writable(output, "--output")
    check_writable(html, "--html")
    levels = [(c or 1, n) for c, n, _ in concurrency_levels(concurrency, num_prompts)]
    wl = workload_config(**_pick(locals(), WORKLOAD_FLAGS), num_prompts=levels[0][1], request_rate=request_rate)
    ecfg = engine_config(**_pick(locals(), ENGINE_FLAGS))
    if base_url:
        serving.check_base_url(base_url)
    saved = load_saved_serving(serving_result or [], levels, wl)
    missing = [c for c, _ in levels if c not in saved]
    if missing and not (base_url and served_model_name):
        raise BenchError(f"concurrency {','.join(map(str, missing))} has no --serving-result: pass --base-url and "
                         "--served-model-name to measure the server, or a saved result for each level")
    url = base_url or (next(iter(saved.values())).endpoint or "saved result").split("/v1/")[0]
    cfg = serving.ProbeConfig(base_url=url, served_model_name=served_model_name or "",
                              api_key=serving.api_key_from_env(api_key), timeout_s=timeout, workload=wl)
    user_set = {k for k, v in (("max_num_seqs", max_num_seqs), ("max_num_batched_tokens", max_num_batched_tokens))
                if v is not None}
    reps, runs = gap.explain_gap(cfg, ecfg, levels, tokenizer=model, serving=saved, echo_log=verbose,
                                 user_set=user_set)
    typer.echo(render("gap", fmt, reps))
    if output:
        save_ladder(output, reps, runs)
        typer.echo(f"ladder written to {output}", err=True)
    _html(html, [Item("gap", output or "explain-gap", (reps, runs), "explain-gap")]
          + [Item("run", f"{c}-{i}", r, f"c{c} step {i + 1}") for c, steps in runs.items()
             for i, (_, r) in enumerate(steps)])


Calibrate = Annotated[Optional[str], Opt("--calibrate", help="A `run` / sweep-point JSON or a raw vLLM start-up "
                                                             "log: its measured terms replace the model's.")]


@app.command()
def plan(
    model: Model = "preset:llama-3.1-8b",
    gpu: Annotated[Optional[str], Opt("--gpu", help="GPU from the built-in table (default: this machine's device; "
                                                   "on a CPU machine the CPU build).")] = None,
    gpu_memory_gib: Annotated[Optional[float], Opt(help="Device memory as torch reports it (overrides --gpu).")]
    = None,
    gpu_memory_utilization: SweepList = None,
    kv_cache_memory_bytes: Annotated[Optional[str], Opt(help="KV cache sizes instead of gmu, e.g. 2GiB,4GiB.")]
    = None,
    max_model_len: SweepList = None, kv_cache_dtype: SweepList = None, max_num_batched_tokens: SweepList = None,
    max_num_seqs: SweepList = None, tensor_parallel_size: SweepList = None,
    block_size: Annotated[Optional[str], Opt(help="KV block sizes (default: vLLM's, 16 on GPU, 128 on CPU).")]
    = None,
    calibrate: Calibrate = None, fmt: Fmt("plan") = "table",
) -> None:
    """KV cache capacity and max concurrency for every point of a grid, without starting an engine.

    Example: offline-bench plan --model preset:llama-3.1-8b --gpu h100-sxm --gpu-memory-utilization 0.5,0.8,0.9
    --max-model-len 4096,16384 --kv-cache-dtype auto,fp8
    """
    check_format("plan", fmt)
    resolved = presets_mod.resolve_model(model)
    if resolved.info is None:
        raise BenchError(f"no config.json readable for '{model}' without network: pass a local path or a preset")
    info = resolved.info
    kvplan.check_supported(info, resolved.config)
    lists = {k: sweep_mod.parse_list(k, v) for k, v in locals().items()
             if k in ("gpu_memory_utilization", "kv_cache_memory_bytes", "max_model_len", "kv_cache_dtype",
                      "max_num_batched_tokens", "max_num_seqs", "tensor_parallel_size") and v is not None}
    if block_size is not None:
        lists["block_size"] = parse_int_list(block_size, "--block-size")
    if "gpu_memory_utilization" in lists and "kv_cache_memory_bytes" in lists:
        raise BenchError("give --gpu-memory-utilization or --kv-cache-memory-bytes, not both")
    lists.setdefault("max_model_len", [info.max_position_embeddings or 4096])
    for p in kvplan.grid(lists):  # the checks a run would make, on every point
        EngineConfig(model=model, **{k: v for k, v in p.items() if k != "block_size"}).validate_values()
        check_max_model_len(EngineConfig(model=model, max_model_len=p["max_model_len"]), info, resolved.config)
    device, total, _source = kvplan.target_device(gpu, gpu_memory_gib, probes.visible_gpu_memory)
    calib = kvplan.load_calibration(calibrate, info) if calibrate else None
    if calib is not None and calib.model not in (None, model):
        raise BenchError(f"--calibrate {calibrate} is a run of {calib.model}: pass --model {calib.model}, or a "
                         "calibration run of this model")
    if calib is not None and gpu is None and gpu_memory_gib is None:
        device, total = calib.device, calib.total_gib  # the calibration run's device, unless another is named
    rows = kvplan.plan_rows(info, kvplan.grid(lists), device, total, calib)
    typer.echo(render("plan", fmt, rows))


@app.command()
def predict(
    from_: Annotated[str, Opt("--from", help="A `run` result (it records every engine step) to calibrate on.")],
    gpu_memory_utilization: Gmu = None, kv_cache_memory_bytes: KvBytes = None, max_model_len: Mml = None,
    max_num_seqs: MaxNumSeqs = None, max_num_batched_tokens: Mnbt = None,
    kv_cache_dtype: Annotated[Optional[str], Opt(help="KV cache dtype: auto, fp8 (default: the run's).")] = None,
    num_prompts: Annotated[Optional[int], Opt(help="Requests (default: the run's, cycled).")] = None,
    input_len: Annotated[Optional[int], Opt(help="Prompt length of every request (default: the run's).")] = None,
    output_len: Annotated[Optional[int], Opt(help="Output length of every request (default: the run's).")] = None,
    concurrency: Annotated[Optional[int], Opt(help="Keep N requests in flight (default: the run's).")] = None,
    output: Output = None, fmt: Fmt("run") = "table",
) -> None:
    """Throughput, latency and preemptions at other engine settings, predicted from one measured run.

    Example: offline-bench predict --from run.json --gpu-memory-utilization 0.6 --max-num-seqs 128
    """
    check_format("run", fmt)
    check_writable(output, "--output")
    cal = predict_mod.Calibrated(from_)
    overrides = {"gpu_memory_utilization": gpu_memory_utilization, "max_model_len": max_model_len,
                 "kv_cache_memory_bytes": parse_bytes(kv_cache_memory_bytes) if kv_cache_memory_bytes else None,
                 "max_num_seqs": max_num_seqs, "max_num_batched_tokens": max_num_batched_tokens,
                 "kv_cache_dtype": kv_cache_dtype}
    EngineConfig(model=cal.result.model, **{k: v for k, v in overrides.items() if v is not None}).validate_values()
    result = predict_mod.predict(cal, overrides, num_prompts, input_len, output_len, concurrency)
    if output:
        result.save(output)
    _print_results("run", fmt, [(result, output)])


@app.command("roofline")
def roofline_cmd(
    model: Model = "preset:llama-3.1-8b", gpu: GpuName = None, measure_gpu: MeasureGpu = False,
    batch_sizes: Annotated[str, Opt(help="Comma list of decode batch sizes.")] = "1,8,32,128",
    context: Annotated[int, Opt(help="Tokens of context per request (KV read per step).")] = 1024,
    num_gpus: Annotated[int, Opt(help="GPUs of a tensor-parallel group (aggregate bandwidth and FLOP/s).")] = 1,
    kv_cache_dtype: KvDtype = "auto", fmt: Fmt("roofline") = "table",
) -> None:
    """Print the hardware ceilings for a model on a GPU, without running the engine.

    Example: offline-bench roofline --model preset:llama-3.1-8b --gpu h100-sxm --batch-sizes 1,32,256
    """
    check_format("roofline", fmt)
    sizes = parse_int_list(batch_sizes, "--batch-sizes")
    resolved = presets_mod.resolve_model(model)
    if resolved.info is None:
        raise BenchError(f"no config.json readable for '{model}' without network: pass a local path or a preset")
    spec = probes.measure_gpu() if measure_gpu else roofline_mod.resolve_gpu(gpu)
    r = roofline_mod.roofline(model, resolved.info, spec, sizes, context, num_gpus, kv_dtype=kv_cache_dtype)
    typer.echo(render("roofline", fmt, r))


@app.command()
def phases(
    batch_sizes: Annotated[str, Opt(help="Comma list of batch sizes.")] = "1,8,32,128",
    input_len: Annotated[str, Opt(help="Comma list of prompt lengths.")] = "512,2048",
    output_len: Annotated[int, Opt(help="Tokens generated in the decode-only runs.")] = 128,
    gpu: GpuName = None, measure_gpu: MeasureGpu = False, model: Model = "preset:tiny-llama",
    gpu_memory_utilization: Gmu = None, kv_cache_memory_bytes: KvBytes = None, max_model_len: Mml = None,
    max_num_seqs: MaxNumSeqs = None, max_num_batched_tokens: Mnbt = None, dtype: Dtype = "auto",
    enforce_eager: Eager = None, tensor_parallel_size: Tp = 1, load_format: LoadFormat = None, seed: Seed = 0,
    engine_arg: EngineArg = None,
    output: Annotated[Optional[str], Opt("--output", "-o", help="Result JSON (mode: phases).")] = None,
    plot: PlotOut = None, fmt: Fmt("phases") = "table", verbose: Verbose = False,
    distributed_executor_backend: Backend = None, ray_address: RayAddress = None,
    compilation_config: CompilationConfig = None, safe_allreduce: SafeAllreduce = False, html: Html = None,
) -> None:
    """Prefill-only and decode-only runs per batch size and prompt length, with % of the hardware ceiling.

    Example: offline-bench phases --model preset:llama-3.1-8b --batch-sizes 1,8,32,128 --input-len 512,2048
    """
    check_format("phases", fmt)
    sizes = parse_int_list(batch_sizes, "--batch-sizes")
    lens = parse_int_list(input_len, "--input-len")
    if output_len < 2:
        raise BenchError("--output-len must be at least 2 (one prefill token, then decode)")
    flags = {**_pick(locals(), ENGINE_FLAGS), "max_num_seqs": max_num_seqs or max(sizes)}
    ecfg = engine_config(**flags)
    check_writable(output, "--output")
    check_writable(plot, "--plot")
    check_writable(html, "--html")
    if measure_gpu and not has_cuda():  # now, not after the engine's start
        raise BenchError("--measure-gpu needs a CUDA GPU visible to this process: leave it out here, or give --gpu "
                         "NAME for datasheet ceilings")
    spec = None if measure_gpu else roofline_mod.resolve_gpu(gpu, required=False)
    with Engine(ecfg, echo_log=verbose) as engine:
        if measure_gpu:  # on the GPU the engine holds, after its start
            spec = probes.measure_gpu()
        result = phases_mod.run_phases(engine, sizes, lens, output_len, spec, seed, tensor_parallel_size)
    typer.echo(render("phases", fmt, result))
    if output:
        result.save(output)
        typer.echo(f"result written to {output}", err=True)
    if plot:
        plot_phases(result, plot)
        typer.echo(f"plot written to {plot}", err=True)
    _html(html, [Item("phases", output or "phases", result, Path(output).stem if output else "phases")])


def _html(path: str | None, items: list[Item]) -> None:
    if path:
        htmlreport.write_items(items, path)
        typer.echo(f"HTML report written to {path}", err=True)


@app.command("report")
def report_cmd(
    inputs: Annotated[list[str], typer.Argument(help="Result files (run, serve-probe, import, phases, explain-gap, "
                                                     "startup JSON or vLLM logs, plan JSON) and directories of them "
                                                     "(a sweep's --output-dir is one sweep).")],
    output: Annotated[str, Opt("--output", "-o", help="The HTML file to write (one self-contained page).")],
    title: Annotated[Optional[str], Opt(help="Page title.")] = None,
) -> None:
    """One self-contained HTML page of every result given, grouped by kind: open it in a browser, send it, attach
    it to an issue (no network needed to view it).

    Example: offline-bench report docs/results/h100-run docs/results/h100-sweep docs/results/h100-phases
    --output report.html
    """
    check_writable(output, "--output")
    path = htmlreport.write_report(inputs, output, title)
    typer.echo(f"HTML report written to {path} ({path.stat().st_size / 2**20:.2f} MiB)", err=True)


@app.command()
def presets(fmt: Fmt("presets") = "table") -> None:
    """List the built-in models (shipped configs, dummy weights, self-made tokenizers).

    Example: offline-bench presets --format md
    """
    typer.echo(render("presets", fmt, presets_mod.preset_rows()))


# ---------------------------------------------------------------- entry point


def _click_exceptions():  # noqa: ANN202 - the click module typer really uses
    """typer >= 0.24 carries its own copy of click (typer._click); older releases use the click package."""
    try:
        return importlib.import_module("typer._click.exceptions")
    except ImportError:
        return importlib.import_module("click.exceptions")


INTERRUPTED = "interrupted (results already written are kept; a sweep resumes where it stopped)"


def run_app(args: list[str] | None = None) -> int:
    """Run the CLI and return its exit status: 0, 2 for bad input or usage (one line, or typer's usage
    message), 130 on Ctrl-C."""
    click_exc = _click_exceptions()
    aborts = (KeyboardInterrupt, typer.Abort, getattr(click_exc, "Abort", typer.Abort))
    record_command(sys.argv[1:] if args is None else list(args))
    try:
        rv = app(args=args, prog_name="offline-bench", standalone_mode=False)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except click_exc.ClickException as e:  # usage errors: unknown option or command, bad value, missing argument
        e.show()
        return e.exit_code
    except aborts:
        rv = 130
    except typer.Exit as e:  # older typer raises it instead of returning the status
        rv = e.exit_code
    if rv == 130:  # typer turns Ctrl-C into a returned 130 in this mode
        print(INTERRUPTED, file=sys.stderr)
    return rv if isinstance(rv, int) else 0


def main() -> None:
    # SIGTERM (`timeout`, a scheduler's limit) unwinds like Ctrl-C: the engine is shut down, --save-log written
    signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        sys.exit(run_app())
    except KeyboardInterrupt:  # Ctrl-C outside the command itself (while importing, say)
        print(INTERRUPTED, file=sys.stderr)
        sys.exit(130)
