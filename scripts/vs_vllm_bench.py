"""offline-bench against vLLM's own `vllm bench throughput`, side by side: the same model, prompts (identical in
tokens), lengths, sampling and engine flags, each pass in a fresh process, alternating A B B A so drift hits both.

    python scripts/vs_vllm_bench.py --model preset:tiny-llama --num-prompts 32 --input-len 64 --output-len 32 \\
        --pairs 5 --engine "--max-model-len 512 --kv-cache-memory-bytes 67108864 --enforce-eager" --out vs.json

The prompts: a ShareGPT-format file both tools read (`vllm bench throughput` 0.32 takes no `custom` dataset), of
ASCII text that the presets' byte-level tokenizers turn into exactly --input-len prompt tokens, each with a reply
of exactly --output-len tokens (so both derive the same output length; checked). EOS is ignored on both sides
(vllm bench always does), sampling is temperature 1 / top_p 1 on both, detokenization on for both, no warm-up on
either (vllm bench has none).

Where the timed windows differ: `vllm bench throughput` times `LLM.generate` (adding every request, stepping,
collecting outputs); offline-bench times from submitting the first request to the last final output in its own
step loop, which also reads the engine's gauges after every step. Neither includes the engine start.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from offline_bench import resolve_model, write_atomic

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _text(rng: random.Random, n: int) -> str:
    """n ASCII characters of words, a letter at both ends: n tokens with a byte-level tokenizer without merges."""
    words, length = [], 0
    while length - 1 < n:  # the joined text is one space shorter than the sum
        w = "".join(rng.choice(LETTERS) for _ in range(rng.randint(2, 8)))
        words.append(w)
        length += len(w) + 1
    text = " ".join(words)[:n]
    return text[:-1] + rng.choice(LETTERS) if text.endswith(" ") else text


def dataset(path: Path, n: int, input_len: int, output_len: int, seed: int, tokenizer_path: str) -> list[int]:
    """Write a ShareGPT-format file both tools read (the first human turn is the prompt, the first gpt turn's token
    count the output length); returns each prompt's token count with the model's tokenizer."""
    from transformers import AutoTokenizer  # heavy: only to count the prompts' tokens

    tok = AutoTokenizer.from_pretrained(tokenizer_path)
    rng = random.Random(seed)
    convs, counts = [], []
    for _ in range(n):
        prompt, reply = _text(rng, input_len), _text(rng, output_len)
        counts.append(len(tok(prompt).input_ids))
        if len(tok(reply).input_ids) != output_len:
            raise SystemExit(f"this tokenizer does not give {output_len} tokens for {output_len} ASCII characters: "
                             "use a preset model (byte-level tokenizer)")
        convs.append({"conversations": [{"from": "human", "value": prompt}, {"from": "gpt", "value": reply}]})
    path.write_text(json.dumps(convs))
    return counts


def run_tool(a: argparse.Namespace, data: Path, out: Path) -> dict:
    cmd = [sys.executable, "-m", "offline_bench", "run", "--model", a.model, "--dataset", "sharegpt", str(data),
           "--num-prompts", str(a.num_prompts), "--ignore-eos", "--warmup", "0", "--temperature", "1",
           "--top-p", "1", "--format", "json", "--output", str(out), *shlex.split(a.engine), *shlex.split(a.tool_args)]
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"offline-bench failed: {p.stderr[-2000:]}")
    r = json.loads(out.read_text())
    return {"tool": "offline-bench", "output_tokens_per_s": r["throughput"]["output_tokens_per_s"],
            "window_s": r["throughput"]["duration_s"], "prompt_tokens": r["workload"]["total_input_tokens"],
            "output_tokens": r["workload"]["total_output_tokens"], "process_s": round(time.time() - t0, 1),
            "preemptions": r["kv_cache"]["preemptions"]}


def run_vllm(a: argparse.Namespace, data: Path, model_path: str, out: Path) -> dict:
    cmd = [sys.executable, "-m", "vllm.entrypoints.cli.main", "bench", "throughput", "--model", model_path,
           "--dataset-name", "sharegpt", "--dataset-path", str(data), "--num-prompts", str(a.num_prompts),
           "--seed", "0", "--output-json", str(out),  # the same requests, in its own seeded order
           *shlex.split(a.engine)]
    if a.model.startswith("preset:"):
        cmd += ["--load-format", "dummy"]
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"vllm bench failed: {(p.stdout + p.stderr)[-2000:]}")
    m = re.search(r"Throughput: .* ([\d.]+) output tokens/s", p.stdout)
    prompt = re.search(r"Total num prompt tokens:\s+(\d+)", p.stdout)
    output = re.search(r"Total num output tokens:\s+(\d+)", p.stdout)
    r = json.loads(out.read_text())
    return {"tool": "vllm bench", "output_tokens_per_s": float(m.group(1)), "window_s": r["elapsed_time"],
            "prompt_tokens": int(prompt.group(1)), "output_tokens": int(output.group(1)),
            "process_s": round(time.time() - t0, 1)}


def summarize(a: argparse.Namespace, passes: list[dict], counts: list[int]) -> dict:
    tool = {p["pair"]: p["output_tokens_per_s"] for p in passes if p["tool"] == "offline-bench"}
    bench = {p["pair"]: p["output_tokens_per_s"] for p in passes if p["tool"] == "vllm bench"}
    pairs = sorted(set(tool) & set(bench))  # a pair cut short by a time limit has one side only
    ratios = [tool[i] / bench[i] for i in pairs]
    if not ratios:
        raise SystemExit("no finished pair: nothing to summarize")
    return {"model": a.model, "num_prompts": a.num_prompts, "input_len": a.input_len, "output_len": a.output_len,
            "engine": a.engine, "prompt_tokens_each": sorted(set(counts)), "passes": passes, "pairs": pairs,
            "pair_ratios": ratios, "median_ratio": statistics.median(ratios),
            "ratio_spread": [min(ratios), max(ratios)]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="preset:tiny-llama")
    ap.add_argument("--num-prompts", type=int, default=32)
    ap.add_argument("--input-len", type=int, default=64)
    ap.add_argument("--output-len", type=int, default=32)
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--start-pair", type=int, default=0, help="number of the first pair (to go on in a later call)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--engine", default="", help="engine flags given to both tools, as one string")
    ap.add_argument("--tool-args", default="", help="further flags for offline-bench only")
    ap.add_argument("--passes-out", help="append each finished pass to this JSON-lines file as it ends")
    ap.add_argument("--summarize", nargs="+", metavar="JSONL",
                    help="run nothing: summarize the passes of these JSON-lines files into --out")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    model = resolve_model(a.model)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "prompts.json"
        counts = dataset(data, a.num_prompts, a.input_len, a.output_len, a.seed, model.path)
        if a.summarize:
            passes = [json.loads(line) for f in a.summarize for line in Path(f).read_text().splitlines() if line]
        else:
            passes = run_pairs(a, data, model.path, Path(tmp))
    summary = summarize(a, passes, counts)
    write_atomic(a.out, json.dumps(summary, indent=2))
    print(f"offline-bench / vllm bench output tokens/s: median {summary['median_ratio']:.3f} "
          f"(pairs {', '.join(f'{r:.3f}' for r in summary['pair_ratios'])})", flush=True)


def run_pairs(a: argparse.Namespace, data: Path, model_path: str, tmp: Path) -> list[dict]:
    passes = []
    for i in range(a.start_pair, a.start_pair + a.pairs):
        order = ["tool", "vllm"] if i % 2 == 0 else ["vllm", "tool"]  # A B B A: drift hits both
        for kind in order:
            res = (run_tool(a, data, tmp / f"t{i}.json") if kind == "tool"
                   else run_vllm(a, data, model_path, tmp / f"v{i}.json"))
            passes.append({"pair": i, **res})
            line = json.dumps(passes[-1])
            print(line, flush=True)
            if a.passes_out:
                with open(a.passes_out, "a") as f:
                    f.write(line + "\n")
    return passes


if __name__ == "__main__":
    main()
