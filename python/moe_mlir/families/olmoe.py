"""OLMoE (``model_type`` ``olmoe``) and FlexOlmo (``flex_olmo``; early hub
configs ``olmoe2``): softmax top-k, renormalized iff ``norm_topk_prob``
(default false), SwiGLU experts ``mlp.experts.{e}.{gate,up,down}_proj``
behind the router ``mlp.gate``; every layer a MoE block
(docs/families/olmoe.md, flex_olmo.md). FlexOlmo's decoder layer norms
the block's output instead of its input, which stays outside the block."""

from __future__ import annotations

from typing import Mapping

from ..emit import LayerSpec
from . import qwen3_moe
from ._family import Family

# OlmoeConfig's and FlexOlmoConfig's defaults of the keys the block reads.
OLMOE_DEFAULTS = {"hidden_size": 2048, "intermediate_size": 2048,
                  "num_experts": 64, "num_experts_per_tok": 8,
                  "norm_topk_prob": False, "hidden_act": "silu"}
FLEX_OLMO_DEFAULTS = {"hidden_size": 4096, "intermediate_size": 11008,
                      "num_experts": 7, "num_experts_per_tok": 5,
                      "norm_topk_prob": False, "hidden_act": "silu"}


def layer(index: int, *, hidden_size: int, intermediate_size: int,
          num_experts: int, num_experts_per_tok: int,
          norm_topk_prob: bool = False, hidden_act: str = "silu",
          dtype: str = "bf16", dtypes: Mapping[str, str] | None = None,
          prefix: str = "model.layers") -> LayerSpec:
    """The MoE block of decoder layer ``index``: Qwen3-MoE's block with
    experts of ``intermediate_size``."""
    return qwen3_moe.layer(index, hidden_size=hidden_size,
                           moe_intermediate_size=intermediate_size,
                           num_experts=num_experts,
                           num_experts_per_tok=num_experts_per_tok,
                           norm_topk_prob=norm_topk_prob,
                           hidden_act=hidden_act, dtype=dtype, dtypes=dtypes,
                           prefix=prefix)


FAMILY = Family(name="olmoe", model_types=("olmoe",),
                block_defaults=OLMOE_DEFAULTS, build=layer,
                layer_defaults={"num_hidden_layers": 16})
FLEX_OLMO = Family(name="flex_olmo", model_types=("flex_olmo", "olmoe2"),
                   block_defaults=FLEX_OLMO_DEFAULTS, build=layer,
                   layer_defaults={"num_hidden_layers": 32})
