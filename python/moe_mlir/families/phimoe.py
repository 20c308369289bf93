"""Phi-3.5-MoE (``model_type`` ``phimoe``; docs/families/phimoe.md):
Mixtral's names (``block_sparse_moe``, ``experts.{e}.w1/w3/w2``, router
``gate``) with sparsemixer routing: the two largest logits are the
choices, each weighted by the softmax, at its expert, of the logits within
a relative ``2 * router_jitter_noise`` of it (the second with the first
left out); not renormalized (``#moe.routing<sparsemixer, top_k = 2,
jitter = router_jitter_noise>``). ``transformers`` v4.57 always routes to
two experts whatever ``num_experts_per_tok`` says, and so does the
importer. Every layer is a MoE block.
"""

from __future__ import annotations

from typing import Mapping

from ..emit import LayerSpec, hf_activation
from ..routing import Routing
from . import mixtral
from ._family import Family, dtypes_of

# PhimoeConfig's defaults of the keys the block reads.
BLOCK_DEFAULTS = {"hidden_size": 4096, "intermediate_size": 6400,
                  "num_local_experts": 16, "router_jitter_noise": 0.01,
                  "hidden_act": "silu"}


def layer(index: int, *, hidden_size: int, intermediate_size: int,
          num_local_experts: int, router_jitter_noise: float = 0.01,
          hidden_act: str = "silu", dtype: str = "bf16",
          dtypes: Mapping[str, str] | None = None,
          prefix: str = "model.layers") -> LayerSpec:
    """The MoE block of decoder layer ``index``."""
    weights = mixtral.block_weights(f"{prefix}.{index}.block_sparse_moe")
    return LayerSpec(
        hidden=hidden_size, intermediate=intermediate_size,
        num_experts=num_local_experts,
        routing=Routing(scoring="sparsemixer", top_k=2,
                        jitter=float(router_jitter_noise)),
        weights=weights, dtypes=dtypes_of(weights, dtype, dtypes),
        activation=hf_activation(hidden_act))


FAMILY = Family(name="phimoe", model_types=("phimoe",),
                block_defaults=BLOCK_DEFAULTS, build=layer,
                layer_defaults={"num_hidden_layers": 32})
