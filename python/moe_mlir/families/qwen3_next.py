"""Qwen3-Next (``model_type`` ``qwen3_next``; docs/families/qwen3_next.md):
the Qwen2-MoE block (softmax top-k renormalized iff ``norm_topk_prob``, a
SwiGLU shared expert behind ``sigmoid(x @ shared_expert_gate^T)``) under
Qwen2-MoE's names, in a model of linear- and full-attention layers; the
MoE-layer rule is Qwen2-MoE's, whatever the attention."""

from __future__ import annotations

from . import qwen2_moe
from ._family import Family

# Qwen3NextConfig's defaults of the keys the block reads.
BLOCK_DEFAULTS = {"hidden_size": 2048, "moe_intermediate_size": 512,
                  "num_experts": 512, "num_experts_per_tok": 10,
                  "shared_expert_intermediate_size": 512,
                  "norm_topk_prob": True, "hidden_act": "silu"}

FAMILY = Family(name="qwen3_next", model_types=("qwen3_next",),
                block_defaults=BLOCK_DEFAULTS, build=qwen2_moe.layer,
                layer_defaults={**qwen2_moe.LAYER_DEFAULTS,
                                "num_hidden_layers": 48},
                is_moe_layer=qwen2_moe.is_moe_layer,
                dense_reason=qwen2_moe.dense_reason)
