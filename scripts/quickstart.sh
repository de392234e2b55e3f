#!/usr/bin/env bash
# One command on a fresh machine: install into .venv, then benchmark the embedded default model
# (preset:tiny-llama, dummy weights, nothing downloaded) and print the results table.
# Extra arguments go to `offline-bench run`, e.g. scripts/quickstart.sh --num-prompts 200
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/offline-bench run --num-prompts 64 --input-len 128 --output-len 64 "$@"
