"""gpt-oss (``model_type`` ``gpt_oss``; docs/families/gpt_oss.md).

Every layer's ``mlp.router`` has a bias (``router.bias``, ``router_bias``);
the top-k logits are softmaxed among themselves (softmax, top-k,
renormalize). The experts are stored fused and transposed, gate and up in
alternate columns: ``experts.gate_up_proj`` ``[E, H, 2I]`` (``x @ W``;
even columns gate, odd up) with ``experts.gate_up_proj_bias`` ``[E, 2I]``
(same interleave), ``experts.down_proj`` ``[E, I, H]`` with
``down_proj_bias`` ``[E, H]``: bound whole, read through strided-slice and
transpose views. The activation is the clamped SwiGLU
(``clamped_swiglu``): ``alpha = 1.702``, ``limit = swiglu_limit`` (7.0
when absent; ``transformers``' bf16 path always uses 7.0, the release code
and its MXFP4 path read ``swiglu_limit``, which the importer follows).
"""

from __future__ import annotations

from typing import Mapping

from ..emit import LayerSpec
from ..routing import Routing
from ..views import View
from ._family import Family, dtypes_of, fused_halves

ALPHA = 1.702
"""The SwiGLU's sigmoid scale, a constant of the modeling code."""

# GptOssConfig's defaults of the keys the block reads (swiglu_limit is a
# key of released config.json files, not of the configuration class, and
# quantization_config says whether the experts are MXFP4).
BLOCK_DEFAULTS = {"hidden_size": 2880, "intermediate_size": 2880,
                  "num_local_experts": 128, "num_experts_per_tok": 4,
                  "swiglu_limit": 7.0, "quantization_config": None}


def _is_mxfp4(quantization_config: object) -> bool:
    if quantization_config is None:
        return False
    method = quantization_config.get("quant_method") \
        if isinstance(quantization_config, Mapping) else None
    if method != "mxfp4":
        raise ValueError(f"quantization_config.quant_method {method!r}: "
                         "gpt-oss experts are bf16 or mxfp4")
    return True


def layer(index: int, *, hidden_size: int, intermediate_size: int,
          num_local_experts: int, num_experts_per_tok: int,
          swiglu_limit: float = 7.0, quantization_config: object = None,
          dtype: str = "bf16", dtypes: Mapping[str, str] | None = None,
          prefix: str = "model.layers") -> LayerSpec:
    """The MoE block of decoder layer ``index``; with an mxfp4
    ``quantization_config``, of MXFP4 experts: ``gate_up_proj`` and
    ``down_proj`` as ``_blocks`` / ``_scales`` of ``[out, in]`` weights
    (``[E, 2I, H]`` with gate and up in alternate rows, ``[E, H, I]``),
    decoded by the runtime to bf16 when it binds them."""
    h, i, e = hidden_size, intermediate_size, num_local_experts
    block = f"{prefix}.{index}.mlp"
    experts = f"{block}.experts"
    quantized = _is_mxfp4(quantization_config)
    if quantized:    # stored [out, in]: no transpose
        gate, up = fused_halves((e, 2 * i, h), axis=1, width=i,
                                transposed=False, interleaved=True)
        down = View(source=(e, h, i))
    else:
        gate, up = fused_halves((e, h, 2 * i), axis=2, width=i,
                                transposed=True, interleaved=True)
        down = View(source=(e, i, h), permutation=(0, 2, 1))
    gate_bias, up_bias = fused_halves((e, 2 * i), axis=1, width=i,
                                      transposed=False, interleaved=True)
    weights = {"router": f"{block}.router.weight",
               "router_bias": f"{block}.router.bias",
               "expert_gate": f"{experts}.gate_up_proj",
               "expert_up": f"{experts}.gate_up_proj",
               "expert_down": f"{experts}.down_proj",
               "gate_bias": f"{experts}.gate_up_proj_bias",
               "up_bias": f"{experts}.gate_up_proj_bias",
               "down_bias": f"{experts}.down_proj_bias"}
    views = {"expert_gate": gate, "expert_up": up, "expert_down": down,
             "gate_bias": gate_bias, "up_bias": up_bias,
             "down_bias": View(source=(e, h))}
    formats = {op: "mxfp4" for op in ("expert_gate", "expert_up",
                                      "expert_down")} if quantized else {}
    return LayerSpec(
        hidden=h, intermediate=i, num_experts=e,
        routing=Routing(top_k=num_experts_per_tok, renormalize="selected"),
        weights=weights,
        dtypes={**dtypes_of(weights, dtype, dtypes),
                **{op: "bf16" for op in formats}},
        activation="clamped_swiglu", swiglu=(ALPHA, swiglu_limit),
        views=views, formats=formats)


FAMILY = Family(name="gpt_oss", model_types=("gpt_oss",),
                block_defaults=BLOCK_DEFAULTS, build=layer,
                layer_defaults={"num_hidden_layers": 36})
