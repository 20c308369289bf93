//===- LowerDispatchCombine.cpp - moe.dispatch / moe.combine to scf -------===//
//
// Dispatch is a counting sort over the taken assignments: count per expert,
// prefix-sum the (aligned) counts, then copy each taken assignment's token row
// to the next free row of its expert and record that row in the row map. The
// buffer has exactly as many rows as the sum of aligned counts: nothing is
// sized by T*E. Combine reads, for every output element, the token's K rows
// through the row map.
//
//===----------------------------------------------------------------------===//

#include "LoweringUtils.h"
#include "moe/Conversion/MoEToLinalg/MoEToLinalg.h"
#include "moe/Dialect/MoE/Utils/TensorBuilders.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Transforms/DialectConversion.h"

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::lowering;

namespace {

/// A tensor of `sizes` filled with zeros of `elementType`.
Value buildZeroTensor(OpBuilder &b, Location loc, ArrayRef<OpFoldResult> sizes,
                      Type elementType) {
  Value empty = tensor::EmptyOp::create(b, loc, sizes, elementType);
  Value zero = arith::ConstantOp::create(b, loc, b.getZeroAttr(elementType));
  return linalg::FillOp::create(b, loc, ValueRange{zero}, ValueRange{empty})
      .getResult(0);
}

/// Reads an integer element of a tensor as an `index`.
Value extractIndex(OpBuilder &b, Location loc, Value tensor,
                   ValueRange indices) {
  Value v = tensor::ExtractOp::create(b, loc, tensor, indices);
  return arith::IndexCastOp::create(b, loc, b.getIndexType(), v);
}

/// Writes an `index` into an integer tensor.
Value insertIndex(OpBuilder &b, Location loc, Value index, Value tensor,
                  ValueRange indices) {
  Type elementType = llvm::cast<RankedTensorType>(tensor.getType())
                         .getElementType();
  Value v = arith::IndexCastOp::create(b, loc, elementType, index);
  return tensor::InsertOp::create(b, loc, v, tensor, indices);
}

/// Copies row `token` of `input [T,H]` into `dest` at `destRow` (the
/// leading indices of a row of a rank-2 or rank-3 destination), element by
/// element: after bufferization these are plain loads and stores.
Value copyRow(OpBuilder &b, Location loc, Value input, Value token, Value dest,
              ValueRange destRow) {
  Value hidden = tensor::DimOp::create(b, loc, input, 1);
  return buildLoop(
      b, loc, indexConstant(b, loc, 0), hidden, {dest},
      [&](OpBuilder &nb, Location nl, Value h, ValueRange carried) {
        Value v = tensor::ExtractOp::create(nb, nl, input, ValueRange{token, h});
        SmallVector<Value> at(destRow);
        at.push_back(h);
        return SmallVector<Value>{
            tensor::InsertOp::create(nb, nl, v, carried[0], at)};
      })[0];
}

struct LowerDispatch : OpConversionPattern<DispatchOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(DispatchOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value input = adaptor.getInput();
    Value ids = adaptor.getIds();
    int64_t numExperts = op.getNumExperts();
    int64_t choices = llvm::cast<RankedTensorType>(ids.getType()).getDimSize(1);
    auto rowsType = llvm::cast<RankedTensorType>(op.getRows().getType());
    Type elementType = rowsType.getElementType();
    Type i64 = rewriter.getI64Type();

    Value zero = indexConstant(rewriter, loc, 0);
    Value one = indexConstant(rewriter, loc, 1);
    Value eCount = indexConstant(rewriter, loc, numExperts);
    Value kCount = indexConstant(rewriter, loc, choices);
    OpFoldResult tokenCount = tensor::getMixedSize(rewriter, loc, input, 0);
    Value numTokens =
        getValueOrCreateConstantIndexOp(rewriter, loc, tokenCount);
    OpFoldResult hidden = tensor::getMixedSize(rewriter, loc, input, 1);
    Value perExpertZeros = buildZeroTensor(
        rewriter, loc, {rewriter.getIndexAttr(numExperts)}, i64);

    /// Visits every assignment (t, k) whose id names an expert, carrying
    /// `init`; `onTaken(t, k, e, carried)` returns the next values.
    auto forEachAssignment =
        [&](ValueRange init,
            function_ref<SmallVector<Value>(OpBuilder &, Location, Value t,
                                            Value k, Value e, Value taken,
                                            ValueRange carried)>
                body) {
          return buildLoop(
              rewriter, loc, zero, numTokens, init,
              [&](OpBuilder &b, Location l, Value t, ValueRange tCarried) {
                return buildLoop(
                    b, l, zero, kCount, tCarried,
                    [&](OpBuilder &kb, Location kl, Value k,
                        ValueRange carried) {
                      Value e = extractIndex(kb, kl, ids, {t, k});
                      Value taken = isInRange(kb, kl, e, eCount);
                      return body(kb, kl, t, k, e, taken, carried);
                    });
              });
        };

    // Rows of each expert; the id check keeps out-of-range ids out of it.
    auto increment = [&](OpBuilder &b, Location l, Value tensor, Value e) {
      Value next =
          arith::AddIOp::create(b, l, extractIndex(b, l, tensor, {e}), one);
      return insertIndex(b, l, next, tensor, {e});
    };

    if (op.isCapacityLayout()) {
      OpFoldResult capacity =
          rowsType.isDynamicDim(1) ? OpFoldResult(adaptor.getCapacity())
                                   : rewriter.getIndexAttr(rowsType.getDimSize(1));
      Value capacityValue =
          getValueOrCreateConstantIndexOp(rewriter, loc, capacity);
      Value rows = buildZeroTensor(
          rewriter, loc, {rewriter.getIndexAttr(numExperts), capacity, hidden},
          elementType);
      Value rowMap = tensor::EmptyOp::create(
          rewriter, loc,
          ArrayRef<OpFoldResult>{tokenCount, rewriter.getIndexAttr(choices)},
          rewriter.getI32Type());
      SmallVector<Value> placed = forEachAssignment(
          {rows, rowMap, perExpertZeros},
          [&](OpBuilder &b, Location l, Value t, Value k, Value e, Value taken,
              ValueRange carried) {
            // Slot of this assignment: the expert's count so far, if < C.
            Value safeExpert = arith::SelectOp::create(b, l, taken, e, zero);
            Value slot = extractIndex(b, l, carried[2], {safeExpert});
            Value fits = arith::AndIOp::create(
                b, l, taken,
                arith::CmpIOp::create(b, l, arith::CmpIPredicate::slt, slot,
                                      capacityValue));
            Value flat = arith::AddIOp::create(
                b, l, arith::MulIOp::create(b, l, e, capacityValue), slot);
            Value mapped = arith::SelectOp::create(
                b, l, fits, flat, indexConstant(b, l, -1));
            Value map = insertIndex(b, l, mapped, carried[1], {t, k});
            SmallVector<Value> next = buildIf(
                b, l, fits,
                [&](OpBuilder &ib, Location il) {
                  return SmallVector<Value>{
                      copyRow(ib, il, input, t, carried[0], {e, slot}),
                      increment(ib, il, carried[2], e)};
                },
                {carried[0], carried[2]});
            return SmallVector<Value>{next[0], map, next[1]};
          });
      Value slotsResult = placed[0];
      slotsResult = castToType(rewriter, loc, slotsResult, rowsType);
      rewriter.replaceOp(op, {slotsResult, placed[2], placed[1]});
      return success();
    }

    // Grouped layout: counts, then aligned prefix sums.
    Value counts = forEachAssignment(
        {perExpertZeros},
        [&](OpBuilder &b, Location l, Value, Value, Value e, Value taken,
            ValueRange carried) {
          return buildIf(
              b, l, taken,
              [&](OpBuilder &ib, Location il) {
                return SmallVector<Value>{increment(ib, il, carried[0], e)};
              },
              {carried[0]});
        })[0];
    Value align = indexConstant(rewriter, loc, op.getAlign());
    Value offsets = buildZeroTensor(
        rewriter, loc, {rewriter.getIndexAttr(numExperts + 1)}, i64);
    offsets = buildLoop(
        rewriter, loc, zero, eCount, {offsets},
        [&](OpBuilder &b, Location l, Value e, ValueRange carried) {
          Value count = extractIndex(b, l, counts, {e});
          Value alignMinusOne = arith::SubIOp::create(b, l, align, one);
          Value blocks = arith::DivUIOp::create(
              b, l, arith::AddIOp::create(b, l, count, alignMinusOne), align);
          Value padded = arith::MulIOp::create(b, l, blocks, align);
          Value start = extractIndex(b, l, carried[0], {e});
          Value next = arith::AddIOp::create(b, l, e, one);
          return SmallVector<Value>{
              insertIndex(b, l, arith::AddIOp::create(b, l, start, padded),
                          carried[0], {next})};
        })[0];
    Value numRows = extractIndex(rewriter, loc, offsets, {eCount});
    Value rows = buildZeroTensor(rewriter, loc, {numRows, hidden}, elementType);
    Value rowMap = tensor::EmptyOp::create(
        rewriter, loc,
        ArrayRef<OpFoldResult>{tokenCount, rewriter.getIndexAttr(choices)},
        rewriter.getI32Type());
    SmallVector<Value> placed = forEachAssignment(
        {rows, rowMap, perExpertZeros},
        [&](OpBuilder &b, Location l, Value t, Value k, Value e, Value taken,
            ValueRange carried) {
          Value safeExpert = arith::SelectOp::create(b, l, taken, e, zero);
          Value row = arith::AddIOp::create(
              b, l, extractIndex(b, l, offsets, {safeExpert}),
              extractIndex(b, l, carried[2], {safeExpert}));
          Value mapped =
              arith::SelectOp::create(b, l, taken, row, indexConstant(b, l, -1));
          Value map = insertIndex(b, l, mapped, carried[1], {t, k});
          SmallVector<Value> next = buildIf(
              b, l, taken,
              [&](OpBuilder &ib, Location il) {
                return SmallVector<Value>{
                    copyRow(ib, il, input, t, carried[0], {row}),
                    increment(ib, il, carried[2], e)};
              },
              {carried[0], carried[2]});
          return SmallVector<Value>{next[0], map, next[1]};
        });
    // The row buffer's static type may be more precise than the computed one.
    Value rowsResult = placed[0];
    rowsResult = castToType(rewriter, loc, rowsResult, rowsType);
    rewriter.replaceOp(op, {rowsResult, offsets, placed[1]});
    return success();
  }
};

