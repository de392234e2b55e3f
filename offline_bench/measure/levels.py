"""The `run` command's work as a library call: one engine for every level (concurrency, request count, arrival
rate; or data-parallel replicas, each level in fresh replicas), each result saved as soon as it exists."""

from __future__ import annotations

from collections.abc import Callable

from offline_bench.core.config import RunConfig
from offline_bench.engine.llm import Engine
from offline_bench.measure.dataparallel import run_data_parallel
from offline_bench.measure.runner import ProgressFactory, run_benchmark
from offline_bench.results.run import Kept, RunResult, Unwritten
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
               progress: Callable[[object], ProgressFactory] | None = None,
               lost: list[Unwritten] | None = None) -> list[Kept]:
    """Every level, each result saved at once (a later level's failure loses nothing). `progress(console)` makes
    the progress factory once the engine owns the terminal; `lost` gets --save-log when it could not be written
    (kept in the temp directory instead)."""
    out: list[Kept] = []
    if cfg.engine.data_parallel_size > 1:
        for level in levels:  # replicas in their own processes
            keep_level(out, run_data_parallel(level_config(cfg, level)), output, level, levels)
        return out
    with Engine(cfg.engine, echo_log=cfg.verbose, save_log=save_log) as engine:  # the log, however it ends
        factory = progress(engine.console) if progress else None
        for level in levels:
            result = run_benchmark(level_config(cfg, level), engine=engine, progress=factory)
            keep_level(out, result, output, level, levels)
    log_unwritten = getattr(engine, "log_unwritten", None)
    if log_unwritten is not None and lost is not None:
        lost.append(log_unwritten)
    return out
