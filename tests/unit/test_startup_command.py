"""`offline-bench startup`: H100 logs, several engines, and logs that are not usable (the log of the CPU engine:
tests/engine)."""

import io
import json
import re
import sys

import pytest

from offline_bench.core.errors import BenchError
from offline_bench.report.formats import render
from offline_bench.results.startup import explain_rows, parse_engines, parse_startup, read_log
from tests.helpers import FIXTURES, cli

H100_LOG = FIXTURES / "h100-vllm0.26-llama8b-startup.log"


def test_budget_adds_up_to_gpu_total():
    facts = parse_startup(H100_LOG.read_text())
    rows, budget = explain_rows(facts)
    assert "GPU total 79.18 GiB" in budget and "left unused 6.95 (derived)" in budget
    # the parts read from the log plus what is left unused make up the GPU's total
    parts = [facts[k] for k in ("weights_gib", "peak_activation_gib", "cuda_graph_gib", "kv_cache_gib",
                                "non_torch_gib")]
    unused = float(re.search(r"left unused ([\d.]+)", budget).group(1))
    assert sum(parts) + unused == pytest.approx(facts["gpu_total_gib"], abs=0.01)
    sources = {r[0]: r[3] for r in rows}
    assert sources["kv_cache_gib"] == "read" and sources["weights_gib"] == "read"
    assert all(r[4] for r in rows)  # every fact has its sentence


def test_derived_values_are_marked():
    log = "(EngineCore pid=1) INFO [x] GPU KV cache size: 100,000 tokens\n" \
          "(EngineCore pid=1) INFO [x] Initializing a V1 LLM engine (v0.26.0) with config: model='m', " \
          "dtype=torch.bfloat16, max_seq_len=2000, tensor_parallel_size=1\n"
    rows, budget = explain_rows(parse_startup(log))
    by = {r[0]: r for r in rows}
    assert by["max_concurrency"][1] == "50.0" and by["max_concurrency"][3] == "derived"
    assert by["weights_gib"][3] == "unknown" and "GPU total unknown" in budget


def test_several_engines_each_get_their_line_set():
    lines = H100_LOG.read_text().splitlines()
    dp0 = [line.replace("(EngineCore pid=643)", "(EngineCore_DP0 pid=643)") for line in lines]
    dp1 = [line.replace("(EngineCore pid=643)", "(EngineCore_DP1 pid=644)").replace("444,528 tokens",
                                                                                      "440,000 tokens")
           for line in lines if "EngineCore" in line]
    engines = parse_engines("\n".join(dp0 + dp1))
    assert [e["dp_rank"] for e in engines] == [0, 1]
    assert [e["kv_cache_tokens"] for e in engines] == [444_528, 440_000]
    out = render("startup", "json", "\n".join(dp0 + dp1))
    assert [e["kv_cache_tokens"] for e in json.loads(out)["engines"]] == [444_528, 440_000]


def test_truncated_log_says_so():
    text = "\n".join(H100_LOG.read_text().splitlines()[:12])
    out = render("startup", "table", text)
    assert "init_engine_s" in out and "truncated" in out


@pytest.mark.parametrize("content,fragment", [
    (b"", "is empty"),
    (b"GET / HTTP/1.1 200\nhello world\n", "found no vLLM start-up lines"),
    (bytes(range(256)) * 40, "not a text log"),
])
def test_unusable_logs_are_refused(tmp_path, content, fragment):
    f = tmp_path / "x.log"
    f.write_bytes(content)
    with pytest.raises(BenchError, match=fragment):
        read_log(str(f))


def test_cli_reads_stdin_and_formats(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(H100_LOG.read_bytes()), encoding="utf-8"))
    rc, out, _ = cli(capsys, "startup", "-", "--format", "json")
    assert rc == 0
    facts = json.loads(out)
    assert facts["kv_cache_tokens"] == 444_528 and facts["derived"] == []
    rc, out, _ = cli(capsys, "startup", str(H100_LOG), "--format", "md")
    assert rc == 0 and "| kv_cache_gib" in out and "memory budget" in out
    rc, _, err = cli(capsys, "startup", str(tmp_path / "none.log"))
    assert rc == 2 and err.startswith("error: log file")


@pytest.mark.parametrize("name, facts", [
    # a `vllm serve` log (APIServer/EngineCore prefixes): 8,192 batched tokens leave more KV than the LLM class
    ("h100-vllm0.26-llama8b-serve.log", {"kv_cache_tokens": 449_968, "kv_cache_gib": 54.93, "max_model_len": 4096,
                                         "peak_activation_gib": 1.1, "tensor_parallel_size": 1}),
    # TP=2 on two H200s: weights per GPU halve, the KV figure is the group's
    ("h200x2-vllm0.26-llama8b-tp2.log", {"tensor_parallel_size": 2, "kv_cache_tokens": 1_919_536, "weights_gib": 7.54,
                                         "gpu_total_gib": 139.8}),
])
def test_gpu_logs_of_other_launchers(name, facts):
    got = parse_startup((FIXTURES / name).read_text())
    assert {k: got.get(k) for k in facts} == facts
