"""What the tests of every tier share: paths, the test engines' size, the CLI in-process (`cli`) and in a fresh
process (`run_cli`), and the process helpers of the signal and sweep tests.

Every test engine sizes its KV cache in bytes (`--kv-cache-memory-bytes`), never as a share of memory: on the
CPU build gmu is a share of what the NUMA node reports, which differs between machines and over time. Only the
tests of gmu itself use it, with values derived from the node's size (see `gmu_for`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
RESULTS = ROOT / "docs" / "results"
MAX_MODEL_LEN = 512
KV = "64MiB"  # each test engine's KV cache: 32,768 tokens of tiny-llama, 64 requests of MAX_MODEL_LEN
KV_BYTES = 64 * 2**20
KV_ARGS = ["--kv-cache-memory-bytes", KV]
# Engines a test may run at once: the session's, a server, and one or two it starts itself.
ENGINES_AT_ONCE = 4
GIB = 2**30


# ---------------------------------------------------------------- memory


def node_memory() -> tuple[int, int]:
    """(total, available) bytes of NUMA node 0, computed as vLLM's CPU worker does before it allocates KV."""
    meminfo = Path("/sys/devices/system/node/node0/meminfo")
    if not meminfo.exists():
        import psutil

        vm = psutil.virtual_memory()
        return vm.total, vm.available
    m = {}
    for line in meminfo.read_text().splitlines():
        parts = line.split()
        m[parts[2].rstrip(":")] = int(parts[3]) * 1024
    available = m["MemFree"] + m["Active(file)"] + m["Inactive(file)"] + m["SReclaimable"]
    return m["MemTotal"], available


def require_memory(nbytes: int, what: str) -> None:
    """Fail (not error deep inside an engine) when the machine lacks the memory a test's engines need."""
    _, available = node_memory()
    if available < nbytes:
        pytest.fail(f"{what} needs {nbytes / GIB:.2f} GiB free on NUMA node 0 for KV caches, but the node has "
                    f"{available / GIB:.2f} GiB available: stop other engines or free memory, then rerun",
                    pytrace=False)


def gmu_for(kv_target: int, worker_rss: int = int(1.5 * GIB)) -> float:
    """A gpu_memory_utilization whose CPU KV cache is about `kv_target` bytes: vLLM's CPU worker gives the KV
    cache gmu x node total minus the worker's own memory (~0.7 GiB for tiny-llama; 1.5 GiB is allowed)."""
    total, _ = node_memory()
    return round(min(0.95, (worker_rss + kv_target) / total), 4)


# ---------------------------------------------------------------- the CLI


def cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    """The CLI in this process, as `offline-bench ARGS` runs it from the repository root: (exit status, stdout,
    stderr). What the CLI printed before the call is dropped."""
    from offline_bench.cli.main import run_app
    from offline_bench.core.environment import COMMAND_ENV

    capsys.readouterr()
    before = Path.cwd()
    # the command line a process records once for its results (and its children's): this call's, as in a process
    # of its own, and not left behind for later calls or the processes later tests start
    command = os.environ.pop(COMMAND_ENV, None)
    os.chdir(ROOT)  # relative paths (prompts/, docs/results/) as from a checkout
    try:
        rc = run_app(list(args))
    finally:
        os.chdir(before)
        os.environ.pop(COMMAND_ENV, None)
        if command is not None:
            os.environ[COMMAND_ENV] = command
    out, err = capsys.readouterr()
    return rc, out, err


def one_error_line(rc: int, err: str) -> str:
    """A bad input's answer: status 2, no traceback, one line on stderr that starts with `error: `."""
    assert rc == 2, (rc, err[-2000:])
    assert "Traceback" not in err, err[-2000:]
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err[-2000:]
    return lines[0]


def error_line(capsys: pytest.CaptureFixture, *args: str) -> str:
    """`cli(capsys, *args)` for a bad input: its one `error: ` line (status 2 and nothing else on stderr)."""
    rc, _, err = cli(capsys, *args)
    return one_error_line(rc, err)


def run_cli(*args: str, timeout: float = 600, cwd: Path | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The installed console script's code path, in a fresh process (as a user runs it)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "offline_bench", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd or ROOT, env=env)


# ---------------------------------------------------------------- processes


def descendants(pid: int) -> list:
    """Every live process below `pid` (psutil.Process objects)."""
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def wait_gone(procs: list, timeout: float = 30.0) -> list[str]:
    """Wait until the given processes have exited; returns a description of any still alive."""
    import psutil

    _, alive = psutil.wait_procs(procs, timeout=timeout)
    out = []
    for p in alive:
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                out.append(f"{p.pid} {p.name()}")
        except psutil.NoSuchProcess:
            pass
    return out


def wait_for_engine(pid: int, timeout: float = 300.0) -> list:
    """Block until vLLM's worker process (the last the engine spawns) runs below `pid`; returns every
    descendant then."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        procs = descendants(pid)
        if any(_is_engine(p) for p in procs):
            return procs
        time.sleep(0.2)
    pytest.fail(f"no vLLM engine process appeared under pid {pid} within {timeout:g} s", pytrace=False)


def _is_engine(p) -> bool:  # noqa: ANN001
    try:
        return p.name() == "VLLM::Worker" or p.cmdline()[:1] == ["VLLM::Worker"]
    except Exception:  # noqa: BLE001 - it exited meanwhile
        return False
