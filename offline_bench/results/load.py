"""Any file the tool writes, read back as its typed object by its `kind` (results.kinds; a file written before
kinds is recognised by its content there): `load` for any kind, `load_as` for a reader that takes one kind. And
what `report` makes of each file (`Item`, `load_item`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offline_bench.core.errors import NotAResult
from offline_bench.results.gap import GapLadder
from offline_bench.results.kinds import KINDS, describe, kind_of, migrate, validate, wrong_kind
from offline_bench.results.phases import PhasesResult
from offline_bench.results.plan import PlanTable
from offline_bench.results.run import RunResult, read_json, result_name
from offline_bench.results.scaling import ScalingReport
from offline_bench.results.startup import StartupFacts
from offline_bench.results.sweep import FailedPoint, SweepSpec, SweepSummary
from offline_bench.results.tune import TuneResult

Result = (RunResult | PhasesResult | GapLadder | SweepSummary | SweepSpec | FailedPoint | PlanTable | StartupFacts
          | ScalingReport | TuneResult)

MODELS: dict[str, type[Result]] = {
    "run": RunResult, "phases": PhasesResult, "gap": GapLadder, "sweep": SweepSummary, "sweep-spec": SweepSpec,
    "failed-point": FailedPoint, "plan": PlanTable, "startup": StartupFacts, "scaling": ScalingReport,
    "tune": TuneResult}

LOG_SUFFIX = ".log"  # a vLLM log: read as start-up facts


def from_document(doc: Any, path: str | Path) -> Result:
    """A parsed JSON document as the typed object of its kind; NotAResult (one line) when it is none of ours."""
    kind = kind_of(doc)
    if kind not in MODELS:
        what = describe(kind, doc)
        raise NotAResult(f"'{path}' is {what}: pass a file written by offline-bench", what)
    doc = migrate(doc, kind)
    if kind == "startup":
        doc = StartupFacts.fields_of(doc)
    return validate(MODELS[kind], doc, path)


def _log(path: str | Path) -> StartupFacts:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise NotAResult(f"cannot read log '{path}': {e.strerror}", f"not readable ({e.strerror})") from None
    facts = StartupFacts.from_log(text)
    if not facts.found:
        raise NotAResult(f"'{path}' is a log without vLLM start-up lines", "a log without vLLM start-up lines")
    return facts


def load(path: str | Path) -> Result:
    """Any file the tool writes (.json or .json.gz; a vLLM .log as start-up facts) as its typed object: RunResult,
    PhasesResult, GapLadder, SweepSummary, SweepSpec, FailedPoint, PlanTable, StartupFacts or ScalingReport."""
    if str(path).endswith(LOG_SUFFIX):
        return _log(path)
    return from_document(read_json(path), path)


def load_as(path: str | Path, kind: str | tuple[str, ...], purpose: str, need: str | None = None) -> Any:
    """A file of one kind (or of one of `kind`), for a reader that takes only that; any other file is refused in
    one line that names both: "'x.json' is a plan table; predict needs a run result" (`need` replaces "a run
    result" in it)."""
    if str(path).endswith(LOG_SUFFIX):
        if "startup" not in _kinds(kind):
            raise wrong_kind(path, "startup", None, purpose, need or _needed(kind))
        return _log(path)
    return document_as(read_json(path), path, kind, purpose, need)


def document_as(doc: Any, path: str | Path, kind: str | tuple[str, ...], purpose: str,
                need: str | None = None) -> Any:
    """`load_as` of a document already read."""
    got = kind_of(doc)
    if got not in _kinds(kind):
        raise wrong_kind(path, got, doc, purpose, need or _needed(kind))
    return from_document(doc, path)


def _kinds(kind: str | tuple[str, ...]) -> tuple[str, ...]:
    return (kind,) if isinstance(kind, str) else kind


def _needed(kind: str | tuple[str, ...]) -> str:
    return " or ".join(KINDS[k] for k in _kinds(kind))


# ---------------------------------------------------------------- what `report` makes of a file

REPORTED = ("run", "sweep", "phases", "gap", "startup", "plan", "tune")  # the kinds `report` shows
NOT_OURS = "not an offline-bench result (run, sweep, phases, explain-gap, startup, plan, tune)"
NOT_SHOWN = {  # files of ours that `report` does not show on their own, and why
    "sweep-spec": "a sweep definition: give the sweep's directory",
    "failed-point": "a failed sweep point: give the sweep's directory",
    "scaling": "a scaling report: `scaling` prints it",
}
REPORT_DATA: dict[type, Callable[[Any], tuple[str, Any]]] = {
    RunResult: lambda r: ("run", r), PhasesResult: lambda p: ("phases", p), GapLadder: lambda g: ("gap", g.pair()),
    SweepSummary: lambda s: ("sweep", s), PlanTable: lambda t: ("plan", t.rows),
    StartupFacts: lambda f: ("startup", f.facts), TuneResult: lambda t: ("tune", t)}


@dataclass
class Item:
    kind: str  # one of REPORTED, or "skipped"
    path: str
    data: Any  # RunResult, SweepSummary, PhasesResult, (reports, runs), startup facts, plan rows, or a reason
    label: str

    @property
    def anchor(self) -> str:
        return "".join(c if c.isalnum() else "-" for c in self.path).strip("-").lower()


def report_view(result: Result) -> tuple[str, Any]:
    """(report kind, what its section shows) of a loaded file; ("skipped", reason) for kinds `report` does not
    show on their own."""
    if type(result) in REPORT_DATA:
        return REPORT_DATA[type(result)](result)
    return "skipped", NOT_SHOWN[result.kind]


def _skipped(e: NotAResult) -> tuple[str, str]:
    return "skipped", NOT_OURS if e.reason == describe(None) else e.reason


def classify(path: Path, data: Any) -> tuple[str, Any]:
    """(report kind, what it shows) for one JSON document; ("skipped", reason) when `report` cannot show it."""
    try:
        return report_view(from_document(data, path))
    except NotAResult as e:
        return _skipped(e)


def _label(path: Path, depth: int = 2) -> str:
    """The file's name without .json and its `depth - 1` parent folders."""
    parts = [*path.parent.parts[-(depth - 1):], result_name(path)]
    return "/".join(part for part in parts if part not in ("", "/"))


def unique_labels(items: list[Item]) -> None:
    """Labels that name several inputs (points/gmu-0.9_mml-8192 of two sweeps) take more parent folders."""
    for depth in range(3, 8):
        seen = Counter(item.label for item in items)
        clashing = [i for i in items if seen[i.label] > 1]
        if not clashing:
            return
        for item in clashing:
            item.label = _label(Path(item.path), depth)


def load_item(path: Path) -> Item:
    """One file as `report` shows it: loaded by its kind, or skipped with the reason."""
    try:
        kind, data = report_view(load(path))
    except NotAResult as e:
        kind, data = _skipped(e)
    return Item(kind, str(path), data, _label(path))


__all__ = ["KINDS", "MODELS", "REPORTED", "Item", "Result", "classify", "document_as", "from_document", "load",
           "load_as", "load_item", "report_view", "unique_labels"]
