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
from .. import mxfp4
from ..views import Slice, View
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
    bound as stored (``e2m1x2`` weights, ``e8m0`` scales of ``[1, 32]``
    blocks) and decoded on the fly by the kernels."""
    h, i, e = hidden_size, intermediate_size, num_local_experts
    block = f"{prefix}.{index}.mlp"
    experts = f"{block}.experts"
    quantized = _is_mxfp4(quantization_config)
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
    views = {"gate_bias": gate_bias, "up_bias": up_bias,
             "down_bias": View(source=(e, h))}
    extra: dict = {}
    if quantized:
        _check_mxfp4_sizes(h, i)
        weights.update(_mxfp4_weights(experts))
        views.update(_mxfp4_views(e, h, i))
        extra = {"formats": {op: "e8m0" for op in
                             ("gate_scale", "up_scale", "down_scale")},
                 "weight_block": (1, mxfp4.GROUP)}
        quantized_dtypes = {op: "e2m1x2" for op in
                            ("expert_gate", "expert_up", "expert_down")}
        quantized_dtypes.update({op: "f32" for op in
                                 ("gate_scale", "up_scale", "down_scale")})
    else:
        gate, up = fused_halves((e, h, 2 * i), axis=2, width=i,
                                transposed=True, interleaved=True)
        views.update({"expert_gate": gate, "expert_up": up,
                      "expert_down": View(source=(e, i, h),
                                          permutation=(0, 2, 1))})
        quantized_dtypes = {}
    return LayerSpec(
        hidden=h, intermediate=i, num_experts=e,
        routing=Routing(top_k=num_experts_per_tok, renormalize="selected"),
        weights=weights,
        dtypes={**dtypes_of(weights, dtype, dtypes), **quantized_dtypes},
        activation="clamped_swiglu", swiglu=(ALPHA, swiglu_limit),
        views=views, **extra)


def _check_mxfp4_sizes(hidden: int, intermediate: int) -> None:
    for name, size in (("hidden_size", hidden),
                       ("intermediate_size", intermediate)):
        if size % mxfp4.GROUP:
            raise ValueError(f"{name} {size}: MXFP4 experts need a multiple "
                             f"of {mxfp4.GROUP}")


def _mxfp4_weights(experts: str) -> dict[str, str]:
    """The MXFP4 tensors of the experts: blocks as the weights, scales as
    their block scales."""
    return {"expert_gate": f"{experts}.gate_up_proj_blocks",
            "expert_up": f"{experts}.gate_up_proj_blocks",
            "expert_down": f"{experts}.down_proj_blocks",
            "gate_scale": f"{experts}.gate_up_proj_scales",
            "up_scale": f"{experts}.gate_up_proj_scales",
            "down_scale": f"{experts}.down_proj_scales"}


def _mxfp4_views(e: int, h: int, i: int) -> dict[str, View]:
    """Blocks ``[.., N, K/32, 16]`` read as e2m1 pairs ``[.., N, K/2]``;
    gate and up (and their scales) in alternate rows of the fused tensor."""
    groups = mxfp4.GROUP
    half = groups // 2

    def rows(axis_size: int, parity: int | None, blocks: bool,
             depth: int) -> View:
        source = (e, axis_size, depth // groups) + ((half,) if blocks else ())
        reshape = (e, axis_size, depth // 2) if blocks else None
        piece = Slice(1, parity, axis_size // 2, 2) \
            if parity is not None else None
        return View(source=source, reshape=reshape, slice=piece)

    return {"expert_gate": rows(2 * i, 0, True, h),
            "expert_up": rows(2 * i, 1, True, h),
            "expert_down": rows(h, None, True, i),
            "gate_scale": rows(2 * i, 0, False, h),
            "up_scale": rows(2 * i, 1, False, h),
            "down_scale": rows(h, None, False, i)}


FAMILY = Family(name="gpt_oss", model_types=("gpt_oss",),
                block_defaults=BLOCK_DEFAULTS, build=layer,
                layer_defaults={"num_hidden_layers": 36})
