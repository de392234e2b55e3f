#!/usr/bin/env bash
# Offline vs serving at request rates (issue 15's GPU run, docs/results/h100-rate.md), on ONE GPU: the server and
# the offline engine each want the GPU, so they run one after the other with the same engine settings:
#   1. `vllm serve` on a preset (serve-preset, extra flags passed through), probed at each rate (serve-probe
#      --request-rate R1,R2,..., the same seeded Poisson schedule `run` follows), then stopped;
#   2. the offline engine at the same settings and rates (`run --request-rate R1,R2,...`: one engine);
#   3. `compare` per rate.
# usage: scripts/rate_suite.sh OUTDIR [STAGES]   STAGES: serve,offline (default: both)
# settings (env): PRESET=llama-3.1-8b GMU=0.9 (or KV=64MiB) MML=4096 RATES=5,20,50 COUNTS=150,400,1000
#   CAP=1024 (most requests in flight on the client side) GOODPUT="ttft:500 tpot:50" WARMUP=8 PORT=8011
#   SCENARIOS=1: also serve-probe --scenario seed-single and seed-10 against the server (scenarios.md)
#   SCHED="--max-num-seqs 256 --max-num-batched-tokens 8192" (both sides; `vllm serve` and the LLM class differ)
#   CPU check: PRESET=tiny-llama KV=64MiB MML=2048 RATES=5,20 COUNTS=8,16 SCHED= scripts/rate_suite.sh /tmp/rs
set -euo pipefail
OUT=${1:?usage: $0 OUTDIR [serve,offline]}; STAGES=,${2:-serve,offline},
PRESET=${PRESET:-llama-3.1-8b}; GMU=${GMU:-0.9}; MML=${MML:-4096}
SIZE=(--gpu-memory-utilization "$GMU"); [ -z "${KV:-}" ] || SIZE=(--kv-cache-memory-bytes "$KV")
RATES=${RATES:-5,20,50}; COUNTS=${COUNTS:-150,400,1000}; CAP=${CAP:-1024}; WARMUP=${WARMUP:-8}; PORT=${PORT:-8011}
read -r -a SCHED <<< "${SCHED---max-num-seqs 256 --max-num-batched-tokens 8192}"
GP=(); for g in ${GOODPUT:-ttft:500 tpot:50}; do GP+=(--goodput "$g"); done
PY=${PYTHON:-python3}; OB="$PY -m offline_bench"
# the same workload on both sides: the ShareGPT-format file (cycled to each count), each reply's token count as
# max_tokens with EOS ignored (exact lengths), prefix caching off on both sides (the 24 conversations repeat, so a
# cache would serve repeats that real traffic would not send), Poisson arrivals seeded alike
WL=(--dataset sharegpt prompts/sharegpt-mini.json --request-rate "$RATES" --num-prompts "$COUNTS"
    --concurrency "$CAP" --ignore-eos --warmup "$WARMUP" "${GP[@]}")
mkdir -p "$OUT"

if [[ $STAGES == *,serve,* ]]; then
  setsid $OB serve-preset "$PRESET" --port "$PORT" --max-model-len "$MML" "${SIZE[@]}" \
    --no-enable-prefix-caching "${SCHED[@]}" >"$OUT/server.log" 2>&1 &
  SERVER=$!
  trap 'kill -TERM -- -$SERVER 2>/dev/null || true' EXIT
  t0=$(date +%s)
  until $PY -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$PORT/v1/models', timeout=2)" 2>/dev/null; do
    kill -0 $SERVER 2>/dev/null || { echo "server exited:"; tail -30 "$OUT/server.log"; exit 1; }
    (( $(date +%s) - t0 < 900 )) || { echo "server not up in 900 s"; exit 1; }
    sleep 2
  done
  echo "server up after $(( $(date +%s) - t0 )) s"
  $OB serve-probe --base-url "http://127.0.0.1:$PORT" --served-model-name "preset:$PRESET" \
    --tokenizer "preset:$PRESET" "${WL[@]}" --output "$OUT/serving.json" --format md >"$OUT/serving.md"
  if [ -n "${SCENARIOS:-}" ]; then  # the seed's two stress tests against the same server (cold: no warm-up)
    for sc in seed-single seed-10; do
      $OB serve-probe --base-url "http://127.0.0.1:$PORT" --served-model-name "preset:$PRESET" --scenario "$sc" \
        --warmup 0 --output "$OUT/$sc.json" --format md >>"$OUT/scenarios.md"
    done
  fi
  kill -TERM -- -$SERVER; wait $SERVER 2>/dev/null || true  # free the GPU for the offline engine
  for _ in $(seq 60); do  # its engine process too
    pgrep -f "[v]llm.entrypoints.openai.api_server|[V]LLM::EngineCore" >/dev/null || break; sleep 1
  done
  trap - EXIT
fi

if [[ $STAGES == *,offline,* ]]; then
  $OB run --model "preset:$PRESET" "${SIZE[@]}" --max-model-len "$MML" --no-enable-prefix-caching "${SCHED[@]}" \
    "${WL[@]}" --output "$OUT/offline.json" --format md --save-log "$OUT/offline-engine.log" >"$OUT/offline.md"
  : >"$OUT/compare.md"
  for r in ${RATES//,/ }; do
    $OB compare "$OUT/offline-r$r.json" "$OUT/serving-r$r.json" --format md >>"$OUT/compare.md"
  done
fi
echo "done: $OUT"
