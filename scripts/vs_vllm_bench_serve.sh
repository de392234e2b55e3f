#!/usr/bin/env bash
# serve-probe held to vLLM's own client (issue 30, item 5): one `vllm serve` (8B preset, gmu 0.9, max_model_len 4096)
# and, at Poisson 5, 20 and 50 req/s, `vllm bench serve --dataset-name random` and `offline-bench serve-probe` on the
# same workload (512 -> 256 tokens, ignore_eos, temperature 0), alternating which client goes first from one rate to
# the next (A B, B A, A B, ...). Neither caps requests in flight under --request-rate (serve-probe's default since #30).
# Every (rate, pass) has its own seed: with one seed, each rate's prompts would repeat the previous rate's, which the
# server's prefix cache then serves (seen: vllm bench's random prompts hit the cache at 20 and 50 req/s). The server's
# prefix-cache counters are logged around every client pass (prefix-cache.txt) to show it.
#   scripts/vs_vllm_bench_serve.sh OUTDIR [RATES] [PASSES]     (GPU; OB: how to call offline-bench)
set -uo pipefail
OUT=${1:?usage: vs_vllm_bench_serve.sh OUTDIR [RATES] [PASSES]}
RATES=${2:-5 20 50}
PASSES=${3:-1}
OB=${OB:-python3 -m offline_bench}
VLLM=${VLLM:-python3 -m vllm.entrypoints.cli.main}
PORT=8011; URL=http://127.0.0.1:$PORT; NAME=preset:llama-3.1-8b
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT/gpu.txt"
TOK=$($OB serve-preset llama-3.1-8b --print-command | tr ' ' '\n' | grep -A1 -x -- --model | tail -1)
$OB serve-preset llama-3.1-8b --port $PORT --gpu-memory-utilization 0.9 --max-model-len 4096 > "$OUT/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; sleep 5; kill -9 $SERVER 2>/dev/null' EXIT
t0=$(date +%s)
until curl -sf "$URL/v1/models" >/dev/null; do
  sleep 2
  kill -0 $SERVER 2>/dev/null || { echo "server died" >> "$OUT/driver.txt"; exit 1; }
done
echo "server up in $(( $(date +%s) - t0 )) s (tokenizer $TOK)" >> "$OUT/driver.txt"
prompts() { case $1 in 5) echo 200;; 20) echo 400;; *) echo 500;; esac; }
cache() { echo "$1 $(curl -s "$URL/metrics" | grep -E '^vllm:prefix_cache_(queries|hits)_total' | awk '{print $NF}' | tr '\n' ' ')" >> "$OUT/prefix-cache.txt"; }
vb() {  # vllm bench serve at rate $1, pass $2 (seed 1000 x pass + rate)
  cache "before vllm-bench-r$1-p$2"
  $VLLM bench serve --backend vllm --base-url "$URL" --model "$NAME" --tokenizer "$TOK" --dataset-name random \
    --random-input-len 512 --random-output-len 256 --ignore-eos --temperature 0 --num-prompts "$(prompts $1)" \
    --request-rate "$1" --seed $((1000 * $2 + $1)) --percentile-metrics ttft,tpot,itl,e2el --metric-percentiles 50,99 \
    --save-result --result-dir "$OUT" --result-filename "vllm-bench-r$1-p$2.json" > "$OUT/vllm-bench-r$1-p$2.txt" 2>&1
  echo "vllm bench serve r=$1 pass $2: rc=$?" >> "$OUT/driver.txt"
  cache "after vllm-bench-r$1-p$2"
}
ob() {  # offline-bench serve-probe at rate $1, pass $2 (the same seed)
  cache "before serve-probe-r$1-p$2"
  $OB serve-probe --base-url "$URL" --served-model-name "$NAME" --tokenizer preset:llama-3.1-8b --input-len 512 \
    --output-len 256 --ignore-eos --temperature 0 --num-prompts "$(prompts $1)" --request-rate "$1" --seed $((1000 * $2 + $1)) \
    --output "$OUT/serve-probe-r$1-p$2.json" --format md > "$OUT/serve-probe-r$1-p$2.md" 2>&1
  echo "serve-probe r=$1 pass $2: rc=$?" >> "$OUT/driver.txt"
  cache "after serve-probe-r$1-p$2"
}
$VLLM bench serve --backend vllm --base-url "$URL" --model "$NAME" --tokenizer "$TOK" --dataset-name random \
  --random-input-len 512 --random-output-len 256 --ignore-eos --num-prompts 50 --request-rate inf > "$OUT/warmup.txt" 2>&1
n=0
for p in $(seq 1 "$PASSES"); do
  for r in $RATES; do
    n=$((n + 1))
    if [ $((n % 2)) = 1 ]; then vb "$r" "$p"; ob "$r" "$p"; else ob "$r" "$p"; vb "$r" "$p"; fi
  done
done
echo done >> "$OUT/driver.txt"
