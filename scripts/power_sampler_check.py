"""GPU check of the energy sampler (offline_bench/core/power.py) without vLLM: 1 s of idle floor, then bf16
matmuls for 6 s, sampled every 50 ms; the driver's energy counter against the integrated power samples.

Runs on a bare GPU image (torch and nvidia-ml-py only): the sampler module is loaded from its file (it needs
nothing but the standard library and the package's CUDA_VISIBLE_DEVICES parsing, which stands in
here). Writes power-smoke.json to $OUT (default /tmp/o).
    PYTHONPATH=<nvidia-ml-py> python scripts/power_sampler_check.py
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
N = 8192  # an N x N bf16 matmul: 2 N^3 FLOPs


def load_power():  # noqa: ANN201 - the module
    # power.py's one import from the package is CUDA_VISIBLE_DEVICES parsing; the package itself needs pydantic,
    # which a bare GPU image lacks: the same parsing stands in for it
    env = types.ModuleType("offline_bench.core.environment")
    env.visible_ids = lambda count: [str(i) for i in range(count)] if os.environ.get("CUDA_VISIBLE_DEVICES") is None \
        else [x.strip() for x in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if x.strip()][:count]
    sys.modules.setdefault("offline_bench.core.environment", env)
    spec = importlib.util.spec_from_file_location("power", ROOT / "offline_bench" / "core" / "power.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["power"] = mod
    spec.loader.exec_module(mod)
    return mod


def main() -> None:
    import torch  # the GPU's own torch

    power = load_power()
    out = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__}
    s, why, idle = power.begin(1, True, start=True)  # the thread runs from here (an engine starts it after its fork)
    out["why"] = why
    if s is None:
        print(json.dumps(out, indent=1))
        return
    out.update(method=s.method, instant=s.instant, has_counter=s.has_counter, idle_w=idle.gpus[0].avg_watts,
               idle_samples=idle.samples)
    a = torch.randn(N, N, device="cuda", dtype=torch.bfloat16)
    for _ in range(20):
        a @ a
    torch.cuda.synchronize()
    n, t0 = 0, time.time()
    while time.time() - t0 < 6.0:
        for _ in range(50):
            a @ a
        torch.cuda.synchronize()
        n += 50
    t1 = time.time()
    time.sleep(1.0)
    power.end(s)
    w = s.window(t0, t1)
    g = w.gpus[0]
    tflop = n * 2 * N**3 / 1e12
    out.update(seconds=round(t1 - t0, 3), matmuls=n, tflops=round(tflop / (t1 - t0), 1), joules=round(g.joules, 2),
               sampled_joules=round(g.sampled_joules, 2), method=g.method, avg_w=round(g.avg_watts, 1),
               peak_w=g.peak_watts, samples=w.samples,
               counter_vs_samples_pct=round(100 * (g.sampled_joules / g.joules - 1), 3),
               j_per_tflop=round(g.joules / tflop, 3), after_idle_w=s.window(t1 + 0.3, t1 + 1.0).gpus[0].avg_watts,
               gaps_ms=sorted(round(1000 * (b.t - x.t), 1) for x, b in zip(s.samples, s.samples[1:]))[-5:])
    print(json.dumps(out, indent=1))
    dest = Path(os.environ.get("OUT", "/tmp/o"))
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "power-smoke.json").write_text(json.dumps(out, indent=1))
    subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,power.limit,power.draw", "--format=csv"])


if __name__ == "__main__":
    main()
