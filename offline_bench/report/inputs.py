"""What `report` reads: files and directories walked, each file loaded by its kind (results.load), a sweep
directory as one item."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from offline_bench.analysis.sweep import analyze, load_rows
from offline_bench.core.errors import BenchError, NotAResult
from offline_bench.results.load import Item, load_item, unique_labels
from offline_bench.results.sweep import SweepSummary

SHOWN_SUFFIXES = (".json", ".json.gz", ".log")  # in a directory; other files (md, png, csv) are its own renderings


SWEEP_FILES = ("sweep.json", "summary.json")  # a sweep directory's own files (its points/ are read through them)


def _sweep(directory: Path) -> Item:
    spec, rows = load_rows(directory)  # reads only: `sweep --report` is what rewrites a sweep's files
    return Item("sweep", str(directory), SweepSummary(spec=spec, rows=rows, analysis=analyze(spec, rows)),
                directory.name)


def load_items(paths: list[str]) -> list[Item]:
    """Every input, directories walked (a sweep directory is one item), in the order given."""
    items: list[Item] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise BenchError(f"'{raw}' does not exist: give result files (JSON) or directories of them")
        if path.is_dir() and (path / "sweep.json").is_file():
            try:
                items.append(_sweep(path))
            except (ValidationError, ValueError, BenchError) as e:
                why = e.reason if isinstance(e, NotAResult) else type(e).__name__
                items.append(Item("skipped", str(path), f"sweep.json unreadable ({why})", path.name))
            beside = [str(p) for p in sorted(path.iterdir()) if p.is_file() and p.name.endswith(SHOWN_SUFFIXES)
                      and p.name not in SWEEP_FILES]  # e.g. a phases run kept with the sweep
            items.extend(load_items(beside) if beside else [])
        elif path.is_dir():
            inner = [str(p) for p in sorted(path.iterdir()) if p.is_dir() or p.name.endswith(SHOWN_SUFFIXES)]
            items.extend(load_items(inner))
        else:
            items.append(load_item(path))
    if not any(i.kind != "skipped" for i in items):
        raise BenchError(f"nothing to report in {', '.join(paths)}: give run, serve-probe, sweep, phases, "
                         "explain-gap or startup outputs")
    unique_labels(items)
    return items
