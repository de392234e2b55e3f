"""The model's own limits on engine settings, one check for every command: max_model_len against the model's
context, the tensor-parallel size against its attention and KV heads, the pipeline size against its layers.

`check_model_limits` needs the model's config (`model_facts` reads it without network and without writing:
a preset's shipped config, a local directory's config.json, the HF cache's); a model whose config is not readable
here is not checked (vLLM checks it at its start).
"""

from __future__ import annotations

from collections.abc import Iterable

from offline_bench.core.errors import BenchError
from offline_bench.model.info import ModelInfo
from offline_bench.model.presets import PRESET_PREFIX, preset_config, resolve_model

# rope scalings that stretch the context beyond max_position_embeddings (vLLM then allows a longer max_model_len)
STRETCHING_ROPE = ("yarn", "dynamic", "linear", "longrope")
MAX_SUGGESTED_TP = 16  # the divisors a refusal suggests


def model_facts(spec: str) -> tuple[ModelInfo | None, dict | None]:
    """(info, config) of `--model SPEC`, read without network and without writing; (None, None) when its config is
    not readable here (an HF id not in the local cache). A missing path or an unknown preset: one line."""
    if spec.startswith(PRESET_PREFIX):
        config: dict | None = preset_config(spec[len(PRESET_PREFIX):])
    else:
        config = resolve_model(spec).config  # no writes for a path or an HF id
    try:
        return (ModelInfo.from_config(config) if config else None), config
    except (ValueError, TypeError):  # an HF-cache config of an unusual shape: arithmetic unknown
        return None, config


def _values(value: int | Iterable[int] | None) -> list[int]:
    if value is None:
        return []
    return [value] if isinstance(value, int) else [v for v in value if v is not None]


def check_max_model_len(max_model_len: int | None, info: ModelInfo | None, config: dict | None) -> None:
    """--max-model-len within the model's context (unless its rope scaling stretches it)."""
    if max_model_len is None or info is None or not info.max_position_embeddings:
        return
    rope = (config or {}).get("rope_scaling") or {}
    stretches = rope.get("rope_type", rope.get("type")) in STRETCHING_ROPE
    if max_model_len > info.max_position_embeddings and not stretches:
        raise BenchError(f"--max-model-len {max_model_len} is above the model's limit "
                         f"({info.max_position_embeddings} tokens): lower --max-model-len")


def tensor_parallel_sizes(info: ModelInfo, most: int = MAX_SUGGESTED_TP) -> list[int]:
    """The TP sizes vLLM can split this model over (up to `most`): each divides the attention heads, and the KV
    heads divide evenly (fewer KV heads than GPUs: each is replicated, so the size is a multiple of them)."""
    return [d for d in range(1, min(info.num_heads, most) + 1) if _splits(info, d)]


def _splits(info: ModelInfo, tp: int) -> bool:
    kv = info.num_kv_heads
    return info.num_heads % tp == 0 and (kv % tp == 0 if tp <= kv else tp % kv == 0)


def check_tensor_parallel(tp: int, info: ModelInfo | None, flag: str = "--tensor-parallel-size") -> None:
    if info is None or _splits(info, tp):
        return
    sizes = ", ".join(map(str, tensor_parallel_sizes(info)))
    if info.num_heads % tp:
        raise BenchError(f"{flag} {tp} does not divide the model's {info.num_heads} attention heads: use one of "
                         f"{sizes}")
    raise BenchError(f"{flag} {tp} does not split the model's {info.num_kv_heads} KV heads evenly: use one of "
                     f"{sizes}")


def check_pipeline_parallel(pp: int, info: ModelInfo | None) -> None:
    if info is not None and pp > info.num_layers:
        raise BenchError(f"--pipeline-parallel-size {pp} exceeds the model's {info.num_layers} layers")


def check_model_limits(info: ModelInfo | None, config: dict | None, *,
                       max_model_len: int | Iterable[int] | None = None,
                       tensor_parallel_size: int | Iterable[int] | None = None,
                       pipeline_parallel_size: int | Iterable[int] | None = None,
                       tp_flag: str = "--tensor-parallel-size") -> None:
    """Every value given (one, or a sweep's or a plan's list) within the model's limits; one line naming the fix
    otherwise. Run before any engine starts, by every command that takes these settings."""
    for mml in _values(max_model_len):
        check_max_model_len(mml, info, config)
    for tp in _values(tensor_parallel_size):
        check_tensor_parallel(tp, info, tp_flag)
    for pp in _values(pipeline_parallel_size):
        check_pipeline_parallel(pp, info)


def check_model(spec: str, **settings: int | Iterable[int] | None) -> tuple[ModelInfo | None, dict | None]:
    """`check_model_limits` for `--model SPEC` (its config read once, here); returns (info, config)."""
    info, config = model_facts(spec)
    check_model_limits(info, config, **settings)  # type: ignore[arg-type]
    return info, config
