"""Processes that never outlive the command that started them: sweep points, data-parallel replicas, and the
engine processes (vLLM's EngineCore and workers, `vllm serve`'s engine) of any process that starts an engine.

Each child runs in a process group of its own, so it and every engine process it spawns (vLLM's EngineCore and
workers) can be killed together. A child gets SIGKILL if its parent dies (PR_SET_PDEATHSIG), but that signal
does not reach the engine processes the child spawned: they would be re-parented to PID 1 and keep their memory.
So every child also gets a small watchdog process that kills the child's whole group as soon as the parent is
gone, however it died (kill -9 included), and exits by itself once the group is gone.

A process that starts an engine in-process (`run`, `phases`, `explain-gap`, a sweep point) or becomes `vllm serve`
(`serve-preset`) calls `guard_descendants()` first: a watchdog of its own (see `_guard_tree`) that SIGKILLs what
that process started once it is gone, however it died.

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
_LOOK_S = 1.0  # how often the tree watchdog lists the guarded process's descendants (a scan of /proc: ~2 ms)
_BORN_MARGIN_S = 0.5  # a child born this long before a look may still be missing from it (clock ticks, the scan)
_KILL_ROUNDS = 4
_TRACKER_GRACE_S = 5.0  # how long multiprocessing's resource tracker may take to clean up after the engine
_TREE_GUARDS: dict[int, subprocess.Popen] = {}  # pid of a guarded process -> its tree watchdog (one per process)


def raise_interrupt(_signum: int, _frame: object) -> None:
    """A SIGTERM handler: `timeout` or a scheduler's limit unwinds like Ctrl-C, so engines are shut down."""
    raise KeyboardInterrupt


def kill_descendants() -> None:
    """SIGKILL every process below this one (an engine core and its workers mid-start): what waits on them then
    sees them gone instead of waiting for a handshake that cannot come. Spared: this process's tree watchdog, and
    multiprocessing's resource tracker (it unlinks the engine's shared memory once the engine's processes are gone,
    then exits by itself; killed, it leaves vLLM's queues, 160 MiB each, in /dev/shm)."""
    watchdog = _TREE_GUARDS.get(os.getpid())
    for child in psutil.Process().children(recursive=True):
        if (watchdog is not None and child.pid == watchdog.pid) or _is_resource_tracker(child):
            continue
        try:
            child.kill()
        except psutil.Error:  # exited meanwhile
            pass


