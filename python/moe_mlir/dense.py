"""Dense FFNs: read from Llama-, Qwen2- and Mistral-style checkpoints, and
emitted as the IR a dense MLP imports to (docs/DenseToMoE.md).

A dense MLP is ``down(act(gate x) * up x)`` (or ``down(act(up x))``
without a gate), with optional biases. Its IR is the **dense-expert form**
of ``moe.layer``: one expert that every token takes with weight 1
(``<softmax, top_k = 1>`` over a ``[1, H]`` zero router), whose weights are
the checkpoint's ``[I, H]`` / ``[H, I]`` tensors reshaped to one expert::

    %g = tensor.expand_shape %wg [[0, 1], [2]] output_shape [1, I, H]
        : tensor<IxHxbf16> into tensor<1xIxHxbf16>
    %y = moe.layer %x : tensor<?xHxf32> routing <softmax, top_k = 1>
        router(%zero : tensor<1xHxf32>)
        experts(gate %g : ..., up %u : ..., down %d : ...) activation silu
        {moe.neuron_importance = dense<...> : tensor<Ixf32>}

``moe-dense-to-moe`` rewrites that form into experts; the reference lowering
runs it as it is (the dense FFN).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from . import safetensors_io
from .emit import ELEMENT_TYPES, hf_activation, mlir_string
from .layer import activation_fn

__all__ = ["DENSE_FAMILIES", "DenseMLP", "emit_dense_module",
           "read_dense_mlp"]

DENSE_FAMILIES = ("llama", "mistral", "qwen2")
"""``model_type``s whose decoder layers have a dense SwiGLU MLP
(``model.layers.N.mlp.{gate,up,down}_proj``)."""

_STORAGE_TO_TYPE = {"F32": "f32", "BF16": "bf16", "F16": "f16"}


@dataclass
class DenseMLP:
    """One dense MLP: weights in float32, as stored (bf16 values exactly).

    Attributes:
        up: ``[I, H]``; gate: ``[I, H]`` or None (ungated); down: ``[H, I]``.
        biases: ``"gate_bias"`` ``[I]``, ``"up_bias"`` ``[I]``,
            ``"down_bias"`` ``[H]`` where the MLP has them.
        activation: ``silu``, ``gelu``, ``gelu_tanh`` or ``relu``.
        dtype: the element type the weights are stored in (``f32``,
            ``bf16``, ``f16``).
        names: ``operand -> checkpoint tensor name`` (``expert_gate``,
            ``expert_up``, ``expert_down`` and the biases).
    """

    up: np.ndarray
    down: np.ndarray
    activation: str
    gate: np.ndarray | None = None
    biases: dict[str, np.ndarray] = field(default_factory=dict)
    dtype: str = "f32"
    names: dict[str, str] = field(default_factory=dict)

    @property
    def hidden(self) -> int:
        return int(self.up.shape[1])

    @property
    def intermediate(self) -> int:
        return int(self.up.shape[0])

    def hidden_activations(self, x: np.ndarray) -> np.ndarray:
        """``[T, I]``: the input of the down projection, in float64."""
        x = np.asarray(x, dtype=np.float64)
        up = x @ self.up.astype(np.float64).T + self.biases.get("up_bias", 0)
        if self.gate is None:
            return activation_fn(self.activation)(up)
        gate = x @ self.gate.astype(np.float64).T + \
            self.biases.get("gate_bias", 0)
        return activation_fn(self.activation)(gate) * up

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``[T, H]``: the MLP's output in float64."""
        hidden = self.hidden_activations(x)
        out = hidden @ self.down.astype(np.float64).T
        if "down_bias" in self.biases:
            out = out + self.biases["down_bias"]
        return out


