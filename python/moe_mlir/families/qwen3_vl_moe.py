"""Qwen3-VL-MoE (``model_type`` ``qwen3_vl_moe``) and the thinker of
Qwen3-Omni-MoE (``qwen3_omni_moe``; docs/families/qwen3_vl_moe.md,
qwen3_omni_moe.md): language models nested in a multimodal
``config.json``, with Qwen3-MoE's routing and MoE-layer rule.

Qwen3-VL-MoE's text model (``text_config``, layers
``model.language_model.layers``) always renormalizes (``transformers``
v4.57 reads ``norm_topk_prob`` but ignores it) and stores its experts
fused and transposed: ``experts.gate_up_proj`` ``[E, H, 2I]`` (``x @ W``;
gate columns first) and ``experts.down_proj`` ``[E, I, H]``, bound whole
and read through views (:mod:`moe_mlir.views`). The Omni thinker's text
model (``thinker_config.text_config``, layers ``thinker.model.layers``)
is Qwen3-MoE's block, per-expert Linears and ``norm_topk_prob``.
"""

from __future__ import annotations

from typing import Mapping

from ..emit import LayerSpec, hf_activation
from ..routing import Routing
from . import qwen2_moe, qwen3_moe
from ._family import Family, dtypes_of, transposed_experts

# Qwen3VLMoeTextConfig's defaults of the keys the block reads.
VL_DEFAULTS = {"hidden_size": 2048, "moe_intermediate_size": 1408,
               "num_experts": 60, "num_experts_per_tok": 4,
               "hidden_act": "silu"}
# Qwen3OmniMoeTextConfig's (the thinker's).
OMNI_DEFAULTS = {"hidden_size": 2048, "moe_intermediate_size": 768,
                 "num_experts": 128, "num_experts_per_tok": 8,
                 "norm_topk_prob": True, "hidden_act": "silu"}


def layer(index: int, *, hidden_size: int, moe_intermediate_size: int,
          num_experts: int, num_experts_per_tok: int,
          hidden_act: str = "silu", dtype: str = "bf16",
          dtypes: Mapping[str, str] | None = None,
          prefix: str = "model.language_model.layers") -> LayerSpec:
    """The Qwen3-VL-MoE block of decoder layer ``index``."""
    h, i, e = hidden_size, moe_intermediate_size, num_experts
    block = f"{prefix}.{index}.mlp"
    experts, views = transposed_experts(f"{block}.experts", e, h, i)
    weights = {"router": f"{block}.gate.weight", **experts}
    return LayerSpec(
        hidden=h, intermediate=i, num_experts=e,
        routing=Routing(top_k=num_experts_per_tok, renormalize="selected"),
        weights=weights, dtypes=dtypes_of(weights, dtype, dtypes),
        activation=hf_activation(hidden_act), views=views)


FAMILY = Family(name="qwen3_vl_moe", model_types=("qwen3_vl_moe",),
                block_defaults=VL_DEFAULTS, build=layer,
                layer_defaults=qwen2_moe.LAYER_DEFAULTS,
                is_moe_layer=qwen2_moe.is_moe_layer,
                dense_reason=qwen2_moe.dense_reason,
                prefix="model.language_model.layers",
                text_config=("text_config",))
OMNI = Family(name="qwen3_omni_moe", model_types=("qwen3_omni_moe",),
              block_defaults=OMNI_DEFAULTS, build=qwen3_moe.layer,
              layer_defaults={**qwen2_moe.LAYER_DEFAULTS,
                              "num_hidden_layers": 28},
              is_moe_layer=qwen2_moe.is_moe_layer,
              dense_reason=qwen2_moe.dense_reason,
              prefix="thinker.model.layers",
              text_config=("thinker_config", "text_config"))
