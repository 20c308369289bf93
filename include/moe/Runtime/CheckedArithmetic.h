//===- CheckedArithmetic.h - Sizes computed without overflow ----*- C++ -*-===//
//
// Every product of dimensions, strides and byte counts that the runtime
// computes from untrusted input (checkpoint headers, .npy headers, manifests,
// caller-supplied shapes) goes through these helpers, which report overflow
// instead of wrapping (signed overflow is undefined behaviour).
//
// A shape is *representable* when the product of its non-zero dimensions,
// times the element size, fits int64. Then its element count, every
// row-major stride (a product of trailing dimensions) and its byte size fit
// int64 too, whatever zero dimensions it has: [2^62, 4, 0] is rejected
// although it holds no element, because its strides do not fit.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_CHECKEDARITHMETIC_H
#define MOE_RUNTIME_CHECKEDARITHMETIC_H

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace moe::runtime {

/// a * b, or nullopt when it overflows int64 or an operand is negative.
inline std::optional<int64_t> checkedMul(int64_t a, int64_t b) {
  int64_t product;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &product))
    return std::nullopt;
  return product;
}

/// a + b, or nullopt when it overflows int64 or an operand is negative.
inline std::optional<int64_t> checkedAdd(int64_t a, int64_t b) {
  int64_t sum;
  if (a < 0 || b < 0 || __builtin_add_overflow(a, b, &sum))
    return std::nullopt;
  return sum;
}

/// The number of bytes of a row-major array of `shape` with elements of
/// `itemSize` bytes, or nullopt when a dimension is negative or the shape is
/// not representable (see above).
inline std::optional<int64_t> checkedByteSize(const int64_t *begin,
                                              const int64_t *end,
                                              size_t itemSize) {
  int64_t nonZero = static_cast<int64_t>(itemSize);
  bool empty = false;
  for (const int64_t *d = begin; d != end; ++d) {
    if (*d < 0)
      return std::nullopt;
    if (*d == 0) {
      empty = true;
      continue;
    }
    std::optional<int64_t> product = checkedMul(nonZero, *d);
    if (!product)
      return std::nullopt;
    nonZero = *product;
  }
  return empty ? 0 : nonZero;
}

/// checkedByteSize over a vector.
inline std::optional<int64_t> checkedByteSize(const std::vector<int64_t> &shape,
                                              size_t itemSize) {
  return checkedByteSize(shape.data(), shape.data() + shape.size(), itemSize);
}

/// The number of elements of `shape`, or nullopt when it is not
/// representable.
inline std::optional<int64_t>
checkedNumElements(const std::vector<int64_t> &shape) {
  return checkedByteSize(shape, 1);
}

/// The row-major strides of `shape` in elements, or nullopt when it is not
/// representable.
inline std::optional<std::vector<int64_t>>
checkedRowMajorStrides(const std::vector<int64_t> &shape) {
  if (!checkedNumElements(shape))
    return std::nullopt;
  std::vector<int64_t> strides(shape.size());
  int64_t stride = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = stride;
    // Cannot overflow: it is 0 or at most the product of the non-zero
    // dimensions, which fits.
    stride *= shape[i];
  }
  return strides;
}

} // namespace moe::runtime

#endif // MOE_RUNTIME_CHECKEDARITHMETIC_H
