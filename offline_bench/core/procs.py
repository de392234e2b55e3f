"""Child processes that never outlive the command that started them (sweep points, data-parallel replicas).

Each child runs in a process group of its own, so it and every engine process it spawns (vLLM's EngineCore and
workers) can be killed together. A child gets SIGKILL if its parent dies (PR_SET_PDEATHSIG), but that signal
does not reach the engine processes the child spawned: they would be re-parented to PID 1 and keep their memory.
So every child also gets a small watchdog process that kills the child's whole group as soon as the parent is
gone, however it died (kill -9 included), and exits by itself once the group is gone.

Children report a usage error as one `error: ...` line on stderr and exit status 2; `child_error` reads it back.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from typing import Any

import psutil

CHILD_ERROR_STATUS = 2
_POLL_S = 0.2


def raise_interrupt(_signum: int, _frame: object) -> None:
    """A SIGTERM handler: `timeout` or a scheduler's limit unwinds like Ctrl-C, so engines are shut down."""
    raise KeyboardInterrupt


def kill_descendants() -> None:
    """SIGKILL every process below this one (an engine core and its workers mid-start): what waits on them then
    sees them gone instead of waiting for a handshake that cannot come."""
    for child in psutil.Process().children(recursive=True):
        try:
            child.kill()
        except psutil.Error:  # exited meanwhile
            pass


def die_with_parent() -> None:
    """preexec_fn (Linux): SIGKILL this process when the process that spawned it dies."""
    try:

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def spawn(cmd: list[str], env: dict[str, str] | None = None, **popen: Any) -> subprocess.Popen:
    """Start `cmd` as the leader of a new process group, guarded by a watchdog; pipes for stdin/out/err."""
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **popen}
    proc = subprocess.Popen(cmd, text=True, env=env, start_new_session=True, preexec_fn=die_with_parent, **pipes)
    proc.watchdog = subprocess.Popen(  # type: ignore[attr-defined]
        [sys.executable, "-m", "offline_bench.core.procs", "--guard", str(os.getpid()), str(proc.pid)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    return proc


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the child's whole group (its engine processes too), reap it, and retire its watchdog."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
    watchdog = getattr(proc, "watchdog", None)
    if watchdog is not None and watchdog.poll() is None:
        watchdog.kill()
        watchdog.wait()


def child_error(stderr: str, returncode: int | None) -> str:
    """The child's `error: ...` line if it gave one, else its last line and exit status."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    errs = [line for line in lines if line.startswith("error: ")]
    if errs:
        return errs[-1][len("error: "):]
    return f"{lines[-1] if lines else 'no output'} (exit status {returncode})"


def fail_child(message: str) -> None:
    """Child side of the protocol: one line, status 2."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(CHILD_ERROR_STATUS)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _guard(parent: int, pgid: int) -> None:
    """Watchdog: once `parent` is gone, SIGKILL group `pgid`; exit when the group is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the terminal's Ctrl-C is for the parent, which cleans up
    while _group_alive(pgid):
        if os.getppid() != parent:  # re-parented: the command that started the child has died
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return
        time.sleep(_POLL_S)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--guard":
        _guard(int(sys.argv[2]), int(sys.argv[3]))
    else:
        print("usage: python -m offline_bench.core.procs --guard PARENT_PID PGID", file=sys.stderr)
        sys.exit(2)
