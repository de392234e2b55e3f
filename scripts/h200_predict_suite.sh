#!/usr/bin/env bash
# The H200 measurements behind docs/results/prediction-accuracy.md (issue 30): points predicted from the H100
# calibration run (docs/results/h100-predict/calibration.json.gz) before they ran; each in a fresh process (a
# fresh engine). Points whose JSON is already in OUTDIR are skipped (resumable).
#
#   scripts/h200_predict_suite.sh OUTDIR [POINT ...]          # default: every point, in the order below
#   OB="python -m offline_bench" scripts/h200_predict_suite.sh ...   # without the installed entry point
set -u
OUTDIR=${1:?usage: h200_predict_suite.sh OUTDIR [POINT ...]}; shift
OB=${OB:-offline-bench}
LIMIT=${LIMIT:-420}  # seconds a point may take (a cold 8B start on an H200 is ~200 s)
M8="--model preset:llama-3.1-8b --max-model-len 4096"
BIG="--num-prompts 1000 --input-len 512 --output-len 256"
SMALL="--num-prompts 300 --input-len 512 --output-len 256"
declare -A POINT=(
  [gmu-0.9]="$M8 --gpu-memory-utilization 0.9 $BIG"
  [gmu-0.7]="$M8 --gpu-memory-utilization 0.7 $BIG"
  [gmu-0.5]="$M8 --gpu-memory-utilization 0.5 $BIG"
  [kv-fp8]="$M8 --gpu-memory-utilization 0.9 --kv-cache-dtype fp8 $BIG"
  [mnbt-4096]="$M8 --gpu-memory-utilization 0.9 --max-num-batched-tokens 4096 $SMALL"
  [mnbt-2048]="$M8 --gpu-memory-utilization 0.9 --max-num-batched-tokens 2048 $SMALL"
  [mnbt-1024]="$M8 --gpu-memory-utilization 0.9 --max-num-batched-tokens 1024 $SMALL"
  [mnbt-512]="$M8 --gpu-memory-utilization 0.9 --max-num-batched-tokens 512 --max-num-seqs 256 $SMALL"
  [moe]="--model preset:qwen3-30b-a3b --max-model-len 4096 --gpu-memory-utilization 0.9 $SMALL"
  # held out from the MoE memory terms fitted on [moe] (its plan committed first: blind/plan-moe-heldout.json)
  [moe-heldout]="--model preset:qwen3-30b-a3b --max-model-len 4096 --gpu-memory-utilization 0.8 --max-num-batched-tokens 4096 --num-prompts 100 --input-len 512 --output-len 256"
)
ORDER=(gmu-0.9 gmu-0.5 kv-fp8 moe mnbt-1024 mnbt-4096 gmu-0.7 mnbt-2048 mnbt-512)
mkdir -p "$OUTDIR"
for name in "${@:-${ORDER[@]}}"; do
  [ -f "$OUTDIR/$name.json.gz" ] && { echo "== $name: already measured"; continue; }
  [ -n "${POINT[$name]:-}" ] || { echo "unknown point $name: one of ${ORDER[*]}"; exit 2; }
  echo "== $name: $OB run ${POINT[$name]}"
  start=$(date +%s)
  # shellcheck disable=SC2086
  timeout "$LIMIT" $OB run ${POINT[$name]} --output "$OUTDIR/$name.json.gz" --save-log "$OUTDIR/$name.log" \
    --format json > "$OUTDIR/$name.stdout" 2> "$OUTDIR/$name.stderr"
  echo "== $name: rc=$? in $(( $(date +%s) - start )) s"; tail -2 "$OUTDIR/$name.stderr"
done
