"""Import the MoE block of one layer of a Hugging Face checkpoint directory.

:func:`import_hf` reads ``config.json`` and the safetensors headers (one
``model.safetensors`` or a sharded ``model.safetensors.index.json``; never
the weight data), picks the family module of :mod:`moe_mlir.families` by
``model_type`` and checks the checkpoint against it: every tensor the layer
binds is present, has the shape ``config.json`` implies, and is stored as
F32, BF16 or F16 (one dtype per stacked per-expert operand). The result's
:meth:`ImportedLayer.module_text` is the module ``moe-run`` and
``moe-compile`` take, its weights bound by checkpoint names
(docs/CompiledModules.md), so::

    python3 -m moe_mlir import-hf DIR --layer N -o layer.mlir
    build/bin/moe-run layer.mlir --weights DIR --input x.npy --output y.npy

Every problem is a :class:`ModelImportError` whose message is one line
naming it: no or bad ``config.json``, unknown ``model_type``, layer out of
range, dense layer (with the list of MoE layers), missing tensor, shape or
dtype that disagrees.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from . import families, mxfp4, safetensors_io, seq2seq
from .emit import EXPERT, SCALES, LayerSpec, emit_module
from .routing import parse as parse_routing

__all__ = [
    "ImportedLayer",
    "ModelImportError",
    "block_scaled",
    "check_layer",
    "import_hf",
    "moe_layers",
    "read_config",
    "seq2seq_block",
]

# safetensors dtype -> IR element type of the weights a layer may bind.
_ELEMENT_TYPES = {"F32": "f32", "BF16": "bf16", "F16": "f16",
                  "F8_E4M3": "f8e4m3fn"}


class ModelImportError(ValueError):
    """A checkpoint the importer cannot turn into a layer (one-line reason)."""


@dataclass(frozen=True)
class ImportedLayer:
    """One imported MoE block.

    Attributes:
        directory: the checkpoint directory.
        model_type: its family.
        layer: the decoder layer index, or ``"encoder.N"`` /
            ``"decoder.N"`` for the encoder-decoder families.
        spec: the layer, with each operand's element type as stored.
    """

    directory: str
    model_type: str
    layer: int | str
    spec: LayerSpec

    def module_text(self) -> str:
        """The MLIR module: ``@<spec.func_name>(x: tensor<?xHxf32>, weights)``."""
        return emit_module(self.spec, comment=(
            f"Imported by `python3 -m moe_mlir import-hf` from "
            f"{self.directory}\n(model_type {self.model_type}, MoE block of "
            f"layer {self.layer}). Run it with\n"
            f"  moe-run THIS.mlir --weights {self.directory} --input x.npy "
            "--output y.npy"))


def read_config(directory: str | os.PathLike) -> dict[str, Any]:
    """The ``config.json`` of a checkpoint directory, as a dictionary."""
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise ModelImportError(f"{directory}: not a directory")
    path = os.path.join(directory, "config.json")
    try:
        with open(path, encoding="utf-8") as file:
            config = json.load(file)
    except FileNotFoundError:
        raise ModelImportError(f"{directory}: no config.json (is it a Hugging "
                               "Face checkpoint directory?)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelImportError(f"{path}: cannot read it: {err}") from None
    if not isinstance(config, dict):
        raise ModelImportError(f"{path}: not a JSON object")
    return config


def _num_layers(config: Mapping[str, Any]) -> int:
    try:
        return _decoder_family(config).num_layers(config)
    except ValueError as err:
        raise ModelImportError(str(err)) from None


def _decoder_family(config: Mapping[str, Any]) -> families.Family:
    family = families.family_of(config)
    assert family is not None, "checked by _check_model_type"
    return family


def _config_error(err: Exception) -> ModelImportError:
    """A malformed value of config.json as one line."""
    reason = str(err).removeprefix("config.json: ").removeprefix(
        "config.json ")
    if isinstance(err, TypeError):
        reason = f"a value has the wrong type ({reason})"
    return ModelImportError(f"config.json: {reason}")


def moe_layers(config: Mapping[str, Any]) -> list[int] | list[str]:
    """The MoE (sparse) layers of a supported model: decoder layer indices,
    or ``"encoder.N"`` / ``"decoder.N"`` for encoder-decoder families."""
    if _seq2seq_type(config) is not None:
        config = _canonical(config)
        try:
            return [f"{stack}.{n}" for stack in seq2seq.STACKS
                    for n in seq2seq.sparse_blocks(config, stack)]
        except ValueError as err:
            raise ModelImportError(str(err)) from None
    try:
        return [n for n in range(_num_layers(config))
                if families.is_moe_layer(config, n)]
    except ModelImportError:
        raise
    except (TypeError, ValueError) as err:
        raise _config_error(err) from None


def _ranges(values: list[int]) -> str:
    """``[1, 2, 3, 5]`` -> ``"1-3, 5"``."""
    runs: list[list[int]] = []
    for value in values:
        if runs and value == runs[-1][1] + 1:
            runs[-1][1] = value
        else:
            runs.append([value, value])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _dense_reason(config: Mapping[str, Any], layer: int) -> str:
    """Which ``config.json`` key makes ``layer`` dense."""
    family = _decoder_family(config)
    return family.dense_reason(family.settings(config), layer)


def _parse_layer(layer: int | str) -> int:
    if isinstance(layer, int) and not isinstance(layer, bool):
        return layer
    text = str(layer).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    raise ModelImportError(f"bad layer {layer!r}: decoder-only families "
                           "address layers by their index N")


def seq2seq_block(config: Mapping[str, Any], layer: int | str
                  ) -> tuple[str, LayerSpec]:
    """The address and the f32 spec of the MoE block at ``layer``
    (``"encoder.N"`` or ``"decoder.N"``) of an encoder-decoder model's
    configuration (its ``model_type`` canonical).

    Raises:
        ModelImportError: a malformed, out-of-range or dense address.
        ValueError: a configuration the block cannot be read from.
    """
    model_type = config["model_type"]
    address = seq2seq.parse_address(str(layer))
    if address is None:
        raise ModelImportError(
            f"bad layer {layer!r}: {model_type} is an encoder-decoder model; "
            "address its layers as encoder.N or decoder.N")
    stack, index = address
    count = seq2seq.num_blocks(config, stack)
    if not 0 <= index < count:
        raise ModelImportError(
            f"layer {stack}.{index} is out of range: the {stack} of this "
            f"{model_type} model has {count} layers")
    if not seq2seq.is_sparse_block(config, stack, index):
        sparse = seq2seq.sparse_blocks(config, stack)
        where = (f"its {stack} MoE layers are {_ranges(sparse)}"
                 if sparse else f"its {stack} has no MoE layer")
        raise ModelImportError(
            f"layer {stack}.{index} of this {model_type} model is a "
            f"dense feed-forward block; {where}")
    return f"{stack}.{index}", seq2seq.spec_from_config(config, stack, index)


def _seq2seq_spec(config: Mapping[str, Any], layer: int | str,
                  directory: str) -> tuple[str, LayerSpec]:
    """:func:`seq2seq_block`, its configuration's errors naming
    ``directory``'s config.json."""
    config_path = os.path.join(directory, "config.json")
    try:
        return seq2seq_block(config, layer)
    except ModelImportError:
        raise
    except ValueError as err:
        raise ModelImportError(f"{config_path}: "
                               f"{str(err).removeprefix('config.json ')}"
                               ) from None


