"""`explain-gap`: measure the server, then offline runs that move one condition at a time toward it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Optional

import typer

from offline_bench.analysis.gap import load_saved_serving
from offline_bench.cli import options as o
from offline_bench.cli.configs import EngineFlags, WorkloadFlags
from offline_bench.cli.flags import Omit, command
from offline_bench.cli.options import ApiKey, Fmt, Html, Opt, Timeout, Verbose
from offline_bench.cli.terminal import finish, write_file, write_html
from offline_bench.core.errors import BenchError
from offline_bench.measure import gap
from offline_bench.report.formats import check_format, render
from offline_bench.results.gap import save_ladder
from offline_bench.results.load import Item
from offline_bench.results.run import check_writable
from offline_bench.serving import probe as serving
from offline_bench.workloads.levels import concurrency_levels


@dataclass
class GapWorkloadFlags(WorkloadFlags):
    """`explain-gap`'s workload: one arrival rate, for the serving run and the last offline step."""
    request_rate: Annotated[Optional[float], Opt(help="Requests/s of the serving run and the last offline step "
                                                    "(seeded gamma gaps; default: all at once)."), o.RATE] = None


@command("explain-gap")
def explain_gap(
    *, base_url: Annotated[o.BaseUrl, Opt("--base-url", help="Server root, e.g. http://127.0.0.1:8000")] = None,
    served_model_name: Annotated[Optional[str], Opt("--served-model-name"), o.MODEL] = None,
    serving_result: Annotated[Optional[list[str]], Opt(
        "--serving-result", help="A saved serve-probe result of this workload, one per level (repeatable): for a "
                                 "server that had to be stopped to free the GPU."), o.PATH] = None,
    api_key: ApiKey = None,
    concurrency: Annotated[str, Opt("--concurrency", "--max-concurrency",
                                    help="Requests in flight, for the serving run and the last offline step; a comma "
                                         "list explains each level."), o.LEVELS] = "10",
    timeout: Timeout = 300.0,
    engine: Annotated[EngineFlags, Omit("tokenizer", "dtype", "kv_cache_dtype", "enforce_eager", "tensor_parallel_size",
                                        "pipeline_parallel_size", "load_format")],
    workload: Annotated[GapWorkloadFlags, Omit("range_ratio", "detokenize", "repeats", "goodput")],
    output: Annotated[o.Dest, Opt("--output", "-o", "--output-json", help="Write the ladder (JSON) here.")] = None,
    fmt: Fmt("gap") = "table", verbose: Verbose = False, html: Html = None,
) -> None:
    """Explain the gap between a server and the offline engine.

    Measure the server, then offline runs that switch one condition at a time toward it; attribute the gap.

    Example: offline-bench explain-gap --base-url http://127.0.0.1:8011 --served-model-name preset:tiny-llama
    --model preset:tiny-llama --concurrency 4 --num-prompts 32

    Server and engine on one GPU: serve-probe first (--output s.json), stop the server, then
    offline-bench explain-gap --serving-result s-c10.json --serving-result s-c64.json --concurrency 10,64 ...
    """
    check_format("gap", fmt)
    check_writable(output, "--output")
    check_writable(html, "--html")
    levels = [(c or 1, n) for c, n, _ in concurrency_levels(concurrency, workload.num_prompts)]
    wl = workload.to_config(seed=engine.seed, num_prompts=levels[0][1], request_rate=workload.request_rate)
    ecfg = engine.to_config()
    if base_url:
        serving.check_base_url(base_url)
    saved = load_saved_serving(serving_result or [], levels, wl)
    missing = [c for c, _ in levels if c not in saved]
    if missing and not (base_url and served_model_name):
        raise BenchError(f"concurrency {','.join(map(str, missing))} has no --serving-result: pass --base-url and "
                         "--served-model-name to measure the server, or a saved result for each level")
    url = base_url or (next(iter(saved.values())).endpoint or "saved result").split("/v1/")[0]
    cfg = serving.ProbeConfig(base_url=url, served_model_name=served_model_name or "",
                              api_key=serving.api_key_from_env(api_key), timeout_s=timeout, workload=wl)
    user_set = {k for k in ("max_num_seqs", "max_num_batched_tokens") if getattr(engine, k) is not None}
    reps, runs = gap.explain_gap(cfg, ecfg, levels, tokenizer=engine.model, serving=saved, echo_log=verbose,
                                 user_set=user_set)
    typer.echo(render("gap", fmt, reps))
    lost = write_file("ladder", output, lambda p: save_ladder(p, reps, runs))
    lost += write_html(html, [Item("gap", output or "explain-gap", (reps, runs), "explain-gap")]
                       + [Item("run", f"{c}-{i}", r, f"c{c} step {i + 1}") for c, steps in runs.items()
                          for i, (_, r) in enumerate(steps)])
    finish(lost)
