//===- FormGroupedMatmul.cpp - expert_matmul to block-aligned form --------===//
//
// Rewrites a grouped-layout moe.expert_matmul whose rows are laid out in
// whole row blocks into the destination-passing moe.grouped_matmul:
//
//   plan   = moe.routing_plan of the dispatch's ids (one per dispatch,
//            shared by every matmul of the layer and the combine)
//   acc    = moe.grouped_matmul ins(rows, weight, plan blocks)
//            block_sizes(plan sizes) outs(zeros f32)
//   result = acc (+ bias of the row's expert), converted to the result type
//
// Where the rows are the dispatch's own gathered rows, the grouped matmul
// reads the dispatch's input instead, through the plan's row sources: the
// gather fuses into the matmul. The offsets come from a moe.dispatch padded
// to whole blocks or from a moe.routing_plan with this block size; offsets
// from anywhere else carry no alignment guarantee and are left to the
// reference lowering.
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

/// The routing plan of `dispatch`'s layout in blocks of `blockRows` rows:
/// an existing one on the same ids, or a new one after the dispatch. Uses
/// of the dispatch's offsets and row map move to the plan's (the same
/// values), so the dispatch itself stays only while its rows are read.
RoutingPlanOp getOrCreatePlan(PatternRewriter &rewriter, DispatchOp dispatch,
                              int64_t blockRows) {
  Value ids = dispatch.getIds();
  int64_t align = dispatch.getAlign();
  int64_t numExperts = dispatch.getNumExperts();
  RoutingPlanOp plan;
  for (Operation *user : ids.getUsers()) {
    auto candidate = llvm::dyn_cast<RoutingPlanOp>(user);
    if (candidate && static_cast<int64_t>(candidate.getBlockRows()) == blockRows &&
        static_cast<int64_t>(candidate.getAlign()) == align &&
        candidate.getNumExperts() == numExperts &&
        candidate->getBlock() == dispatch->getBlock() &&
        candidate->isBeforeInBlock(dispatch)) {
      plan = candidate;
      break;
    }
  }
  if (!plan) {
    OpBuilder::InsertionGuard guard(rewriter);
    rewriter.setInsertionPoint(dispatch);
    auto idsType = llvm::cast<RankedTensorType>(ids.getType());
    int64_t tokens = idsType.getDimSize(0);
    int64_t rows = RoutingPlanOp::getMaxRows(
        ShapedType::isDynamic(tokens) ? tokens
                                      : tokens * idsType.getDimSize(1),
        numExperts, align);
    Type i32 = rewriter.getI32Type();
    auto vector = [&](int64_t size) {
      return RankedTensorType::get({size}, i32);
    };
    int64_t blocks =
        ShapedType::isDynamic(rows) ? ShapedType::kDynamic : rows / blockRows;
    plan = RoutingPlanOp::create(
        rewriter, dispatch.getLoc(),
        TypeRange{dispatch.getExpertRows().getType(), vector(blocks),
                  vector(blocks), vector(rows), dispatch.getRowMap().getType()},
        ids, rewriter.getI64IntegerAttr(blockRows),
        rewriter.getI64IntegerAttr(align));
  }
  rewriter.replaceAllUsesWith(dispatch.getExpertRows(), plan.getOffsets());
  rewriter.replaceAllUsesWith(dispatch.getRowMap(), plan.getRowMap());
  return plan;
}

/// The dispatch on `plan`'s ids and layout whose rows `input` is, if any.
DispatchOp getDispatchOfRows(Value input, RoutingPlanOp plan) {
  auto dispatch = input.getDefiningOp<DispatchOp>();
  if (!dispatch || input != dispatch.getRows() || dispatch.isCapacityLayout() ||
      dispatch.getIds() != plan.getIds() ||
      dispatch.getAlign() != plan.getAlign())
    return {};
  return dispatch;
}

/// The first `size` elements of the rank-1 `vector`.
Value buildPrefix(OpBuilder &b, Location loc, Value vector, Value size) {
  auto type = llvm::cast<RankedTensorType>(vector.getType());
  return tensor::ExtractSliceOp::create(
      b, loc, RankedTensorType::get({ShapedType::kDynamic}, type.getElementType()),
      vector, ArrayRef<OpFoldResult>{b.getIndexAttr(0)},
      ArrayRef<OpFoldResult>{size}, ArrayRef<OpFoldResult>{b.getIndexAttr(1)});
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
    RoutingPlanOp plan = offsets.getDefiningOp<RoutingPlanOp>();
    if (plan && static_cast<int64_t>(plan.getBlockRows()) != blockRows)
      return rewriter.notifyMatchFailure(op, "plan of another block size");
    if (!plan) {
      auto dispatch = offsets.getDefiningOp<DispatchOp>();
      if (!dispatch || dispatch.getAlign() % blockRows != 0)
        return rewriter.notifyMatchFailure(
            op, "offsets not from a dispatch padded to whole row blocks");
      plan = getOrCreatePlan(rewriter, dispatch, blockRows);
    }
    Location loc = op.getLoc();
    Value input = op.getInput();
    Value weight = op.getWeight();
    auto weightType = llvm::cast<RankedTensorType>(weight.getType());
    int64_t numExperts = weightType.getDimSize(0);
    int64_t outFeatures = weightType.getDimSize(1);
    auto resultType = llvm::cast<RankedTensorType>(op.getResult().getType());

    // Rows in use: offsets[E], a whole number of blocks.
    Value usedRows = arith::IndexCastOp::create(
        rewriter, loc, rewriter.getIndexType(),
        tensor::ExtractOp::create(rewriter, loc, plan.getOffsets(),
                                  ValueRange{indexConstant(rewriter, loc,
                                                           numExperts)}));
    // Rows gathered by the dispatch itself (its `rows`, offsets[E] of
    // them): the grouped matmul reads the tokens through the plan's row
    // sources instead, and the dispatch's copy of every row is no longer
    // needed. Rows from elsewhere past offsets[E] (or past their end) are
    // zero in the result, as in the reference: their blocks are not
    // computed.
    Value numRows = usedRows, computedRows = usedRows, sources;
    if (DispatchOp dispatch = getDispatchOfRows(input, plan)) {
      sources = buildPrefix(rewriter, loc, plan.getRowSources(), usedRows);
      input = dispatch.getInput();
    } else {
      numRows = tensor::DimOp::create(rewriter, loc, input, 0);
      computedRows = arith::MinUIOp::create(rewriter, loc, numRows, usedRows);
    }
    Value numBlocks = arith::DivUIOp::create(
        rewriter, loc, computedRows, indexConstant(rewriter, loc, blockRows));
    Value blocks =
        buildPrefix(rewriter, loc, plan.getBlockExperts(), numBlocks);
    Value sizes = buildPrefix(rewriter, loc, plan.getBlockSizes(), numBlocks);
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
