"""MXFP4 (OCP microscaling FP4) tensors as gpt-oss checkpoints store them.

A weight ``[..., N, K]`` is two U8 tensors: ``<name>_blocks`` ``[..., N,
K/32, 16]``, the e2m1 codes of each group of 32 values (the even element
in the low nibble), and ``<name>_scales`` ``[..., N, K/32]``, one e8m0
exponent per group: ``value = e2m1(code) * 2 ** (scale - 127)``. The
runtime decodes them to the bf16 weight when it binds it
(``moe.weight_format = "mxfp4"``, docs/CompiledModules.md); every value is
exact in bf16.
"""

from __future__ import annotations

import numpy as np

__all__ = ["E2M1", "GROUP", "decode", "encode", "stored_shapes"]

GROUP = 32
"""Values per scale."""

E2M1 = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0,
                 -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0])
"""The value of each 4-bit code: sign, two exponent bits, one mantissa
bit."""


def stored_shapes(shape: tuple[int, ...]
                  ) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The ``(blocks, scales)`` shapes of a weight of ``shape``.

    Raises:
        ValueError: rank below 2, or a last dimension not a multiple of 32.
    """
    if len(shape) < 2 or shape[-1] % GROUP:
        raise ValueError(f"an mxfp4 weight is [..., N, K] with K a multiple "
                         f"of {GROUP}, got {list(shape)}")
    groups = tuple(shape[:-1]) + (shape[-1] // GROUP,)
    return groups + (GROUP // 2,), groups


def decode(blocks: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """The float64 weight ``[..., N, K]`` of U8 ``blocks`` ``[..., N, G,
    16]`` and ``scales`` ``[..., N, G]``.

    Raises:
        ValueError: shapes that do not fit together.
    """
    blocks = np.asarray(blocks, np.uint8)
    scales = np.asarray(scales, np.uint8)
    if blocks.ndim < 3 or blocks.shape[-1] != GROUP // 2 or \
            blocks.shape[:-1] != scales.shape:
        raise ValueError(f"mxfp4 blocks {list(blocks.shape)} and scales "
                         f"{list(scales.shape)} do not fit together")
    codes = np.stack([blocks & 0xF, blocks >> 4], axis=-1)
    values = E2M1[codes.reshape(blocks.shape[:-1] + (GROUP,))]
    with np.errstate(over="ignore"):
        values = np.ldexp(values, scales.astype(np.int64)[..., None] - 127)
    return values.reshape(scales.shape[:-1] + (scales.shape[-1] * GROUP,))


def encode(codes: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """The U8 blocks of 4-bit ``codes`` ``[..., N, K]`` (values 0-15); the
    inverse of :func:`decode`'s unpacking (``scales`` only give the group
    count and are checked against it)."""
    codes = np.asarray(codes, np.uint8)
    groups = codes.reshape(codes.shape[:-1] + (codes.shape[-1] // GROUP,
                                               GROUP // 2, 2))
    if groups.shape[:-2] != np.shape(scales):
        raise ValueError("codes and scales do not fit together")
    return (groups[..., 0] | (groups[..., 1] << 4)).astype(np.uint8)
