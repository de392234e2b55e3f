"""`predict`: throughput and latency at other engine settings, from one measured run.

The run's recorded steps fit a step-cost model (`stepmodel`); `kvplan` gives the KV capacity of the new setting
(calibrated on the run's own start); `schedsim` replays the workload through vLLM's scheduler with both. The
answer is a RunResult with mode "predicted", so `compare`, `report` and `sweep` read it like a measured one.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

from offline_bench.core.errors import BenchError
from offline_bench.core.gpus import GPUSpec, detect_gpu, gpu_spec
from offline_bench.model.info import ModelInfo
from offline_bench.model.presets import resolve_model
from offline_bench.predict import accuracy
from offline_bench.predict.plan import GIB, calibration_from_result, param_bytes, plan_point
from offline_bench.predict.roofline import matmul_params, weight_bytes_read
from offline_bench.predict.schedsim import SimResult, simulate
from offline_bench.predict.stepmodel import StepModel, fit
from offline_bench.predict.transfer import StepSplit, as_model, describe, move, read_share, split
from offline_bench.results import build as results
from offline_bench.results.load import load_as
from offline_bench.results.plan import Calibration, PlanRow, PlanSettings
from offline_bench.results.run import KVCache, Memory, RequestRecord, RunResult, TimelinePoint, Workload
from offline_bench.results.stats import union_length
from offline_bench.workloads.arrivals import arrival_offsets

# engine settings `predict` can move (others -- model, GPU, tensor parallelism -- need their own calibration run)
OVERRIDABLE = ("gpu_memory_utilization", "kv_cache_memory_bytes", "max_model_len", "max_num_seqs",
               "max_num_batched_tokens", "kv_cache_dtype", "block_size")
NOTES = [
    "Predicted, not measured: a replay of vLLM's scheduler (FCFS, chunked prefill within max_num_batched_tokens, "
    "max_num_seqs, block allocation, preemption by recompute) timed by a step-cost model fitted on the "
    "calibration run's recorded engine steps. See `prediction` for the model and its fit.",
    "Not simulated: prefix-cache hits, async-scheduling overlap, speculative decoding; the front end's cost is "
    "in the fitted per-step cost. Requests arrive at t=0, one per finished request with --concurrency, or on the "
    "seeded --request-rate schedule.",
]


class Calibrated:
    """A calibration run, read once: its result, model, KV terms and fitted step cost."""

    def __init__(self, path: str | Path, result: RunResult | None = None, purpose: str = "predict") -> None:
        self.path = str(path)
        self.result: RunResult = result or load_as(path, "run", purpose)
        if self.result.mode != "offline":
            raise BenchError(f"{path} is a {self.result.mode} result: {purpose} needs a measured `run` (offline)")
        if self.result.steps is None:
            raise BenchError(f"{path} records no engine steps: measure it again with this offline-bench "
                             "(`run` records every step)")
        self.info = _model_info(self.result)
        self.calibration: Calibration = calibration_from_result(self.result.model_dump(), self.path, self.info)
        self.resolved = dict(self.result.engine_args.get("resolved") or {})
        self.tp = max(1, int(self.resolved.get("tensor_parallel_size") or 1))
        self.gpu: GPUSpec | None = detect_gpu(self.result.environment.gpu_name)
        weights_ms = self._weights_read_ms()
        try:
            self.steps: StepModel = fit(self.result.steps, weights_ms, self._decode_share(),
                                        graph_limit(self.resolved))
        except ValueError as e:
            raise BenchError(f"{path}: {e}: calibrate on a run of at least a few dozen requests") from None
        self.split: StepSplit | None = None
        if self.gpu is not None:  # which part of each term is bandwidth, compute or host time
            kv_bytes = self.info.kv_bytes_per_token(self.calibration.settings.kv_cache_dtype) / self.tp
            self.split = split(self.steps, self.gpu, weights_ms or 0.0, kv_bytes)
            self.steps.kv_read_share = round(read_share(self.split), 6)

    def _weights_read_ms(self) -> float | None:
        """One read of the weights (per GPU) at the calibration GPU's datasheet bandwidth; None off a known GPU."""
        if self.gpu is None:
            return None
        decode = [n for n, c in zip(self.result.steps.gen_reqs, self.result.steps.ctx_tokens) if not c and n]
        batch = sorted(decode)[len(decode) // 2] if decode else 1
        read = weight_bytes_read(self.info, batch, param_bytes(self.info)) / self.tp
        return read / (self.gpu.memory_bandwidth_gbps * 1e9) * 1000.0

    def _decode_share(self) -> float:
        """A decoded token's matmuls as a share of a prompt token's FLOPs (its attention at half the mean prompt)."""
        prompts = [q.input_tokens for q in self.result.requests if q.repeat == 0] or [0]
        ctx = sum(prompts) / len(prompts) / 2
        mm = 2.0 * matmul_params(self.info)
        return mm / (mm + 4.0 * self.info.num_layers * ctx * self.info.num_heads * self.info.head_dim)

    def on_gpu(self, name: str | None) -> tuple[StepModel, GPUSpec | None, list[str]]:
        """The step model on GPU `name` (None or the calibration's own: unchanged), the target and what moved."""
        target = gpu_spec(name) if name else None
        if target is None or (self.gpu is not None and target.name == self.gpu.name):
            return self.steps, None, []
        if self.gpu is None or self.split is None:
            raise BenchError(f"the calibration run's GPU ('{self.result.environment.gpu_name}') is not in the GPU "
                             "table, so its step cost cannot be split: predict on its own GPU (drop --gpu)")
        moved = move(self.split, self.gpu, target)
        return as_model(moved, self.steps), target, describe(self.split, moved)

    def settings(self, overrides: dict[str, Any]) -> PlanSettings:
        c = self.calibration.settings
        moved = {k: v for k, v in overrides.items() if v is not None and k in PlanSettings.model_fields}
        s = c.model_copy(update=moved)
        if overrides.get("gpu_memory_utilization") is not None and overrides.get("kv_cache_memory_bytes") is None:
            s.kv_cache_memory_bytes = None  # a gmu asked for: the calibration's fixed KV size no longer applies
        if overrides.get("kv_cache_memory_bytes") is not None:
            s.gpu_memory_utilization = None
        return s


def graph_limit(resolved: dict[str, Any]) -> int:
    """vLLM's largest CUDA graph, in tokens a step schedules: none under enforce_eager (and on the CPU build),
    else min(2 x max_num_seqs, 512), vLLM's default (0.26-0.32); a step of more tokens runs without a graph."""
    if resolved.get("enforce_eager") or resolved.get("device") == "cpu":
        return 0
    return min(2 * int(resolved.get("max_num_seqs") or 256), 512)


def _model_info(r: RunResult) -> ModelInfo:
    try:
        info = resolve_model(r.model).info
    except BenchError:
        info = None
    if info is None:
        raise BenchError(f"cannot read the model of the calibration run ('{r.model}'): predict needs its config")
    return info


def check_overrides(overrides: dict[str, Any]) -> None:
    unknown = [k for k, v in overrides.items() if v is not None and k not in OVERRIDABLE]
    if unknown:
        flags = ", ".join("--" + k.replace("_", "-") for k in unknown)
        raise BenchError(f"predict cannot move {flags}: a prediction holds for the calibration run's model, GPU "
                         "and parallelism; measure a calibration run with that setting")


def workload_requests(cal: RunResult, num_prompts: int | None, input_len: int | None,
                      output_len: int | None) -> list[tuple[int, int]]:
    """The calibration run's requests (first pass), cycled to num_prompts, lengths overridden if asked."""
    base = [(q.input_tokens, q.output_tokens) for q in cal.requests if q.repeat == 0] or [(128, 128)]
    n = num_prompts or len(base)
    reqs = list(itertools.islice(itertools.cycle(base), n))
    return [(input_len or p, output_len or o) for p, o in reqs]


def predict(cal: Calibrated, overrides: dict[str, Any], num_prompts: int | None = None, input_len: int | None = None,
            output_len: int | None = None, concurrency: int | None = None, gpu: str | None = None,
            request_rate: float | None = None, burstiness: float = 1.0, seed: int = 0) -> RunResult:
    """`gpu`: a GPU of the table to predict on (default: the calibration's); `request_rate`: requests/s arriving on
    the seeded schedule `run --request-rate` uses (default: all at once, or the calibration's own rate)."""
    check_overrides(overrides)
    s = cal.settings(overrides)
    base, target, moved = cal.on_gpu(gpu)
    env = cal.result.environment
    total = cal.calibration.total_gib
    if target is not None:
        env = env.model_copy(update={"gpu_name": f"{target.name} (predicted from {env.gpu_name})",
                                     "gpu_memory_gib": target.memory_gib})
        total = target.memory_gib
    row = plan_point(cal.info, s, cal.calibration.device, total, cal.calibration)
    if not row.fits:
        raise BenchError(f"this setting would not start: {row.reason}")
    reqs = workload_requests(cal.result, num_prompts, input_len, output_len)
    longest = max(p + o for p, o in reqs)
    if longest > s.max_model_len:
        raise BenchError(f"a request needs {longest} tokens, more than --max-model-len {s.max_model_len}: raise it "
                         "or shorten the workload")
    model = base.model_copy(update={"kv_scale": _kv_scale(cal, s)})
    mnbt, mns = row.max_num_batched_tokens or 8192, row.max_num_seqs or 256
    graphs = graph_limit({**cal.resolved, "max_num_seqs": mns}) if model.graph_tokens else 0
    rate, burst, arrivals = _schedule(cal.result.workload, len(reqs), request_rate, burstiness, seed)
    sim = simulate(reqs, row.num_blocks or 0, row.block_size, mnbt, mns, s.max_model_len, model.step_ms,
                   graph_tokens=graphs, arrivals_s=arrivals,
                   concurrency=concurrency if concurrency is not None else cal.result.workload.concurrency,
                   start_s=model.start_ms / 1000.0)
    out = _result(cal, s, row, model, sim, reqs, env, overrides, concurrency)
    out.workload.request_rate, out.workload.burstiness = rate, burst
    unknown = sim.uncaptured_decode_steps if model.uncaptured_ms is None else 0
    if unknown:
        out.notes.append(f"{unknown} of the {sim.steps} replayed steps decode more requests than vLLM's largest CUDA "
                         f"graph ({graphs} tokens) and run without one, which the calibration run never did: their "
                         "extra cost is unknown to the model (calibrate on a run with such batches)")
    wl = cal.result.workload
    moved_workload = reqs != workload_requests(cal.result, None, None, None) or rate != wl.request_rate \
        or concurrency not in (None, wl.concurrency)
    _expect(out, cal, overrides, target is not None, sim.preemptions, moved_workload, unknown > 0)
    if target is not None:
        out.notes.extend(moved)
        out.prediction["gpu"] = {"from": cal.gpu.name if cal.gpu else None, "to": target.name,
                                 "split_from": cal.split.model_dump() if cal.split else None}
    return out


def _schedule(wl: Workload, n: int, request_rate: float | None, burstiness: float,
              seed: int) -> tuple[float | None, float | None, list[float] | None]:
    """(rate, burstiness, arrival offsets) of n requests: the given rate, else the calibration's own (all at once for
    none or inf)."""
    if request_rate is None:
        request_rate, burstiness, seed = wl.request_rate, wl.burstiness or 1.0, wl.seed or 0
    if request_rate is None or math.isinf(request_rate):
        return None, None, None
    return request_rate, burstiness, arrival_offsets(n, request_rate, burstiness, seed)


def _expect(out: RunResult, cal: Calibrated, overrides: dict[str, Any], gpu_moved: bool, preemptions: int,
            moved_workload: bool, uncaptured: bool) -> None:
    """The expected error of a prediction, from the kinds of change it makes (stored and in its notes)."""
    base = cal.calibration.settings.model_dump()
    changed = {k: v for k, v in overrides.items() if v is not None and v != base.get(k)}
    kinds = accuracy.kinds_of(changed, gpu_moved, preemptions, moved_workload, uncaptured,
                              out.workload.request_rate is not None)
    e = accuracy.expected(kinds)
    out.prediction["expected_error"] = e
    out.notes.append(accuracy.sentence(e))


def _kv_scale(cal: Calibrated, s: PlanSettings) -> float:
    """KV reads cost in proportion to their bytes: the new KV dtype's bytes over the calibration's."""
    return cal.info.kv_bytes_per_token(s.kv_cache_dtype) / \
        cal.info.kv_bytes_per_token(cal.calibration.settings.kv_cache_dtype)


def _records(sim: SimResult) -> list[RequestRecord]:
    out = []
    for i, r in enumerate(sim.requests):
        sched = r.scheduled_s if r.scheduled_s is not None else r.arrival_s
        out.append(RequestRecord(
            repeat=0, index=i, input_tokens=r.prompt, output_tokens=r.output, cached_tokens=0, finish_reason="length",
            preemptions=r.preemptions, queue_ms=results.ms(sched - r.arrival_s),
            prefill_ms=results.ms(r.first_s - sched), decode_ms=results.ms(r.finish_s - r.first_s),
            ttft_ms=results.ms(r.first_s - r.arrival_s),
            tpot_ms=results.ms((r.finish_s - r.first_s) / (r.output - 1)) if r.output > 1 else None,
            e2e_ms=results.ms(r.finish_s - r.arrival_s)))
    return out


def _result(cal: Calibrated, s: PlanSettings, row: PlanRow, model: StepModel, sim: SimResult,
            reqs: list[tuple[int, int]], env: Any, overrides: dict[str, Any], concurrency: int | None) -> RunResult:
    records = _records(sim)
    pre = union_length([(r.scheduled_s or 0.0, r.first_s) for r in sim.requests])
    dec = union_length([(r.first_s, r.finish_s) for r in sim.requests])
    t = results.summarize_passes([results.throughput(records, sim.duration_s, pre, dec)])
    bpt = cal.info.kv_bytes_per_token(s.kv_cache_dtype)
    kv = KVCache(num_blocks=row.num_blocks, block_size=row.block_size, capacity_tokens=row.kv_cache_tokens,
                 capacity_gib=round((row.kv_cache_tokens or 0) * bpt / GIB, 4), bytes_per_token=bpt,
                 kv_cache_dtype=s.kv_cache_dtype, max_concurrency=row.max_concurrency, max_model_len=s.max_model_len,
                 logged_capacity_tokens=None, peak_usage_pct=sim.peak_usage_pct, preemptions=sim.preemptions,
                 prefix_cache_queries=None, prefix_cache_hits=None, prefix_cache_hit_rate=None,
                 predicted_tokens=row.kv_cache_tokens, predicted_basis=row.basis)
    mem = Memory(weights_gib=row.weights_gib, peak_activation_gib=row.peak_activation_gib, cuda_graph_gib=None,
                 non_torch_gib=row.non_torch_gib, kv_cache_gib=row.kv_cache_gib, total_gib=None)
    args = {k: v for k, v in cal.result.engine_args.items() if k != "resolved"}
    args.update({k: v for k, v in overrides.items() if v is not None})
    resolved = {**cal.resolved, **s.model_dump(exclude={"pipeline_parallel_size"}),
                "max_num_batched_tokens": row.max_num_batched_tokens, "max_num_seqs": row.max_num_seqs,
                "block_size": row.block_size, "num_gpu_blocks": row.num_blocks}
    wl = cal.result.workload
    workload = Workload(source=wl.source, num_prompts=len(reqs), total_input_tokens=sum(p for p, _ in reqs),
                        total_output_tokens=sum(o for _, o in reqs), input_len=wl.input_len, output_len=wl.output_len,
                        range_ratio=wl.range_ratio, seed=wl.seed, ignore_eos=True, temperature=wl.temperature,
                        top_p=wl.top_p, detokenize=wl.detokenize, warmup_requests=0, repeats=1,
                        concurrency=concurrency if concurrency is not None else wl.concurrency)
    return RunResult(
        **results.stamp(), mode="predicted", model=cal.result.model, environment=env,
        engine_args={**args, "resolved": resolved}, workload=workload,
        startup={"vllm_version": cal.result.startup.get("vllm_version")}, kv_cache=kv, memory=mem,
        throughput=t, latency=results.latency(records),
        timeline=[TimelinePoint(repeat=0, **p) for p in sim.timeline], requests=records, notes=list(NOTES),
        prediction={"calibration": cal.path, "changed": {k: v for k, v in overrides.items() if v is not None},
                    "step_model": model.model_dump(), "kv_plan": row.model_dump(), "simulated_steps": sim.steps})
