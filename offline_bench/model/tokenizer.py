"""A self-made byte-level tokenizer for the presets: no downloads, and every id of the vocabulary decodes.

256 consecutive ids are the 256 bytes (GPT-2's byte-to-unicode alphabet), so any text encodes losslessly, one
token per UTF-8 byte (an ASCII letter is 1 token, a CJK character 3); they start at 0, or at the first multiple of
256 clear of the model's special ids (Mistral's bos/eos are 1 and 2). The model's special ids (bos/eos, e.g. Llama-3's
128000..128255) are special tokens. Every other id is a filler word " xxxx" (4 lowercase letters, unique per id)
so that ids a dummy-weight model generates detokenize to readable text. No merges: encoding never yields fillers.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers

LLAMA3_SPECIALS = {128000: "<|begin_of_text|>", 128001: "<|end_of_text|>", 128008: "<|eom_id|>",
                   128009: "<|eot_id|>"}


def _bytes_to_unicode() -> dict[int, str]:
    # GPT-2's reversible byte -> printable unicode char map, as the ByteLevel pre-tokenizer/decoder expects.
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def _filler(i: int) -> str:
    letters = []
    for _ in range(4):
        i, r = divmod(i, 26)
        letters.append(chr(ord("a") + r))
    return "Ġ" + "".join(letters)  # "Ġ" is the byte-level form of a space


def special_tokens(config: dict) -> dict[int, str]:
    """Special ids of a model config: bos/eos (int or list) and Llama-3's reserved range."""
    vocab = int(config["vocab_size"])
    specials: dict[int, str] = {}
    if vocab > 128000:  # Llama-3 family: reserve the published special range
        for i in range(128000, vocab):
            specials[i] = LLAMA3_SPECIALS.get(i, f"<|reserved_special_token_{i - 128000}|>")
    for key, name in (("bos_token_id", "<s>"), ("eos_token_id", "</s>"), ("pad_token_id", "<pad>")):
        ids = config.get(key)
        for j, tid in enumerate(ids if isinstance(ids, list) else [ids] if ids is not None else []):
            if tid not in specials:
                specials[tid] = name if j == 0 else f"{name[:-1]}{j}>"
    return specials


def byte_offset(specials: dict[int, str]) -> int:
    """First multiple of 256 whose 256 ids hold no special id: where the byte tokens go."""
    offset = 0
    while any(offset <= i < offset + 256 for i in specials):
        offset += 256
    return offset


CHAT_TEMPLATE = ("{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}assistant: {% endif %}")


def build_tokenizer(config: dict, out_dir: Path) -> None:
    """Write tokenizer.json + tokenizer_config.json covering exactly config['vocab_size'] ids."""
    vocab_size = int(config["vocab_size"])
    specials = special_tokens(config)
    offset = byte_offset(specials)
    b2u = _bytes_to_unicode()
    vocab: dict[str, int] = {}
    for i in range(vocab_size):
        if i in specials:
            continue
        vocab[b2u[i - offset] if offset <= i < offset + 256 else _filler(i)] = i
    for i, name in specials.items():
        vocab[name] = i
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], fuse_unk=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([specials[i] for i in sorted(specials)])
    out_dir.mkdir(parents=True, exist_ok=True)
    tok.save(str(out_dir / "tokenizer.json"))

    def first(key: str) -> str | None:
        ids = config.get(key)
        ids = ids[0] if isinstance(ids, list) else ids
        return specials.get(ids) if ids is not None else None

    tok_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": first("bos_token_id"),
        "eos_token": first("eos_token_id"),
        "pad_token": first("pad_token_id") or first("eos_token_id"),
        "add_bos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": int(config.get("max_position_embeddings", 2048)),
        # a plain role-tagged template, so chat endpoints (serve-probe --chat, --scenario) work on presets
        "chat_template": CHAT_TEMPLATE,
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=2))
