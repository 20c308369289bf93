"""DeepSeek-V2 (``model_type`` ``deepseek_v2``; docs/families/README.md):
softmax scores, no bias; ``topk_method`` ``greedy`` (the default) is a
plain top-k, ``group_limited_greedy`` keeps the ``topk_group`` groups of
largest max score among ``n_group``; the weights are the selected scores
times ``routed_scaling_factor``. Shared experts and the MoE-layer rule
(``first_k_dense_replace``, default 0) as DeepSeek-V3's.

``transformers`` v4.57 never renormalizes the weights (it keeps
``norm_topk_prob`` but does not read it); DeepSeek's release code
renormalizes (and does not scale) when it is true. The importer follows
``transformers``; the released V2 checkpoints set it false, where the two
agree.
"""

from __future__ import annotations

from typing import Mapping

from ..emit import LayerSpec
from ..routing import Routing
from . import deepseek_v3
from ._family import Family

# DeepseekV2Config's defaults of the keys the block reads (no default
# top-k, and groups only with group_limited_greedy).
BLOCK_DEFAULTS = {"hidden_size": 4096, "moe_intermediate_size": 1407,
                  "n_routed_experts": 64, "num_experts_per_tok": None,
                  "n_group": None, "topk_group": None,
                  "routed_scaling_factor": 1.0, "n_shared_experts": 2,
                  "topk_method": "greedy", "hidden_act": "silu"}
LAYER_DEFAULTS = {"first_k_dense_replace": 0, "num_hidden_layers": 32}


def layer(index: int, *, hidden_size: int, moe_intermediate_size: int,
          n_routed_experts: int, num_experts_per_tok: int,
          n_group: int | None = None, topk_group: int | None = None,
          routed_scaling_factor: float = 1.0, n_shared_experts: int = 0,
          topk_method: str = "greedy", hidden_act: str = "silu",
          dtype: str = "bf16", dtypes: Mapping[str, str] | None = None,
          prefix: str = "model.layers") -> LayerSpec:
    """The MoE block of decoder layer ``index``.

    Raises:
        ValueError: another ``topk_method``, or ``group_limited_greedy``
            without ``n_group`` and ``topk_group``.
    """
    if topk_method not in ("greedy", "group_limited_greedy"):
        raise ValueError(f"unsupported DeepSeek-V2 topk_method "
                         f"'{topk_method}'")
    group_fields = {}
    if topk_method == "group_limited_greedy":
        if n_group is None or topk_group is None:
            raise ValueError("topk_method group_limited_greedy needs n_group "
                             "and topk_group")
        group_fields = deepseek_v3.groups(n_group, topk_group, "max")
    block = f"{prefix}.{index}.mlp"
    weights = deepseek_v3.block_weights(block, False, n_shared_experts > 0)
    routing = Routing(top_k=num_experts_per_tok, scale=routed_scaling_factor,
                      **group_fields)
    return deepseek_v3.block_spec(
        weights, routing, hidden_size=hidden_size,
        moe_intermediate_size=moe_intermediate_size,
        n_routed_experts=n_routed_experts, n_shared_experts=n_shared_experts,
        hidden_act=hidden_act, dtype=dtype, dtypes=dtypes)


FAMILY = Family(name="deepseek_v2", model_types=("deepseek_v2",),
                block_defaults=BLOCK_DEFAULTS, build=layer,
                layer_defaults=LAYER_DEFAULTS,
                is_moe_layer=deepseek_v3.is_moe_layer,
                dense_reason=deepseek_v3.dense_reason,
                required=("num_experts_per_tok",))
