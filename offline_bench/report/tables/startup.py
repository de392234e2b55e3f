"""`startup`: the facts of vLLM's start-up log, one table per engine, and where the device memory went."""

from __future__ import annotations

import json

from offline_bench.report.table import Column, Document, Style, Table, heading
from offline_bench.results.startup import (
    FACT_KEYS,
    MEANING,
    UNITS,
    budget_line,
    derive,
    facts_incomplete,
    parse_engines,
    startup_document,
)

VALUE = Style("", ints=",", none="unknown")  # ints thousands separated, floats as read
COLUMNS = [Column("fact"), Column("value", style=VALUE, wrap=36), Column("unit"), Column("source"),
           Column("what it means / what changes it", wrap=70)]


def _engine(facts: dict) -> list:
    """The engine's heading, its table and the memory budget line."""
    f, derived = derive(facts)
    rows = [[key, f.get(key), UNITS.get(key, ""),
             "unknown" if f.get(key) is None else "derived" if key in derived else "read", MEANING.get(key, "")]
            for key in FACT_KEYS]
    budget = budget_line(f)
    if all(r[3] == "unknown" for r in rows if r[0] not in ("model", "vllm_version")):
        budget += " -- this log holds no start-up facts (truncated before the engine started?)"
    elif facts_incomplete(facts):
        budget += " -- the log ends before the engine finished starting (truncated?)"
    title = f"engine DP{facts['dp_rank']}" if "dp_rank" in facts else "engine"
    return [heading(title), Table(COLUMNS, rows, notes=[budget])]


def _json(engines: list[dict]) -> str:
    return json.dumps(startup_document(engines), indent=2)


def document(text: str) -> Document:
    engines = parse_engines(text)
    return Document([item for e in engines for item in _engine(e)],
                    own_json=lambda: _json(engines))
