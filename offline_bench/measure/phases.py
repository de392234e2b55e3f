"""`phases`: prefill and decode measured apart (as SGLang's bench_one_batch does), each against its ceiling.

prefill-only: B prompts of L tokens with max_tokens=1, submitted together; latency = the time some request was
              in prefill (engine clock), tokens/s = B x L / latency.
decode-only:  B prompts of L tokens generating O tokens; the per-step latency is that of the request whose first
              token came last: every other request was decoding by then and no prompt was left to prefill, so its
              steps are pure decode steps of batch B (the batch shrinks only in the last few steps).
"""

from __future__ import annotations

from offline_bench.core.environment import capture_environment
from offline_bench.core.errors import BenchError
from offline_bench.core.gpus import GPUSpec
from offline_bench.core.power import WindowEnergy
from offline_bench.engine.llm import BatchOutcome, Engine
from offline_bench.predict.roofline import Roofline, roofline
from offline_bench.results.build import stamp
from offline_bench.results.phases import PhaseRow, PhasesResult
from offline_bench.workloads.requests import synthetic_requests

# seeds of the synthetic prompts: distinct per (batch, length) and between the prefill and decode runs
WARMUP_SEED_OFFSET = 7
PREFILL_SEED_STRIDE = 7919
DECODE_SEED_STRIDE = 104729


ENERGY_NOTE = ("Energy: each row's whole pass (submitted to last token), every GPU of the engine (NVML); J/token: "
               "prefill over the batch's prompt tokens, decode over the pass's generated tokens (its prefill "
               "included); W: the pass's mean draw.")


def pass_energy(w: WindowEnergy | None, tokens: int) -> dict[str, float | None]:
    """A pass's joules per token (`tokens`: what its row counts) and mean draw; empty where it was not measured."""
    joules = w.joules if w is not None else None
    if joules is None or tokens <= 0:
        return {}
    return {"joules_per_token": joules / tokens, "avg_watts": w.avg_watts}


class _Phases:
    """One engine, the GPU's ceilings, and the rows measured so far."""

    def __init__(self, engine: Engine, gpu: GPUSpec | None, seed: int, num_gpus: int) -> None:
        self.engine, self.gpu, self.seed, self.num_gpus = engine, gpu, seed, num_gpus
        self.vocab, self.special = engine.vocab()
        self.kv_tokens = engine.kv_capacity().get("capacity_tokens")

    def _run(self, b: int, length: int, out_len: int, seed: int, tag: str) -> BatchOutcome:
        self.engine.reset_prefix_cache()
        reqs = synthetic_requests(b, length, out_len, 0.0, seed, self.vocab, self.special)
        return self.engine.run_batch(reqs, [self.engine.sampling_params(r, 1.0, 1.0, True, False) for r in reqs],
                                     tag)

    def _ceiling(self, b: int, context: int) -> Roofline | None:
        info = self.engine.info
        return roofline("", info, self.gpu, [b], context, self.num_gpus) if self.gpu and info else None

    def prefill(self, b: int, length: int) -> PhaseRow:
        out = self._run(b, length, 1, self.seed + b * PREFILL_SEED_STRIDE + length, f"prefill-{length}-{b}")
        lat = out.prefill_window_s or out.wall_s
        roof = self._ceiling(b, length // 2)
        ceil = roof.prefill_tokens_per_s_ceiling if roof else None
        tps = b * length / lat
        waves = (f"the KV cache holds {self.kv_tokens:,} tokens: the batch was prefilled in waves"
                 if self.kv_tokens and b * (length + 1) > self.kv_tokens else None)
        return PhaseRow(phase="prefill", batch_size=b, input_len=length, output_len=None, context_tokens=length // 2,
                        latency_ms=lat * 1000, tokens_per_s=tps, ceiling_tokens_per_s=ceil,
                        pct_of_ceiling=100 * tps / ceil if ceil else None, note=waves,
                        **pass_energy(out.energy, b * length))

    def decode(self, b: int, length: int, output_len: int) -> PhaseRow:
        ctx = length + output_len // 2
        row = dict(phase="decode", batch_size=b, input_len=length, output_len=output_len, context_tokens=ctx)
        if self.kv_tokens and b * (length + output_len) > self.kv_tokens:
            # the batch would be preempted mid-decode: its steps would not be decode steps of batch b
            return PhaseRow(**row, latency_ms=None, tokens_per_s=None, ceiling_tokens_per_s=None,
                            pct_of_ceiling=None, note=f"not run: {b} x {length + output_len:,} tokens exceed the "
                                                      f"KV cache ({self.kv_tokens:,} tokens); raise "
                                                      "--gpu-memory-utilization or lower the batch")
        out = self._run(b, length, output_len, self.seed + b * DECODE_SEED_STRIDE + length, f"decode-{length}-{b}")
        last = max(out.engine_ts, key=lambda t: t[1])
        step = (last[2] - last[1]) / max(output_len - 1, 1)
        roof = self._ceiling(b, ctx)
        ceil = roof.decode_tokens_per_s_ceiling[b] if roof else None
        tps = b / step
        generated = sum(r.output_tokens for r in out.records) or b * output_len
        return PhaseRow(**row, latency_ms=step * 1000, tokens_per_s=tps, ceiling_tokens_per_s=ceil,
                        pct_of_ceiling=100 * tps / ceil if ceil else None, **pass_energy(out.energy, generated))


def run_phases(engine: Engine, batch_sizes: list[int], input_lens: list[int], output_len: int,
               gpu: GPUSpec | None, seed: int = 0, num_gpus: int = 1) -> PhasesResult:
    resolved = engine.resolved_args()
    mns, mml = resolved["max_num_seqs"], resolved["max_model_len"]
    if max(batch_sizes) > mns:
        raise BenchError(f"batch size {max(batch_sizes)} is above --max-num-seqs {mns}: raise --max-num-seqs so the "
                         "whole batch runs at once")
    if max(input_lens) + output_len > mml:
        raise BenchError(f"input {max(input_lens)} + output {output_len} tokens exceed --max-model-len {mml}: raise "
                         "--max-model-len")
    ph = _Phases(engine, gpu, seed, num_gpus)
    ph._run(2, min(input_lens), 4, seed + WARMUP_SEED_OFFSET, "phases-warmup")
    rows: list[PhaseRow] = []
    for length in input_lens:
        for b in batch_sizes:
            rows += [ph.prefill(b, length), ph.decode(b, length, output_len)]
    idle = engine.idle.avg_watts if getattr(engine, "idle", None) else None
    measured = any(r.joules_per_token is not None for r in rows)
    return PhasesResult(
        **stamp(), model=engine.cfg.model, environment=capture_environment(), engine_args={**engine.kwargs,
                                                                                "resolved": resolved},
        startup=engine.startup_facts(), gpu=gpu, rows=rows,
        notes=[__doc__.strip().split("\n\n", 1)[1],
               "Ceilings: prefill = peak dense bf16 FLOP/s / FLOPs per token at context L/2; decode = batch / "
               "max((weights read + batch x context x KV bytes) / memory bandwidth, batch x FLOPs per token / "
               "peak FLOP/s) at context L + O/2.", *([ENERGY_NOTE] if measured else [])],
        energy_unknown=None if measured else engine.power_unknown or "no power samples over the passes",
        idle_watts=round(idle, 2) if idle is not None else None)
