#!/usr/bin/env bash
# One command: install test needs into .venv (and offline-bench with the right vLLM build), lint, build the docs
# site (mkdocs.yml -> site/, strict: a broken link or page fails), run the tests.
#   scripts/test.sh [PYTEST ARGS]         every tier: tests/unit, tests/engine (one real CPU engine, ~25 s to start,
#                                         shared), tests/e2e (real processes: CLI round trips, server, Ray, browser)
#   scripts/test.sh --fast [PYTEST ARGS]  tests/unit only (no engine, no process; about a minute); installs only
#                                         when .venv lacks offline-bench or the test tools (a fresh clone)
set -euo pipefail
cd "$(dirname "$0")/.."
FAST=0
ARGS=()
for a in "$@"; do
  if [ "$a" = --fast ]; then FAST=1; else ARGS+=("$a"); fi
done
venv_complete() {
  [ -x .venv/bin/python ] && [ -x .venv/bin/ruff ] && [ -x .venv/bin/mkdocs ] \
    && .venv/bin/python -c 'import importlib.metadata as m, pytest; m.version("offline-bench")' >/dev/null 2>&1
}
if [ "$FAST" = 0 ] || ! venv_complete; then
  bash scripts/install.sh test
fi
.venv/bin/ruff check offline_bench tests scripts
# the site builds offline (no plugin fetches anything); its CLI and schema pages are generated from this checkout
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --quiet
if [ "$FAST" = 1 ]; then
  exec .venv/bin/python -m pytest tests/unit ${ARGS[@]+"${ARGS[@]}"}
fi
# a crash in native code (even at exit, after the summary) prints every thread's Python stack
PYTHONFAULTHANDLER=1 exec .venv/bin/python -m pytest ${ARGS[@]+"${ARGS[@]}"}
