"""Models: `preset:NAME` (shipped config + self-made tokenizer + dummy weights), HF ids and local paths."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from offline_bench.core.errors import BenchError
from offline_bench.model.info import ModelInfo
from offline_bench.model.tokenizer import build_tokenizer

PRESET_PREFIX = "preset:"
DEFAULT_MODEL = "preset:tiny-llama"
_TOKENIZER_REV = "3"  # bump when tokenizer.py changes so cached preset dirs are rebuilt


def preset_names() -> list[str]:
    root = resources.files("offline_bench.model") / "configs"
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "config.json").is_file())


def preset_config(name: str) -> dict:
    if name not in preset_names():
        raise BenchError(f"unknown preset '{name}': choose one of {', '.join(preset_names())} "
                         "(see `offline-bench presets`)")
    text = (resources.files("offline_bench.model") / "configs" / name / "config.json").read_text()
    return json.loads(text)


def cache_root() -> Path:
    return Path(os.environ.get("OFFLINE_BENCH_HOME", Path.home() / ".cache" / "offline-bench"))


def materialize_preset(name: str) -> Path:
    """A model directory vLLM can load (config.json + tokenizer), built once and reused; atomic."""
    config = preset_config(name)
    digest = hashlib.sha256((json.dumps(config, sort_keys=True) + _TOKENIZER_REV).encode()).hexdigest()[:12]
    target = cache_root() / "presets" / f"{name}-{digest}"
    if (target / "tokenizer.json").is_file():
        return target

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        gen = {k: config[k] for k in ("bos_token_id", "eos_token_id") if k in config}
        (tmp / "generation_config.json").write_text(json.dumps(gen, indent=2))
        build_tokenizer(config, tmp)
        try:
            os.replace(tmp, target)
        except OSError:  # another process won the race: theirs is identical
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


@dataclass
class ResolvedModel:
    spec: str  # what the user gave
    path: str  # what vLLM loads (local dir or HF id)
    preset: str | None
    config: dict | None  # config.json when readable without network
    default_load_format: str | None  # "dummy" for presets

    @property
    def info(self) -> ModelInfo | None:
        try:
            return ModelInfo.from_config(self.config) if self.config else None
        except (ValueError, TypeError):  # an HF-cache config of an unusual shape: arithmetic unknown
            return None


def _looks_local(spec: str) -> bool:
    # HF ids are "org/name" or "name"; anything path-like is local
    return spec.startswith(("/", ".", "~")) or spec.count("/") > 1 or Path(spec).expanduser().exists()


def resolve_model(spec: str) -> ResolvedModel:
    if spec.startswith(PRESET_PREFIX):
        name = spec[len(PRESET_PREFIX):]
        config = preset_config(name)
        return ResolvedModel(spec, str(materialize_preset(name)), name, config, "dummy")
    path = Path(spec).expanduser()
    if _looks_local(spec):
        if not path.exists():
            raise BenchError(f"model path '{spec}' does not exist: pass an existing directory, an HF id, "
                             f"or a preset such as {DEFAULT_MODEL}")
        cfg_file = path / "config.json"
        if not cfg_file.is_file():
            raise BenchError(f"'{spec}' has no config.json: point --model at a Hugging Face model directory")
        try:
            config = json.loads(cfg_file.read_text())
        except OSError as e:
            raise BenchError(f"cannot read {cfg_file}: {e.strerror}") from None
        except json.JSONDecodeError as e:
            raise BenchError(f"{cfg_file} is not valid JSON ({e.msg} at line {e.lineno}): repair it or save the "
                             "model's config again (transformers' save_pretrained)") from None
        check_config(config, cfg_file)
        return ResolvedModel(spec, str(path.resolve()), None, config, None)
    return ResolvedModel(spec, spec, None, _hf_cached_config(spec), None)


def check_config(config: object, source: Path | str) -> None:
    """One line naming the fix for a config.json vLLM could not build a model from."""
    try:
        ModelInfo.from_config(config)  # type: ignore[arg-type]
    except (ValueError, TypeError) as e:
        raise BenchError(f"{source} is not a usable model config ({e}): give a complete Hugging Face "
                         "config.json (as transformers' save_pretrained writes it)") from None


def _hf_cached_config(repo_id: str) -> dict | None:
    """config.json of an HF id if it is already in the local HF cache (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache  # heavy to import: only to peek into the local HF cache

        found = try_to_load_from_cache(repo_id, "config.json")
        if isinstance(found, str):
            return json.loads(Path(found).read_text())
    except Exception:  # noqa: BLE001 - the cache is only a hint
        pass
    return None


def preset_rows() -> list[dict]:
    """One row per built-in model: shape, parameters and KV bytes per token."""
    rows = []
    for name in preset_names():
        info = ModelInfo.from_config(preset_config(name))
        rows.append({"preset": f"preset:{name}", "architecture": info.architecture, "layers": info.num_layers,
                     "hidden": info.hidden_size, "heads/kv_heads": f"{info.num_heads}/{info.num_kv_heads}",
                     "params": info.params, "active_params": info.active_params,
                     "kv_bytes_per_token": info.kv_bytes_per_token(), "max_len": info.max_position_embeddings,
                     "vocab": info.vocab_size})
    return rows
