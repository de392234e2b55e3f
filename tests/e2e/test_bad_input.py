"""An interrupt, as a user sends it to `offline-bench run` in a terminal or as `timeout` sends it: exit 130, the
log kept, no engine left behind (every other bad input: tests/unit/test_bad_input.py)."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from tests.helpers import KV_ARGS, ROOT, wait_for_engine, wait_gone


def _as_from_a_terminal() -> None:
    """A job started in the background of a shell (CI's, say) inherits SIGINT ignored; a terminal's does not."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
@pytest.mark.engine
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupt_exits_130_keeps_the_log_and_leaves_no_engine(tmp_path, sig):
    """Ctrl-C, or SIGTERM as `timeout` and schedulers send it: the engine is shut down and --save-log holds the
    log so far (a hung start can be read afterwards)."""
    log = tmp_path / "engine.log"
    proc = subprocess.Popen([sys.executable, "-m", "offline_bench", "run", *KV_ARGS, "--max-model-len", "512",
                             "--num-prompts", "2000", "--input-len", "64", "--output-len", "64",
                             "--output", str(tmp_path / "r.json"), "--save-log", str(log)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_as_from_a_terminal)
    engine = wait_for_engine(proc.pid)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert err.strip().splitlines()[-1] == ("interrupted (results already written are kept; a sweep resumes "
                                            "where it stopped)")
    assert "Traceback" not in err
    assert wait_gone(engine) == [], "engine processes outlived the interrupted run"
    assert "INFO" in log.read_text()  # vLLM's own lines, up to the interrupt
