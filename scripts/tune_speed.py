"""How long `tune` takes to answer: the default 200-setting grid on the committed H200 calibration run (8B preset),
for the closed batch it ran (1000 x 512 -> 256) and at 20 req/s, a few times each; prints the seconds and the
distinct replays. The target (issue 31): 200+ settings in at most 10 s on a 2-core CPU.

    python scripts/tune_speed.py [--repeats 3] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from offline_bench import TuneGrid, TuneWorkload, basis_for, tune

CALIBRATION = "docs/results/h200-predict/measured/gmu-0.9.json.gz"
GMU = [round(0.5 + 0.05 * i, 2) for i in range(10)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=None, help="replay processes (default: tune's, up to 4)")
    a = ap.parse_args()
    _, basis = basis_for(CALIBRATION)
    print(f"{os.cpu_count()} CPUs; calibration {CALIBRATION}")
    for label, workload in (("closed batch", TuneWorkload([(512, 256)] * 1000)),
                            ("20 req/s", TuneWorkload([(512, 256)] * 1000, request_rate=20.0))):
        times = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            t = tune(basis, workload, TuneGrid(max_model_len=[1024], gpu_memory_utilization=GMU),
                     slo={"ttft": 500.0, "tpot": 50.0}, workers=a.workers)
            times.append(time.perf_counter() - t0)
        print(f"{label}: {t.settings_searched} settings, {t.simulations} distinct replays: median "
              f"{statistics.median(times):.2f} s (min {min(times):.2f}, max {max(times):.2f}) over {a.repeats}")


if __name__ == "__main__":
    main()
