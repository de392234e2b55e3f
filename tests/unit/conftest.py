"""The unit tier: no engine and no process. Commands run in-process through the app (`tests.helpers.cli`),
results come from committed files. A unit test that starts a process, or asks for an engine, a server, a Ray
cluster or a browser, fails at once: it belongs in tests/engine or tests/e2e."""

from __future__ import annotations

import multiprocessing.util
import os
import shutil
import subprocess

import pytest


def _refuse(what: str):  # noqa: ANN202
    def refuse(*args: object, **kwargs: object) -> None:
        pytest.fail(f"a unit test started a process ({what}): unit tests run everything in-process; a test that "
                    "needs a process belongs in tests/e2e", pytrace=True)

    return refuse


@pytest.fixture(scope="session", autouse=True)
def _warm_caches() -> None:
    """Caches the standard library and matplotlib fill by running a process once, filled before the guard: a fresh
    machine then gives the same result as one where an earlier test (or tier) filled them. matplotlib builds its
    font cache with `fc-list`; platform.platform() asks `uname -p` for the processor (environment capture)."""
    import platform

    import matplotlib.font_manager  # noqa: F401

    platform.platform()


@pytest.fixture(autouse=True)
def _no_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """subprocess (run, Popen, check_output...), multiprocessing (fork and spawn), os.system, os.fork, posix_spawn:
    each fails the test instead of starting a process. And no NVIDIA GPU, whatever the machine has: the package
    asks nvidia-smi (a process) only where it is on PATH, so every machine gives the unit tests the same answers."""
    monkeypatch.setattr(subprocess.Popen, "_execute_child", _refuse("subprocess"))
    monkeypatch.setattr(multiprocessing.util, "spawnv_passfds", _refuse("multiprocessing spawn"))
    for name in ("fork", "forkpty", "system", "posix_spawn", "posix_spawnp"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, _refuse(f"os.{name}"))
    which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda cmd, *a, **kw: None if cmd == "nvidia-smi" else which(cmd, *a, **kw))


@pytest.fixture(scope="session")
def vllm() -> None:
    """vLLM imported once, before the guard above: importing it runs processes of its own (the platform module's
    `file` and `uname`), and its log handler keeps the stdout it finds (here the session's, not one test's). Ask
    for it in a test whose code imports vLLM (the check of --engine-arg names, vLLM's config parser)."""
    import vllm.engine.arg_utils  # noqa: F401


def _no(what: str) -> None:
    pytest.fail(f"a unit test asked for {what}: it belongs in tests/engine (the session engine) or tests/e2e",
                pytrace=False)


@pytest.fixture
def engine() -> None:
    _no("the session engine")


@pytest.fixture
def server() -> None:
    _no("a vLLM server")


@pytest.fixture
def ray_head() -> None:
    _no("a Ray cluster")


@pytest.fixture
def browser() -> None:
    _no("a browser")
