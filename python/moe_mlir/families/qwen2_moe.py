"""Qwen2-MoE (``model_type`` ``qwen2_moe``; docs/families/README.md):
softmax top-k, renormalized iff ``norm_topk_prob``, and a SwiGLU shared
expert behind ``sigmoid(x @ shared_expert_gate^T)``; layer i is a MoE
block unless it is in ``mlp_only_layers`` or ``(i + 1) %
decoder_sparse_step != 0``. Qwen3-MoE has the same block without the
shared expert."""

from __future__ import annotations

from typing import Mapping

from ..emit import LayerSpec, hf_activation
from ..routing import Routing
from ._family import Family, Settings, dtypes_of, expert_names, swiglu_names

# Qwen2MoeConfig's defaults of the keys the block reads.
BLOCK_DEFAULTS = {"hidden_size": 2048, "moe_intermediate_size": 1408,
                  "num_experts": 60, "num_experts_per_tok": 4,
                  "shared_expert_intermediate_size": 5632,
                  "norm_topk_prob": False, "hidden_act": "silu"}
LAYER_DEFAULTS = {"decoder_sparse_step": 1, "mlp_only_layers": [],
                  "num_hidden_layers": 24}


def layer(index: int, *, hidden_size: int, moe_intermediate_size: int,
          num_experts: int, num_experts_per_tok: int,
          shared_expert_intermediate_size: int,
          norm_topk_prob: bool = False, hidden_act: str = "silu",
          dtype: str = "bf16", dtypes: Mapping[str, str] | None = None,
          prefix: str = "model.layers") -> LayerSpec:
    """The MoE block of decoder layer ``index`` (no shared expert when
    ``shared_expert_intermediate_size`` is 0). Arguments as
    :func:`moe_mlir.families.mixtral.layer`, with the Qwen2-MoE keys."""
    block = f"{prefix}.{index}.mlp"
    shared = shared_expert_intermediate_size > 0
    weights = {"router": f"{block}.gate.weight", **expert_names(block)}
    if shared:
        names = swiglu_names(f"{block}.shared_expert")
        weights.update(shared_gate=names["gate"], shared_up=names["up"],
                       shared_down=names["down"],
                       shared_expert_gate=f"{block}.shared_expert_gate.weight")
    return LayerSpec(
        hidden=hidden_size, intermediate=moe_intermediate_size,
        num_experts=num_experts,
        routing=Routing(top_k=num_experts_per_tok,
                        renormalize="selected" if norm_topk_prob else "none"),
        weights=weights, dtypes=dtypes_of(weights, dtype, dtypes),
        activation=hf_activation(hidden_act),
        shared_intermediate=shared_expert_intermediate_size)


def _sparse_step(settings: Settings) -> int:
    step = settings.integer("decoder_sparse_step")
    if step < 1:
        raise ValueError("config.json: decoder_sparse_step must be at least "
                         f"1, got {step}")
    return step


def is_moe_layer(settings: Settings, index: int) -> bool:
    return (index not in settings.integers("mlp_only_layers")
            and settings.integer("num_experts") > 0
            and (index + 1) % _sparse_step(settings) == 0)


def dense_reason(settings: Settings, index: int) -> str:
    if index in settings.integers("mlp_only_layers"):
        return "it is in mlp_only_layers"
    if settings.integer("num_experts") <= 0:
        return "num_experts = 0"
    return (f"decoder_sparse_step = {settings.get('decoder_sparse_step')} "
            "makes it dense")


FAMILY = Family(name="qwen2_moe", model_types=("qwen2_moe",),
                block_defaults=BLOCK_DEFAULTS, build=layer,
                layer_defaults=LAYER_DEFAULTS, is_moe_layer=is_moe_layer,
                dense_reason=dense_reason)
