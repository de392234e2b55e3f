"""`serve-probe --scenario`: a chat stress test, per stream and in all."""

from __future__ import annotations

from offline_bench.report.table import NUM, Column, Document, Style, Table, heading
from offline_bench.results.run import RunResult
from offline_bench.workloads.scenarios import canonical, scenario, scenario_rows

ONE = Style(",.1f", ints=None)
COLUMNS = [Column("stream"), Column("TTFT ms", "ms", ONE), Column("prompt tokens", "tokens", NUM),
           Column("output tokens", "tokens", NUM), Column("total tokens", "tokens", NUM),
           Column("tokens/s", "tokens/s", ONE), Column("decode tokens/s", "tokens/s", ONE), Column("finish")]
KEYS = ("stream", "ttft_ms", "prompt_tokens", "output_tokens", "total_tokens", "output_tokens_per_s",
        "decode_tokens_per_s", "finish_reason")
NOTE = ("tokens/s: output tokens / the stream's whole time (request sent to last token); decode tokens/s: after the "
        "first token; 'all': total output tokens / wall time of the pass, TTFT the mean. Token counts are the "
        "server's usage report.")


def document(r: RunResult) -> Document:
    name = canonical(r.workload.source.removeprefix("scenario:"))  # results of before record a former name
    rows = [[row[k] for k in KEYS] for row in scenario_rows(r)]
    title = (f"scenario {name}: {scenario(name).description} (temperature {r.workload.temperature:g}, "
             f"max_tokens {r.workload.output_len})")
    return Document([heading(title, 3), Table(COLUMNS, rows, notes=[NOTE])])
