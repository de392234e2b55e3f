#!/usr/bin/env bash
# The same workload at TP=1 (one GPU), DP=2 (two engine replicas) and TP=2 on one host (issue 7's run).
# Multi-GPU runs use --safe-allreduce: vLLM 0.26's FlashInfer mnnvl all-reduce needs NVSwitch multicast.
# usage: scripts/parallel_suite.sh OUTDIR [tp1] [dp2] [tp2]        (default: all three, in that order)
# settings (env): PRESET=llama-3.1-8b GMU=0.9 (or KV=64MiB: the KV cache in bytes)
#   MML=4096 N=1000 IN=512 OLEN=256 WARMUP=8
#   CPU check: PRESET=tiny-llama KV=64MiB MML=512 N=16 IN=32 OLEN=8 scripts/parallel_suite.sh /tmp/par tp1 dp2
set -euo pipefail
OUT=${1:?usage: $0 OUTDIR [tp1] [dp2] [tp2]}; shift
CONFIGS=("$@"); [[ ${#CONFIGS[@]} -gt 0 ]] || CONFIGS=(tp1 dp2 tp2)
PRESET=${PRESET:-llama-3.1-8b}; GMU=${GMU:-0.9}; MML=${MML:-4096}; N=${N:-1000}; IN=${IN:-512}; OLEN=${OLEN:-256}
SIZE=(--gpu-memory-utilization "$GMU"); [ -z "${KV:-}" ] || SIZE=(--kv-cache-memory-bytes "$KV")
WARMUP=${WARMUP:-8}; PY=${PYTHON:-python3}
mkdir -p "$OUT"
for c in "${CONFIGS[@]}"; do
  case $c in
    tp1) ARGS=(--save-log "$OUT/tp1-engine.log"); DEV=0 ;;
    dp2) ARGS=(--data-parallel-size 2); DEV=0,1 ;;
    tp2) ARGS=(--tensor-parallel-size 2 --safe-allreduce --save-log "$OUT/tp2-engine.log"); DEV=0,1 ;;
    *) echo "unknown config '$c': use tp1, dp2 or tp2"; exit 2 ;;
  esac
  t0=$(date +%s)
  if command -v nvidia-smi >/dev/null; then export CUDA_VISIBLE_DEVICES=$DEV; fi
  $PY -m offline_bench run --model "preset:$PRESET" "${SIZE[@]}" --max-model-len "$MML" \
    --num-prompts "$N" --input-len "$IN" --output-len "$OLEN" --warmup "$WARMUP" "${ARGS[@]}" \
    --output "$OUT/$c.json" --format md >"$OUT/$c.md" 2>"$OUT/$c.err" || echo "$c failed: $(tail -1 "$OUT/$c.err")"
  echo "$c: $(( $(date +%s) - t0 )) s"
done
