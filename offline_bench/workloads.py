"""Workloads: prompt files (.txt / .jsonl) and seeded synthetic token-id prompts of exact length."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from offline_bench.config import WorkloadConfig
from offline_bench.errors import BenchError, input_file

WARMUP_SEED_OFFSET = 1_000_003  # warm-up prompts differ from the timed ones of the same --seed


@dataclass
class Request:
    output_len: int
    prompt: str | None = None  # text prompt (tokenized by the engine, inside the timed window)
    token_ids: list[int] | None = None  # synthetic prompt: exact token ids

    def engine_prompt(self) -> str | dict:
        return {"prompt_token_ids": self.token_ids} if self.token_ids is not None else self.prompt


def _read_text(path: Path) -> str:
    input_file(str(path), "prompt file", "pass an existing .txt or .jsonl file")
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise BenchError(f"prompt file '{path}' is not UTF-8 (bad byte at line {line}): re-save it as UTF-8") from None


def load_prompt_file(path: str | Path, default_output_len: int) -> list[Request]:
    """.txt: one prompt a line (blank lines skipped). .jsonl: {"prompt": str, "output_len": int (optional)}."""
    path = Path(path)
    text = _read_text(path)
    requests: list[Request] = []
    if path.suffix == ".txt":
        requests = [Request(default_output_len, prompt=line) for line in text.splitlines() if line.strip()]
    elif path.suffix == ".jsonl":
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise BenchError(f"{path}:{lineno}: not valid JSON ({e.msg}): each line must be "
                                 '{"prompt": "...", "output_len": N}') from None
            if not isinstance(obj, dict) or not isinstance(obj.get("prompt"), str) or not obj["prompt"].strip():
                raise BenchError(f'{path}:{lineno}: needs a non-empty string field "prompt"')
            out = obj.get("output_len", default_output_len)
            if not isinstance(out, int) or isinstance(out, bool) or out < 1:
                raise BenchError(f'{path}:{lineno}: "output_len" must be a positive integer, got {out!r}')
            requests.append(Request(out, prompt=obj["prompt"]))
    else:
        raise BenchError(f"prompt file '{path}' must end in .txt (one prompt a line) or .jsonl")
    if not requests:
        raise BenchError(f"prompt file '{path}' holds no prompts: add at least one non-empty line")
    return requests


def check_workload(cfg: WorkloadConfig) -> list[Request] | None:
    """Validate the settings and read the prompt file (if any) before an engine starts; its requests."""
    cfg.validate_values()
    return load_prompt_file(cfg.prompts_file, cfg.output_len) if cfg.prompts_file is not None else None


def _lengths(rng: random.Random, mean: int, ratio: float, n: int) -> list[int]:
    lo, hi = max(1, int(mean * (1 - ratio))), max(1, int(mean * (1 + ratio)))
    return [rng.randint(lo, hi) for _ in range(n)]


def synthetic_requests(num: int, input_len: int, output_len: int, range_ratio: float, seed: int,
                       vocab_size: int, special_ids: Iterable[int]) -> list[Request]:
    """Random token ids (never special ids) of exact lengths; lengths uniform in mean x [1-r, 1+r]."""
    rng = random.Random(seed)
    special = set(special_ids)
    pool = [i for i in range(vocab_size) if i not in special]
    ins = _lengths(rng, input_len, range_ratio, num)
    outs = _lengths(rng, output_len, range_ratio, num)
    return [Request(o, token_ids=[pool[rng.randrange(len(pool))] for _ in range(n)]) for n, o in zip(ins, outs)]


def build_workload(cfg: WorkloadConfig, vocab_size: int, special_ids: Iterable[int]) -> tuple[list[Request],
                                                                                              list[Request]]:
    """(warm-up requests, timed requests). Warm-up prompts differ from timed ones where the source allows."""
    special_ids = list(special_ids)
    if cfg.synthetic:
        timed = synthetic_requests(cfg.num_prompts, cfg.input_len, cfg.output_len, cfg.range_ratio, cfg.seed,
                                   vocab_size, special_ids)
        warm = synthetic_requests(cfg.warmup, cfg.input_len, cfg.output_len, cfg.range_ratio,
                                  cfg.seed + WARMUP_SEED_OFFSET, vocab_size, special_ids)
        return warm, timed
    base = load_prompt_file(cfg.prompts_file, cfg.output_len)
    n = cfg.num_prompts or len(base)
    timed = [base[i % len(base)] for i in range(n)]  # cycle the file to --num-prompts
    warm = [base[i % len(base)] for i in range(cfg.warmup)]
    return warm, timed
