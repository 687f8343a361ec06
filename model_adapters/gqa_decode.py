"""SDPA attention that decodes grouped-query attention without copying the key/value cache.

With a padding mask, transformers' `sdpa` path (before its `pack_gqa`, added upstream in later
5.x releases) repeats every key/value head `num_key_value_groups` times at every decoding
step: for Qwen3-VL-8B (32 query heads, 8 KV heads) that writes and reads 4x the whole cache
per token, and it is most of a batched decoding step's time. For a single query token, the
query heads of one group can instead be laid out as that group's "query positions": the same
`torch.nn.functional.scaled_dot_product_attention` call, on the cache as it is. Prefill and the
vision tower go through transformers' own `sdpa` unchanged. Registered as `covip_sdpa`.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

NAME = "covip_sdpa"


def sdpa_packed_decode(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    groups = getattr(module, "num_key_value_groups", 1)
    if query.shape[2] != 1 or groups == 1 or kwargs.get("position_bias") is not None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout, scaling, is_causal, **kwargs)
    batch, heads, _, dim = query.shape
    packed = query.reshape(batch, heads // groups, groups, dim)  # head h = kv_head * groups + g, as repeat_kv lays out
    if attention_mask is not None:
        attention_mask = attention_mask[:, :, :, : key.shape[-2]]
    out = F.scaled_dot_product_attention(packed, key, value, attn_mask=attention_mask, scale=scaling)
    return out.reshape(batch, heads, 1, dim).transpose(1, 2).contiguous(), None


def register() -> str:
    """Make `covip_sdpa` a transformers attention implementation; returns its name."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, sdpa_packed_decode)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    return NAME


def use_for_text(model: torch.nn.Module) -> None:
    """Switch the language model's attention to `covip_sdpa`; the vision tower keeps its own."""
    register()
    text_config = model.config.get_text_config()
    text_config._attn_implementation = NAME
