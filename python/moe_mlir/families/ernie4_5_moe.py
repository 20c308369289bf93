"""ERNIE 4.5 MoE (``model_type`` ``ernie4_5_moe``;
docs/families/ernie4_5_moe.md).

Softmax scores in float32; the top-k is chosen on the scores plus the
selection-only ``mlp.moe_statics.e_score_correction_bias`` (``[1, E]``,
bound through a view to ``[E]``), and the chosen unbiased scores are
divided by ``max(sum, moe_norm_min)``. The importer maps that to plain
renormalization: the clamp acts only when the chosen probabilities sum
below ``moe_norm_min`` (1e-12), which takes selection biases that beat
the best experts' probabilities for all k choices (the k largest
probabilities alone sum to at least k / E). A ``moe_norm_min`` above
1e-6, where the two could differ on real routers, is refused. ``moe_num_shared_experts`` shared experts are one SwiGLU
``mlp.shared_experts`` of that many times the expert width. With
``use_bias`` every expert projection has a bias (refused with shared
experts, whose biases ``moe.layer`` has no operand for). Layer i (0-based) is a
MoE block iff ``(i + 1) % moe_layer_interval == 0`` and
``moe_layer_start_index <= i <= moe_layer_end_index`` (``-1``: the last
layer).
"""

from __future__ import annotations

from typing import Mapping

from ..emit import EXPERT, LayerSpec, hf_activation
from ..routing import Routing
from ..views import View
from ._family import Family, Settings, dtypes_of, expert_names, swiglu_names

# Ernie4_5_MoeConfig's defaults of the keys the block reads.
BLOCK_DEFAULTS = {"hidden_size": 2560, "moe_intermediate_size": 1536,
                  "moe_num_experts": 64, "moe_k": 6,
                  "moe_num_shared_experts": 2, "moe_norm_min": 1e-12,
                  "use_bias": False, "hidden_act": "silu"}
LAYER_DEFAULTS = {"moe_layer_start_index": 1, "moe_layer_end_index": -1,
                  "moe_layer_interval": 1, "num_hidden_layers": 28}


def layer(index: int, *, hidden_size: int, moe_intermediate_size: int,
          moe_num_experts: int, moe_k: int, moe_num_shared_experts: int,
          moe_norm_min: float = 1e-12, use_bias: bool = False,
          hidden_act: str = "silu", dtype: str = "bf16",
          dtypes: Mapping[str, str] | None = None,
          prefix: str = "model.layers") -> LayerSpec:
    """The MoE block of decoder layer ``index``."""
    if moe_norm_min > 1e-6:
        raise ValueError(
            f"moe_norm_min = {moe_norm_min}: only values up to 1e-6 are "
            "supported (the importer renormalizes by the plain sum; a "
            "larger clamp could act)")
    shared = moe_intermediate_size * moe_num_shared_experts
    if use_bias and shared > 0:
        raise ValueError("use_bias with moe_num_shared_experts > 0: the "
                         "shared experts' biases have no moe.layer operand")
    block = f"{prefix}.{index}.mlp"
    weights = {"router": f"{block}.gate.weight",
               "score_bias": f"{block}.moe_statics.e_score_correction_bias",
               **expert_names(block)}
    if use_bias:
        for operand, proj in (("gate_bias", "gate_proj"),
                              ("up_bias", "up_proj"),
                              ("down_bias", "down_proj")):
            weights[operand] = f"{block}.experts.{EXPERT}.{proj}.bias"
    if shared > 0:
        names = swiglu_names(f"{block}.shared_experts")
        weights.update(shared_gate=names["gate"], shared_up=names["up"],
                       shared_down=names["down"])
    return LayerSpec(
        hidden=hidden_size, intermediate=moe_intermediate_size,
        num_experts=moe_num_experts,
        routing=Routing(top_k=moe_k, renormalize="selected",
                        selection_bias=True),
        weights=weights, dtypes=dtypes_of(weights, dtype, dtypes),
        activation=hf_activation(hidden_act),
        shared_intermediate=shared,
        views={"score_bias": View(source=(1, moe_num_experts),
                                  reshape=(moe_num_experts,))})


def _last_moe_layer(settings: Settings) -> int:
    end = settings.integer("moe_layer_end_index")
    return settings.integer("num_hidden_layers") - 1 if end == -1 else end


def is_moe_layer(settings: Settings, index: int) -> bool:
    interval = settings.integer("moe_layer_interval")
    return (interval > 0 and (index + 1) % interval == 0 and
            settings.integer("moe_layer_start_index") <= index
            <= _last_moe_layer(settings))


def dense_reason(settings: Settings, index: int) -> str:
    return (f"moe_layer_start_index = {settings['moe_layer_start_index']}, "
            f"moe_layer_end_index = {settings['moe_layer_end_index']}, "
            f"moe_layer_interval = {settings['moe_layer_interval']}")


FAMILY = Family(name="ernie4_5_moe", model_types=("ernie4_5_moe",),
                block_defaults=BLOCK_DEFAULTS, build=layer,
                layer_defaults=LAYER_DEFAULTS, is_moe_layer=is_moe_layer,
                dense_reason=dense_reason)