def _seq2seq_type(config: Mapping[str, Any]) -> str | None:
    """The canonical ``model_type`` of an encoder-decoder config, or None."""
    model_type = config.get("model_type")
    if not isinstance(model_type, str):
        return None
    return seq2seq.SPELLINGS.get(model_type)


def _canonical(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with an encoder-decoder ``model_type`` spelled as the
    family's canonical name."""
    canonical = _seq2seq_type(config)
    return dict(config) if canonical is None else \
        {**config, "model_type": canonical}


def _check_model_type(config: Mapping[str, Any]) -> None:
    if families.family_of(config) is None and _seq2seq_type(config) is None:
        supported = sorted(set(families.FAMILIES) | set(seq2seq.FAMILIES))
        raise ModelImportError(
            f"unsupported model_type {config.get('model_type')!r} "
            f"(supported: {', '.join(supported)})")


def check_layer(config: Mapping[str, Any], layer: int) -> None:
    """Refuses a decoder layer ``layer`` that ``config`` does not have or
    makes a dense MLP (ModelImportError, one line)."""
    model_type = config.get("model_type")
    count = _num_layers(config)
    if not 0 <= layer < count:
        raise ModelImportError(
            f"layer {layer} is out of range: this {model_type} model has "
            f"{count} layers (0-{count - 1})" if count else
            f"layer {layer} is out of range: this {model_type} model has no "
            "layers")
    try:
        dense = not families.is_moe_layer(config, layer)
        reason = _dense_reason(config, layer) if dense else ""
    except (TypeError, ValueError) as err:
        raise _config_error(err) from None
    if dense:
        sparse = moe_layers(config)
        where = (f"its MoE layers are {_ranges(sparse)}" if sparse else
                 "it has no MoE layer")
        raise ModelImportError(
            f"layer {layer} of this {model_type} model is a dense MLP "
            f"({reason}); {where}")


def _stored_as_bytes(spec: LayerSpec, operand: str) -> bool:
    """Whether ``operand`` binds U8 tensors: e2m1 pairs or e8m0 scales."""
    return spec.dtype(operand) == "e2m1x2" or \
        spec.formats.get(operand) == "e8m0"


def _operand_dtypes(spec: LayerSpec,
                    headers: Mapping[str, tuple[str, tuple[int, ...]]],
                    directory: str, layer: int | str) -> dict[str, str]:
    """Check every tensor ``spec`` binds; its operands' element types."""
    dtypes = {}
    for operand in spec.operands:
        if spec.formats.get(operand) == "mxfp4":   # U8 blocks and scales
            shapes = mxfp4.stored_shapes(spec.checkpoint_shape(operand))
            for name, shape in zip(spec.tensor_names(operand), shapes):
                if name not in headers:
                    raise ModelImportError(
                        f"{directory}: checkpoint has no tensor '{name}' "
                        f"(the mxfp4 {operand} operand of layer {layer})")
                dtype, actual = headers[name]
                if tuple(actual) != shape or dtype != "U8":
                    raise ModelImportError(
                        f"tensor '{name}' is {dtype} {list(actual)} but an "
                        f"mxfp4 {operand} is U8 {list(shape)}")
            dtypes[operand] = "bf16"
            continue
        pattern = spec.weights[operand]
        shape = spec.checkpoint_shape(operand)
        if EXPERT in pattern:
            names = [pattern.replace(EXPERT, str(e))
                     for e in range(spec.num_experts)]
            shape = shape[1:]
        else:
            names = [pattern]
        stored = set()
        for name in names:
            if name not in headers:
                raise ModelImportError(
                    f"{directory}: checkpoint has no tensor '{name}' (the "
                    f"{operand} operand of layer {layer})")
            dtype, actual = headers[name]
            if tuple(actual) != shape:
                raise ModelImportError(
                    f"tensor '{name}' has shape {list(actual)} but "
                    f"config.json implies {list(shape)}")
            # Bytes of MXFP4 blocks and scales: as the family declares.
            if _stored_as_bytes(spec, operand):
                if dtype != "U8":
                    raise ModelImportError(
                        f"tensor '{name}' is stored as {dtype}; the MXFP4 "
                        f"{operand} operand is U8")
                stored.add(dtype)
                continue
            if dtype not in _ELEMENT_TYPES:
                raise ModelImportError(
                    f"tensor '{name}' is stored as {dtype}; layers bind "
                    f"{', '.join(_ELEMENT_TYPES)} weights (dequantize it "
                    "first)")
            stored.add(dtype)
        if len(stored) > 1:
            raise ModelImportError(
                f"the per-expert tensors '{pattern}' mix dtypes "
                f"{', '.join(sorted(stored))}; they must share one")
        dtypes[operand] = spec.dtype(operand) if \
            _stored_as_bytes(spec, operand) else _ELEMENT_TYPES[stored.pop()]
    if dtypes.get("score_bias", "f32") not in ("f32", "bf16", "f16"):
        raise ModelImportError(
            f"tensor '{spec.weights['score_bias']}' is "
            f"{dtypes['score_bias'].upper()}; the score correction bias must "
            "be F32, BF16 or F16")
    if dtypes.get("score_bias") == "f32":
        del dtypes["score_bias"]  # the default
    return dtypes


def block_scaled(spec: LayerSpec, config: Mapping[str, Any],
                 stored_dtype: Callable[[str], str | None]) -> LayerSpec:
    """``spec`` with the block scales of its FP8 projection weights.

    DeepSeek-V3-style checkpoints (``quantization_config = {"quant_method":
    "fp8", "weight_block_size": [BN, BK]}``) store an ``F8_E4M3`` weight
    ``X.weight`` with its ``X.weight_scale_inv`` (f32, one per block);
    projections stored in another type keep no scale. ``stored_dtype``
    gives a checkpoint tensor's safetensors dtype (``None``: absent).

    Raises:
        ValueError: FP8 weights without an fp8 ``quantization_config``, or
            a malformed ``weight_block_size``.
    """
    weights = dict(spec.weights)

    def stored(operand: str) -> str | None:
        return stored_dtype(weights[operand].replace(EXPERT, "0"))

    fp8 = [w for w in SCALES.values() if w in weights
           and stored(w) == "F8_E4M3"]
    if not fp8:
        return spec
    quantization = config.get("quantization_config")
    if not isinstance(quantization, Mapping) or \
            quantization.get("quant_method") != "fp8":
        raise ValueError(f"tensor '{weights[fp8[0]]}' is F8_E4M3 but "
                         "config.json has no quantization_config with "
                         "quant_method \"fp8\"")
    block = quantization.get("weight_block_size")
    if not isinstance(block, list) or len(block) != 2 or any(
            isinstance(b, bool) or not isinstance(b, int) or b < 1
            for b in block):
        raise ValueError("quantization_config.weight_block_size must be two "
                         "positive integers (block-scaled FP8), got "
                         f"{block!r}")
    for scale, weight in SCALES.items():
        if weight not in fp8:
            continue
        name = weights[weight]
        if not name.endswith(".weight"):
            raise ValueError(f"FP8 tensor '{name}' does not end in "
                             "'.weight', so it has no weight_scale_inv")
        weights[scale] = name + "_scale_inv"
    return dataclasses.replace(spec, weights=weights,
                               weight_block=tuple(block))


def _routing_override(spec: LayerSpec,
                      config: Mapping[str, Any]) -> LayerSpec:
    """``spec`` with the routing of ``config.moe_mlir.routing`` when the
    checkpoint has one (``moefy`` writes it: split experts combine
    unweighted, which no transformers family computes), its ``top_k`` the
    family's."""
    extra = config.get("moe_mlir")
    if extra is None:
        return spec
    text = extra.get("routing") if isinstance(extra, dict) else None
    if not isinstance(text, str):
        raise ValueError("config.json moe_mlir.routing must be a routing "
                         "attribute string")
    try:
        routing = parse_routing(text)
    except ValueError as err:
        raise ValueError(f"config.json moe_mlir.routing: {err}") from None
    if routing.top_k != spec.routing.top_k:
        raise ValueError(f"config.json moe_mlir.routing has top_k = "
                         f"{routing.top_k}, the model "
                         f"{spec.routing.top_k}")
    return dataclasses.replace(spec, routing=routing)


def import_hf(directory: str | os.PathLike, layer: int | str,
              func_name: str = "forward",
              statistics: tuple[str, ...] = ()) -> ImportedLayer:
    """Import the MoE block of layer ``layer`` of a checkpoint.

    Args:
        directory: a Hugging Face model directory (``config.json`` and
            ``model.safetensors`` or a sharded index).
        layer: the decoder layer index (an int or its text), or
            ``"encoder.N"`` / ``"decoder.N"`` for ``switch_transformers`` and
            ``nllb_moe``.
        func_name: the entry point's name.
        statistics: routing statistics the entry returns after its output
            (:data:`moe_mlir.emit.STATISTICS`).

    Raises:
        ModelImportError: the reason, in one line.
    """
    directory = os.fspath(directory)
    config = read_config(directory)
    _check_model_type(config)
    config = _canonical(config)
    model_type = config["model_type"]
    config_path = os.path.join(directory, "config.json")
    if model_type in seq2seq.FAMILIES:
        address, spec = _seq2seq_spec(config, layer, directory)
    else:
        address = _parse_layer(layer)
        check_layer(config, address)
        spec = None
    try:
        headers = safetensors_io.read_checkpoint_headers(directory)
    except (safetensors_io.SafetensorsError, OSError) as err:
        raise ModelImportError(str(err)) from None
    try:
        if spec is None:
            spec = families.layer_spec(config, address, dtype="f32")
        spec = _routing_override(spec, config)
        spec = block_scaled(
            spec, config,
            lambda name: headers[name][0] if name in headers else None)
        dtypes = _operand_dtypes(spec, headers, directory, address)
        spec = dataclasses.replace(spec, dtypes=dtypes, func_name=func_name,
                                   statistics=tuple(statistics))
    except (ValueError, TypeError) as err:
        if isinstance(err, ModelImportError):
            raise
        reason = str(err).removeprefix("config.json ")
        raise ModelImportError(f"{config_path}: {reason}") from None
    return ImportedLayer(directory=directory, model_type=model_type,
                         layer=address, spec=spec)
