"""The CLI as users run it: a fresh process, one line per bad input, nothing half-written."""

import json
import re

import pytest

from offline_bench.core.errors import BenchError
from tests.conftest import KV_ARGS, run_cli


@pytest.mark.engine
def test_run_end_to_end_writes_json_and_table(tmp_path):
    out = tmp_path / "r.json"
    log = tmp_path / "engine.log"
    p = run_cli("run", "--max-model-len", "512", *KV_ARGS, "--num-prompts", "8",
                "--input-len", "32", "--output-len", "8",
                "--warmup", "1", "--output", str(out), "--save-log", str(log))
    assert p.returncode == 0, p.stderr[-2000:]
    data = json.loads(out.read_text())
    for key in ("schema_version", "tool_version", "created_at", "environment", "engine_args", "workload",
                "startup", "kv_cache", "memory", "throughput", "latency", "timeline", "requests"):
        assert key in data, key
    assert data["workload"]["total_output_tokens"] == 64
    assert "output_tokens_per_s" in p.stdout and "KV cache" in p.stdout
    assert "KV cache size" in log.read_text()


def test_presets_lists_both():
    p = run_cli("presets", "--format", "json")
    rows = {r["preset"]: r for r in json.loads(p.stdout)}
    assert rows["preset:llama-3.1-8b"]["params"] == 8_030_261_248
    assert rows["preset:llama-3.1-8b"]["kv_bytes_per_token"] == 131_072
    assert "preset:tiny-llama" in rows


def test_help_has_examples():
    for cmd in ("run", "presets"):
        p = run_cli(cmd, "--help")
        assert p.returncode == 0 and "Example:" in p.stdout


@pytest.mark.parametrize("args,fragment", [
    (["--model", "/no/such/dir"], "does not exist"),
    (["--model", "preset:nope"], "unknown preset"),
    (["--gpu-memory-utilization", "0"], "outside (0, 1]"),
    (["--gpu-memory-utilization", "1.5"], "outside (0, 1]"),
    (["--max-model-len", "4096"], "above the model's limit (2048"),
    (["--engine-arg", "no_such_arg=1"], "unknown --engine-arg 'no_such_arg'"),
    (["--engine-arg", "max-num-seq=4"], "did you mean 'max_num_seqs'"),
    (["--format", "xml"], "--format xml"),
])
def test_bad_input_one_line(tmp_path, args, fragment):
    out = tmp_path / "r.json"
    p = run_cli("run", *args, "--output", str(out), timeout=120)
    assert p.returncode == 2
    lines = [line for line in p.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], p.stderr
    assert "Traceback" not in p.stderr and not out.exists()


@pytest.mark.parametrize("name,content,fragment", [
    ("empty.txt", b"\n", "holds no prompts"),
    ("bad.jsonl", b"{oops\n", "not valid JSON"),
    ("latin1.txt", "caf\u00e9".encode("latin-1"), "not UTF-8"),
])
def test_bad_prompt_file_one_line(tmp_path, name, content, fragment):
    f = tmp_path / name
    f.write_bytes(content)
    p = run_cli("run", "--prompts", str(f), "--output", str(tmp_path / "r.json"), timeout=120)
    assert p.returncode == 2 and p.stderr.startswith("error: ") and fragment in p.stderr
    assert p.stderr.count("\n") == 1 and not (tmp_path / "r.json").exists()


@pytest.mark.engine
def test_kv_cache_too_small_one_line(tmp_path):
    p = run_cli("run", "--gpu-memory-utilization", "0.02", "--num-prompts", "2", "--output",
                str(tmp_path / "r.json"), timeout=300)
    assert p.returncode == 2, p.stderr[-2000:]
    assert p.stderr.startswith("error: not enough memory for the KV cache") and p.stderr.count("\n") == 1
    assert not (tmp_path / "r.json").exists()


def test_concurrency_levels_and_counts():
    from offline_bench.workloads.levels import Level, concurrency_levels, level_path

    assert concurrency_levels(None, None) == [Level(None, None, None)]
    assert concurrency_levels("1,10,64", "4,20,128") == [Level(1, 4), Level(10, 20), Level(64, 128)]
    assert concurrency_levels("1,10", "8") == [Level(1, 8), Level(10, 8)]
    # a rate list: one engine runs each rate; one concurrency (a cap) and one count apply at every rate
    rates = concurrency_levels("64", "200", "5,20,inf")
    assert rates == [Level(64, 200, 5.0), Level(64, 200, 20.0), Level(64, 200, None)]
    assert concurrency_levels("4,8", None, "10") == [Level(4, None, 10.0), Level(8, None, 10.0)]
    levels = concurrency_levels("1,10", None)
    assert level_path("out/offline.json", levels[1], levels) == "out/offline-c10.json"
    assert level_path("out/offline.json", levels[0], levels[:1]) == "out/offline.json"
    assert [level_path("r.json", lv, rates) for lv in rates] == ["r-r5.json", "r-r20.json", "r-rinf.json"]
    both = concurrency_levels("4,8", None, "10,20")
    assert level_path("r.json", both[1], both) == "r-c8-r20.json"
    for bad, counts, rate, msg in (("0,2", None, None, "positive integers"), ("a", None, None, "positive integers"),
                                   ("1,2", "1,2,3", None, "--num-prompts takes one value or one per --concurrency "
                                                          "level (2)"),
                                   ("1,2", None, "5,10,20", "--concurrency takes one value or one per "
                                                            "--request-rate (3)"),
                                   (None, None, "0", "--request-rate takes positive numbers"),
                                   (None, None, "fast", "--request-rate takes positive numbers")):
        with pytest.raises(BenchError, match=re.escape(msg)):
            concurrency_levels(bad, counts, rate)


@pytest.mark.engine
def test_run_several_request_rates_in_one_engine(tmp_path):
    """--request-rate 20,inf: each rate in the same engine, on ShareGPT conversations, one file per rate."""
    out = tmp_path / "rate.json"
    p = run_cli("run", "--max-model-len", "512", *KV_ARGS, "--dataset", "sharegpt", "prompts/sharegpt-mini.json",
                "--request-rate", "20,inf", "--concurrency", "16", "--num-prompts", "12", "--warmup", "1",
                "--ignore-eos", "--goodput", "ttft:600000", "--output", str(out), "--html", str(tmp_path / "r.html"))
    assert p.returncode == 0, p.stderr[-2000:]
    paced, at_once = (json.loads((tmp_path / f"rate-r{r}.json").read_text()) for r in ("20", "inf"))
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


@pytest.mark.engine
def test_run_several_concurrency_levels_in_one_engine(tmp_path):
    out = tmp_path / "offline.json"
    p = run_cli("run", "--max-model-len", "512", *KV_ARGS, "--prompts", "prompts/seed.txt",
                "--concurrency", "1,3", "--num-prompts", "2,6", "--output-len", "8", "--warmup", "1",
                "--output", str(out))
    assert p.returncode == 0, p.stderr[-2000:]
    assert not out.exists()
    # one table per level on stdout (printed after the engine stopped: its log capture owns the streams)
    assert p.stdout.count("output_tokens_per_s") == 2 and p.stderr.count("result written to") == 2
    for level, n in ((1, 2), (3, 6)):
        r = json.loads((tmp_path / f"offline-c{level}.json").read_text())
        assert r["workload"]["concurrency"] == level and len(r["requests"]) == n
    one = json.loads((tmp_path / "offline-c1.json").read_text())
    three = json.loads((tmp_path / "offline-c3.json").read_text())
    assert one["startup"] == three["startup"]  # the same engine served both levels
