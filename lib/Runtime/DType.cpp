//===- DType.cpp - Checkpoint element types and f32 decoding --------------===//

#include "moe/Runtime/DType.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>

using namespace moe::runtime;

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "checkpoints are little-endian and decoded in place");

namespace {

struct DTypeInfo {
  DType dtype;
  const char *name;
  size_t size;
};

constexpr DTypeInfo kDTypes[] = {
    {DType::F32, "F32", 4},        {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2},      {DType::F64, "F64", 8},
    {DType::I64, "I64", 8},        {DType::I32, "I32", 4},
    {DType::I16, "I16", 2},        {DType::I8, "I8", 1},
    {DType::U8, "U8", 1},          {DType::Bool, "BOOL", 1},
    {DType::F8E4M3, "F8_E4M3", 1}, {DType::F8E5M2, "F8_E5M2", 1},
};

const DTypeInfo &info(DType dtype) {
  for (const DTypeInfo &entry : kDTypes)
    if (entry.dtype == dtype)
      return entry;
  return kDTypes[0];
}

float bitsToFloat(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

/// Decodes a small float with `expBits` exponent and `manBits` mantissa bits;
/// `ieeeSpecials` selects IEEE infinities/NaNs (all-ones exponent) versus the
/// E4M3FN convention (only all-ones exponent and mantissa is NaN).
float decodeSmallFloat(uint32_t bits, int expBits, int manBits,
                       bool ieeeSpecials) {
  uint32_t sign = (bits >> (expBits + manBits)) & 1;
  uint32_t exp = (bits >> manBits) & ((1u << expBits) - 1);
  uint32_t man = bits & ((1u << manBits) - 1);
  int bias = (1 << (expBits - 1)) - 1;
  uint32_t expMax = (1u << expBits) - 1;
  float magnitude;
  if (ieeeSpecials && exp == expMax) {
    magnitude = man == 0 ? std::numeric_limits<float>::infinity()
                         : std::numeric_limits<float>::quiet_NaN();
  } else if (!ieeeSpecials && exp == expMax && man == (1u << manBits) - 1) {
    magnitude = std::numeric_limits<float>::quiet_NaN();
  } else if (exp == 0) {
    magnitude = std::ldexp(static_cast<float>(man), 1 - bias - manBits);
  } else {
    magnitude = std::ldexp(static_cast<float>(man + (1u << manBits)),
                           static_cast<int>(exp) - bias - manBits);
  }
  return sign ? -magnitude : magnitude;
}

template <typename T, typename F>
void convertEach(const void *src, size_t count, float *dst, F decode) {
  const auto *bytes = static_cast<const unsigned char *>(src);
  for (size_t i = 0; i < count; ++i) {
    T value;
    std::memcpy(&value, bytes + i * sizeof(T), sizeof(T));
    dst[i] = decode(value);
  }
}

} // namespace

const char *moe::runtime::dtypeName(DType dtype) { return info(dtype).name; }

size_t moe::runtime::dtypeSize(DType dtype) { return info(dtype).size; }

std::optional<DType> moe::runtime::parseDType(std::string_view name) {
  for (const DTypeInfo &entry : kDTypes)
    if (name == entry.name)
      return entry.dtype;
  return std::nullopt;
}

const char *moe::runtime::supportedDTypeNames() {
  return "F32 F16 BF16 F64 I64 I32 I16 I8 U8 BOOL F8_E4M3 F8_E5M2";
}

bool moe::runtime::isConvertibleToF32(DType dtype) {
  switch (dtype) {
  case DType::F32:
  case DType::F16:
  case DType::BF16:
  case DType::F64:
  case DType::F8E4M3:
  case DType::F8E5M2:
    return true;
  default:
    return false;
  }
}

float moe::runtime::halfToFloat(uint16_t bits) {
  uint32_t sign = static_cast<uint32_t>(bits & 0x8000) << 16;
  uint32_t exp = (bits >> 10) & 0x1f;
  uint32_t man = bits & 0x3ff;
  if (exp == 0x1f) // Infinity or NaN; the NaN payload is kept.
    return bitsToFloat(sign | 0x7f800000u | (man << 13));
  if (exp != 0) // Normal: rebias the exponent from 15 to 127.
    return bitsToFloat(sign | ((exp + 112) << 23) | (man << 13));
  if (man == 0)
    return bitsToFloat(sign);
  // Subnormal: man * 2^-24, exact in f32.
  float magnitude = std::ldexp(static_cast<float>(man), -24);
  return sign ? -magnitude : magnitude;
}

float moe::runtime::bfloat16ToFloat(uint16_t bits) {
  return bitsToFloat(static_cast<uint32_t>(bits) << 16);
}

float moe::runtime::float8E4M3ToFloat(uint8_t bits) {
  return decodeSmallFloat(bits, 4, 3, /*ieeeSpecials=*/false);
}

float moe::runtime::float8E5M2ToFloat(uint8_t bits) {
  return decodeSmallFloat(bits, 5, 2, /*ieeeSpecials=*/true);
}

Status moe::runtime::convertToF32(DType dtype, const void *src, size_t count,
                                  float *dst) {
  switch (dtype) {
  case DType::F32:
    if (count != 0)
      std::memcpy(dst, src, count * sizeof(float));
    return Status::success();
  case DType::F16:
    convertEach<uint16_t>(src, count, dst, halfToFloat);
    return Status::success();
  case DType::BF16:
    convertEach<uint16_t>(src, count, dst, bfloat16ToFloat);
    return Status::success();
  case DType::F64:
    convertEach<double>(src, count, dst,
                        [](double d) { return static_cast<float>(d); });
    return Status::success();
  case DType::F8E4M3:
    convertEach<uint8_t>(src, count, dst, float8E4M3ToFloat);
    return Status::success();
  case DType::F8E5M2:
    convertEach<uint8_t>(src, count, dst, float8E5M2ToFloat);
    return Status::success();
  default:
    return Status::failure(std::string("dtype ") + dtypeName(dtype) +
                           " does not convert to f32");
  }
}
