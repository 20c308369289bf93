//===- LowerExpertMatmul.cpp - moe.expert_matmul to linalg ----------------===//
//
// Grouped rows: a loop over experts, each multiplying only its own rows (a
// dynamic slice [offsets[e], offsets[e+1]) of the input) by its [N,K] weight
// slice with linalg.matmul accumulating in f32. Capacity slots: one
// linalg.batch_matmul with a transposed-B map, [E,C,K] x [E,N,K]^T.
// Block-scaled (FP8) weights are dequantized to f32 first (one expert at a
// time for grouped rows): the reference, not the fast path.
//
//===----------------------------------------------------------------------===//

#include "LoweringUtils.h"
#include "moe/Conversion/MoEToLinalg/MoEToLinalg.h"
#include "moe/Dialect/MoE/Utils/TensorBuilders.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Transforms/DialectConversion.h"

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::lowering;

namespace {

/// Slice `[e]` of a tensor whose first dimension is experts, with that
/// dimension dropped: `[E, d1, ...] -> [d1, ...]`.
Value expertSlice(OpBuilder &b, Location loc, Value tensor, Value e) {
  auto type = llvm::cast<RankedTensorType>(tensor.getType());
  SmallVector<OpFoldResult> offsets(type.getRank(), b.getIndexAttr(0));
  offsets[0] = e;
  SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(b, loc, tensor);
  sizes[0] = b.getIndexAttr(1);
  SmallVector<OpFoldResult> strides(type.getRank(), b.getIndexAttr(1));
  auto sliceType = RankedTensorType::get(type.getShape().drop_front(),
                                         type.getElementType());
  return tensor::ExtractSliceOp::create(b, loc, sliceType, tensor, offsets,
                                        sizes, strides);
}

/// Writes `acc + bias` (bias `[N]`, broadcast over rows), converted to the
/// element type of `dest`, into `dest`: the epilogue of one expert's product.
Value buildEpilogue(OpBuilder &b, Location loc, Value acc, Value bias,
                    Value dest) {
  MLIRContext *ctx = b.getContext();
  Type elementType =
      llvm::cast<RankedTensorType>(dest.getType()).getElementType();
  AffineMap identity = AffineMap::getMultiDimIdentityMap(2, ctx);
  SmallVector<Value> inputs = {acc};
  SmallVector<AffineMap> maps = {identity};
  if (bias) {
    inputs.push_back(bias);
    maps.push_back(AffineMap::get(2, 0, {getAffineDimExpr(1, ctx)}, ctx));
  }
  maps.push_back(identity);
  return linalg::GenericOp::create(
             b, loc, TypeRange{dest.getType()}, inputs, ValueRange{dest}, maps,
             SmallVector<utils::IteratorType>(2, utils::IteratorType::parallel),
             [&](OpBuilder &nb, Location nl, ValueRange args) {
               Value v = castFloat(nb, nl, args[0], nb.getF32Type());
               if (bias)
                 v = arith::AddFOp::create(
                     nb, nl, v, castFloat(nb, nl, args[1], nb.getF32Type()));
               linalg::YieldOp::create(nb, nl, castFloat(nb, nl, v, elementType));
             })
      .getResult(0);
}

/// `rows @ weight^T` accumulated into the zero-filled f32 tensor `acc`.
Value buildProduct(OpBuilder &b, Location loc, Value rows, Value weight,
                   Value acc) {
  Value zero = f32Constant(b, loc, 0.0);
  acc = linalg::FillOp::create(b, loc, ValueRange{zero}, ValueRange{acc})
            .getResult(0);
  return linalg::MatmulTransposeBOp::create(b, loc, TypeRange{acc.getType()},
                                            ValueRange{rows, weight},
                                            ValueRange{acc})
      .getResult(0);
}

struct LowerGroupedExpertMatmul : OpConversionPattern<ExpertMatmulOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(ExpertMatmulOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Value offsets = adaptor.getOffsets();
    if (!offsets)
      return rewriter.notifyMatchFailure(op, "capacity layout");
    Location loc = op.getLoc();
    Value input = adaptor.getInput();
    Value weight = adaptor.getWeight();
    Value bias = adaptor.getBias();
    Value scale = adaptor.getWeightScale();
    ArrayRef<int64_t> block = op.getWeightBlock().value_or(ArrayRef<int64_t>());
    auto resultType = llvm::cast<RankedTensorType>(op.getResult().getType());
    Type elementType = resultType.getElementType();
    auto weightType = llvm::cast<RankedTensorType>(weight.getType());
    int64_t numExperts = weightType.getDimSize(0);
    int64_t outFeatures = weightType.getDimSize(1);

    Value zero = indexConstant(rewriter, loc, 0);
    Value one = indexConstant(rewriter, loc, 1);
    Value numRows = tensor::DimOp::create(rewriter, loc, input, 0);
    OpFoldResult inFeatures = tensor::getMixedSize(rewriter, loc, input, 1);
    Value result = tensor::EmptyOp::create(
        rewriter, loc,
        ArrayRef<OpFoldResult>{tensor::getMixedSize(rewriter, loc, input, 0),
                               rewriter.getIndexAttr(outFeatures)},
        elementType);
    Value zeroElement =
        arith::ConstantOp::create(rewriter, loc, rewriter.getZeroAttr(elementType));
    result = linalg::FillOp::create(rewriter, loc, ValueRange{zeroElement},
                                    ValueRange{result})
                 .getResult(0);

    auto offsetAt = [&](OpBuilder &b, Location l, Value i) -> Value {
      Value v = tensor::ExtractOp::create(b, l, offsets, ValueRange{i});
      v = arith::IndexCastOp::create(b, l, b.getIndexType(), v);
      // Clamped to [0, R] so that malformed offsets never address outside.
      v = arith::MaxSIOp::create(b, l, v, zero);
      return arith::MinSIOp::create(b, l, v, numRows);
    };

    result = buildLoop(
        rewriter, loc, zero, indexConstant(rewriter, loc, numExperts), {result},
        [&](OpBuilder &b, Location l, Value e, ValueRange carried) {
          Value start = offsetAt(b, l, e);
          Value end = arith::MaxSIOp::create(
              b, l, offsetAt(b, l, arith::AddIOp::create(b, l, e, one)),
              start);
          Value count = arith::SubIOp::create(b, l, end, start);
          auto body = [&](OpBuilder &b, Location l) -> SmallVector<Value> {
          OpFoldResult unit = b.getIndexAttr(1);
          Value rows = tensor::ExtractSliceOp::create(
              b, l, input, ArrayRef<OpFoldResult>{start, b.getIndexAttr(0)},
              ArrayRef<OpFoldResult>{count, inFeatures},
              ArrayRef<OpFoldResult>{unit, unit});
          SmallVector<OpFoldResult> outOffsets = {start, b.getIndexAttr(0)};
          SmallVector<OpFoldResult> outSizes = {count,
                                                b.getIndexAttr(outFeatures)};
          SmallVector<OpFoldResult> unitStrides = {unit, unit};
          // f32 rows accumulate in place in the result; other types in an
          // f32 buffer converted by the epilogue.
          Value dest = tensor::ExtractSliceOp::create(
              b, l, carried[0], outOffsets, outSizes, unitStrides);
          Value acc = dest;
          if (!elementType.isF32())
            acc = tensor::EmptyOp::create(b, l, outSizes, b.getF32Type());
          // A block-scaled weight is dequantized one expert at a time.
          Value expertWeight = expertSlice(b, l, weight, e);
          if (scale)
            expertWeight =
                buildDequantized(b, l, expertWeight,
                                 expertSlice(b, l, scale, e), block, inFeatures);
          Value out = buildProduct(b, l, rows, expertWeight, acc);
          if (bias || !elementType.isF32())
            out = buildEpilogue(b, l, out,
                                bias ? expertSlice(b, l, bias, e) : Value(),
                                dest);
          return SmallVector<Value>{tensor::InsertSliceOp::create(
              b, l, out, carried[0], outOffsets, outSizes, unitStrides)};
          };
          // A block-scaled expert without rows is not dequantized: at decode
          // most experts have none.
          if (!scale)
            return body(b, l);
          Value used = arith::CmpIOp::create(b, l, arith::CmpIPredicate::sgt,
                                             count, zero);
          return buildIf(b, l, used, body, carried);
        })[0];
    result = castToType(rewriter, loc, result, resultType);
    rewriter.replaceOp(op, result);
    return success();
  }
};

