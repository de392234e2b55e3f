"""Ray for real: a local Ray head on loopback (started here, stopped by its PID), `run` with vLLM's Ray executor
against it, and what `parallel.ray` records of a placement, read back from that cluster."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import KV_BYTES, MAX_MODEL_LEN, run_cli

ray = pytest.importorskip("ray", reason="Ray is part of the test extra: bash scripts/install.sh test")
RAY = Path(sys.executable).with_name("ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head():
    """`ray start --head --block` on a free loopback port with 2 CPUs; yields its address; stopped by PID (the
    process group: the head's GCS, raylet and workers go with it)."""
    # Ray 2.5x turns token auth on for a head that finds ~/.ray/auth_token (which any local `ray.init()` writes);
    # this loopback test cluster and every client of it (the tests, offline-bench, vLLM's engine core) run without
    saved_mode = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    port = _free_port()
    tmp = tempfile.mkdtemp(prefix="rb", dir="/tmp")  # short: Ray's socket paths must stay under ~107 characters
    head = subprocess.Popen([str(RAY), "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
                             "--port", str(port), "--num-cpus", "2", "--num-gpus", "0", "--include-dashboard=false",
                             "--disable-usage-stats", "--temp-dir", tmp], stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT, start_new_session=True)
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while subprocess.run([str(RAY), "status", "--address", address], capture_output=True).returncode != 0:
            assert head.poll() is None, "the Ray head exited at start"
            assert time.time() < deadline, "the Ray head did not come up in 120 s"
            time.sleep(1)
        yield address
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        shutil.rmtree(tmp, ignore_errors=True)
        if saved_mode is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = saved_mode


def test_ray_facts_read_a_placement_group_from_the_cluster(ray_head):
    from offline_bench.parallel import connect_ray, ray_facts, ray_groups

    assert connect_ray(ray_head) == ray_head
    try:
        before = ray_groups()
        pg = ray.util.placement_group([{"CPU": 1}, {"CPU": 1}], strategy="PACK")  # as vLLM places its workers
        ray.get(pg.ready(), timeout=60)
        facts = ray_facts(ray_head, before)
        # groups that existed before the engine started are not the engine's
        earlier = ray_facts(ray_head, before | ray_groups())
    finally:
        ray.shutdown()
    assert facts["address"] == ray_head and facts["nodes"] == 1
    [(node, resources)] = facts["node_resources"].items()  # keyed by the node's IP (Ray picks the interface)
    assert resources == {"CPU": 2.0}
    assert facts["placement_nodes"] == 1 and facts["placement"] == {node: {"CPU": 2.0}}
    assert facts["gpus_per_node"] == {node: 0.0}
    assert earlier["placement"] == {} and earlier["placement_nodes"] == 0


@pytest.mark.engine
def test_run_with_the_ray_executor_on_a_ray_cluster(ray_head, tmp_path):
    out = tmp_path / "ray.json"
    p = run_cli("run", "--model", "preset:tiny-llama", "--num-prompts", "4", "--input-len", "32", "--output-len", "8",
                "--max-model-len", str(MAX_MODEL_LEN), "--kv-cache-memory-bytes", str(KV_BYTES),
                "--tensor-parallel-size", "2", "--distributed-executor-backend", "ray", "--ray-address", ray_head,
                "--output", str(out), "--verbose")  # --verbose: the engine's log on stderr
    # vLLM's engine core joined this cluster ($RAY_ADDRESS, set by offline-bench), not a local one of its own
    assert f"Using address {ray_head} set in the environment variable RAY_ADDRESS" in p.stderr, p.stderr[-3000:]
    if p.returncode != 0 and "does not support ray" in p.stderr:
        # vLLM 0.32's CPU platform sets no Ray device key, so its Ray executor refuses to start; the user gets one
        # line naming the fix, and the GPU runs (docs/results/ray-2node.md) are the proof that the path works
        line = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")][-1]
        assert line == ("error: this vLLM build has no Ray executor (ValueError: current platform cpu does not "
                        "support ray.): use --distributed-executor-backend mp (the default) here; Ray runs vLLM's "
                        "workers on GPUs only")
        assert not out.exists()
        pytest.xfail(f"the CPU build cannot run vLLM's Ray executor: {line}")
    assert p.returncode == 0, p.stderr[-3000:]
    par = json.loads(out.read_text())["parallel"]
    assert par["executor_backend"] == "ray"
    assert par["ray"]["address"] == ray_head and par["ray"]["nodes"] == 1 and par["ray"]["placement_nodes"] == 1
