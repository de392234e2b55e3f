"""results.gap: the explain-gap ladder (its reports, and every step's run) as one file."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel

from offline_bench.results.run import RunResult, write_atomic


class GapStep(BaseModel):
    step: str
    output_tokens_per_s: float
    ttft_ms_p50: float | None
    tpot_ms_p50: float | None
    change_tokens_per_s: float | None  # vs the step before (negative = slower)
    share_of_gap: float | None  # of (first offline step - serving)


class GapReport(BaseModel):
    concurrency: int
    num_prompts: int | None
    steps: list[GapStep]
    gap_tokens_per_s: float
    summary: str


class GapRun(BaseModel):
    step: str
    result: RunResult


class GapLadder(BaseModel):
    """What `explain-gap --output` writes."""

    kind: Literal["gap"] = "gap"  # what the file is (results.kinds)
    reports: list[GapReport]
    runs: dict[str, list[GapRun]]  # by concurrency (a JSON key: a string)

    def pair(self) -> tuple[list[GapReport], dict[str, list[tuple[str, RunResult]]]]:
        """(reports, runs by concurrency as (step, result) pairs): what `report` shows of a ladder."""
        return self.reports, {c: [(s.step, s.result) for s in steps] for c, steps in self.runs.items()}


def ladder_document(reps: list[GapReport], runs: dict[Any, list[tuple[str, RunResult]]]) -> dict[str, Any]:
    return {"kind": "gap", "reports": [r.model_dump() for r in reps],
            "runs": {str(c): [{"step": n, "result": r.model_dump()} for n, r in steps] for c, steps in runs.items()}}


def save_ladder(path: str, reps: list[GapReport], runs: dict[int, list[tuple[str, RunResult]]]) -> None:
    """The reports and every step's result, as one JSON file (atomically)."""
    write_atomic(path, json.dumps(ladder_document(reps, runs), indent=2))
