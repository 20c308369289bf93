"""Llama 4 (``model_type`` ``llama4``, its text model in ``text_config``
with layers ``language_model.model.layers``; ``llama4_text``, flat, layers
``model.layers``; docs/families/llama4.md).

``feed_forward.router`` picks the top-k logits; each chosen expert's
weight is the sigmoid of its logit (no softmax, no renormalization) and
scales the expert's **input**, not its output (``moe.layer``'s
``weight_inputs``). The experts are stored fused and transposed like
Qwen3-VL-MoE's (``experts.gate_up_proj`` ``[E, H, 2I]``, gate columns
first; ``experts.down_proj`` ``[E, I, H]``), read through views; the
``shared_expert`` (SwiGLU of ``intermediate_size``) is added ungated on
the unscaled tokens. MoE layers: ``moe_layers`` when given, else every
``interleave_moe_layer_step``-th layer from ``step - 1``.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

from ..emit import LayerSpec, hf_activation
from ..routing import Routing
from ._family import (Family, Settings, dtypes_of, swiglu_names,
                      transposed_experts)

# Llama4TextConfig's defaults of the keys the block reads.
BLOCK_DEFAULTS = {"hidden_size": 5120, "intermediate_size": 8192,
                  "num_local_experts": 16, "num_experts_per_tok": 1,
                  "hidden_act": "silu"}
LAYER_DEFAULTS = {"moe_layers": None, "interleave_moe_layer_step": 1,
                  "num_hidden_layers": 48}


def layer(index: int, *, hidden_size: int, intermediate_size: int,
          num_local_experts: int, num_experts_per_tok: int,
          hidden_act: str = "silu", dtype: str = "bf16",
          dtypes: Mapping[str, str] | None = None,
          prefix: str = "language_model.model.layers") -> LayerSpec:
    """The MoE block of decoder layer ``index``."""
    h, i, e = hidden_size, intermediate_size, num_local_experts
    block = f"{prefix}.{index}.feed_forward"
    experts, views = transposed_experts(f"{block}.experts", e, h, i)
    shared = swiglu_names(f"{block}.shared_expert")
    weights = {"router": f"{block}.router.weight", **experts,
               "shared_gate": shared["gate"], "shared_up": shared["up"],
               "shared_down": shared["down"]}
    return LayerSpec(
        hidden=h, intermediate=i, num_experts=e,
        routing=Routing(scoring="sigmoid", top_k=num_experts_per_tok),
        weights=weights, dtypes=dtypes_of(weights, dtype, dtypes),
        activation=hf_activation(hidden_act), shared_intermediate=i,
        views=views, weight_inputs=True)


def _moe_layers(settings: Settings) -> list[int]:
    if settings.get("moe_layers") is not None:
        return settings.integers("moe_layers")
    step = settings.integer("interleave_moe_layer_step")
    if step < 1:
        raise ValueError("config.json: interleave_moe_layer_step must be at "
                         f"least 1, got {step}")
    return list(range(step - 1, settings.integer("num_hidden_layers"), step))


def is_moe_layer(settings: Settings, index: int) -> bool:
    return index in _moe_layers(settings)


def dense_reason(settings: Settings, index: int) -> str:
    if settings.get("moe_layers") is not None:
        return "it is not in moe_layers"
    return (f"interleave_moe_layer_step = "
            f"{settings['interleave_moe_layer_step']} makes it dense")


TEXT = Family(name="llama4_text", model_types=("llama4_text",),
              block_defaults=BLOCK_DEFAULTS, build=layer,
              layer_defaults=LAYER_DEFAULTS, is_moe_layer=is_moe_layer,
              dense_reason=dense_reason)
FAMILY = dataclasses.replace(
    TEXT, name="llama4", model_types=("llama4",),
    prefix="language_model.model.layers", text_config=("text_config",))