def guard_descendants() -> None:
    """Once per process, right before it starts an engine (or execs `vllm serve`): start a watchdog that SIGKILLs
    every process this one started, once this one is gone -- by kill -9 too, which nothing in it can catch. The
    watchdog sleeps (a look at the process tree each second), in a session of its own (a terminal's Ctrl-C is for
    this process, which shuts its engine down), and exits with this process."""
    me = os.getpid()
    running = _TREE_GUARDS.get(me)
    if running is not None and running.poll() is None:
        return
    _TREE_GUARDS[me] = subprocess.Popen(
        [sys.executable, "-m", "offline_bench.core.procs", "--guard-tree", str(me), str(os.getpgid(0)),
         repr(_boot_clock())],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


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
    """SIGKILL the child's whole group (its engine processes too), reap it, and retire its watchdog. The group's
    resource tracker is spared (see `_kill_group`): it unlinks the engine's shared memory, then exits by itself."""
    for _ in range(_KILL_ROUNDS):
        if not _kill_group(proc.pid):
            break
        time.sleep(_POLL_S / 4)
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


def _kill_group(pgid: int) -> bool:
    """SIGKILL every live process of group `pgid` but multiprocessing's resource tracker, which exits by itself
    once the processes sharing its pipe are gone, after it has unlinked the shared memory they leaked (vLLM's
    queues, 160 MiB each in /dev/shm; a kill of the whole group would leave them there). False if none was left."""
    killed = False
    for p in psutil.process_iter():
        try:
            if os.getpgid(p.pid) != pgid or p.status() == psutil.STATUS_ZOMBIE or _is_resource_tracker(p):
                continue
            p.kill()
            killed = True
        except (psutil.Error, OSError):  # exited meanwhile
            pass
    return killed


def _guard_group(parent: int, pgid: int) -> None:
    """Watchdog of a spawned child: once `parent` is gone, SIGKILL group `pgid` (its resource tracker for
    `_TRACKER_GRACE_S` spared); exit when the group is gone."""
    orphaned_at = None
    while _group_alive(pgid):
        if os.getppid() != parent:  # re-parented: the command that started the child has died
            orphaned_at = orphaned_at or time.monotonic()
            if time.monotonic() - orphaned_at > _TRACKER_GRACE_S:
                try:
                    os.killpg(pgid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                return
            _kill_group(pgid)
        time.sleep(_POLL_S if orphaned_at is None else _POLL_S / 4)


def _boot_clock() -> float:
    """Seconds since boot: the clock of a process's start time in /proc (exact to a clock tick, and unmoved by
    changes to the wall clock)."""
    return time.clock_gettime(time.CLOCK_BOOTTIME) if hasattr(time, "CLOCK_BOOTTIME") else time.monotonic()


def _started(pid: int) -> float:
    """When `pid` started, on `_boot_clock` (field 22 of /proc/PID/stat, in clock ticks)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return int(fields[19]) / os.sysconf("SC_CLK_TCK")


def _guard_tree(parent: int, pgid: int, since: float) -> None:
    """Watchdog of a process that starts engines (started by it, so its parent): each second, the descendants of
    `parent` (psutil remembers each one's start time, so a reused pid is never killed); once `parent` is gone
    (this process is re-parented), SIGKILL those still alive and everything below them, then exit.

    A child `parent` started after the last look is re-parented too, to the same process as this watchdog (the
    kernel picks one for all the orphans of a process): it is found there by its process group (`pgid`, which
    vLLM's processes keep) and its start, after the last look. After a normal exit the engine is shut down
    already and nothing is left; whatever is (an orphan all the same) goes the same way."""
    me = os.getpid()
    known: list[psutil.Process] = []
    next_look = 0.0
    while os.getppid() == parent:
        if time.monotonic() >= next_look:
            looked_at = _boot_clock()
            tree = _descendants(parent, me)
            if os.getppid() != parent:
                break  # gone during the look, which may have missed some: keep the last whole one
            known, since, next_look = tree, looked_at, time.monotonic() + _LOOK_S
        time.sleep(_POLL_S)
    _kill_leftovers(known, pgid, since - _BORN_MARGIN_S)


def _descendants(pid: int, me: int) -> list[psutil.Process]:
    try:
        return [p for p in psutil.Process(pid).children(recursive=True) if p.pid != me]
    except psutil.Error:  # gone meanwhile
        return []


def _orphans(pgid: int, born_after: float, me: int) -> list[psutil.Process]:
    """Processes of group `pgid` re-parented where this watchdog was (its parent now), born after `born_after`."""
    try:
        children = psutil.Process(os.getppid()).children()
    except psutil.Error:
        return []
    found = []
    for p in children:
        try:
            if p.pid != me and os.getpgid(p.pid) == pgid and _started(p.pid) >= born_after:
                found.append(p)
        except (psutil.Error, OSError):  # exited meanwhile, or no /proc
            pass
    return found


def _leftovers(known: list[psutil.Process], pgid: int, born_after: float) -> dict[tuple[int, float], psutil.Process]:
    """What is still alive of `known`, the guarded process's orphans born after `born_after`, and everything below
    them, by (pid, start time)."""
    me = os.getpid()
    found = {}
    for p in [p for p in known if p.is_running()] + _orphans(pgid, born_after, me):
        for q in [p, *_descendants(p.pid, me)]:
            try:
                found.setdefault((q.pid, q.create_time()), q)
            except psutil.Error:  # exited meanwhile
                pass
    return found


def _is_resource_tracker(p: psutil.Process) -> bool:
    try:
        return "multiprocessing.resource_tracker" in " ".join(p.cmdline())
    except psutil.Error:
        return False


def _kill_leftovers(known: list[psutil.Process], pgid: int, born_after: float) -> None:
    """SIGKILL the leftovers, again (a few rounds) while a round finds a process the last ones did not (one forked
    meanwhile). Python's multiprocessing resource tracker is spared for a while: it exits by itself once the
    processes that share its pipe are gone, after it has unlinked the shared memory they leaked (vLLM's queues
    between its processes, 160 MiB each in /dev/shm)."""
    killed: set[tuple[int, float]] = set()
    spared: list[psutil.Process] = []
    for _ in range(_KILL_ROUNDS):
        found = _leftovers(known, pgid, born_after)
        fresh = [p for key, p in found.items() if key not in killed]
        if not fresh:
            break
        for p in fresh:
            if _is_resource_tracker(p):
                spared.append(p)
                continue
            try:
                p.kill()  # psutil refuses a pid reused since it listed the process
            except psutil.Error:
                pass
        killed.update(found)
        time.sleep(_POLL_S / 4)
    deadline = time.monotonic() + _TRACKER_GRACE_S
    while (spared := [p for p in spared if not _exited(p)]) and time.monotonic() < deadline:
        time.sleep(_POLL_S / 4)
    for p in spared:
        try:
            p.kill()
        except psutil.Error:
            pass


def _exited(p: psutil.Process) -> bool:
    """Gone, or a zombie (its new parent may take a while to reap it)."""
    try:
        return not p.is_running() or p.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


def _guard(argv: list[str]) -> None:
    """`python -m offline_bench.core.procs --guard PARENT PGID` (a spawned child's watchdog) or `--guard-tree PID
    PGID SINCE` (the watchdog of a process that starts engines)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the terminal's Ctrl-C is for the parent, which cleans up
    if len(argv) == 3 and argv[0] == "--guard":
        _guard_group(int(argv[1]), int(argv[2]))
    elif len(argv) == 4 and argv[0] == "--guard-tree":
        _guard_tree(int(argv[1]), int(argv[2]), float(argv[3]))
    else:
        print("usage: python -m offline_bench.core.procs --guard PARENT_PID PGID | --guard-tree PID PGID SINCE",
              file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    _guard(sys.argv[1:])
