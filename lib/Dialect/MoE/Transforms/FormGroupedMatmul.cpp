//===- FormGroupedMatmul.cpp - expert_matmul to block-aligned form --------===//
//
// Rewrites a grouped-layout moe.expert_matmul whose rows come from a
// moe.dispatch padded to whole row blocks into the destination-passing
// moe.grouped_matmul:
//
//   blocks = expert of each row block, from the dispatch offsets
//   acc    = moe.grouped_matmul ins(rows, weight, blocks) outs(zeros f32)
//
// where the rows are the dispatch's own gathered rows, the grouped matmul
// reads the dispatch's input instead, through the token of each row
// (row_sources, the inverse of the row map): the gather fuses into the
// matmul.
//   result = acc (+ bias of the row's expert), converted to the result type
//
// Offsets from anywhere else carry no alignment guarantee: such ops are left
// to the reference lowering.
//
//===----------------------------------------------------------------------===//

#include "moe/Dialect/MoE/Transforms/Passes.h"
#include "moe/Dialect/MoE/Utils/TensorBuilders.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEFORMGROUPEDMATMULPASS
#include "moe/Dialect/MoE/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

Value indexConstant(OpBuilder &b, Location loc, int64_t value) {
  return arith::ConstantIndexOp::create(b, loc, value);
}

/// `[B] i32`: the expert owning rows `[b*BM, (b+1)*BM)`, i.e. the number of
/// experts whose rows end at or before the block's first row (offsets are
/// non-decreasing); -1 when that is every expert.
Value buildBlockExperts(OpBuilder &b, Location loc, Value offsets,
                        Value numBlocks, int64_t blockRows,
                        int64_t numExperts) {
  auto type = RankedTensorType::get({ShapedType::kDynamic}, b.getI32Type());
  return tensor::GenerateOp::create(
      b, loc, type, ValueRange{numBlocks},
      [&](OpBuilder &gb, Location gl, ValueRange indices) {
        Value firstRow = arith::MulIOp::create(
            gb, gl, indices[0], indexConstant(gb, gl, blockRows));
        Value firstRow64 =
            arith::IndexCastOp::create(gb, gl, gb.getI64Type(), firstRow);
        Value zero = arith::ConstantIntOp::create(gb, gl, 0, 32);
        Value one = arith::ConstantIntOp::create(gb, gl, 1, 32);
        auto loop = scf::ForOp::create(
            gb, gl, indexConstant(gb, gl, 1),
            indexConstant(gb, gl, numExperts + 1), indexConstant(gb, gl, 1),
            ValueRange{zero},
            [&](OpBuilder &lb, Location ll, Value e, ValueRange count) {
              Value end = tensor::ExtractOp::create(lb, ll, offsets,
                                                    ValueRange{e});
              Value before = arith::CmpIOp::create(
                  lb, ll, arith::CmpIPredicate::sle, end, firstRow64);
              Value next = arith::SelectOp::create(
                  lb, ll, before, arith::AddIOp::create(lb, ll, count[0], one),
                  count[0]);
              scf::YieldOp::create(lb, ll, next);
            });
        Value expert = loop.getResult(0);
        Value owned = arith::CmpIOp::create(
            gb, gl, arith::CmpIPredicate::slt, expert,
            arith::ConstantIntOp::create(gb, gl, numExperts, 32));
        Value none = arith::ConstantIntOp::create(gb, gl, -1, 32);
        tensor::YieldOp::create(
            gb, gl, arith::SelectOp::create(gb, gl, owned, expert, none));
      });
}

