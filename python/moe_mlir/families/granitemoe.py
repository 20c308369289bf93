"""Granite-MoE (``model_type`` ``granitemoe``), with a shared MLP
(``granitemoeshared``) and in the Mamba hybrid (``granitemoehybrid``;
docs/families/granitemoe*.md).

Every layer's ``block_sparse_moe`` routes with ``router.layer`` (top-k of
the logits, then a softmax over those k: the renormalized softmax top-k)
to experts stored fused: ``input_linear.weight`` ``[E, 2I, H]`` holds each
expert's gate rows then its up rows, ``output_linear.weight`` ``[E, H, I]``
its down projection; both bind whole, the halves as views
(:mod:`moe_mlir.views`). ``shared_mlp`` (``input_linear`` ``[2S, H]`` gate
then up, ``output_linear`` ``[H, S]``), when ``shared_intermediate_size``
is positive, is added ungated. The multipliers (``residual_multiplier``
and the others) act outside the block.
"""

from __future__ import annotations

from typing import Mapping

from ..emit import LayerSpec, hf_activation
from ..routing import Routing
from ..views import View
from ._family import Family, Settings, dtypes_of, fused_halves

# GraniteMoeConfig's defaults of the keys the block reads (it has no
# shared MLP: shared_intermediate_size is not its key).
BLOCK_DEFAULTS = {"hidden_size": 4096, "intermediate_size": 11008,
                  "num_local_experts": 8, "num_experts_per_tok": 2,
                  "hidden_act": "silu"}


def layer(index: int, *, hidden_size: int, intermediate_size: int,
          num_local_experts: int, num_experts_per_tok: int,
          hidden_act: str = "silu", shared_intermediate_size: int = 0,
          dtype: str = "bf16", dtypes: Mapping[str, str] | None = None,
          prefix: str = "model.layers",
          module: str = "block_sparse_moe") -> LayerSpec:
    """The MoE block (and shared MLP) of decoder layer ``index``, named
    ``module`` in the layer."""
    h, i, e = hidden_size, intermediate_size, num_local_experts
    block = f"{prefix}.{index}.{module}"
    fused = f"{block}.input_linear.weight"
    gate, up = fused_halves((e, 2 * i, h), axis=1, width=i, transposed=False)
    weights = {"router": f"{block}.router.layer.weight",
               "expert_gate": fused, "expert_up": fused,
               "expert_down": f"{block}.output_linear.weight"}
    views = {"expert_gate": gate, "expert_up": up,
             "expert_down": View(source=(e, h, i))}
    s = shared_intermediate_size
    if s > 0:
        shared = f"{prefix}.{index}.shared_mlp"
        gate, up = fused_halves((2 * s, h), axis=0, width=s,
                                transposed=False)
        weights.update(shared_gate=f"{shared}.input_linear.weight",
                       shared_up=f"{shared}.input_linear.weight",
                       shared_down=f"{shared}.output_linear.weight")
        views.update(shared_gate=gate, shared_up=up)
    return LayerSpec(
        hidden=h, intermediate=i, num_experts=e,
        routing=Routing(top_k=num_experts_per_tok, renormalize="selected"),
        weights=weights, dtypes=dtypes_of(weights, dtype, dtypes),
        activation=hf_activation(hidden_act),
        shared_intermediate=max(s, 0), views=views)


def _has_experts(settings: Settings, index: int) -> bool:
    return settings.integer("num_local_experts") > 0


def _no_experts(settings: Settings, index: int) -> str:
    return "num_local_experts = 0 (the shared MLP alone is dense)"


FAMILY = Family(name="granitemoe", model_types=("granitemoe",),
                block_defaults=BLOCK_DEFAULTS, build=layer,
                layer_defaults={"num_hidden_layers": 32},
                is_moe_layer=_has_experts, dense_reason=_no_experts)
SHARED = Family(name="granitemoeshared", model_types=("granitemoeshared",),
                block_defaults={**BLOCK_DEFAULTS,
                                "shared_intermediate_size": 0},
                build=layer,
                layer_defaults={"num_hidden_layers": 32},
                is_moe_layer=_has_experts, dense_reason=_no_experts)
HYBRID = Family(name="granitemoehybrid", model_types=("granitemoehybrid",),
                block_defaults={**BLOCK_DEFAULTS,
                                "shared_intermediate_size": 1024},
                build=layer, layer_defaults={"num_hidden_layers": 32},
                is_moe_layer=_has_experts, dense_reason=_no_experts)
