"""Serving mode against a real `vllm serve` (CPU build) on preset:tiny-llama, started here on 127.0.0.1: serve-probe
and explain-gap in processes of their own, the other probes in-process (what needs no server: tests/unit)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.helpers import KV, MAX_MODEL_LEN, ROOT, cli

KEY = "sk-test-0123456789-secret"
# the seed's stress tests ask for 512 tokens after a chat prompt: the server's context is longer than the engines'
SERVER_MAX_MODEL_LEN = 1024
# Each engine here (the server, the ladder's engines) sizes its KV cache in bytes, like the session's engine.
AUX_KV = KV


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    with open(log, "w") as f:
        # flags serve-preset does not know go to `vllm serve` as given: here a second name, as the seed served
        proc = subprocess.Popen([sys.executable, "-m", "offline_bench", "serve-preset", "tiny-llama", "--port",
                                 str(port), "--max-model-len", str(SERVER_MAX_MODEL_LEN), "--api-key", KEY,
                                 "--kv-cache-memory-bytes", AUX_KV, "--served-model-name", "preset:tiny-llama",
                                 "gpt-4o"],
                                stdout=f, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    import httpx

    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"server exited: {log.read_text()[-3000:]}")
            try:
                headers = {"Authorization": f"Bearer {KEY}"}
                if httpx.get(f"{url}/v1/models", headers=headers, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        else:
            pytest.fail(f"server did not come up in 300 s: {log.read_text()[-2000:]}")
        yield url
    finally:  # never leave a server behind, whatever happened
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _probe(url, tmp_path, *extra, key=KEY):
    env_key = {"OPENAI_API_KEY": key} if key else {}
    env = {**os.environ, **env_key}
    return subprocess.run([sys.executable, "-m", "offline_bench", "serve-probe", "--base-url", url, *PROBE, *extra],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)


PROBE = ["--served-model-name", "preset:tiny-llama", "--tokenizer", "preset:tiny-llama", "--num-prompts", "8",
         "--input-len", "32", "--output-len", "16", "--warmup", "1"]


def _probe_here(capsys, monkeypatch, url, *extra, key=KEY):  # noqa: ANN001, ANN202
    """`_probe` in this process: (status, stdout, stderr)."""
    monkeypatch.setenv("OPENAI_API_KEY", key)
    return cli(capsys, "serve-probe", "--base-url", url, *PROBE, *extra)


@pytest.fixture(scope="module")
def probed(server, tmp_path_factory):
    d = tmp_path_factory.mktemp("probe")
    p = _probe(server, d, "--concurrency", "1,4", "--output", str(d / "serving.json"), "--gpu-hour-cost", "2.49")
    assert p.returncode == 0, p.stderr[-3000:]
    return d, p


def test_probe_exact_tokens_and_latencies(probed):
    d, p = probed
    for level in (1, 4):
        r = json.loads((d / f"serving-c{level}.json").read_text())
        assert r["mode"] == "serving" and r["workload"]["concurrency"] == level
        assert r["endpoint"].endswith("/v1/completions")
        assert (r["workload"]["total_input_tokens"], r["workload"]["total_output_tokens"]) == (8 * 32, 8 * 16)
        assert all(q["output_tokens"] == 16 and q["input_tokens"] == 32 for q in r["requests"])
        lat = r["latency"]
        assert lat["ttft_ms"]["count"] == 8 and lat["tpot_ms"]["count"] == 8 and lat["itl_ms"]["count"] > 0
        for q in r["requests"]:
            assert 0 < q["ttft_ms"] <= q["e2e_ms"]
            assert sum(q["itl_ms"]) <= q["e2e_ms"] - q["ttft_ms"] + 1
        assert r["throughput"]["output_tokens_per_s"] > 0
        import vllm

        server = r["engine_args"]["server"]  # what the server says about itself (/version, /metrics)
        assert server["vllm_version"] == vllm.__version__ and server["enable_prefix_caching"] is True
        assert r["kv_cache"]["capacity_tokens"] == server["num_gpu_blocks"] * server["block_size"] > 0
        # a local server on the CPU build: energy unknown and why; the GPU-hour price counts the server's 1 device
        assert r["energy"]["status"] == "unknown" and r["energy"]["reason"].startswith("no GPU: this machine runs")
        usd, tps = r["cost"]["usd_per_million_output_tokens"], r["throughput"]["output_tokens_per_s"]
        assert r["cost"]["gpus"] == 1 and abs(usd - 2.49 / (tps * 3600) * 1e6) <= 1e-6 * usd


def test_key_never_written(probed):
    d, p = probed
    assert KEY not in p.stdout and KEY not in p.stderr
    for f in d.iterdir():
        assert KEY not in f.read_text()


def test_compare_with_offline_run(capsys, probed, engine, tmp_path):
    from offline_bench.core.config import EngineConfig, RunConfig, WorkloadConfig
    from offline_bench.measure.runner import run_benchmark

    d, _ = probed
    cfg = RunConfig(engine=EngineConfig(model="preset:tiny-llama", max_model_len=MAX_MODEL_LEN),
                    workload=WorkloadConfig(num_prompts=8, input_len=32, output_len=16, warmup=1), concurrency=4)
    off = tmp_path / "offline-c4.json"
    run_benchmark(cfg, engine=engine).save(off)
    rc, out, err = cli(capsys, "compare", str(off), str(d / "serving-c4.json"), "--baseline", str(off), "--format",
                       "md", "--plot", str(tmp_path / "cmp.png"))
    assert rc == 0, err
    assert "serving-c4 [serving, c=4] / baseline" in out and "output_tokens_per_s" in out
    row = next(line for line in out.splitlines() if line.startswith("| total_output_tokens"))
    assert "1.000x" in row  # exact token counts on both sides
    # the server reports its version, KV set-up and (/server_info) its scheduler limits, so those are checked:
    # `vllm serve` defaults to fewer sequences than the LLM class
    assert "warning: serving-c4 [serving, c=4] vs offline-c4 [offline, c=4]: max_num_seqs differs: 128 vs 256" \
        in out
    peak = next(line for line in out.splitlines() if line.startswith("| peak_kv_usage_pct"))
    assert "unknown" not in peak  # both sides: the server's from its /metrics
    assert "engine version" not in out and "prefix caching" not in out
    assert "workload differs" not in out  # same seeded token-id prompts
    assert (tmp_path / "cmp.png").read_bytes()[:4] == b"\x89PNG"
    _, csv_out, _ = cli(capsys, "compare", str(off), str(d / "serving-c4.json"), "--format", "csv")
    assert csv_out.splitlines()[0].startswith("metric,")


def test_wrong_key_one_line(capsys, monkeypatch, server):
    rc, _, err = _probe_here(capsys, monkeypatch, server, key="sk-wrong-key")
    assert rc == 2 and "refused the API key (HTTP 401)" in err
    assert err.count("\n") == 1 and "sk-wrong-key" not in err


def test_model_not_served_one_line(capsys, monkeypatch, server):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    rc, _, err = cli(capsys, "serve-probe", "--base-url", server, "--served-model-name", "other-model", "--prompts",
                     "prompts/seed.txt")
    assert rc == 2 and "'other-model' is not served" in err and "preset:tiny-llama" in err


def test_timeout_one_line(capsys, monkeypatch, server):
    rc, _, err = _probe_here(capsys, monkeypatch, server, "--timeout", "0.0001")
    assert rc == 2 and "--timeout" in err and err.count("\n") == 1


@pytest.mark.slow
def test_explain_gap_ladder(server, probed, tmp_path):
    # level 1 is probed live; level 4 reuses the saved serve-probe result (as when the server had to be stopped)
    d, _ = probed
    env = {**os.environ, "OPENAI_API_KEY": KEY}
    out = tmp_path / "gap.json"
    p = subprocess.run([sys.executable, "-m", "offline_bench", "explain-gap", "--base-url", server,
                        "--served-model-name", "preset:tiny-llama", "--model", "preset:tiny-llama",
                        "--max-model-len", str(MAX_MODEL_LEN), "--kv-cache-memory-bytes", AUX_KV,
                        "--concurrency", "1,4", "--num-prompts", "8", "--serving-result", str(d / "serving-c4.json"),
                        "--input-len", "32", "--output-len", "16", "--warmup", "1", "--output", str(out)],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert [r["concurrency"] for r in doc["reports"]] == [1, 4]
    saved = json.loads((d / "serving-c4.json").read_text())
    for rep in doc["reports"]:
        steps = rep["steps"]
        # on the CPU build `vllm serve` defaults to half the LLM class's batched tokens and sequences
        assert len(steps) == 7 and steps[0]["step"].startswith("offline") and steps[-1]["step"].startswith("serving")
        assert "scheduler defaults of `vllm serve`" in steps[4]["step"] and "max_num_batched_tokens" in steps[4]["step"]
        assert steps[5]["step"].startswith(f"+ {rep['concurrency']} requests in flight")
        if rep["gap_tokens_per_s"] > 0:  # the shares account for the whole gap
            assert sum(s["share_of_gap"] for s in steps[1:]) == pytest.approx(1.0)
    assert doc["reports"][1]["steps"][-1]["output_tokens_per_s"] == saved["throughput"]["output_tokens_per_s"]
    runs4 = doc["runs"]["4"]
    assert runs4[4]["result"]["engine_args"]["resolved"]["max_num_seqs"] < runs4[3]["result"]["engine_args"][
        "resolved"]["max_num_seqs"]
    assert runs4[5]["result"]["workload"]["concurrency"] == 4 and runs4[0]["result"]["workload"]["num_prompts"] == 8
    assert "share of gap" in p.stdout and KEY not in p.stdout + p.stderr + out.read_text()


def test_probe_follows_the_offline_arrival_schedule(capsys, monkeypatch, server, tmp_path):
    """--request-rate: the same seeded schedule as `run`; nothing is sent early; goodput from the SLOs."""
    from offline_bench.results.run import RunResult
    from offline_bench.workloads.arrivals import arrival_offsets

    out = tmp_path / "rate.json"
    rc, _, err = _probe_here(capsys, monkeypatch, server, "--concurrency", "8", "--request-rate", "20", "--goodput",
                             "ttft:600000", "--output", str(out))
    assert rc == 0, err[-3000:]
    r = RunResult.load(out)
    assert r.workload.request_rate == 20.0 and r.goodput_slo_ms == {"ttft_ms": 600000.0}
    late = r.latency.arrival_lateness_ms
    assert late is not None and late.count == 8 and late.min >= 0
    assert r.throughput.duration_s >= arrival_offsets(8, 20.0, 1.0, 0)[-1]
    assert r.throughput.good_requests_pct == 100.0


def test_probe_samples_the_servers_own_state(probed):
    """/metrics sampled during the timed pass fills the timeline and kv_cache fields an offline run fills;
    /server_info (dev mode, on for a loopback serve-preset) gives the scheduler limits."""
    from offline_bench.results.run import RunResult

    d, _ = probed
    for level in (1, 4):
        r = RunResult.load(d / f"serving-c{level}.json")
        # a sample at least every 250 ms and one just after the pass (these passes last about a second)
        assert len(r.timeline) >= 1 and all(0 <= p.t_s <= r.throughput.duration_s + 1 for p in r.timeline)
        assert max(p.running for p in r.timeline) <= level  # never more in flight than the client sent
        kv = r.kv_cache
        assert kv.peak_usage_pct is not None and 0 <= kv.peak_usage_pct <= 100
        assert kv.preemptions == 0  # 8 requests of 48 tokens in a 64 MiB pool
        # prefix caching is on in the server: each prompt's 32 tokens are looked up once (warm-up excluded)
        assert kv.prefix_cache_queries == 8 * 32 and 0 <= kv.prefix_cache_hits <= kv.prefix_cache_queries
        resolved = r.engine_args["resolved"]
        assert resolved["max_num_seqs"] == 128 and resolved["max_model_len"] == SERVER_MAX_MODEL_LEN
        assert resolved["max_num_batched_tokens"] > 0
        assert any("GET /metrics" in n for n in r.notes)


def test_scenarios_chat_10_and_chat_1(capsys, monkeypatch, server, tmp_path):
    """The chat stress tests by name (old names accepted, new names recorded), against the name the original test
    served (gpt-4o, passed through serve-preset)."""
    from offline_bench.results.run import RunResult
    from offline_bench.workloads.scenarios import SEED_PROMPTS

    assert list(SEED_PROMPTS) == (ROOT / "prompts" / "seed.txt").read_text(encoding="utf-8").splitlines()
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    for name, given, streams, temperature in (("chat-10", "chat-10", 10, 0.8), ("chat-1", "seed-single", 1, 0.7)):
        out = tmp_path / f"{name}.json"
        rc, stdout, err = cli(capsys, "serve-probe", "--base-url", server, "--served-model-name", "gpt-4o",
                              "--scenario", given, "--warmup", "0", "--output", str(out))
        assert rc == 0, err[-3000:]
        r = RunResult.load(out)
        assert r.endpoint.endswith("/v1/chat/completions") and r.model == "gpt-4o"
        assert r.workload.source == f"scenario:{name}" and r.workload.concurrency == streams
        assert r.workload.temperature == temperature and r.workload.output_len == 512
        assert len(r.requests) == streams and len({q.input_tokens for q in r.requests}) == 1
        assert all(1 <= q.output_tokens <= 512 for q in r.requests)
        # the seed's table: one row per stream and one for all, exact token totals
        assert f"scenario {name}:" in stdout
        total_row = next(line for line in stdout.splitlines() if line.split()[:1] == ["all"])
        total = sum(q.input_tokens + q.output_tokens for q in r.requests)
        assert f"{total:,}" in total_row.split()
        assert KEY not in stdout + err + out.read_text()


def test_probe_split_over_client_processes(server, tmp_path):
    """--client-processes 2: two processes share the seeded schedule (same start); every request comes back in
    order, with the server's exact counts; ShareGPT conversations sized by the client's tokenizer."""
    from offline_bench.results.run import RunResult

    out = tmp_path / "split.json"
    p = subprocess.run([sys.executable, "-m", "offline_bench", "serve-probe", "--base-url", server,
                        "--served-model-name", "preset:tiny-llama", "--tokenizer", "preset:tiny-llama",
                        "--dataset", "sharegpt", "prompts/sharegpt-mini.json", "--num-prompts", "10",
                        "--ignore-eos", "--warmup", "1", "--request-rate", "20", "--concurrency", "10",
                        "--client-processes", "2", "--output", str(out)],
                       capture_output=True, text=True, cwd=ROOT, env={**os.environ, "OPENAI_API_KEY": KEY},
                       timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    r = RunResult.load(out)
    assert len(r.requests) == 10 and r.workload.dataset == "sharegpt"
    assert any("2 client process(es)" in n for n in r.notes)
    assert r.latency.arrival_lateness_ms.count == 10 and r.latency.arrival_lateness_ms.min >= 0
    # request i is conversation i (cycled): its reply's length, exactly, whichever process sent it
    from offline_bench.core.config import WorkloadConfig
    from offline_bench.serving.probe import ProbeConfig, client_workload

    cfg = ProbeConfig(server, "preset:tiny-llama", workload=WorkloadConfig(
        prompts_file=r.workload.source, dataset="sharegpt", num_prompts=10, warmup=0))
    _, timed = client_workload(cfg, "preset:tiny-llama")
    assert [q.output_tokens for q in r.requests] == [t.output_len for t in timed]
