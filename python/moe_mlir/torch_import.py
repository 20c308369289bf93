"""Import a PyTorch MoE block shaped like the Hugging Face ones.

:func:`import_module` reads an ``nn.Module`` with

- ``gate``: an ``nn.Linear(H, E, bias=False)``, the router (softmax scores);
- ``experts``: an ``nn.ModuleList`` of E experts, each with ``w1``/``w3``/
  ``w2`` (Mixtral: gate/up/down), ``gate_proj``/``up_proj``/``down_proj``
  (Qwen, DeepSeek), or ungated ``up_proj``/``down_proj``, ``fc1``/``fc2``
  or ``wi``/``wo``; ``nn.Linear`` layers, biases allowed (on every expert
  alike); the activation from the expert's ``act_fn``/``act``/
  ``activation_fn`` (SiLU, GELU, GELU-tanh, ReLU, or the Hugging Face
  activation classes);
- optionally ``shared_expert`` or ``shared_experts`` (gated, no biases) and
  ``shared_expert_gate`` (``nn.Linear(H, 1, bias=False)``: the shared
  output is scaled by its sigmoid);
- ``top_k`` (or ``num_experts_per_tok``) and ``norm_topk_prob`` (when
  absent the top-k weights are renormalized, as Mixtral does).

and returns a :class:`TorchLayer`: the :class:`~moe_mlir.emit.LayerSpec`
of the same ``moe.layer`` the Hugging Face importer writes and the weights
under their ``state_dict`` names. :meth:`TorchLayer.write` puts
``model.safetensors``, ``layer.mlir`` and ``layer.json`` (the spec, for
``python3 -m moe_mlir reference --spec``) in a directory, ready for
``moe-run layer.mlir --weights DIR``. Weights keep their dtype (F32, BF16 or
F16).

:func:`import_dense_module` reads a dense MLP (``LlamaMLP``-like) into
the dense-expert form that ``moe-dense-to-moe`` makes experts of
(docs/DenseToMoE.md).

Needs torch (Debian's python3-torch); importing this module does not.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import safetensors_io
from .dense import DenseMLP, emit_dense_module
from .emit import EXPERT, LayerSpec, emit_module
from .layer import ACTIVATIONS
from .routing import Routing

__all__ = ["TorchDenseMLP", "TorchImportError", "TorchLayer",
           "import_dense_module", "import_module"]

# Expert projection attribute names: (gate, up, down), gate None if ungated.
_PROJECTIONS = (("w1", "w3", "w2"), ("gate_proj", "up_proj", "down_proj"),
                (None, "up_proj", "down_proj"), (None, "fc1", "fc2"),
                (None, "wi", "wo"))
_ACTIVATION_ATTRS = ("act_fn", "act", "activation_fn", "activation")
# Module class names (torch.nn and transformers.activations) -> activation.
_ACTIVATION_CLASSES = {
    "SiLU": "silu", "SiLUActivation": "silu", "ReLU": "relu",
    "GELUActivation": "gelu", "NewGELUActivation": "gelu_tanh",
    "GELUTanh": "gelu_tanh", "PytorchGELUTanh": "gelu_tanh",
    "FastGELUActivation": "gelu_tanh"}
_TORCH_DTYPES = {"torch.float32": "f32", "torch.bfloat16": "bf16",
                 "torch.float16": "f16"}


class TorchImportError(ValueError):
    """A module the importer does not understand (one-line reason)."""


@dataclass(frozen=True)
class TorchLayer:
    """An imported block.

    Attributes:
        spec: the layer; its weights name ``tensors`` keys (``{e}`` for
            per-expert ones).
        tensors: ``name -> float32 array`` (values as stored: bf16/f16
            weights are exact in float32).
        storage_dtypes: ``name -> F32 | BF16 | F16``.
    """

    spec: LayerSpec
    tensors: dict[str, np.ndarray]
    storage_dtypes: dict[str, str]

    def operands(self) -> dict[str, np.ndarray]:
        """The ``moe.layer`` operands (float64) for the numpy reference."""
        return {name: value.astype(np.float64)
                for name, value in self.spec.collect(self.tensors).items()}

    def write(self, directory: str | os.PathLike) -> dict[str, str]:
        """Write ``model.safetensors``, ``layer.mlir`` and ``layer.json``.

        Returns:
            ``{"weights", "module", "spec"}`` -> the paths written.
        """
        os.makedirs(directory, exist_ok=True)
        paths = {"weights": os.path.join(directory,
                                         safetensors_io.SINGLE_NAME),
                 "module": os.path.join(directory, "layer.mlir"),
                 "spec": os.path.join(directory, "layer.json")}
        safetensors_io.save_file(paths["weights"], self.tensors,
                                 self.storage_dtypes,
                                 metadata={"format": "pt"})
        with open(paths["module"], "w", encoding="utf-8") as out:
            out.write(emit_module(self.spec, comment=(
                "Imported from a PyTorch module by moe_mlir.torch_import;\n"
                "weights in model.safetensors next to this file.")))
        with open(paths["spec"], "w", encoding="utf-8") as out:
            json.dump(self.spec.to_dict(), out, indent=2)
            out.write("\n")
        return paths


def _torch() -> Any:
    try:
        import torch  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise TorchImportError("the PyTorch importer needs torch (Debian: "
                               "apt install python3-torch)") from None
    return torch


class _Collector:
    """Gathers the tensors of the block under their ``state_dict`` names."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.tensors: dict[str, np.ndarray] = {}
        self.dtypes: dict[str, str] = {}

    def add(self, name: str, parameter: Any) -> str:
        dtype = _TORCH_DTYPES.get(str(parameter.dtype))
        if dtype is None:
            raise TorchImportError(f"'{self.prefix}{name}' is "
                                   f"{parameter.dtype}; expected float32, "
                                   "bfloat16 or float16")
        self.tensors[self.prefix + name] = \
            parameter.detach().cpu().float().numpy().copy()
        self.dtypes[self.prefix + name] = dtype.upper()
        return dtype


