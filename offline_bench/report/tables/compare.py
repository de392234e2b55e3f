"""`compare`: runs metric by metric, with ratios to the baseline and a warning for every condition that differs."""

from __future__ import annotations

from offline_bench.analysis.compare import Labeled, mismatches, table
from offline_bench.report.table import KNOWN, RATIO, Column, Document, Table, warnings


def document(runs: list[Labeled], baseline: Labeled) -> Document:
    headers, rows = table(runs, baseline)
    n = len(runs)
    columns = ([Column(headers[0])] + [Column(h, style=KNOWN) for h in headers[1:n + 1]]
               + [Column(h, "x baseline", RATIO) for h in headers[n + 1:]])
    found = [f"{r.label} vs {baseline.label}: {m}" for r in runs if r is not baseline for m in mismatches(baseline, r)]
    return Document([Table(columns, rows, notes=[f"baseline: {baseline.label}"])]
                    + ([warnings(found)] if found else []))
