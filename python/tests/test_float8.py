"""e4m3fn bytes and DeepSeek-V3 block scales (moe_mlir.float8)."""

from __future__ import annotations

import numpy as np

from moe_mlir import float8


def test_decode_known_bytes() -> None:
    assert float8.decode(np.array([0x00, 0x80])).tolist() == [0.0, -0.0]
    assert np.signbit(float8.decode(np.array([0x80])))[0]
    # Smallest subnormal and normal, 1, 1.5, 2, the largest finite.
    assert float8.decode(np.array([0x01, 0x08, 0x38, 0x3C, 0x40, 0x7E,
                                   0xFE])).tolist() == \
        [2.0 ** -9, 2.0 ** -6, 1.0, 1.5, 2.0, 448.0, -448.0]
    assert np.isnan(float8.decode(np.array([0x7F, 0xFF]))).all()


def test_encode_round_trips_every_finite_byte() -> None:
    bits = np.arange(256, dtype=np.uint8)
    finite = bits[(bits & 0x7F) != 0x7F]
    np.testing.assert_array_equal(float8.encode(float8.decode(finite)),
                                  finite)


def test_encode_rounds_to_nearest_even_and_saturates() -> None:
    # 1.0625 lies between 1 (0x38) and 1.125 (0x39): the even mantissa;
    # 1.1875 between 1.125 and 1.25 (0x3A): the even one again.
    assert float8.encode(np.array([1.0625, 1.1875, 1.07])).tolist() == \
        [0x38, 0x3A, 0x39]
    assert float8.encode(np.array([500.0, -1e6, np.inf])).tolist() == \
        [0x7E, 0xFE, 0x7E]
    assert float8.encode(np.array([np.nan])).tolist() == [0x7F]
    assert float8.encode(np.array([-1e-9])).tolist() == [0x80]


def test_block_quantization() -> None:
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((2, 37, 45))
    weight[1, :16, :16] = 0.0  # an all-zero block
    bits, scale = float8.quantize_blocks(weight, (16, 16))
    assert bits.shape == weight.shape and bits.dtype == np.uint8
    assert scale.shape == (2, 3, 3) and scale.dtype == np.float32
    assert scale[1, 0, 0] == 1.0
    back = float8.dequantize_blocks(bits, scale, (16, 16))
    # Each value within half an e4m3 step (2^-4 relative) of its block's
    # largest magnitude.
    block_max = np.repeat(np.repeat(scale.astype(np.float64) * 448, 16, 1),
                          16, 2)[:, :37, :45]
    assert np.all(np.abs(back - weight) <= block_max * 2.0 ** -4)
    assert np.all(back[1, :16, :16] == 0.0)
