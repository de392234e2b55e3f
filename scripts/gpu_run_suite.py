"""The H100 run of issue 2 in one engine start: the workloads of docs/results/h100-run.md, then the
tool-vs-bare `llm.generate` comparison on the big workload. Writes JSON + Markdown under --out.

    python scripts/gpu_run_suite.py --model preset:llama-3.1-8b --out $OUT
    python scripts/gpu_run_suite.py --small --out /tmp/suite      # the same path on the CPU, scaled down
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from offline_bench import (
    Engine,
    EngineConfig,
    RunConfig,
    WorkloadConfig,
    build_workload,
    render,
    run_benchmark,
    write_atomic,
)


def bare_generate(engine: Engine, wl: WorkloadConfig, passes: int) -> list[dict]:
    """Time plain llm.generate on the same prompts and sampling parameters (no probes, no records)."""
    vocab, special = engine.vocab()
    _, timed = build_workload(wl, vocab, special)
    prompts = [r.engine_prompt() for r in timed]
    out = []
    for _ in range(passes):
        params = [engine.sampling_params(r, wl.temperature, wl.top_p, bool(wl.effective_ignore_eos),
                                         wl.detokenize) for r in timed]
        engine.reset_prefix_cache()
        t0 = time.perf_counter()
        res = engine.llm.generate(prompts, params, use_tqdm=False)
        wall = time.perf_counter() - t0
        toks = sum(len(o.outputs[0].token_ids) for o in res)
        inp = sum(len(o.prompt_token_ids) for o in res)
        out.append({"wall_s": wall, "output_tokens": toks, "output_tokens_per_s": toks / wall,
                    "total_tokens_per_s": (toks + inp) / wall})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="preset:llama-3.1-8b")
    ap.add_argument("--gpu-memory-utilization", type=float, default=None)
    ap.add_argument("--max-model-len", type=int, default=4096)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", required=True)
    ap.add_argument("--small", action="store_true", help="tiny sizes for a CPU check of this script")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = "preset:tiny-llama" if args.small else args.model
    mml = 512 if args.small else args.max_model_len
    big = (16, 64, 32) if args.small else (1000, 512, 256)
    seed_len = 32 if args.small else 512
    workloads = {
        "1x128-512": WorkloadConfig(num_prompts=1, input_len=128 if not args.small else 16,
                                    output_len=512 if not args.small else 32, warmup=1),
        "10x64-512": WorkloadConfig(num_prompts=10, input_len=64 if not args.small else 16,
                                    output_len=512 if not args.small else 32, warmup=2),
        f"{big[0]}x{big[1]}-{big[2]}": WorkloadConfig(num_prompts=big[0], input_len=big[1], output_len=big[2],
                                                      warmup=8, repeats=args.repeats),
        "seed-x1": WorkloadConfig(prompts_file="prompts/seed.txt", output_len=seed_len, warmup=1),
        "seed-x10": WorkloadConfig(prompts_file="prompts/seed.txt", num_prompts=20, output_len=seed_len, warmup=2),
    }
    ecfg = EngineConfig(model=model, gpu_memory_utilization=args.gpu_memory_utilization, max_model_len=mml)
    summary: dict = {"model": model, "runs": {}}
    md = []
    with Engine(ecfg) as engine:
        write_atomic(out / "engine-startup.log", engine.log_text())
        for name, wl in workloads.items():
            result = run_benchmark(RunConfig(engine=ecfg, workload=wl), engine=engine)
            result.save(out / f"run-{name}.json")
            t = result.throughput
            summary["runs"][name] = {"output_tokens_per_s": t.output_tokens_per_s,
                                     "total_tokens_per_s": t.total_tokens_per_s,
                                     "ttft_ms_p50": result.latency.ttft_ms.p50,
                                     "tpot_ms_p50": result.latency.tpot_ms.p50}
            md.append(f"# {name}\n\n" + render("run", "md", result))
            if name.startswith(str(big[0])):
                tool_rates = [p.output_tokens_per_s for p in t.repeats]
            print(f"{name}: {t.output_tokens_per_s:,.1f} output tok/s", file=engine.console, flush=True)
        big_name = f"{big[0]}x{big[1]}-{big[2]}"
        bare = bare_generate(engine, workloads[big_name], args.repeats)
        bare_rates = [b["output_tokens_per_s"] for b in bare]
        ratio = (sum(tool_rates) / len(tool_rates)) / (sum(bare_rates) / len(bare_rates))
        summary["bare_generate"] = {"passes": bare, "tool_output_tokens_per_s": tool_rates,
                                    "bare_output_tokens_per_s": bare_rates, "ratio_tool_over_bare": ratio}
        print(f"tool/bare output tokens/s ratio: {ratio:.4f}", file=engine.console, flush=True)
        write_atomic(out / "engine-full.log", engine.log_text())
    write_atomic(out / "summary.json", json.dumps(summary, indent=2))
    write_atomic(out / "tables.md", "\n\n".join(md))


if __name__ == "__main__":
    main()
