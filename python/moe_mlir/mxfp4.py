"""MXFP4 (OCP microscaling FP4) tensors as gpt-oss checkpoints store them.

A weight ``[..., N, K]`` is two U8 tensors: ``<name>_blocks`` ``[..., N,
K/32, 16]``, the e2m1 codes of each group of 32 values (the even element
in the low nibble), and ``<name>_scales`` ``[..., N, K/32]``, one e8m0
exponent per group: ``value = e2m1(code) * 2 ** (scale - 127)``.

A layer binds them as they are: the blocks as an ``e2m1x2`` weight (``i8``
``[..., N, K/2]``, the blocks' last two dimensions merged) and the scales
as f32 block scales of ``[1, 32]`` blocks stored as ``e8m0``; the kernels
decode both on the fly (docs/CompiledModules.md, "MXFP4"). Or, with
``moe.weight_format = "mxfp4"`` on a bf16 weight, the runtime decodes them
to bf16 when it binds it; every value is exact in bf16.
"""

from __future__ import annotations

import numpy as np

__all__ = ["E2M1", "GROUP", "decode", "decode_e8m0", "decode_pairs",
           "encode", "quantize", "stored_shapes"]

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


def decode_pairs(pairs: np.ndarray, depth: int) -> np.ndarray:
    """The float64 values ``[..., depth]`` of e2m1 pairs ``[..., ceil(depth
    / 2)]`` (bytes; the even element in the low nibble), unscaled."""
    pairs = np.asarray(pairs).astype(np.uint8)
    if pairs.shape[-1:] != (-(-depth // 2),):
        raise ValueError(f"e2m1 pairs {list(pairs.shape)} do not hold "
                         f"{depth} values per row")
    codes = np.stack([pairs & 0xF, pairs >> 4], axis=-1)
    codes = codes.reshape(pairs.shape[:-1] + (2 * pairs.shape[-1],))
    return E2M1[codes[..., :depth]]


def decode_e8m0(exponents: np.ndarray) -> np.ndarray:
    """The float64 scales ``2 ** (s - 127)`` of e8m0 exponents ``s`` (255,
    NaN in the OCP format, is ``2 ** 128`` as in :func:`decode` and
    transformers' ``ldexp``; f32 code has it as +inf)."""
    exponents = np.asarray(exponents).astype(np.int64)
    return np.ldexp(1.0, exponents - 127)


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


def quantize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The U8 ``(blocks, scales)`` of a weight ``[..., N, K]`` (K a multiple
    of 32), as the OCP MX recipe makes them: each group's scale is ``2 **
    (floor(log2(max |v|)) - 2)`` (e2m1's largest exponent is 2), each value
    the nearest e2m1 value of ``v / scale`` (saturated at 6; ties to the
    smaller magnitude). :func:`decode` gives the quantized weight back.

    Raises:
        ValueError: a last dimension not a multiple of 32.
    """
    values = np.asarray(values, np.float64)
    stored_shapes(values.shape)
    groups = values.reshape(values.shape[:-1] + (values.shape[-1] // GROUP,
                                                 GROUP))
    peak = np.abs(groups).max(axis=-1)
    with np.errstate(divide="ignore"):
        exponent = np.floor(np.log2(np.where(peak > 0, peak, 1.0))) - 2
    exponent = np.clip(np.where(peak > 0, exponent, -127), -127, 127)
    scaled = groups / np.ldexp(1.0, exponent.astype(np.int64))[..., None]
    magnitudes = E2M1[:8]
    nearest = np.abs(np.abs(scaled)[..., None] - magnitudes).argmin(axis=-1)
    codes = (nearest | np.where(scaled < 0, 8, 0)).astype(np.uint8)
    codes = codes.reshape(values.shape)
    scales = (exponent + 127).astype(np.uint8)
    return encode(codes, scales), scales
