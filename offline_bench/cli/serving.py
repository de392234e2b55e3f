"""Commands for a server: `serve-probe` measures one, `serve-preset` starts one on a preset."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Optional

import typer

from offline_bench.cli import options as o
from offline_bench.cli.configs import CostFlags, EngineFlags, WorkloadFlags
from offline_bench.cli.flags import Omit, command
from offline_bench.cli.options import ApiKey, Fmt, Gmu, KvBytes, Mml, Opt, Seed, Timeout
from offline_bench.cli.terminal import finish, print_results
from offline_bench.core import validate as v
from offline_bench.core.procs import guard_descendants
from offline_bench.report.formats import check_format, render
from offline_bench.results.run import check_writable, keep_result
from offline_bench.serving import probe as serving
from offline_bench.workloads import scenarios
from offline_bench.workloads.levels import concurrency_levels

SCENARIO = v.Choice(*scenarios.SCENARIOS, former=scenarios.FORMER_NAMES,
                    message="{flag} {value}: choose one of {choices}")


@command("serve-probe")
def serve_probe(
    *, base_url: Annotated[str, Opt("--base-url", help="Server root, e.g. http://127.0.0.1:8000"), o.URL],
    served_model_name: Annotated[str, Opt("--served-model-name", help="Model name the server answers to."), o.MODEL],
    api_key: ApiKey = None,
    concurrency: Annotated[Optional[str], Opt("--concurrency", "--max-concurrency", help="Requests kept in "
                                              "flight (default 1); with --request-rate a cap (default none, as "
                                              "vllm bench serve); a comma list runs each."), o.LEVELS] = None,
    chat: Annotated[bool, Opt("--chat/--completions", help="Use /v1/chat/completions.")] = False,
    timeout: Timeout = 300.0,
    tokenizer: Annotated[Optional[str], Opt(help="Tokenizer for synthetic token-id prompts (HF id, path, "
                                                 "preset:NAME)."), o.MODEL] = None,
    seed: Seed = 0, workload: Annotated[WorkloadFlags, Omit("detokenize", "repeats")],
    client_processes: Annotated[o.Count, Opt(help="Processes sending the requests (default: 1, or up to 8 "
                                                  "for --request-rate and over 32 in flight).")] = None,
    scenario: Annotated[Optional[str], Opt(help="A named chat stress test instead of the workload flags: chat-1 "
                                                "(one stream, max_tokens 512, temperature 0.7) or chat-10 (10 "
                                                "concurrent streams, temperature 0.8)."), SCENARIO] = None,
    output: Annotated[o.Dest, Opt("--output", "-o", "--output-json", help="JSON file; with several levels, '-cN' "
                                                                         "(or '-rR') is added before .json.")] = None,
    fmt: Fmt("run") = "table", cost: CostFlags,
) -> None:
    """Measure a running OpenAI-compatible server, as `run` does.

    Streaming, exact usage, with the server's own state (KV use, running/waiting, preemptions, prefix-cache hits)
    sampled from its /metrics.

    With --request-rate the requests follow the same seeded schedule as `run --request-rate`, every one sent on
    time (no cap on requests in flight unless --concurrency gives one, as `vllm bench serve`).

    Example: offline-bench serve-probe --base-url http://127.0.0.1:8000 --served-model-name preset:tiny-llama
    --tokenizer preset:tiny-llama --concurrency 1,10,64 --num-prompts 64 --output serving.json

    A chat stress test: offline-bench serve-probe --base-url http://127.0.0.1:8000 --served-model-name gpt-4o
    --api-key sk-123456 --scenario chat-10 --warmup 0
    """
    check_format("run", fmt)
    if scenario:
        _probe_scenario(scenario, base_url, served_model_name, api_key, timeout, workload.warmup, seed, output, fmt)
        return
    levels = concurrency_levels(concurrency, workload.num_prompts, workload.request_rate)
    wl = workload.to_config(seed=seed, num_prompts=levels[0].num_prompts, request_rate=levels[0].request_rate)
    cfg = serving.ProbeConfig(base_url=base_url, served_model_name=served_model_name,
                              api_key=serving.api_key_from_env(api_key), chat=chat, timeout_s=timeout, workload=wl,
                              goodput_slo_ms=workload.slo(), client_processes=client_processes,
                              prices=cost.to_prices())
    cfg.check()
    check_writable(output, "--output")
    finish(print_results("run", fmt, serving.probe_levels(cfg, levels, tokenizer, output)))


def _probe_scenario(name: str, base_url: str, served_model_name: str, api_key: str | None, timeout: float,
                    warmup: int, seed: int, output: str | None, fmt: str) -> None:
    """serve-probe --scenario: the named stress test as chat streams; the result, then its per-stream table (json:
    the result alone, one document)."""
    wl, warm, timed = scenarios.scenario_workload(name, warmup, seed)
    cfg = serving.ProbeConfig(base_url=base_url, served_model_name=served_model_name,
                              api_key=serving.api_key_from_env(api_key), chat=True, timeout_s=timeout, workload=wl)
    cfg.check()
    check_writable(output, "--output")
    result = serving.probe(cfg, len(timed), requests=(warm, timed))
    lost = print_results("run", fmt, [keep_result(result, output)])
    if fmt != "json":
        typer.echo(render("scenario", fmt, result))
    finish(lost)


@command("serve-preset", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def serve_preset(
    ctx: typer.Context,
    *, name: Annotated[str, typer.Argument(help="Preset name, e.g. tiny-llama."), v.Text("tiny-llama")],
    port: Annotated[int, Opt(help="Port to listen on."), o.PORT] = 8000,
    host: Annotated[str, Opt(help="Address to bind."), v.Text("127.0.0.1")] = "127.0.0.1",
    max_model_len: Mml = None, gpu_memory_utilization: Gmu = None, kv_cache_memory_bytes: KvBytes = None,
    api_key: Annotated[Optional[str], Opt("--api-key", help="Require this key from clients.",
                                          show_default=False), o.KEY] = None,
    print_command: Annotated[bool, Opt(help="Print the vLLM command instead of running it.")] = False,
) -> None:
    """Start `vllm serve` on a preset model (dummy weights).

    Served as 'preset:NAME'; runs until stopped. Any further flags go to `vllm serve` as given (a later
    --served-model-name replaces the preset's name). On a loopback address vLLM's dev-mode endpoints are on
    (VLLM_SERVER_DEV_MODE=1: serve-probe reads the scheduler limits from /server_info).

    Example: offline-bench serve-preset tiny-llama --port 8011

    As served for the chat stress tests (serve-probe --scenario): offline-bench serve-preset llama-3.1-8b
    --api-key sk-123456 --served-model-name gpt-4o
    """
    ecfg = EngineFlags(model=f"preset:{name}", max_model_len=max_model_len,
                       gpu_memory_utilization=gpu_memory_utilization,
                       kv_cache_memory_bytes=kv_cache_memory_bytes).to_config()
    cmd = serving.serve_preset_command(name, port, host, max_model_len=max_model_len,
                                       gpu_memory_utilization=gpu_memory_utilization, api_key=api_key,
                                       kv_cache_memory_bytes=ecfg.kv_cache_memory_bytes, extra=list(ctx.args))
    if print_command:
        typer.echo(" ".join("<key>" if api_key and c == api_key else c for c in cmd))
        return
    sys.stdout.flush()
    guard_descendants()  # the watchdog stays this pid's child across the exec: the server's engine dies with it
    os.execve(cmd[0], cmd, serving.serve_env(host))
