"""Ctrl-C in a terminal sends SIGINT to the whole process group (vLLM's engine core and workers included), and
`timeout`/schedulers send SIGTERM: at any moment of the engine's start, `run` ends within 10 s with exit 130
(SIGTERM too: it unwinds like Ctrl-C) and leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from tests.helpers import KV_ARGS, ROOT, descendants, wait_gone

DEADLINE_S = 10.0
INTERRUPTED = "interrupted (results already written are kept; a sweep resumes where it stopped)"


def _own_group_as_from_a_terminal() -> None:
    os.setsid()  # a process group of its own, as a shell job has
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a background job of CI's shell inherits SIGINT ignored


def _named(pid: int, name: str) -> bool:
    def has(p: psutil.Process) -> bool:
        try:
            return p.name() == name or p.cmdline()[:1] == [name]
        except psutil.Error:
            return False

    return any(has(p) for p in descendants(pid))


def _wait_until(proc: subprocess.Popen, point: str) -> None:
    """Block until the start reaches `point`: 'import' (the CLI still importing), 'engine-core' (vLLM's engine
    core process exists), 'worker' (its worker exists: the model loads), 'worker+3s'."""
    if point == "import":
        time.sleep(0.5)
        return
    name = "VLLM::EngineCore" if point == "engine-core" else "VLLM::Worker"
    deadline = time.time() + 300
    while not _named(proc.pid, name):
        assert proc.poll() is None, f"the run ended before reaching {point}: {proc.communicate()[1][-2000:]}"
        assert time.time() < deadline, f"no {name} process within 300 s"
        time.sleep(0.05)
    if point == "worker+3s":
        time.sleep(3)


@pytest.mark.engine
@pytest.mark.parametrize(("point", "sig"), [("import", signal.SIGINT), ("engine-core", signal.SIGINT),
                                            ("worker", signal.SIGTERM), ("worker+3s", signal.SIGINT)])
def test_a_signal_to_the_group_during_the_start_ends_the_run_within_10_s(tmp_path, point, sig):
    proc = subprocess.Popen([sys.executable, "-m", "offline_bench", "run", *KV_ARGS, "--max-model-len", "512",
                             "--num-prompts", "2000", "--output", str(tmp_path / "r.json")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_own_group_as_from_a_terminal)
    try:
        _wait_until(proc, point)
        below = descendants(proc.pid)
        os.killpg(proc.pid, sig)
        t0 = time.time()
        _, err = proc.communicate(timeout=60)
        took = time.time() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert took <= DEADLINE_S, f"{point}: the run took {took:.1f} s to end after the signal"
    # while Python itself still imports, an interrupt can also end the interpreter by the signal itself (-2) after
    # the interrupted line was printed (seen 2 of 6 times on a fresh clone: the interpreter's own finalisation, not
    # our code); once the engine's start begins, the status is 130 every time
    allowed = (130, -signal.SIGINT) if point == "import" else (130,)
    assert proc.returncode in allowed, err[-2000:]
    assert err.strip().splitlines()[-1] == INTERRUPTED
    assert "Traceback" not in err
    assert wait_gone(below, timeout=10) == [], "processes outlived the interrupted run"
    assert not (tmp_path / "r.json").exists()
