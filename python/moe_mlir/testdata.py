"""Helpers for generating and decoding test data (docs/Semantics.md, tolerances).

- bf16 storage: :func:`bf16_to_f32` decodes ``uint16`` bit patterns,
  :func:`f32_to_bf16_round` encodes with round-to-nearest-even,
  :func:`round_to_bf16` snaps values onto the bf16 grid. (f16 needs no
  helper: ``bits.view(np.float16)``.)
- near ties: :func:`has_near_tie` flags rows whose K-th and (K+1)-th scores
  are closer than ``eps``; :func:`resample_near_ties` redraws flagged tokens
  until none is left, since an f32 rounding difference at a selection
  boundary legitimately flips the selection.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = [
    "bf16_to_f32",
    "f32_to_bf16_round",
    "has_near_tie",
    "resample_near_ties",
    "round_to_bf16",
]


def bf16_to_f32(bits: np.ndarray) -> np.ndarray:
    """Decode bf16 bit patterns (``uint16``) into exactly equal float32."""
    bits = np.asarray(bits)
    if bits.dtype != np.uint16:
        raise ValueError(f"bf16 data must be uint16 bit patterns, got "
                         f"{bits.dtype}")
    return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)


def f32_to_bf16_round(values: np.ndarray) -> np.ndarray:
    """Encode values as bf16 bit patterns (``uint16``), nearest-even.

    Values are first converted to float32. Overflow rounds to infinity as
    IEEE rounding does; NaNs stay NaN (quiet bit set, sign kept).
    """
    f32 = np.ascontiguousarray(np.asarray(values, dtype=np.float32))
    bits = f32.view(np.uint32)
    lsb = (bits >> np.uint32(16)) & np.uint32(1)
    rounded = ((bits + np.uint32(0x7FFF) + lsb) >> np.uint32(16))
    nan = np.isnan(f32)
    quiet_nan = (bits >> np.uint32(16)) | np.uint32(0x0040)
    return np.where(nan, quiet_nan, rounded).astype(np.uint16)


def round_to_bf16(values: np.ndarray) -> np.ndarray:
    """The float32 values nearest (ties to even) on the bf16 grid."""
    return bf16_to_f32(f32_to_bf16_round(values))


def has_near_tie(scores: np.ndarray, k: int, eps: float = 1e-4) -> np.ndarray:
    """Rows whose K-th and (K+1)-th largest scores are closer than ``eps``.

    Args:
        scores: ``[T, E]`` selection scores (what top-k ranks).
        k: the number of selected entries; no boundary (all ``False``) when
            ``k <= 0`` or ``k >= E``.
        eps: the closeness threshold of docs/Semantics.md.

    Returns:
        ``[T]`` bool.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(f"scores must be [T, E], got shape {scores.shape}")
    num_rows, width = scores.shape
    if k <= 0 or k >= width:
        return np.zeros(num_rows, dtype=bool)
    ordered = -np.sort(-scores, axis=1)
    with np.errstate(invalid="ignore"):
        gap = ordered[:, k - 1] - ordered[:, k]
    return gap < eps


def resample_near_ties(x: np.ndarray,
                       flag: Callable[[np.ndarray], np.ndarray],
                       sample: Callable[[int], np.ndarray],
                       max_rounds: int = 100) -> np.ndarray:
    """Redraw the tokens of ``x`` that ``flag`` marks, until none is marked.

    Args:
        x: ``[T, ...]`` tokens (e.g. the layer input, or logits).
        flag: maps tokens to a ``[T]`` bool mask of tokens near a tie, e.g.
            ``lambda x: near_tie_tokens(x @ w_router.T, routing)`` or
            ``lambda l: has_near_tie(softmax(l), k)``.
        sample: ``sample(n)`` draws ``n`` fresh tokens shaped like ``x[:n]``.
        max_rounds: give up after this many rounds.

    Returns:
        A copy of ``x`` with flagged tokens replaced.

    Raises:
        RuntimeError: some token is still flagged after ``max_rounds``.
    """
    result = np.array(x, copy=True)
    for _ in range(max_rounds):
        bad = np.asarray(flag(result), dtype=bool)
        count = int(bad.sum())
        if count == 0:
            return result
        result[bad] = sample(count)
    raise RuntimeError(f"near ties left after {max_rounds} resampling rounds")
