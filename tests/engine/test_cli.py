"""`run` in-process on the session engine: several levels (concurrency, request rate) in one engine, a file
each (a `run` in a process of its own: tests/e2e/test_cli.py)."""

import json

from tests.helpers import KV_ARGS


def test_run_several_request_rates_in_one_engine(engine_cli, tmp_path):
    """--request-rate 20,inf: each rate in the same engine, on ShareGPT conversations, one file per rate."""
    out = tmp_path / "rate.json"
    rc, _, err = engine_cli("run", "--max-model-len", "512", *KV_ARGS, "--dataset", "sharegpt",
                            "prompts/sharegpt-mini.json", "--request-rate", "20,inf", "--concurrency", "16",
                            "--num-prompts", "12", "--warmup", "1", "--ignore-eos", "--goodput", "ttft:600000",
                            "--output", str(out), "--html", str(tmp_path / "r.html"), "--gpu-hour-cost", "2.49",
                            "--kwh-cost", "0.12")
    assert rc == 0, err[-2000:]
    paced, at_once = (json.loads((tmp_path / f"rate-r{r}.json").read_text()) for r in ("20", "inf"))
    # energy on the CPU build: unknown, with the reason; the GPU-hour price still gives $ per million tokens
    assert paced["energy"]["status"] == "unknown" and paced["energy"]["reason"].startswith("no GPU")
    cost, tps = at_once["cost"], at_once["throughput"]["output_tokens_per_s"]
    assert abs(cost["usd_per_million_output_tokens"] - 2.49 / (tps * 3600) * 1e6) < 1e-6 * cost[
        "usd_per_million_output_tokens"]
    assert cost["energy_usd_per_million_output_tokens"] is None and "energy unknown: no GPU" in cost["reason"]
    page = (tmp_path / "r.html").read_text()  # --html: the report of both levels (opened in a browser elsewhere)
    assert page.count('class="item"') == 2 and "rate-r20" in page and "rate-rinf" in page
    assert paced["workload"]["request_rate"] == 20.0 and at_once["workload"]["request_rate"] is None
    assert paced["workload"]["concurrency"] == at_once["workload"]["concurrency"] == 16
    assert paced["latency"]["arrival_lateness_ms"]["count"] == 12 and at_once["latency"]["arrival_lateness_ms"] is None
    assert paced["startup"] == at_once["startup"]  # one engine
    assert paced["environment"]["command"][:3] == ["offline-bench", "run", "--max-model-len"]  # what reruns it
    assert paced["throughput"]["good_requests_pct"] == 100.0
    # the same ShareGPT requests at both rates (reply lengths from the engine's tokenizer)
    assert [q["output_tokens"] for q in paced["requests"]] == [q["output_tokens"] for q in at_once["requests"]]


def test_run_several_concurrency_levels_in_one_engine(engine_cli, tmp_path):
    out = tmp_path / "offline.json"
    rc, stdout, err = engine_cli("run", "--max-model-len", "512", *KV_ARGS, "--prompts", "prompts/seed.txt",
                                 "--concurrency", "1,3", "--num-prompts", "2,6", "--output-len", "8", "--warmup", "1",
                                 "--output", str(out))
    assert rc == 0, err[-2000:]
    assert not out.exists()
    # one table per level on stdout (printed after the engine stopped: its log capture owns the streams)
    assert stdout.count("output_tokens_per_s") == 2 and err.count("result written to") == 2
    for level, n in ((1, 2), (3, 6)):
        r = json.loads((tmp_path / f"offline-c{level}.json").read_text())
        assert r["workload"]["concurrency"] == level and len(r["requests"]) == n
    one = json.loads((tmp_path / "offline-c1.json").read_text())
    three = json.loads((tmp_path / "offline-c3.json").read_text())
    assert one["startup"] == three["startup"]  # the same engine served both levels
