"""Float64 reference of the whole ``moe.layer`` block.

``y[t] = sum_c w[t, c] * expert_{ids[t, c]}(x[t]) + shared(x[t])`` with
``w, ids`` from :func:`~moe_mlir.gating.gate` (with ``weight_inputs``:
``expert_{ids[t, c]}(w[t, c] * x[t])``); weights in checkpoint layout
``[out, in]`` applied as ``x @ W.T``. No normalization, no residual.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import numpy as np

from .gating import GateResult, as_float64, gate, scaled_noise, sigmoid
from .routing import Routing

__all__ = ["ACTIVATIONS", "CLAMPED_SWIGLU", "activation_fn", "expert_ffn",
           "layer", "router_logits", "route"]

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_erf = np.frompyfunc(math.erf, 1, 1)


def _silu(v: np.ndarray) -> np.ndarray:
    return v * sigmoid(v)


def _gelu(v: np.ndarray) -> np.ndarray:
    erf = np.asarray(_erf(v / math.sqrt(2.0)), dtype=np.float64)
    return 0.5 * v * (1.0 + erf)


def _gelu_tanh(v: np.ndarray) -> np.ndarray:
    return 0.5 * v * (1.0 + np.tanh(_SQRT_2_OVER_PI * (v + 0.044715 * v ** 3)))


def _relu(v: np.ndarray) -> np.ndarray:
    return np.maximum(v, 0.0)


ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "silu": _silu,
    "gelu": _gelu,
    "gelu_tanh": _gelu_tanh,
    "relu": _relu,
}
"""The ``moe.layer`` activations of one value: ``silu``, exact (erf)
``gelu``, the tanh approximation ``gelu_tanh``, ``relu``."""

CLAMPED_SWIGLU = "clamped_swiglu"
"""gpt-oss's gated activation of ``(gate, up)``: ``g * sigmoid(alpha * g) *
(u + 1)`` with ``g = min(gate, limit)``, ``u = clamp(up, -limit, limit)``
(``moe.layer``'s ``swiglu_alpha``, ``swiglu_limit``)."""


def activation_fn(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """The activation function called ``name`` in the IR."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"unknown activation '{name}' (expected one of "
                         f"{', '.join(ACTIVATIONS)})") from None


def expert_ffn(x: np.ndarray, up: np.ndarray, down: np.ndarray,
               activation: str, gate_proj: np.ndarray | None = None,
               up_bias: np.ndarray | None = None,
               gate_bias: np.ndarray | None = None,
               down_bias: np.ndarray | None = None,
               swiglu: tuple[float, float] | None = None) -> np.ndarray:
    """One expert on ``[n, H]`` rows.

    Gated: ``down(act(gate x + bg) * (up x + bu)) + bd``; ungated:
    ``down(act(up x + bu)) + bd``. ``up``/``gate_proj`` are ``[I, H]``,
    ``down`` is ``[H, I]``. :data:`CLAMPED_SWIGLU` (gated only) takes
    ``swiglu = (alpha, limit)``.
    """
    if activation == CLAMPED_SWIGLU:
        if gate_proj is None or swiglu is None:
            raise ValueError("clamped_swiglu needs a gate projection and "
                             "(alpha, limit)")
        alpha, limit = swiglu

        def act(gated: np.ndarray) -> np.ndarray:
            gated = np.minimum(gated, limit)
            return gated * sigmoid(alpha * gated)

        up_clamped = True
    else:
        act = activation_fn(activation)
        up_clamped = False
    hidden = x @ up.T
    if up_bias is not None:
        hidden = hidden + up_bias
    if gate_proj is not None:
        gated = x @ gate_proj.T
        if gate_bias is not None:
            gated = gated + gate_bias
        if up_clamped:
            hidden = np.clip(hidden, -limit, limit) + 1.0
        hidden = act(gated) * hidden
    else:
        hidden = act(hidden)
    out = hidden @ down.T
    if down_bias is not None:
        out = out + down_bias
    return out


# -- operands ----------------------------------------------------------------

_OPERANDS = ("router", "router_bias", "noise_router", "score_bias",
             "expert_gate",
             "expert_up", "expert_down", "gate_bias", "up_bias", "down_bias",
             "shared_gate", "shared_up", "shared_down", "shared_expert_gate")




def _expect_shape(name: str, array: np.ndarray,
                  shape: tuple[int, ...]) -> None:
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {list(shape)}, got "
                         f"{list(array.shape)}")


def _load_operands(x: np.ndarray, weights: Mapping[str, Any],
                   routing: Routing, zero_experts: int = 0
                   ) -> dict[str, np.ndarray]:
    """Convert to float64 and check presence and shapes (``moe.layer``;
    with zero experts the router-shaped operands have ``E + Z`` rows)."""
    unknown = sorted(set(weights) - set(_OPERANDS))
    if unknown:
        raise ValueError(f"unknown layer operands {unknown} (expected some "
                         f"of {', '.join(_OPERANDS)})")
    for required in ("router", "expert_up", "expert_down"):
        if weights.get(required) is None:
            raise ValueError(f"layer operand '{required}' is required")
    ops = {name: as_float64(name, value) for name, value in weights.items()
           if value is not None}

    num_tokens, hidden = x.shape
    router = ops["router"]
    if router.ndim != 2 or router.shape[1] != hidden:
        raise ValueError(f"router must be [E, H] with H = {hidden}, got "
                         f"{list(router.shape)}")
    candidates = router.shape[0]
    num_experts = candidates - zero_experts
    if num_experts < 1:
        raise ValueError(f"the router's {candidates} rows leave no expert "
                         f"beside zero_experts = {zero_experts}")
    up = ops["expert_up"]
    if up.ndim != 3:
        raise ValueError(f"expert_up must be [E, I, H], got {list(up.shape)}")
    inter = up.shape[1]
    _expect_shape("expert_up", up, (num_experts, inter, hidden))
    _expect_shape("expert_down", ops["expert_down"],
                  (num_experts, hidden, inter))
    if "expert_gate" in ops:
        _expect_shape("expert_gate", ops["expert_gate"],
                      (num_experts, inter, hidden))
    elif "gate_bias" in ops:
        raise ValueError("gate_bias needs an expert_gate")
    for name, shape in (("router_bias", (candidates,)),
                        ("gate_bias", (num_experts, inter)),
                        ("up_bias", (num_experts, inter)),
                        ("down_bias", (num_experts, hidden))):
        if name in ops:
            _expect_shape(name, ops[name], shape)

    if routing.selection_bias != ("score_bias" in ops):
        raise ValueError("score_bias is required iff routing has "
                         "selection_bias")
    if "score_bias" in ops:
        _expect_shape("score_bias", ops["score_bias"], (candidates,))
    if routing.noisy != ("noise_router" in ops):
        raise ValueError("noise_router is required iff routing is noisy")
    if "noise_router" in ops:
        _expect_shape("noise_router", ops["noise_router"],
                      (candidates, hidden))

    if "shared_up" in ops or "shared_down" in ops:
        if not ("shared_up" in ops and "shared_down" in ops):
            raise ValueError("a shared expert needs both shared_up and "
                             "shared_down")
        shared = ops["shared_up"].shape[0]
        _expect_shape("shared_up", ops["shared_up"], (shared, hidden))
        _expect_shape("shared_down", ops["shared_down"], (hidden, shared))
        if "shared_gate" in ops:
            _expect_shape("shared_gate", ops["shared_gate"], (shared, hidden))
        if "shared_expert_gate" in ops:
            _expect_shape("shared_expert_gate", ops["shared_expert_gate"],
                          (1, hidden))
    elif "shared_gate" in ops or "shared_expert_gate" in ops:
        raise ValueError("shared_gate and shared_expert_gate need a shared "
                         "expert (shared_up, shared_down)")
    return ops


# -- the layer ---------------------------------------------------------------

def router_logits(x: np.ndarray, weights: Mapping[str, Any],
                  noise: np.ndarray | None = None) -> tuple[np.ndarray,
                                                          np.ndarray | None]:
    """The logits and scaled noise that ``moe.layer`` hands to its gate.

    Args:
        x: ``[T, H]`` tokens.
        weights: the layer operands (``router``, ``noise_router``).
        noise: ``[T, E]`` standard-normal samples, or ``None``.

    Returns:
        ``(x @ router^T, n * softplus(x @ noise_router^T) or None)``.
    """
    x = as_float64("x", x)
    logits = x @ as_float64("router", weights["router"]).T
    if weights.get("router_bias") is not None:
        logits = logits + as_float64("router_bias", weights["router_bias"])
    if noise is None:
        return logits, None
    if weights.get("noise_router") is None:
        raise ValueError("noise needs a noise_router (noisy routing)")
    w_noise = as_float64("noise_router", weights["noise_router"])
    return logits, scaled_noise(x, w_noise, as_float64("noise", noise))


def route(x: np.ndarray, weights: Mapping[str, Any], routing: Routing,
          noise: np.ndarray | None = None,
          uniform: np.ndarray | None = None) -> GateResult:
    """The routing decision of ``moe.layer`` (its ``moe.gate``)."""
    logits, noise_term = router_logits(x, weights, noise)
    bias = weights.get("score_bias")
    return gate(logits, routing, bias=bias, noise=noise_term, uniform=uniform)


def layer(x: np.ndarray, weights: Mapping[str, Any], routing: Routing,
          activation: str = "silu", *, noise: np.ndarray | None = None,
          uniform: np.ndarray | None = None, weight_inputs: bool = False,
          swiglu: tuple[float, float] | None = None, zero_experts: int = 0
          ) -> tuple[np.ndarray, dict[str, Any]]:
    """The ``moe.layer`` block in float64.

    Args:
        x: ``[T, H]`` tokens (any float dtype; decode bf16 first).
        weights: operands by their ``moe.layer`` names: ``router [E,H]``,
            ``expert_up [E,I,H]``, ``expert_down [E,H,I]`` (required);
            ``expert_gate [E,I,H]`` (gated experts), ``gate_bias [E,I]``,
            ``up_bias [E,I]``, ``down_bias [E,H]``, ``score_bias [E]``
            (iff ``selection_bias``), ``noise_router [E,H]`` (iff
            ``noisy``), ``shared_gate [S,H]``, ``shared_up [S,H]``,
            ``shared_down [H,S]``, ``shared_expert_gate [1,H]``.
        routing: the routing scheme.
        activation: ``silu``, ``gelu``, ``gelu_tanh`` or ``relu`` (routed
            and shared experts).
        noise: ``[T, E]`` standard-normal samples for noisy routing; the
            layer scales them by ``softplus(x @ noise_router^T)``.
        uniform: ``[T]`` uniform samples for ``second = random``.
        weight_inputs: each routing weight scales its expert's input, not
            its output (Llama 4); dropped choices contribute nothing.
        swiglu: ``(alpha, limit)`` of ``clamped_swiglu``.
        zero_experts: Z identity experts after the E experts (LongCat-Flash):
            the router scores E + Z candidates, and a choice of id ``E + j``
            adds its weight times the token.

    Returns:
        ``(y [T, H] float64, stats)`` with the statistics of
        :func:`~moe_mlir.gating.gate`.
    """
    x = as_float64("x", x)
    if x.ndim != 2:
        raise ValueError(f"x must be [T, H], got shape {x.shape}")
    if activation != CLAMPED_SWIGLU:
        activation_fn(activation)
    ops = _load_operands(x, weights, routing, zero_experts)
    routed = route(x, ops, routing, noise=noise, uniform=uniform)
    num_experts = ops["expert_up"].shape[0]

    def expert(index: int, rows: np.ndarray) -> np.ndarray:
        return expert_ffn(
            rows, ops["expert_up"][index], ops["expert_down"][index],
            activation, gate_proj=_index(ops, "expert_gate", index),
            up_bias=_index(ops, "up_bias", index),
            gate_bias=_index(ops, "gate_bias", index),
            down_bias=_index(ops, "down_bias", index), swiglu=swiglu)

    y = np.zeros_like(x)
    for token, choice in zip(*np.nonzero(routed.ids >= num_experts)):
        y[token] += routed.weights[token, choice] * x[token]
    if weight_inputs:
        for token, choice in zip(*np.nonzero(
                (routed.ids >= 0) & (routed.ids < num_experts))):
            y[token] += expert(routed.ids[token, choice],
                               routed.weights[token, choice] *
                               x[token:token + 1])[0]
    else:
        combine = routed.dense()[:, :num_experts]
        taken = np.zeros(combine.shape, dtype=bool)
        rows, cols = np.nonzero((routed.ids >= 0) &
                                (routed.ids < num_experts))
        taken[rows, routed.ids[rows, cols]] = True
        for index in range(combine.shape[1]):
            tokens = np.nonzero(taken[:, index])[0]
            if tokens.size:
                y[tokens] += combine[tokens, index][:, None] * expert(
                    index, x[tokens])

    if "shared_up" in ops:
        shared = expert_ffn(x, ops["shared_up"], ops["shared_down"],
                            activation, gate_proj=ops.get("shared_gate"),
                            swiglu=swiglu)
        if "shared_expert_gate" in ops:
            shared = sigmoid(x @ ops["shared_expert_gate"].T) * shared
        y += shared
    return y, routed.stats


def _index(ops: Mapping[str, np.ndarray], name: str,
           expert: int) -> np.ndarray | None:
    return ops[name][expert] if name in ops else None
