"""Named serving scenarios: the seed project's two stress tests, reproduced by `serve-probe --scenario NAME`.

The seed served its model as `vllm serve ... --served-model-name gpt-4o --api-key sk-123456` and streamed chat
completions: one stream of its first prompt (max_tokens 512, temperature 0.7), and 10 concurrent streams of its
second (temperature 0.8). Its report shows, per stream and in all: time to first token, tokens/s and total
tokens; `scenario_rows` holds those of a serve-probe result, with the server's exact token counts (printed by
report.tables.scenario).
"""

from __future__ import annotations

from dataclasses import dataclass

from offline_bench.core.config import WorkloadConfig
from offline_bench.core.errors import BenchError
from offline_bench.results.run import RunResult
from offline_bench.workloads.requests import Request

# the seed's two prompts (prompts/seed.txt holds the same lines; a test keeps them equal)
SEED_PROMPTS = ("假设你是唐朝诗人李白,请用七言绝句描述一次雪夜独钓的场景", "请用鲁迅的文学风格描写一次深夜咖啡馆的场景")


@dataclass(frozen=True)
class Scenario:
    prompt: str
    streams: int  # concurrent streams, all of the same prompt
    max_tokens: int
    temperature: float
    description: str


SCENARIOS = {
    "seed-single": Scenario(SEED_PROMPTS[0], 1, 512, 0.7, "one stream of the seed's first prompt"),
    "seed-10": Scenario(SEED_PROMPTS[1], 10, 512, 0.8, "10 concurrent streams of the seed's second prompt"),
}


def scenario(name: str) -> Scenario:
    if name not in SCENARIOS:
        raise BenchError(f"--scenario {name}: choose one of {', '.join(SCENARIOS)}")
    return SCENARIOS[name]


def scenario_workload(name: str, warmup: int, seed: int = 0) -> tuple[WorkloadConfig, list[Request],
                                                                       list[Request]]:
    """The workload record and the (warm-up, timed) requests of a scenario: chat streams, EOS honoured (as the
    seed's client did), top_p 1."""
    sc = scenario(name)
    wl = WorkloadConfig(prompts_file=f"scenario:{name}", num_prompts=sc.streams, output_len=sc.max_tokens,
                        temperature=sc.temperature, ignore_eos=False, warmup=warmup, seed=seed)
    req = Request(sc.max_tokens, prompt=sc.prompt)
    return wl, [req] * warmup, [req] * sc.streams


def scenario_rows(r: RunResult) -> list[dict]:
    """Per stream: TTFT, output tokens, tokens/s (output tokens / the stream's whole time, as the seed's client
    timed it) and decode tokens/s (after the first token); then one row for all streams together."""
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
