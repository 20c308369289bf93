"""MiniMax (``model_type`` ``minimax``; docs/families/minimax.md): Mixtral's
block under Mixtral's names (``block_sparse_moe``, ``w1``/``w3``/``w2``),
softmax top-k always renormalized; every layer a MoE block (its
``layer_types`` choose only the attention). The decoder layer's scaled
residuals stay outside the block."""

from __future__ import annotations

from . import mixtral
from ._family import Family

# MiniMaxConfig's defaults of the keys the block reads.
BLOCK_DEFAULTS = {"hidden_size": 4096, "intermediate_size": 14336,
                  "num_local_experts": 8, "num_experts_per_tok": 2,
                  "hidden_act": "silu"}

FAMILY = Family(name="minimax", model_types=("minimax",),
                block_defaults=BLOCK_DEFAULTS, build=mixtral.layer,
                layer_defaults={"num_hidden_layers": 32})
