"""MLIR text of one MoE layer whose weights come from a checkpoint.

:class:`LayerSpec` describes a ``moe.layer`` block: sizes, routing,
activation, and for each ``moe.layer`` weight operand the checkpoint tensor
it binds and that tensor's element type. :func:`emit_module` prints the
module the tools take (docs/CompiledModules.md): a public
``func.func @forward(%x: tensor<?xHxf32>, <weights>) -> tensor<?xHxf32>``
whose weight arguments carry ``moe.weight = "<checkpoint name>"``; a name
with ``{e}`` binds the stack of the E per-expert tensors. Noisy routing and
``second = random`` add sampled inputs after ``x``
(:attr:`LayerSpec.sampled_inputs`): ``%noise [T,E]`` and ``%uniform [T,1]``.

Shapes (checkpoint layout ``[out, in]``, docs/Semantics.md):

================================  ===========  ============================
operand                           shape        checkpoint name
================================  ===========  ============================
``router``                        ``[E,H]``    one tensor
``router_bias``                   ``[E]``      one tensor
``noise_router``                  ``[E,H]``    one tensor (noisy routing)
``score_bias``                    ``[E]``      one tensor (f32; bf16, f16
                                               widened by the module)
``expert_gate``, ``expert_up``    ``[E,I,H]``  ``{e}``: E tensors ``[I,H]``
``expert_down``                   ``[E,H,I]``  ``{e}``: E tensors ``[H,I]``
``gate_bias``, ``up_bias``        ``[E,I]``    ``{e}``: E tensors ``[I]``
``down_bias``                     ``[E,H]``    ``{e}``: E tensors ``[H]``
``shared_gate``, ``shared_up``    ``[S,H]``    one tensor
``shared_down``                   ``[H,S]``    one tensor
``shared_expert_gate``            ``[1,H]``    one tensor
``gate_scale``, ``up_scale``,     the weight   ``{e}``: E tensors (FP8 block
``down_scale``                    in blocks    scales, ``weight_scale_inv``)
``shared_*_scale``                the weight   one tensor
                                  in blocks
================================  ===========  ============================

FP8 weights (``f8e4m3fn``, DeepSeek-V3) come with f32 block scales: each
projection's scale is its weight's last two dimensions divided by
``weight_block`` (rounded up), and the weight is ``bytes * scale`` of its
block (:mod:`moe_mlir.float8`). MXFP4 weights (``e2m1x2``, gpt-oss) are
bytes of two e2m1 codes along K (the operand ``[.., N, ceil(K/2)]``, MLIR
``i8``), with f32 scales per ``[1, 32]`` block that the checkpoint stores
as U8 exponents (format ``e8m0``); the kernels decode both on the fly
(:mod:`moe_mlir.mxfp4`).

The spec of a Hugging Face family's layer comes from its module in
:mod:`moe_mlir.families`. Activations (``x`` and the result) are f32; weights may be f32,
bf16 or f16 (converted on the fly by the compiled code).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from . import float8, mxfp4
from .layer import ACTIVATIONS, CLAMPED_SWIGLU
from .mlir_syntax import format_float
from .routing import Routing, parse
from .views import View

__all__ = [
    "ELEMENT_TYPES",
    "EXPERT",
    "OPERANDS",
    "STATISTICS",
    "LayerSpec",
    "emit_module",
    "hf_activation",
    "mlir_string",
]

EXPERT = "{e}"
"""The placeholder of a per-expert checkpoint name (the expert index)."""

OPERANDS = ("router", "router_bias", "noise_router", "score_bias",
            "expert_gate",
            "expert_up",
            "expert_down", "gate_bias", "up_bias", "down_bias",
            "shared_gate", "shared_up", "shared_down", "shared_expert_gate",
            "gate_scale", "up_scale", "down_scale", "shared_gate_scale",
            "shared_up_scale", "shared_down_scale")
"""The weight operands of ``moe.layer`` that bind checkpoint tensors, in the
order of the op's syntax (and of the emitted function's arguments)."""

_STACKED = ("expert_gate", "expert_up", "expert_down", "gate_bias",
            "up_bias", "down_bias", "gate_scale", "up_scale", "down_scale")
_SHARED = ("shared_gate", "shared_up", "shared_down", "shared_expert_gate")
SCALES = {"gate_scale": "expert_gate", "up_scale": "expert_up",
          "down_scale": "expert_down", "shared_gate_scale": "shared_gate",
          "shared_up_scale": "shared_up", "shared_down_scale": "shared_down"}
"""Block-scale operands and the projection weight each scales."""

ELEMENT_TYPES = ("f32", "bf16", "f16", "f8e4m3fn", "e2m1x2")
"""Element types a weight may have (the checkpoint's ``F32 BF16 F16
F8_E4M3``, and U8 pairs of e2m1 codes); ``f8e4m3fn`` and ``e2m1x2`` only
for projection weights with a scale."""

_MLIR_ELEMENT_TYPES = {"f8e4m3fn": "f8E4M3FN", "e2m1x2": "i8"}

QUANTIZED = ("f8e4m3fn", "e2m1x2")
"""Element types of block-scaled projection weights."""

FORMATS = ("mxfp4", "e8m0")
"""How a checkpoint may store an operand other than as its own type:
``mxfp4``, a bf16 weight decoded from ``<name>_blocks`` and ``_scales``
when the runtime binds it; ``e8m0``, f32 scales stored as U8 exponents
``s`` (``2 ** (s - 127)``)."""

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$.]*")


def mlir_string(text: str) -> str:
    """``text`` as an MLIR string literal (quotes, backslash, hex escapes)."""
    out = []
    for char in text:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif " " <= char <= "~":
            out.append(char)
        else:
            out.extend(f"\\{byte:02X}" for byte in char.encode("utf-8"))
    return '"' + "".join(out) + '"'


# -- the layer description ---------------------------------------------------

#: Routing statistics a layer can return, in the order of the dialect's
#: ``Statistic`` enum; ``E`` stands for the number of experts in the types.
STATISTICS = {
    "tokens_per_expert": "tensor<Exi64>",
    "tokens_per_expert_before_drop": "tensor<Exi64>",
    "dropped_count": "tensor<i64>",
    "load_balancing_loss": "tensor<f32>",
    "z_loss": "tensor<f32>",
    "importance_loss": "tensor<f32>",
}

@dataclass(frozen=True)
class LayerSpec:
    """One ``moe.layer`` whose weights are checkpoint tensors.

    Attributes:
        hidden: H.
        intermediate: I, the routed experts' intermediate size.
        num_experts: E.
        routing: the scheme, as a :class:`~moe_mlir.routing.Routing` or its
            text (``"<softmax, top_k = 2, renormalize>"``, parsed).
        weights: ``operand -> checkpoint tensor name`` for each present
            operand of :data:`OPERANDS`. ``router``, ``expert_up`` and
            ``expert_down`` are required; ``expert_gate`` makes the experts
            gated (``down(act(gate x) * up x)``); ``score_bias`` is present
            iff the routing has ``selection_bias``; a shared expert needs
            ``shared_up`` and ``shared_down``. Per-expert operands use
            :data:`EXPERT` (``{e}``) exactly once, the others never.
        dtypes: ``operand -> element type`` (:data:`ELEMENT_TYPES`);
            operands not listed are ``f32``. A bf16 or f16 ``score_bias``
            is widened to the f32 operand by ``arith.extf`` in the module.
        activation: ``silu``, ``gelu``, ``gelu_tanh`` or ``relu``.
        shared_intermediate: S, the shared expert's intermediate size
            (required iff there is a shared expert).
        func_name: the entry point's name.
        statistics: routing statistics (:data:`STATISTICS`) the entry
            returns after ``y``, in this order.
        weight_block: ``[BN, BK]`` of block-scaled FP8 or MXFP4 weights.
        formats: ``operand -> format`` (:data:`FORMATS`) for operands the
            checkpoint stores otherwise than as their type
            (``moe.weight_format``): ``"mxfp4"`` bf16 weights stored as
            ``<name>_blocks`` and ``<name>_scales``, decoded by the runtime
            when it binds them; ``"e8m0"`` f32 scales stored as U8
            exponents.
        zero_experts: Z identity experts the router scores after the E
            experts (``moe.layer``'s ``zero_experts``): router-shaped
            operands have ``E + Z`` rows.
        swiglu: ``(alpha, limit)`` of activation ``clamped_swiglu``
            (required with it, else ``None``).
        weight_inputs: the routing weight scales each expert's input
            instead of its output (``moe.layer``'s ``weight_inputs``).
        views: ``operand -> View`` for operands read from a fused or
            transposed checkpoint tensor (:mod:`moe_mlir.views`): the name
            binds that one tensor (no ``{e}``, also for per-expert
            operands), and the view's result is the operand.

    Raises:
        ValueError: an inconsistent description (the message says which
            rule); the routing is checked against E as the verifier does.
    """

    hidden: int
    intermediate: int
    num_experts: int
    routing: Routing | str
    weights: Mapping[str, str]
    dtypes: Mapping[str, str] = field(default_factory=dict)
    activation: str = "silu"
    shared_intermediate: int = 0
    func_name: str = "forward"
    statistics: tuple[str, ...] = ()
    weight_block: tuple[int, int] | None = None
    views: Mapping[str, View] = field(default_factory=dict)
    weight_inputs: bool = False
    swiglu: tuple[float, float] | None = None
    zero_experts: int = 0
    formats: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.views, Mapping):
            raise ValueError(f"views must map operands to views, got "
                             f"{self.views!r}")
        object.__setattr__(self, "views", {
            operand: view if isinstance(view, View) else View.from_dict(view)
            for operand, view in self.views.items()})
        if self.weight_block is not None:
            if not isinstance(self.weight_block, (list, tuple)):
                raise ValueError("weight_block must be two positive "
                                 f"integers, got {self.weight_block!r}")
            object.__setattr__(self, "weight_block",
                               tuple(self.weight_block))
        if isinstance(self.routing, str):
            object.__setattr__(self, "routing", parse(self.routing))
        object.__setattr__(self, "weights", dict(self.weights))
        object.__setattr__(self, "dtypes", dict(self.dtypes))
        if not isinstance(self.weight_inputs, bool):
            raise ValueError(f"weight_inputs must be a bool, got "
                             f"{self.weight_inputs!r}")
        if isinstance(self.statistics, str) \
                or not isinstance(self.statistics, (list, tuple)):
            raise ValueError("statistics must be a list of names, got "
                             f"{self.statistics!r}")
        object.__setattr__(self, "statistics", tuple(self.statistics))
        self._verify()

    def _verify(self) -> None:
        for name in ("hidden", "intermediate", "num_experts"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) \
                    or value < 1:
                raise ValueError(f"{name} must be a positive integer, got "
                                 f"{value!r}")
        routing = self.routing
        assert isinstance(routing, Routing)
        if isinstance(self.zero_experts, bool) or \
                not isinstance(self.zero_experts, int) or \
                self.zero_experts < 0:
            raise ValueError(f"zero_experts must be a non-negative integer, "
                             f"got {self.zero_experts!r}")
        routing.verify_for_experts(self.num_candidates)
        if self.activation not in (*ACTIVATIONS, CLAMPED_SWIGLU):
            raise ValueError(f"unknown activation '{self.activation}' "
                             f"(expected one of {', '.join(ACTIVATIONS)}, "
                             f"{CLAMPED_SWIGLU})")
        self._verify_swiglu()
        if not _IDENTIFIER.fullmatch(self.func_name):
            raise ValueError(f"bad function name {self.func_name!r}")
        for name in self.statistics:
            if name not in STATISTICS:
                raise ValueError(f"unknown statistic {name!r} (expected some "
                                 f"of {', '.join(STATISTICS)})")
        if len(set(self.statistics)) != len(self.statistics):
            raise ValueError(f"a statistic is listed twice in "
                             f"{list(self.statistics)}")

        weights = self.weights
        unknown = sorted(set(weights) - set(OPERANDS))
        if unknown:
            raise ValueError(f"unknown operands {unknown} (expected some of "
                             f"{', '.join(OPERANDS)})")
        for required in ("router", "expert_up", "expert_down"):
            if required not in weights:
                raise ValueError(f"operand '{required}' is required")
        for operand, name in weights.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"{operand}: checkpoint name must be a "
                                 f"non-empty string, got {name!r}")
            count = name.count(EXPERT)
            if operand in self.views and count:
                raise ValueError(f"{operand}: a viewed tensor '{name}' is "
                                 f"one tensor and must not contain {EXPERT}")
            whole = operand in self.views or \
                self.formats.get(operand) == "e8m0"
            if operand in _STACKED and count != 1 and not whole:
                raise ValueError(f"{operand}: per-expert name '{name}' must "
                                 f"contain {EXPERT} exactly once (or the "
                                 "operand be a view of one tensor, or e8m0)")
            if operand not in _STACKED and count:
                raise ValueError(f"{operand}: name '{name}' binds one tensor "
                                 f"and must not contain {EXPERT}")
        if routing.noisy != ("noise_router" in weights):
            raise ValueError("noise_router is required iff the routing is "
                             "noisy")
        if routing.selection_bias != ("score_bias" in weights):
            raise ValueError("score_bias is required iff the routing has "
                             "selection_bias")
        if "gate_bias" in weights and "expert_gate" not in weights:
            raise ValueError("gate_bias needs an expert_gate")
        shared = [op for op in _SHARED if op in weights]
        if shared and not ("shared_up" in weights
                           and "shared_down" in weights):
            raise ValueError("a shared expert needs shared_up and "
                             "shared_down")
        if bool(shared) != (self.shared_intermediate > 0):
            raise ValueError("shared_intermediate must be positive iff there "
                             "is a shared expert, got "
                             f"{self.shared_intermediate}")

        for operand, dtype in self.dtypes.items():
            if operand not in weights:
                raise ValueError(f"dtype given for absent operand "
                                 f"'{operand}'")
            if dtype not in ELEMENT_TYPES:
                raise ValueError(f"{operand}: element type must be one of "
                                 f"{', '.join(ELEMENT_TYPES)}, got {dtype!r}")
        if self.dtypes.get("score_bias", "f32") not in ("f32", "bf16",
                                                        "f16"):
            raise ValueError("score_bias must be f32, bf16 or f16")
        self._verify_scales()
        self._verify_views()
        self._verify_formats()

    def _verify_formats(self) -> None:
        object.__setattr__(self, "formats", dict(self.formats))
        for operand, format_name in self.formats.items():
            if operand not in self.weights:
                raise ValueError(f"format given for absent operand "
                                 f"'{operand}'")
            if format_name not in FORMATS:
                raise ValueError(f"{operand}: unknown weight format "
                                 f"{format_name!r} (expected one of "
                                 f"{', '.join(FORMATS)})")
            if format_name == "e8m0":
                if operand not in SCALES:
                    raise ValueError(f"{operand}: e8m0 is a format of block "
                                     "scales")
                if self.dtype(operand) != "f32" or \
                        EXPERT in self.weights[operand]:
                    raise ValueError(f"{operand}: an e8m0 operand is one f32 "
                                     "tensor (no {e})")
                continue
            if self.dtype(operand) != "bf16" or \
                    EXPERT in self.weights[operand]:
                raise ValueError(f"{operand}: an mxfp4 weight is one bf16 "
                                 "tensor (no {e})")
            mxfp4.stored_shapes(self.checkpoint_shape(operand))

    def _verify_swiglu(self) -> None:
        clamped = self.activation == CLAMPED_SWIGLU
        if clamped != (self.swiglu is not None):
            raise ValueError("swiglu = (alpha, limit) is required iff the "
                             f"activation is {CLAMPED_SWIGLU}")
        if not clamped:
            return
        if not isinstance(self.swiglu, (list, tuple)) or \
                len(self.swiglu) != 2 or any(
                    isinstance(v, bool) or not isinstance(v, (int, float))
                    for v in self.swiglu):
            raise ValueError(f"swiglu must be (alpha, limit), got "
                             f"{self.swiglu!r}")
        object.__setattr__(self, "swiglu", tuple(float(v)
                                                 for v in self.swiglu))
        if not self.swiglu[1] > 0:
            raise ValueError(f"swiglu limit must be positive, got "
                             f"{self.swiglu[1]}")
        if "expert_gate" not in self.weights or (
                "shared_up" in self.weights and
                "shared_gate" not in self.weights):
            raise ValueError(f"{CLAMPED_SWIGLU} needs gated experts (and a "
                             "gated shared expert)")

    def _verify_views(self) -> None:
        for operand, view in self.views.items():
            if operand not in self.weights:
                raise ValueError(f"view given for absent operand "
                                 f"'{operand}'")
            if self.dtype(operand) == "f8e4m3fn" or (
                    operand in SCALES and
                    self.dtype(SCALES[operand]) != "e2m1x2"):
                raise ValueError(f"{operand}: FP8 weights and their block "
                                 "scales are bound as stored, not through "
                                 "views")
            if view.shape != self.shape(operand):
                raise ValueError(f"{operand}: the view of "
                                 f"'{self.weights[operand]}' gives "
                                 f"{list(view.shape)}, not "
                                 f"{list(self.shape(operand))}")
        for operand, view in self.views.items():
            for other, other_view in self.views.items():
                if self.weights[other] == self.weights[operand] and (
                        other_view.source != view.source or
                        self.dtype(other) != self.dtype(operand)):
                    raise ValueError(
                        f"{operand} and {other} view '{self.weights[operand]}'"
                        " with different shapes or dtypes")

    def _verify_scales(self) -> None:
        weights = self.weights
        scales = [op for op in SCALES if op in weights]
        block = self.weight_block
        if bool(scales) != (block is not None):
            raise ValueError("block scales and weight_block come together")
        if block is not None and (
                len(block) != 2 or any(isinstance(b, bool) or
                                       not isinstance(b, int) or b < 1
                                       for b in block)):
            raise ValueError("weight_block must be two positive integers, "
                             f"got {list(block)}")
        for scale in scales:
            if SCALES[scale] not in weights:
                raise ValueError(f"{scale} needs {SCALES[scale]}")
            if self.dtype(scale) != "f32":
                raise ValueError(f"{scale} must be f32")
        for operand, dtype in self.dtypes.items():
            if dtype not in QUANTIZED:
                continue
            scale = next((s for s, w in SCALES.items() if w == operand), None)
            if scale is None:
                raise ValueError(f"{operand}: only projection weights may be "
                                 f"{dtype}")
            if scale not in weights:
                raise ValueError(f"{operand}: an {dtype} weight needs its "
                                 f"block scale {scale}")

    # -- derived ----------------------------------------------------------
    @property
    def gated(self) -> bool:
        """True for gated (SwiGLU-style) routed experts."""
        return "expert_gate" in self.weights

    @property
    def has_shared_expert(self) -> bool:
        """True when the layer has a shared expert."""
        return "shared_up" in self.weights

    @property
    def operands(self) -> list[str]:
        """The present weight operands, in argument order."""
        return [op for op in OPERANDS if op in self.weights]

    def dtype(self, operand: str) -> str:
        """The element type of ``operand`` (``f32`` unless given)."""
        return self.dtypes.get(operand, "f32")

    def shape(self, operand: str) -> tuple[int, ...]:
        """The shape of ``operand`` as a ``moe.layer`` operand."""
        e, h, i, s = (self.num_experts, self.hidden, self.intermediate,
                      self.shared_intermediate)
        n = self.num_candidates
        if operand in SCALES:
            weight = self.logical_shape(SCALES[operand])
            rows, cols = self.weight_block or (1, 1)
            return weight[:-2] + (-(-weight[-2] // rows),
                                  -(-weight[-1] // cols))
        shape = self.logical_shape(operand)
        if self.dtype(operand) == "e2m1x2":   # two codes per byte along K
            return shape[:-1] + (-(-shape[-1] // 2),)
        return shape

    def logical_shape(self, operand: str) -> tuple[int, ...]:
        """The shape of the weight ``operand`` stands for (of its values:
        ``K`` where e2m1 pairs store ``ceil(K/2)`` bytes)."""
        e, h, i, s = (self.num_experts, self.hidden, self.intermediate,
                      self.shared_intermediate)
        n = self.num_candidates
        if operand in SCALES:
            return self.shape(operand)
        return {"router": (n, h), "router_bias": (n,),
                "noise_router": (n, h),
                "score_bias": (n,),
                "expert_gate": (e, i, h), "expert_up": (e, i, h),
                "expert_down": (e, h, i), "gate_bias": (e, i),
                "up_bias": (e, i), "down_bias": (e, h),
                "shared_gate": (s, h), "shared_up": (s, h),
                "shared_down": (h, s), "shared_expert_gate": (1, h)}[operand]

    @property
    def num_candidates(self) -> int:
        """The experts the router scores: E plus the zero experts."""
        return self.num_experts + self.zero_experts

    def checkpoint_shape(self, operand: str) -> tuple[int, ...]:
        """The shape of the tensor ``operand`` binds: a view's source, or
        the operand's shape (with the expert dimension for a stack)."""
        view = self.views.get(operand)
        return view.source if view is not None else self.shape(operand)

    def mlir_element_type(self, operand: str) -> str:
        """The MLIR element type of ``operand`` (``f8E4M3FN``)."""
        dtype = self.dtype(operand)
        return _MLIR_ELEMENT_TYPES.get(dtype, dtype)

    def tensor_type(self, operand: str) -> str:
        """The MLIR tensor type of ``operand``."""
        dims = "x".join(str(d) for d in self.shape(operand))
        return f"tensor<{dims}x{self.mlir_element_type(operand)}>"

    def argument_type(self, operand: str) -> str:
        """The MLIR type of the entry's argument binding ``operand``: the
        checkpoint tensor's (a view's source)."""
        dims = "".join(f"{d}x" for d in self.checkpoint_shape(operand))
        return f"tensor<{dims}{self.mlir_element_type(operand)}>"

    @property
    def sampled_inputs(self) -> dict[str, str]:
        """Inputs after ``x`` that carry samples, by argument name: ``noise``
        (standard normal ``[T, E]``, noisy routing) and ``uniform``
        (``[T, 1]`` in ``[0, 1)``, ``second = random``; a column so that every
        input is a float32 ``[T, N]`` matrix)."""
        routing = self.routing
        assert isinstance(routing, Routing)
        inputs = {}
        if routing.noisy:
            inputs["noise"] = f"tensor<?x{self.num_candidates}xf32>"
        if routing.second_policy == "random":
            inputs["uniform"] = "tensor<?x1xf32>"
        return inputs

    def statistic_type(self, name: str) -> str:
        """The MLIR type of statistic ``name``'s result."""
        return STATISTICS[name].replace("E", str(self.num_candidates), 1) \
            if name.startswith("tokens") else STATISTICS[name]

    @property
    def io_type(self) -> str:
        """The type of ``x`` and of the result: ``tensor<?xHxf32>``."""
        return f"tensor<?x{self.hidden}xf32>"

    def tensor_names(self, operand: str) -> list[str]:
        """The checkpoint names ``operand`` binds: each expert's (``{e}``
        replaced by ``0 .. E-1``) for a stacked weight."""
        name = self.weights[operand]
        if self.formats.get(operand) == "mxfp4":
            return [name + "_blocks", name + "_scales"]
        if EXPERT not in name:
            return [name]
        return [name.replace(EXPERT, str(e)) for e in range(self.num_experts)]

    def checkpoint_tensors(self) -> dict[str, tuple[tuple[int, ...], str]]:
        """Every checkpoint tensor the layer binds: ``name -> (shape, dtype)``.

        Per-expert names are expanded for ``e = 0 .. E-1``; dtypes are IR
        element types (``bf16``).
        """
        tensors = {}
        for operand in self.operands:
            name = self.weights[operand]
            shape = self.checkpoint_shape(operand)
            if self.formats.get(operand) == "mxfp4":
                blocks, scales = mxfp4.stored_shapes(shape)
                tensors[name + "_blocks"] = (blocks, "u8")
                tensors[name + "_scales"] = (scales, "u8")
            elif EXPERT in name:
                for expert in range(self.num_experts):
                    tensors[name.replace(EXPERT, str(expert))] = (
                        shape[1:], self.stored_dtype(operand))
            else:
                tensors[name] = (shape, self.stored_dtype(operand))
        return tensors

    def stored_dtype(self, operand: str) -> str:
        """The element type of the tensors ``operand`` binds: ``u8`` for
        e2m1 pairs and e8m0 scales, else the operand's."""
        if self.dtype(operand) == "e2m1x2" or \
                self.formats.get(operand) == "e8m0":
            return "u8"
        return self.dtype(operand)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description; :meth:`from_dict` reads it back."""
        routing = self.routing
        assert isinstance(routing, Routing)
        return {"hidden": self.hidden, "intermediate": self.intermediate,
                "num_experts": self.num_experts,
                "routing": routing.to_mlir(prefix=False),
                "weights": dict(self.weights), "dtypes": dict(self.dtypes),
                "activation": self.activation,
                "shared_intermediate": self.shared_intermediate,
                "func_name": self.func_name,
                "statistics": list(self.statistics),
                **({"weight_block": list(self.weight_block)}
                   if self.weight_block else {}),
                **({"views": {operand: view.to_dict() for operand, view
                              in self.views.items()}}
                   if self.views else {}),
                **({"weight_inputs": True} if self.weight_inputs else {}),
                **({"swiglu": list(self.swiglu)} if self.swiglu else {}),
                **({"zero_experts": self.zero_experts}
                   if self.zero_experts else {}),
                **({"formats": dict(self.formats)} if self.formats else {})}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "LayerSpec":
        """The spec of a :meth:`to_dict` description (checked again).

        Raises:
            ValueError: unknown or missing fields, or an inconsistent spec.
        """
        if not isinstance(data, Mapping):
            raise ValueError("a layer description must be a JSON object")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown layer fields {unknown}")
        missing = [name for name in ("hidden", "intermediate", "num_experts",
                                     "routing", "weights") if name not in data]
        if missing:
            raise ValueError(f"layer description lacks {', '.join(missing)}")
        return cls(**data)

    def collect(self, checkpoint: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The ``moe.layer`` operands from checkpoint tensors, by operand name.

        What the runtime binds, for :func:`moe_mlir.layer.layer`: per-expert
        tensors are stacked over ``e``. Shapes are checked; values are kept
        as given (decode bf16 first), except FP8 weights: their bytes
        (``uint8``) times their block scales, as float64, in place of the
        weight and its scale.

        Raises:
            KeyError: a tensor is missing.
            ValueError: a tensor has the wrong shape.
        """
        def fetch(operand: str, name: str,
                  shape: tuple[int, ...]) -> np.ndarray:
            value = np.asarray(checkpoint[name])
            if value.shape != shape:
                raise ValueError(f"{operand} ('{name}'): shape "
                                 f"{list(value.shape)} does not match "
                                 f"{list(shape)}")
            return value

        operands = {}
        for operand in self.operands:
            name, shape = self.weights[operand], self.shape(operand)
            view = self.views.get(operand)
            if self.formats.get(operand) == "mxfp4":
                blocks, scales = mxfp4.stored_shapes(
                    self.checkpoint_shape(operand))
                value = mxfp4.decode(fetch(operand, name + "_blocks", blocks),
                                     fetch(operand, name + "_scales", scales))
                operands[operand] = view.apply(value) if view else value
            elif view is not None:
                operands[operand] = view.apply(
                    fetch(operand, name, view.source))
            elif operand in _STACKED and EXPERT in name:
                operands[operand] = np.stack([
                    fetch(operand, name.replace(EXPERT, str(e)), shape[1:])
                    for e in range(self.num_experts)])
            else:
                operands[operand] = fetch(operand, name, shape)
        for operand, format_name in self.formats.items():
            if format_name == "e8m0":
                operands[operand] = mxfp4.decode_e8m0(operands[operand])
        for scale, weight in SCALES.items():
            if scale in operands:
                values = operands[weight]
                if self.dtype(weight) == "f8e4m3fn":
                    values = float8.decode(values)
                elif self.dtype(weight) == "e2m1x2":
                    values = mxfp4.decode_pairs(
                        values, self.logical_shape(weight)[-1])
                operands[weight] = (
                    np.asarray(values, np.float64) *
                    float8.expand_block_scales(operands.pop(scale),
                                               self.weight_block,
                                               values.shape))
        return operands


# -- printing ----------------------------------------------------------------

def emit_module(spec: LayerSpec, comment: str | None = None) -> str:
    """The MLIR text of a module with one entry point computing ``spec``.

    Args:
        spec: the layer.
        comment: optional text put as ``//`` lines on top.
    """
    io = spec.io_type
    lines = [f"// {line}".rstrip() for line in (comment or "").splitlines()]
    sampled = spec.sampled_inputs
    args = [f"%x: {io}"] + [f"%{name}: {ty}" for name, ty in sampled.items()] + [
        f"%{op}: {spec.argument_type(op)} "
        f"{{moe.weight = {mlir_string(spec.weights[op])}"
        + (f", moe.weight_format = \"{spec.formats[op]}\""
           if op in spec.formats else "") + "}"
        for op in spec.operands]
    stat_types = [spec.statistic_type(name) for name in spec.statistics]
    result_types = ", ".join([io] + stat_types)
    if stat_types:
        result_types = f"({result_types})"
    lines.append(f"func.func @{spec.func_name}(")
    lines += [f"    {arg}," for arg in args[:-1]]
    lines.append(f"    {args[-1]}) -> {result_types} {{")

    def value(op: str) -> str:
        return f"{op}_view" if op in spec.views and \
            not spec.views[op].identity else op

    def use(op: str) -> str:
        if op == "score_bias" and spec.dtype(op) != "f32":
            return f"%score_bias_f32 : tensor<{spec.num_candidates}xf32>"
        ty = spec.tensor_type(op)
        if op in spec.views:
            element = spec.mlir_element_type(op)
            wide = spec.views[op].element_type(element)
            ty = ty.replace(f"x{element}>", f"x{wide}>")
        return f"%{value(op)} : {ty}"

    routing = spec.routing
    assert isinstance(routing, Routing)
    body = []
    for op, view in spec.views.items():
        body += view.mlir(op, f"{op}_view", spec.mlir_element_type(op))
    if "score_bias" in spec.weights and spec.dtype("score_bias") != "f32":
        body.append(f"%score_bias_f32 = arith.extf %{value('score_bias')} : "
                    f"{spec.tensor_type('score_bias')} to "
                    f"tensor<{spec.num_candidates}xf32>")
    if "uniform" in sampled:
        body.append("%u = tensor.collapse_shape %uniform [[0, 1]] : "
                    "tensor<?x1xf32> into tensor<?xf32>")
    results = ", ".join(["%y"] + [f"%{name}" for name in spec.statistics])
    body += [f"{results} = moe.layer %x : {io}",
             f"    routing {routing.to_mlir(prefix=False)}",
             f"    router({use('router')})"]
    if "router_bias" in spec.weights:
        body.append(f"    router_bias({use('router_bias')})")
    for op in ("noise_router", "score_bias"):
        if op in spec.weights:
            body.append(f"    {op}({use(op)})")
    if "noise" in sampled:
        body.append(f"    noise(%noise : {sampled['noise']})")
    if "uniform" in sampled:
        body.append("    uniform(%u : tensor<?xf32>)")
    projections = [f"{kind} {use('expert_' + kind)}"
                   for kind in ("gate", "up", "down")
                   if "expert_" + kind in spec.weights]
    body.append("    experts(" + ",\n              ".join(projections) + ")")
    body.append(f"    activation {spec.activation}")
    if spec.swiglu:
        body.append(f"    swiglu_alpha {format_float(spec.swiglu[0])} "
                    f"swiglu_limit {format_float(spec.swiglu[1])}")
    if spec.weight_inputs:
        body.append("    weight_inputs")
    if spec.zero_experts:
        body.append(f"    zero_experts {spec.zero_experts}")
    for op in ("gate_bias", "up_bias", "down_bias") + _SHARED + tuple(SCALES):
        if op in spec.weights:
            body.append(f"    {op}({use(op)})")
    if spec.weight_block:
        body.append(f"    weight_block [{spec.weight_block[0]}, "
                    f"{spec.weight_block[1]}]")
    if spec.statistics:
        body.append(f"    statistics [{', '.join(spec.statistics)}]")
    body.append(f"    -> {', '.join([io] + stat_types)}")
    lines += ["  " + line for line in body]
    lines.append(f"  return {results} : {', '.join([io] + stat_types)}")
    lines.append("}")
    return "\n".join(lines) + "\n"


# -- Hugging Face activations ------------------------------------------------

_HF_ACTIVATIONS = {"silu": "silu", "swish": "silu", "gelu": "gelu",
                   "gelu_pytorch_tanh": "gelu_tanh", "gelu_new": "gelu_tanh",
                   "gelu_fast": "gelu_tanh", "relu": "relu"}


def hf_activation(hidden_act: str) -> str:
    """The ``moe.layer`` activation of a Hugging Face ``hidden_act``."""
    try:
        return _HF_ACTIVATIONS[hidden_act]
    except KeyError:
        raise ValueError(f"unsupported hidden_act '{hidden_act}'") from None
