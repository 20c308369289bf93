//===- LowerDispatchCombine.cpp - moe.dispatch / moe.combine to scf -------===//
//
// Dispatch is a counting sort over the taken assignments: count per expert,
// prefix-sum the (aligned) counts, then give each taken assignment the next
// free row of its expert, recorded in the row map and, as that row's token,
// in a row -> token table; an scf.forall over the rows then copies each
// row from its token (zeros for padding rows). The capacity layout places
// assignments in [E*C] slots the same way and gathers them as [E, C, H].
// The grouped buffer has exactly as many rows as the sum of aligned counts:
// nothing is sized by T*E. Combine reads, for every output element, the
// token's K rows through the row map.
//
//===----------------------------------------------------------------------===//

#include "LoweringUtils.h"
#include "RoutingPlanBuilders.h"
#include "moe/Conversion/MoEToLinalg/MoEToLinalg.h"
#include "moe/Dialect/MoE/Utils/TensorBuilders.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Transforms/DialectConversion.h"

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::lowering;

namespace {

/// Row `r` of a row-by-row result: the result's slice `destination`
/// ([1, H], to be written in place) in, the row's value out.
using RowBody = function_ref<Value(OpBuilder &, Location, Value r,
                                   Value destination)>;

/// A `[rows, H]` tensor of `elementType` built one row per iteration of an
/// scf.forall (whole rows: contiguous loops, done in place in the result's
/// buffer after bufferization).
Value buildRowByRow(OpBuilder &b, Location loc, OpFoldResult rows,
                    OpFoldResult hidden, int64_t staticHidden,
                    Type elementType, RowBody body) {
  if (!ShapedType::isDynamic(staticHidden))
    hidden = b.getIndexAttr(staticHidden);
  Value empty = tensor::EmptyOp::create(
      b, loc, ArrayRef<OpFoldResult>{rows, hidden}, elementType);
  return buildRowParallel(
      b, loc, rows, ValueRange{empty},
      [&](OpBuilder &nb, Location nl, Value r, ValueRange destinations) {
        return SmallVector<Value>{body(nb, nl, r, destinations[0])};
      })[0];
}

/// `[1, H]` slice of the rank-2 `tensor` at row `row`, of type `rowType`.
Value rowSlice(OpBuilder &b, Location loc, Value tensor, Value row,
               RankedTensorType rowType, OpFoldResult hidden) {
  return tensor::ExtractSliceOp::create(
      b, loc, rowType, tensor, ArrayRef<OpFoldResult>{row, b.getIndexAttr(0)},
      ArrayRef<OpFoldResult>{b.getIndexAttr(1), hidden},
      SmallVector<OpFoldResult>(2, b.getIndexAttr(1)));
}

/// `[rows, H]` rows of `elementType`, row r a copy of row `tokenOfRow[r]`
/// of `input` (`[T, H]`), or zeros where that is -1: one parallel iteration
/// per row (whole rows: contiguous copies and fills, done in place in the
/// rows buffer after bufferization).
Value buildGather(OpBuilder &b, Location loc, Value input, Value tokenOfRow,
                  OpFoldResult rows, int64_t staticHidden, Type elementType) {
  Value zero = indexConstant(b, loc, 0);
  return buildRowByRow(
      b, loc, rows, tensor::getMixedSize(b, loc, input, 1), staticHidden,
      elementType, [&](OpBuilder &rb, Location l, Value r, Value destination) {
        Value token = readIndex(rb, l, tokenOfRow, {r});
        Value filled = arith::CmpIOp::create(rb, l, arith::CmpIPredicate::sge,
                                             token, zero);
        auto rowType = llvm::cast<RankedTensorType>(destination.getType());
        auto row = scf::IfOp::create(
            rb, l, filled,
            [&](OpBuilder &tb, Location tl) {
              Value source =
                  rowSlice(tb, tl, input, token, rowType,
                           tensor::getMixedSize(tb, tl, destination, 1));
              scf::YieldOp::create(
                  tb, tl,
                  linalg::CopyOp::create(tb, tl, source, destination)
                      .getResult(0));
            },
            [&](OpBuilder &eb, Location el) {
              Value padding = arith::ConstantOp::create(
                  eb, el, eb.getZeroAttr(elementType));
              scf::YieldOp::create(
                  eb, el,
                  linalg::FillOp::create(eb, el, ValueRange{padding},
                                         ValueRange{destination})
                      .getResult(0));
            });
        return row.getResult(0);
      });
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
    auto rowsType = llvm::cast<RankedTensorType>(op.getRows().getType());
    Type elementType = rowsType.getElementType();
    Type i64 = rewriter.getI64Type();

    Value eCount = indexConstant(rewriter, loc, numExperts);
    OpFoldResult hidden = tensor::getMixedSize(rewriter, loc, input, 1);

    if (op.isCapacityLayout()) {
      OpFoldResult capacity =
          rowsType.isDynamicDim(1) ? OpFoldResult(adaptor.getCapacity())
                                   : rewriter.getIndexAttr(rowsType.getDimSize(1));
      Value capacityValue =
          getValueOrCreateConstantIndexOp(rewriter, loc, capacity);
      // Slot e*C + s of the flattened [E*C] slots holds the token placed
      // there (-1: empty); the placement is sequential scalar work, the
      // rows are then gathered in parallel as in the grouped layout.
      OpFoldResult numSlots =
          rowsType.isDynamicDim(1)
              ? OpFoldResult(
                    arith::MulIOp::create(rewriter, loc, eCount, capacityValue)
                        .getResult())
              : rewriter.getIndexAttr(numExperts * rowsType.getDimSize(1));
      Value slotTokens =
          buildFilledVector(rewriter, loc, numSlots, rewriter.getI32Type(), -1);
      // Slot of an assignment: the expert's count so far, if < C.
      Placement placed = buildPlacement(
          rewriter, loc, ids, numExperts, slotTokens, i64,
          [&](OpBuilder &b, Location l, Value e, Value count) {
            Value flat = arith::AddIOp::create(
                b, l, arith::MulIOp::create(b, l, e, capacityValue), count);
            Value fits = arith::CmpIOp::create(
                b, l, arith::CmpIPredicate::slt, count, capacityValue);
            return std::pair<Value, Value>{flat, fits};
          });
      Value flatRows = buildGather(rewriter, loc, input, placed.rowSources,
                                   numSlots,
                                   rowsType.getDimSize(2), elementType);
      auto expandedType = RankedTensorType::get(
          {numExperts, rowsType.getDimSize(1),
           llvm::cast<RankedTensorType>(flatRows.getType()).getDimSize(1)},
          elementType);
      Value slotsResult = tensor::ExpandShapeOp::create(
          rewriter, loc, expandedType, flatRows,
          ArrayRef<ReassociationIndices>{{0, 1}, {2}},
          ArrayRef<OpFoldResult>{rewriter.getIndexAttr(numExperts), capacity,
                                 hidden});
      slotsResult = castToType(rewriter, loc, slotsResult, rowsType);
      rewriter.replaceOp(op, {slotsResult, placed.counts, placed.rowMap});
      return success();
    }

    // Grouped layout: the counting sort of the routing plan (counts,
    // aligned prefix sums, placement), then the gather.
    Value counts = buildExpertCounts(rewriter, loc, ids, numExperts);
    Value offsets = buildAlignedOffsets(rewriter, loc, counts, op.getAlign());
    Value numRows = readIndex(rewriter, loc, offsets, {eCount});
    std::pair<Value, Value> placement = buildPlacement(
        rewriter, loc, ids, offsets,
        buildFilledVector(rewriter, loc, numRows, rewriter.getI32Type(), -1));
    Value tokenOfRow = placement.first, rowMap = placement.second;
    Value rows = buildGather(rewriter, loc, input, tokenOfRow, numRows,
                             rowsType.getDimSize(1), elementType);
    // The row buffer's static type may be more precise than the computed one.
    Value rowsResult = castToType(rewriter, loc, rows, rowsType);
    rewriter.replaceOp(op, {rowsResult, offsets, rowMap});
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

    // One parallel iteration per token: its output row is the sum over k of
    // weight * row, accumulated in f32 in k order, whole rows at a time
    // (contiguous, vectorizable loops), plus the token's row of `init`;
    // rows the row map does not name are skipped. An f32 result accumulates
    // in its own row (not in `init`'s, which a caller may still read).
    Value init = adaptor.getInit();
    Type f32 = rewriter.getF32Type();
    // H where any of the result, the rows and `init` has it static (the
    // verifier makes the static ones agree): the rows' slices then have it.
    int64_t hiddenSize = resultType.getDimSize(1);
    if (ShapedType::isDynamic(hiddenSize))
      hiddenSize = rowsType.getDimSize(rowsType.getRank() - 1);
    if (ShapedType::isDynamic(hiddenSize) && init)
      hiddenSize = llvm::cast<RankedTensorType>(init.getType()).getDimSize(1);
    auto accType = RankedTensorType::get({1, hiddenSize}, f32);
    auto sourceType = RankedTensorType::get({1, hiddenSize},
                                            rowsType.getElementType());
    OpFoldResult one = rewriter.getIndexAttr(1);
    MLIRContext *ctx = rewriter.getContext();
    AffineMap identity = AffineMap::getMultiDimIdentityMap(2, ctx);
    SmallVector<utils::IteratorType> parallel(2, utils::IteratorType::parallel);
    Value result = buildRowByRow(
        rewriter, loc, tensor::getMixedSize(rewriter, loc, weights, 0), hidden,
        hiddenSize, elementType,
        [&](OpBuilder &b, Location l, Value t, Value destination) {
          OpFoldResult width = tensor::getMixedSize(b, l, destination, 1);
          // An f32 output accumulates in place; others in an f32 row.
          Value accInit =
              elementType == f32
                  ? destination
                  : tensor::EmptyOp::create(b, l,
                                            ArrayRef<OpFoldResult>{one, width},
                                            f32)
                        .getResult();
          accInit = linalg::FillOp::create(b, l,
                                           ValueRange{f32Constant(b, l, 0)},
                                           ValueRange{accInit})
                        .getResult(0);
          Value sum = buildLoop(
              b, l, zero, kCount, {accInit},
              [&](OpBuilder &kb, Location kl, Value k, ValueRange carried) {
                Value row = readIndex(kb, kl, rowMap, {t, k});
                Value taken = isInRange(kb, kl, row, numRows);
                return buildIf(
                    kb, kl, taken,
                    [&](OpBuilder &ib, Location il) {
                      Value source;
                      if (capacityLayout)
                        source = tensor::ExtractSliceOp::create(
                            ib, il, sourceType, rows,
                            ArrayRef<OpFoldResult>{
                                arith::DivUIOp::create(ib, il, row, slots)
                                    .getResult(),
                                arith::RemUIOp::create(ib, il, row, slots)
                                    .getResult(),
                                ib.getIndexAttr(0)},
                            ArrayRef<OpFoldResult>{one, one, width},
                            SmallVector<OpFoldResult>(3, one));
                      else
                        source = rowSlice(ib, il, rows, row, sourceType, width);
                      Value w = tensor::ExtractOp::create(ib, il, weights,
                                                          ValueRange{t, k});
                      auto update = linalg::GenericOp::create(
                          ib, il, TypeRange{accType}, ValueRange{source},
                          ValueRange{carried[0]},
                          ArrayRef<AffineMap>{identity, identity}, parallel,
                          [&](OpBuilder &gb, Location gl, ValueRange args) {
                            Value v = castFloat(gb, gl, args[0], f32);
                            Value product =
                                arith::MulFOp::create(gb, gl, w, v);
                            linalg::YieldOp::create(
                                gb, gl,
                                arith::AddFOp::create(gb, gl, args[1], product)
                                    .getResult());
                          });
                      return SmallVector<Value>{update.getResult(0)};
                    },
                    {carried[0]});
              })[0];
          if (elementType == f32 && !init)
            return sum;
          // The token's row of `init` added, and the row rounded once.
          SmallVector<Value> ins = {sum};
          if (init)
            ins.push_back(
                rowSlice(b, l, init, t,
                         RankedTensorType::get(
                             {1, hiddenSize},
                             llvm::cast<RankedTensorType>(init.getType())
                                 .getElementType()),
                         width));
          return linalg::GenericOp::create(
                     b, l, TypeRange{destination.getType()}, ins,
                     ValueRange{destination},
                     SmallVector<AffineMap>(ins.size() + 1, identity), parallel,
                     [&](OpBuilder &gb, Location gl, ValueRange args) {
                       Value v = args[0];
                       if (args.size() == 3)
                         v = arith::AddFOp::create(
                             gb, gl, castFloat(gb, gl, args[1], f32), v);
                       linalg::YieldOp::create(
                           gb, gl, castFloat(gb, gl, v, elementType));
                     })
              .getResult(0);
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
