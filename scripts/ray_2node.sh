#!/usr/bin/env bash
# Issue 18 on one 2-GPU host: two Ray nodes -- a head holding GPU 0 and a second node holding GPU 1, so a 2-GPU
# placement really spans two Ray nodes -- then TP=2 and PP=2 of the 8B preset on the Ray backend, and both on mp.
# Every run uses --safe-allreduce; a step whose result exists is skipped (a call cut by a time limit resumes).
# TP=2 over the two Ray nodes runs without vLLM's custom all-reduce (vLLM takes two Ray nodes of one host for one
# node and that all-reduce fails; across real hosts it is off anyway); tp2-mp-noca is mp without it, like for like.
# usage: scripts/ray_2node.sh OUTDIR [tp2-ray] [pp2-ray] [tp2-mp] [pp2-mp] [tp2-mp-noca]
#   (default: tp2-ray pp2-ray tp2-mp pp2-mp tp2-mp-noca, in that order)
# settings (env): PRESET=llama-3.1-8b N=1000 IN=512 OLEN=256 GMU=0.9 MML=4096 WARMUP=8 PORT=6390 NODE2_IP=127.0.0.2
#   RAY=ray (the `ray` command; e.g. /root/raylib/bin/ray where Ray was unpacked with pip --target)
#   KV= (the KV cache in bytes instead of GMU)   Stops with `ray stop --force`: every Ray process of the host goes.
#   CPU check (the Ray steps fail there in one line: the CPU build has no Ray executor): PRESET=tiny-llama N=8
#     IN=32 OLEN=8 MML=512 KV=67108864 scripts/ray_2node.sh /tmp/r2 tp2-ray tp2-mp
set -euo pipefail
OUT=${1:?usage: $0 OUTDIR [tp2-ray] [pp2-ray] [tp2-mp] [pp2-mp] [tp2-mp-noca]}; shift
STEPS=("$@"); [[ ${#STEPS[@]} -gt 0 ]] || STEPS=(tp2-ray pp2-ray tp2-mp pp2-mp tp2-mp-noca)
NOCA=(--engine-arg disable_custom_all_reduce=true)
PRESET=${PRESET:-llama-3.1-8b}; N=${N:-1000}; IN=${IN:-512}; OLEN=${OLEN:-256}; GMU=${GMU:-0.9}; MML=${MML:-4096}
WARMUP=${WARMUP:-8}; PORT=${PORT:-6390}; RAY=${RAY:-ray}; PY=${PYTHON:-python3}
SIZE=(--gpu-memory-utilization "$GMU"); [ -z "${KV:-}" ] || SIZE=(--kv-cache-memory-bytes "$KV")
ADDRESS=127.0.0.1:$PORT
export RAY_AUTH_MODE=${RAY_AUTH_MODE:-disabled}  # a cluster of this host only, on loopback
# Ray workers inherit the raylets' environment first: keep FlashInfer's multicast all-reduce off there too
export VLLM_FLASHINFER_ALLREDUCE_BACKEND=${VLLM_FLASHINFER_ALLREDUCE_BACKEND:-trtllm}
$RAY stop --force >/dev/null 2>&1 || true  # a cluster left by an interrupted earlier call holds the port
mkdir -p "$OUT"
RAYTMP=$(mktemp -d /tmp/rayXXXX)  # short: Ray's socket paths must stay under ~107 characters
# keep Ray's own logs (workers' stderr is there) before the temp dir goes
trap '$RAY stop --force >/dev/null 2>&1 || true; tar czf "$OUT/ray-logs.tgz" -C "$RAYTMP" . 2>/dev/null; rm -rf "$RAYTMP"' EXIT
CUDA_VISIBLE_DEVICES=0 $RAY start --head --node-ip-address 127.0.0.1 --port "$PORT" --num-gpus 1 \
  --include-dashboard=false --disable-usage-stats --temp-dir "$RAYTMP" >"$OUT/ray-head.log" 2>&1
# the second node gets its own loopback IP: vLLM's Ray executor tells nodes apart by IP as well as by node id
CUDA_VISIBLE_DEVICES=1 $RAY start --address "$ADDRESS" --node-ip-address "${NODE2_IP:-127.0.0.2}" --num-gpus 1 \
  --disable-usage-stats >"$OUT/ray-node2.log" 2>&1
sleep 5
$RAY status --address "$ADDRESS" >"$OUT/ray-status.txt" 2>&1
for s in "${STEPS[@]}"; do
  case $s in
    tp2-ray) ARGS=(--tensor-parallel-size 2 --distributed-executor-backend ray --ray-address "$ADDRESS" "${NOCA[@]}") ;;
    pp2-ray) ARGS=(--pipeline-parallel-size 2 --distributed-executor-backend ray --ray-address "$ADDRESS") ;;
    tp2-mp) ARGS=(--tensor-parallel-size 2 --distributed-executor-backend mp) ;;
    pp2-mp) ARGS=(--pipeline-parallel-size 2 --distributed-executor-backend mp) ;;
    tp2-mp-noca) ARGS=(--tensor-parallel-size 2 --distributed-executor-backend mp "${NOCA[@]}") ;;
    *) echo "unknown step '$s': use tp2-ray, pp2-ray, tp2-mp, pp2-mp or tp2-mp-noca"; exit 2 ;;
  esac
  [ -f "$OUT/$s.json" ] && { echo "$s: done before"; continue; }
  t0=$(date +%s)
  timeout "${STEP_TIMEOUT:-900}" $PY -m offline_bench run ${VERBOSE:+--verbose} --model "preset:$PRESET" "${ARGS[@]}" --safe-allreduce "${SIZE[@]}" \
    --max-model-len "$MML" --num-prompts "$N" --input-len "$IN" --output-len "$OLEN" --warmup "$WARMUP" \
    --save-log "$OUT/$s-engine.log" --output "$OUT/$s.json" --format md >"$OUT/$s.md" 2>"$OUT/$s.err" \
    || echo "$s failed: $(tail -1 "$OUT/$s.err")"
  echo "$s: $(( $(date +%s) - t0 )) s"
done
