"""OCP FP8 e4m3 (``float8_e4m3fn``) values and DeepSeek-V3 block scales.

Checkpoints store FP8 tensors as their bytes (safetensors ``F8_E4M3``,
read and written as ``uint8`` by :mod:`moe_mlir.safetensors_io`). e4m3fn
has 4 exponent bits (bias 7), 3 mantissa bits, no infinities, and one NaN
pattern per sign (``S.1111.111``); its largest finite value is 448.
DeepSeek-V3 (``quantization_config = {"quant_method": "fp8",
"weight_block_size": [128, 128]}``) stores next to each FP8 ``weight`` of
shape ``[N, K]`` a ``weight_scale_inv`` of shape ``[ceil(N/128),
ceil(K/128)]`` (f32): the weight is ``fp8 * scale_inv`` of its block.
"""

from __future__ import annotations

import numpy as np

MAX = 448.0
"""The largest finite e4m3fn value."""


def _all_values() -> np.ndarray:
    """The float64 value of each of the 256 bytes."""
    bits = np.arange(256, dtype=np.int64)
    sign = np.where(bits & 0x80, -1.0, 1.0)
    exponent = (bits >> 3) & 0xF
    mantissa = bits & 0x7
    values = np.where(exponent == 0, mantissa / 8.0 * 2.0 ** -6,
                      (1.0 + mantissa / 8.0) * 2.0 ** (exponent - 7.0))
    values = sign * values
    values[(bits & 0x7F) == 0x7F] = np.nan
    return values


_VALUES = _all_values()


def decode(bits: np.ndarray) -> np.ndarray:
    """The float64 values of e4m3fn bytes (``uint8``)."""
    return _VALUES[np.asarray(bits, dtype=np.uint8)]


def encode(values: np.ndarray) -> np.ndarray:
    """e4m3fn bytes of ``values``, rounded to nearest (ties to even
    mantissas); magnitudes beyond 448 saturate to 448, NaN stays NaN."""
    values = np.asarray(values, dtype=np.float64)
    finite = _VALUES[:0x7F]  # 0 .. 448, increasing
    magnitude = np.minimum(np.abs(values), MAX)
    magnitude = np.where(np.isnan(values), 0.0, magnitude)
    upper = np.clip(np.searchsorted(finite, magnitude), 0, len(finite) - 1)
    lower = np.maximum(upper - 1, 0)
    below = magnitude - finite[lower]
    above = finite[upper] - magnitude
    # Nearest; on a tie the even byte (an even mantissa).
    pick_lower = (below < above) | ((below == above) & (lower % 2 == 0))
    bits = np.where(pick_lower, lower, upper).astype(np.uint8)
    bits = np.where(np.signbit(values), bits | 0x80, bits).astype(np.uint8)
    bits[np.isnan(values)] = 0x7F
    return bits


def quantize_blocks(weight: np.ndarray, block: tuple[int, int] = (128, 128)
                    ) -> tuple[np.ndarray, np.ndarray]:
    """``(bytes, scale_inv)`` of a ``[..., N, K]`` weight in DeepSeek-V3's
    layout: each ``block`` of it scaled so that its largest magnitude maps
    to 448, ``scale_inv`` ``[..., ceil(N/BN), ceil(K/BK)]`` f32."""
    weight = np.asarray(weight, dtype=np.float64)
    rows, cols = weight.shape[-2:]
    bn, bk = block
    nb, kb = -(-rows // bn), -(-cols // bk)
    padded = np.zeros(weight.shape[:-2] + (nb * bn, kb * bk))
    padded[..., :rows, :cols] = weight
    blocks = padded.reshape(weight.shape[:-2] + (nb, bn, kb, bk))
    amax = np.abs(blocks).max(axis=(-3, -1))
    scale_inv = np.where(amax > 0, amax / MAX, 1.0).astype(np.float32)
    return encode(weight / expand_block_scales(scale_inv, block,
                                               weight.shape)), scale_inv


def expand_block_scales(scale_inv: np.ndarray, block: tuple[int, int],
                        shape: tuple[int, ...]) -> np.ndarray:
    """Each block's scale (float64) repeated over its ``block`` of a weight
    of ``shape``."""
    expanded = np.repeat(np.repeat(np.asarray(scale_inv, np.float64),
                                   block[0], axis=-2), block[1], axis=-1)
    return expanded[..., :shape[-2], :shape[-1]]


def dequantize_blocks(bits: np.ndarray, scale_inv: np.ndarray,
                      block: tuple[int, int] = (128, 128)) -> np.ndarray:
    """The float64 weight of ``quantize_blocks``' result: each byte's value
    times its block's ``scale_inv``."""
    return decode(bits) * expand_block_scales(scale_inv, block,
                                              np.shape(bits))