/// `[B] i32`: how many rows of each block hold an assignment (the others
/// are padding), counted over the dispatch's row map. An expert's rows are
/// the first of its blocks, so these are the first rows of each block.
/// With `numRows`, also `[R] i32`: the token each row holds (-1 for
/// padding), the inverse of the row map, from the same pass.
std::pair<Value, Value> buildBlockSizes(OpBuilder &b, Location loc,
                                        Value rowMap, Value numBlocks,
                                        int64_t blockRows, Value numRows) {
  Type i32 = b.getI32Type();
  auto filled = [&](Value size, int64_t value) {
    Value empty =
        tensor::EmptyOp::create(b, loc, ArrayRef<OpFoldResult>{size}, i32);
    Value constant = arith::ConstantIntOp::create(b, loc, value, 32);
    return linalg::FillOp::create(b, loc, ValueRange{constant},
                                  ValueRange{empty})
        .getResult(0);
  };
  SmallVector<Value> init{filled(numBlocks, 0)};
  if (numRows)
    init.push_back(filled(numRows, -1));
  Value c0 = indexConstant(b, loc, 0), c1 = indexConstant(b, loc, 1);
  Value tokens = tensor::DimOp::create(b, loc, rowMap, 0);
  Value choices = tensor::DimOp::create(b, loc, rowMap, 1);
  auto outer = scf::ForOp::create(
      b, loc, c0, tokens, c1, init,
      [&](OpBuilder &ob, Location ol, Value t, ValueRange outerCarried) {
        auto inner = scf::ForOp::create(
            ob, ol, c0, choices, c1, outerCarried,
            [&](OpBuilder &ib, Location il, Value k, ValueRange current) {
              Value row = arith::IndexCastOp::create(
                  ib, il, ib.getIndexType(),
                  tensor::ExtractOp::create(ib, il, rowMap,
                                            ValueRange{t, k}));
              Value block = arith::DivSIOp::create(
                  ib, il, row, indexConstant(ib, il, blockRows));
              // Assignments not taken (-1) count nowhere.
              Value taken = arith::AndIOp::create(
                  ib, il,
                  arith::CmpIOp::create(ib, il, arith::CmpIPredicate::sge,
                                        row, c0),
                  arith::CmpIOp::create(ib, il, arith::CmpIPredicate::slt,
                                        block, numBlocks));
              Value safe = arith::SelectOp::create(ib, il, taken, block, c0);
              Value count = tensor::ExtractOp::create(ib, il, current[0],
                                                      ValueRange{safe});
              Value next = arith::SelectOp::create(
                  ib, il, taken,
                  arith::AddIOp::create(
                      ib, il, count,
                      arith::ConstantIntOp::create(ib, il, 1, 32)),
                  count);
              SmallVector<Value> updated{
                  tensor::InsertOp::create(ib, il, next, current[0],
                                           ValueRange{safe})};
              if (numRows) {
                Value inRows = arith::AndIOp::create(
                    ib, il, taken,
                    arith::CmpIOp::create(ib, il, arith::CmpIPredicate::slt,
                                          row, numRows));
                Value safeRow =
                    arith::SelectOp::create(ib, il, inRows, row, c0);
                Value old = tensor::ExtractOp::create(ib, il, current[1],
                                                      ValueRange{safeRow});
                Value token = arith::IndexCastOp::create(ib, il, i32, t);
                updated.push_back(tensor::InsertOp::create(
                    ib, il,
                    arith::SelectOp::create(ib, il, inRows, token, old),
                    current[1], ValueRange{safeRow}));
              }
              scf::YieldOp::create(ib, il, updated);
            });
        scf::YieldOp::create(ob, ol, inner.getResults());
      });
  return {outer.getResult(0), numRows ? outer.getResult(1) : Value()};
}

/// `acc[r, n] (+ bias[blocks[r / BM], n])` converted to `elementType`.
Value buildEpilogue(OpBuilder &b, Location loc, Value acc, Value bias,
                    Value blocks, int64_t blockRows, Type elementType) {
  MLIRContext *ctx = b.getContext();
  AffineMap identity = AffineMap::getMultiDimIdentityMap(2, ctx);
  Value init = buildEmptyLike(b, loc, acc, elementType);
  return linalg::GenericOp::create(
             b, loc, TypeRange{init.getType()}, ValueRange{acc},
             ValueRange{init}, ArrayRef<AffineMap>{identity, identity},
             SmallVector<utils::IteratorType>(2, utils::IteratorType::parallel),
             [&](OpBuilder &nb, Location nl, ValueRange args) {
               Value v = args[0];
               if (bias) {
                 Value row = linalg::IndexOp::create(nb, nl, 0);
                 Value column = linalg::IndexOp::create(nb, nl, 1);
                 Value block = arith::DivUIOp::create(
                     nb, nl, row, indexConstant(nb, nl, blockRows));
                 Value expert = arith::IndexCastOp::create(
                     nb, nl, nb.getIndexType(),
                     tensor::ExtractOp::create(nb, nl, blocks,
                                               ValueRange{block}));
                 // Rows of no expert (id -1) get no bias; the clamped index
                 // keeps the read inside the tensor.
                 Value zero = indexConstant(nb, nl, 0);
                 Value owned = arith::CmpIOp::create(
                     nb, nl, arith::CmpIPredicate::sge, expert, zero);
                 Value safe = arith::SelectOp::create(nb, nl, owned, expert,
                                                      zero);
                 Value term = castFloat(
                     nb, nl,
                     tensor::ExtractOp::create(nb, nl, bias,
                                               ValueRange{safe, column}),
                     nb.getF32Type());
                 term = arith::SelectOp::create(
                     nb, nl, owned, term,
                     arith::ConstantOp::create(nb, nl, nb.getF32FloatAttr(0)));
                 v = arith::AddFOp::create(nb, nl, v, term);
               }
               linalg::YieldOp::create(nb, nl, castFloat(nb, nl, v, elementType));
             })
      .getResult(0);
}

