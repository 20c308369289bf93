"""What the importer knows about one Hugging Face MoE family.

A :class:`Family` is the ``model_type`` spellings a ``config.json`` of the
family uses, the defaults its ``transformers`` configuration class gives
the keys the importer reads (a ``config.json`` without a key means that
default, as it does to ``transformers``), which decoder layers hold a MoE
block, and the function that builds a block's
:class:`~moe_mlir.emit.LayerSpec` (tensor names, sizes, routing) from those
values. docs/families/ records what the upstream code does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..emit import EXPERT, LayerSpec
from ..views import Slice, View

__all__ = ["Family", "Settings", "dtypes_of", "expert_names",
           "fused_halves", "swiglu_names", "transposed_experts"]


class Settings:
    """A ``config.json``'s values, each key absent (or ``null``) taking its
    configuration class's default; a key whose default is ``None`` (no
    usable default upstream) must be present. A ``nullable`` key's ``null``
    is a value of its own (``None``), not the default."""

    def __init__(self, config: Mapping[str, Any],
                 defaults: Mapping[str, Any],
                 nullable: tuple[str, ...] = ()) -> None:
        self.config = config
        self.defaults = defaults
        self.nullable = nullable

    def __getitem__(self, key: str) -> Any:
        value = self.config.get(key)
        if value is None and key in self.nullable and key in self.config:
            return None
        if value is None:
            value = self.defaults.get(key)
        if value is None:
            raise ValueError(f"config.json lacks {key} (its "
                             f"{self.config.get('model_type')} "
                             "configuration has no default)")
        return value

    def integer(self, key: str) -> int:
        """``self[key]``, checked to be an integer (not a bool)."""
        value = self[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"config.json: {key} must be an integer, got "
                             f"{value!r}")
        return value

    def integers(self, key: str) -> list[int]:
        """``self.get(key)``, checked to be a list of integers (``[]``
        where absent)."""
        value = self.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or any(
                isinstance(v, bool) or not isinstance(v, int) for v in value):
            raise ValueError(f"config.json: {key} must be a list of "
                             f"integers, got {value!r}")
        return value

    def get(self, key: str) -> Any:
        """The value, or ``None`` where neither config.json nor the
        default gives one (or a nullable key is ``null``)."""
        value = self.config.get(key)
        if value is None and key in self.nullable and key in self.config:
            return None
        return self.defaults.get(key) if value is None else value


def _every_layer(settings: Settings, layer: int) -> bool:
    return True


def _no_reason(settings: Settings, layer: int) -> str:
    return "the family has no dense layers"


@dataclass(frozen=True)
class Family:
    """One family.

    Attributes:
        name: its canonical ``model_type``.
        model_types: every spelling ``config.json`` files use for it.
        block_defaults: the keys :attr:`build` takes, with the
            configuration class's defaults (``None``: none upstream; the
            builder gets ``None`` unless the key is :attr:`required`).
        build: ``build(layer, **values, dtype=, dtypes=, prefix=)``, the
            block of decoder layer ``layer``.
        layer_defaults: defaults of the keys :attr:`is_moe_layer` reads,
            and of ``num_hidden_layers``.
        is_moe_layer: whether a decoder layer holds a MoE block.
        dense_reason: which key makes a dense layer dense.
        prefix: the name prefix of the decoder layers.
        required: keys without a default upstream that the block needs.
        text_config: the keys leading from ``config.json`` to the
            language model's configuration (``("text_config",)`` for a
            vision-language model), empty when it is ``config.json``.
        text_config_at_top: a ``config.json`` without the nested object
            gives its keys at the top level (the configuration class builds
            the text configuration from them), else defaults.
        merge_top: the nested object's keys complete the top-level ones
            (DBRX's ``ffn_config``) instead of replacing them.
        aliases: the configuration class's ``attribute_map`` (a key the
            importer reads -> the key ``config.json`` holds it under).
        layers_key: the key counting the decoder layers.
        nullable: keys whose ``null`` means something other than the
            default (DBRX's ``moe_normalize_expert_weights``: no
            normalization); the builder gets ``None``.
    """

    name: str
    model_types: tuple[str, ...]
    block_defaults: Mapping[str, Any]
    build: Callable[..., LayerSpec]
    layer_defaults: Mapping[str, Any] = field(default_factory=dict)
    is_moe_layer: Callable[[Settings, int], bool] = _every_layer
    dense_reason: Callable[[Settings, int], str] = _no_reason
    prefix: str = "model.layers"
    required: tuple[str, ...] = ()
    text_config: tuple[str, ...] = ()
    text_config_at_top: bool = False
    merge_top: bool = False
    aliases: Mapping[str, str] = field(default_factory=dict)
    layers_key: str = "num_hidden_layers"
    nullable: tuple[str, ...] = ()

    def language_config(self, config: Mapping[str, Any]) -> Mapping[str, Any]:
        """The language model's configuration within ``config``."""
        nested: Any = config
        for depth, key in enumerate(self.text_config):
            value = nested.get(key)
            if value is None:
                if self.text_config_at_top and depth == 0:
                    return config
                value = {}
            if not isinstance(value, Mapping):
                path = ".".join(self.text_config[:depth + 1])
                raise ValueError(f"config.json: {path} must be an object, "
                                 f"got {value!r}")
            nested = value
        merged = {**config, **nested} if self.merge_top else dict(nested)
        for key, stored in self.aliases.items():
            if merged.get(key) is None and stored in merged:
                merged[key] = merged[stored]
        return {**merged, "model_type": config.get("model_type")}

    def settings(self, config: Mapping[str, Any]) -> Settings:
        return Settings(self.language_config(config),
                        {**self.layer_defaults, **self.block_defaults},
                        self.nullable)

    def num_layers(self, config: Mapping[str, Any]) -> int:
        count = self.settings(config).get(self.layers_key)
        if isinstance(count, bool) or not isinstance(count, int) or \
                count < 0:
            raise ValueError(f"config.json: {self.layers_key} must be a "
                             f"non-negative integer, got {count!r}")
        return count

    def spec(self, config: Mapping[str, Any], layer: int,
             dtype: str = "bf16",
             dtypes: Mapping[str, str] | None = None) -> LayerSpec:
        settings = self.settings(config)
        values = {key: settings[key] if (key in self.required or
                                         self.block_defaults[key] is not None)
                  and key not in self.nullable
                  else settings.get(key) for key in self.block_defaults}
        return self.build(layer, **values, dtype=dtype, dtypes=dtypes,
                          prefix=self.prefix)


