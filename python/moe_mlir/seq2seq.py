"""Encoder-decoder MoE families: Switch Transformers and NLLB-MoE.

The two Hugging Face families whose checkpoints carry capacity-limited
routing (docs/Importing.md). Their MoE blocks sit in an encoder and a decoder
stack, so a layer is addressed as ``encoder.N`` or ``decoder.N``; the
``[T, H]`` input of one call is one sequence, i.e. one capacity group.

- ``switch_transformers``: top-1 softmax routing with a fixed
  ``expert_capacity`` (position priority; a dropped token's MoE output is 0),
  ReLU experts ``wi``/``wo`` without biases.
- ``nllb_moe``: GShard top-2 with capacity ``ceil(moe_eval_capacity_token_
  fraction * T)`` (``expert_capacity`` when the fraction is 0), all first
  choices before second choices, optional batch-priority routing, weights
  renormalized over the kept choices (or before dropping with
  ``normalize_router_prob_before_dropping``), biased ReLU experts
  ``fc1``/``fc2``, and the routed output scaled by ``1 - moe_token_dropout``
  (inference). ``second_expert_policy = random`` becomes ``second = random``
  (the layer takes uniform samples); ``sampling`` (Gumbel noise) is refused.
"""

from __future__ import annotations

from typing import Any, Mapping

from .emit import EXPERT, LayerSpec, hf_activation
from .routing import Routing

__all__ = [
    "FAMILIES",
    "LayerAddress",
    "is_sparse_block",
    "num_blocks",
    "parse_address",
    "spec_from_config",
]

FAMILIES = ("switch_transformers", "nllb_moe")
"""The encoder-decoder families the importer reads (canonical names)."""

SPELLINGS = {"switch_transformers": "switch_transformers",
             "nllb-moe": "nllb_moe", "nllb_moe": "nllb_moe"}
"""``model_type`` as ``config.json`` files spell it -> the family
(``transformers`` writes ``nllb-moe``)."""

STACKS = ("encoder", "decoder")

#: ``(stack, block index)``.
LayerAddress = tuple[str, int]


def parse_address(text: str) -> LayerAddress | None:
    """``"encoder.3"`` -> ``("encoder", 3)``; None when ``text`` is not of
    that form."""
    stack, _, index = str(text).strip().partition(".")
    if stack not in STACKS or not index.isdigit():
        return None
    return stack, int(index)


def _int(config: Mapping[str, Any], key: str, default: int | None = None
         ) -> int:
    value = config.get(key, default)
    if value is None:
        raise ValueError(f"config.json lacks {key}")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"config.json {key} must be a non-negative integer, "
                         f"got {value!r}")
    return value


def num_blocks(config: Mapping[str, Any], stack: str) -> int:
    """The number of blocks of ``stack``."""
    if config["model_type"] == "switch_transformers":
        layers = _int(config, "num_layers", 12)
        if stack == "decoder":
            return _int(config, "num_decoder_layers", layers)
        return layers
    return _int(config, f"{stack}_layers", 12)


