#!/usr/bin/env bash
# The GPU measurements issues 31 and 32 still need, in one driver for one H200 (about 25 min of device time:
# 2 energy runs of one pass, phases, and 2 tunes of --verify 3 = 9 engine starts, warm ones 60-90 s):
#   issue 32: the 8B preset at gmu 0.9 and 0.5 (0.5 preempts), 1000 x 512 -> 256, with energy and cost; phases at
#             batch 1-256 with J/token (-> docs/results/h200-energy.md)
#   issue 31: tune on the committed H200 calibration, a closed batch and 20 req/s with TTFT p99 500 ms / TPOT p99
#             50 ms, --verify 3 each (-> docs/results/tune-h200.md)
# Start it detached (setsid nohup) and poll OUTDIR/driver.txt: a step's line appears when it ends.
#   scripts/h200_tune_energy.sh OUTDIR [OB]      (OB: how to call offline-bench, default `python3 -m offline_bench`)
set -uo pipefail
OUT=${1:?usage: h200_tune_energy.sh OUTDIR [OB]}
OB=${2:-python3 -m offline_bench}
CAL=docs/results/h200-predict/measured/gmu-0.9.json.gz
MODEL=(--model preset:llama-3.1-8b --max-model-len 4096)
PRICES=(--gpu-hour-cost h100-sxm=2.49,h200=3.50 --kwh-cost 0.12)
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version,power.limit --format=csv,noheader > "$OUT/gpu.txt"
step() {  # NAME CMD...: its stdout and stderr kept, one line in driver.txt with the exit status and seconds
  local name=$1 t0
  shift
  t0=$(date +%s)
  "$@" > "$OUT/$name.out" 2> "$OUT/$name.err"
  echo "$name rc=$? in $(( $(date +%s) - t0 )) s" >> "$OUT/driver.txt"
}
for g in 0.9 0.5; do
  step "energy-gmu-$g" $OB run "${MODEL[@]}" --gpu-memory-utilization "$g" --num-prompts 1000 --input-len 512 \
    --output-len 256 --repeats 1 "${PRICES[@]}" --output "$OUT/energy-gmu-$g.json" --format md
done
step phases $OB phases "${MODEL[@]}" --gpu-memory-utilization 0.9 --batch-sizes 1,8,32,64,128,256 \
  --input-len 512 --output-len 128 --format json
step tune-closed $OB tune --calibrate "$CAL" --verify 3 --verify-dir "$OUT/tv-closed" --gpu-hour-cost h200=3.50 \
  --output "$OUT/tune-closed.json"
# max_num_seqs below 64 is where 20 req/s starts to queue: without it every setting of the default grid predicts alike
step tune-r20 $OB tune --calibrate "$CAL" --request-rate 20 --goodput ttft:500 --goodput tpot:50 \
  --objective goodput --max-num-seqs 32,40,48,64,256,1024 --verify 3 --verify-dir "$OUT/tv-r20" --output "$OUT/tune-r20.json"
echo "done" >> "$OUT/driver.txt"