def swiglu_names(prefix: str) -> dict[str, str]:
    """``{gate,up,down}_proj`` weight names under ``prefix``."""
    return {"gate": f"{prefix}.gate_proj.weight",
            "up": f"{prefix}.up_proj.weight",
            "down": f"{prefix}.down_proj.weight"}


def expert_names(block: str) -> dict[str, str]:
    """The per-expert ``experts.{e}.{gate,up,down}_proj`` operands."""
    names = swiglu_names(f"{block}.experts.{EXPERT}")
    return {"expert_gate": names["gate"], "expert_up": names["up"],
            "expert_down": names["down"]}


def fused_halves(shape: tuple[int, ...], axis: int, width: int,
                 transposed: bool, interleaved: bool = False
                 ) -> tuple[View, View]:
    """Views of the gate and up halves of one fused tensor of ``shape``
    whose axis ``axis`` holds both (``2 * width``): the gate
    first then the up half, or alternating (``interleaved``: gate at even
    indices). ``transposed``: the tensor's last two axes are ``[in, out]``
    (``x @ W``), swapped to the operands' ``[out, in]``."""
    permutation = tuple(range(len(shape) - 2)) + \
        (len(shape) - 1, len(shape) - 2) if transposed else None
    if interleaved:
        halves = (Slice(axis, 0, width, 2), Slice(axis, 1, width, 2))
    else:
        halves = (Slice(axis, 0, width), Slice(axis, width, width))
    gate, up = (View(source=shape, slice=half, permutation=permutation)
                for half in halves)
    return gate, up


def transposed_experts(experts: str, num_experts: int, hidden: int,
                       intermediate: int
                       ) -> tuple[dict[str, str], dict[str, View]]:
    """The operands and views of experts stored ``x @ W`` under
    ``experts``: ``gate_up_proj`` ``[E, H, 2I]`` (gate columns first) and
    ``down_proj`` ``[E, I, H]`` (Qwen3-VL-MoE, Llama 4)."""
    e, h, i = num_experts, hidden, intermediate
    gate, up = fused_halves((e, h, 2 * i), axis=2, width=i, transposed=True)
    fused = f"{experts}.gate_up_proj"
    return ({"expert_gate": fused, "expert_up": fused,
             "expert_down": f"{experts}.down_proj"},
            {"expert_gate": gate, "expert_up": up,
             "expert_down": View(source=(e, i, h), permutation=(0, 2, 1))})


def dtypes_of(weights: Mapping[str, str], dtype: str,
              overrides: Mapping[str, str] | None) -> dict[str, str]:
    """Every operand ``dtype`` except the f32 score bias, then overrides."""
    dtypes = {op: dtype for op in weights if op != "score_bias"}
    dtypes.update(overrides or {})
    return dtypes
