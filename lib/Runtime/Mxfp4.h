//===- Mxfp4.h - MXFP4 weights decoded to bf16 ------------------*- C++ -*-===//
//
// MXFP4 (OCP microscaling FP4, gpt-oss checkpoints): each group of 32
// values of a row is 16 bytes of e2m1 codes, the even element in the low
// nibble, and one e8m0 scale byte; value = e2m1(code) * 2^(scale - 127).
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_RUNTIME_MXFP4_H
#define MOE_LIB_RUNTIME_MXFP4_H

#include <cstddef>
#include <cstdint>

namespace moe::runtime::detail {

/// Values per scale (a group) and bytes of codes per group.
constexpr size_t kMxfp4Group = 32;
constexpr size_t kMxfp4GroupBytes = kMxfp4Group / 2;

/// Decodes `rows * groups` groups (`blocks`: rows x groups x 16 bytes,
/// `scales`: rows x groups bytes) into `rows x groups * 32` bf16 values
/// (their bit patterns). Every value is exact in bf16; a scale of 255
/// gives +-inf for non-zero codes, as `ldexp` does.
void decodeMxfp4(const uint8_t *blocks, const uint8_t *scales, size_t rows,
                 size_t groups, uint16_t *out);

/// Decodes `count` e8m0 exponents `s` into f32 `2^(s - 127)` (255: +inf).
void decodeE8m0(const uint8_t *exponents, size_t count, float *out);

} // namespace moe::runtime::detail

#endif // MOE_LIB_RUNTIME_MXFP4_H
