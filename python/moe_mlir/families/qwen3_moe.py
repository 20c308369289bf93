"""Qwen3-MoE (``model_type`` ``qwen3_moe``; docs/families/README.md): the
Qwen2-MoE block without a shared expert, the same MoE-layer rule."""

from __future__ import annotations

from typing import Mapping

from ..emit import LayerSpec
from . import qwen2_moe
from ._family import Family

# Qwen3MoeConfig's defaults of the keys the block reads.
BLOCK_DEFAULTS = {"hidden_size": 2048, "moe_intermediate_size": 768,
                  "num_experts": 128, "num_experts_per_tok": 8,
                  "norm_topk_prob": False, "hidden_act": "silu"}


def layer(index: int, *, hidden_size: int, moe_intermediate_size: int,
          num_experts: int, num_experts_per_tok: int,
          norm_topk_prob: bool = False, hidden_act: str = "silu",
          dtype: str = "bf16", dtypes: Mapping[str, str] | None = None,
          prefix: str = "model.layers") -> LayerSpec:
    """The MoE block of decoder layer ``index``."""
    return qwen2_moe.layer(index, hidden_size=hidden_size,
                           moe_intermediate_size=moe_intermediate_size,
                           num_experts=num_experts,
                           num_experts_per_tok=num_experts_per_tok,
                           shared_expert_intermediate_size=0,
                           norm_topk_prob=norm_topk_prob,
                           hidden_act=hidden_act, dtype=dtype, dtypes=dtypes,
                           prefix=prefix)


FAMILY = Family(name="qwen3_moe", model_types=("qwen3_moe",),
                block_defaults=BLOCK_DEFAULTS, build=layer,
                layer_defaults=qwen2_moe.LAYER_DEFAULTS,
                is_moe_layer=qwen2_moe.is_moe_layer,
                dense_reason=qwen2_moe.dense_reason)
