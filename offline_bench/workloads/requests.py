"""Workloads: prompt files (.txt / .jsonl) and seeded synthetic token-id prompts of exact length."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from offline_bench.core.config import WorkloadConfig
from offline_bench.core.errors import BenchError, input_file

WARMUP_SEED_OFFSET = 1_000_003  # warm-up prompts differ from the timed ones of the same --seed


# ShareGPT filters, as `vllm bench`'s sample_sharegpt_requests: at least 4 prompt and 4 output tokens, a prompt
# of at most 1024 tokens, and prompt + output at most 2048 tokens.
SHAREGPT_MIN_LEN, SHAREGPT_MAX_PROMPT, SHAREGPT_MAX_TOTAL = 4, 1024, 2048
DATASETS = ("sharegpt", "custom")
# `vllm bench --dataset-name` values this tool reads: random is its synthetic prompts (ours: no file given)
VLLM_BENCH_DATASETS = ("random", *DATASETS)


def prompt_source(prompts: str | None, dataset: tuple[str, str] | None, dataset_name: str | None = None,
                  dataset_path: str | None = None) -> tuple[str | None, str | None]:
    """(prompt file, its format) from our --prompts FILE / --dataset NAME FILE, or from vllm bench's
    --dataset-name / --dataset-path: random (or no name and no path) is synthetic; sharegpt or custom with a path
    is --dataset NAME FILE; a path alone is --prompts FILE (format by suffix: .txt or .jsonl)."""
    if (prompts or dataset) and (dataset_name or dataset_path):
        raise BenchError("give --prompts/--dataset or vllm bench's --dataset-name/--dataset-path, not both")
    if dataset and prompts:
        raise BenchError("give --prompts FILE or --dataset NAME FILE, not both")
    if dataset:
        return dataset[1], dataset[0]
    if dataset_name in (None, "random"):
        if dataset_name and dataset_path:
            raise BenchError("--dataset-name random makes synthetic prompts (--input-len, --output-len): drop "
                             "--dataset-path, or give --dataset-name sharegpt or custom")
        return prompts or dataset_path, None
    if not dataset_path:
        raise BenchError(f"--dataset-name {dataset_name} needs --dataset-path FILE")
    return dataset_path, dataset_name


@dataclass
class Request:
    output_len: int
    prompt: str | None = None  # text prompt (tokenized by the engine, inside the timed window)
    token_ids: list[int] | None = None  # synthetic prompt: exact token ids
    completion: str | None = None  # ShareGPT: the reply whose token count becomes output_len (see with_lengths)

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


def load_sharegpt(path: Path, text: str) -> list[Request]:
    """ShareGPT JSON: a list of {"conversations": [{"from": "human", "value": ...}, {"from": "gpt", ...}]}; the
    first human turn is the prompt, the first gpt turn after it the reply (its token count: with_lengths)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise BenchError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}): a ShareGPT file is a JSON list of "
                         '{"conversations": [...]}') from None
    if not isinstance(data, list):
        raise BenchError(f'{path}: a ShareGPT file is a JSON list of {{"conversations": [...]}}, not '
                         f"{type(data).__name__}")
    out = []
    for entry in data:
        turns = entry.get("conversations") if isinstance(entry, dict) else None
        if not isinstance(turns, list):
            continue
        human = next((i for i, t in enumerate(turns) if isinstance(t, dict) and t.get("from") in ("human", "user")
                      and isinstance(t.get("value"), str) and t["value"].strip()), None)
        if human is None:
            continue
        reply = next((t["value"] for t in turns[human + 1:] if isinstance(t, dict)
                      and t.get("from") in ("gpt", "assistant", "chatgpt") and isinstance(t.get("value"), str)), None)
        if reply:
            out.append(Request(0, prompt=turns[human]["value"], completion=reply))
    if not out:
        raise BenchError(f"{path}: no conversation with a human turn followed by a gpt turn: check the ShareGPT "
                         "format")
    return out


def with_lengths(requests: list[Request], encode: Callable[[str], list[int]], max_model_len: int | None = None,
                 path: str = "dataset") -> list[Request]:
    """ShareGPT requests get output_len = their reply's token count and are kept only within vllm bench's length
    limits (and max_model_len); other requests pass unchanged."""
    out = []
    for r in requests:
        if r.completion is None:
            out.append(r)
            continue
        p, o = len(encode(r.prompt or "")), len(encode(r.completion))
        total_cap = min(SHAREGPT_MAX_TOTAL, max_model_len or SHAREGPT_MAX_TOTAL)
        if p >= SHAREGPT_MIN_LEN and o >= SHAREGPT_MIN_LEN and p <= SHAREGPT_MAX_PROMPT and p + o <= total_cap:
            out.append(Request(o, prompt=r.prompt))
    if not out:
        raise BenchError(f"{path}: every conversation falls outside the length limits (4 <= prompt <= 1024, "
                         f"output >= 4, prompt + output <= {min(SHAREGPT_MAX_TOTAL, max_model_len or 2048)} tokens)")
    return out


