//===- TensorBuilders.cpp - Upstream-op building blocks -------------------===//

#include "moe/Dialect/MoE/Utils/TensorBuilders.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

#include <cmath>

using namespace mlir;
using namespace mlir::moe;

Value mlir::moe::castFloat(OpBuilder &b, Location loc, Value value, Type type) {
  Type from = value.getType();
  if (from == type)
    return value;
  unsigned fromWidth = llvm::cast<FloatType>(from).getWidth();
  unsigned toWidth = llvm::cast<FloatType>(type).getWidth();
  if (fromWidth == toWidth) // bf16 <-> f16: through f32
    value = arith::ExtFOp::create(b, loc, b.getF32Type(), value);
  if (fromWidth < toWidth)
    return arith::ExtFOp::create(b, loc, type, value);
  return arith::TruncFOp::create(b, loc, type, value);
}

static Value f32Constant(OpBuilder &b, Location loc, double value) {
  return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(value));
}

Value mlir::moe::buildSigmoid(OpBuilder &b, Location loc, Value v) {
  Value one = f32Constant(b, loc, 1.0);
  Value negated = arith::NegFOp::create(b, loc, v);
  Value exp = math::ExpOp::create(b, loc, negated);
  Value denominator = arith::AddFOp::create(b, loc, one, exp);
  return arith::DivFOp::create(b, loc, one, denominator);
}

Value mlir::moe::buildSoftplus(OpBuilder &b, Location loc, Value v) {
  // max(v, 0) + log1p(exp(-|v|)) never overflows.
  Value zero = f32Constant(b, loc, 0.0);
  Value positive = arith::MaximumFOp::create(b, loc, v, zero);
  Value magnitude = math::AbsFOp::create(b, loc, v);
  Value exp =
      math::ExpOp::create(b, loc, arith::NegFOp::create(b, loc, magnitude));
  return arith::AddFOp::create(b, loc, positive,
                               math::Log1pOp::create(b, loc, exp));
}

Value mlir::moe::buildActivation(OpBuilder &b, Location loc, Activation act,
                                 Value v) {
  switch (act) {
  case Activation::Silu:
    return arith::MulFOp::create(b, loc, v, buildSigmoid(b, loc, v));
  case Activation::Relu:
    return arith::MaximumFOp::create(b, loc, v, f32Constant(b, loc, 0.0));
  case Activation::Gelu: {
    // 0.5 * v * (1 + erf(v / sqrt(2)))
    Value scaled =
        arith::MulFOp::create(b, loc, v, f32Constant(b, loc, M_SQRT1_2));
    Value erf = math::ErfOp::create(b, loc, scaled);
    Value onePlus =
        arith::AddFOp::create(b, loc, f32Constant(b, loc, 1.0), erf);
    Value half = arith::MulFOp::create(b, loc, v, f32Constant(b, loc, 0.5));
    return arith::MulFOp::create(b, loc, half, onePlus);
  }
  case Activation::GeluTanh: {
    // 0.5 * v * (1 + tanh(sqrt(2/pi) * (v + 0.044715 * v^3)))
    Value cube =
        arith::MulFOp::create(b, loc, v, arith::MulFOp::create(b, loc, v, v));
    Value inner = arith::AddFOp::create(
        b, loc, v,
        arith::MulFOp::create(b, loc, cube, f32Constant(b, loc, 0.044715)));
    Value scaled = arith::MulFOp::create(
        b, loc, inner, f32Constant(b, loc, std::sqrt(2.0 / M_PI)));
    Value onePlus = arith::AddFOp::create(b, loc, f32Constant(b, loc, 1.0),
                                          math::TanhOp::create(b, loc, scaled));
    Value half = arith::MulFOp::create(b, loc, v, f32Constant(b, loc, 0.5));
    return arith::MulFOp::create(b, loc, half, onePlus);
  }
  case Activation::ClampedSwiglu:
    llvm_unreachable("clamped_swiglu is gated: buildGatedActivation");
  }
  llvm_unreachable("unknown activation");
}

Value mlir::moe::buildGatedActivation(OpBuilder &b, Location loc,
                                      Activation act, const SwigluClamp &clamp,
                                      Value gate, Value up) {
  if (act != Activation::ClampedSwiglu)
    return arith::MulFOp::create(b, loc, buildActivation(b, loc, act, gate),
                                 up);
  Value limit = f32Constant(b, loc, clamp.limit);
  Value g = arith::MinimumFOp::create(b, loc, gate, limit);
  Value u = arith::MaximumFOp::create(
      b, loc, arith::MinimumFOp::create(b, loc, up, limit),
      f32Constant(b, loc, -clamp.limit));
  Value scaled =
      arith::MulFOp::create(b, loc, g, f32Constant(b, loc, clamp.alpha));
  Value glu = arith::MulFOp::create(b, loc, g, buildSigmoid(b, loc, scaled));
  return arith::MulFOp::create(
      b, loc, glu, arith::AddFOp::create(b, loc, u, f32Constant(b, loc, 1.0)));
}

Value mlir::moe::buildEmptyLike(OpBuilder &b, Location loc, Value source,
                                Type elementType,
                                std::optional<int64_t> lastDim) {
  SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(b, loc, source);
  if (lastDim)
    sizes.back() = b.getIndexAttr(*lastDim);
  return tensor::EmptyOp::create(b, loc, sizes, elementType);
}

