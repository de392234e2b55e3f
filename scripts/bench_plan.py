"""How long `offline-bench plan` takes for the 16-point grid of issue 14 (a fresh process each time, as a user
runs it). Goal: under 2 s on the 2-core CPU machine.

    python scripts/bench_plan.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

GRID = ["plan", "--model", "preset:llama-3.1-8b", "--gpu", "h100-sxm", "--gpu-memory-utilization", "0.5,0.8,0.9,0.95",
        "--max-model-len", "4096,16384", "--kv-cache-dtype", "auto,fp8", "--format", "json"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "offline_bench", *GRID], check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    print(f"plan, 16-point grid, {args.runs} runs: median {statistics.median(times):.3f} s, "
          f"max {max(times):.3f} s (whole process: Python start, imports, output)")


if __name__ == "__main__":
    main()
