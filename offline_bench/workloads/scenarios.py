"""Named serving scenarios, run by `serve-probe --scenario NAME`: chat stress tests of a fixed prompt.

chat-1 is one stream of the first prompt of prompts/seed.txt (max_tokens 512, temperature 0.7), chat-10 is 10
concurrent streams of the second (temperature 0.8), as the original test served its model (`vllm serve ...
--served-model-name gpt-4o --api-key sk-123456`) and streamed chat completions. Its report shows, per stream and in
all: time to first token, tokens/s and total tokens; `scenario_rows` holds those of a serve-probe result, with the
server's exact token counts (printed by report.tables.scenario). The names they first had (seed-single, seed-10)
are still accepted; results record the names above.
"""

from __future__ import annotations

from dataclasses import dataclass

from offline_bench.core.config import WorkloadConfig
from offline_bench.core.errors import BenchError
from offline_bench.results.run import RunResult
from offline_bench.workloads.requests import Request

# the scenarios' two prompts (prompts/seed.txt holds the same lines; a test keeps them equal)
SEED_PROMPTS = ("假设你是唐朝诗人李白,请用七言绝句描述一次雪夜独钓的场景", "请用鲁迅的文学风格描写一次深夜咖啡馆的场景")


@dataclass(frozen=True)
class Scenario:
    prompt: str
    streams: int  # concurrent streams, all of the same prompt
    max_tokens: int
    temperature: float
    description: str


SCENARIOS = {
    "chat-1": Scenario(SEED_PROMPTS[0], 1, 512, 0.7, "one chat stream of a classical-poetry prompt"),
    "chat-10": Scenario(SEED_PROMPTS[1], 10, 512, 0.8, "10 concurrent chat streams of a prose prompt"),
}
FORMER_NAMES = {"seed-single": "chat-1", "seed-10": "chat-10"}  # accepted, not listed: scripts and old results


def canonical(name: str) -> str:
    """A scenario's name now (a former name: the one it has now)."""
    return FORMER_NAMES.get(name, name)


def scenario(name: str) -> Scenario:
    if canonical(name) not in SCENARIOS:
        raise BenchError(f"--scenario {name}: choose one of {', '.join(SCENARIOS)}")
    return SCENARIOS[canonical(name)]


def scenario_workload(name: str, warmup: int, seed: int = 0) -> tuple[WorkloadConfig, list[Request],
                                                                       list[Request]]:
    """The workload record (under the scenario's name now) and the (warm-up, timed) requests of a scenario: chat
    streams, EOS honoured (as the original test's client did), top_p 1."""
    sc = scenario(name)
    wl = WorkloadConfig(prompts_file=f"scenario:{canonical(name)}", num_prompts=sc.streams, output_len=sc.max_tokens,
                        temperature=sc.temperature, ignore_eos=False, warmup=warmup, seed=seed)
    req = Request(sc.max_tokens, prompt=sc.prompt)
    return wl, [req] * warmup, [req] * sc.streams


def scenario_rows(r: RunResult) -> list[dict]:
    """Per stream: TTFT, output tokens, tokens/s (output tokens / the stream's whole time, as the original test's
    client timed it) and decode tokens/s (after the first token); then one row for all streams together."""
    rows = []
    for q in r.requests:
        e2e_s = (q.e2e_ms or 0.0) / 1000
        decode_s = ((q.e2e_ms or 0.0) - (q.ttft_ms or 0.0)) / 1000
        rows.append({"stream": q.index + 1, "ttft_ms": q.ttft_ms, "prompt_tokens": q.input_tokens,
                     "output_tokens": q.output_tokens, "total_tokens": q.input_tokens + q.output_tokens,
                     "output_tokens_per_s": q.output_tokens / e2e_s if e2e_s else None,
                     "decode_tokens_per_s": (q.output_tokens - 1) / decode_s if decode_s > 0 else None,
                     "finish_reason": q.finish_reason})
    t = r.throughput
    rows.append({"stream": "all", "ttft_ms": r.latency.ttft_ms.mean,
                 "prompt_tokens": sum(q.input_tokens for q in r.requests),
                 "output_tokens": sum(q.output_tokens for q in r.requests),
                 "total_tokens": sum(q.input_tokens + q.output_tokens for q in r.requests),
                 "output_tokens_per_s": t.output_tokens_per_s, "decode_tokens_per_s": None, "finish_reason": ""})
    return rows
