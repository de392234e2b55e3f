#!/usr/bin/env bash
# Offline vs serving on ONE GPU (issue 4's run): the server and the offline engine each want the GPU at the same
# gpu_memory_utilization, so they run one after the other:
#   1. `vllm serve` on a preset (serve-preset), probed at each concurrency level (serve-probe), then stopped;
#   2. the offline engine at the same settings and levels (`run --concurrency`), one engine for all levels;
#   3. `compare` per level, and `explain-gap` with the saved serving results (--serving-result).
# usage: scripts/offline_vs_serving.sh OUTDIR [STAGES]   STAGES: serve,offline,gap (default: all three)
# settings (env): PRESET=llama-3.1-8b GMU=0.9 (or KV=64MiB: the KV cache in bytes)
#   MML=4096 OLEN=512 LEVELS=1,10,64 COUNTS=4,20,128 WARMUP=2 PORT=8011
#   CPU check: PRESET=tiny-llama KV=64MiB MML=512 OLEN=16 LEVELS=1,4 COUNTS=2,8 scripts/offline_vs_serving.sh /tmp/ovs
set -euo pipefail
OUT=${1:?usage: $0 OUTDIR [serve,offline,gap]}; STAGES=,${2:-serve,offline,gap},
PRESET=${PRESET:-llama-3.1-8b}; GMU=${GMU:-0.9}; MML=${MML:-4096}; OLEN=${OLEN:-512}
SIZE=(--gpu-memory-utilization "$GMU"); [ -z "${KV:-}" ] || SIZE=(--kv-cache-memory-bytes "$KV")
LEVELS=${LEVELS:-1,10,64}; COUNTS=${COUNTS:-4,20,128}; WARMUP=${WARMUP:-2}; PORT=${PORT:-8011}
PY=${PYTHON:-python3}; OB="$PY -m offline_bench"
# the same workload on both sides: the seed prompts, exactly OLEN tokens each (ignore EOS), default sampling
WL=(--prompts prompts/seed.txt --concurrency "$LEVELS" --num-prompts "$COUNTS" --output-len "$OLEN" --ignore-eos
    --warmup "$WARMUP")
mkdir -p "$OUT"

if [[ $STAGES == *,serve,* ]]; then
  setsid $OB serve-preset "$PRESET" --port "$PORT" --max-model-len "$MML" "${SIZE[@]}" \
    >"$OUT/server.log" 2>&1 &
  SERVER=$!
  trap 'kill -TERM -- -$SERVER 2>/dev/null || true' EXIT
  t0=$(date +%s)
  until $PY -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$PORT/v1/models', timeout=2)" 2>/dev/null; do
    kill -0 $SERVER 2>/dev/null || { echo "server exited:"; tail -30 "$OUT/server.log"; exit 1; }
    (( $(date +%s) - t0 < 900 )) || { echo "server not up in 900 s"; exit 1; }
    sleep 2
  done
  echo "server up after $(( $(date +%s) - t0 )) s"
  $OB serve-probe --base-url "http://127.0.0.1:$PORT" --served-model-name "preset:$PRESET" "${WL[@]}" \
    --output "$OUT/serving.json" --format md >"$OUT/serving.md"
  kill -TERM -- -$SERVER; wait $SERVER 2>/dev/null || true  # free the GPU for the offline engine
  for _ in $(seq 60); do  # its engine process too
    pgrep -f "[v]llm.entrypoints.openai.api_server|[V]LLM::EngineCore" >/dev/null || break; sleep 1
  done
  trap - EXIT
fi

if [[ $STAGES == *,offline,* ]]; then
  $OB run --model "preset:$PRESET" "${SIZE[@]}" --max-model-len "$MML" "${WL[@]}" \
    --output "$OUT/offline.json" --format md --save-log "$OUT/offline-engine.log" >"$OUT/offline.md"
  for c in ${LEVELS//,/ }; do
    $OB compare "$OUT/offline-c$c.json" "$OUT/serving-c$c.json" --format md >>"$OUT/compare.md"
  done
fi

if [[ $STAGES == *,gap,* ]]; then
  SAVED=()
  for c in ${LEVELS//,/ }; do SAVED+=(--serving-result "$OUT/serving-c$c.json"); done
  $OB explain-gap --model "preset:$PRESET" "${SIZE[@]}" --max-model-len "$MML" "${WL[@]}" \
    "${SAVED[@]}" --output "$OUT/gap.json" --format md >"$OUT/gap.md"
fi
echo "done: $OUT"
