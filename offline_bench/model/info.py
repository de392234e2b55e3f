"""Model arithmetic from a Hugging Face config: parameters, KV bytes per token, context limit."""

from __future__ import annotations

from pydantic import BaseModel

DTYPE_BYTES = {"float32": 4, "float": 4, "fp32": 4, "bfloat16": 2, "float16": 2, "half": 2, "bf16": 2,
               "fp16": 2, "fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1, "fp8_inc": 1, "fp8_ds_mla": 1}


class ModelInfo(BaseModel):
    architecture: str | None
    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    intermediate_size: int
    num_experts: int = 0
    num_experts_per_tok: int = 0
    moe_intermediate_size: int = 0
    tie_word_embeddings: bool = False
    max_position_embeddings: int | None
    torch_dtype: str | None
    params: int
    active_params: int

    @classmethod
    def from_config(cls, c: dict) -> ModelInfo:
        """Raises ValueError naming the first required field the config lacks (or holds as a non-number)."""
        if not isinstance(c, dict):
            raise ValueError(f"a config must be a JSON object, not {type(c).__name__}")
        c = c.get("text_config", c) if "num_hidden_layers" not in c and isinstance(c.get("text_config"), dict) else c
        hidden = _field(c, "hidden_size", "n_embd", "d_model")
        heads = _field(c, "num_attention_heads", "n_head", "num_heads")
        kv_heads = int(c.get("num_key_value_heads") or heads)
        head_dim = int(c.get("head_dim") or hidden // heads)
        layers = _field(c, "num_hidden_layers", "n_layer", "num_layers")
        vocab = _field(c, "vocab_size")
        inter = int(c.get("intermediate_size") or 0)
        experts = int(c.get("num_experts") or c.get("num_local_experts") or 0)
        topk = int(c.get("num_experts_per_tok") or 0)
        moe_inter = int(c.get("moe_intermediate_size") or inter)
        tie = bool(c.get("tie_word_embeddings", False))
        bias = bool(c.get("attention_bias", False)) or c.get("model_type") == "qwen2"
        attn = hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim + heads * head_dim * hidden
        if bias:
            attn += heads * head_dim + 2 * kv_heads * head_dim
        if c.get("model_type") == "qwen3" or c.get("model_type") == "qwen3_moe":
            attn += 2 * head_dim  # q_norm and k_norm weights
        norms = 2 * hidden
        if experts:
            mlp_total = experts * 3 * hidden * moe_inter + hidden * experts  # experts + router
            mlp_active = topk * 3 * hidden * moe_inter + hidden * experts
        else:
            mlp_total = mlp_active = 3 * hidden * inter
        embed = vocab * hidden * (1 if tie else 2)
        params = embed + layers * (attn + norms + mlp_total) + hidden
        active = embed + layers * (attn + norms + mlp_active) + hidden
        dtype = c.get("torch_dtype") or c.get("dtype")
        return cls(architecture=(c.get("architectures") or [None])[0], num_layers=layers, hidden_size=hidden,
                   num_heads=heads, num_kv_heads=kv_heads, head_dim=head_dim, vocab_size=vocab,
                   intermediate_size=inter, num_experts=experts, num_experts_per_tok=topk,
                   moe_intermediate_size=moe_inter if experts else 0, tie_word_embeddings=tie,
                   max_position_embeddings=c.get("max_position_embeddings"), torch_dtype=dtype,
                   params=params, active_params=active)

    def kv_bytes_per_token(self, kv_dtype: str | None = None) -> int:
        """K and V for every layer: 2 x layers x kv_heads x head_dim x bytes per element."""
        dtype = kv_dtype if kv_dtype and kv_dtype != "auto" else (self.torch_dtype or "bfloat16")
        nbytes = DTYPE_BYTES.get(str(dtype).replace("torch.", ""), 2)
        return 2 * self.num_layers * self.num_kv_heads * self.head_dim * nbytes


def _field(c: dict, name: str, *aliases: str) -> int:
    """A required positive integer, under its usual name or the older names some architectures use."""
    for key in (name, *aliases):
        if key in c:
            value = c[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"'{key}' must be a positive integer, got {value!r}")
            return value
    raise ValueError(f"it has no '{name}'")
