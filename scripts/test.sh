#!/usr/bin/env bash
# One command: install test needs into .venv (and offline-bench with the right vLLM build), lint, run the tests.
# The engine tests start the real vLLM engine (CPU build here, ~25 s, shared across tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh test
.venv/bin/ruff check offline_bench tests scripts
# a crash in native code (even at exit, after the summary) prints every thread's Python stack
PYTHONFAULTHANDLER=1 exec .venv/bin/python -m pytest "$@"
