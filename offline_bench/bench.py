"""The `run` command's work as a library call: one engine for every concurrency level (or data-parallel
replicas, each level in fresh replicas), each result saved as soon as it exists."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from offline_bench.config import RunConfig
from offline_bench.dataparallel import run_data_parallel
from offline_bench.engine import Engine
from offline_bench.errors import BenchError
from offline_bench.runner import ProgressFactory, run_benchmark
from offline_bench.schema import RunResult, write_atomic

Level = tuple[int | None, int | None]  # (requests in flight or None for one batch, request count or None)


def concurrency_levels(concurrency: str | None, num_prompts: str | None) -> list[Level]:
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


def keep_level(out: list[tuple[RunResult, str | None]], result: RunResult, output: str | None,
               level: int | None, several: bool) -> None:
    """Save a level's result at once (a later level's failure loses nothing) and add (result, path) to out."""
    path = level_path(output, level, several) if output else None
    if path:
        result.save(path)
    out.append((result, path))


def level_config(cfg: RunConfig, level: int | None, n: int | None) -> RunConfig:
    wl = cfg.workload if n is None else cfg.workload.model_copy(update={"num_prompts": n})
    return cfg.model_copy(update={"concurrency": level, "workload": wl})


def run_one(cfg: RunConfig) -> RunResult:
    """One benchmark in its own engine, or in data-parallel replicas."""
    if cfg.engine.data_parallel_size > 1:
        return run_data_parallel(cfg)
    return run_benchmark(cfg)


def run_levels(cfg: RunConfig, levels: list[Level], output: str | None = None, save_log: str | None = None,
               progress: Callable[[object], ProgressFactory] | None = None) -> list[tuple[RunResult, str | None]]:
    """Every level, each result saved at once (a later level's failure loses nothing); (result, path) pairs.
    `progress(console)` makes the progress factory once the engine owns the terminal."""
    out: list[tuple[RunResult, str | None]] = []
    several = len(levels) > 1
    if cfg.engine.data_parallel_size > 1:
        for level, n in levels:  # replicas in their own processes
            keep_level(out, run_data_parallel(level_config(cfg, level, n)), output, level, several)
        return out
    with Engine(cfg.engine, echo_log=cfg.verbose) as engine:
        factory = progress(engine.console) if progress else None
        for level, n in levels:
            result = run_benchmark(level_config(cfg, level, n), engine=engine, progress=factory)
            keep_level(out, result, output, level, several)
        if save_log:
            write_atomic(Path(save_log), engine.log_text())
    return out
