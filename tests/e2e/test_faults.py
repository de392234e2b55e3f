"""A fault after the up-front checks loses no measurement, with a real engine in a process of its own: the
folder `run --output` and `--save-log` write into is replaced by a file while the engine runs (as a folder
removed or a mount gone would), so both writes fail; the results are printed all the same, each file's content
is in the temp directory its error line names, and the exit status is 1 (the simulated disk-full cases, every
command: tests/unit/test_faults.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from offline_bench.results.run import RunResult
from tests.helpers import KV_ARGS, ROOT, wait_for_engine

LINE = re.compile(r"error: cannot write (\S+) \(([^)]+)\): saved to (\S+) instead")


@pytest.mark.engine
def test_run_whose_output_folder_goes_away_prints_and_keeps_its_results(tmp_path):
    spare = tmp_path / "tmp"
    spare.mkdir()
    sub = tmp_path / "out" / "sub"  # does not exist yet: the up-front check probes tmp_path/out
    sub.parent.mkdir()
    out, log = sub / "r.json", sub / "engine.log"
    proc = subprocess.Popen([sys.executable, "-m", "offline_bench", "run", "--max-model-len", "512", *KV_ARGS,
                             "--num-prompts", "8", "--input-len", "32", "--output-len", "8", "--warmup", "1",
                             "--output", str(out), "--save-log", str(log)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(spare)})
    try:
        wait_for_engine(proc.pid)  # past the checks: the engine is starting
        sub.write_text("not a folder")  # write_atomic cannot make the folder now
        stdout, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, err[-3000:]
    assert "Traceback" not in err
    assert "output_tokens_per_s" in stdout and "KV cache" in stdout  # the results, printed
    lines = [m for m in map(LINE.fullmatch, err.splitlines()) if m]
    assert [m.group(1) for m in lines] == [str(out), str(log)], err[-3000:]
    assert {m.group(2) for m in lines} == {f"{sub} is a file, not a folder"}
    kept = RunResult.load(lines[0].group(3))
    assert kept.workload.total_output_tokens == 64 and kept.mode == "offline"
    assert "KV cache size" in Path(lines[1].group(3)).read_text()  # the engine's whole log
    assert {Path(m.group(3)).parent for m in lines} == {spare}
