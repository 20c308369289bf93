//===- DType.h - Checkpoint element types and f32 decoding ------*- C++ -*-===//
//
// The element types of safetensors checkpoints, their names and sizes, and the
// decoding of the floating-point ones to f32 (the runtime's compute type).
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_DTYPE_H
#define MOE_RUNTIME_DTYPE_H

#include "moe/Runtime/Result.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace moe::runtime {

/// The element types a checkpoint tensor may have.
enum class DType : uint8_t {
  F32,
  F16,
  BF16,
  F64,
  I64,
  I32,
  I16,
  I8,
  U8,
  Bool,
  F8E4M3,
  F8E5M2,
};

/// The safetensors spelling of `dtype` ("F32", "BF16", "F8_E4M3", ...).
const char *dtypeName(DType dtype);

/// The size in bytes of one element of `dtype`.
size_t dtypeSize(DType dtype);

/// The dtype spelled `name` in safetensors headers, if any.
std::optional<DType> parseDType(std::string_view name);

/// The supported dtype names, space-separated, for error messages.
const char *supportedDTypeNames();

/// True when `dtype` decodes to f32 with convertToF32.
bool isConvertibleToF32(DType dtype);

/// Decodes an IEEE 754 binary16 value (subnormals, infinities and NaNs kept).
float halfToFloat(uint16_t bits);

/// Decodes a bfloat16 value (the upper 16 bits of an f32).
float bfloat16ToFloat(uint16_t bits);

/// Decodes an OCP FP8 E4M3 (E4M3FN: no infinities, S.1111.111 is NaN) value.
float float8E4M3ToFloat(uint8_t bits);

/// Decodes an OCP FP8 E5M2 value (IEEE-like, with infinities and NaNs).
float float8E5M2ToFloat(uint8_t bits);

/// Decodes `count` little-endian elements of `dtype` at `src` (any alignment)
/// into `dst`. Fails for dtypes where isConvertibleToF32 is false.
Status convertToF32(DType dtype, const void *src, size_t count, float *dst);

} // namespace moe::runtime

#endif // MOE_RUNTIME_DTYPE_H
