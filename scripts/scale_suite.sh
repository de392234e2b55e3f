#!/usr/bin/env bash
# Issues 18 and 19 on one host of TP GPUs (4 or 8): the 70B sweep and phases at TP, the 8B preset as DP=2 x TP/2
# against TP (steps dp2 and tp), the 70B as DP=2 x TP/2 (step dp2-big: the workload of the sweep's gmu PHASE_GMU /
# max_model_len PHASE_MML point, which is its TP counterpart), then `offline-bench scaling` over what exists.
# Multi-GPU runs use --safe-allreduce (vLLM 0.26's FlashInfer mnnvl all-reduce needs NVSwitch multicast).
# Every step writes under OUTDIR and is skipped when its result exists, so a call cut by a time limit resumes.
# usage: scripts/scale_suite.sh OUTDIR [sweep] [phases] [dp2] [tp] [dp2-big] [scaling]
#   (default: sweep phases dp2 tp scaling; with TP=8: sweep phases dp2-big scaling -- issue 19's DP=2 x TP=4 vs TP=8)
#   8-GPU host: TP=8 scripts/scale_suite.sh OUTDIR
# settings (env): BIG=llama-3.1-70b SMALL=llama-3.1-8b TP=4 N=500 N8=1000 IN=512 OLEN=256 WARMUP=8
#   GMUS=0.85,0.9,0.95 MMLS=8192,32768 BATCHES=1,2,4,8,16,32,64,128 PHASE_GMU=0.9 PHASE_MML=8192 GMU8=0.9
#   MML8=4096 KV= (phases, dp2-big and the 8B runs: the KV cache in bytes instead of PHASE_GMU / GMU8)
#   CPU check (gmu is the RAM share there): BIG=tiny-llama SMALL=tiny-llama TP=2 N=8 N8=8 IN=32 OLEN=8 GMUS=0.08 \
#     MMLS=512 BATCHES=1,2 PHASE_MML=512 MML8=512 KV=67108864 scripts/scale_suite.sh /tmp/scale
#   CPU check of dp2-big against its sweep point (both axes must vary for the point's gmu-G_mml-M name):
#     BIG=tiny-llama TP=2 N=8 IN=32 OLEN=8 GMUS=0.07,0.08 MMLS=256,512 PHASE_GMU=0.08 PHASE_MML=512 \
#     scripts/scale_suite.sh /tmp/s sweep dp2-big scaling
set -euo pipefail
OUT=${1:?usage: $0 OUTDIR [sweep] [phases] [dp2] [tp] [dp2-big] [scaling]}; shift
BIG=${BIG:-llama-3.1-70b}; SMALL=${SMALL:-llama-3.1-8b}; TP=${TP:-4}; N=${N:-500}; N8=${N8:-1000}
STEPS=("$@"); [[ ${#STEPS[@]} -gt 0 ]] || { [ "$TP" = 8 ] && STEPS=(sweep phases dp2-big scaling) \
  || STEPS=(sweep phases dp2 tp scaling); }
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
    dp2-big)  # two TP/2 replicas of the 70B on the sweep point's workload and settings
      NAME=dp2tp$((TP / 2))-70b
      [ -f "$OUT/$NAME.json" ] || $PY -m offline_bench run --model "preset:$BIG" --data-parallel-size 2 \
        --tensor-parallel-size $((TP / 2)) --safe-allreduce "${PSIZE[@]}" --max-model-len "$PHASE_MML" \
        --num-prompts "$N" --input-len "$IN" --output-len "$OLEN" --warmup "$WARMUP" \
        --output "$OUT/$NAME.json" --format md >"$OUT/$NAME.md" 2>"$OUT/$NAME.err" \
        || echo "$s failed: $(tail -1 "$OUT/$NAME.err")" ;;
    scaling)  # each model's runs side by side, with the 70B batch-1 decode step against the TP group's floor
      PH=$(ls "$OUT"/phases-70b-tp*.json 2>/dev/null || true)
      FILES=$(ls "$OUT"/dp2tp*-8b.json "$OUT"/tp*-8b.json 2>/dev/null || true)
      [ -z "$FILES$PH" ] || $PY -m offline_bench scaling $FILES $PH --format md >"$OUT/scaling.md" \
        2>"$OUT/scaling.err" || echo "scaling failed: $(tail -1 "$OUT/scaling.err")"
      # the 70B: DP=2 x TP/2 against the sweep's point at TP (the same workload and settings)
      POINT="$OUT/sweep-70b-tp$TP/points/gmu-${PHASE_GMU}_mml-$PHASE_MML.json"
      [ ! -f "$OUT/dp2tp$((TP / 2))-70b.json" ] || [ ! -f "$POINT" ] || $PY -m offline_bench scaling "$POINT" \
        "$OUT/dp2tp$((TP / 2))-70b.json" --format md >"$OUT/scaling-70b.md" 2>"$OUT/scaling-70b.err" \
        || echo "scaling (70B) failed: $(tail -1 "$OUT/scaling-70b.err")" ;;
    *) echo "unknown step '$s': use sweep, phases, dp2, tp, dp2-big or scaling"; exit 2 ;;
  esac
  echo "$s: $(( $(date +%s) - t0 )) s"
done
