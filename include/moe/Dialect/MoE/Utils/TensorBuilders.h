//===- TensorBuilders.h - Upstream-op building blocks -----------*- C++ -*-===//
//
// Small builders that express MoE arithmetic in upstream ops on tensors:
// matmuls against checkpoint-layout weights, element-wise linalg.generic ops
// and the scalar activation functions. Shared by moe-decompose and the
// lowerings.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_DIALECT_MOE_UTILS_TENSORBUILDERS_H
#define MOE_DIALECT_MOE_UTILS_TENSORBUILDERS_H

#include "moe/Dialect/MoE/IR/MoE.h"

#include "mlir/IR/Builders.h"

namespace mlir::moe {

/// Converts a float scalar between float types (extf / truncf / identity).
Value castFloat(OpBuilder &b, Location loc, Value value, Type type);

/// `act(v)` on an f32 scalar.
Value buildActivation(OpBuilder &b, Location loc, Activation act, Value v);

/// The parameters of `clamped_swiglu` (moe.layer's `swiglu_alpha`,
/// `swiglu_limit`).
struct SwigluClamp {
  double alpha = 0;
  double limit = 0;
};

/// The hidden value of a gated expert from f32 `gate` and `up`:
/// `act(gate) * up`, or for `clamped_swiglu` `g * sigmoid(alpha * g) *
/// (u + 1)` with `g = min(gate, limit)`, `u = clamp(up, -limit, limit)`.
Value buildGatedActivation(OpBuilder &b, Location loc, Activation act,
                           const SwigluClamp &clamp, Value gate, Value up);

/// `1 / (1 + exp(-v))` on an f32 scalar.
Value buildSigmoid(OpBuilder &b, Location loc, Value v);

/// Numerically stable `log(1 + exp(v))` on an f32 scalar.
Value buildSoftplus(OpBuilder &b, Location loc, Value v);

/// An uninitialized tensor of `elementType` with the sizes of `source`, except
/// that the last dimension is `lastDim` when given.
Value buildEmptyLike(OpBuilder &b, Location loc, Value source, Type elementType,
                     std::optional<int64_t> lastDim = std::nullopt);

/// `buildEmptyLike` filled with `value` (of `elementType`).
Value buildFilled(OpBuilder &b, Location loc, Value source, Type elementType,
                  TypedAttr value,
                  std::optional<int64_t> lastDim = std::nullopt);

/// `buildEmptyLike` filled with zeros.
Value buildZeros(OpBuilder &b, Location loc, Value source, Type elementType,
                 std::optional<int64_t> lastDim = std::nullopt);

/// `x @ w^T` for `x : [T, K]` and a checkpoint-layout weight `w : [N, K]`,
/// accumulated in `resultType` (f32 for routing and shared experts).
Value buildLinear(OpBuilder &b, Location loc, Value x, Value w,
                  Type resultType);

/// The f32 weight of a block-scaled one (FP8 and MXFP4 checkpoints):
/// `weight[..., n, k] * scale[..., n floordiv block[0], k floordiv
/// block[1]]`, for weights of any rank >= 2 and scales of the same rank.
/// An e2m1-pair (i8) weight stores its last dimension in pairs: `depth` is
/// that dimension's logical size K (the result's), the weight's `ceil(K/2)`.
Value buildDequantized(OpBuilder &b, Location loc, Value weight, Value scale,
                       ArrayRef<int64_t> block, OpFoldResult depth = {});

/// Scalar body of an element-wise op: f32 operands in, one f32 value out.
using ElementwiseBody =
    function_ref<Value(OpBuilder &, Location, ValueRange f32Args)>;

/// An element-wise linalg.generic over rank-2 tensors shaped like `inputs[0]`.
/// Inputs are converted to f32 for `body`, the result to `resultElementType`.
/// An input whose last dimension is 1 while the first input's is not is
/// broadcast along it.
Value buildElementwise(OpBuilder &b, Location loc, ValueRange inputs,
                       Type resultElementType, ElementwiseBody body);

} // namespace mlir::moe

#endif // MOE_DIALECT_MOE_UTILS_TENSORBUILDERS_H