def _linear(module: Any, owner: str, name: str, torch: Any) -> Any:
    layer = getattr(module, name, None)
    if not isinstance(layer, torch.nn.Linear):
        raise TorchImportError(f"{owner}.{name} must be an nn.Linear, got "
                               f"{type(layer).__name__}")
    return layer


def _activation(module: Any, owner: str, torch: Any) -> str | None:
    for attr in _ACTIVATION_ATTRS:
        act = getattr(module, attr, None)
        if act is None:
            continue
        if isinstance(act, torch.nn.GELU):
            return "gelu_tanh" if act.approximate == "tanh" else "gelu"
        if act is torch.nn.functional.silu:
            return "silu"
        if act is torch.nn.functional.relu:
            return "relu"
        name = _ACTIVATION_CLASSES.get(type(act).__name__)
        if name is None:
            raise TorchImportError(f"{owner}.{attr}: unsupported activation "
                                   f"{type(act).__name__} (pass activation=)")
        return name
    return None


def _projection_names(expert: Any, owner: str, torch: Any
                      ) -> tuple[str | None, str, str]:
    for names in _PROJECTIONS:
        if all(isinstance(getattr(expert, n, None), torch.nn.Linear)
               for n in names if n is not None):
            return names
    raise TorchImportError(
        f"{owner} has no projections the importer knows (w1/w3/w2, "
        "gate_proj/up_proj/down_proj, up_proj/down_proj, fc1/fc2, wi/wo)")


def _experts(module: Any, collect: _Collector, torch: Any
             ) -> tuple[dict[str, str], dict[str, str], str | None, int]:
    """Routed expert weights: (weights, dtypes, activation, intermediate)."""
    experts = getattr(module, "experts", None)
    if not isinstance(experts, torch.nn.ModuleList) or len(experts) == 0:
        raise TorchImportError("the block needs `experts`, a non-empty "
                               "nn.ModuleList")
    names = _projection_names(experts[0], "experts.0", torch)
    kinds = ("gate", "up", "down")
    weights: dict[str, str] = {}
    dtypes: dict[str, str] = {}
    activations = set()
    biased = {kind: getattr(experts[0], name).bias is not None
              for kind, name in zip(kinds, names) if name is not None}
    for index, expert in enumerate(experts):
        owner = f"experts.{index}"
        if _projection_names(expert, owner, torch) != names:
            raise TorchImportError(f"{owner} differs in its projections from "
                                   "experts.0")
        activations.add(_activation(expert, owner, torch))
        for kind, attr in zip(kinds, names):
            if attr is None:
                continue
            linear = getattr(expert, attr)
            if (linear.bias is not None) != biased[kind]:
                raise TorchImportError(f"{owner}.{attr}: biases must be on "
                                       "every expert or none")
            params = [("expert_" + kind, "weight", linear.weight)]
            if linear.bias is not None:
                params.append((f"{kind}_bias", "bias", linear.bias))
            for operand, suffix, tensor in params:
                dtype = collect.add(f"{owner}.{attr}.{suffix}", tensor)
                if dtypes.setdefault(operand, dtype) != dtype:
                    raise TorchImportError(f"{owner}.{attr}.{suffix} is "
                                           f"{dtype}, other experts' are "
                                           f"{dtypes[operand]}")
                weights[operand] = (f"{collect.prefix}experts.{EXPERT}."
                                    f"{attr}.{suffix}")
    if len(activations) > 1:
        raise TorchImportError("experts use different activations")
    up = getattr(experts[0], names[1]).weight
    return weights, dtypes, activations.pop(), int(up.shape[0])


