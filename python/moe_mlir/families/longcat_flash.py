"""LongCat-Flash (``model_type`` ``longcat_flash``;
docs/families/longcat_flash.md).

Every decoder layer (``num_layers`` of them; ``num_hidden_layers`` is
twice that, counting attention sublayers) has one MoE block ``mlp``: the
router ``router.classifier`` scores ``n_routed_experts`` experts and
``zero_expert_num`` zero-compute experts together (``[E + Z, H]``;
``transformers`` v4.57 ignores a classifier bias), softmax over all
``E + Z``, top-``moe_topk`` by the scores plus the selection-only
``router.e_score_correction_bias`` (``[E + Z]``), weights scaled by
``routed_scaling_factor`` and never renormalized. A chosen zero expert adds
its weight times the token (``moe.layer``'s ``zero_experts``); the routed
experts are SwiGLU ``experts.{j}.{gate,up,down}_proj`` of
``expert_ffn_hidden_size``.
"""

from __future__ import annotations

from typing import Mapping

from ..emit import LayerSpec, hf_activation
from ..routing import Routing
from ._family import Family, dtypes_of, expert_names

# LongcatFlashConfig's defaults of the keys the block reads.
BLOCK_DEFAULTS = {"hidden_size": 6144, "expert_ffn_hidden_size": 2048,
                  "n_routed_experts": 512, "zero_expert_num": 256,
                  "moe_topk": 12, "routed_scaling_factor": 6.0,
                  "hidden_act": "silu"}


def layer(index: int, *, hidden_size: int, expert_ffn_hidden_size: int,
          n_routed_experts: int, zero_expert_num: int, moe_topk: int,
          routed_scaling_factor: float = 6.0, hidden_act: str = "silu",
          dtype: str = "bf16", dtypes: Mapping[str, str] | None = None,
          prefix: str = "model.layers") -> LayerSpec:
    """The MoE block of decoder layer ``index``."""
    block = f"{prefix}.{index}.mlp"
    weights = {"router": f"{block}.router.classifier.weight",
               "score_bias": f"{block}.router.e_score_correction_bias",
               **expert_names(block)}
    return LayerSpec(
        hidden=hidden_size, intermediate=expert_ffn_hidden_size,
        num_experts=n_routed_experts,
        routing=Routing(top_k=moe_topk, scale=routed_scaling_factor,
                        selection_bias=True),
        weights=weights, dtypes=dtypes_of(weights, dtype, dtypes),
        activation=hf_activation(hidden_act), zero_experts=zero_expert_num)


FAMILY = Family(name="longcat_flash", model_types=("longcat_flash",),
                block_defaults=BLOCK_DEFAULTS, build=layer,
                layer_defaults={"num_layers": 28}, layers_key="num_layers")
