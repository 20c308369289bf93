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
/// an existing one on the same ids, or a new one after the dispatch (none
/// when its row bound would overflow). Uses
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
    if (candidate &&
        static_cast<int64_t>(candidate.getBlockRows()) == blockRows &&
        static_cast<int64_t>(candidate.getAlign()) == align &&
        candidate.getNumExperts() == numExperts &&
        candidate->getBlock() == dispatch->getBlock() &&
        candidate->isBeforeInBlock(dispatch)) {
      plan = candidate;
      break;
    }
  }
  if (!plan) {
    auto idsType = llvm::cast<RankedTensorType>(ids.getType());
    std::optional<int64_t> maxRows = RoutingPlanOp::getMaxRows(
        idsType.getDimSize(0), idsType.getDimSize(1), numExperts, align);
    // A static token count so large that the bound overflows: left to the
    // reference lowering.
    if (!maxRows)
      return {};
    int64_t rows = *maxRows;
    OpBuilder::InsertionGuard guard(rewriter);
    rewriter.setInsertionPoint(dispatch);
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
      b, loc,
      RankedTensorType::get({ShapedType::kDynamic}, type.getElementType()),
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

/// The plan of `op`'s row layout in blocks of `blockRows` rows (created
/// from its dispatch if need be), or null when it has none.
RoutingPlanOp findPlan(PatternRewriter &rewriter, ExpertMatmulOp op,
                       int64_t blockRows) {
  Value offsets = op.getOffsets();
  if (!offsets)
    return {};
  if (auto plan = offsets.getDefiningOp<RoutingPlanOp>())
    return static_cast<int64_t>(plan.getBlockRows()) == blockRows
               ? plan
               : RoutingPlanOp();
  auto dispatch = offsets.getDefiningOp<DispatchOp>();
  if (!dispatch || dispatch.getAlign() % blockRows != 0)
    return {};
  return getOrCreatePlan(rewriter, dispatch, blockRows);
}

/// What a grouped matmul over `op`'s rows reads, from the plan.
struct GroupedOperands {
  Value input, blocks, sizes, sources;
  /// Rows of the input (offsets[E] when gathered) and rows computed (whole
  /// blocks, at most offsets[E]).
  Value numRows, computedRows;
};

GroupedOperands buildGroupedOperands(PatternRewriter &rewriter,
                                     ExpertMatmulOp op, RoutingPlanOp plan,
                                     int64_t blockRows) {
  Location loc = op.getLoc();
  GroupedOperands operands;
  operands.input = op.getInput();
  // Rows in use: offsets[E], a whole number of blocks.
  Value usedRows = arith::IndexCastOp::create(
      rewriter, loc, rewriter.getIndexType(),
      tensor::ExtractOp::create(
          rewriter, loc, plan.getOffsets(),
          ValueRange{indexConstant(rewriter, loc, plan.getNumExperts())}));
  // Rows gathered by the dispatch itself (its `rows`, offsets[E] of them):
  // the grouped matmul reads the tokens through the plan's row sources
  // instead, and the dispatch's copy of every row is no longer needed. Rows
  // from elsewhere past offsets[E] (or past their end) are zero in the
  // result, as in the reference: their blocks are not computed.
  operands.numRows = operands.computedRows = usedRows;
  if (DispatchOp dispatch = getDispatchOfRows(operands.input, plan)) {
    operands.sources =
        buildPrefix(rewriter, loc, plan.getRowSources(), usedRows);
    operands.input = dispatch.getInput();
  } else {
    operands.numRows = tensor::DimOp::create(rewriter, loc, operands.input, 0);
    operands.computedRows =
        arith::MinUIOp::create(rewriter, loc, operands.numRows, usedRows);
  }
  Value numBlocks =
      arith::DivUIOp::create(rewriter, loc, operands.computedRows,
                             indexConstant(rewriter, loc, blockRows));
  operands.blocks =
      buildPrefix(rewriter, loc, plan.getBlockExperts(), numBlocks);
  operands.sizes = buildPrefix(rewriter, loc, plan.getBlockSizes(), numBlocks);
  return operands;
}

/// A zero-filled f32 `[rows, columns]` accumulator. A fresh buffer per
/// matmul: a tensor.empty would be CSE'd with the one of a sibling
/// projection (gate and up) and bufferize to a copy.
Value buildAccumulator(OpBuilder &b, Location loc, Value rows,
                       int64_t columns) {
  Value acc = bufferization::AllocTensorOp::create(
      b, loc,
      RankedTensorType::get({ShapedType::kDynamic, columns}, b.getF32Type()),
      ValueRange{rows});
  return linalg::FillOp::create(b, loc,
                                ValueRange{arith::ConstantOp::create(
                                    b, loc, b.getF32FloatAttr(0))},
                                ValueRange{acc})
      .getResult(0);
}

/// `[rows]` f32: the combine weight of the assignment each row holds, from
/// `weights` and the row map (0 for rows that hold none). One pass over
/// the T*K assignments.
Value buildRowScales(OpBuilder &b, Location loc, Value weights, Value rowMap,
                     Value rows) {
  Value scales = tensor::EmptyOp::create(b, loc, ArrayRef<OpFoldResult>{rows},
                                         b.getF32Type());
  scales =
      linalg::FillOp::create(
          b, loc,
          ValueRange{arith::ConstantOp::create(b, loc, b.getF32FloatAttr(0))},
          ValueRange{scales})
          .getResult(0);
  Value c0 = indexConstant(b, loc, 0), c1 = indexConstant(b, loc, 1);
  Value tokens = tensor::DimOp::create(b, loc, rowMap, 0);
  Value choices = tensor::DimOp::create(b, loc, rowMap, 1);
  return scf::ForOp::create(
             b, loc, c0, tokens, c1, ValueRange{scales},
             [&](OpBuilder &tb, Location tl, Value t, ValueRange tokenCarried) {
               auto inner = scf::ForOp::create(
                   tb, tl, c0, choices, c1, tokenCarried,
                   [&](OpBuilder &kb, Location kl, Value k,
                       ValueRange carried) {
                     Value row = arith::IndexCastOp::create(
                         kb, kl, kb.getIndexType(),
                         tensor::ExtractOp::create(kb, kl, rowMap,
                                                   ValueRange{t, k}));
                     Value placed = arith::AndIOp::create(
                         kb, kl,
                         arith::CmpIOp::create(
                             kb, kl, arith::CmpIPredicate::sge, row, c0),
                         arith::CmpIOp::create(
                             kb, kl, arith::CmpIPredicate::slt, row, rows));
                     auto ifOp = scf::IfOp::create(
                         kb, kl, placed,
                         [&](OpBuilder &ib, Location il) {
                           Value w = tensor::ExtractOp::create(
                               ib, il, weights, ValueRange{t, k});
                           scf::YieldOp::create(
                               ib, il,
                               ValueRange{tensor::InsertOp::create(
                                   ib, il, w, carried[0], ValueRange{row})});
                         },
                         [&](OpBuilder &eb, Location el) {
                           scf::YieldOp::create(eb, el, carried[0]);
                         });
                     scf::YieldOp::create(kb, kl, ifOp.getResults());
                   });
               scf::YieldOp::create(tb, tl, inner.getResults());
             })
      .getResult(0);
}

/// The moe.combine that is the only reader of `op`'s rows and sums them
/// through the row map of `op`'s own layout (the plan's, or its dispatch's),
/// if `op` has no bias: a combine its write-back can do.
CombineOp getFusableCombine(ExpertMatmulOp op) {
  if (!op->hasOneUse() || op.getBias() || !op.getOffsets())
    return {};
  auto combine = llvm::dyn_cast<CombineOp>(*op->getUsers().begin());
  if (!combine || combine.getRows() != op.getResult())
    return {};
  Operation *mapOwner = combine.getRowMap().getDefiningOp();
  if (!mapOwner || mapOwner != op.getOffsets().getDefiningOp())
    return {};
  return combine;
}

struct FormGroupedMatmul : OpRewritePattern<ExpertMatmulOp> {
  FormGroupedMatmul(MLIRContext *context, int64_t blockRows, bool fuseCombine)
      : OpRewritePattern(context), blockRows(blockRows),
        fuseCombine(fuseCombine) {}

  LogicalResult matchAndRewrite(ExpertMatmulOp op,
                                PatternRewriter &rewriter) const override {
    if (fuseCombine && getFusableCombine(op))
      return rewriter.notifyMatchFailure(
          op, "formed with its combine (FormScatteringGroupedMatmul)");
    RoutingPlanOp plan = findPlan(rewriter, op, blockRows);
    if (!plan)
      return rewriter.notifyMatchFailure(
          op, "offsets not from a dispatch or plan in whole row blocks");
    Location loc = op.getLoc();
    auto weightType = llvm::cast<RankedTensorType>(op.getWeight().getType());
    auto resultType = llvm::cast<RankedTensorType>(op.getResult().getType());
    GroupedOperands operands =
        buildGroupedOperands(rewriter, op, plan, blockRows);
    Value acc = buildAccumulator(rewriter, loc, operands.numRows,
                                 weightType.getDimSize(1));
    acc = GroupedMatmulOp::create(
              rewriter, loc, TypeRange{acc.getType()}, operands.input,
              op.getWeight(), operands.blocks, operands.sizes, operands.sources,
              Value(), Value(), acc, rewriter.getI64IntegerAttr(blockRows))
              .getResult()[0];
    Value result = acc;
    if (op.getBias() || !resultType.getElementType().isF32())
      result = buildEpilogue(rewriter, loc, acc, op.getBias(), operands.blocks,
                             blockRows, resultType.getElementType());
    if (result.getType() != resultType)
      result = tensor::CastOp::create(rewriter, loc, resultType, result);
    rewriter.replaceOp(op, result);
    return success();
  }

  int64_t blockRows;
  bool fuseCombine;
};

/// The combine of an expert matmul's rows (the down projection) fused into
/// that matmul's write-back: each row, times its combine weight, is added to
/// its token's row of the `[T, N]` result; the `[R, N]` rows are never
/// written. Matches before FormGroupedMatmul forms the matmul alone.
struct FormScatteringGroupedMatmul : OpRewritePattern<CombineOp> {
  FormScatteringGroupedMatmul(MLIRContext *context, int64_t blockRows)
      : OpRewritePattern(context, /*benefit=*/2), blockRows(blockRows) {}

  LogicalResult matchAndRewrite(CombineOp combine,
                                PatternRewriter &rewriter) const override {
    auto op = combine.getRows().getDefiningOp<ExpertMatmulOp>();
    if (!op || getFusableCombine(op) != combine)
      return rewriter.notifyMatchFailure(
          combine, "rows not from an expert matmul of its own, without "
                   "bias, in the layout of the row map");
    RoutingPlanOp plan = findPlan(rewriter, op, blockRows);
    if (!plan)
      return rewriter.notifyMatchFailure(
          combine, "offsets not from a dispatch or plan in whole row blocks");
    Location loc = combine.getLoc();
    auto weightType = llvm::cast<RankedTensorType>(op.getWeight().getType());
    auto resultType =
        llvm::cast<RankedTensorType>(combine.getResult().getType());
    GroupedOperands operands =
        buildGroupedOperands(rewriter, op, plan, blockRows);
    Value targets =
        buildPrefix(rewriter, loc, plan.getRowSources(), operands.computedRows);
    Value scales = buildRowScales(rewriter, loc, combine.getWeights(),
                                  plan.getRowMap(), operands.computedRows);
    Value tokens =
        tensor::DimOp::create(rewriter, loc, combine.getWeights(), 0);
    Value acc =
        buildAccumulator(rewriter, loc, tokens, weightType.getDimSize(1));
    acc = GroupedMatmulOp::create(
              rewriter, loc, TypeRange{acc.getType()}, operands.input,
              op.getWeight(), operands.blocks, operands.sizes, operands.sources,
              targets, scales, acc, rewriter.getI64IntegerAttr(blockRows))
              .getResult()[0];
    Value result = acc;
    if (!resultType.getElementType().isF32())
      result = buildEpilogue(rewriter, loc, acc, Value(), operands.blocks,
                             blockRows, resultType.getElementType());
    if (result.getType() != resultType)
      result = tensor::CastOp::create(rewriter, loc, resultType, result);
    rewriter.replaceOp(combine, result);
    rewriter.eraseOp(op);
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
    patterns.add<FormGroupedMatmul>(&getContext(), blockRows, fuseCombine);
    if (fuseCombine)
      patterns.add<FormScatteringGroupedMatmul>(&getContext(), blockRows);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
