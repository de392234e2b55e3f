"""analysis.gap"""

from __future__ import annotations

from offline_bench.core.config import WorkloadConfig
from offline_bench.core.errors import BenchError
from offline_bench.results.gap import GapReport, GapStep
from offline_bench.results.load import load_as
from offline_bench.results.run import RunResult

SCHED_KEYS = ("max_num_batched_tokens", "max_num_seqs")


def check_serving_result(r: RunResult, path: str, concurrency: int, num_prompts: int | None,
                         wl: WorkloadConfig) -> None:
    """A saved serving result must be of this very workload, or the ladder explains a different gap."""
    source = "synthetic" if wl.synthetic else str(wl.prompts_file)
    want = {"mode": "serving", "concurrency": concurrency, "num_prompts": num_prompts, "source": source,
            "output_len": wl.output_len, "temperature": wl.temperature, "top_p": wl.top_p, "seed": wl.seed,
            "request_rate": wl.request_rate, "prefix_len": wl.prefix_len or None}
    got = {"mode": r.mode, "concurrency": r.workload.concurrency, "num_prompts": r.workload.num_prompts,
           "source": r.workload.source, "output_len": r.workload.output_len, "temperature": r.workload.temperature,
           "top_p": r.workload.top_p, "seed": r.workload.seed, "request_rate": r.workload.request_rate,
           "prefix_len": r.workload.prefix_len or None}
    if wl.request_rate is not None:
        want["burstiness"], got["burstiness"] = wl.burstiness, r.workload.burstiness
    if wl.synthetic:
        want["input_len"], got["input_len"] = wl.input_len, r.workload.input_len
    if num_prompts is None:
        want.pop("num_prompts")
    diff = [f"{k} {got[k]!r} (here {want[k]!r})" for k in want if got[k] != want[k]]
    if diff:
        raise BenchError(f"--serving-result {path} is not this workload: {', '.join(diff)}; give the same "
                         "workload flags as its serve-probe run")


def load_saved_serving(paths: list[str], levels: list[tuple[int, int | None]],
                       wl: WorkloadConfig) -> dict[int, RunResult]:
    """--serving-result files by concurrency level, each checked to be this workload at one of `levels`."""
    wanted = dict(levels)
    saved: dict[int, RunResult] = {}
    for path in paths:
        r: RunResult = load_as(path, "run", "explain-gap --serving-result")
        level = r.workload.concurrency or 1
        if level not in wanted:
            raise BenchError(f"--serving-result {path} was measured at concurrency {level}, which is not in "
                             f"--concurrency {','.join(str(c) for c, _ in levels)}")
        check_serving_result(r, path, level, wanted[level], wl)
        saved[level] = r
    return saved


def report(results: list[tuple[str, RunResult]], concurrency: int, num_prompts: int | None = None) -> GapReport:
    rates = [r.throughput.output_tokens_per_s or 0.0 for _, r in results]
    gap = rates[0] - rates[-1]
    steps = []
    for i, (name, r) in enumerate(results):
        change = None if i == 0 else rates[i] - rates[i - 1]
        share = None if i == 0 or gap == 0 else -(change or 0.0) / gap
        steps.append(GapStep(step=name, output_tokens_per_s=rates[i], ttft_ms_p50=r.latency.ttft_ms.p50,
                             tpot_ms_p50=r.latency.tpot_ms.p50, change_tokens_per_s=change, share_of_gap=share))
    if gap <= 0:
        text = f"serving was not slower than the offline engine ({rates[-1]:,.1f} vs {rates[0]:,.1f} output tok/s)"
    else:
        biggest = max(steps[1:], key=lambda s: s.share_of_gap or 0.0)
        text = (f"serving gives {rates[-1]:,.1f} output tok/s against {rates[0]:,.1f} offline "
                f"({rates[-1] / rates[0]:.1%}); the largest part of the gap ({biggest.share_of_gap:.0%}) comes "
                f"from: {biggest.step}")
    return GapReport(concurrency=concurrency, num_prompts=num_prompts or results[-1][1].workload.num_prompts,
                     steps=steps, gap_tokens_per_s=gap, summary=text)
