import json

import pytest

from offline_bench.core.errors import BenchError
from offline_bench.model.info import ModelInfo
from offline_bench.model.presets import materialize_preset, preset_config, preset_names, resolve_model


def test_llama_8b_arithmetic():
    info = ModelInfo.from_config(preset_config("llama-3.1-8b"))
    assert info.params == 8_030_261_248  # the published 8.03 B
    assert info.kv_bytes_per_token() == 131_072  # 2 x 32 layers x 8 kv heads x 128 x 2 bytes
    assert info.kv_bytes_per_token("fp8") == 65_536


def test_tiny_llama_shape():
    info = ModelInfo.from_config(preset_config("tiny-llama"))
    assert (info.num_layers, info.hidden_size, info.head_dim) == (2, 256, 64)
    assert info.kv_bytes_per_token() == 2 * 2 * 4 * 64 * 2


def test_unknown_preset_names_choices():
    with pytest.raises(BenchError, match="unknown preset 'nope'.*tiny-llama"):
        resolve_model("preset:nope")


def test_missing_local_path():
    with pytest.raises(BenchError, match="does not exist"):
        resolve_model("/no/such/model")


def test_hf_id_is_passed_through():
    m = resolve_model("meta-llama/Llama-3.1-8B")
    assert m.path == "meta-llama/Llama-3.1-8B" and m.preset is None and m.default_load_format is None


@pytest.mark.parametrize("name", ["tiny-llama", "llama-3.1-8b", "mistral-7b-v0.3"])
def test_preset_tokenizer_covers_every_id(name, tmp_path, monkeypatch):
    monkeypatch.setenv("OFFLINE_BENCH_HOME", str(tmp_path))
    path = materialize_preset(name)
    assert materialize_preset(name) == path  # cached, rebuilt only when the config changes
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path))
    config = json.loads((path / "config.json").read_text())
    assert len(tok) == config["vocab_size"]
    text = "假设你是唐朝诗人李白 hello, world"
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text
    # every id detokenizes (what a dummy-weight model generates), and each id maps back to itself
    ids = list(range(config["vocab_size"]))
    pieces = tok.convert_ids_to_tokens(ids)
    assert None not in pieces and len(set(pieces)) == len(ids)
    assert isinstance(tok.decode(ids[-300:]), str)
    assert tok.eos_token_id in (config["eos_token_id"] if isinstance(config["eos_token_id"], list)
                                else [config["eos_token_id"]])


def test_preset_configs_load_in_vllm_config_parser(vllm, tmp_path, monkeypatch):
    monkeypatch.setenv("OFFLINE_BENCH_HOME", str(tmp_path))
    from vllm.transformers_utils.config import get_config

    for name in preset_names():
        cfg = get_config(str(materialize_preset(name)), trust_remote_code=False)
        assert cfg.num_hidden_layers == preset_config(name)["num_hidden_layers"]