def _shared(module: Any, collect: _Collector, torch: Any
            ) -> tuple[dict[str, str], dict[str, str], str | None, int]:
    """Shared expert weights, as :func:`_experts` (empty when none)."""
    attr = next((a for a in ("shared_expert", "shared_experts")
                 if getattr(module, a, None) is not None), None)
    if attr is None:
        if getattr(module, "shared_expert_gate", None) is not None:
            raise TorchImportError("shared_expert_gate without a "
                                   "shared_expert")
        return {}, {}, None, 0
    shared = getattr(module, attr)
    names = _projection_names(shared, attr, torch)
    if names[0] is None:
        raise TorchImportError(f"{attr} must be gated (gate/up/down "
                               "projections)")
    weights, dtypes = {}, {}
    for kind, name in zip(("gate", "up", "down"), names):
        linear = _linear(shared, attr, name, torch)
        if linear.bias is not None:
            raise TorchImportError(f"{attr}.{name} has a bias; shared experts "
                                   "take none")
        dtypes["shared_" + kind] = collect.add(f"{attr}.{name}.weight",
                                               linear.weight)
        weights["shared_" + kind] = f"{collect.prefix}{attr}.{name}.weight"
    if getattr(module, "shared_expert_gate", None) is not None:
        gate = _linear(module, "block", "shared_expert_gate", torch)
        if gate.bias is not None or gate.weight.shape[0] != 1:
            raise TorchImportError("shared_expert_gate must be "
                                   "nn.Linear(H, 1, bias=False)")
        dtypes["shared_expert_gate"] = collect.add(
            "shared_expert_gate.weight", gate.weight)
        weights["shared_expert_gate"] = \
            f"{collect.prefix}shared_expert_gate.weight"
    inter = int(getattr(shared, names[1]).weight.shape[0])
    return weights, dtypes, _activation(shared, attr, torch), inter


def import_module(module: Any, *, top_k: int | None = None,
                  renormalize: bool | None = None,
                  activation: str | None = None, prefix: str = "",
                  func_name: str = "forward") -> TorchLayer:
    """Import a Hugging Face-shaped MoE block (see the module docstring).

    Args:
        module: the ``nn.Module``.
        top_k: K, when the module has no ``top_k``/``num_experts_per_tok``.
        renormalize: override ``norm_topk_prob``.
        activation: override the detected activation (``silu``, ``gelu``,
            ``gelu_tanh``, ``relu``).
        prefix: prepended to every tensor name (``model.layers.3.mlp.``).
        func_name: the entry point's name.

    Raises:
        TorchImportError: the module does not fit (one-line reason).
    """
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise TorchImportError(f"expected an nn.Module, got "
                               f"{type(module).__name__}")
    collect = _Collector(prefix)
    router = _linear(module, "block", "gate", torch)
    if router.bias is not None:
        raise TorchImportError("gate has a bias; routers take none")
    weights = {"router": f"{prefix}gate.weight"}
    dtypes = {"router": collect.add("gate.weight", router.weight)}
    num_experts, hidden = (int(d) for d in router.weight.shape)

    expert_weights, expert_dtypes, expert_act, inter = _experts(
        module, collect, torch)
    if len(module.experts) != num_experts:
        raise TorchImportError(f"gate scores {num_experts} experts but "
                               f"`experts` has {len(module.experts)}")
    shared_weights, shared_dtypes, shared_act, shared_inter = _shared(
        module, collect, torch)
    weights.update(expert_weights, **shared_weights)
    dtypes.update(expert_dtypes, **shared_dtypes)

    if activation is None:
        found = {a for a in (expert_act, shared_act) if a is not None}
        if len(found) > 1:
            raise TorchImportError("routed and shared experts use different "
                                   "activations")
        if not found:
            raise TorchImportError("no activation found on the experts "
                                   "(act_fn); pass activation=")
        activation = found.pop()
    if top_k is None:
        top_k = getattr(module, "top_k", None) or getattr(
            module, "num_experts_per_tok", None)
        if top_k is None:
            raise TorchImportError("the block has no top_k or "
                                   "num_experts_per_tok; pass top_k=")
    if renormalize is None:
        renormalize = bool(getattr(module, "norm_topk_prob", True))
    try:
        routing = Routing(top_k=int(top_k),
                          renormalize="selected" if renormalize else "none")
        spec = LayerSpec(hidden=hidden, intermediate=inter,
                         num_experts=num_experts, routing=routing,
                         weights=weights, dtypes=dtypes,
                         activation=activation,
                         shared_intermediate=shared_inter,
                         func_name=func_name)
        spec.collect(collect.tensors)  # every shape as the layer needs
    except (ValueError, KeyError) as err:
        raise TorchImportError(str(err)) from None
    return TorchLayer(spec=spec, tensors=collect.tensors,
                      storage_dtypes=collect.dtypes)


