//===- Mxfp4.cpp - MXFP4 weights decoded to bf16 --------------------------===//

#include "Mxfp4.h"

#include <cmath>
#include <cstring>

using namespace moe::runtime::detail;

namespace {

/// e2m1: bit 3 the sign, bits 2-1 the exponent, bit 0 the mantissa.
constexpr float kE2M1[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,
                             4.0f,  6.0f,  -0.0f, -0.5f, -1.0f, -1.5f,
                             -2.0f, -3.0f, -4.0f, -6.0f};

/// The bf16 bits of `value`, exact (two significant bits at most) or
/// infinite: the upper half of its f32 bits.
uint16_t bf16Bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  return static_cast<uint16_t>(bits >> 16);
}

} // namespace

void moe::runtime::detail::decodeE8m0(const uint8_t *exponents, size_t count,
                                      float *out) {
  // 255 (NaN in the OCP format) is 2^128, +inf, as transformers' ldexp
  // decoding has it.
  for (size_t i = 0; i < count; ++i)
    out[i] = std::ldexp(1.0f, static_cast<int>(exponents[i]) - 127);
}

void moe::runtime::detail::decodeMxfp4(const uint8_t *blocks,
                                       const uint8_t *scales, size_t rows,
                                       size_t groups, uint16_t *out) {
  for (size_t g = 0, count = rows * groups; g < count; ++g) {
    int exponent = static_cast<int>(scales[g]) - 127;
    const uint8_t *codes = blocks + g * kMxfp4GroupBytes;
    uint16_t *values = out + g * kMxfp4Group;
    for (size_t j = 0; j < kMxfp4GroupBytes; ++j) {
      values[2 * j] = bf16Bits(std::ldexp(kE2M1[codes[j] & 0xF], exponent));
      values[2 * j + 1] = bf16Bits(std::ldexp(kE2M1[codes[j] >> 4], exponent));
    }
  }
}
