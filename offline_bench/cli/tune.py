"""`tune`: the best engine settings for a workload and its SLOs, predicted in seconds, confirmed with --verify."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Annotated, Optional

import typer

from offline_bench.cli import options as o
from offline_bench.cli.flags import command
from offline_bench.cli.options import Fmt, Html, Opt
from offline_bench.cli.terminal import finish, sweep_progress, write_html, written
from offline_bench.core import validate as v
from offline_bench.core.config import EngineConfig, Prices, parse_goodput
from offline_bench.core.errors import BenchError
from offline_bench.core.gpus import table_name
from offline_bench.measure import sweep as sweep_mod
from offline_bench.measure import tune as verify_mod
from offline_bench.predict import basis as basis_mod
from offline_bench.predict import replay as predict_mod
from offline_bench.predict import tune as tune_mod
from offline_bench.report.formats import check_format, render
from offline_bench.results.load import Item
from offline_bench.results.run import check_writable, keep_result
from offline_bench.results.tune import OBJECTIVES

PERCENTILE = v.Number("99", integer=False, lo=0, hi=100, lo_open=True, what="a percentile in (0, 100]")
Objective = Annotated[str, Opt("--objective", help="throughput (output tok/s), goodput (requests/s meeting every "
                                                   "SLO), gpus (fewest GPUs meeting the SLOs at the rate) or cost "
                                                   "(output tok/s per GPU: the least $ per token)."),
                      v.Choice(*OBJECTIVES)]


@dataclass
class TuneKnobs:
    """The knobs searched: each a comma list (default: vLLM's useful range)."""
    gpu_memory_utilization: o.GmuList = None
    kv_cache_memory_bytes: Annotated[Optional[str], Opt(help="KV cache sizes instead of gmu (the CPU build's knob), "
                                                             "e.g. 32MiB,64MiB."), o.BYTE_SIZES] = None
    max_model_len: o.LengthList = None
    max_num_seqs: o.CountList = None
    max_num_batched_tokens: o.LengthList = None
    kv_cache_dtype: o.KvDtypeList = None
    gpus: Annotated[Optional[int], Opt("--gpus", help="GPUs available: data-parallel layouts of the calibration's "
                                                      "TP up to this many are searched (default: its TP)."),
                    o.SIZES] = None

    def grid(self, workload: tune_mod.TuneWorkload, tp: int, limit: int | None) -> tune_mod.TuneGrid:
        given = {k: sweep_mod.parse_list(k, v) for k, v in dataclasses.asdict(self).items()
                 if v is not None and k != "gpus"}
        if "gpu_memory_utilization" in given and "kv_cache_memory_bytes" in given:
            raise BenchError("give --gpu-memory-utilization or --kv-cache-memory-bytes, not both")
        if "kv_cache_memory_bytes" not in given:
            given.setdefault("gpu_memory_utilization", list(tune_mod.GMU))
        given.setdefault("max_model_len", tune_mod.default_max_model_len(workload, limit))
        for k in given:  # every value passes the checks a run makes (one line if not)
            for value in given[k]:
                EngineConfig(**{k: value}).validate_values()
        gpus = self.gpus or tp
        if gpus % tp:
            raise BenchError(f"--gpus {gpus} is not a multiple of the calibration's tensor parallel size {tp}")
        return tune_mod.TuneGrid(**given, layouts=[(tp, d) for d in range(1, gpus // tp + 1)])


@command()
def tune(
    *, calibrate: Annotated[Optional[str], Opt("--calibrate", help="A `run` result of the model (it records every "
                                                                   "engine step): the step cost and KV terms to "
                                                                   "predict with (better than none)."), o.PATH] = None,
    model: Annotated[Optional[str], Opt("--model", help="The model to tune (default: the calibration's; another "
                                                        "is refused). Without --calibrate: required."), o.MODEL] = None,
    gpu: Annotated[Optional[str], Opt("--gpu", help="Tune for this GPU of the table (default: the calibration's, "
                                                   "or this machine's); the step cost moves by datasheet ratios."),
                   o.TABLE_GPU] = None,
    num_prompts: Annotated[o.Count, Opt(help="Requests (default: the calibration's, cycled; without one 1000).")]
    = None,
    input_len: Annotated[o.Count, Opt(help="Prompt tokens of every request (default: the calibration's).")] = None,
    output_len: Annotated[o.Count, Opt(help="Output tokens of every request (default: the calibration's).")] = None,
    request_rate: Annotated[Optional[float], Opt("--request-rate", help="Requests/s arriving (default: a closed "
                                                                        "batch)."), o.RATE] = None,
    burstiness: o.Burstiness = 1.0, seed: o.Seed = 0,
    concurrency: Annotated[o.Count, Opt("--concurrency", "--max-concurrency",
                                        help="Keep N requests in flight (a closed loop).")] = None,
    goodput: o.Goodput = None,
    slo_percentile: Annotated[float, Opt("--slo-percentile", help="The percentile the SLOs hold at."),
                              PERCENTILE] = 99.0,
    knobs: TuneKnobs, objective: Objective = "throughput", gpu_hour_cost: o.GpuHourCost = None,
    top: Annotated[int, Opt("--top", help="Ranked settings shown (json: all)."), o.POSITIVE] = 10,
    verify: Annotated[int, Opt("--verify", help="Measure the top K settings on the engine (one start each)."),
                      v.non_negative_int("3")] = 0,
    verify_dir: Annotated[str, Opt("--verify-dir", help="Where --verify writes its runs."), o.PATH] = "tune-verify",
    verify_repeats: Annotated[int, Opt("--verify-repeats", help="Timed passes per verified setting (2+: the noise "
                                                                "the verdict allows)."), o.POSITIVE] = 2,
    output: o.Output = None, fmt: Fmt("tune") = "table", html: Html = None,
) -> None:
    """The best engine settings for a workload and its SLOs.

    Every setting of the grid predicted from one calibration run (or, without one, a reference scaled to the model
    and GPU), ranked, with the Pareto frontier, the rejected regions and the command lines of the best; --verify
    measures the top ones.

    Example: offline-bench tune --calibrate run.json --request-rate 20 --goodput ttft:500 --goodput tpot:50
    --objective goodput --verify 3
    """
    check_format("tune", fmt)
    check_writable(output, "--output")
    slo = parse_goodput(goodput) or {}
    cal, basis = basis_mod.basis_for(calibrate, model, gpu, input_len, output_len)
    reqs = predict_mod.workload_requests(cal.result, num_prompts, input_len, output_len) if cal else \
        [(input_len, output_len)] * (num_prompts or 1000)
    rate = None if request_rate is None or math.isinf(request_rate) else request_rate  # inf: all at once
    workload = tune_mod.TuneWorkload(reqs, rate, burstiness, seed, concurrency)
    grid = knobs.grid(workload, basis.tp, basis.info.max_position_embeddings)
    if verify:
        check_writable(verify_dir, "--verify-dir", is_dir=True)
        wl = verify_mod.verify_workload(cal, workload, input_len, output_len, verify_repeats)
        base = verify_mod.base_config(basis.model, basis.engine_args, wl, slo, concurrency)
    hour, why = (Prices.given(gpu_hour_cost, None) or Prices()).gpu_hour(table_name(basis.gpu))
    if why:
        raise BenchError(why)
    result = tune_mod.tune(basis, workload, grid, slo, slo_percentile, objective, gpu_hour_usd=hour)
    if verify:
        if gpu is not None:
            result.notes.append(f"--verify measured on this machine's GPU, not the {gpu} predicted for.")
        with sweep_progress(len(verify_mod.to_verify(result, verify))) as on_point:
            result = verify_mod.verify(result, base, verify, verify_dir, on_point=on_point)
    kept = keep_result(result, output)
    typer.echo(render("tune", fmt, result, top))
    finish(written("result", output, kept.unwritten) + write_html(html, [Item("tune", output or "tune", result,
                                                                              "tune")]))

