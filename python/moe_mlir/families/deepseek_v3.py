"""DeepSeek-V3 (``model_type`` ``deepseek_v3``; docs/families/README.md):
sigmoid scores, the selection-only ``mlp.gate.e_score_correction_bias``
(f32), group-limited top-k (``group_score = sum_top2``, when ``n_group >
1``), renormalized iff ``norm_topk_prob``, scaled by
``routed_scaling_factor``; ungated SwiGLU shared experts
``mlp.shared_experts`` of intermediate size ``moe_intermediate_size *
n_shared_experts``. Layers from ``first_k_dense_replace`` on are MoE
blocks.

``transformers`` v4.57 always routes this way (it reads no
``scoring_func`` or ``topk_method``), and so does the importer. It masks
the experts of dropped groups with 0.0 before the top-k, DeepSeek's
release code with -inf; the importer follows the release code (the
routing op drops them): the two differ only when fewer than K experts of
the kept groups have a positive biased score, where 0.0 would let a
dropped group's expert in.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..emit import LayerSpec, hf_activation
from ..routing import Routing
from ._family import Family, Settings, dtypes_of, expert_names, swiglu_names

# DeepseekV3Config's defaults of the keys the block reads.
BLOCK_DEFAULTS = {"hidden_size": 7168, "moe_intermediate_size": 2048,
                  "n_routed_experts": 256, "num_experts_per_tok": 8,
                  "n_group": 8, "topk_group": 4,
                  "routed_scaling_factor": 2.5, "norm_topk_prob": True,
                  "n_shared_experts": 1, "hidden_act": "silu"}
LAYER_DEFAULTS = {"first_k_dense_replace": 3, "num_hidden_layers": 61}


def block_weights(block: str, bias: bool, shared: bool) -> dict[str, str]:
    """Router, correction bias, experts and shared experts of a DeepSeek
    block (also DeepSeek-V2's, without the bias)."""
    weights = {"router": f"{block}.gate.weight"}
    if bias:
        weights["score_bias"] = f"{block}.gate.e_score_correction_bias"
    weights.update(expert_names(block))
    if shared:
        names = swiglu_names(f"{block}.shared_experts")
        weights.update(shared_gate=names["gate"], shared_up=names["up"],
                       shared_down=names["down"])
    return weights


def groups(n_group: int, topk_group: int, group_score: str) -> dict[str, Any]:
    """The group-limited routing fields (none for one group)."""
    if n_group <= 1:
        return {}
    return {"num_groups": n_group, "topk_groups": topk_group,
            "group_score": group_score}


def block_spec(weights: Mapping[str, str], routing: Routing, *,
               hidden_size: int, moe_intermediate_size: int,
               n_routed_experts: int, n_shared_experts: int,
               hidden_act: str, dtype: str,
               dtypes: Mapping[str, str] | None) -> LayerSpec:
    """A DeepSeek block's spec: routed experts of ``moe_intermediate_size``
    and ``n_shared_experts`` shared ones fused into one of ``n`` times the
    size."""
    return LayerSpec(
        hidden=hidden_size, intermediate=moe_intermediate_size,
        num_experts=n_routed_experts, routing=routing, weights=weights,
        dtypes=dtypes_of(weights, dtype, dtypes),
        activation=hf_activation(hidden_act),
        shared_intermediate=moe_intermediate_size * n_shared_experts)


def layer(index: int, *, hidden_size: int, moe_intermediate_size: int,
          n_routed_experts: int, num_experts_per_tok: int,
          n_group: int = 1, topk_group: int = 1,
          routed_scaling_factor: float = 1.0, norm_topk_prob: bool = True,
          n_shared_experts: int = 0, hidden_act: str = "silu",
          dtype: str = "bf16", dtypes: Mapping[str, str] | None = None,
          prefix: str = "model.layers") -> LayerSpec:
    """The MoE block of decoder layer ``index``."""
    block = f"{prefix}.{index}.mlp"
    weights = block_weights(block, True, n_shared_experts > 0)
    routing = Routing(
        scoring="sigmoid", top_k=num_experts_per_tok,
        renormalize="selected" if norm_topk_prob else "none",
        scale=routed_scaling_factor, selection_bias=True,
        **groups(n_group, topk_group, "sum_top2"))
    return block_spec(weights, routing, hidden_size=hidden_size,
                      moe_intermediate_size=moe_intermediate_size,
                      n_routed_experts=n_routed_experts,
                      n_shared_experts=n_shared_experts,
                      hidden_act=hidden_act, dtype=dtype, dtypes=dtypes)


def is_moe_layer(settings: Settings, index: int) -> bool:
    return index >= settings.integer("first_k_dense_replace")


def dense_reason(settings: Settings, index: int) -> str:
    return f"first_k_dense_replace = {settings['first_k_dense_replace']}"


FAMILY = Family(name="deepseek_v3", model_types=("deepseek_v3",),
                block_defaults=BLOCK_DEFAULTS, build=layer,
                layer_defaults=LAYER_DEFAULTS, is_moe_layer=is_moe_layer,
                dense_reason=dense_reason)