Value mlir::moe::buildFilled(OpBuilder &b, Location loc, Value source,
                             Type elementType, TypedAttr value,
                             std::optional<int64_t> lastDim) {
  Value empty = buildEmptyLike(b, loc, source, elementType, lastDim);
  Value constant = arith::ConstantOp::create(b, loc, value);
  return linalg::FillOp::create(b, loc, ValueRange{constant}, ValueRange{empty})
      .getResult(0);
}

Value mlir::moe::buildZeros(OpBuilder &b, Location loc, Value source,
                            Type elementType, std::optional<int64_t> lastDim) {
  return buildFilled(b, loc, source, elementType, b.getZeroAttr(elementType),
                     lastDim);
}

Value mlir::moe::buildLinear(OpBuilder &b, Location loc, Value x, Value w,
                             Type resultType) {
  int64_t outFeatures = llvm::cast<RankedTensorType>(w.getType()).getDimSize(0);
  Value init = buildZeros(b, loc, x, resultType, outFeatures);
  return linalg::MatmulTransposeBOp::create(b, loc, TypeRange{init.getType()},
                                            ValueRange{x, w}, ValueRange{init})
      .getResult(0);
}

Value mlir::moe::buildElementwise(OpBuilder &b, Location loc, ValueRange inputs,
                                  Type resultElementType,
                                  ElementwiseBody body) {
  MLIRContext *ctx = b.getContext();
  auto leadType = llvm::cast<RankedTensorType>(inputs.front().getType());
  Value init = buildEmptyLike(b, loc, inputs.front(), resultElementType);
  AffineMap identity = AffineMap::getMultiDimIdentityMap(2, ctx);
  AffineMap broadcastLast = AffineMap::get(
      2, 0, {getAffineDimExpr(0, ctx), getAffineConstantExpr(0, ctx)}, ctx);
  SmallVector<AffineMap> maps;
  for (Value input : inputs) {
    auto type = llvm::cast<RankedTensorType>(input.getType());
    bool broadcast = type.getDimSize(1) == 1 && leadType.getDimSize(1) != 1;
    maps.push_back(broadcast ? broadcastLast : identity);
  }
  maps.push_back(identity);
  SmallVector<utils::IteratorType> iterators(2, utils::IteratorType::parallel);
  auto generic = linalg::GenericOp::create(
      b, loc, TypeRange{init.getType()}, inputs, ValueRange{init}, maps,
      iterators, [&](OpBuilder &nested, Location nestedLoc, ValueRange args) {
        SmallVector<Value> f32Args;
        for (Value arg : args.drop_back())
          f32Args.push_back(
              castFloat(nested, nestedLoc, arg, nested.getF32Type()));
        Value result = body(nested, nestedLoc, f32Args);
        linalg::YieldOp::create(
            nested, nestedLoc,
            castFloat(nested, nestedLoc, result, resultElementType));
      });
  return generic.getResult(0);
}

Value mlir::moe::buildDequantized(OpBuilder &b, Location loc, Value weight,
                                  Value scale, ArrayRef<int64_t> block,
                                  OpFoldResult depth) {
  MLIRContext *ctx = b.getContext();
  auto type = llvm::cast<RankedTensorType>(weight.getType());
  unsigned rank = type.getRank();
  bool e2m1 = isE2M1Pairs(type.getElementType());
  assert((!e2m1 || depth) && "e2m1 pairs need their logical depth");
  AffineMap identity = AffineMap::getMultiDimIdentityMap(rank, ctx);
  SmallVector<AffineExpr> scaleIndex;
  for (unsigned d = 0; d + 2 < rank; ++d)
    scaleIndex.push_back(getAffineDimExpr(d, ctx));
  scaleIndex.push_back(getAffineDimExpr(rank - 2, ctx).floorDiv(block[0]));
  scaleIndex.push_back(getAffineDimExpr(rank - 1, ctx).floorDiv(block[1]));
  AffineMap scaleMap = AffineMap::get(rank, 0, scaleIndex, ctx);
  // e2m1 pairs: element k is in byte k floordiv 2.
  AffineMap weightMap = identity;
  SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(b, loc, weight);
  if (e2m1) {
    SmallVector<AffineExpr> index(identity.getResults());
    index.back() = index.back().floorDiv(2);
    weightMap = AffineMap::get(rank, 0, index, ctx);
    sizes.back() = depth;
  }
  Value init = tensor::EmptyOp::create(b, loc, sizes, b.getF32Type());
  return linalg::GenericOp::create(
             b, loc, TypeRange{init.getType()}, ValueRange{weight, scale},
             ValueRange{init},
             SmallVector<AffineMap>{weightMap, scaleMap, identity},
             SmallVector<utils::IteratorType>(rank,
                                              utils::IteratorType::parallel),
             [&](OpBuilder &nb, Location nl, ValueRange args) {
               Value w =
                   e2m1 ? buildE2M1PairElement(
                              nb, nl, args[0],
                              linalg::IndexOp::create(nb, nl, rank - 1))
                        : castFloat(nb, nl, args[0], nb.getF32Type());
               linalg::YieldOp::create(
                   nb, nl,
                   ValueRange{arith::MulFOp::create(nb, nl, w, args[1])});
             })
      .getResult(0);
}
