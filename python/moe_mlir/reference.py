"""The project's float64 numpy reference of every MoE routing scheme.

One import for tests and tools; the pieces live in small modules:

- :mod:`moe_mlir.gating`: :func:`gate` (``moe.gate``: softmax/sigmoid
  scoring, top-k, renormalization, scale, selection bias, group-limited
  top-k, capacity with position or score priority, random second choice,
  expert choice, noisy gating) and the routing statistics;
- :mod:`moe_mlir.layer`: :func:`layer` (``moe.layer``: routed experts,
  shared expert, activations);
- :mod:`moe_mlir.testdata`: bf16 conversion and near-tie resampling.

Semantics: docs/Semantics.md and docs/Routing.md; the
module docstrings state the choices made where those leave room.
"""

from __future__ import annotations

from .gating import (EPS_F32, GateResult, gate, logsumexp, near_tie_tokens,
                     noisy_logits, scaled_noise, sigmoid, softmax, softplus)
from .layer import (ACTIVATIONS, activation_fn, expert_ffn, layer, route,
                    router_logits)
from .routing import Routing, parse
from .testdata import (bf16_to_f32, f32_to_bf16_round, has_near_tie,
                       resample_near_ties, round_to_bf16)

__all__ = [
    "ACTIVATIONS",
    "EPS_F32",
    "GateResult",
    "Routing",
    "activation_fn",
    "bf16_to_f32",
    "expert_ffn",
    "f32_to_bf16_round",
    "gate",
    "has_near_tie",
    "layer",
    "logsumexp",
    "near_tie_tokens",
    "noisy_logits",
    "parse",
    "resample_near_ties",
    "round_to_bf16",
    "route",
    "router_logits",
    "scaled_noise",
    "sigmoid",
    "softmax",
    "softplus",
]
