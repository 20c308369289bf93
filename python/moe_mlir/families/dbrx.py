"""DBRX (``model_type`` ``dbrx``; docs/families/dbrx.md): every block's
``transformer.blocks.N.ffn`` routes with ``router.layer`` (softmax, top-k)
and divides the k weights by their L_p norm, ``p =
ffn_config.moe_normalize_expert_weights`` (default 1: the weights over
their sum; ``null``: not at all). The experts are stored fused over E:
``experts.mlp.w1`` (gate) and ``v1`` (up) ``[E*I, H]``, and ``w2``
``[E*I, H]``, each expert's down projection as ``[I, H]`` (``h @ w2_e``):
all three bind whole, read through views (reshape, and a transpose for
``w2``). The MoE keys are in ``ffn_config``, ``d_model`` and ``n_layers``
at the top level.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..emit import LayerSpec, hf_activation
from ..routing import Routing
from ..views import View
from ._family import Family, dtypes_of

# DbrxConfig's and DbrxFFNConfig's defaults of the keys the block reads.
BLOCK_DEFAULTS = {"d_model": 2048, "ffn_hidden_size": 3584,
                  "moe_num_experts": 4, "moe_top_k": 1,
                  "moe_normalize_expert_weights": 1.0, "ffn_act_fn": None}


def _activation(ffn_act_fn: Any) -> str:
    if ffn_act_fn is None:
        return "silu"
    if not isinstance(ffn_act_fn, Mapping) or \
            not isinstance(ffn_act_fn.get("name"), str):
        raise ValueError("ffn_config.ffn_act_fn must be an object with a "
                         f"name, got {ffn_act_fn!r}")
    return hf_activation(ffn_act_fn["name"])


def layer(index: int, *, d_model: int, ffn_hidden_size: int,
          moe_num_experts: int, moe_top_k: int,
          moe_normalize_expert_weights: float | None = 1.0,
          ffn_act_fn: Any = None, dtype: str = "bf16",
          dtypes: Mapping[str, str] | None = None,
          prefix: str = "transformer.blocks") -> LayerSpec:
    """The MoE block of block ``index``.

    Raises:
        ValueError: an L_p normalization other than p = 1 (the weights
            over their sum: L_1 of positive probabilities) or none, which
            no routing scheme expresses yet.
    """
    p = moe_normalize_expert_weights
    if p is not None and p != 1:
        raise ValueError(f"ffn_config.moe_normalize_expert_weights = {p}: "
                         "only 1 (renormalize) and null are supported")
    h, i, e = d_model, ffn_hidden_size, moe_num_experts
    experts = f"{prefix}.{index}.ffn.experts.mlp"
    weights = {"router": f"{prefix}.{index}.ffn.router.layer.weight",
               "expert_gate": f"{experts}.w1", "expert_up": f"{experts}.v1",
               "expert_down": f"{experts}.w2"}
    fused = View(source=(e * i, h), reshape=(e, i, h))
    views = {"expert_gate": fused, "expert_up": fused,
             "expert_down": View(source=(e * i, h), reshape=(e, i, h),
                                 permutation=(0, 2, 1))}
    return LayerSpec(
        hidden=h, intermediate=i, num_experts=e,
        routing=Routing(top_k=moe_top_k,
                        renormalize="none" if p is None else "selected"),
        weights=weights, dtypes=dtypes_of(weights, dtype, dtypes),
        activation=_activation(ffn_act_fn), views=views)


FAMILY = Family(name="dbrx", model_types=("dbrx",),
                block_defaults=BLOCK_DEFAULTS, build=layer,
                layer_defaults={"num_hidden_layers": 24},
                prefix="transformer.blocks", text_config=("ffn_config",),
                merge_top=True,
                aliases={"num_hidden_layers": "n_layers",
                         "d_model": "hidden_size"},
                nullable=("moe_normalize_expert_weights",))
