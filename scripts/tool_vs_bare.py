"""Overhead check: offline-bench's measured pass vs a bare `llm.generate` on the same engine and prompts.

Passes alternate (tool, bare, tool, bare, ...) so drift in clocks or caches hits both; each pass resets the
prefix cache first, and the engine's preemption counter is read around every pass, because a workload that
overfills the KV cache preempts requests and that alone can move throughput by several percent.

    python scripts/tool_vs_bare.py --model preset:llama-3.1-8b --pairs 3 --out ratio.json
"""

from __future__ import annotations

import argparse
import json
import time

from offline_bench import Engine, EngineConfig, RunConfig, WorkloadConfig, build_workload, run_benchmark, write_atomic


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="preset:llama-3.1-8b")
    ap.add_argument("--gpu-memory-utilization", type=float, default=None)
    ap.add_argument("--max-model-len", type=int, default=4096)
    ap.add_argument("--num-prompts", type=int, default=1000)
    ap.add_argument("--input-len", type=int, default=512)
    ap.add_argument("--output-len", type=int, default=256)
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    ecfg = EngineConfig(model=a.model, gpu_memory_utilization=a.gpu_memory_utilization, max_model_len=a.max_model_len)
    wl = WorkloadConfig(num_prompts=a.num_prompts, input_len=a.input_len, output_len=a.output_len, warmup=8)
    passes = []
    with Engine(ecfg) as engine:
        vocab, special = engine.vocab()
        warm, timed = build_workload(wl, vocab, special)
        prompts = [r.engine_prompt() for r in timed]
        engine.llm.generate([r.engine_prompt() for r in warm],
                            [engine.sampling_params(r, 1.0, 1.0, True, True) for r in warm], use_tqdm=False)
        no_warm = wl.model_copy(update={"warmup": 0})
        for i in range(a.pairs):
            before = engine.probe.read()
            r = run_benchmark(RunConfig(engine=ecfg, workload=no_warm), engine=engine)
            after = engine.probe.read()
            passes.append({"pair": i, "kind": "tool", "wall_s": r.throughput.duration_s,
                           "output_tokens_per_s": r.throughput.output_tokens_per_s,
                           "preemptions": after.get("preemptions", 0) - before.get("preemptions", 0)})
            params = [engine.sampling_params(q, 1.0, 1.0, True, True) for q in timed]
            engine.reset_prefix_cache()
            before = engine.probe.read()
            t0 = time.perf_counter()
            outs = engine.llm.generate(prompts, params, use_tqdm=False)
            wall = time.perf_counter() - t0
            after = engine.probe.read()
            toks = sum(len(o.outputs[0].token_ids) for o in outs)
            passes.append({"pair": i, "kind": "bare", "wall_s": wall, "output_tokens_per_s": toks / wall,
                           "preemptions": after.get("preemptions", 0) - before.get("preemptions", 0)})
            print(json.dumps(passes[-2:]), file=engine.console, flush=True)
    tool = [p["output_tokens_per_s"] for p in passes if p["kind"] == "tool"]
    bare = [p["output_tokens_per_s"] for p in passes if p["kind"] == "bare"]
    ratio = (sum(tool) / len(tool)) / (sum(bare) / len(bare))
    summary = {"model": a.model, "workload": wl.model_dump(), "passes": passes, "ratio_tool_over_bare": ratio,
               "pair_ratios": [t / b for t, b in zip(tool, bare)]}
    write_atomic(a.out, json.dumps(summary, indent=2))
    print(f"tool/bare output tokens/s: {ratio:.4f}", flush=True)


if __name__ == "__main__":
    main()