def read_dense_mlp(directory: str | os.PathLike, layer: int,
                   config: Mapping[str, Any]) -> DenseMLP:
    """The MLP of decoder layer ``layer`` of a dense checkpoint.

    Raises:
        ValueError: not a dense family, no such layer, a missing tensor or
            one of the wrong shape or dtype (one line each).
    """
    model_type = config.get("model_type")
    if model_type not in DENSE_FAMILIES:
        raise ValueError(f"model_type '{model_type}' is not a dense family "
                         f"({', '.join(DENSE_FAMILIES)})")
    layers = config.get("num_hidden_layers")
    if isinstance(layer, bool) or not isinstance(layer, int) or \
            not isinstance(layers, int) or not 0 <= layer < layers:
        raise ValueError(f"layer {layer} is not a decoder layer of this "
                         f"model (num_hidden_layers = {layers})")
    hidden, inter = config.get("hidden_size"), config.get("intermediate_size")
    for key, value in (("hidden_size", hidden),
                       ("intermediate_size", inter)):
        if isinstance(value, bool) or not isinstance(value, int) or \
                value < 1:
            raise ValueError(f"config.json: {key} must be a positive "
                             f"integer, got {value!r}")
    activation = hf_activation(str(config.get("hidden_act", "silu")))
    base = f"model.layers.{layer}.mlp"
    names = {"expert_gate": f"{base}.gate_proj.weight",
             "expert_up": f"{base}.up_proj.weight",
             "expert_down": f"{base}.down_proj.weight"}
    shapes = {"expert_gate": (inter, hidden), "expert_up": (inter, hidden),
              "expert_down": (hidden, inter)}
    if config.get("mlp_bias"):
        for operand, proj, size in (("gate_bias", "gate_proj", inter),
                                    ("up_bias", "up_proj", inter),
                                    ("down_bias", "down_proj", hidden)):
            names[operand] = f"{base}.{proj}.bias"
            shapes[operand] = (size,)
    headers = safetensors_io.read_checkpoint_headers(directory)
    dtypes = set()
    for operand, name in names.items():
        if name not in headers:
            raise ValueError(f"the checkpoint has no tensor '{name}'")
        storage, shape = headers[name]
        if tuple(shape) != shapes[operand]:
            raise ValueError(f"'{name}' has shape {list(shape)}, expected "
                             f"{list(shapes[operand])}")
        if storage not in _STORAGE_TO_TYPE:
            raise ValueError(f"'{name}' is stored as {storage}; dense MLPs "
                             "are read as F32, BF16 or F16")
        dtypes.add(_STORAGE_TO_TYPE[storage])
    if len(dtypes) != 1:
        raise ValueError(f"the MLP's tensors are stored in several dtypes "
                         f"({', '.join(sorted(dtypes))})")
    tensors = safetensors_io.load_tensors(directory, list(names.values()))
    values = {operand: tensors[name] for operand, name in names.items()}
    return DenseMLP(up=values["expert_up"], down=values["expert_down"],
                    gate=values["expert_gate"], activation=activation,
                    biases={k: v for k, v in values.items()
                            if k.endswith("_bias")},
                    dtype=dtypes.pop(), names=names)


def _dense_literal(values: np.ndarray) -> str:
    return "[" + ", ".join(repr(float(v)) for v in values) + "]"


def emit_dense_module(mlp: DenseMLP, func_name: str = "forward",
                      importance: np.ndarray | None = None) -> str:
    """The dense-expert form of ``mlp`` as a module with entry
    ``func_name(x [T, H], weights...) -> [T, H]``, each weight an argument
    bound to its checkpoint tensor (``moe.weight``); ``importance`` (one
    float per neuron) becomes the layer's ``moe.neuron_importance``."""
    if mlp.dtype not in ELEMENT_TYPES:
        raise ValueError(f"unknown dtype {mlp.dtype!r}")
    h, i, t = mlp.hidden, mlp.intermediate, mlp.dtype
    shapes = {"expert_gate": (i, h), "expert_up": (i, h),
              "expert_down": (h, i), "gate_bias": (i,), "up_bias": (i,),
              "down_bias": (h,)}
    operands = [op for op in ("expert_gate", "expert_up", "expert_down",
                              "gate_bias", "up_bias", "down_bias")
                if op in mlp.names]

    def tensor(shape: tuple[int, ...]) -> str:
        return "tensor<" + "x".join(str(d) for d in shape) + f"x{t}>"

    # Tokens and result are f32 (the runtime's); weights as stored.
    args = [f"%x: tensor<?x{h}xf32>"] + [
        f"%{op}: {tensor(shapes[op])} "
        f"{{moe.weight = {mlir_string(mlp.names[op])}}}" for op in operands]
    lines = [f"func.func @{func_name}({', '.join(args)}) -> "
             f"tensor<?x{h}xf32> {{",
             f"  %router = arith.constant dense<0.0> : tensor<1x{h}xf32>"]
    one = {}
    for op in operands:
        shape = shapes[op]
        one[op] = (1, *shape)
        groups = "[[0, 1], [2]]" if len(shape) == 2 else "[[0, 1]]"
        lines.append(
            f"  %{op}_1 = tensor.expand_shape %{op} {groups} output_shape "
            f"[{', '.join(str(d) for d in one[op])}] : {tensor(shape)} "
            f"into {tensor(one[op])}")
    projections = ", ".join(
        f"{role} %{op}_1 : {tensor(one[op])}"
        for role, op in (("gate", "expert_gate"), ("up", "expert_up"),
                         ("down", "expert_down")) if op in operands)
    biases = "".join(f" {op}(%{op}_1 : {tensor(one[op])})"
                     for op in operands if op.endswith("_bias"))
    attrs = ""
    if importance is not None:
        with np.errstate(over="ignore"):
            importance = np.asarray(importance, dtype=np.float64).astype(
                np.float32)
        if importance.shape != (i,) or not np.all(np.isfinite(importance)):
            raise ValueError(f"importance must be {i} scores finite in "
                             "float32")
        attrs = (f" {{moe.neuron_importance = dense<"
                 f"{_dense_literal(importance)}> : "
                 f"tensor<{i}xf32>}}")
    lines += [f"  %y = moe.layer %x : tensor<?x{h}xf32> routing "
              f"<softmax, top_k = 1> router(%router : tensor<1x{h}xf32>) "
              f"experts({projections}) activation {mlp.activation}"
              f"{biases}{attrs} -> tensor<?x{h}xf32>",
              f"  return %y : tensor<?x{h}xf32>", "}"]
    return "\n".join(lines) + "\n"
