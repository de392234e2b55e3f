"""A run result (`run`, `predict`, `serve-probe`): run, throughput, latency, KV cache, memory and start-up, energy
and cost."""

from __future__ import annotations

from offline_bench.predict import accuracy
from offline_bench.report.table import Column, Document, Style, Table, decimals, fmt
from offline_bench.results.energy import Cost, Energy
from offline_bench.results.run import RunResult

CSV_HEADERS = ["section", "metric", "value", "p50", "p90", "p99", "max"]
WINDOW = Style(".2f", ints=None)


def _f(value: object, digits: int = 2) -> str:
    return fmt(value, decimals(digits, none="unknown"))


def _rates(r: RunResult) -> list[list[str]]:
    t = r.throughput
    rates = []
    for name in ("requests_per_s", "input_tokens_per_s", "output_tokens_per_s", "total_tokens_per_s",
                 "prefill_tokens_per_s", "decode_tokens_per_s"):
        ci = t.ci95.get(name)
        band = f"{_f(ci.low)} .. {_f(ci.high)}" if ci and ci.low is not None else ""
        rates.append([name, _f(getattr(t, name)), band])
    if t.steady_output_tokens_per_s is not None:
        w = t.steady_window_s or [0.0, 0.0]
        rates.append(["steady window: output tok/s", _f(t.steady_output_tokens_per_s),
                      f"{fmt(w[0], WINDOW)}-{fmt(w[1], WINDOW)} s of pass 1"])
    if t.goodput_requests_per_s is not None:
        slo = ", ".join(f"{k.removesuffix('_ms')} <= {v:g} ms" for k, v in (r.goodput_slo_ms or {}).items())
        rates.append(["goodput_requests_per_s", _f(t.goodput_requests_per_s), f"{_f(t.good_requests_pct, 1)}% good"
                      + (f" ({slo})" if slo else "")])
    if r.roofline:
        rf = r.roofline
        rates[4].append(f"{_f(rf.get('prefill_pct_of_ceiling'), 1)}% of {rf['gpu']} ceiling")
        rates[5].append(f"{_f(rf.get('decode_pct_of_ceiling'), 1)}% of ceiling at batch {rf['batch_assumed']}")
    return rates


def _kv(r: RunResult) -> list[list[str]]:
    kv = r.kv_cache
    rows = [["num_blocks x block_size", f"{_f(kv.num_blocks)} x {_f(kv.block_size)}"],
            ["capacity_tokens", _f(kv.capacity_tokens)],
            ["logged by engine (tokens)", _f(kv.logged_capacity_tokens)],
            ["capacity_gib", _f(kv.capacity_gib, 3)], ["bytes_per_token", _f(kv.bytes_per_token)],
            [f"max_concurrency @ {_f(kv.max_model_len)} tokens", _f(kv.max_concurrency)],
            ["peak_usage_pct", _f(kv.peak_usage_pct)], ["preemptions", _f(kv.preemptions)],
            ["prefix_cache_hit_rate", _f(kv.prefix_cache_hit_rate, 4)],
            ["prompt tokens found in the prefix cache", _f(kv.prompt_cache_hit_rate, 4)]]
    if kv.predicted_tokens is not None and r.mode != "predicted":
        rows.insert(3, [f"plan's prediction ({kv.predicted_basis})",
                        f"{_f(kv.predicted_tokens)} tokens ({_f(kv.predicted_error_pct, 3)}%)"])
    return rows


def _head(r: RunResult) -> list[list[str]]:
    w, e = r.workload, r.environment
    device = e.gpu_name or f"CPU ({e.cpu})"
    head = [["model", r.model], ["device", f"{device}, vllm {e.vllm_version}"],
            ["workload", f"{w.source}: {w.num_prompts} prompts, {_f(w.total_input_tokens, 0)} in / "
                         f"{_f(w.total_output_tokens, 0)} out tokens in all, repeats {w.repeats}"
                         + ("" if w.concurrency is None else f", {w.concurrency} in flight")
                         + ("" if w.request_rate is None else f", {w.request_rate:g} req/s arriving (burstiness "
                                                              f"{w.burstiness:g})")],
            ["wall time (mean)", _f(r.throughput.duration_s, 3) + " s"]]
    if r.mode == "predicted" and r.prediction:
        sm = r.prediction.get("step_model", {})
        # the fit's error is its median step's: total_error_pct compares summed step times, which the fit solves
        # its per-token costs from, so it is near 0 however well the steps fit (it printed 0.00% beside 4.03%)
        head.insert(0, ["mode", f"PREDICTED from {r.prediction.get('calibration')} (step model fit: "
                                f"{_f(sm.get('median_step_error_pct'))}% median step error over its "
                                f"{sm.get('steps_fitted')} steps)"])
        if r.prediction.get("expected_error"):
            head.insert(1, ["expected error", accuracy.brief(r.prediction["expected_error"])])
    return head


