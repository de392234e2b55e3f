"""`explain-gap`: the ladder from the offline engine to the served one, one table per concurrency."""

from __future__ import annotations

from offline_bench.report.table import Column, Document, Item, Style, Table, Text, heading
from offline_bench.results.gap import GapReport

COLUMNS = [Column("step"), Column("output tok/s", "tokens/s", Style(",.1f", ints=None)),
           Column("TTFT p50 ms", "ms", Style(",.1f", ints=None)), Column("TPOT p50 ms", "ms", Style(",.2f", ints=None)),
           Column("change", "tokens/s", Style("+,.1f", ints=None)),
           Column("share of gap", "fraction", Style(".1%", ints=None))]
LAST_ROW = "(the last row's share is the HTTP/serving path: API server, serialization, streaming, the client)"


def document(reps: list[GapReport]) -> Document:
    items: list[Item] = []
    for rep in reps:
        rows = [[s.step, s.output_tokens_per_s, s.ttft_ms_p50, s.tpot_ms_p50, s.change_tokens_per_s, s.share_of_gap]
                for s in rep.steps]
        items += [heading(f"concurrency {rep.concurrency}, {rep.num_prompts} requests", 3),
                  Table(COLUMNS, rows, notes=[rep.summary])]
    return Document([*items, Text([LAST_ROW])])
