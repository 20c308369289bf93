"""GLM-4.5 MoE (``model_type`` ``glm4_moe``), the text model of GLM-4.5V
(``glm4v_moe``: ``text_config``, or the top-level keys without one; layers
``model.language_model.layers``) and dots.llm1 (``dots1``):
DeepSeek-V3's block under DeepSeek-V3's names (sigmoid scores, the
selection-only ``mlp.gate.e_score_correction_bias``, group-limited top-k,
renormalized iff ``norm_topk_prob``, scaled by ``routed_scaling_factor``,
ungated shared experts ``mlp.shared_experts``), with their own defaults;
layers from ``first_k_dense_replace`` on are MoE blocks
(docs/families/glm4_moe.md, glm4v_moe.md, dots1.md)."""

from __future__ import annotations

import dataclasses

from . import deepseek_v3
from ._family import Family

# Glm4MoeConfig's defaults of the keys the block reads.
GLM4_MOE_DEFAULTS = {"hidden_size": 4096, "moe_intermediate_size": 1408,
                     "n_routed_experts": 128, "num_experts_per_tok": 8,
                     "n_group": 1, "topk_group": 1,
                     "routed_scaling_factor": 1.0, "norm_topk_prob": True,
                     "n_shared_experts": 1, "hidden_act": "silu"}
# Dots1Config's: no default expert count, top-k or shared experts.
DOTS1_DEFAULTS = {"hidden_size": 4608, "moe_intermediate_size": 1408,
                  "n_routed_experts": None, "num_experts_per_tok": None,
                  "n_group": 1, "topk_group": 1,
                  "routed_scaling_factor": 1.0, "norm_topk_prob": False,
                  "n_shared_experts": None, "hidden_act": "silu"}

FAMILY = Family(name="glm4_moe", model_types=("glm4_moe",),
                block_defaults=GLM4_MOE_DEFAULTS, build=deepseek_v3.layer,
                layer_defaults={"first_k_dense_replace": 1,
                                "num_hidden_layers": 46},
                is_moe_layer=deepseek_v3.is_moe_layer,
                dense_reason=deepseek_v3.dense_reason)
DOTS1 = Family(name="dots1", model_types=("dots1",),
               block_defaults=DOTS1_DEFAULTS, build=deepseek_v3.layer,
               layer_defaults={"first_k_dense_replace": 0,
                               "num_hidden_layers": 62},
               is_moe_layer=deepseek_v3.is_moe_layer,
               dense_reason=deepseek_v3.dense_reason,
               required=("n_routed_experts", "num_experts_per_tok",
                         "n_shared_experts"))
GLM4V = dataclasses.replace(
    FAMILY, name="glm4v_moe", model_types=("glm4v_moe",),
    prefix="model.language_model.layers", text_config=("text_config",),
    text_config_at_top=True)
