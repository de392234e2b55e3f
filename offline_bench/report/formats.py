"""The one way commands render: `render(kind, fmt, *objects)`; `check_format(kind, fmt)` before any work.

Every kind has one builder (report.tables.<kind>) that turns its result objects into a Document, and every kind is
written by the same writers (report.writers), so every kind takes the same --format values: table, md, csv, json.
Importing this module registers every kind, and the sweep's summary.md and summary.csv (analysis.sweep writes them
next to summary.json after every point).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from offline_bench.analysis import sweep as sweep_analysis
from offline_bench.core.errors import BenchError
from offline_bench.report.table import Document
from offline_bench.report.tables import (
    compare,
    gap,
    phases,
    plan,
    presets,
    roofline,
    run,
    scaling,
    scenario,
    startup,
    sweep,
    tune,
)
from offline_bench.report.writers import Writer

# kind -> builder(*objects) -> Document; the objects are what the command passes to `render`
BUILDERS: dict[str, Callable[..., Document]] = {
    "run": run.document,  # RunResult (run, predict, serve-probe)
    "plan": plan.document,  # list[PlanRow]
    "roofline": roofline.document,  # Roofline
    "startup": startup.document,  # the log's text
    "phases": phases.document,  # PhasesResult
    "gap": gap.document,  # list[GapReport]
    "presets": presets.document,  # model.presets.preset_rows()
    "scenario": scenario.document,  # RunResult of serve-probe --scenario
    "compare": compare.document,  # list[Labeled], the baseline Labeled
    "scaling": scaling.document,  # ScalingReport
    "sweep": sweep.document,  # SweepSummary
    "tune": tune.document,  # TuneResult
}


def formats_of(kind: str) -> tuple[str, ...]:
    if kind not in BUILDERS:
        raise KeyError(f"no output kind {kind!r} (known: {', '.join(BUILDERS)})")
    return Writer.names()


def check_format(kind: str, fmt: str) -> None:
    allowed = formats_of(kind)
    if fmt not in allowed:
        raise BenchError(f"--format {fmt} is not one of {', '.join(allowed)}")


def render(kind: str, fmt: str, *objects: Any) -> str:
    check_format(kind, fmt)
    return Writer.get(fmt).write(BUILDERS[kind](*objects))


sweep_analysis.SUMMARY_FILES.update({"summary.md": partial(render, "sweep", "md"),
                                     "summary.csv": partial(render, "sweep", "csv")})

__all__ = ["BUILDERS", "check_format", "formats_of", "render"]
