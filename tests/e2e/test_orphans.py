"""No orphan engine: `kill -9` of any command that starts an engine -- the command's pid alone, which nothing in it
can catch -- leaves none of the processes it started alive 10 s later (vLLM's engine core and workers, `vllm
serve`'s engine, a sweep's point, the watchdogs themselves). Each command is killed as soon as its engine core
exists: mid-start, the moment its processes are newest and the watchdog may not have seen them yet. The
watchdog's two ways of finding them, its look at the process tree and the orphans born after its last look, are
tested on a process without an engine too (seconds), with the shared memory a killed process leaks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.helpers import KV_ARGS, MAX_MODEL_LEN, ROOT, descendants

DEADLINE_S = 10.0
ENGINE_CORE = "VLLM::EngineCore"
SERVING_RESULT = "tests/fixtures/results/run-serving.json.gz"  # seed.txt, 20 prompts, 512 tokens, concurrency 10
# A process that starts what an engine command does, in the ways the watchdog must find: a child in a session of its
# own (found by the watchdog's look at the tree), then -- right before the kill -- a forked child of its own group
# with a child of its own (born after the last look: found where the kernel re-parented it), and shared memory
# (multiprocessing's resource tracker, spared by the watchdog, unlinks it once its users are gone).
STARTER = """
import os, subprocess, time
from multiprocessing import shared_memory
from offline_bench.core.procs import guard_descendants

guard_descendants()
shm = shared_memory.SharedMemory(create=True, size=1 << 16)
subprocess.Popen(["sleep", "300"], start_new_session=True)
time.sleep(3)  # the watchdog's look (each second) has seen that child
if os.fork() == 0:
    subprocess.Popen(["sleep", "300"])
    time.sleep(300)
    os._exit(0)
print(shm.name, flush=True)
time.sleep(300)
"""
# A sweep's way: its point in a child of a group of its own (core.procs.spawn: the group's watchdog), the point with
# shared memory and a forked child.
SPAWNER = """
import sys, time
from offline_bench.core.procs import spawn

point = spawn([sys.executable, "-c", sys.argv[1]], stderr=None)
print(point.stdout.readline().strip(), flush=True)
time.sleep(300)
"""
POINT = """
import os, time
from multiprocessing import shared_memory

shm = shared_memory.SharedMemory(create=True, size=1 << 16)
if os.fork() == 0:
    time.sleep(300)
    os._exit(0)
print(shm.name, flush=True)
time.sleep(300)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _command(name: str, tmp: Path) -> list[str]:
    engine = ["--max-model-len", str(MAX_MODEL_LEN), *KV_ARGS]
    return {
        "run": ["run", *engine, "--num-prompts", "8", "--output", str(tmp / "r.json")],
        "phases": ["phases", *engine, "--batch-sizes", "1", "--input-len", "32", "--output-len", "8",
                   "--output", str(tmp / "p.json")],
        # the saved serving result stands in for a server: the offline steps start engines in this process
        "explain-gap": ["explain-gap", "--serving-result", SERVING_RESULT, "--concurrency", "10", "--prompts",
                        "prompts/seed.txt", "--num-prompts", "20", "--output-len", "512", "--model",
                        "preset:tiny-llama", "--max-model-len", "1024", *KV_ARGS, "--output", str(tmp / "g.json")],
        # the point runs in a child of the sweep (a group of its own, with the sweep's watchdog)
        "sweep": ["sweep", "--output-dir", str(tmp / "sw"), *engine, "--num-prompts", "2"],
        # the command's pid becomes `vllm serve`, whose engine core is its child
        "serve-preset": ["serve-preset", "tiny-llama", "--port", str(_free_port()), *engine],
    }[name]


def _is_engine_core(p: psutil.Process) -> bool:
    try:
        return p.name() == ENGINE_CORE or p.cmdline()[:1] == [ENGINE_CORE]
    except psutil.Error:
        return False


def _wait_for_engine_core(proc: subprocess.Popen, err_path: Path) -> list[psutil.Process]:
    """Every process below `proc` once one of them is an engine core (polled every 50 ms)."""
    deadline = time.time() + 300
    while True:
        below = descendants(proc.pid)
        if any(_is_engine_core(p) for p in below):
            return below
        assert proc.poll() is None, f"the command ended before its engine started: {err_path.read_text()[-2000:]}"
        assert time.time() < deadline, f"no {ENGINE_CORE} process within 300 s"
        time.sleep(0.05)


def _wait_dead(procs: list[psutil.Process], timeout: float) -> tuple[list[str], float]:
    """Wait until every process is gone or a zombie (dead, not yet reaped by its new parent): (those still alive,
    seconds waited)."""
    t0 = time.time()
    while True:
        alive = []
        for p in procs:
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(f"{p.pid} {p.name()}")
            except psutil.Error:
                pass
        if not alive or time.time() - t0 > timeout:
            return alive, time.time() - t0
        time.sleep(0.05)


def _kill_all(proc: subprocess.Popen, below: list[psutil.Process]) -> None:
    """After a failure: nothing this test started may outlive it."""
    for p in below:
        try:
            p.kill()
        except psutil.Error:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


@pytest.mark.engine
@pytest.mark.parametrize("command", ["run", "phases", "explain-gap", "sweep", "serve-preset"])
def test_kill_9_of_the_command_leaves_no_process_behind(tmp_path, command):
    err_path = tmp_path / "stderr.txt"
    below: list[psutil.Process] = []
    with open(err_path, "w") as err:
        # a session of its own, as a shell job has; only its pid is killed below, not the group
        proc = subprocess.Popen([sys.executable, "-m", "offline_bench", *_command(command, tmp_path)], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    try:
        below = _wait_for_engine_core(proc, err_path)
        os.kill(proc.pid, signal.SIGKILL)
        left, took = _wait_dead(below, DEADLINE_S)
        print(f"{command}: {len(below)} processes below the command, all dead {took:.2f} s after kill -9")
        assert left == [], f"{command}: alive {DEADLINE_S:g} s after kill -9 of the command: {left}"
    finally:
        _kill_all(proc, below)


def _kill_9_frees_all(args: list[str], processes: int) -> None:
    """Start `python -c ARGS` (it prints its shared memory's name), wait until `processes` run below it, kill -9 it:
    every one of them is dead within DEADLINE_S, and its shared memory gone from /dev/shm."""
    proc = subprocess.Popen([sys.executable, "-c", *args], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # DEVNULL: the tracker's clean-up note
    below: list[psutil.Process] = []
    shm = Path("/dev/shm") / proc.stdout.readline().strip()
    try:
        deadline = time.time() + 10
        while len(below := descendants(proc.pid)) < processes and time.time() < deadline:
            time.sleep(0.01)
        assert len(below) == processes, below
        os.kill(proc.pid, signal.SIGKILL)
        left, _ = _wait_dead(below, DEADLINE_S)
        assert left == [], f"alive {DEADLINE_S:g} s after kill -9: {left}"
        assert not shm.exists(), "the shared memory of the killed process was left in /dev/shm"
    finally:
        _kill_all(proc, below)
        proc.stdout.close()
        if shm.name.startswith("psm_"):
            shm.unlink(missing_ok=True)


def test_kill_9_finds_what_the_watchdog_saw_and_what_was_born_after():
    # the watchdog, the resource tracker, the sleep in its own session, the forked child and its sleep
    _kill_9_frees_all([STARTER], processes=5)


def test_kill_9_of_a_sweep_frees_its_point_and_the_point_shared_memory():
    # the point, its group's watchdog, the point's resource tracker and its forked child
    _kill_9_frees_all([SPAWNER, POINT], processes=4)