@dataclass(frozen=True)
class TorchDenseMLP:
    """An imported dense MLP (:func:`import_dense_module`).

    Attributes:
        mlp: the MLP, its ``names`` the ``state_dict`` names of ``tensors``.
        tensors: ``name -> float32 array`` (values as stored).
        storage_dtypes: ``name -> F32 | BF16 | F16``.
    """

    mlp: DenseMLP
    tensors: dict[str, np.ndarray]
    storage_dtypes: dict[str, str]

    def write(self, directory: str | os.PathLike,
              importance: np.ndarray | None = None) -> dict[str, str]:
        """Write ``model.safetensors`` and ``layer.mlir`` (the dense-expert
        form, ``importance`` its ``moe.neuron_importance``)."""
        os.makedirs(directory, exist_ok=True)
        paths = {"weights": os.path.join(directory,
                                         safetensors_io.SINGLE_NAME),
                 "module": os.path.join(directory, "layer.mlir")}
        safetensors_io.save_file(paths["weights"], self.tensors,
                                 self.storage_dtypes,
                                 metadata={"format": "pt"})
        with open(paths["module"], "w", encoding="utf-8") as out:
            out.write(emit_dense_module(self.mlp, importance=importance))
        return paths


def import_dense_module(module: Any, *, activation: str | None = None,
                        prefix: str = "") -> TorchDenseMLP:
    """Import a dense MLP shaped like the Hugging Face ones (``LlamaMLP``,
    ``Qwen2MLP``, ``MistralMLP``: ``gate_proj``/``up_proj``/``down_proj``;
    or ungated ``up_proj``/``down_proj``, ``fc1``/``fc2``, ``wi``/``wo``;
    ``nn.Linear`` layers with or without biases, the activation from
    ``act_fn`` and the like or ``activation=``) into the dense-expert form
    that ``moe-dense-to-moe`` rewrites (docs/DenseToMoE.md).

    Raises:
        TorchImportError: the reason, in one line.
    """
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise TorchImportError(f"expected an nn.Module, got "
                               f"{type(module).__name__}")
    names = _projection_names(module, "the MLP", torch)
    collect = _Collector(prefix)
    dtypes, values, names_of = set(), {}, {}
    for kind, attr in zip(("gate", "up", "down"), names):
        if attr is None:
            continue
        linear = getattr(module, attr)
        params = [("expert_" + kind, "weight", linear.weight)]
        if linear.bias is not None:
            params.append((f"{kind}_bias", "bias", linear.bias))
        for operand, suffix, tensor in params:
            name = f"{attr}.{suffix}"
            dtypes.add(collect.add(name, tensor))
            values[operand] = collect.tensors[prefix + name]
            names_of[operand] = prefix + name
    if len(dtypes) != 1:
        raise TorchImportError(f"the MLP's parameters have several dtypes "
                               f"({', '.join(sorted(dtypes))})")
    act = activation or _activation(module, "the MLP", torch)
    if act is not None and act not in ACTIVATIONS:
        raise TorchImportError(f"unknown activation '{act}' (expected one of "
                               f"{', '.join(ACTIVATIONS)})")
    if act is None:
        raise TorchImportError("the MLP has no act_fn/act/activation_fn "
                               "(pass activation=)")
    hidden, inter = values["expert_up"].shape[1], values["expert_up"].shape[0]
    if values["expert_down"].shape != (hidden, inter):
        raise TorchImportError(f"the down projection is "
                               f"{list(values['expert_down'].shape)}, "
                               f"expected [{hidden}, {inter}]")
    mlp = DenseMLP(up=values["expert_up"], down=values["expert_down"],
                   gate=values.get("expert_gate"), activation=act,
                   biases={k: v for k, v in values.items()
                           if k.endswith("_bias")},
                   dtype=dtypes.pop(), names=names_of)
    return TorchDenseMLP(mlp=mlp, tensors=collect.tensors,
                         storage_dtypes=collect.dtypes)

