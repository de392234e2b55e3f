"""Nothing silently dropped: `import` refuses two runs that would share one file, and NaN / inf figures (which a
result would hold as null); `compare` warns on every condition that changes a figure (model, vLLM version, GPU
and layout, max_model_len, KV cache size and dtype, batch limits, prefix caching, CUDA graphs, workload, rate,
sampling, detokenization, goodput SLOs), and `scaling` on all but the layout it compares."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from offline_bench.analysis.compare import Labeled, mismatches
from offline_bench.results.run import RunResult, read_text
from tests.helpers import RESULTS, cli, error_line

BASE = RESULTS / "h100-run" / "run-1x128-512.json"  # 1 x H100, vLLM 0.26, llama-3.1-8b, TP=1, mml 4096
OFFLINE = RESULTS / "h100-offline-vs-serving" / "offline-c10.json"
SERVING = RESULTS / "h100-offline-vs-serving" / "serving-c10.json.gz"


# ---------------------------------------------------------------- import


def _import(capsys: pytest.CaptureFixture, tmp_path: Path, text: str, name: str = "figs.yaml") -> str:
    f = tmp_path / name
    f.write_text(text)
    line = error_line(capsys, "import", str(f), "--output-dir", str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()  # nothing written, not even the first run
    return line


def test_import_refuses_two_runs_of_one_concurrency(capsys, tmp_path):
    line = _import(capsys, tmp_path, "name: rep\nruns:\n  - {concurrency: 4, ttft_ms: 20, input_len: 128}\n"
                                     "  - {concurrency: 8, ttft_ms: 30}\n"
                                     "  - {concurrency: 4, ttft_ms: 90, input_len: 2048}\n")
    assert line == (f"error: {tmp_path / 'figs.yaml'}: runs[1] and runs[3] have the same concurrency (4), so each "
                    "would be written to rep-c4.json over the other: give each run its own concurrency, or put runs "
                    "of another workload in a file of their own (with its own name)")


def test_import_of_distinct_runs_writes_each(capsys, tmp_path):
    f = tmp_path / "figs.yaml"
    f.write_text("name: rep\nruns:\n  - {concurrency: 4, ttft_ms: 20}\n  - {ttft_ms: 25}\n  - {ttft_ms: 30}\n")
    rc, out, err = cli(capsys, "import", str(f), "--output-dir", str(tmp_path / "out"))
    assert rc == 0, err
    assert out.split() == [str(tmp_path / "out" / n) for n in ("rep-c4.json", "rep-2.json", "rep-3.json")]


@pytest.mark.parametrize(("figure", "shown"), [(".nan", "nan"), (".inf", "inf"), ("-.inf", "-inf")])
def test_import_refuses_nan_and_inf_hand_figures(capsys, tmp_path, figure, shown):
    line = _import(capsys, tmp_path, f"runs:\n  - {{concurrency: 1, ttft_ms: 20, output_tokens_per_s: {figure}}}\n")
    assert line == f"error: {tmp_path / 'figs.yaml'}: runs[1]: output_tokens_per_s must be a finite number, got {shown}"


def test_import_refuses_nan_in_json_hand_figures(capsys, tmp_path):
    line = _import(capsys, tmp_path, '{"runs": [{"concurrency": 2, "tpot_ms": NaN}]}', "figs.json")
    assert line.endswith("runs[1]: tpot_ms must be a finite number, got nan")


def _bench(**changes: object) -> str:
    doc = {"backend": "vllm", "model_id": "m", "duration": 2.0, "completed": 2, "total_input_tokens": 20,
           "total_output_tokens": 8, "request_throughput": 1.0, "output_throughput": 4.0,
           "total_token_throughput": 14.0, "max_concurrency": 2, "input_lens": [10, 10], "output_lens": [4, 4],
           "ttfts": [0.1, 0.2], "itls": [[0.01, 0.02, 0.03], [0.01, 0.01, 0.01]], "mean_ttft_ms": 150.0}
    return json.dumps({**doc, **changes})  # json writes NaN / Infinity, as Python's json module reads them


@pytest.mark.parametrize(("changes", "named"), [
    ({"output_throughput": float("nan")}, "output_throughput is nan"),
    ({"mean_ttft_ms": float("inf")}, "mean_ttft_ms is inf"),
    ({"ttfts": [0.1, float("nan")], "duration": float("nan")}, "duration is nan, not a figure (and 1 more)"),
    ({"itls": [[0.01, float("inf")], [0.01]]}, "itls[0] is inf"),
])
def test_import_refuses_nan_and_inf_in_a_vllm_bench_result(capsys, tmp_path, changes, named):
    line = _import(capsys, tmp_path, _bench(**changes), "bench.json")
    assert line.startswith(f"error: '{tmp_path / 'bench.json'}': {named}")
    assert line.endswith("nothing imported (did every request fail? `completed` says how many finished)")


# ---------------------------------------------------------------- compare


def _edit(path: Path, edit: Callable[[dict], None], where: Path) -> str:
    data = json.loads(read_text(path))
    edit(data)
    where.write_text(json.dumps(data))
    return str(where)


def _resolved(key: str, value: object) -> Callable[[dict], None]:
    return lambda d: d["engine_args"]["resolved"].__setitem__(key, value)


def _set(section: str, key: str, value: object) -> Callable[[dict], None]:
    return lambda d: d[section].__setitem__(key, value)


def _tp2(d: dict) -> None:
    d["engine_args"]["resolved"]["tensor_parallel_size"] = d["engine_args"]["tensor_parallel_size"] = 2


# (edit of the other run, the warning after "OTHER vs BASE: ")
CONDITIONS = [
    (lambda d: d.__setitem__("model", "preset:llama-3.1-70b"), "model differs: preset:llama-3.1-70b vs "
                                                               "preset:llama-3.1-8b"),
    (_set("environment", "vllm_version", "0.33.0"), "engine version differs: 0.33.0 vs 0.26.0"),
    (_set("environment", "gpu_name", "NVIDIA H200"), "GPU differs: NVIDIA H200 vs NVIDIA H100 80GB HBM3"),
    (_tp2, "parallel layout differs: TP=2 (2 GPUs) vs 1 GPU"),
    (lambda d: d.__setitem__("parallel", {"tensor_parallel_size": 2, "data_parallel_size": 2, "gpus_used": 4}),
     "parallel layout differs: DP=2 x TP=2 (4 GPUs) vs 1 GPU"),
    (_resolved("max_model_len", 8192), "max_model_len differs: 8192 vs 4096"),
    (_set("kv_cache", "capacity_tokens", 222_264), "KV cache size differs: 222,264 tokens vs 444,528 tokens"),
    (_resolved("kv_cache_dtype", "fp8"), "KV cache dtype differs: fp8 vs auto"),
    (_resolved("dtype", "float16"), "dtype differs: float16 vs bfloat16"),
    (_resolved("max_num_seqs", 256), "max_num_seqs differs: 256 vs 1024"),
    (_resolved("max_num_batched_tokens", 8192), "max_num_batched_tokens differs: 8192 vs 16384"),
    (_resolved("enable_prefix_caching", False), "prefix caching differs: False vs True"),
    (_resolved("enforce_eager", True), "CUDA graphs differs: off (enforce_eager) vs on"),
    (_set("workload", "source", "prompts/seed.txt"), "workload differs: ('prompts/seed.txt', 1, 128, 512, 0.0, 0) "
                                                     "vs ('synthetic', 1, 128, 512, 0.0, 0)"),
    (_set("workload", "num_prompts", 8), "workload differs: ('synthetic', 8, 128, 512, 0.0, 0) vs "
                                         "('synthetic', 1, 128, 512, 0.0, 0)"),
    (_set("workload", "input_len", 2048), "workload differs: ('synthetic', 1, 2048, 512, 0.0, 0) vs "
                                          "('synthetic', 1, 128, 512, 0.0, 0)"),
    (lambda d: d["workload"].update(prefix_len=256, num_prefixes=4), "shared prefixes differs: 4 x 256 tokens vs "
                                                                     "none"),
    (lambda d: d["workload"].update(request_rate=20.0, burstiness=1.0), "arrivals differs: 20 req/s, burstiness 1 "
                                                                        "vs all at once"),
    (_set("workload", "temperature", 0.7), "sampling differs: (0.7, 1.0, True) vs (1.0, 1.0, True)"),
    (_set("workload", "detokenize", False), "detokenization differs: False vs True"),
    (lambda d: d.__setitem__("goodput_slo_ms", {"ttft_ms": 500.0}), "goodput SLOs differs: ttft <= 500 ms vs none"),
]


@pytest.mark.parametrize(("edit", "warning"), CONDITIONS, ids=[w.split(" differs")[0] for _, w in CONDITIONS])
def test_compare_warns_on_every_condition_that_changes_a_figure(capsys, tmp_path, edit, warning):
    other = _edit(BASE, edit, tmp_path / "other.json")
    rc, out, err = cli(capsys, "compare", str(BASE), other, "--format", "md")
    assert rc == 0, err
    (line,) = [line for line in out.splitlines() if line.startswith("warning: ")]
    assert line.startswith("warning: other [offline") and line.endswith(f" vs run-1x128-512 [offline]: {warning}")


def test_compare_of_two_models_warns(capsys, tmp_path):
    """The case of the issue: runs of two models compared without a word."""
    other = _edit(BASE, lambda d: d.__setitem__("model", "Qwen/Qwen2.5-7B"), tmp_path / "qwen.json")
    rc, out, _ = cli(capsys, "compare", str(BASE), other)
    assert rc == 0 and "qwen [offline] vs run-1x128-512 [offline]: model differs: Qwen/Qwen2.5-7B vs " \
                       "preset:llama-3.1-8b" in out


def test_kv_cache_sizes_within_one_percent_are_the_same_setting(capsys, tmp_path):
    """An engine of one setting gets a few blocks more or less at each start (444,528 vs 444,928 tokens on the
    H100 runs): no warning; beyond 1% there is one."""
    base = RunResult.load(BASE)
    for tokens, warned in ((444_928, False), (449_000, False), (450_000, True)):
        other = base.model_copy(deep=True)
        other.kv_cache.capacity_tokens = tokens
        found = mismatches(Labeled("base", base), Labeled("other", other))
        assert found == ([f"KV cache size differs: {tokens:,} tokens vs 444,528 tokens"] if warned else [])


def test_the_same_run_warns_nothing(capsys):
    rc, out, _ = cli(capsys, "compare", str(BASE), str(BASE))
    assert rc == 0 and "warning" not in out


def test_offline_vs_serving_keeps_its_lines_and_adds_the_new_ones(capsys):
    """The committed H100 pair: the two unknowns it always warned about, word for word, the KV cache the server
    really had (1.2% more), and one line for the conditions a server does not report."""
    rc, out, _ = cli(capsys, "compare", str(OFFLINE), str(SERVING), "--format", "md")
    s, o = "serving-c10 [serving, c=10]", "offline-c10 [offline, c=10]"
    assert rc == 0
    assert [line for line in out.splitlines() if line.startswith("warning: ")] == [
        f"warning: {s} vs {o}: max_num_seqs: unknown in {s} (serving or imported results do not record it), so it "
        "cannot be checked",
        f"warning: {s} vs {o}: KV cache size differs: 449,968 tokens vs 444,528 tokens",
        f"warning: {s} vs {o}: GPU: unknown in {s} (serving or imported results do not record it), so it cannot be "
        "checked",
        f"warning: {s} vs {o}: max_num_batched_tokens, max_model_len, dtype, CUDA graphs, parallel layout: unknown "
        f"in {s} (serving or imported results do not record them), so they cannot be checked"]


def test_a_server_that_reports_its_limits_is_checked_on_them(capsys):
    """h100-rate's server answered /server_info: its batch limits and max_model_len are compared, not unknown; its
    KV cache is within 1% of the offline engine's."""
    rate = RESULTS / "h100-rate"
    rc, out, _ = cli(capsys, "compare", str(rate / "offline-r5.json.gz"), str(rate / "serving-r5.json.gz"))
    assert rc == 0
    (line,) = [line for line in out.splitlines() if line.startswith("warning: ")]
    assert line.endswith(": dtype, CUDA graphs, parallel layout: unknown in serving-r5 [serving, c=1024, 5 req/s] "
                         "(serving or imported results do not record them), so they cannot be checked")


def test_scaling_warns_on_all_but_the_layout(capsys, tmp_path):
    """scaling compares layouts: their TP/PP/DP and KV cache differ by design (the table shows both); anything
    else that differs is warned about."""
    tp4, dp2 = (str(RESULTS / "70b-tp4" / n) for n in ("tp4-8b.json.gz", "dp2tp2-8b.json.gz"))
    rc, out, _ = cli(capsys, "scaling", dp2, tp4, "--format", "md")
    assert rc == 0 and "warning" not in out
    other = _edit(Path(tp4), _resolved("max_num_seqs", 256), tmp_path / "tp4-mns256.json")
    rc, out, _ = cli(capsys, "scaling", dp2, other, "--format", "md")
    (line,) = [line for line in out.splitlines() if line.startswith("warning: ")]
    assert line.endswith("/tp4-mns256 vs 70b-tp4/dp2tp2-8b: max_num_seqs differs: 256 vs 1024")
