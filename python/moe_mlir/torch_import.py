"""Import a PyTorch MoE block shaped like the Hugging Face ones.

:func:`import_module` reads an ``nn.Module`` with

- a router, ``gate`` or ``router``: an ``nn.Linear(H, E)`` (``transformers``
  v4) or a module holding a ``weight`` ``[E, H]`` (v5's ``TopKRouter``
  classes), a bias allowed, and DeepSeek-V3's ``e_score_correction_bias``;
- ``experts``: an ``nn.ModuleList`` of E experts (v4), each with
  ``w1``/``w3``/``w2`` (Mixtral: gate/up/down), ``gate_proj``/``up_proj``/
  ``down_proj`` (Qwen, DeepSeek), or ungated ``up_proj``/``down_proj``,
  ``fc1``/``fc2`` or ``wi``/``wo``; ``nn.Linear`` layers, biases allowed (on
  every expert alike); or one module holding the experts' 3-D tensors (v5,
  ``@use_experts_implementation``): ``gate_up_proj`` ``[E, 2I, H]`` and
  ``down_proj`` ``[E, H, I]``, or both transposed (``is_transposed``:
  ``[E, H, 2I]``, ``[E, I, H]``), the gate half first or the halves
  interleaved (``is_concatenated`` false), biases ``gate_up_proj_bias`` and
  ``down_proj_bias``, or ungated ``up_proj``; the activation from the
  experts' ``act_fn``/``act``/``activation_fn`` (SiLU, GELU, GELU-tanh,
  ReLU, or the Hugging Face activation classes);
- optionally ``shared_expert`` or ``shared_experts`` (gated, no biases) and
  ``shared_expert_gate`` (``nn.Linear(H, 1, bias=False)``: the shared
  output is scaled by its sigmoid);
- ``top_k`` (or ``num_experts_per_tok``, on the block or its router) and
  ``norm_topk_prob`` (when absent the top-k weights are renormalized, as
  Mixtral does), the routing being a softmax over the experts, top-k.

When the block, its experts or its router keep the model's configuration
(``config``, as ``transformers`` modules do) and its ``model_type`` is a
family the checkpoint importer knows (docs/Importing.md), the routing,
activation and the rest of the block's math are the family's, as for a
checkpoint of that model (DeepSeek-V3's grouped sigmoid routing, gpt-oss's
clamped SwiGLU, Llama 4's input-scaled experts...): the block's tensors are
then read under the family's checkpoint names when the module has them (a v4
module's ``state_dict`` is the checkpoint's) or from the layouts above, and
their sizes must be those the configuration gives its layer.

It returns a :class:`TorchLayer`: the :class:`~moe_mlir.emit.LayerSpec`
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

import dataclasses
import json
import os
import re
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from . import families, safetensors_io, seq2seq
from .dense import DenseMLP, emit_dense_module
from .emit import EXPERT, LayerSpec, emit_module
from .families._family import fused_halves
from .hf_import import ModelImportError, check_layer, seq2seq_block
from .layer import ACTIVATIONS
from .routing import Routing
from .views import Slice, View

__all__ = ["TorchDenseMLP", "TorchImportError", "TorchLayer",
           "import_dense_module", "import_model", "import_module"]

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


# Where blocks keep their shared expert (HunYuan: shared_mlp).
_SHARED_ATTRS = ("shared_expert", "shared_experts", "shared_mlp")


# The transformers families whose blocks route as the attribute path reads
# them (softmax over the experts, top-k, renormalized iff norm_topk_prob,
# absent: renormalized); another family's block without its configuration
# would be imported with the wrong routing, and is refused.
_ATTRIBUTE_ROUTED = frozenset({"mixtral", "minimax", "qwen2_moe", "qwen3_moe",
                               "qwen3_next", "qwen3_vl_moe", "olmoe",
                               "flex_olmo"})


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


def _torch_for(module: Any) -> Any:
    """torch, once ``module`` is checked to be an ``nn.Module``."""
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise TorchImportError(f"expected an nn.Module, got "
                               f"{type(module).__name__}")
    return torch


class _Collector:
    """Gathers the tensors of the block under their ``state_dict`` names."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.tensors: dict[str, np.ndarray] = {}
        self.dtypes: dict[str, str] = {}

    def add(self, name: str, parameter: Any) -> str:
        if getattr(parameter, "is_meta", False) or \
                getattr(parameter, "is_sparse", False):
            raise TorchImportError(f"'{self.prefix}{name}' holds no dense "
                                   "values (a meta or sparse tensor)")
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
    attr = next((a for a in _SHARED_ATTRS
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


def _parameter(owner: Any, name: str, torch: Any) -> Any:
    """``owner.name`` when it is a tensor (a parameter or a buffer)."""
    value = getattr(owner, name, None)
    return value if isinstance(value, torch.Tensor) else None


def _top_k(value: Any, where: str) -> int:
    """``value`` as K: a positive integer (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TorchImportError(f"{where} must be a positive integer, got "
                               f"{value!r}")
    return value


def _router_attr(module: Any, torch: Any) -> str | None:
    """Where the block keeps its router: ``gate`` or ``router``."""
    return next((a for a in ("gate", "router")
                 if isinstance(getattr(module, a, None), torch.nn.Module)),
                None)


def _router(module: Any, collect: _Collector, torch: Any
            ) -> tuple[dict[str, str], dict[str, str], dict[str, View], int,
                       int]:
    """The router's tensors: (weights, dtypes, views, rows, hidden). The
    router is ``gate`` or ``router``: an nn.Linear, a module holding a 2-D
    ``weight``, or one holding a single nn.Linear (HunYuan's ``gate.wg``,
    LongCat's ``router.classifier``, Granite's ``router.layer``); the
    selection bias is its ``e_score_correction_bias`` wherever it keeps it
    (ERNIE's ``gate.moe_statics``), ``[E]`` or ``[1, E]``."""
    attr = _router_attr(module, torch)
    if attr is None:
        raise TorchImportError("the block needs a router: `gate` or `router`, "
                               "an nn.Linear or a module holding its "
                               "`weight`")
    router, path = getattr(module, attr), attr
    weight = _parameter(router, "weight", torch)
    if weight is None:
        linears = [(name, child) for name, child in router.named_children()
                   if isinstance(child, torch.nn.Linear)]
        if len(linears) == 1:
            name, router = linears[0]
            path, weight = f"{attr}.{name}", router.weight
    if weight is None or weight.dim() != 2:
        raise TorchImportError(f"{attr} must be an nn.Linear or hold a 2-D "
                               f"`weight` (the router's [E, H]), got "
                               f"{type(router).__name__}")
    rows, hidden = (int(d) for d in weight.shape)
    weights = {"router": f"{collect.prefix}{path}.weight"}
    dtypes = {"router": collect.add(f"{path}.weight", weight)}
    views: dict[str, View] = {}
    bias = _parameter(router, "bias", torch)
    if bias is not None:
        if tuple(bias.shape) != (rows,):
            raise TorchImportError(f"{path}.bias is {list(bias.shape)}, "
                                   f"expected [{rows}]")
        weights["router_bias"] = f"{collect.prefix}{path}.bias"
        dtypes["router_bias"] = collect.add(f"{path}.bias", bias)
    owner = getattr(module, attr)
    found = [(name, tensor) for name, tensor in
             list(owner.named_parameters()) + list(owner.named_buffers())
             if name.rsplit(".", 1)[-1] == "e_score_correction_bias"]
    if len(found) > 1:
        raise TorchImportError(f"{attr} holds several "
                               "e_score_correction_bias tensors")
    if found:
        name, tensor = found[0]
        if tuple(tensor.shape) not in ((rows,), (1, rows)):
            raise TorchImportError(f"{attr}.{name} is {list(tensor.shape)}, "
                                   f"expected [{rows}] or [1, {rows}]")
        weights["score_bias"] = f"{collect.prefix}{attr}.{name}"
        dtypes["score_bias"] = collect.add(f"{attr}.{name}", tensor)
        if tensor.dim() == 2:
            views["score_bias"] = View(source=(1, rows), reshape=(rows,))
    return weights, dtypes, views, rows, hidden


def _fused_layout(fused: Any, down: Any, gated: bool, hidden: int,
                  transposed: bool | None) -> tuple[bool, int]:
    """(transposed, intermediate) of stacked experts whose first projection
    is ``fused`` (``[E, 2I, H]`` gated, ``[E, I, H]`` not, or the last two
    axes swapped) and whose down projection is ``down``, over ``hidden``
    (the router's H: ungated shapes alone read either way)."""
    halves = 2 if gated else 1
    e, a, b = (int(d) for d in fused.shape)
    readings = {}
    if tuple(down.shape) == (e, b, a // halves) and a % halves == 0 and \
            b == hidden:
        readings[False] = a // halves
    if tuple(down.shape) == (e, b // halves, a) and b % halves == 0 and \
            a == hidden:
        readings[True] = b // halves
    first = "gate_up_proj" if gated else "up_proj"
    if not readings:
        raise TorchImportError(
            f"experts: {first} {list(fused.shape)} and down_proj "
            f"{list(down.shape)} are neither [E, {'2I' if gated else 'I'}, H]"
            f" and [E, H, I] nor their transposes with H = {hidden} (the "
            "router's)")
    if transposed is not None and transposed not in readings:
        raise TorchImportError(
            f"experts: {first} {list(fused.shape)} and down_proj "
            f"{list(down.shape)} are not the "
            f"{'transposed' if transposed else 'untransposed'} layout "
            "is_transposed names")
    if transposed is None:
        if len(readings) > 1:
            raise TorchImportError("experts: the shapes do not tell whether "
                                   "the tensors are transposed (H = I); the "
                                   "experts module needs is_transposed")
        transposed = next(iter(readings))
    return transposed, readings[transposed]


def _stacked_experts(module: Any, collect: _Collector, torch: Any,
                     hidden: int, zero_experts: int = 0
                     ) -> tuple[dict[str, str], dict[str, str],
                                dict[str, View], str | None, int, int]:
    """Experts held as 3-D tensors (transformers v5) over the router's
    ``hidden``: (weights, dtypes, views, activation, experts,
    intermediate)."""
    experts = module.experts
    gate_up = _parameter(experts, "gate_up_proj", torch)
    up = _parameter(experts, "up_proj", torch)
    down = _parameter(experts, "down_proj", torch)
    fused = gate_up if gate_up is not None else up
    if fused is None or down is None or fused.dim() != 3 or down.dim() != 3:
        raise TorchImportError(
            "experts must be an nn.ModuleList of experts or hold the "
            "experts' 3-D gate_up_proj (or up_proj) and down_proj tensors")
    gated = gate_up is not None
    if zero_experts and fused.shape[0] == down.shape[0] + zero_experts:
        # LongCat's first projection has rows for its identity experts too
        # (ids from E on), which never multiply: the E experts' are kept.
        fused = fused[:down.shape[0]]
    if getattr(experts, "has_gate", gated) != gated:
        raise TorchImportError("experts: has_gate disagrees with the "
                               "tensors (gate_up_proj is the gated form)")
    flag = getattr(experts, "is_transposed", None)
    transposed, inter = _fused_layout(
        fused, down, gated, hidden, None if flag is None else bool(flag))
    interleaved = not bool(getattr(experts, "is_concatenated", True))
    count = int(down.shape[0])
    first = "gate_up_proj" if gated else "up_proj"
    name = f"{collect.prefix}experts."
    weights: dict[str, str] = {}
    dtypes: dict[str, str] = {}
    views: dict[str, View] = {}
    dtype = collect.add(f"experts.{first}", fused)
    if gated:
        views["expert_gate"], views["expert_up"] = fused_halves(
            tuple(fused.shape), axis=2 if transposed else 1, width=inter,
            transposed=transposed, interleaved=interleaved)
        weights["expert_gate"] = weights["expert_up"] = name + first
        dtypes["expert_gate"] = dtypes["expert_up"] = dtype
    else:
        views["expert_up"] = View(
            source=tuple(fused.shape),
            permutation=(0, 2, 1) if transposed else None)
        weights["expert_up"], dtypes["expert_up"] = name + first, dtype
    views["expert_down"] = View(source=tuple(down.shape),
                                permutation=(0, 2, 1) if transposed else None)
    weights["expert_down"] = name + "down_proj"
    dtypes["expert_down"] = collect.add("experts.down_proj", down)
    fused_bias = _parameter(experts, f"{first}_bias", torch)
    if fused_bias is not None:
        shape = (count, (2 if gated else 1) * inter)
        if tuple(fused_bias.shape) != shape:
            raise TorchImportError(f"experts.{first}_bias is "
                                   f"{list(fused_bias.shape)}, expected "
                                   f"{list(shape)}")
        bias_dtype = collect.add(f"experts.{first}_bias", fused_bias)
        if gated:
            halves = ((Slice(1, 0, inter, 2), Slice(1, 1, inter, 2))
                      if interleaved else
                      (Slice(1, 0, inter), Slice(1, inter, inter)))
            for operand, half in zip(("gate_bias", "up_bias"), halves):
                views[operand] = View(source=shape, slice=half)
                weights[operand] = name + f"{first}_bias"
                dtypes[operand] = bias_dtype
        else:
            views["up_bias"] = View(source=shape)
            weights["up_bias"] = name + f"{first}_bias"
            dtypes["up_bias"] = bias_dtype
    down_bias = _parameter(experts, "down_proj_bias", torch)
    if down_bias is not None:
        if tuple(down_bias.shape) != (count, hidden):
            raise TorchImportError(f"experts.down_proj_bias is "
                                   f"{list(down_bias.shape)}, expected "
                                   f"[{count}, {hidden}]")
        views["down_bias"] = View(source=(count, hidden))
        weights["down_bias"] = name + "down_proj_bias"
        dtypes["down_bias"] = collect.add("experts.down_proj_bias", down_bias)
    return (weights, dtypes, views, _activation(experts, "experts", torch),
            count, inter)


def _module_config(module: Any, given: Any = None) -> dict[str, Any] | None:
    """The model configuration ``given`` or kept by the block or its parts
    (``transformers`` v5's experts keep theirs; DeepSeek's blocks and
    routers and the shared experts' MLPs too), as a dict with a
    ``model_type``, or ``None``."""
    owners = [getattr(module, a, None) for a in
              ("experts", "gate", "router") + _SHARED_ATTRS]
    candidates = [given] if given is not None else \
        [getattr(owner, "config", None) for owner in [module] + owners]
    for config in candidates:
        if config is None:
            continue
        if hasattr(config, "to_dict"):
            try:
                config = config.to_dict()
            except Exception as err:  # a foreign object's own failure
                raise TorchImportError(f"the configuration's to_dict() "
                                       f"failed: {err}") from None
        if isinstance(config, Mapping) and \
                isinstance(config.get("model_type"), str):
            return dict(config)
        if given is not None:
            raise TorchImportError("the configuration must be a "
                                   "transformers configuration or a dict "
                                   "with a model_type")
    return None


def _family_spec(config: Mapping[str, Any],
                 layer: int | str | None) -> LayerSpec | None:
    """The block of layer ``layer`` (the first MoE layer when ``None``) of
    a configuration whose family the checkpoint importer knows, or
    ``None`` for another ``model_type``."""
    try:
        return _configured_spec(config, layer)
    except ModelImportError as err:     # the checkpoint importer's own line
        raise TorchImportError(str(err)) from None
    except TorchImportError:
        raise
    except (ValueError, TypeError) as err:
        reason = re.sub(r"^config\.json:? ", "", str(err))
        raise TorchImportError(f"the block's configuration: {reason}") \
            from None


def _configured_spec(config: Mapping[str, Any],
                     layer: int | str | None) -> LayerSpec | None:
    """:func:`_family_spec`, its errors as raised; layers are checked as
    the checkpoint importer checks them."""
    model_type = config["model_type"]
    encoder_decoder = seq2seq.SPELLINGS.get(model_type)
    if encoder_decoder is not None:
        config = {**config, "model_type": encoder_decoder}
        if layer is None:   # the first MoE block, of the encoder if any
            layer = next((f"{stack}.{index}" for stack in seq2seq.STACKS
                          for index in seq2seq.sparse_blocks(config, stack)),
                         None)
            if layer is None:
                raise ValueError(f"the {encoder_decoder} configuration has "
                                 "no MoE block")
        return seq2seq_block(config, layer)[1]
    family = families.family_of(config)
    if family is None and model_type.endswith("_text"):
        # A multimodal model's text configuration (qwen3_vl_moe_text): the
        # family reads it nested in the model's.
        outer = families.family_of({"model_type": model_type[:-5]})
        if outer is not None and outer.text_config:
            nested: dict[str, Any] = dict(config)
            for key in reversed(outer.text_config):
                nested = {key: nested}
            config = {**nested, "model_type": outer.model_types[0]}
            family = outer
    if family is None:
        return None
    if layer is None:
        settings = family.settings(config)
        layer = next((i for i in range(family.num_layers(config))
                      if family.is_moe_layer(settings, i)), None)
        if layer is None:
            raise ValueError(f"the {family.name} configuration has no MoE "
                             "layer")
    elif isinstance(layer, bool) or not isinstance(layer, int):
        raise TorchImportError(f"layer= must be a decoder layer's index, "
                               f"got {layer!r}")
    check_layer(config, layer)
    return families.layer_spec(config, layer, dtype="f32")


def _block_prefix(spec: LayerSpec) -> str:
    """What the checkpoint names of ``spec``'s tensors share up to a dot
    (``model.layers.3.mlp.``; empty if nothing)."""
    common = os.path.commonprefix(list(spec.weights.values()))
    return common[:common.rfind(".") + 1]


def _checkpoint_names(state: Mapping[str, Any], spec: LayerSpec
                      ) -> dict[str, list[str]] | None:
    """``operand -> names`` in ``state`` (a block's ``state_dict``) of the
    block's tensors under the names ``spec`` gives them in a checkpoint
    (less :func:`_block_prefix`), when ``state`` holds every one with the
    checkpoint's shape; else ``None``. Reads names and shapes only."""
    block = _block_prefix(spec)
    shapes = spec.checkpoint_tensors()
    found = {operand: spec.tensor_names(operand) for operand in spec.weights}
    for names in found.values():
        for name in names:
            tensor = state.get(name[len(block):])
            if tensor is None or tuple(tensor.shape) != shapes[name][0]:
                return None
    return {operand: [name[len(block):] for name in names]
            for operand, names in found.items()}


def _checkpoint_named(module: Any, spec: LayerSpec, collect: _Collector
                      ) -> tuple[dict[str, str], dict[str, str]] | None:
    """The block's tensors under their checkpoint names
    (:func:`_checkpoint_names`), collected: (weights, dtypes); else
    ``None``."""
    state = module.state_dict()
    found = _checkpoint_names(state, spec)
    if found is None:
        return None
    block = _block_prefix(spec)
    weights: dict[str, str] = {}
    dtypes: dict[str, str] = {}
    for operand, names in found.items():
        for name in names:
            dtype = collect.add(name, state[name])
            if dtypes.setdefault(operand, dtype) != dtype:
                raise TorchImportError(f"{name} is {dtype}, the other "
                                       f"tensors of {operand} "
                                       f"{dtypes[operand]}")
        weights[operand] = collect.prefix + \
            spec.weights[operand][len(block):]
    return weights, dtypes


@dataclass(frozen=True)
class _Structure:
    """What a block's modules say of it."""

    weights: dict[str, str]
    dtypes: dict[str, str]
    views: dict[str, View]
    activation: str | None
    router_rows: int
    hidden: int
    intermediate: int
    shared_intermediate: int
    experts: int


def _structural(module: Any, collect: _Collector, torch: Any,
                zero_experts: int = 0) -> _Structure:
    """The block's tensors and sizes by its structure (``zero_experts``:
    the identity experts a stacked first projection may hold rows for)."""
    weights, dtypes, views, rows, hidden = _router(module, collect, torch)
    experts = getattr(module, "experts", None)
    if isinstance(experts, torch.nn.ModuleList):
        expert_weights, expert_dtypes, expert_act, inter = _experts(
            module, collect, torch)
        count = len(experts)
    elif isinstance(experts, torch.nn.Module):
        (expert_weights, expert_dtypes, expert_views, expert_act, count,
         inter) = _stacked_experts(module, collect, torch, hidden,
                                   zero_experts)
        views.update(expert_views)
    else:
        raise TorchImportError("the block needs `experts`: an nn.ModuleList "
                               "of experts or a module holding their 3-D "
                               "tensors")
    shared_weights, shared_dtypes, shared_act, shared_inter = _shared(
        module, collect, torch)
    weights.update(expert_weights, **shared_weights)
    dtypes.update(expert_dtypes, **shared_dtypes)
    found = {a for a in (expert_act, shared_act) if a is not None}
    if len(found) > 1:
        raise TorchImportError("routed and shared experts use different "
                               "activations")
    if count == 0:
        raise TorchImportError("the block has no experts")
    return _Structure(weights, dtypes, views, found.pop() if found else None,
                      rows, hidden, inter, shared_inter, count)
def import_module(module: Any, *, top_k: int | None = None,
                  renormalize: bool | None = None,
                  activation: str | None = None, prefix: str = "",
                  func_name: str = "forward",
                  layer: int | str | None = None,
                  config: Any = None) -> TorchLayer:
    """Import a Hugging Face-shaped MoE block (see the module docstring).

    Args:
        module: the ``nn.Module``.
        top_k: K, when the module has no ``top_k``/``num_experts_per_tok``
            (or to override its configuration's).
        renormalize: override ``norm_topk_prob``.
        activation: override the detected activation (``silu``, ``gelu``,
            ``gelu_tanh``, ``relu``).
        prefix: prepended to every tensor name (``model.layers.3.mlp.``).
        func_name: the entry point's name.
        layer: the decoder layer the block is (``"encoder.N"`` or
            ``"decoder.N"`` of an encoder-decoder model), for a block whose
            configuration the importer reads (where layers differ); by
            default the block's ``layer_idx``, else the first MoE layer.
        config: the model's configuration (a ``transformers`` one or its
            ``to_dict()``), for a block that keeps none (Granite, DBRX,
            JetMoE, v4 Mixtral); by default the one the block keeps.

    Raises:
        TorchImportError: the module does not fit (one-line reason).
    """
    torch = _torch_for(module)
    if not isinstance(prefix, str) or not isinstance(func_name, str):
        raise TorchImportError("prefix= and func_name= must be strings")
    if renormalize is not None and not isinstance(renormalize, bool):
        raise TorchImportError(f"renormalize= must be a bool, got "
                               f"{renormalize!r}")
    if top_k is not None:
        top_k = _top_k(top_k, "top_k=")
    config = _module_config(module, config)
    layer_given = layer is not None
    if layer is None and config is not None and \
            config["model_type"] not in seq2seq.SPELLINGS:
        # HunYuan's blocks know their layer (their top-k is per layer).
        layer = next((index for owner in (module, getattr(module, "gate",
                                                          None))
                      for index in [getattr(owner, "layer_idx", None)]
                      if isinstance(index, int) and
                      not isinstance(index, bool)), None)
    family = _family_spec(config, layer) if config is not None else None
    if family is None and layer_given:
        raise TorchImportError("layer= needs a block that keeps its model's "
                               "configuration (`config`) of a family the "
                               "importer knows")
    collect = _Collector(prefix)
    if family is not None:
        spec = _family_block(module, family, collect, torch,
                             check_top_k=top_k is None)
    else:
        spec = _attribute_block(module, collect, torch, top_k, activation,
                                config)
    changes: dict[str, Any] = {}
    if top_k is not None:
        changes["top_k"] = int(top_k)
    if renormalize is not None:
        changes["renormalize"] = "selected" if renormalize else "none"
    try:
        spec = dataclasses.replace(
            spec, routing=dataclasses.replace(spec.routing, **changes),
            func_name=func_name, activation=activation or spec.activation)
        spec.collect(collect.tensors)  # every shape as the layer needs
    except (ValueError, KeyError, TypeError) as err:
        raise TorchImportError(str(err).strip('"')) from None
    return TorchLayer(spec=spec, tensors=collect.tensors,
                      storage_dtypes=collect.dtypes)


def import_model(model: Any, layer: int | str, *,
                 func_name: str = "forward", config: Any = None
                 ) -> TorchLayer:
    """Import the MoE block of decoder layer ``layer`` of a whole model (a
    ``transformers`` ``PreTrainedModel``, v4 or v5, of a family the
    checkpoint importer knows), its tensors named as in the model.

    The block is the module at the path the family's checkpoint names give
    it (``model.layers.3.mlp``); where v5 moved it (Mixtral's
    ``block_sparse_moe`` is v5's ``mlp``), the decoder layer's one child
    holding ``experts``.

    Args:
        model: the ``nn.Module`` (its ``config`` the configuration).
        layer: the decoder layer (``"encoder.N"`` or ``"decoder.N"`` of
            an encoder-decoder model).
        func_name: the entry point's name.
        config: the configuration, where the model keeps none.

    Raises:
        TorchImportError: the reason, in one line.
    """
    torch = _torch_for(model)
    settings = _module_config(model, config if config is not None
                              else getattr(model, "config", None))
    if settings is None:
        raise TorchImportError("the model keeps no configuration (config); "
                               "pass config=")
    family = _family_spec(settings, layer)
    if family is None:
        raise TorchImportError(f"model_type {settings['model_type']!r} is no "
                               "family the importer knows")
    path = _block_prefix(family)[:-1]
    block = _submodule(model, path)
    if block is None or not _checkpoint_named_ok(block, family):
        parent, _, _ = path.rpartition(".")
        decoder = _submodule(model, parent)
        holders = [] if decoder is None else [
            name for name, child in decoder.named_children()
            if isinstance(getattr(child, "experts", None), torch.nn.Module)]
        if len(holders) != 1:
            raise TorchImportError(
                f"the model has no MoE block at {path} nor one child of "
                f"{parent or 'the model'} holding `experts`")
        path = f"{parent}.{holders[0]}" if parent else holders[0]
        block = _submodule(model, path)
    return import_module(block, prefix=path + ".", func_name=func_name,
                         layer=layer, config=settings)


def _submodule(model: Any, path: str) -> Any:
    """The module at dotted ``path`` of ``model``, or ``None``."""
    try:
        return model.get_submodule(path) if path else model
    except AttributeError:
        return None


def _checkpoint_named_ok(block: Any, spec: LayerSpec) -> bool:
    """Whether ``block`` is the module the checkpoint names of ``spec``
    are relative to: it holds them, or (v5) it holds the experts."""
    return _checkpoint_names(block.state_dict(), spec) is not None or \
        getattr(block, "experts", None) is not None


def _attribute_block(module: Any, collect: _Collector, torch: Any,
                     top_k: int | None, activation: str | None,
                     config: Mapping[str, Any] | None) -> LayerSpec:
    """A block without a configuration the importer reads (``config``:
    one of another family, if any): softmax top-k routing from its
    attributes (top_k, norm_topk_prob)."""
    source = type(module).__module__.split(".")
    if source[:2] == ["transformers", "models"] and len(source) > 2 and \
            source[2] not in _ATTRIBUTE_ROUTED:
        if config is not None:
            raise TorchImportError(
                f"a transformers {source[2]} block does not route by softmax"
                f" top-k over its attributes, and its configuration's "
                f"model_type {config['model_type']!r} is no family the "
                "importer knows")
        raise TorchImportError(
            f"a transformers {source[2]} block does not route by softmax "
            "top-k over its attributes: pass config= (the model's "
            "configuration)")
    found = _structural(module, collect, torch)
    if "score_bias" in found.weights:
        raise TorchImportError(
            "the router's e_score_correction_bias needs the model's "
            "configuration (DeepSeek-V3-style routing): import a block that "
            "keeps `config`")
    if found.router_rows != found.experts:
        raise TorchImportError(f"gate scores {found.router_rows} experts but "
                               f"`experts` has {found.experts}")
    owners = (module, getattr(module, _router_attr(module, torch)))
    if top_k is None:
        where = next((f"{name}.{a}" for o, name in zip(owners,
                                                       ("block", "router"))
                      for a in ("top_k", "num_experts_per_tok")
                      if getattr(o, a, None) is not None), None)
        if where is None:
            raise TorchImportError("the block has no top_k or "
                                   "num_experts_per_tok; pass top_k=")
        owner = owners[0] if where.startswith("block.") else owners[1]
        top_k = _top_k(getattr(owner, where.split(".")[1]), where)
    if activation is None:
        activation = found.activation
        if activation is None:
            raise TorchImportError("no activation found on the experts "
                                   "(act_fn); pass activation=")
    norm = next((getattr(o, "norm_topk_prob") for o in owners
                 if getattr(o, "norm_topk_prob", None) is not None), True)
    if not isinstance(norm, bool):
        raise TorchImportError(f"norm_topk_prob must be a bool, got "
                               f"{norm!r}")
    try:
        return LayerSpec(
            hidden=found.hidden, intermediate=found.intermediate,
            num_experts=found.experts,
            routing=Routing(top_k=int(top_k),
                            renormalize="selected" if norm else "none"),
            weights=found.weights, dtypes=found.dtypes,
            activation=activation,
            shared_intermediate=found.shared_intermediate,
            views=found.views)
    except (ValueError, KeyError) as err:
        raise TorchImportError(str(err)) from None


def _family_block(module: Any, family: LayerSpec, collect: _Collector,
                  torch: Any, check_top_k: bool) -> LayerSpec:
    """A block whose configuration's family the importer knows: the
    family's block (``family``) on the module's tensors, found under their
    checkpoint names or by the block's structure. With ``check_top_k``,
    a K the block or its router holds must be the configuration's (else
    the block is another layer's)."""
    if check_top_k:
        attr = _router_attr(module, torch)
        for owner in (module, getattr(module, attr) if attr else None):
            k = getattr(owner, "top_k", None)
            if isinstance(k, int) and not isinstance(k, bool) and \
                    k != family.routing.top_k:
                raise TorchImportError(
                    f"the block's top_k is {k}, its configuration's layer "
                    f"has {family.routing.top_k} (pass layer=)")
    named = _checkpoint_named(module, family, collect)
    if named is not None:
        weights, dtypes = named
        return dataclasses.replace(family, weights=weights, dtypes=dtypes,
                                   formats={})
    try:
        found = _structural(module, collect, torch, family.zero_experts)
    except TorchImportError as err:
        raise TorchImportError(
            f"{err}; nor does the block hold the tensors under their "
            f"checkpoint names (those under {_block_prefix(family)!r})") \
            from None
    missing = set(family.weights) ^ set(found.weights)
    if missing:
        operand = sorted(missing)[0]
        side = "configuration" if operand in family.weights else "module"
        raise TorchImportError(
            f"{operand}: only the block's {side} has it (its "
            f"{'module' if side == 'configuration' else 'configuration'} "
            "does not); the importer cannot tell where it is")
    sizes = {"hidden": (found.hidden, family.hidden),
             "intermediate": (found.intermediate, family.intermediate),
             "experts": (found.experts, family.num_experts),
             "shared intermediate": (found.shared_intermediate,
                                     family.shared_intermediate)}
    for what, (has, expected) in sizes.items():
        if has != expected:
            raise TorchImportError(
                f"the block's {what} size is {has}, its configuration's "
                f"layer has {expected} (pass layer=)")
    return dataclasses.replace(family, weights=found.weights,
                               dtypes=found.dtypes, views=found.views,
                               formats={})


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
    torch = _torch_for(module)
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

