#!/usr/bin/env bash
# Issues 18 and 19 on one host of TP GPUs (4 or 8): the 70B sweep and phases at TP, and the 8B preset as
# DP=2 x TP/2 against TP (steps dp2 and tp), then `offline-bench scaling` over what exists (scaling.md).
# Multi-GPU runs use --safe-allreduce (vLLM 0.26's FlashInfer mnnvl all-reduce needs NVSwitch multicast).
# Every step writes under OUTDIR and is skipped when its result exists, so a call cut by a time limit resumes.
# usage: scripts/scale_suite.sh OUTDIR [sweep] [phases] [dp2] [tp] [scaling]   (default: all five, in that order)
#   8-GPU host: TP=8 scripts/scale_suite.sh OUTDIR
# settings (env): BIG=llama-3.1-70b SMALL=llama-3.1-8b TP=4 N=500 N8=1000 IN=512 OLEN=256 WARMUP=8
#   GMUS=0.85,0.9,0.95 MMLS=8192,32768 BATCHES=1,2,4,8,16,32,64,128 PHASE_GMU=0.9 PHASE_MML=8192 GMU8=0.9
#   MML8=4096 KV= (phases and the 8B runs: the KV cache in bytes instead of PHASE_GMU / GMU8)
#   CPU check (gmu is the RAM share there): BIG=tiny-llama SMALL=tiny-llama TP=2 N=8 N8=8 IN=32 OLEN=8 GMUS=0.08 \
#     MMLS=512 BATCHES=1,2 PHASE_MML=512 MML8=512 KV=67108864 scripts/scale_suite.sh /tmp/scale
set -euo pipefail
OUT=${1:?usage: $0 OUTDIR [sweep] [phases] [dp2] [tp] [scaling]}; shift
STEPS=("$@"); [[ ${#STEPS[@]} -gt 0 ]] || STEPS=(sweep phases dp2 tp scaling)
BIG=${BIG:-llama-3.1-70b}; SMALL=${SMALL:-llama-3.1-8b}; TP=${TP:-4}; N=${N:-500}; N8=${N8:-1000}
IN=${IN:-512}; OLEN=${OLEN:-256}; WARMUP=${WARMUP:-8}; GMUS=${GMUS:-0.85,0.9,0.95}; MMLS=${MMLS:-8192,32768}
BATCHES=${BATCHES:-1,2,4,8,16,32,64,128}; PHASE_GMU=${PHASE_GMU:-0.9}; PHASE_MML=${PHASE_MML:-8192}
GMU8=${GMU8:-0.9}; MML8=${MML8:-4096}; PY=${PYTHON:-python3}
PSIZE=(--gpu-memory-utilization "$PHASE_GMU"); RSIZE=(--gpu-memory-utilization "$GMU8")
[ -z "${KV:-}" ] || { PSIZE=(--kv-cache-memory-bytes "$KV"); RSIZE=(--kv-cache-memory-bytes "$KV"); }
mkdir -p "$OUT"
for s in "${STEPS[@]}"; do
  t0=$(date +%s)
  case $s in
    sweep)  # resumable by itself: finished points are skipped
      $PY -m offline_bench sweep --output-dir "$OUT/sweep-70b-tp$TP" --model "preset:$BIG" \
        --tensor-parallel-size "$TP" --safe-allreduce --gpu-memory-utilization "$GMUS" --max-model-len "$MMLS" \
        --num-prompts "$N" --input-len "$IN" --output-len "$OLEN" --warmup "$WARMUP" --timeout-per-point 1200 \
        >"$OUT/sweep.log" 2>&1 || echo "sweep failed: $(tail -1 "$OUT/sweep.log")" ;;
    phases)
      [ -f "$OUT/phases-70b-tp$TP.json" ] || $PY -m offline_bench phases --model "preset:$BIG" \
        --tensor-parallel-size "$TP" --safe-allreduce "${PSIZE[@]}" \
        --max-model-len "$PHASE_MML" --batch-sizes "$BATCHES" --input-len "$IN" --output-len 64 --measure-gpu \
        --output "$OUT/phases-70b-tp$TP.json" >"$OUT/phases.log" 2>&1 \
        || echo "phases failed: $(tail -1 "$OUT/phases.log")" ;;
    dp2|tp)
      if [ "$s" = dp2 ]; then ARGS=(--data-parallel-size 2 --tensor-parallel-size $((TP / 2)))
        NAME=dp2tp$((TP / 2)); else ARGS=(--tensor-parallel-size "$TP"); NAME=tp$TP; fi
      [ -f "$OUT/$NAME-8b.json" ] || $PY -m offline_bench run --model "preset:$SMALL" "${ARGS[@]}" --safe-allreduce \
        "${RSIZE[@]}" --max-model-len "$MML8" --num-prompts "$N8" --input-len "$IN" \
        --output-len "$OLEN" --warmup "$WARMUP" \
        --output "$OUT/$NAME-8b.json" --format md >"$OUT/$NAME-8b.md" 2>"$OUT/$NAME-8b.err" \
        || echo "$s failed: $(tail -1 "$OUT/$NAME-8b.err")" ;;
    scaling)  # the 8B runs side by side, and the 70B batch-1 decode step against the TP group's floor
      FILES=$(ls "$OUT"/dp2tp*-8b.json "$OUT"/tp*-8b.json "$OUT"/phases-70b-tp*.json 2>/dev/null || true)
      [ -z "$FILES" ] || $PY -m offline_bench scaling $FILES --format md >"$OUT/scaling.md" 2>"$OUT/scaling.err" \
        || echo "scaling failed: $(tail -1 "$OUT/scaling.err")" ;;
    *) echo "unknown step '$s': use sweep, phases, dp2, tp or scaling"; exit 2 ;;
  esac
  echo "$s: $(( $(date +%s) - t0 )) s"
done
