"""workloads.levels"""

from __future__ import annotations

import math
from typing import NamedTuple

from offline_bench.core.config import RunConfig
from offline_bench.core.errors import BenchError
from offline_bench.results.run import Kept, RunResult, keep_result


class Level(NamedTuple):
    """One measurement of a multi-level command: requests in flight (None: one batch), request count (None: the
    workload's) and arrival rate (None: all at once)."""

    concurrency: int | None
    num_prompts: int | None = None
    request_rate: float | None = None


def _int_list(text: str, flag: str, example: str) -> list[int]:
    try:
        values = [int(c) for c in text.split(",") if c.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise BenchError(f"{flag} takes positive integers, e.g. {example} (got '{text}')")
    return values


def parse_rates(text: str | None) -> list[float | None]:
    """--request-rate 5,20,inf -> [5.0, 20.0, None] (None / inf: all at once)."""
    if text is None:
        return [None]
    try:
        rates = [float(r) for r in str(text).split(",") if r.strip()]
    except ValueError:
        rates = []
    if not rates or not all(r > 0 for r in rates):
        raise BenchError(f"--request-rate takes positive numbers (requests/s) or inf, e.g. 5,20,50 (got '{text}')")
    return [None if math.isinf(r) else r for r in rates]


def _spread(values: list, n: int, flag: str, against: str) -> list:
    """One value for every level, or one per level."""
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise BenchError(f"{flag} takes one value or one per {against} ({n}), got {len(values)}")
    return values


def concurrency_levels(concurrency: str | None, num_prompts: str | None,
                       request_rate: str | None = None) -> list[Level]:
    """--concurrency 1,10,64 with --num-prompts 4,20,128 (one count per level, or one for all); --request-rate
    5,20,50 (one rate per level, or one for all; a single concurrency then applies at every rate)."""
    conc: list[int | None] = [None] if concurrency is None else _int_list(concurrency, "--concurrency", "1,10,64")
    rates = parse_rates(request_rate)
    n = max(len(conc), len(rates))
    against = "--concurrency level" if len(conc) > 1 else "--request-rate"
    conc = _spread(conc, n, "--concurrency", "--request-rate")
    rates = _spread(rates, n, "--request-rate", "--concurrency level")
    counts: list[int | None] = [None] * n
    if num_prompts is not None:
        counts = _spread(_int_list(num_prompts, "--num-prompts", "4,20,128"), n, "--num-prompts", against)
    return [Level(c, k, r) for c, k, r in zip(conc, counts, rates)]


def level_path(output: str, level: Level, levels: list[Level]) -> str:
    """result.json -> result-c10.json (or -r20.json, -c64-r20.json: what varies between the levels) when one
    command writes several levels."""
    if len(levels) < 2:
        return output
    tag = ""
    if len({lv.concurrency for lv in levels}) > 1 or (level.concurrency is not None
                                                      and len({lv.request_rate for lv in levels}) == 1):
        tag += f"-c{level.concurrency}"
    if len({lv.request_rate for lv in levels}) > 1:
        tag += "-rinf" if level.request_rate is None else f"-r{level.request_rate:g}"
    if len({lv.num_prompts for lv in levels}) > 1 and not tag:
        tag += f"-n{level.num_prompts}"
    return (output[:-5] if output.endswith(".json") else output) + tag + ".json"


def keep_level(out: list[Kept], result: RunResult, output: str | None, level: Level, levels: list[Level]) -> None:
    """Save a level's result at once (a later level's failure loses nothing) and add it to out; a file that cannot
    be written is kept in the temp directory instead (`Kept.unwritten`), and the next level runs."""
    out.append(keep_result(result, level_path(output, level, levels) if output else None))


def level_config(cfg: RunConfig, level: Level) -> RunConfig:
    update: dict = {"request_rate": level.request_rate}
    if level.num_prompts is not None:
        update["num_prompts"] = level.num_prompts
    wl = cfg.workload.model_copy(update=update)
    return cfg.model_copy(update={"concurrency": level.concurrency, "workload": wl})
