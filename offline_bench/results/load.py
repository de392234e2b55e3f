"""What `report` reads: any mix of result files and directories, each recognised by its content and grouped by
kind (run results of every mode, sweeps, phases, explain-gap ladders, start-up logs and facts, plan tables)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from offline_bench.results.gap import GapReport
from offline_bench.results.phases import PhasesResult
from offline_bench.results.plan import PlanRow
from offline_bench.results.run import RunResult, read_text, result_name
from offline_bench.results.startup import parse_startup
from offline_bench.results.sweep import SweepSummary

KINDS = ("run", "sweep", "phases", "gap", "startup", "plan")


@dataclass
class Item:
    kind: str  # one of KINDS, or "skipped"
    path: str
    data: Any  # RunResult, SweepSummary, PhasesResult, (reports, runs), startup facts, plan rows, or a reason
    label: str

    @property
    def anchor(self) -> str:
        return "".join(c if c.isalnum() else "-" for c in self.path).strip("-").lower()


def _read_json(path: Path) -> Any:
    try:
        return json.loads(read_text(path))
    except (OSError, EOFError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"not readable JSON ({type(e).__name__})") from None


def _label(path: Path, depth: int = 2) -> str:
    """The file's name without .json and its `depth - 1` parent folders."""
    parts = [*path.parent.parts[-(depth - 1):], result_name(path)]
    return "/".join(part for part in parts if part not in ("", "/"))


def _unique_labels(items: list[Item]) -> None:
    """Labels that name several inputs (points/gmu-0.9_mml-8192 of two sweeps) take more parent folders."""
    for depth in range(3, 8):
        seen = Counter(item.label for item in items)
        clashing = [i for i in items if seen[i.label] > 1]
        if not clashing:
            return
        for item in clashing:
            item.label = _label(Path(item.path), depth)


def classify(path: Path, data: Any) -> tuple[str, Any]:
    """(kind, parsed data) for one JSON document; ("skipped", reason) when it is none of ours."""
    try:
        if isinstance(data, dict) and data.get("mode") == "phases":
            return "phases", PhasesResult.model_validate(data)
        if isinstance(data, dict) and "throughput" in data and "schema_version" in data:
            return "run", RunResult.model_validate(data)
        if isinstance(data, dict) and {"reports", "runs"} <= data.keys():
            reports = [GapReport.model_validate(r) for r in data["reports"]]
            runs = {c: [(s["step"], RunResult.model_validate(s["result"])) for s in steps]
                    for c, steps in data["runs"].items()}
            return "gap", (reports, runs)
        if isinstance(data, dict) and {"spec", "rows"} <= data.keys():
            return "sweep", SweepSummary.model_validate(data)
        if isinstance(data, list) and data and isinstance(data[0], dict) and "kv_cache_tokens" in data[0]:
            return "plan", [PlanRow.model_validate(r) for r in data]
        if isinstance(data, dict) and "vllm_version" in data and ("weights_gib" in data or "kv_cache_tokens" in data):
            return "startup", data
    except ValidationError as e:
        return "skipped", f"looks like an offline-bench file but {e.error_count()} fields do not match"
    return "skipped", "not an offline-bench result (run, sweep, phases, explain-gap, startup, plan)"


def _file(path: Path) -> Item:
    if path.name.endswith(".log"):
        facts = parse_startup(path.read_text(encoding="utf-8", errors="replace"))
        if facts.get("vllm_version") or facts.get("kv_cache_tokens"):
            return Item("startup", str(path), facts, _label(path))
        return Item("skipped", str(path), "a log without vLLM start-up lines", _label(path))
    try:
        kind, parsed = classify(path, _read_json(path))
    except ValueError as e:
        kind, parsed = "skipped", str(e)
    return Item(kind, str(path), parsed, _label(path))


__all__ = ["KINDS", "Item", "classify"]
