"""JetMoE (``model_type`` ``jetmoe``; docs/families/jetmoe.md): every
layer's ``mlp`` is Granite-MoE's block (``router.layer``, top-k of the
logits then a softmax over those k, fused ``input_linear`` ``[E, 2I, H]``
gate rows first, ``output_linear`` ``[E, H, I]``; activation from
``activation_function``) plus a learned output ``mlp.bias`` ``[H]`` added
once per token after the combine.

The block's k weights sum to 1, so ``sum_j w_j (y_j + b) = sum_j w_j y_j +
b``: the bias binds as every expert's down-projection bias (the ``[H]``
tensor repeated over the experts by a view), which is the output bias up
to rounding. The mixture of attention (``self_attention.experts``) is
attention, outside the MoE block.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

from ..emit import LayerSpec
from ..views import View
from . import granitemoe
from ._family import Family

# JetMoeConfig's defaults of the keys the block reads.
BLOCK_DEFAULTS = {"hidden_size": 2048, "intermediate_size": 5632,
                  "num_local_experts": 8, "num_experts_per_tok": 2,
                  "activation_function": "silu"}


def layer(index: int, *, hidden_size: int, intermediate_size: int,
          num_local_experts: int, num_experts_per_tok: int,
          activation_function: str = "silu", dtype: str = "bf16",
          dtypes: Mapping[str, str] | None = None,
          prefix: str = "model.layers") -> LayerSpec:
    """The MoE block of decoder layer ``index``."""
    spec = granitemoe.layer(
        index, hidden_size=hidden_size, intermediate_size=intermediate_size,
        num_local_experts=num_local_experts,
        num_experts_per_tok=num_experts_per_tok,
        hidden_act=activation_function, dtype=dtype, dtypes=dtypes,
        prefix=prefix, module="mlp")
    bias = View(source=(hidden_size,), repeat=num_local_experts)
    name = f"{prefix}.{index}.mlp.bias"
    return dataclasses.replace(
        spec, weights={**spec.weights, "down_bias": name},
        dtypes={**spec.dtypes,
                "down_bias": (dtypes or {}).get("down_bias", dtype)},
        views={**spec.views, "down_bias": bias})


FAMILY = Family(name="jetmoe", model_types=("jetmoe",),
                block_defaults=BLOCK_DEFAULTS, build=layer,
                layer_defaults={"num_hidden_layers": 12})
