"""results.gap"""

from __future__ import annotations

import json

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


def save_ladder(path: str, reps: list[GapReport], runs: dict[int, list[tuple[str, RunResult]]]) -> None:
    """The reports and every step's result, as one JSON file (atomically)."""
    write_atomic(path, json.dumps({"reports": [r.model_dump() for r in reps],
                                   "runs": {str(c): [{"step": n, "result": r.model_dump()} for n, r in steps]
                                            for c, steps in runs.items()}}, indent=2))
