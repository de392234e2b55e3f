"""Serving figures from elsewhere -> this tool's result schema, with what is unknown left unknown.

- `vllm bench serve --save-result` JSON (per-request ttfts / itls / lengths when present);
- hand-entered figures (YAML or JSON): {"name", "model", "source", "runs": [{"concurrency", "ttft_s" or
  "ttft_ms", "tpot_ms", "e2e_s", "output_tokens_per_s", "total_tokens_per_s", "requests_per_s",
  "total_output_tokens", "num_prompts", "input_len", "output_len"}]}.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from offline_bench.core.environment import Environment
from offline_bench.core.errors import BenchError, input_file
from offline_bench.core.version import __version__
from offline_bench.results import build as results
from offline_bench.results.run import Kept, Latency, RequestRecord, RunResult, Throughput, Workload, keep_result
from offline_bench.results.stats import Distribution

# workload facts (positive integers) vs measured figures (non-negative numbers); a run needs one figure at least
HAND_COUNTS = {"concurrency", "num_prompts", "input_len", "output_len", "total_output_tokens", "total_input_tokens"}
HAND_KEYS = {"concurrency", "ttft_s", "ttft_ms", "tpot_ms", "itl_ms", "e2e_s", "e2e_ms", "output_tokens_per_s",
             "total_tokens_per_s", "requests_per_s", "total_output_tokens", "total_input_tokens", "num_prompts",
             "input_len", "output_len", "duration_s"}


def _unknown_env() -> Environment:
    return Environment(offline_bench_version=__version__, python_version="unknown", platform="unknown",
                       hostname="unknown", cpu=None, cpu_count=None, vllm_version=None, vllm_distribution=None,
                       torch_version=None, cuda_version=None, driver_version=None, device="unknown", gpu_name=None,
                       gpu_count=None, gpu_memory_gib=None)


def _dist_mean(value: float | None) -> Distribution:
    """A single reported figure: kept as the mean, percentiles unknown."""
    d = Distribution.from_values([])
    return d if value is None else d.model_copy(update={"count": 1, "mean": float(value)})


def _result(model: str, source: str, conc: int | None, tp: Throughput, lat: Latency, wl: Workload,
            records: list[RequestRecord], notes: list[str], env: Environment | None = None) -> RunResult:
    return RunResult(**results.stamp(), mode="imported", model=model, endpoint=None,
                     environment=env or _unknown_env(), engine_args={"imported_from": source}, workload=wl,
                     startup={}, kv_cache=results.unknown_kv_cache(), memory=results.unknown_memory(),
                     throughput=results.summarize_passes([tp]),
                     latency=lat, timeline=[], requests=records, notes=notes)


def _nan_rate(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) else None


BENCH_FIGURES = ("duration", "completed", "num_prompts", "total_input_tokens", "total_output_tokens",
                 "request_throughput", "output_throughput", "total_token_throughput", "max_concurrency",
                 "mean_ttft_ms", "mean_tpot_ms", "mean_e2el_ms", "mean_itl_ms")
BENCH_LISTS = ("ttfts", "itls", "input_lens", "output_lens")


def _check_bench_finite(data: dict[str, Any], source: str) -> None:
    """NaN or inf where `vllm bench serve` gives a figure (a run whose requests all failed, an edited file): a
    result would hold null (unknown) in its place without a word, so it is refused."""
    found = [(k, data.get(k)) for k in BENCH_FIGURES]
    for key in BENCH_LISTS:
        for i, item in enumerate(data.get(key) or []):
            found += [(f"{key}[{i}]", x) for x in (item if isinstance(item, list) else [item])]
    bad = [(k, v) for k, v in found if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise BenchError(f"'{source}': {bad[0][0]} is {bad[0][1]!r}, not a figure{more}: nothing imported (did "
                         "every request fail? `completed` says how many finished)")


def from_vllm_bench(data: dict[str, Any], source: str) -> RunResult:
    _check_bench_finite(data, source)
    ttfts, itls = data.get("ttfts") or [], data.get("itls") or []
    ins, outs = data.get("input_lens") or [], data.get("output_lens") or []
    records = []
    for i, ttft in enumerate(ttfts):
        gaps = [g * 1000 for g in (itls[i] if i < len(itls) else [])]
        n_out = outs[i] if i < len(outs) else 0
        decode = sum(gaps)
        records.append(RequestRecord(repeat=0, index=i, input_tokens=ins[i] if i < len(ins) else 0,
                                     output_tokens=n_out, cached_tokens=None, finish_reason=None, preemptions=None,
                                     queue_ms=None, prefill_ms=None, decode_ms=None, ttft_ms=ttft * 1000,
                                     tpot_ms=decode / (n_out - 1) if n_out > 1 else None,
                                     e2e_ms=ttft * 1000 + decode, itl_ms=gaps))
    empty = Distribution.from_values([])
    if records:
        lat = results.latency(records)
    else:  # only aggregates were saved
        lat = Latency(queue_ms=empty, prefill_ms=empty, decode_ms=empty,
                      ttft_ms=_dist_mean(data.get("mean_ttft_ms")), tpot_ms=_dist_mean(data.get("mean_tpot_ms")),
                      e2e_ms=_dist_mean(data.get("mean_e2el_ms")), itl_ms=_dist_mean(data.get("mean_itl_ms")))
    dur = float(data.get("duration") or 0) or None
    tp = Throughput(duration_s=dur, requests_per_s=_nan_rate(data.get("request_throughput")),
                    input_tokens_per_s=(data.get("total_input_tokens", 0) / dur) if dur else None,
                    output_tokens_per_s=_nan_rate(data.get("output_throughput")),
                    total_tokens_per_s=_nan_rate(data.get("total_token_throughput")),
                    prefill_tokens_per_s=None, decode_tokens_per_s=None)
    conc = data.get("max_concurrency")
    wl = Workload(source=f"vllm bench serve ({data.get('dataset_name') or 'unknown dataset'})",
                  num_prompts=int(data.get("completed") or data.get("num_prompts") or len(records)),
                  total_input_tokens=int(data.get("total_input_tokens") or 0),
                  total_output_tokens=int(data.get("total_output_tokens") or 0), input_len=None, output_len=None,
                  range_ratio=None, seed=data.get("seed"), ignore_eos=data.get("ignore_eos"),
                  temperature=data.get("temperature"), top_p=data.get("top_p"),
                  detokenize=True, warmup_requests=0, repeats=1, concurrency=conc)
    return _result(str(data.get("model_id") or "unknown"), source, conc, tp, lat, wl, records,
                   ["Imported from `vllm bench serve --save-result`; settings the file does not hold are unknown."])


def from_hand(doc: dict[str, Any], source: str) -> list[tuple[str, RunResult]]:
    runs = doc.get("runs")
    if not isinstance(runs, list) or not runs:
        raise BenchError(f"{source}: hand-entered figures need a non-empty 'runs' list, e.g. "
                         "runs: [{concurrency: 1, ttft_s: 0.36, output_tokens_per_s: 39.1}]")
    name = re.sub(r"[^\w.-]+", "-", str(doc.get("name") or Path(source).stem))
    out = []
    for i, run in enumerate(runs, 1):
        if not isinstance(run, dict):
            raise BenchError(f"{source}: runs[{i}] must be a mapping of figures")
        unknown = set(run) - HAND_KEYS
        if unknown:
            raise BenchError(f"{source}: runs[{i}] has unknown keys {sorted(unknown)}; known: {sorted(HAND_KEYS)}")
        _check_hand_run(run, f"{source}: runs[{i}]")
        conc = run.get("concurrency")
        ttft = run.get("ttft_ms", run["ttft_s"] * 1000 if "ttft_s" in run else None)
        e2e = run.get("e2e_ms", run["e2e_s"] * 1000 if "e2e_s" in run else None)
        out_tok = run.get("total_output_tokens")
        dur = run.get("duration_s")
        rate = run.get("output_tokens_per_s")
        if dur is None and out_tok and rate:
            dur = out_tok / rate  # derived: the report gives tokens and a rate
        empty = Distribution.from_values([])
        lat = Latency(queue_ms=empty, prefill_ms=empty, decode_ms=empty, ttft_ms=_dist_mean(ttft),
                      tpot_ms=_dist_mean(run.get("tpot_ms")), e2e_ms=_dist_mean(e2e),
                      itl_ms=_dist_mean(run.get("itl_ms")))
        tp = Throughput(duration_s=dur, requests_per_s=run.get("requests_per_s"), input_tokens_per_s=None,
                        output_tokens_per_s=rate, total_tokens_per_s=run.get("total_tokens_per_s"),
                        prefill_tokens_per_s=None, decode_tokens_per_s=None)
        wl = Workload(source=str(doc.get("source") or source), num_prompts=run.get("num_prompts"),
                      total_input_tokens=run.get("total_input_tokens"), total_output_tokens=out_tok,
                      input_len=run.get("input_len"), output_len=run.get("output_len"), range_ratio=None, seed=None,
                      ignore_eos=None, temperature=None, top_p=None, detokenize=None, warmup_requests=0, repeats=1,
                      concurrency=conc)
        notes = ["Hand-entered figures: a single reported latency is stored as the mean; percentiles, rates and "
                 "settings the report does not give are unknown."]
        out.append((f"{name}-c{conc}" if conc is not None else f"{name}-{i}",
                    _result(str(doc.get("model") or "unknown"), source, conc, tp, lat, wl, [], notes)))
    _check_distinct([(stem, run) for (stem, _), run in zip(out, runs)], source)
    return out


def _check_distinct(named: list[tuple[str, dict[str, Any]]], source: str) -> None:
    """Two runs of one concurrency would be written to one file, the second over the first: refused, named."""
    by_stem: dict[str, list[int]] = {}
    for i, (stem, _) in enumerate(named, 1):
        by_stem.setdefault(stem, []).append(i)
    for stem, idx in by_stem.items():
        if len(idx) > 1:
            which = ", ".join(f"runs[{i}]" for i in idx[:-1]) + f" and runs[{idx[-1]}]"
            conc = named[idx[0] - 1][1].get("concurrency")
            raise BenchError(f"{source}: {which} have the same concurrency ({conc}), so each would be written to "
                             f"{stem}.json over the other: give each run its own concurrency, or put runs of "
                             "another workload in a file of their own (with its own name)")


def _check_hand_run(run: dict[str, Any], where: str) -> None:
    for key, value in run.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BenchError(f"{where}: {key} must be a number, got {value!r}")
        if not math.isfinite(value):  # YAML .nan / .inf, JSON NaN / Infinity: a result would hold null silently
            raise BenchError(f"{where}: {key} must be a finite number, got {value!r}")
        if key in HAND_COUNTS and (not isinstance(value, int) or value < 1):
            raise BenchError(f"{where}: {key} must be a positive integer, got {value!r}")
        if value < 0:
            raise BenchError(f"{where}: {key} must not be negative, got {value!r}")
    if not set(run) - HAND_COUNTS:
        raise BenchError(f"{where} gives no figures: add at least one of ttft_ms, tpot_ms, e2e_ms, "
                         "output_tokens_per_s, ... (only workload facts were given)")


def import_file(source: str, output_dir: str) -> list[Kept]:
    """Every result converted from `source`, each saved in `output_dir` (in the temp directory when its file cannot
    be written: `Kept.unwritten`)."""
    path = input_file(source, "figures file", "pass a vllm bench serve result or a YAML/JSON of figures")
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        import yaml  # only for YAML input

        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise BenchError(f"'{source}' is neither JSON nor YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(doc, dict):
        raise BenchError(f"'{source}' must hold a mapping (a vllm bench serve result or {{name, runs: [...]}})")
    outdir = Path(output_dir)
    if "runs" in doc:
        pairs = from_hand(doc, source)
    elif "output_throughput" in doc or "ttfts" in doc:
        pairs = [(path.stem + "-imported", from_vllm_bench(doc, source))]
    else:
        raise BenchError(f"'{source}' is not a vllm bench serve result (no output_throughput) and has no 'runs'")
    return [keep_result(result, str(outdir / f"{stem}.json")) for stem, result in pairs]
