"""Jamba (``model_type`` ``jamba``; docs/families/jamba.md): softmax top-k
without renormalization; the router is ``feed_forward.router``, the SwiGLU
experts ``feed_forward.experts.{e}.{gate,up,down}_proj``. Layer i is a MoE
block iff ``num_experts > 1`` and ``i % expert_layer_period ==
expert_layer_offset`` (attention or Mamba mixer alike)."""

from __future__ import annotations

from typing import Mapping

from ..emit import LayerSpec, hf_activation
from ..routing import Routing
from ._family import Family, Settings, dtypes_of, expert_names

# JambaConfig's defaults of the keys the block reads.
BLOCK_DEFAULTS = {"hidden_size": 4096, "intermediate_size": 14336,
                  "num_experts": 16, "num_experts_per_tok": 2,
                  "hidden_act": "silu"}
LAYER_DEFAULTS = {"expert_layer_period": 2, "expert_layer_offset": 1,
                  "num_hidden_layers": 32}


def layer(index: int, *, hidden_size: int, intermediate_size: int,
          num_experts: int, num_experts_per_tok: int,
          hidden_act: str = "silu", dtype: str = "bf16",
          dtypes: Mapping[str, str] | None = None,
          prefix: str = "model.layers") -> LayerSpec:
    """The MoE block of decoder layer ``index``."""
    block = f"{prefix}.{index}.feed_forward"
    weights = {"router": f"{block}.router.weight", **expert_names(block)}
    return LayerSpec(
        hidden=hidden_size, intermediate=intermediate_size,
        num_experts=num_experts, routing=Routing(top_k=num_experts_per_tok),
        weights=weights, dtypes=dtypes_of(weights, dtype, dtypes),
        activation=hf_activation(hidden_act))


def is_moe_layer(settings: Settings, index: int) -> bool:
    period = settings.integer("expert_layer_period")
    if period < 1:
        raise ValueError("config.json: expert_layer_period must be at least "
                         f"1, got {period}")
    return (settings.integer("num_experts") > 1 and
            index % period == settings.integer("expert_layer_offset"))


def dense_reason(settings: Settings, index: int) -> str:
    if settings["num_experts"] <= 1:
        return f"num_experts = {settings['num_experts']}"
    return (f"expert_layer_period = {settings['expert_layer_period']}, "
            f"expert_layer_offset = {settings['expert_layer_offset']}")


FAMILY = Family(name="jamba", model_types=("jamba",),
                block_defaults=BLOCK_DEFAULTS, build=layer,
                layer_defaults=LAYER_DEFAULTS, is_moe_layer=is_moe_layer,
                dense_reason=dense_reason)
