"""Mixtral (``model_type`` ``mixtral``; docs/families/README.md): softmax
top-k, always renormalized; every layer a MoE block,
``block_sparse_moe`` with ``w1``/``w3``/``w2`` = gate/up/down."""

from __future__ import annotations

from typing import Mapping

from ..emit import EXPERT, LayerSpec, hf_activation
from ..routing import Routing
from ._family import Family, dtypes_of

# MixtralConfig's defaults of the keys the block reads.
BLOCK_DEFAULTS = {"hidden_size": 4096, "intermediate_size": 14336,
                  "num_local_experts": 8, "num_experts_per_tok": 2,
                  "hidden_act": "silu"}


def layer(index: int, *, hidden_size: int, intermediate_size: int,
          num_local_experts: int, num_experts_per_tok: int,
          hidden_act: str = "silu", dtype: str = "bf16",
          dtypes: Mapping[str, str] | None = None,
          prefix: str = "model.layers") -> LayerSpec:
    """The MoE block of decoder layer ``index``.

    Args:
        hidden_size, intermediate_size, num_local_experts,
        num_experts_per_tok, hidden_act: the ``config.json`` values.
        dtype: the element type of every weight in the checkpoint.
        dtypes: per-operand overrides of ``dtype``.
        prefix: the name prefix of the decoder layers.
    """
    weights = block_weights(f"{prefix}.{index}.block_sparse_moe")
    return LayerSpec(
        hidden=hidden_size, intermediate=intermediate_size,
        num_experts=num_local_experts,
        routing=Routing(top_k=num_experts_per_tok, renormalize="selected"),
        weights=weights, dtypes=dtypes_of(weights, dtype, dtypes),
        activation=hf_activation(hidden_act))


def block_weights(block: str) -> dict[str, str]:
    """The router ``gate`` and the experts ``experts.{e}.w1/w3/w2``
    (gate/up/down) of a ``block_sparse_moe`` (also Phi-3.5-MoE's)."""
    return {"router": f"{block}.gate.weight",
            "expert_gate": f"{block}.experts.{EXPERT}.w1.weight",
            "expert_up": f"{block}.experts.{EXPERT}.w3.weight",
            "expert_down": f"{block}.experts.{EXPERT}.w2.weight"}


FAMILY = Family(name="mixtral", model_types=("mixtral",),
                block_defaults=BLOCK_DEFAULTS, build=layer,
                layer_defaults={"num_hidden_layers": 32})
