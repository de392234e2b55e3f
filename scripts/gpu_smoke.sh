#!/usr/bin/env bash
# GPU smoke run after a change that moves engine code: one `run` of the 8B preset, then the same run interrupted
# by Ctrl-C to its whole process group during the engine's start (exit status, seconds to exit, processes and GPU
# memory left), then `kill -9` of the command's pid alone 20 s into another start (issue 29: no orphan engine may
# keep the GPU). Writes OUTDIR/smoke-run.json, smoke-run.log, smoke-run.md, smoke.txt.
#   scripts/gpu_smoke.sh OUTDIR [OB]      (OB: how to call offline-bench, default `python3 -m offline_bench`)
set -uo pipefail
OUT=${1:?usage: gpu_smoke.sh OUTDIR}
OB=${2:-python3 -m offline_bench}
mkdir -p "$OUT"
ARGS=(--model preset:llama-3.1-8b --gpu-memory-utilization 0.9 --max-model-len 4096 --num-prompts 500
      --input-len 512 --output-len 256)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT/gpu.txt"
t0=$(date +%s)
$OB run "${ARGS[@]}" --output "$OUT/smoke-run.json" --save-log "$OUT/smoke-run.log" --format md \
  > "$OUT/smoke-run.md" 2> "$OUT/smoke-run.err"
echo "run rc=$? in $(( $(date +%s) - t0 )) s" > "$OUT/smoke.txt"
# the interrupt: SIGINT to the group once the engine core has run for 20 s (weights loading, KV profiling)
OB="$OB" python3 - "$OUT" "${ARGS[@]}" <<'EOF' >> "$OUT/smoke.txt" 2>&1
import os, shlex, signal, subprocess, sys, time
import psutil
out = sys.argv[1]
cmd = shlex.split(os.environ["OB"]) + ["run", *sys.argv[2:]]
def setsid_dfl():
    os.setsid(); signal.signal(signal.SIGINT, signal.SIG_DFL)
p = subprocess.Popen(cmd + ["--output", f"{out}/interrupted.json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                     text=True, preexec_fn=setsid_dfl)
deadline = time.time() + 400
def core():
    return [c for c in psutil.Process(p.pid).children(recursive=True) if "EngineCore" in " ".join(c.cmdline()[:1] + [c.name()])]
while not core() and time.time() < deadline and p.poll() is None:
    time.sleep(0.2)
time.sleep(20)
below = psutil.Process(p.pid).children(recursive=True)
t = time.time(); os.killpg(p.pid, signal.SIGINT)
try:
    _, err = p.communicate(timeout=120)
except subprocess.TimeoutExpired:
    os.killpg(p.pid, signal.SIGKILL); _, err = p.communicate(); print("HUNG: killed after 120 s")
took = time.time() - t
time.sleep(3)
alive = [c.pid for c in below if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
used = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader"],
                      capture_output=True, text=True).stdout.strip()
print(f"interrupt: rc={p.returncode} after {took:.1f} s; processes left: {alive}; GPU apps left: {used or 'none'}")
print("last stderr line:", (err.strip().splitlines() or [""])[-1])
EOF
# kill -9 of the command alone (nothing in it can catch that): every process below it gone, the GPU freed
OB="$OB" python3 - "$OUT" "${ARGS[@]}" <<'EOF' >> "$OUT/smoke.txt" 2>&1
import os, shlex, subprocess, sys, time
import psutil
out = sys.argv[1]
cmd = shlex.split(os.environ["OB"]) + ["run", *sys.argv[2:]]
p = subprocess.Popen(cmd + ["--output", f"{out}/killed.json"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True)
def core():
    return [c for c in psutil.Process(p.pid).children(recursive=True) if "EngineCore" in " ".join(c.cmdline()[:1] + [c.name()])]
deadline = time.time() + 400
while not core() and time.time() < deadline and p.poll() is None:
    time.sleep(0.2)
time.sleep(20)
def gpu():
    return subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader"], capture_output=True,
                          text=True).stdout.strip()
below = psutil.Process(p.pid).children(recursive=True)
names = sorted({c.name() for c in below})
before = gpu()
t = time.time(); p.kill(); p.wait()
while any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in below) and time.time() - t < 60:
    time.sleep(0.1)
gone = time.time() - t
left = [c.pid for c in below if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
time.sleep(2)
apps = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader"],
                      capture_output=True, text=True).stdout.strip()
print(f"kill -9: {len(below)} processes below the command ({', '.join(names)}), all gone after {gone:.2f} s "
      f"(left: {left}); GPU memory used before {before}, 2 s after {gpu()}; GPU apps left: {apps or 'none'}")
EOF
echo done >> "$OUT/smoke.txt"