struct LowerCombine : OpConversionPattern<CombineOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(CombineOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value rows = adaptor.getRows();
    Value weights = adaptor.getWeights();
    Value rowMap = adaptor.getRowMap();
    auto rowsType = llvm::cast<RankedTensorType>(rows.getType());
    auto resultType = llvm::cast<RankedTensorType>(op.getResult().getType());
    Type elementType = resultType.getElementType();
    bool capacityLayout = rowsType.getRank() == 3;
    int64_t choices =
        llvm::cast<RankedTensorType>(rowMap.getType()).getDimSize(1);

    // Number of addressable rows, and slots per expert in capacity layout.
    Value slots, numRows = tensor::DimOp::create(rewriter, loc, rows, 0);
    if (capacityLayout) {
      slots = tensor::DimOp::create(rewriter, loc, rows, 1);
      numRows = arith::MulIOp::create(rewriter, loc, numRows, slots);
    }
    OpFoldResult hidden =
        tensor::getMixedSize(rewriter, loc, rows, rowsType.getRank() - 1);
    Value zero = indexConstant(rewriter, loc, 0);
    Value kCount = indexConstant(rewriter, loc, choices);

    Value result = buildTensorFromIndices(
        rewriter, loc, weights, hidden, elementType,
        [&](OpBuilder &b, Location l, Value t, Value h) {
          Value sum = buildLoop(
              b, l, zero, kCount, {f32Constant(b, l, 0.0)},
              [&](OpBuilder &kb, Location kl, Value k, ValueRange carried) {
                Value row = extractIndex(kb, kl, rowMap, {t, k});
                Value taken = isInRange(kb, kl, row, numRows);
                return buildIf(
                    kb, kl, taken,
                    [&](OpBuilder &ib, Location il) {
                      SmallVector<Value> at = {row, h};
                      if (capacityLayout)
                        at = {arith::DivUIOp::create(ib, il, row, slots),
                              arith::RemUIOp::create(ib, il, row, slots), h};
                      Value v = castFloat(
                          ib, il, tensor::ExtractOp::create(ib, il, rows, at),
                          ib.getF32Type());
                      Value w = tensor::ExtractOp::create(ib, il, weights,
                                                          ValueRange{t, k});
                      Value product = arith::MulFOp::create(ib, il, w, v);
                      return SmallVector<Value>{
                          arith::AddFOp::create(ib, il, carried[0], product)};
                    },
                    {carried[0]});
              })[0];
          return castFloat(b, l, sum, elementType);
        });
    result = castToType(rewriter, loc, result, resultType);
    rewriter.replaceOp(op, result);
    return success();
  }
};

} // namespace

void mlir::moe::populateDispatchCombineLoweringPatterns(
    RewritePatternSet &patterns) {
  patterns.add<LowerDispatch, LowerCombine>(patterns.getContext());
}
