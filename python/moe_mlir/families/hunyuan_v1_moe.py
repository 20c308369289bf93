"""Hunyuan MoE (``model_type`` ``hunyuan_v1_moe``;
docs/families/hunyuan_v1_moe.md): softmax top-k always renormalized (a
weight of 1 for top-1), the router ``mlp.gate.wg``, SwiGLU experts and an
always-on ungated ``mlp.shared_mlp``, all of ``intermediate_size``
(``transformers`` reads neither ``moe_intermediate_size`` nor
``num_shared_expert``); ``num_experts`` and ``moe_topk`` are one value or
one per layer. Every layer is a MoE block."""

from __future__ import annotations

from typing import Any, Mapping

from ..emit import LayerSpec, hf_activation
from ..routing import Routing
from ._family import Family, dtypes_of, expert_names, swiglu_names

# HunYuanMoEV1Config's defaults of the keys the block reads.
BLOCK_DEFAULTS = {"hidden_size": 4096, "intermediate_size": 11008,
                  "num_experts": 1, "moe_topk": 1, "hidden_act": "silu"}


def _of_layer(value: Any, index: int, key: str) -> int:
    """An int, or the layer's entry of a per-layer list."""
    if isinstance(value, list):
        if not 0 <= index < len(value):
            raise ValueError(f"{key} lists {len(value)} layers; layer "
                             f"{index} has none")
        value = value[index]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key} must be an integer or a list of them, got "
                         f"{value!r}")
    return value


def layer(index: int, *, hidden_size: int, intermediate_size: int,
          num_experts: int | list[int], moe_topk: int | list[int],
          hidden_act: str = "silu", dtype: str = "bf16",
          dtypes: Mapping[str, str] | None = None,
          prefix: str = "model.layers") -> LayerSpec:
    """The MoE block of decoder layer ``index``."""
    block = f"{prefix}.{index}.mlp"
    shared = swiglu_names(f"{block}.shared_mlp")
    weights = {"router": f"{block}.gate.wg.weight", **expert_names(block),
               "shared_gate": shared["gate"], "shared_up": shared["up"],
               "shared_down": shared["down"]}
    return LayerSpec(
        hidden=hidden_size, intermediate=intermediate_size,
        num_experts=_of_layer(num_experts, index, "num_experts"),
        routing=Routing(top_k=_of_layer(moe_topk, index, "moe_topk"),
                        renormalize="selected"),
        weights=weights, dtypes=dtypes_of(weights, dtype, dtypes),
        activation=hf_activation(hidden_act),
        shared_intermediate=intermediate_size)


FAMILY = Family(name="hunyuan_v1_moe", model_types=("hunyuan_v1_moe",),
                block_defaults=BLOCK_DEFAULTS, build=layer,
                layer_defaults={"num_hidden_layers": 32})
