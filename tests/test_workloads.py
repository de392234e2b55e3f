import json

import pytest

from offline_bench.config import WorkloadConfig
from offline_bench.errors import BenchError
from offline_bench.workloads import build_workload, load_prompt_file, synthetic_requests


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
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "prompts"
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
