import json

import pytest

from offline_bench.core.config import WorkloadConfig
from offline_bench.core.errors import BenchError
from offline_bench.workloads.requests import (
    build_workload,
    check_workload,
    load_prompt_file,
    synthetic_requests,
    with_lengths,
)
from tests.helpers import ROOT


def test_txt_one_prompt_per_line(tmp_path):
    f = tmp_path / "p.txt"
    f.write_text("first prompt\n\n第二个提示\n", encoding="utf-8")
    reqs = load_prompt_file(f, 64)
    assert [r.prompt for r in reqs] == ["first prompt", "第二个提示"]
    assert all(r.output_len == 64 and r.token_ids is None for r in reqs)


def test_jsonl_with_optional_output_len(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text(json.dumps({"prompt": "a", "output_len": 7}) + "\n" + json.dumps({"prompt": "b"}) + "\n")
    reqs = load_prompt_file(f, 32)
    assert [(r.prompt, r.output_len) for r in reqs] == [("a", 7), ("b", 32)]


@pytest.mark.parametrize("name,content,msg", [
    ("empty.txt", b"\n  \n", "holds no prompts"),
    ("bad.jsonl", b'{"prompt": "ok"}\n{not json}\n', "bad.jsonl:2: not valid JSON"),
    ("noprompt.jsonl", b'{"text": "x"}\n', 'needs a non-empty string field "prompt"'),
    ("badlen.jsonl", b'{"prompt": "x", "output_len": 0}\n', '"output_len" must be a positive integer'),
    ("latin1.txt", "caf\u00e9\n".encode("latin-1"), "is not UTF-8"),
    ("prompts.csv", b"a,b\n", "must end in .txt"),
])
def test_bad_prompt_files(tmp_path, name, content, msg):
    f = tmp_path / name
    f.write_bytes(content)
    with pytest.raises(BenchError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        load_prompt_file(f, 16)


def test_missing_prompt_file(tmp_path):
    with pytest.raises(BenchError, match="not found"):
        load_prompt_file(tmp_path / "nope.txt", 16)


def test_synthetic_exact_lengths_and_no_special_ids():
    reqs = synthetic_requests(50, 33, 7, 0.0, seed=1, vocab_size=300, special_ids=[298, 299])
    assert all(len(r.token_ids) == 33 and r.output_len == 7 for r in reqs)
    assert all(0 <= t < 298 for r in reqs for t in r.token_ids)


def test_synthetic_is_seeded():
    a = synthetic_requests(5, 20, 5, 0.5, seed=3, vocab_size=1000, special_ids=[])
    b = synthetic_requests(5, 20, 5, 0.5, seed=3, vocab_size=1000, special_ids=[])
    c = synthetic_requests(5, 20, 5, 0.5, seed=4, vocab_size=1000, special_ids=[])
    assert [r.token_ids for r in a] == [r.token_ids for r in b]
    assert [r.token_ids for r in a] != [r.token_ids for r in c]


def test_range_ratio_bounds():
    reqs = synthetic_requests(200, 100, 40, 0.5, seed=0, vocab_size=500, special_ids=[])
    ins = [len(r.token_ids) for r in reqs]
    outs = [r.output_len for r in reqs]
    assert min(ins) >= 50 and max(ins) <= 150 and len(set(ins)) > 10
    assert min(outs) >= 20 and max(outs) <= 60


def test_build_workload_cycles_file_and_separates_warmup(tmp_path):
    f = tmp_path / "p.txt"
    f.write_text("x\ny\n")
    warm, timed = build_workload(WorkloadConfig(prompts_file=str(f), num_prompts=5, warmup=1), 100, [])
    assert [r.prompt for r in timed] == ["x", "y", "x", "y", "x"] and len(warm) == 1
    warm, timed = build_workload(WorkloadConfig(num_prompts=3, input_len=8, warmup=2), 100, [])
    assert len(warm) == 2 and len(timed) == 3
    assert {tuple(r.token_ids) for r in warm}.isdisjoint({tuple(r.token_ids) for r in timed})


def test_shipped_prompt_files_load():
    root = ROOT / "prompts"
    seed = load_prompt_file(root / "seed.txt", 512)
    assert [r.prompt for r in seed] == ["假设你是唐朝诗人李白,请用七言绝句描述一次雪夜独钓的场景",
                                         "请用鲁迅的文学风格描写一次深夜咖啡馆的场景"]
    corpus = load_prompt_file(root / "corpus.txt", 128)
    assert len(corpus) >= 100
    assert any(any("\u4e00" <= ch <= "\u9fff" for ch in r.prompt) for r in corpus)
    assert any(r.prompt.isascii() for r in corpus)
    lengths = [len(r.prompt) for r in corpus]
    assert max(lengths) > 5 * min(lengths)  # varied lengths
    assert len(load_prompt_file(root / "corpus.jsonl", 128)) >= 100


SHAREGPT = ROOT / "prompts" / "sharegpt-mini.json"


def _bytes(text: str) -> list[int]:  # the presets' tokenizer: one token per UTF-8 byte
    return list(text.encode("utf-8"))


def test_sharegpt_file_parses_and_filters_like_vllm_bench():
    reqs = load_prompt_file(SHAREGPT, 128, dataset="sharegpt")
    data = json.loads(SHAREGPT.read_text())
    assert len(reqs) == len(data) - 1  # the conversation without a reply is skipped
    assert reqs[0].prompt == data[0]["conversations"][0]["value"]
    system = next(r for r in reqs if r.prompt == "Name a prime number larger than 100.")  # a system turn first
    assert system.completion == "101."
    multi = next(r for r in reqs if r.prompt == "What is a mutex?")  # only the first exchange counts
    assert multi.completion.startswith("A mutual-exclusion lock")
    sized = with_lengths(reqs, _bytes)
    assert len(sized) == len(reqs) - 1  # "Yes" (3 tokens) is under the 4-token minimum
    assert all(r.completion is None and r.output_len >= 4 for r in sized)
    assert sized[0].output_len == len(_bytes(data[0]["conversations"][1]["value"]))
    assert len(with_lengths(reqs, _bytes, max_model_len=300)) < len(sized)  # prompt + output <= max_model_len


@pytest.mark.parametrize("text,says", [("{", "not valid JSON"), ('{"a": 1}', "JSON list"),
                                       ('[{"conversations": [{"from": "gpt", "value": "hi"}]}]', "no conversation")])
def test_bad_sharegpt_files_get_one_line(tmp_path, text, says):
    f = tmp_path / "bad.json"
    f.write_text(text)
    with pytest.raises(BenchError, match=says):
        load_prompt_file(f, 128, dataset="sharegpt")


def test_custom_dataset_takes_vllm_bench_field_names(tmp_path):
    f = tmp_path / "custom.jsonl"
    f.write_text('{"prompt": "hello there", "output_tokens": 7}\n{"prompt": "second", "output_len": 3}\n')
    reqs = load_prompt_file(f, 128, dataset="custom")
    assert [(r.prompt, r.output_len) for r in reqs] == [("hello there", 7), ("second", 3)]
    with pytest.raises(BenchError, match="--dataset"):
        check_workload(WorkloadConfig(prompts_file=str(f), dataset="alpaca"))


def test_shared_prefixes_are_shared_in_turn():
    reqs = synthetic_requests(6, 5, 4, 0.0, seed=1, vocab_size=1000, special_ids=[0], prefix_len=8, num_prefixes=2)
    assert all(len(r.token_ids) == 13 for r in reqs)
    assert reqs[0].token_ids[:8] == reqs[2].token_ids[:8] == reqs[4].token_ids[:8]
    assert reqs[1].token_ids[:8] == reqs[3].token_ids[:8] != reqs[0].token_ids[:8]
    assert len({tuple(r.token_ids[8:]) for r in reqs}) == 6  # each its own suffix
    with pytest.raises(BenchError, match="--prefix-len"):
        WorkloadConfig(prompts_file="x.txt", prefix_len=4).validate_values()
