"""Per-step records of what vLLM's scheduler did and how long each engine step took.

The engine core sends one EngineCoreOutputs per step (its `timestamp` is taken when the step's output is made)
with the scheduler's stats; with `enable_logging_iteration_details` (vLLM 0.26+) those stats carry the step's
scheduled prompt ("context") and decode tokens and its execution time. We wrap the front end's
`engine_core.get_output` to read them as they pass, so the engine itself is untouched.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from offline_bench.results.run import StepTrace

ITERATION_DETAILS_ARG = "enable_logging_iteration_details"
COLUMNS = ("t_s", "exec_ms", "ctx_tokens", "ctx_reqs", "gen_reqs", "out_tokens", "first_tokens",
           "decode_ctx_tokens", "running", "waiting", "kv_usage_pct")


def iteration_details_supported() -> bool:
    """Does the installed vLLM's EngineArgs take enable_logging_iteration_details?"""
    try:
        from vllm.engine.arg_utils import EngineArgs  # heavy: only where an engine is about to start

        return any(f.name == ITERATION_DETAILS_ARG for f in dataclasses.fields(EngineArgs))
    except Exception:  # noqa: BLE001 - a release without it: steps are inferred from the outputs
        return False


class _DropIterationLines(logging.Filter):
    """vLLM logs one line per step once iteration details are on; we read them from the stats instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Iteration(" not in str(record.msg)


def quiet_iteration_log() -> None:
    logger = logging.getLogger("vllm.v1.metrics.loggers")
    if not any(isinstance(f, _DropIterationLines) for f in logger.filters):
        logger.addFilter(_DropIterationLines())


class StepRecorder:
    """Records one row per engine step while installed on an LLMEngine (`with StepRecorder(...)`).

    `prompt_len(request_id)` gives a request's prompt length, for the KV tokens each decode step reads."""

    def __init__(self, llm_engine: Any, prompt_len: Callable[[str], int | None]) -> None:
        self.client = getattr(llm_engine, "engine_core", None)
        self.prompt_len = prompt_len
        self.rows: dict[str, list[Any]] = {c: [] for c in COLUMNS}
        self.raw_ts: list[float] = []
        self.generated: dict[str, int] = {}
        self.with_details = False

    def __enter__(self) -> StepRecorder:
        if self.client is not None and hasattr(self.client, "get_output"):
            original = self.client.get_output

            def get_output(*args: Any, **kwargs: Any) -> Any:
                out = original(*args, **kwargs)
                try:
                    self._record(out)
                except Exception:  # noqa: BLE001 - a recording problem must never break the run
                    pass
                return out

            self.client.get_output = get_output
        return self

    def __exit__(self, *exc: object) -> None:
        if self.client is not None and "get_output" in vars(self.client):
            del self.client.get_output  # the class's method again

    def _record(self, eco: Any) -> None:
        stats = getattr(eco, "scheduler_stats", None)
        details = getattr(stats, "iteration_details", None) if stats is not None else None
        outputs = list(getattr(eco, "outputs", None) or [])
        if details is None and not outputs:
            return  # a step that scheduled nothing (or a utility reply)
        if details is not None and getattr(details, "is_dummy", False):
            return
        out_tokens = first = decode_ctx = prefilled = 0
        for o in outputs:
            n = len(getattr(o, "new_token_ids", None) or [])
            rid = o.request_id
            before = self.generated.get(rid, 0)
            plen = self.prompt_len(rid) or 0
            if before == 0 and n:
                first += 1
                prefilled += plen
            elif n:
                decode_ctx += plen + before
            self.generated[rid] = before + n
            out_tokens += n
        self.with_details = self.with_details or details is not None
        r = self.rows
        self.raw_ts.append(float(getattr(eco, "timestamp", 0.0)))
        r["exec_ms"].append(round(details.elapsed_ms, 4) if details is not None else None)
        r["ctx_tokens"].append(details.num_ctx_tokens if details is not None else prefilled)
        r["ctx_reqs"].append(details.num_ctx_requests if details is not None else first)
        r["gen_reqs"].append(details.num_generation_requests if details is not None else out_tokens - first)
        r["out_tokens"].append(out_tokens)
        r["first_tokens"].append(first)
        r["decode_ctx_tokens"].append(decode_ctx)
        r["running"].append(int(getattr(stats, "num_running_reqs", 0) or 0) if stats is not None else None)
        r["waiting"].append(int(getattr(stats, "num_waiting_reqs", 0) or 0) if stats is not None else None)
        usage = getattr(stats, "kv_cache_usage", None) if stats is not None else None
        r["kv_usage_pct"].append(round(100.0 * usage, 3) if usage is not None else None)

    def trace(self, t0: float | None) -> StepTrace | None:
        """The recorded steps, times relative to `t0` (the engine core's clock when the pass's first request
        was queued; else the first step's end)."""
        if not self.raw_ts:
            return None
        base = t0 if t0 is not None and t0 <= self.raw_ts[0] else self.raw_ts[0]
        self.rows["t_s"] = [round(t - base, 6) for t in self.raw_ts]
        return StepTrace(source="iteration_details" if self.with_details else "outputs", **self.rows)


STEADY_SHARE = 0.9  # "at the plateau": running requests at least this share of the pass's most
STEADY_MIN_STEPS, STEADY_MIN_FRACTION = 5, 0.1


def steady_window(steps: StepTrace) -> tuple[float, float, int] | None:
    """The steady part of a pass: from the first step whose running requests reach STEADY_SHARE of the pass's
    peak to the last such step (after it the batch drains). Returns (start s, end s, output tokens in between),
    or None when there is no plateau: fewer than STEADY_MIN_STEPS steps at it, or under STEADY_MIN_FRACTION of the
    pass's time (a pass that ramps straight into its drain)."""
    running = [r or 0 for r in steps.running]
    if not running or max(running) == 0:
        return None
    level = STEADY_SHARE * max(running)
    at = [i for i, r in enumerate(running) if r >= level]
    first, last = at[0], at[-1]
    start, end = (steps.t_s[first - 1] if first else 0.0), steps.t_s[last]
    if last - first + 1 < STEADY_MIN_STEPS or end - start < STEADY_MIN_FRACTION * steps.t_s[-1]:
        return None
    return start, end, sum(steps.out_tokens[first:last + 1])