struct LowerCapacityExpertMatmul : OpConversionPattern<ExpertMatmulOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(ExpertMatmulOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    if (adaptor.getOffsets())
      return rewriter.notifyMatchFailure(op, "grouped layout");
    Location loc = op.getLoc();
    MLIRContext *ctx = rewriter.getContext();
    Value input = adaptor.getInput();
    Value weight = adaptor.getWeight();
    Value bias = adaptor.getBias();
    auto resultType = llvm::cast<RankedTensorType>(op.getResult().getType());
    Type elementType = resultType.getElementType();
    int64_t outFeatures =
        llvm::cast<RankedTensorType>(weight.getType()).getDimSize(1);

    // acc[e, c, n] = sum_k input[e, c, k] * weight[e, n, k], in f32.
    Value acc = buildZeros(rewriter, loc, input, rewriter.getF32Type(),
                           outFeatures);
    if (Value scale = adaptor.getWeightScale())
      weight = buildDequantized(rewriter, loc, weight, scale,
                                *op.getWeightBlock(),
                                tensor::getMixedSize(rewriter, loc, input, 2));
    // A batched matmul with a transposed-B map: what CPU and GPU code
    // generation take as is (moe-lower-transposed-matmul-to-vector).
    acc = linalg::BatchMatmulTransposeBOp::create(
              rewriter, loc, TypeRange{acc.getType()},
              ValueRange{input, weight}, ValueRange{acc})
              .getResult(0);

    // Bias and conversion: out[e, c, n] = acc[e, c, n] + bias[e, n].
    SmallVector<Value> inputs = {acc};
    AffineMap identity = AffineMap::getMultiDimIdentityMap(3, ctx);
    SmallVector<AffineMap> maps = {identity};
    if (bias) {
      inputs.push_back(bias);
      maps.push_back(AffineMap::get(
          3, 0, {getAffineDimExpr(0, ctx), getAffineDimExpr(2, ctx)}, ctx));
    }
    maps.push_back(identity);
    Value init = buildEmptyLike(rewriter, loc, acc, elementType);
    Value result =
        linalg::GenericOp::create(
            rewriter, loc, TypeRange{init.getType()}, inputs, ValueRange{init},
            maps,
            SmallVector<utils::IteratorType>(3, utils::IteratorType::parallel),
            [&](OpBuilder &b, Location l, ValueRange args) {
              Value v = args[0];
              if (bias)
                v = arith::AddFOp::create(
                    b, l, v, castFloat(b, l, args[1], b.getF32Type()));
              linalg::YieldOp::create(b, l, castFloat(b, l, v, elementType));
            })
            .getResult(0);
    result = castToType(rewriter, loc, result, resultType);
    rewriter.replaceOp(op, result);
    return success();
  }
};

} // namespace

void mlir::moe::populateExpertMatmulLoweringPatterns(
    RewritePatternSet &patterns) {
  patterns.add<LowerGroupedExpertMatmul, LowerCapacityExpertMatmul>(
      patterns.getContext());
}
