#!/usr/bin/env bash
# The H100 measurements behind docs/results/h100-predict.md: a calibration run (gmu 0.9, max_model_len 4096,
# with per-step records) and new points, each in a fresh process (a fresh engine), all on the workload
# 500 synthetic prompts 512 -> 256. Points whose JSON is already in OUTDIR are skipped (resumable).
#
#   scripts/predict_suite.sh OUTDIR [POINT ...]          # default: every point, in the order below
#   OB="python -m offline_bench" scripts/predict_suite.sh ...   # without the installed entry point
set -u
OUTDIR=${1:?usage: predict_suite.sh OUTDIR [POINT ...]}; shift
OB=${OB:-offline-bench}
LIMIT=${LIMIT:-420}  # seconds a point may take (a cold start on an H100 is ~200 s)
M8="--model preset:llama-3.1-8b --max-model-len 4096"
WL="--num-prompts 500 --input-len 512 --output-len 256"
declare -A POINT=(
  [calibration]="$M8 --gpu-memory-utilization 0.9"
  [gmu-0.6]="$M8 --gpu-memory-utilization 0.6"
  [mnbt-4096]="$M8 --gpu-memory-utilization 0.9 --max-num-batched-tokens 4096"
  [mns-128]="$M8 --gpu-memory-utilization 0.9 --max-num-seqs 128"
  [kv-fp8]="$M8 --gpu-memory-utilization 0.9 --kv-cache-dtype fp8"
  [qwen3-8b]="--model preset:qwen3-8b --max-model-len 4096 --gpu-memory-utilization 0.9"
  [mixed]="--model preset:llama-3.1-8b --max-model-len 8192 --gpu-memory-utilization 0.7 --max-num-batched-tokens 8192 --max-num-seqs 256"
)
ORDER=(calibration gmu-0.6 mnbt-4096 mns-128 kv-fp8 qwen3-8b mixed)
mkdir -p "$OUTDIR"
for name in "${@:-${ORDER[@]}}"; do
  [ -f "$OUTDIR/$name.json" ] && { echo "== $name: already measured"; continue; }
  [ -n "${POINT[$name]:-}" ] || { echo "unknown point $name: one of ${ORDER[*]}"; exit 2; }
  echo "== $name: $OB run ${POINT[$name]} $WL"
  start=$(date +%s)
  # shellcheck disable=SC2086
  timeout "$LIMIT" $OB run ${POINT[$name]} $WL --output "$OUTDIR/$name.json" --save-log "$OUTDIR/$name.log" \
    --format json > "$OUTDIR/$name.stdout" 2> "$OUTDIR/$name.stderr"
  echo "== $name: rc=$? in $(( $(date +%s) - start )) s"; tail -2 "$OUTDIR/$name.stderr"
done
