"""The CLI in-process: listings, help, one line per bad input, nothing half-written, the level lists."""

import json
import re

import pytest

from offline_bench.core.errors import BenchError
from tests.helpers import cli


def test_presets_lists_both(capsys):
    rc, out, err = cli(capsys, "presets", "--format", "json")
    assert rc == 0, err
    rows = {r["preset"]: r for r in json.loads(out)}
    assert rows["preset:llama-3.1-8b"]["params"] == 8_030_261_248
    assert rows["preset:llama-3.1-8b"]["kv_bytes_per_token"] == 131_072
    assert "preset:tiny-llama" in rows


def test_help_has_examples(capsys):
    for cmd in ("run", "presets"):
        rc, out, _ = cli(capsys, cmd, "--help")
        assert rc == 0 and "Example:" in out


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
def test_bad_input_one_line(capsys, vllm, tmp_path, args, fragment):  # vllm: --engine-arg names are vLLM's
    out = tmp_path / "r.json"
    rc, _, err = cli(capsys, "run", *args, "--output", str(out))
    assert rc == 2
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], err
    assert "Traceback" not in err and not out.exists()


@pytest.mark.parametrize("name,content,fragment", [
    ("empty.txt", b"\n", "holds no prompts"),
    ("bad.jsonl", b"{oops\n", "not valid JSON"),
    ("latin1.txt", "caf\u00e9".encode("latin-1"), "not UTF-8"),
])
def test_bad_prompt_file_one_line(capsys, tmp_path, name, content, fragment):
    f = tmp_path / name
    f.write_bytes(content)
    rc, _, err = cli(capsys, "run", "--prompts", str(f), "--output", str(tmp_path / "r.json"))
    assert rc == 2 and err.startswith("error: ") and fragment in err
    assert err.count("\n") == 1 and not (tmp_path / "r.json").exists()


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