NOT_RECORDED = "not recorded in this result: older, predicted and imported results carry none"


def unknown_energy(e: Energy | None) -> str:
    """The one line of an energy not measured (a result from before energy was recorded: None)."""
    return f"unknown ({e.reason or 'not sampled'})" if e is not None else f"unknown ({NOT_RECORDED})"


def _energy(e: Energy | None) -> list[list[str]]:
    if e is None or e.status != "measured":
        return [["energy", unknown_energy(e)]]
    checks = ", ".join(f"GPU {g.index} {g.counter_vs_samples_pct:+.2f}%" if g.counter_vs_samples_pct is not None
                       else f"GPU {g.index} no counter (joules from the samples)" for g in e.gpus)
    return [["J per output token", _f(e.joules_per_output_token, 4)],
            ["J per total token (prompt + output)", _f(e.joules_per_total_token, 4)],
            ["output tokens per J", _f(e.output_tokens_per_joule, 3)],
            ["above-idle J per output token", _f(e.above_idle_joules_per_output_token, 4)],
            [f"average W (sum of {len(e.gpus)} GPU(s))", _f(e.avg_watts, 1)],
            ["peak W (sum of each GPU's peak)", _f(e.peak_watts, 1)],
            ["idle W (1 s before the engine started)", _f(e.idle_watts, 1)],
            ["J per timed pass", "; ".join(_f(j, 1) for j in e.joules_per_pass) or "unknown"],
            ["samples vs energy counter", checks or "unknown"],
            ["method", e.method or "unknown"]]


def _cost(c: Cost | None) -> list[list[str]]:
    """$ per million output tokens at the prices given (nothing when no price was given)."""
    if c is None:
        return []
    rows = []
    if c.gpu_hour_usd is not None:
        rows.append(["$ per million output tokens (GPU time)",
                     f"{_f(c.usd_per_million_output_tokens, 4)} ({c.gpus} GPU(s) x ${_f(c.gpu_hour_usd, 2)}/h)"])
    if c.kwh_usd is not None:
        rows.append(["$ per million output tokens (energy)",
                     f"{_f(c.energy_usd_per_million_output_tokens, 4)} (${_f(c.kwh_usd, 3)}/kWh)"])
    if c.reason:
        rows.append(["cost unknown", c.reason])
    return rows


def _pairs(title: str, rows: list[list[str]]) -> Table:
    return Table([Column(""), Column("")], rows, title=title)


def document(r: RunResult) -> Document:
    m, s = r.memory, r.startup
    memory = [["weights_gib", _f(m.weights_gib)], ["peak_activation_gib", _f(m.peak_activation_gib)],
              ["cuda_graph_gib", _f(m.cuda_graph_gib)], ["non_torch_gib", _f(m.non_torch_gib)],
              ["kv_cache_gib", _f(m.kv_cache_gib)], ["init_s (LLM() wall time)", _f(s.get("init_s"))],
              ["init_engine_s (engine log)", _f(s.get("init_engine_s"))]]
    rates = _rates(r)
    rate_cols = [Column("metric"), Column("mean", "per s"), Column("95% CI", "per s"), Column("roofline")]
    latency = [[name, *(_f(getattr(getattr(r.latency, name), q)) for q in ("mean", "p50", "p90", "p99", "max"))]
               for name in ("frontend_ms", "queue_ms", "prefill_ms", "decode_ms", "ttft_ms", "tpot_ms", "itl_ms",
                            "e2e_ms", "arrival_lateness_ms")
               if getattr(r.latency, name) is not None]
    tables = [_pairs("Run", _head(r)),
              Table(rate_cols[:max(len(x) for x in rates)], rates, title="Throughput"),
              Table([Column("metric"), *(Column(q, "ms") for q in ("mean", "p50", "p90", "p99", "max"))], latency,
                    title="Latency (ms)"),
              _pairs("KV cache", _kv(r)), _pairs("Memory and start-up", memory)]
    if r.energy is not None or r.cost is not None:  # results from before energy was recorded: no section
        tables.append(_pairs("Energy and cost", _energy(r.energy) + _cost(r.cost)))
    return Document(tables, own_json=lambda: r.model_dump_json(indent=2), csv_sections=CSV_HEADERS)