struct FormGroupedMatmul : OpRewritePattern<ExpertMatmulOp> {
  FormGroupedMatmul(MLIRContext *context, int64_t blockRows)
      : OpRewritePattern(context), blockRows(blockRows) {}

  LogicalResult matchAndRewrite(ExpertMatmulOp op,
                                PatternRewriter &rewriter) const override {
    Value offsets = op.getOffsets();
    if (!offsets)
      return rewriter.notifyMatchFailure(op, "capacity layout");
    auto dispatch = offsets.getDefiningOp<DispatchOp>();
    if (!dispatch || dispatch.getAlign() % blockRows != 0)
      return rewriter.notifyMatchFailure(
          op, "offsets not from a dispatch padded to whole row blocks");
    Location loc = op.getLoc();
    Value input = op.getInput();
    Value weight = op.getWeight();
    auto weightType = llvm::cast<RankedTensorType>(weight.getType());
    int64_t numExperts = weightType.getDimSize(0);
    int64_t outFeatures = weightType.getDimSize(1);
    auto resultType = llvm::cast<RankedTensorType>(op.getResult().getType());

    // The dispatch's row count is offsets[E], a whole number of blocks.
    Value numRows = tensor::DimOp::create(rewriter, loc, input, 0);
    Value numBlocks = arith::DivUIOp::create(
        rewriter, loc, numRows, indexConstant(rewriter, loc, blockRows));
    Value blocks = buildBlockExperts(rewriter, loc, offsets, numBlocks,
                                     blockRows, numExperts);
    // Rows gathered by the dispatch itself (its `rows`): the grouped
    // matmul reads the tokens through the inverse of the row map instead,
    // and the dispatch's copy of every row is no longer needed.
    bool gathers = input == dispatch.getRows();
    auto [sizes, sources] =
        buildBlockSizes(rewriter, loc, dispatch.getRowMap(), numBlocks,
                        blockRows, gathers ? numRows : Value());
    if (gathers)
      input = dispatch.getInput();
    // A fresh buffer per matmul: a tensor.empty would be CSE'd with the one
    // of a sibling projection (gate and up) and bufferize to a copy.
    Value acc = bufferization::AllocTensorOp::create(
        rewriter, loc,
        RankedTensorType::get({ShapedType::kDynamic, outFeatures},
                              rewriter.getF32Type()),
        ValueRange{numRows});
    acc = linalg::FillOp::create(
              rewriter, loc,
              ValueRange{arith::ConstantOp::create(
                  rewriter, loc, rewriter.getF32FloatAttr(0))},
              ValueRange{acc})
              .getResult(0);
    acc = GroupedMatmulOp::create(rewriter, loc, TypeRange{acc.getType()},
                                  input, weight, blocks, sizes, sources, acc,
                                  rewriter.getI64IntegerAttr(blockRows))
              .getResult()[0];
    Value result = acc;
    if (op.getBias() || !resultType.getElementType().isF32())
      result = buildEpilogue(rewriter, loc, acc, op.getBias(), blocks,
                             blockRows, resultType.getElementType());
    if (result.getType() != resultType)
      result = tensor::CastOp::create(rewriter, loc, resultType, result);
    rewriter.replaceOp(op, result);
    return success();
  }

  int64_t blockRows;
};

struct MoEFormGroupedMatmulPass
    : public moe::impl::MoEFormGroupedMatmulPassBase<MoEFormGroupedMatmulPass> {
  using MoEFormGroupedMatmulPassBase::MoEFormGroupedMatmulPassBase;

  LogicalResult initialize(MLIRContext *context) override {
    if (blockRows < 1)
      return emitError(UnknownLoc::get(context))
             << "moe-form-grouped-matmul: block-rows must be at least 1, got "
             << static_cast<int64_t>(blockRows);
    return success();
  }

  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FormGroupedMatmul>(&getContext(), blockRows);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
