"""The table of docs/results/h100-rate.md from the saved results: offline vs serving at each request rate.

usage: python scripts/rate_report.py [DIR]   (default docs/results/h100-rate; reads offline-rR.json / serving-rR.json)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from offline_bench import RunResult


def _f(v: float | None, spec: str = ",.1f") -> str:
    return "" if v is None else format(v, spec)


def rows(d: Path) -> list[str]:
    names = (re.match(r"offline-r([\d.]+)\.json(\.gz)?$", p.name) for p in d.glob("offline-r*.json*"))
    rates = sorted({float(m.group(1)) for m in names if m})
    out = ["| rate (req/s) | side | requests | output tok/s | TTFT p50 / p99 ms | TPOT p50 / p99 ms | good % "
           "| goodput req/s | arrival lateness p50 / p99 ms | peak KV % | preemptions |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for rate in rates:
        for side in ("offline", "serving"):
            path = d / f"{side}-r{rate:g}.json"
            r = RunResult.load(path if path.exists() else path.with_name(path.name + ".gz"))  # large ones gzipped
            t, lat, late = r.throughput, r.latency, r.latency.arrival_lateness_ms
            out.append(f"| {rate:g} | {side} | {len(r.requests)} | {_f(t.output_tokens_per_s, ',.0f')} "
                       f"| {_f(lat.ttft_ms.p50)} / {_f(lat.ttft_ms.p99)} | {_f(lat.tpot_ms.p50, '.2f')} / "
                       f"{_f(lat.tpot_ms.p99, '.2f')} | {_f(t.good_requests_pct)} "
                       f"| {_f(t.goodput_requests_per_s, '.2f')} "
                       f"| {_f(late.p50, '.2f')} / {_f(late.p99, '.2f')} | {_f(r.kv_cache.peak_usage_pct, '.2f')} "
                       f"| {r.kv_cache.preemptions} |")
    return out


if __name__ == "__main__":
    print("\n".join(rows(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/results/h100-rate"))))