def is_sparse_block(config: Mapping[str, Any], stack: str,
                    index: int) -> bool:
    """Whether block ``index`` of ``stack`` is a MoE block.

    Switch: ``step = blocks // num_sparse_<stack>_layers``; block i is sparse
    iff ``i % step == 1`` or ``step == 1`` (none when there are no sparse
    layers). NLLB-MoE: iff ``(i + 1) % <stack>_sparse_step == 0`` (none when
    the step is 0).
    """
    if config["model_type"] == "switch_transformers":
        sparse = _int(config, f"num_sparse_{stack}_layers", 3)
        if sparse == 0:
            return False
        step = max(1, num_blocks(config, stack) // sparse)
        return step == 1 or index % step == 1
    step = _int(config, f"{stack}_sparse_step", 4)
    return step > 0 and (index + 1) % step == 0


def sparse_blocks(config: Mapping[str, Any], stack: str) -> list[int]:
    """The MoE blocks of ``stack``."""
    return [i for i in range(num_blocks(config, stack))
            if is_sparse_block(config, stack, i)]


def _no_router_bias(config: Mapping[str, Any]) -> None:
    if config.get("router_bias"):
        raise ValueError("config.json router_bias = true is not supported "
                         "(moe.layer routers have no bias)")


def switch_transformers(stack: str, index: int, *, d_model: int, d_ff: int,
                        num_experts: int, expert_capacity: int,
                        dense_act_fn: str = "relu", dtype: str = "f32",
                        dtypes: Mapping[str, str] | None = None) -> LayerSpec:
    """The sparse MLP of Switch Transformers block ``index`` of ``stack``
    (encoder blocks hold it in ``layer.1``, decoder blocks in ``layer.2``)."""
    sub = 1 if stack == "encoder" else 2
    block = f"{stack}.block.{index}.layer.{sub}.mlp"
    weights = {"router": f"{block}.router.classifier.weight",
               "expert_up": f"{block}.experts.expert_{EXPERT}.wi.weight",
               "expert_down": f"{block}.experts.expert_{EXPERT}.wo.weight"}
    return LayerSpec(
        hidden=d_model, intermediate=d_ff, num_experts=num_experts,
        routing=Routing(top_k=1, capacity_kind="fixed",
                        fixed_capacity=expert_capacity),
        weights=weights,
        dtypes={op: (dtypes or {}).get(op, dtype) for op in weights},
        activation=hf_activation(dense_act_fn))


def nllb_moe(stack: str, index: int, *, d_model: int, ffn_dim: int,
             num_experts: int, moe_eval_capacity_token_fraction: float,
             expert_capacity: int | None, batch_prioritized_routing: bool,
             normalize_router_prob_before_dropping: bool,
             second_expert_policy: str, moe_token_dropout: float,
             activation_function: str = "relu", dtype: str = "f32",
             dtypes: Mapping[str, str] | None = None) -> LayerSpec:
    """The sparse FFN of NLLB-MoE layer ``index`` of ``stack``."""
    if second_expert_policy not in ("all", "random"):
        raise ValueError(f"second_expert_policy '{second_expert_policy}' is "
                         "random at inference (Gumbel sampling); supported: "
                         "all, random (explicit uniform samples)")
    if moe_eval_capacity_token_fraction > 0:
        capacity: dict[str, Any] = {
            "capacity_kind": "fraction",
            "capacity_factor": float(moe_eval_capacity_token_fraction)}
    elif expert_capacity is not None:
        capacity = {"capacity_kind": "fixed",
                    "fixed_capacity": expert_capacity}
    else:
        raise ValueError("config.json needs moe_eval_capacity_token_fraction "
                         "> 0 or expert_capacity")
    if not 0 <= moe_token_dropout < 1:
        raise ValueError(f"config.json moe_token_dropout must be in [0, 1), "
                         f"got {moe_token_dropout!r}")
    block = f"model.{stack}.layers.{index}.ffn"
    expert = f"{block}.experts.expert_{EXPERT}"
    weights = {"router": f"{block}.router.classifier.weight",
               "expert_up": f"{expert}.fc1.weight",
               "expert_down": f"{expert}.fc2.weight",
               "up_bias": f"{expert}.fc1.bias",
               "down_bias": f"{expert}.fc2.bias"}
    routing = Routing(
        top_k=2,
        renormalize=("selected" if normalize_router_prob_before_dropping
                     else "kept"),
        scale=1.0 - float(moe_token_dropout),
        priority="score" if batch_prioritized_routing else "position",
        second_policy=second_expert_policy, **capacity)
    return LayerSpec(
        hidden=d_model, intermediate=ffn_dim, num_experts=num_experts,
        routing=routing, weights=weights,
        dtypes={op: (dtypes or {}).get(op, dtype) for op in weights},
        activation=hf_activation(activation_function))


def spec_from_config(config: Mapping[str, Any], stack: str, index: int,
                     dtype: str = "f32",
                     dtypes: Mapping[str, str] | None = None) -> LayerSpec:
    """The spec of MoE block ``index`` of ``stack`` of a ``config.json``.

    Raises:
        ValueError: a missing or bad key, or a setting the layer cannot
            express.
    """
    _no_router_bias(config)
    if config["model_type"] == "switch_transformers":
        act = config.get("dense_act_fn") or str(
            config.get("feed_forward_proj", "relu")).split("-")[-1]
        return switch_transformers(
            stack, index, d_model=_int(config, "d_model"),
            d_ff=_int(config, "d_ff"),
            num_experts=_int(config, "num_experts"),
            expert_capacity=_int(config, "expert_capacity", 64),
            dense_act_fn=act, dtype=dtype, dtypes=dtypes)
    fraction = config.get("moe_eval_capacity_token_fraction", 1.0)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
        raise ValueError("config.json moe_eval_capacity_token_fraction must "
                         f"be a number, got {fraction!r}")
    capacity = config.get("expert_capacity", 64)
    return nllb_moe(
        stack, index, d_model=_int(config, "d_model"),
        ffn_dim=_int(config, f"{stack}_ffn_dim"),
        num_experts=_int(config, "num_experts"),
        moe_eval_capacity_token_fraction=float(fraction),
        expert_capacity=None if capacity is None else _int(
            config, "expert_capacity"),
        batch_prioritized_routing=bool(
            config.get("batch_prioritized_routing", False)),
        normalize_router_prob_before_dropping=bool(
            config.get("normalize_router_prob_before_dropping", False)),
        second_expert_policy=str(config.get("second_expert_policy", "all")),
        moe_token_dropout=float(config.get("moe_token_dropout", 0.2)),
        activation_function=str(config.get("activation_function", "relu")),
        dtype=dtype, dtypes=dtypes)
