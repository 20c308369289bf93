"""The Hugging Face MoE families the importer reads, one module each.

A family's module holds what the importer knows about it (a
:class:`~moe_mlir.families._family.Family`): the ``model_type`` spellings
of its ``config.json``, the configuration class's defaults of the keys it
reads, which decoder layers hold a MoE block, and the
:class:`~moe_mlir.emit.LayerSpec` of a block: tensor names, sizes and the
routing attribute (docs/Importing.md; what the upstream code does is in
docs/families/). Adding a family adds its module and its line below. The
encoder-decoder families (``switch_transformers``, ``nllb_moe``) address
their blocks by stack and live in :mod:`moe_mlir.seq2seq`.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..emit import LayerSpec
from . import (dbrx, deepseek_v2, deepseek_v3, ernie4_5_moe, glm4_moe,
               gpt_oss, granitemoe,
               hunyuan_v1_moe, jamba, jetmoe, llama4, minimax, mixtral, olmoe,
               longcat_flash, phimoe,
               qwen2_moe,
               qwen3_moe, qwen3_next, qwen3_vl_moe)
from ._family import Family

__all__ = ["FAMILIES", "Family", "family_of", "is_moe_layer",
           "layer_spec"]

FAMILIES: dict[str, Family] = {
    family.name: family for family in (
        mixtral.FAMILY, qwen2_moe.FAMILY, qwen3_moe.FAMILY,
        deepseek_v3.FAMILY, deepseek_v2.FAMILY, olmoe.FAMILY,
        olmoe.FLEX_OLMO, minimax.FAMILY, jamba.FAMILY, glm4_moe.FAMILY,
        glm4_moe.DOTS1, qwen3_next.FAMILY, hunyuan_v1_moe.FAMILY,
        ernie4_5_moe.FAMILY, glm4_moe.GLM4V, granitemoe.FAMILY,
        granitemoe.SHARED, granitemoe.HYBRID, qwen3_vl_moe.FAMILY,
        qwen3_vl_moe.OMNI, jetmoe.FAMILY, dbrx.FAMILY, llama4.FAMILY,
        llama4.TEXT, gpt_oss.FAMILY, phimoe.FAMILY, longcat_flash.FAMILY)
}
"""The decoder-only families by canonical ``model_type``."""

_BY_SPELLING = {spelling: family for family in FAMILIES.values()
                for spelling in family.model_types}


def family_of(config: Mapping[str, Any]) -> Family | None:
    """The family of a ``config.json`` (by any spelling of its
    ``model_type``), or ``None``."""
    model_type = config.get("model_type")
    return _BY_SPELLING.get(model_type) if isinstance(model_type, str) \
        else None


def _family(config: Mapping[str, Any]) -> Family:
    family = family_of(config)
    if family is None:
        raise ValueError(f"unsupported model_type {config.get('model_type')!r}"
                         f" (expected one of {', '.join(sorted(_BY_SPELLING))})")
    return family


def is_moe_layer(config: Mapping[str, Any], layer: int) -> bool:
    """Whether decoder layer ``layer`` of ``config`` holds a MoE block."""
    family = _family(config)
    return family.is_moe_layer(family.settings(config), layer)


def layer_spec(config: Mapping[str, Any], layer: int, dtype: str = "bf16",
               dtypes: Mapping[str, str] | None = None) -> LayerSpec:
    """The MoE block of decoder layer ``layer`` of a ``config.json``, every
    key it lacks taking its family's default.

    Raises:
        ValueError: an unsupported ``model_type``, a dense layer, a key
            without a default that the config lacks, or values the block
            cannot have (the message says which).
    """
    family = _family(config)
    if not family.is_moe_layer(family.settings(config), layer):
        raise ValueError(f"layer {layer} of this {family.name} model is a "
                         "dense MLP, not a MoE block")
    return family.spec(config, layer, dtype=dtype, dtypes=dtypes)
