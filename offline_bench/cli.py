"""Thin CLI: build a config from flags and call the library."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Annotated, Optional

import typer

from offline_bench.config import EngineConfig, RunConfig, WorkloadConfig, parse_bytes, parse_engine_arg
from offline_bench.errors import BenchError
from offline_bench.schema import check_writable

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Measure what vLLM's in-process engine really does. Example: offline-bench run")

Opt = typer.Option
# Engine flags keep vLLM's own names; None means vLLM's (or the machine's) default.
ModelOpt = Annotated[str, Opt("--model", help="HF id, local path, or preset:NAME (dummy weights).")]
GmuOpt = Annotated[Optional[float], Opt("--gpu-memory-utilization",
                                        help="Fraction of GPU memory for vLLM (default 0.9; on the CPU build, "
                                             "where it is a share of the NUMA node's RAM, the default is a 1 GiB "
                                             "KV cache instead).")]
MmlOpt = Annotated[Optional[int], Opt("--max-model-len", help="Context length (default: the model's).")]
KvBytesOpt = Annotated[Optional[str], Opt("--kv-cache-memory-bytes",
                                          help="KV cache size per GPU instead of a share of memory, e.g. 64MiB, "
                                               "2GiB (vLLM then ignores --gpu-memory-utilization).")]


def engine_config(model: str, tokenizer: str | None, gmu: float | None, mml: int | None, max_num_seqs: int | None,
                  mnbt: int | None, dtype: str, kv_cache_dtype: str, enforce_eager: bool | None,
                  prefix: bool | None, tp: int, pp: int, load_format: str | None, seed: int,
                  engine_arg: list[str] | None, *, kv_bytes: str | None = None) -> EngineConfig:
    extra = dict(parse_engine_arg(a) for a in engine_arg or [])
    return EngineConfig(model=model, tokenizer=tokenizer, gpu_memory_utilization=gmu, max_model_len=mml,
                        kv_cache_memory_bytes=parse_bytes(kv_bytes) if kv_bytes is not None else None,
                        max_num_seqs=max_num_seqs, max_num_batched_tokens=mnbt, dtype=dtype,
                        kv_cache_dtype=kv_cache_dtype, enforce_eager=enforce_eager, enable_prefix_caching=prefix,
                        tensor_parallel_size=tp, pipeline_parallel_size=pp, load_format=load_format, seed=seed,
                        engine_args=extra)


def apply_parallel(ecfg: EngineConfig, dp: int, backend: str | None, ray_address: str | None,
                   compilation_config: str | None, safe_allreduce: bool) -> None:
    import json

    ecfg.data_parallel_size = dp
    ecfg.distributed_executor_backend = backend
    ecfg.ray_address = ray_address
    ecfg.safe_allreduce = safe_allreduce
    if compilation_config:
        try:
            ecfg.compilation_config = json.loads(compilation_config)
        except json.JSONDecodeError as e:
            raise BenchError(f"--compilation-config is not valid JSON ({e.msg}): e.g. "
                             '\'{"pass_config": {"fuse_allreduce_rms": false}}\'') from None


def concurrency_levels(concurrency: str | None, num_prompts: str | None) -> list[tuple[int | None, int | None]]:
    """--concurrency 1,10,64 with --num-prompts 4,20,128 (one count per level) or one count for all."""
    levels: list[int | None] = [None]
    if concurrency is not None:
        try:
            levels = [int(c) for c in concurrency.split(",") if c.strip()]
        except ValueError:
            levels = []
        if not levels or min(levels) < 1:
            raise BenchError(f"--concurrency takes positive integers, e.g. 1,10,64 (got '{concurrency}')")
    counts: list[int | None] = [None] * len(levels)
    if num_prompts is not None:
        try:
            counts = [int(n) for n in num_prompts.split(",") if n.strip()]
        except ValueError:
            counts = []
        if len(counts) == 1:
            counts *= len(levels)
        if len(counts) != len(levels):
            raise BenchError(f"--num-prompts takes one number or one per --concurrency level ({len(levels)}), "
                             f"got '{num_prompts}'")
    return list(zip(levels, counts))


def level_path(output: str, level: int | None, several: bool) -> str:
    """result.json -> result-c10.json when one command writes several concurrency levels."""
    if not several or level is None:
        return output
    return (output[:-5] if output.endswith(".json") else output) + f"-c{level}.json"


def _rich_progress(console_file) -> Callable[[str, int], contextlib.AbstractContextManager]:  # noqa: ANN001
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(file=console_file)

    @contextlib.contextmanager
    def factory(desc: str, total: int) -> Iterator[Callable[[int], None]]:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=True) as bar:
            task = bar.add_task(desc, total=total)
            yield lambda n: bar.advance(task, n)

    return factory


@app.command()
def run(
    model: ModelOpt = "preset:tiny-llama",
    tokenizer: Annotated[Optional[str], Opt(help="Tokenizer (default: the model's).")] = None,
    gpu_memory_utilization: GmuOpt = None,
    kv_cache_memory_bytes: KvBytesOpt = None,
    max_model_len: MmlOpt = None,
    max_num_seqs: Annotated[Optional[int], Opt(help="Most requests in one batch (vLLM default).")] = None,
    max_num_batched_tokens: Annotated[Optional[int], Opt(help="Token budget per step (vLLM default).")] = None,
    dtype: Annotated[str, Opt(help="Weights/activations dtype.")] = "auto",
    kv_cache_dtype: Annotated[str, Opt(help="KV cache dtype: auto, fp8, ...")] = "auto",
    enforce_eager: Annotated[Optional[bool], Opt("--enforce-eager/--no-enforce-eager",
                                                 help="No CUDA graphs/compile (default: GPU off, CPU on).")] = None,
    enable_prefix_caching: Annotated[Optional[bool], Opt("--enable-prefix-caching/--no-enable-prefix-caching",
                                                         help="Prefix caching (vLLM default: on).")] = None,
    tensor_parallel_size: Annotated[int, Opt("--tensor-parallel-size", "-tp")] = 1,
    pipeline_parallel_size: Annotated[int, Opt("--pipeline-parallel-size", "-pp")] = 1,
    load_format: Annotated[Optional[str], Opt(help="auto, dummy, safetensors... (presets: dummy).")] = None,
    seed: Annotated[int, Opt(help="Engine and workload seed.")] = 0,
    engine_arg: Annotated[Optional[list[str]], Opt(help="Extra vllm.LLM argument KEY=VALUE (repeatable).")] = None,
    prompts: Annotated[Optional[str], Opt("--prompts", help="Prompt file: .txt (a line each) or .jsonl.")] = None,
    num_prompts: Annotated[Optional[str], Opt(help="Synthetic: how many (default 100); file: cycle to N. One "
                                                   "per --concurrency level, or one for all.")] = None,
    input_len: Annotated[int, Opt(help="Synthetic prompt length in tokens.")] = 128,
    output_len: Annotated[int, Opt(help="Tokens to generate (max_tokens).")] = 128,
    range_ratio: Annotated[float, Opt(help="Lengths uniform in len x [1-r, 1+r].")] = 0.0,
    ignore_eos: Annotated[Optional[bool], Opt("--ignore-eos/--no-ignore-eos",
                                              help="Always generate output_len (default: on for synthetic).")] = None,
    temperature: Annotated[float, Opt(help="Sampling temperature.")] = 1.0,
    top_p: Annotated[float, Opt(help="Nucleus sampling.")] = 1.0,
    detokenize: Annotated[bool, Opt("--detokenize/--no-detokenize", help="Detokenize outputs.")] = True,
    warmup: Annotated[int, Opt(help="Untimed warm-up requests.")] = 4,
    repeats: Annotated[int, Opt(help="Timed passes (mean and 95% CI).")] = 1,
    concurrency: Annotated[Optional[str], Opt(help="Keep N requests in flight instead of one batch; a comma "
                                                   "list runs each level in the same engine.")] = None,
    data_parallel_size: Annotated[int, Opt("--data-parallel-size", "-dp",
                                           help="Engine replicas, each on its own GPU group.")] = 1,
    distributed_executor_backend: Annotated[Optional[str], Opt(help="mp (one host) or ray (a Ray cluster).")] = None,
    ray_address: Annotated[Optional[str], Opt(help="Ray cluster HOST:PORT (default $RAY_ADDRESS or local).")] = None,
    compilation_config: Annotated[Optional[str], Opt(help="vLLM compilation_config as JSON.")] = None,
    safe_allreduce: Annotated[bool, Opt(help="No FlashInfer mnnvl all-reduce: for hosts without NVSwitch "
                                             "multicast.")] = False,
    output: Annotated[Optional[str], Opt("--output", "-o", help="Write the result JSON here (atomically).")] = None,
    fmt: Annotated[str, Opt("--format", help="table, md, csv or json.")] = "table",
    verbose: Annotated[bool, Opt("--verbose", "-v", help="Show the engine's log.")] = False,
    save_log: Annotated[Optional[str], Opt(help="Also write the engine's raw log to this file.")] = None,
) -> None:
    """Benchmark the engine on one workload.

    Example: offline-bench run --model preset:llama-3.1-8b --num-prompts 1000 --input-len 512 --output-len 256

    Like a client with N threads: offline-bench run --prompts prompts/seed.txt --concurrency 1,10,64
    --num-prompts 4,20,128 --output offline.json   (writes offline-c1.json, offline-c10.json, offline-c64.json)
    """
    from offline_bench.report import FORMATS, render
    from offline_bench.runner import preflight, run_benchmark
    from offline_bench.schema import RunResult

    if fmt not in FORMATS:
        raise BenchError(f"--format {fmt} is not one of {', '.join(FORMATS)}")
    levels = concurrency_levels(concurrency, num_prompts)
    cfg = RunConfig(
        engine=engine_config(model, tokenizer, gpu_memory_utilization, max_model_len, max_num_seqs,
                             max_num_batched_tokens, dtype, kv_cache_dtype, enforce_eager, enable_prefix_caching,
                             tensor_parallel_size, pipeline_parallel_size, load_format, seed, engine_arg,
                             kv_bytes=kv_cache_memory_bytes),
        workload=WorkloadConfig(prompts_file=prompts, num_prompts=levels[0][1], input_len=input_len,
                                output_len=output_len, range_ratio=range_ratio, seed=seed, ignore_eos=ignore_eos,
                                temperature=temperature, top_p=top_p, detokenize=detokenize, warmup=warmup,
                                repeats=repeats),
        concurrency=levels[0][0], verbose=verbose)
    apply_parallel(cfg.engine, data_parallel_size, distributed_executor_backend, ray_address, compilation_config,
                   safe_allreduce)
    check_writable(output, "--output")
    check_writable(save_log, "--save-log")
    preflight(cfg)  # every check that needs no engine, before the engine's start
    from offline_bench.engine import Engine

    def level_cfg(level: int | None, n: int | None) -> RunConfig:
        wl = cfg.workload if n is None else cfg.workload.model_copy(update={"num_prompts": n})
        return cfg.model_copy(update={"concurrency": level, "workload": wl})

    results: list[tuple[RunResult, str | None]] = []

    def keep(result: RunResult, level: int | None) -> None:
        path = level_path(output, level, len(levels) > 1) if output else None
        if path:  # saved at once: a later level's failure loses nothing
            result.save(path)
        results.append((result, path))

    if data_parallel_size > 1:
        for level, n in levels:
            keep(run_benchmark(level_cfg(level, n)), level)  # replicas in their own processes
    else:
        with Engine(cfg.engine, echo_log=verbose) as engine:
            for level, n in levels:
                keep(run_benchmark(level_cfg(level, n), engine=engine, progress=_rich_progress(engine.console)),
                     level)
            if save_log:
                from offline_bench.schema import write_atomic

                write_atomic(save_log, engine.log_text())
    # printed once the engine has stopped: while it runs, its log capture owns stdout and stderr
    for result, path in results:
        typer.echo(render(result, fmt))
        if path:
            typer.echo(f"result written to {path}", err=True)


ListOpt = Annotated[Optional[str], Opt(help="Comma list to sweep, or one value.")]


@app.command()
def sweep(
    output_dir: Annotated[Optional[str], Opt("--output-dir", help="Sweep directory (points, summary, plots).")] = None,
    report: Annotated[Optional[str], Opt("--report", help="Re-render DIR's tables and plots; run nothing.")] = None,
    model: ModelOpt = "preset:tiny-llama",
    gpu_memory_utilization: ListOpt = None,
    kv_cache_memory_bytes: Annotated[Optional[str], Opt(help="KV cache sizes instead of gmu, e.g. 32MiB,64MiB.")]
    = None,
    max_model_len: ListOpt = None,
    max_num_seqs: ListOpt = None,
    max_num_batched_tokens: ListOpt = None,
    kv_cache_dtype: ListOpt = None,
    dtype: ListOpt = None,
    tensor_parallel_size: ListOpt = None,
    pipeline_parallel_size: ListOpt = None,
    enforce_eager: Annotated[Optional[bool], Opt("--enforce-eager/--no-enforce-eager")] = None,
    enable_prefix_caching: Annotated[Optional[bool], Opt("--enable-prefix-caching/--no-enable-prefix-caching")] = None,
    load_format: Annotated[Optional[str], Opt()] = None,
    seed: Annotated[int, Opt()] = 0,
    engine_arg: Annotated[Optional[list[str]], Opt(help="Extra vllm.LLM KEY=VALUE, every point.")] = None,
    prompts: Annotated[Optional[str], Opt("--prompts")] = None,
    num_prompts: Annotated[Optional[int], Opt()] = None,
    input_len: Annotated[int, Opt()] = 128,
    output_len: Annotated[int, Opt()] = 128,
    range_ratio: Annotated[float, Opt()] = 0.0,
    ignore_eos: Annotated[Optional[bool], Opt("--ignore-eos/--no-ignore-eos")] = None,
    temperature: Annotated[float, Opt()] = 1.0,
    top_p: Annotated[float, Opt()] = 1.0,
    detokenize: Annotated[bool, Opt("--detokenize/--no-detokenize")] = True,
    warmup: Annotated[int, Opt()] = 4,
    repeats: Annotated[int, Opt()] = 1,
    target_concurrency: Annotated[Optional[int], Opt(help="Smallest gmu holding N full requests?")] = None,
    timeout_per_point: Annotated[Optional[float], Opt(help="Seconds before a hung point is killed.")] = None,
    resume: Annotated[bool, Opt("--resume/--no-resume", help="Skip points already finished in DIR.")] = True,
    retry_failed: Annotated[bool, Opt(help="With resume, run failed points again.")] = False,
    knee_tolerance: Annotated[float, Opt(help="Share of best = plateau.")] = 0.05,
    data_parallel_size: Annotated[int, Opt("--data-parallel-size", "-dp", help="Engine replicas.")] = 1,
    distributed_executor_backend: Annotated[Optional[str], Opt(help="mp or ray.")] = None,
    ray_address: Annotated[Optional[str], Opt(help="Ray cluster HOST:PORT.")] = None,
    compilation_config: Annotated[Optional[str], Opt(help="vLLM compilation_config as JSON.")] = None,
    safe_allreduce: Annotated[bool, Opt(help="No FlashInfer mnnvl all-reduce.")] = False,
) -> None:
    """Run a grid of engine settings (each point in a fresh process), resumable, with summary, plots, analysis.

    Example: offline-bench sweep --output-dir sw --gpu-memory-utilization 0.5,0.7,0.9 --max-model-len 2048,8192
    """
    from offline_bench.sweep import SWEEPABLE, SweepSpec, parse_list, render_markdown, run_sweep, write_summary

    if report:
        summary = write_summary(report)
        typer.echo(render_markdown(summary))
        return
    if not output_dir:
        raise BenchError("give --output-dir DIR (or --report DIR to re-render a finished sweep)")
    check_writable(output_dir, "--output-dir", is_dir=True)
    lists = {"gpu_memory_utilization": gpu_memory_utilization, "kv_cache_memory_bytes": kv_cache_memory_bytes,
             "max_model_len": max_model_len,
             "max_num_seqs": max_num_seqs, "max_num_batched_tokens": max_num_batched_tokens,
             "kv_cache_dtype": kv_cache_dtype, "dtype": dtype, "tensor_parallel_size": tensor_parallel_size,
             "pipeline_parallel_size": pipeline_parallel_size}
    assert set(lists) == set(SWEEPABLE)
    parsed = {k: parse_list(k, v) for k, v in lists.items() if v is not None}
    grid = {k: v for k, v in parsed.items() if len(v) > 1}
    singles = {k: v[0] for k, v in parsed.items() if len(v) == 1}
    ecfg = engine_config(model, None, None, None, None, None, "auto", "auto", enforce_eager, enable_prefix_caching,
                         1, 1, load_format, seed, engine_arg)
    for k, v in singles.items():
        setattr(ecfg, k, v)
    apply_parallel(ecfg, data_parallel_size, distributed_executor_backend, ray_address, compilation_config,
                   safe_allreduce)
    cfg = RunConfig(engine=ecfg, workload=WorkloadConfig(
        prompts_file=prompts, num_prompts=num_prompts, input_len=input_len, output_len=output_len,
        range_ratio=range_ratio, seed=seed, ignore_eos=ignore_eos, temperature=temperature, top_p=top_p,
        detokenize=detokenize, warmup=warmup, repeats=repeats))
    cfg.workload.validate_values()
    cfg.engine.validate_values()
    if "gpu_memory_utilization" in grid and ("kv_cache_memory_bytes" in grid or cfg.engine.kv_cache_memory_bytes):
        raise BenchError("--gpu-memory-utilization and --kv-cache-memory-bytes both size the KV cache: sweep one")
    if cfg.engine.gpu_memory_utilization is not None or "gpu_memory_utilization" in grid:
        for g in grid.get("gpu_memory_utilization", [cfg.engine.gpu_memory_utilization]):
            if not 0 < g <= 1:
                raise BenchError(f"--gpu-memory-utilization {g} is outside (0, 1]: pass fractions such as 0.5,0.9")
    spec = SweepSpec(base=cfg, grid=grid, timeout_per_point_s=timeout_per_point,
                     target_concurrency=target_concurrency, knee_tolerance=knee_tolerance)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as bar:
        task = bar.add_task("sweep", total=len(spec.points()))

        def on_point(n: int, total: int, key: str, state: str) -> None:
            if state == "running":
                bar.update(task, description=f"point {n}/{total} {key}")
            else:
                bar.advance(task)
                bar.console.print(f"{key}: {state}")

        summary = run_sweep(spec, output_dir, resume=resume, retry_failed=retry_failed, on_point=on_point)
    typer.echo(render_markdown(summary))
    typer.echo(f"summary, points and plots in {output_dir}", err=True)


@app.command()
def startup(
    logfile: Annotated[str, typer.Argument(help="A vLLM log file (offline or `vllm serve`), or - for stdin.")],
    fmt: Annotated[str, Opt("--format", help="table, md or json.")] = "table",
) -> None:
    """Explain a vLLM start-up log: where the GPU memory and the start-up time went.

    Example: vllm serve MODEL 2>&1 | tee vllm.log; offline-bench startup vllm.log --format md
    """
    from offline_bench.startup import read_log, render_startup

    if fmt not in ("table", "md", "json"):
        raise BenchError(f"--format {fmt} is not one of table, md, json")
    typer.echo(render_startup(read_log(logfile), fmt))


def workload_config(prompts: str | None, num_prompts: int | None, input_len: int, output_len: int,
                    range_ratio: float, seed: int, ignore_eos: bool | None, temperature: float, top_p: float,
                    detokenize: bool, warmup: int, repeats: int) -> WorkloadConfig:
    return WorkloadConfig(prompts_file=prompts, num_prompts=num_prompts, input_len=input_len, output_len=output_len,
                          range_ratio=range_ratio, seed=seed, ignore_eos=ignore_eos, temperature=temperature,
                          top_p=top_p, detokenize=detokenize, warmup=warmup, repeats=repeats)


@app.command("serve-probe")
def serve_probe(
    base_url: Annotated[str, Opt("--base-url", help="Server root, e.g. http://127.0.0.1:8000")],
    served_model_name: Annotated[str, Opt("--served-model-name", help="Model name the server answers to.")],
    api_key: Annotated[Optional[str], Opt("--api-key", help="Bearer key (default: $OPENAI_API_KEY). Never stored.",
                                          show_default=False)] = None,
    concurrency: Annotated[str, Opt(help="Requests kept in flight; a comma list runs each.")] = "1",
    chat: Annotated[bool, Opt("--chat/--completions", help="Use /v1/chat/completions.")] = False,
    timeout: Annotated[float, Opt(help="Seconds to wait for a response.")] = 300.0,
    tokenizer: Annotated[Optional[str], Opt(help="Tokenizer for synthetic token-id prompts (HF id, path, "
                                                 "preset:NAME).")] = None,
    prompts: Annotated[Optional[str], Opt("--prompts")] = None,
    num_prompts: Annotated[Optional[str], Opt(help="How many; one per --concurrency level, or one for all.")] = None,
    input_len: Annotated[int, Opt()] = 128,
    output_len: Annotated[int, Opt()] = 128,
    range_ratio: Annotated[float, Opt()] = 0.0,
    seed: Annotated[int, Opt()] = 0,
    ignore_eos: Annotated[Optional[bool], Opt("--ignore-eos/--no-ignore-eos")] = None,
    temperature: Annotated[float, Opt()] = 1.0,
    top_p: Annotated[float, Opt()] = 1.0,
    warmup: Annotated[int, Opt()] = 4,
    output: Annotated[Optional[str], Opt("--output", "-o", help="JSON file; with several concurrencies, "
                                                                 "'-cN' is added before .json.")] = None,
    fmt: Annotated[str, Opt("--format", help="table, md, csv or json.")] = "table",
) -> None:
    """Measure a running OpenAI-compatible server the way `run` measures the engine (streaming, exact usage).

    Example: offline-bench serve-probe --base-url http://127.0.0.1:8000 --served-model-name preset:tiny-llama
    --tokenizer preset:tiny-llama --concurrency 1,10,64 --num-prompts 64 --output serving.json
    """
    from offline_bench.report import FORMATS, render
    from offline_bench.serving import ProbeConfig, api_key_from_env, probe

    if fmt not in FORMATS:
        raise BenchError(f"--format {fmt} is not one of {', '.join(FORMATS)}")
    levels = concurrency_levels(concurrency, num_prompts)
    wl = workload_config(prompts, levels[0][1], input_len, output_len, range_ratio, seed, ignore_eos, temperature,
                         top_p, True, warmup, 1)
    wl.validate_values()
    cfg = ProbeConfig(base_url=base_url, served_model_name=served_model_name, api_key=api_key_from_env(api_key),
                      chat=chat, timeout_s=timeout, workload=wl)
    cfg.check()
    check_writable(output, "--output")
    for level, n in levels:
        result = probe(cfg.with_prompts(n), level or 1, tokenizer)
        typer.echo(render(result, fmt))
        if output:
            path = level_path(output, level, len(levels) > 1)
            result.save(path)
            typer.echo(f"result written to {path}", err=True)


@app.command("serve-preset")
def serve_preset(
    name: Annotated[str, typer.Argument(help="Preset name, e.g. tiny-llama.")],
    port: Annotated[int, Opt(help="Port to listen on.")] = 8000,
    host: Annotated[str, Opt(help="Address to bind.")] = "127.0.0.1",
    max_model_len: MmlOpt = None,
    gpu_memory_utilization: GmuOpt = None,
    kv_cache_memory_bytes: KvBytesOpt = None,
    api_key: Annotated[Optional[str], Opt("--api-key", help="Require this key from clients.",
                                          show_default=False)] = None,
    print_command: Annotated[bool, Opt(help="Print the vLLM command instead of running it.")] = False,
) -> None:
    """Start `vllm serve` on a preset (dummy weights), served as 'preset:NAME'; runs until stopped.

    Example: offline-bench serve-preset tiny-llama --port 8011
    """
    import os

    from offline_bench.serving import serve_preset_command

    ecfg = EngineConfig(model=f"preset:{name}", max_model_len=max_model_len,
                        gpu_memory_utilization=gpu_memory_utilization,
                        kv_cache_memory_bytes=parse_bytes(kv_cache_memory_bytes) if kv_cache_memory_bytes else None)
    ecfg.validate_values()
    cmd = serve_preset_command(name, port, host, max_model_len=max_model_len,
                               gpu_memory_utilization=gpu_memory_utilization, api_key=api_key,
                               kv_cache_memory_bytes=ecfg.kv_cache_memory_bytes)
    if print_command:
        typer.echo(" ".join("<key>" if api_key and c == api_key else c for c in cmd))
        return
    sys.stdout.flush()
    os.execv(cmd[0], cmd)


@app.command()
def compare(
    results: Annotated[list[str], typer.Argument(help="Result JSON files (run, serve-probe, import).")],
    baseline: Annotated[Optional[str], Opt(help="The run ratios are taken against (default: the first).")] = None,
    fmt: Annotated[str, Opt("--format", help="table, md or csv.")] = "table",
    plot: Annotated[Optional[str], Opt("--plot", help="Also write a PNG bar chart here.")] = None,
) -> None:
    """Put runs side by side (metrics x runs, plus ratios to the baseline) and warn about every difference.

    Example: offline-bench compare offline-c10.json serving-c10.json --baseline offline-c10.json --format md
    """
    from offline_bench.compare import Labeled, label_for, order, render
    from offline_bench.compare import plot as draw
    from offline_bench.schema import RunResult

    if fmt not in ("table", "md", "csv"):
        raise BenchError(f"--format {fmt} is not one of table, md, csv")
    check_writable(plot, "--plot")
    loaded = [(p, RunResult.load(p)) for p in results]
    runs = [Labeled(label_for(p, r), r) for p, r in loaded]
    base_idx = 0
    if baseline:
        if baseline not in results:
            raise BenchError(f"--baseline {baseline} is not one of the compared files")
        base_idx = results.index(baseline)
    base = runs[base_idx]
    typer.echo(render(order(runs), base, fmt))
    if plot:
        draw(order(runs), plot)
        typer.echo(f"plot written to {plot}", err=True)


@app.command("import")
def import_results(
    source: Annotated[str, typer.Argument(help="`vllm bench serve --save-result` JSON, or hand-entered "
                                               "YAML/JSON figures.")],
    output_dir: Annotated[str, Opt("--output-dir", help="Where the converted results go.")] = ".",
) -> None:
    """Convert serving figures from elsewhere into this tool's result schema (unknowns stay unknown).

    Example: offline-bench import report.yaml --output-dir imported/
    """
    from offline_bench.importers import import_file

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
    api_key: Annotated[Optional[str], Opt("--api-key", help="Default: $OPENAI_API_KEY. Never stored.",
                                          show_default=False)] = None,
    concurrency: Annotated[str, Opt(help="Requests in flight, for the serving run and the last offline step; a "
                                         "comma list explains each level.")] = "10",
    timeout: Annotated[float, Opt()] = 300.0,
    model: ModelOpt = "preset:tiny-llama",
    gpu_memory_utilization: GmuOpt = None,
    kv_cache_memory_bytes: KvBytesOpt = None,
    max_model_len: MmlOpt = None,
    max_num_seqs: Annotated[Optional[int], Opt(help="As the server runs (default: vLLM's).")] = None,
    max_num_batched_tokens: Annotated[Optional[int], Opt(help="As the server runs (default: vLLM's).")] = None,
    enable_prefix_caching: Annotated[Optional[bool], Opt("--enable-prefix-caching/--no-enable-prefix-caching",
                                                         help="As the server runs (default: on).")] = None,
    engine_arg: Annotated[Optional[list[str]], Opt(help="Extra vllm.LLM KEY=VALUE.")] = None,
    prompts: Annotated[Optional[str], Opt("--prompts")] = None,
    num_prompts: Annotated[Optional[str], Opt(help="How many; one per --concurrency level, or one for all.")] = None,
    input_len: Annotated[int, Opt()] = 128,
    output_len: Annotated[int, Opt()] = 128,
    seed: Annotated[int, Opt()] = 0,
    ignore_eos: Annotated[Optional[bool], Opt("--ignore-eos/--no-ignore-eos")] = None,
    temperature: Annotated[float, Opt()] = 1.0,
    top_p: Annotated[float, Opt()] = 1.0,
    warmup: Annotated[int, Opt()] = 4,
    output: Annotated[Optional[str], Opt("--output", "-o", help="Write the ladder (JSON) here.")] = None,
    fmt: Annotated[str, Opt("--format", help="table or md.")] = "table",
    verbose: Annotated[bool, Opt("--verbose", "-v", help="Show the engines' logs.")] = False,
) -> None:
    """Measure the server, then offline runs that switch one condition at a time toward it; attribute the gap.

    Example: offline-bench explain-gap --base-url http://127.0.0.1:8011 --served-model-name preset:tiny-llama
    --model preset:tiny-llama --concurrency 4 --num-prompts 32

    Server and engine on one GPU: serve-probe first (--output s.json), stop the server, then
    offline-bench explain-gap --serving-result s-c10.json --serving-result s-c64.json --concurrency 10,64 ...
    """
    from offline_bench.gap import check_serving_result, explain_gap, render
    from offline_bench.schema import RunResult
    from offline_bench.serving import ProbeConfig, api_key_from_env, check_base_url

    levels = concurrency_levels(concurrency, num_prompts)
    wl = workload_config(prompts, levels[0][1], input_len, output_len, 0.0, seed, ignore_eos, temperature, top_p,
                         True, warmup, 1)
    wl.validate_values()
    ecfg = engine_config(model, None, gpu_memory_utilization, max_model_len, max_num_seqs, max_num_batched_tokens,
                         "auto", "auto", None, enable_prefix_caching, 1, 1, None, seed, engine_arg,
                         kv_bytes=kv_cache_memory_bytes)
    ecfg.validate_values()
    check_writable(output, "--output")
    if base_url:
        check_base_url(base_url)
    cfg = ProbeConfig(base_url=base_url or "", served_model_name=served_model_name or "",
                      api_key=api_key_from_env(api_key), timeout_s=timeout, workload=wl)
    saved: dict[int, RunResult] = {}
    for path in serving_result or []:
        r = RunResult.load(path)
        level = r.workload.concurrency or 1
        n = next((n for c, n in levels if c == level), None)
        if level not in {c for c, _ in levels}:
            raise BenchError(f"--serving-result {path} was measured at concurrency {level}, which is not in "
                             f"--concurrency {concurrency}")
        check_serving_result(r, path, level, n, wl)
        saved[level] = r
    missing = [c for c, _ in levels if c not in saved]
    if missing and not (base_url and served_model_name):
        raise BenchError(f"concurrency {','.join(map(str, missing))} has no --serving-result: pass --base-url and "
                         "--served-model-name to measure the server, or a saved result for each level")
    if saved and not base_url:
        cfg.base_url = (next(iter(saved.values())).endpoint or "saved result").split("/v1/")[0]
    user_set = {k for k, v in (("max_num_seqs", max_num_seqs), ("max_num_batched_tokens", max_num_batched_tokens))
                if v is not None}
    reps, runs = explain_gap(cfg, ecfg, [(c or 1, n) for c, n in levels], tokenizer=model, serving=saved,
                             echo_log=verbose, user_set=user_set)
    typer.echo(render(reps, fmt))
    if output:
        import json

        from offline_bench.schema import write_atomic

        write_atomic(output, json.dumps({"reports": [r.model_dump() for r in reps],
                                         "runs": {str(c): [{"step": n, "result": r.model_dump()} for n, r in steps]
                                                  for c, steps in runs.items()}}, indent=2))
        typer.echo(f"ladder written to {output}", err=True)


@app.command("roofline")
def roofline_cmd(
    model: ModelOpt = "preset:llama-3.1-8b",
    gpu: Annotated[Optional[str], Opt(help="GPU from the built-in table (default: detected).")] = None,
    measure_gpu: Annotated[bool, Opt(help="Measure bandwidth and bf16 rate on this GPU instead.")] = False,
    batch_sizes: Annotated[str, Opt(help="Comma list of decode batch sizes.")] = "1,8,32,128",
    context: Annotated[int, Opt(help="Tokens of context per request (KV read per step).")] = 1024,
    num_gpus: Annotated[int, Opt(help="GPUs of a tensor-parallel group (aggregate bandwidth and FLOP/s).")] = 1,
    kv_cache_dtype: Annotated[str, Opt()] = "auto",
    fmt: Annotated[str, Opt("--format", help="table, md or json.")] = "table",
) -> None:
    """Print the hardware ceilings for a model on a GPU, without running the engine.

    Example: offline-bench roofline --model preset:llama-3.1-8b --gpu h100-sxm --batch-sizes 1,32,256
    """
    from offline_bench.environment import capture_environment
    from offline_bench.presets import resolve_model
    from offline_bench.roofline import detect_gpu, gpu_spec, render, roofline
    from offline_bench.roofline import measure_gpu as measure

    resolved = resolve_model(model)
    if resolved.info is None:
        raise BenchError(f"no config.json readable for '{model}' without network: pass a local path or a preset")
    if measure_gpu:
        spec = measure()
    elif gpu:
        spec = gpu_spec(gpu)
    else:
        spec = detect_gpu(capture_environment().gpu_name)
        if spec is None:
            raise BenchError("no GPU detected: pass --gpu NAME (h100-sxm, h100-pcie, h200, a100-40gb, a100-80gb, "
                             "l40s, a10, rtx-4090, b200)")
    sizes = [int(b) for b in batch_sizes.split(",") if b.strip()]
    typer.echo(render(roofline(model, resolved.info, spec, sizes, context, num_gpus, kv_dtype=kv_cache_dtype), fmt))


@app.command()
def phases(
    batch_sizes: Annotated[str, Opt(help="Comma list of batch sizes.")] = "1,8,32,128",
    input_len: Annotated[str, Opt(help="Comma list of prompt lengths.")] = "512,2048",
    output_len: Annotated[int, Opt(help="Tokens generated in the decode-only runs.")] = 128,
    gpu: Annotated[Optional[str], Opt(help="GPU for the ceilings (default: detected).")] = None,
    measure_gpu: Annotated[bool, Opt(help="Measure bandwidth and bf16 rate instead of the datasheet.")] = False,
    model: ModelOpt = "preset:tiny-llama",
    gpu_memory_utilization: GmuOpt = None,
    kv_cache_memory_bytes: KvBytesOpt = None,
    max_model_len: MmlOpt = None,
    max_num_seqs: Annotated[Optional[int], Opt()] = None,
    max_num_batched_tokens: Annotated[Optional[int], Opt()] = None,
    dtype: Annotated[str, Opt()] = "auto",
    enforce_eager: Annotated[Optional[bool], Opt("--enforce-eager/--no-enforce-eager")] = None,
    tensor_parallel_size: Annotated[int, Opt("--tensor-parallel-size", "-tp")] = 1,
    load_format: Annotated[Optional[str], Opt()] = None,
    seed: Annotated[int, Opt()] = 0,
    engine_arg: Annotated[Optional[list[str]], Opt(help="Extra vllm.LLM KEY=VALUE.")] = None,
    output: Annotated[Optional[str], Opt("--output", "-o", help="Result JSON (mode: phases).")] = None,
    plot: Annotated[Optional[str], Opt("--plot", help="PNG of tokens/s vs batch size.")] = None,
    fmt: Annotated[str, Opt("--format", help="table, md or json.")] = "table",
    verbose: Annotated[bool, Opt("--verbose", "-v")] = False,
    distributed_executor_backend: Annotated[Optional[str], Opt(help="mp or ray.")] = None,
    ray_address: Annotated[Optional[str], Opt(help="Ray cluster HOST:PORT.")] = None,
    compilation_config: Annotated[Optional[str], Opt(help="vLLM compilation_config as JSON.")] = None,
    safe_allreduce: Annotated[bool, Opt(help="No FlashInfer mnnvl all-reduce.")] = False,
) -> None:
    """Prefill-only and decode-only runs per batch size and prompt length, with % of the hardware ceiling.

    Example: offline-bench phases --model preset:llama-3.1-8b --batch-sizes 1,8,32,128 --input-len 512,2048
    """
    from offline_bench.engine import Engine
    from offline_bench.phases import plot as draw
    from offline_bench.phases import render, run_phases
    from offline_bench.roofline import detect_gpu, gpu_spec
    from offline_bench.roofline import measure_gpu as measure

    sizes = [int(b) for b in batch_sizes.split(",") if b.strip()]
    lens = [int(x) for x in input_len.split(",") if x.strip()]
    if not sizes or not lens or min(sizes + lens) < 1 or output_len < 2:
        raise BenchError("--batch-sizes and --input-len take positive integers; --output-len must be at least 2")
    ecfg = engine_config(model, None, gpu_memory_utilization, max_model_len, max_num_seqs or max(sizes),
                         max_num_batched_tokens, dtype, "auto", enforce_eager, None, tensor_parallel_size, 1,
                         load_format, seed, engine_arg, kv_bytes=kv_cache_memory_bytes)
    apply_parallel(ecfg, 1, distributed_executor_backend, ray_address, compilation_config, safe_allreduce)
    check_writable(output, "--output")
    check_writable(plot, "--plot")
    spec = gpu_spec(gpu) if gpu else None
    with Engine(ecfg, echo_log=verbose) as engine:
        if measure_gpu:
            spec = measure()
        elif spec is None:
            from offline_bench.environment import capture_environment

            spec = detect_gpu(capture_environment().gpu_name)
        result = run_phases(engine, sizes, lens, output_len, spec, seed, tensor_parallel_size)
    typer.echo(render(result, fmt))
    if output:
        result.save(output)
        typer.echo(f"result written to {output}", err=True)
    if plot:
        draw(result, plot)
        typer.echo(f"plot written to {plot}", err=True)


@app.command()
def presets(fmt: Annotated[str, Opt("--format", help="table, md or json.")] = "table") -> None:
    """List the built-in models (shipped configs, dummy weights, self-made tokenizers).

    Example: offline-bench presets --format md
    """
    import json

    from tabulate import tabulate

    from offline_bench.modelinfo import ModelInfo
    from offline_bench.presets import preset_config, preset_names

    rows = []
    for name in preset_names():
        info = ModelInfo.from_config(preset_config(name))
        rows.append({"preset": f"preset:{name}", "architecture": info.architecture, "layers": info.num_layers,
                     "hidden": info.hidden_size, "heads/kv_heads": f"{info.num_heads}/{info.num_kv_heads}",
                     "params": info.params, "active_params": info.active_params,
                     "kv_bytes_per_token": info.kv_bytes_per_token(), "max_len": info.max_position_embeddings,
                     "vocab": info.vocab_size})
    if fmt == "json":
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        r["params"] = f"{r['params'] / 1e9:.3f} B" if r["params"] >= 1e8 else f"{r['params'] / 1e6:.2f} M"
        r["active_params"] = f"{r['active_params'] / 1e9:.3f} B" if r["active_params"] >= 1e8 else \
            f"{r['active_params'] / 1e6:.2f} M"
    typer.echo(tabulate(rows, headers="keys", tablefmt="github" if fmt == "md" else "simple"))


def _click_exceptions():  # noqa: ANN202 - the click module typer really uses
    """typer >= 0.24 carries its own copy of click (typer._click); older releases use the click package."""
    import importlib

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
    try:
        sys.exit(run_app())
    except KeyboardInterrupt:  # Ctrl-C outside the command itself (while importing, say)
        print(INTERRUPTED, file=sys.stderr)
        sys.exit(130)
