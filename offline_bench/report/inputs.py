"""What `report` reads: files and directories walked, each file loaded by its kind (results.load), a sweep
directory as one item. What cannot be read becomes a "skipped" item (the page's "Not shown"): one folder of foreign
files never stops the report of the rest."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from offline_bench.analysis.sweep import analyze, load_rows
from offline_bench.core.errors import BenchError, NotAResult
from offline_bench.results.load import Item, load_as, load_item, unique_labels
from offline_bench.results.sweep import SweepSummary

SHOWN_SUFFIXES = (".json", ".json.gz", ".log")  # in a directory; other files (md, png, csv) are its own renderings


SWEEP_FILES = ("sweep.json", "summary.json")  # a sweep directory's own files (its points/ are read through them)


def _sweep(directory: Path, label: str) -> Item:
    spec, rows = load_rows(directory)  # reads only: `sweep --report` is what rewrites a sweep's files
    summary = directory / "summary.json"
    if not rows and summary.is_file():  # the points were not kept (docs/results): the summary has their rows
        return Item("sweep", str(directory), load_as(summary, "sweep", "report"), label)
    return Item("sweep", str(directory), SweepSummary(spec=spec, rows=rows, analysis=analyze(spec, rows)), label)


def _sweep_items(path: Path, root: Path) -> list[Item]:
    """A sweep directory: the sweep as one item (named by its path below the directory given, or its own name),
    and any other result kept beside it (e.g. a phases run)."""
    label = path.relative_to(root).as_posix() if path != root and path.is_relative_to(root) else path.name
    try:
        items = [_sweep(path, label)]
    except (ValidationError, ValueError, BenchError) as e:
        why = e.reason if isinstance(e, NotAResult) else type(e).__name__
        items = [Item("skipped", str(path), f"sweep.json unreadable ({why})", label)]
    beside = [p for p in sorted(path.iterdir()) if p.is_file() and p.name.endswith(SHOWN_SUFFIXES)
              and p.name not in SWEEP_FILES]
    return items + _walk(beside, root)


def _walk(paths: list[Path], root: Path) -> list[Item]:
    items: list[Item] = []
    for path in paths:
        if path.is_dir() and (path / "sweep.json").is_file():
            items += _sweep_items(path, root)
        elif path.is_dir():
            items += _walk([p for p in sorted(path.iterdir()) if p.is_dir() or p.name.endswith(SHOWN_SUFFIXES)],
                           root)
        else:
            items.append(load_item(path))
    return items


def load_items(paths: list[str]) -> list[Item]:
    """Every input, directories walked (a sweep directory is one item), in the order given; what is not a result
    is kept as a "skipped" item with the reason. BenchError only when nothing at all can be reported."""
    missing = [raw for raw in paths if not Path(raw).exists()]
    if missing:
        raise BenchError(f"'{missing[0]}' does not exist: give result files (JSON) or directories of them")
    items = [item for raw in paths for item in _walk([Path(raw)], Path(raw))]
    if not any(i.kind != "skipped" for i in items):
        raise BenchError(f"nothing to report in {', '.join(paths)}: give run, serve-probe, sweep, phases, "
                         "explain-gap or startup outputs")
    unique_labels(items)
    return items
