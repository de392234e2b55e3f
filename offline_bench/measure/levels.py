"""The `run` command's work as a library call: one engine for every level (concurrency, request count, arrival
rate; or data-parallel replicas, each level in fresh replicas), each result saved as soon as it exists."""

from __future__ import annotations

from collections.abc import Callable

from offline_bench.core.config import RunConfig
from offline_bench.engine.llm import Engine
from offline_bench.measure.dataparallel import run_data_parallel
from offline_bench.measure.runner import ProgressFactory, run_benchmark
from offline_bench.results.run import RunResult
from offline_bench.workloads.levels import (
    Level,
    keep_level,
    level_config,
)


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
    if cfg.engine.data_parallel_size > 1:
        for level in levels:  # replicas in their own processes
            keep_level(out, run_data_parallel(level_config(cfg, level)), output, level, levels)
        return out
    with Engine(cfg.engine, echo_log=cfg.verbose, save_log=save_log) as engine:  # the log, however it ends
        factory = progress(engine.console) if progress else None
        for level in levels:
            result = run_benchmark(level_config(cfg, level), engine=engine, progress=factory)
            keep_level(out, result, output, level, levels)
    return out