def load_prompt_file(path: str | Path, default_output_len: int, dataset: str | None = None) -> list[Request]:
    """.txt: one prompt a line (blank lines skipped). .jsonl (or --dataset custom): {"prompt": str, "output_len"
    or "output_tokens": int (optional)}. --dataset sharegpt: see load_sharegpt."""
    path = Path(path)
    text = _read_text(path)
    if dataset == "sharegpt":
        return load_sharegpt(path, text)
    requests: list[Request] = []
    if path.suffix == ".txt" and dataset is None:
        requests = [Request(default_output_len, prompt=line) for line in text.splitlines() if line.strip()]
    elif path.suffix == ".jsonl" or dataset == "custom":
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
            out = obj.get("output_len", obj.get("output_tokens", default_output_len))  # ours / vllm bench's name
            if not isinstance(out, int) or isinstance(out, bool) or out < 1:
                raise BenchError(f'{path}:{lineno}: "output_len" must be a positive integer (also under vllm '
                                 f'bench\'s name "output_tokens"), got {out!r}')
            requests.append(Request(out, prompt=obj["prompt"]))
    else:
        raise BenchError(f"prompt file '{path}' must end in .txt (one prompt a line) or .jsonl")
    if not requests:
        raise BenchError(f"prompt file '{path}' holds no prompts: add at least one non-empty line")
    return requests


def check_workload(cfg: WorkloadConfig) -> list[Request] | None:
    """Validate the settings and read the prompt file (if any) before an engine starts; its requests."""
    cfg.validate_values()
    if cfg.dataset is not None and cfg.dataset not in DATASETS:
        raise BenchError(f"--dataset {cfg.dataset}: choose one of {', '.join(DATASETS)} (then the file)")
    if cfg.prompts_file is None:
        return None
    return load_prompt_file(cfg.prompts_file, cfg.output_len, cfg.dataset)


def _lengths(rng: random.Random, mean: int, ratio: float, n: int) -> list[int]:
    lo, hi = max(1, int(mean * (1 - ratio))), max(1, int(mean * (1 + ratio)))
    return [rng.randint(lo, hi) for _ in range(n)]


def synthetic_requests(num: int, input_len: int, output_len: int, range_ratio: float, seed: int,
                       vocab_size: int, special_ids: Iterable[int], prefix_len: int = 0,
                       num_prefixes: int = 1) -> list[Request]:
    """Random token ids (never special ids) of exact lengths; lengths uniform in mean x [1-r, 1+r]. With
    prefix_len, request i starts with shared prefix i % num_prefixes (prefix_len tokens), then its own
    input_len tokens."""
    rng = random.Random(seed)
    special = set(special_ids)
    pool = [i for i in range(vocab_size) if i not in special]
    prefixes = [[pool[rng.randrange(len(pool))] for _ in range(prefix_len)] for _ in range(num_prefixes)]
    ins = _lengths(rng, input_len, range_ratio, num)
    outs = _lengths(rng, output_len, range_ratio, num)
    return [Request(o, token_ids=prefixes[i % num_prefixes] + [pool[rng.randrange(len(pool))] for _ in range(n)])
            for i, (n, o) in enumerate(zip(ins, outs))]


def build_workload(cfg: WorkloadConfig, vocab_size: int, special_ids: Iterable[int],
                   encode: Callable[[str], list[int]] | None = None,
                   max_model_len: int | None = None) -> tuple[list[Request], list[Request]]:
    """(warm-up requests, timed requests). Warm-up prompts differ from timed ones where the source allows.
    `encode` (the engine's tokenizer) sizes ShareGPT replies."""
    special_ids = list(special_ids)
    if cfg.synthetic:
        timed = synthetic_requests(cfg.num_prompts, cfg.input_len, cfg.output_len, cfg.range_ratio, cfg.seed,
                                   vocab_size, special_ids, cfg.prefix_len, cfg.num_prefixes)
        # warm-up prompts (and their prefixes) differ from the timed ones: they warm the engine, not the cache
        warm = synthetic_requests(cfg.warmup, cfg.input_len, cfg.output_len, cfg.range_ratio,
                                  cfg.seed + WARMUP_SEED_OFFSET, vocab_size, special_ids, cfg.prefix_len,
                                  cfg.num_prefixes)
        return warm, timed
    base = load_prompt_file(cfg.prompts_file, cfg.output_len, cfg.dataset)
    if encode is not None:
        base = with_lengths(base, encode, max_model_len, str(cfg.prompts_file))
    elif any(r.completion is not None for r in base):
        raise BenchError(f"--dataset {cfg.dataset} needs the model's tokenizer to size each reply: not available "
                         "on this path")
    n = cfg.num_prompts or len(base)
    timed = [base[i % len(base)] for i in range(n)]  # cycle the file to --num-prompts
    warm = [base[i % len(base)] for i in range(cfg.warmup)]
    return warm, timed
