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

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
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

/// How the grouped matmuls cover the plan's rows.
struct RowCoverage {
  int64_t blockRows;
  /// Cover the plan's row bound (known from T; blocks past offsets[E] hold
  /// no expert and are skipped) instead of its filled rows offsets[E]: no
  /// shape then depends on a value the plan computes.
  bool boundRows;
};

/// What a grouped matmul over `op`'s rows reads, from the plan.
struct GroupedOperands {
  Value input, blocks, sizes, sources;
  /// Rows of the input (offsets[E] when gathered) and rows computed (whole
  /// blocks, at most offsets[E]).
  Value numRows, computedRows;
};

GroupedOperands buildGroupedOperands(PatternRewriter &rewriter,
                                     ExpertMatmulOp op, RoutingPlanOp plan,
                                     RowCoverage coverage) {
  Location loc = op.getLoc();
  int64_t blockRows = coverage.blockRows;
  GroupedOperands operands;
  operands.input = op.getInput();
  // Rows in use: offsets[E], a whole number of blocks; or the plan's bound
  // on them, a whole number of blocks too.
  Value usedRows =
      coverage.boundRows
          ? tensor::DimOp::create(rewriter, loc, plan.getRowSources(), 0)
                .getResult()
          : arith::IndexCastOp::create(
                rewriter, loc, rewriter.getIndexType(),
                tensor::ExtractOp::create(
                    rewriter, loc, plan.getOffsets(),
                    ValueRange{
                        indexConstant(rewriter, loc, plan.getNumExperts())}))
                .getResult();
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
    operands.computedRows = affine::AffineMinOp::create(
        rewriter, loc,
        AffineMap::getMultiDimIdentityMap(2, rewriter.getContext()),
        ValueRange{operands.numRows, usedRows});
  }
  // Affine arithmetic, which ValueBoundsConstraintSet follows (e.g. to
  // prove that the down projection reads no more blocks than the gate/up
  // projection wrote: moe-drop-unread-inits).
  Value numBlocks = affine::AffineApplyOp::create(
      rewriter, loc,
      AffineMap::get(1, 0, rewriter.getAffineDimExpr(0).floorDiv(blockRows)),
      ValueRange{operands.computedRows});
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
/// `weights` and the row map (0 for rows that hold none). One parallel
/// iteration per row, which finds its slot among its token's K entries of
/// the row map (`sources`: each row's token, or one outside `[0, T)`):
/// a gather, so that no iteration writes another's row and a GPU runs the
/// rows on all its threads (a scatter over the T*K assignments would run
/// on one).
Value buildRowScales(OpBuilder &b, Location loc, Value weights, Value rowMap,
                     Value sources, Value rows) {
  // A linalg.generic parallel over the rows, whose body gathers from the
  // other tensors by index (not element-wise: no pass may treat it so); a
  // parallel loop, so that the GPU pipeline's loop fusion can launch it
  // with the result's zero fill as one kernel.
  Type f32 = b.getF32Type();
  Value empty =
      tensor::EmptyOp::create(b, loc, ArrayRef<OpFoldResult>{rows}, f32);
  AffineMap identity = b.getMultiDimIdentityMap(1);
  auto generic = linalg::GenericOp::create(
      b, loc, TypeRange{empty.getType()}, ValueRange{}, ValueRange{empty},
      ArrayRef<AffineMap>{identity},
      ArrayRef<utils::IteratorType>{utils::IteratorType::parallel},
      [&](OpBuilder &gb, Location gl, ValueRange) {
        Value r = linalg::IndexOp::create(gb, gl, 0);
        Value c0 = indexConstant(gb, gl, 0), c1 = indexConstant(gb, gl, 1);
        Value zero = arith::ConstantOp::create(gb, gl, gb.getF32FloatAttr(0));
        Value tokens = tensor::DimOp::create(gb, gl, rowMap, 0);
        Value choices = tensor::DimOp::create(gb, gl, rowMap, 1);
        auto index = [&](OpBuilder &ib, Location il, Value tensor,
                         ValueRange at) -> Value {
          return arith::IndexCastOp::create(
              ib, il, ib.getIndexType(),
              tensor::ExtractOp::create(ib, il, tensor, at));
        };
        Value t = index(gb, gl, sources, ValueRange{r});
        Value valid = arith::AndIOp::create(
            gb, gl,
            arith::CmpIOp::create(gb, gl, arith::CmpIPredicate::sge, t, c0),
            arith::CmpIOp::create(gb, gl, arith::CmpIPredicate::slt, t,
                                  tokens));
        auto scale = scf::IfOp::create(
            gb, gl, valid,
            [&](OpBuilder &tb, Location tl) {
              auto slots = scf::ForOp::create(
                  tb, tl, c0, choices, c1, ValueRange{zero},
                  [&](OpBuilder &kb, Location kl, Value k, ValueRange carried) {
                    Value hit = arith::CmpIOp::create(
                        kb, kl, arith::CmpIPredicate::eq,
                        index(kb, kl, rowMap, ValueRange{t, k}), r);
                    Value w = tensor::ExtractOp::create(kb, kl, weights,
                                                        ValueRange{t, k});
                    scf::YieldOp::create(kb, kl,
                                         ValueRange{arith::SelectOp::create(
                                             kb, kl, hit, w, carried[0])});
                  });
              scf::YieldOp::create(tb, tl, slots.getResults());
            },
            [&](OpBuilder &eb, Location el) {
              scf::YieldOp::create(eb, el, ValueRange{zero});
            });
        linalg::YieldOp::create(gb, gl, scale.getResults());
      });
  return generic.getResult(0);
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

/// Whether an epilogue cloned from `block` can have `value`: one defined in
/// `block` (an argument or an op's result), or a constant (cloned in).
bool isAvailableIn(Value value, Block &block) {
  if (auto arg = llvm::dyn_cast<BlockArgument>(value))
    return arg.getOwner() == &block;
  Operation *def = value.getDefiningOp();
  return def->getBlock() == &block || def->hasTrait<OpTrait::ConstantLike>();
}

/// The expert matmuls whose rows `generic` reads, in operand order, when a
/// grouped matmul with an epilogue can compute them and it together: one
/// or two inputs, each the rows of a matmul read by nothing else, the
/// matmuls without bias on the same rows, offsets and weight type; a 2-D
/// generic of parallel loops and identity maps whose output is not read,
/// its body scalar element-wise ops and constants on values defined in the
/// body or constants (the epilogue is isolated). Empty otherwise.
SmallVector<ExpertMatmulOp, 2> getEpilogueMatmuls(linalg::GenericOp generic) {
  if (generic.getNumDpsInputs() < 1 || generic.getNumDpsInputs() > 2 ||
      generic.getNumDpsInits() != 1 || generic.getNumLoops() != 2 ||
      generic.getNumResults() != 1)
    return {};
  if (!llvm::all_of(generic.getIteratorTypesArray(),
                    [](utils::IteratorType type) {
                      return type == utils::IteratorType::parallel;
                    }) ||
      !llvm::all_of(generic.getIndexingMapsArray(),
                    [](AffineMap map) { return map.isIdentity(); }))
    return {};
  Block &body = generic.getRegion().front();
  if (!generic.getMatchingBlockArgument(generic.getDpsInitOperand(0))
           .use_empty())
    return {};
  for (BlockArgument arg : body.getArguments())
    if (!llvm::isa<FloatType>(arg.getType()))
      return {};
  for (Operation &op : body.without_terminator()) {
    bool elementwise = op.hasTrait<OpTrait::Elementwise>() ||
                       op.hasTrait<OpTrait::ConstantLike>();
    if (!elementwise || op.getNumRegions() != 0 || !isMemoryEffectFree(&op))
      return {};
    for (Value operand : op.getOperands())
      if (!isAvailableIn(operand, body) ||
          !operand.getType().isIntOrIndexOrFloat())
        return {};
    for (Type type : op.getResultTypes())
      if (!type.isIntOrIndexOrFloat())
        return {};
  }
  Value yielded = body.getTerminator()->getOperand(0);
  if (!isAvailableIn(yielded, body) || !llvm::isa<FloatType>(yielded.getType()))
    return {};
  SmallVector<ExpertMatmulOp, 2> matmuls;
  for (Value input : generic.getDpsInputs()) {
    auto matmul = input.getDefiningOp<ExpertMatmulOp>();
    if (!matmul || matmul.getBias() || !matmul.getOffsets() ||
        matmul->getBlock() != generic->getBlock())
      return {};
    // Read by the generic once, otherwise only for its shape.
    int64_t genericUses = 0;
    for (OpOperand &use : matmul->getUses()) {
      if (use.getOwner() == generic.getOperation())
        ++genericUses;
      else if (!llvm::isa<tensor::DimOp>(use.getOwner()))
        return {};
    }
    if (genericUses != 1)
      return {};
    if (!matmuls.empty() &&
        (matmul.getInput() != matmuls[0].getInput() ||
         matmul.getOffsets() != matmuls[0].getOffsets() ||
         matmul.getWeight().getType() != matmuls[0].getWeight().getType() ||
         // Both scaled alike, or neither.
         static_cast<bool>(matmul.getWeightScale()) !=
             static_cast<bool>(matmuls[0].getWeightScale()) ||
         (matmul.getWeightScale() &&
          (matmul.getWeightScale().getType() !=
               matmuls[0].getWeightScale().getType() ||
           matmul.getWeightBlockAttr() != matmuls[0].getWeightBlockAttr()))))
      return {};
    matmuls.push_back(matmul);
  }
  return matmuls;
}

/// The element-wise op that `op` fuses into as the gate or up projection
/// of a grouped matmul with an epilogue, if any.
linalg::GenericOp getFusableActivation(ExpertMatmulOp op) {
  for (Operation *user : op->getUsers())
    if (auto generic = llvm::dyn_cast<linalg::GenericOp>(user))
      if (!getEpilogueMatmuls(generic).empty())
        return generic;
  return {};
}

struct FormGroupedMatmul : OpRewritePattern<ExpertMatmulOp> {
  FormGroupedMatmul(MLIRContext *context, RowCoverage coverage,
                    bool fuseCombine, bool fuseActivation)
      : OpRewritePattern(context), coverage(coverage), fuseCombine(fuseCombine),
        fuseActivation(fuseActivation) {}

  LogicalResult matchAndRewrite(ExpertMatmulOp op,
                                PatternRewriter &rewriter) const override {
    if (fuseCombine && getFusableCombine(op))
      return rewriter.notifyMatchFailure(
          op, "formed with its combine (FormScatteringGroupedMatmul)");
    if (fuseActivation && getFusableActivation(op))
      return rewriter.notifyMatchFailure(
          op, "formed with its activation (FormEpilogueGroupedMatmul)");
    RoutingPlanOp plan = findPlan(rewriter, op, coverage.blockRows);
    if (!plan)
      return rewriter.notifyMatchFailure(
          op, "offsets not from a dispatch or plan in whole row blocks");
    Location loc = op.getLoc();
    auto weightType = llvm::cast<RankedTensorType>(op.getWeight().getType());
    auto resultType = llvm::cast<RankedTensorType>(op.getResult().getType());
    GroupedOperands operands =
        buildGroupedOperands(rewriter, op, plan, coverage);
    Value acc = buildAccumulator(rewriter, loc, operands.numRows,
                                 weightType.getDimSize(1));
    acc = GroupedMatmulOp::create(
              rewriter, loc, TypeRange{acc.getType()}, operands.input,
              op.getWeight(), Value(), operands.blocks, operands.sizes,
              operands.sources, Value(), Value(), op.getWeightScale(), Value(),
              acc, rewriter.getI64IntegerAttr(coverage.blockRows),
              op.getWeightBlockAttr(), op.getExactProductsAttr(),
              /*atomic_scatter=*/UnitAttr(), /*unique_scatter=*/UnitAttr(),
              /*epilogueCount=*/0)
              .getResult()[0];
    Value result = acc;
    if (op.getBias() || !resultType.getElementType().isF32())
      result = buildEpilogue(rewriter, loc, acc, op.getBias(), operands.blocks,
                             coverage.blockRows, resultType.getElementType());
    if (result.getType() != resultType)
      result = tensor::CastOp::create(rewriter, loc, resultType, result);
    rewriter.replaceOp(op, result);
    return success();
  }

  RowCoverage coverage;
  bool fuseCombine, fuseActivation;
};

/// The gate and up projections (or one projection) and the element-wise
/// activation on their rows as one grouped matmul with an epilogue: the
/// matmuls' weights, the generic's body as the epilogue. Each sum is first
/// converted to its matmul's result type (what the matmul would have
/// yielded) and the value back to f32, so the result equals the unfused
/// one.
struct FormEpilogueGroupedMatmul : OpRewritePattern<linalg::GenericOp> {
  FormEpilogueGroupedMatmul(MLIRContext *context, RowCoverage coverage)
      : OpRewritePattern(context), coverage(coverage) {}

  LogicalResult matchAndRewrite(linalg::GenericOp generic,
                                PatternRewriter &rewriter) const override {
    SmallVector<ExpertMatmulOp, 2> matmuls = getEpilogueMatmuls(generic);
    if (matmuls.empty())
      return rewriter.notifyMatchFailure(
          generic, "not an element-wise op of expert matmuls it can fuse");
    ExpertMatmulOp first = matmuls.front();
    RoutingPlanOp plan = findPlan(rewriter, first, coverage.blockRows);
    if (!plan)
      return rewriter.notifyMatchFailure(
          generic, "offsets not from a dispatch or plan in whole row blocks");
    Location loc = generic.getLoc();
    // At the earlier matmul: the result then dominates every reader of
    // either matmul's shape as well as the generic.
    Operation *earliest = matmuls.front();
    for (ExpertMatmulOp matmul : matmuls)
      if (matmul->isBeforeInBlock(earliest))
        earliest = matmul;
    rewriter.setInsertionPoint(earliest);
    auto weightType = llvm::cast<RankedTensorType>(first.getWeight().getType());
    GroupedOperands operands =
        buildGroupedOperands(rewriter, first, plan, coverage);
    Value acc = buildAccumulator(rewriter, loc, operands.numRows,
                                 weightType.getDimSize(1));
    Value paired = matmuls.size() > 1 ? matmuls[1].getWeight() : Value();
    Value pairedScale =
        matmuls.size() > 1 ? matmuls[1].getWeightScale() : Value();
    // Exact when either product must be: both share the rows' loads.
    UnitAttr exact;
    for (ExpertMatmulOp matmul : matmuls)
      if (matmul.getExactProducts())
        exact = rewriter.getUnitAttr();
    auto fused = GroupedMatmulOp::create(
        rewriter, loc, TypeRange{acc.getType()}, operands.input,
        first.getWeight(), paired, operands.blocks, operands.sizes,
        operands.sources, Value(), Value(), first.getWeightScale(), pairedScale,
        acc, rewriter.getI64IntegerAttr(coverage.blockRows),
        first.getWeightBlockAttr(), exact, /*atomic_scatter=*/UnitAttr(),
        /*unique_scatter=*/UnitAttr(), /*epilogueCount=*/1);
    buildEpilogueRegion(rewriter, fused, generic, matmuls);
    Value result = fused.getResult()[0];
    auto resultType =
        llvm::cast<RankedTensorType>(generic.getResult(0).getType());
    if (!resultType.getElementType().isF32())
      result = buildEpilogue(rewriter, loc, result, Value(), operands.blocks,
                             coverage.blockRows, resultType.getElementType());
    if (result.getType() != resultType)
      result = tensor::CastOp::create(rewriter, loc, resultType, result);
    rewriter.replaceOp(generic, result);
    // The matmuls' rows are the result's: their shape readers read it.
    for (ExpertMatmulOp matmul : matmuls) {
      for (OpOperand &use : llvm::make_early_inc_range(matmul->getUses()))
        rewriter.modifyOpInPlace(use.getOwner(), [&] { use.set(result); });
      rewriter.eraseOp(matmul);
    }
    return success();
  }

  /// `^bb0(sums..., old: f32)`: each sum converted to its matmul's element
  /// type, the generic's body on them, its value converted to f32.
  static void buildEpilogueRegion(PatternRewriter &rewriter,
                                  GroupedMatmulOp fused,
                                  linalg::GenericOp generic,
                                  ArrayRef<ExpertMatmulOp> matmuls) {
    OpBuilder::InsertionGuard guard(rewriter);
    Location loc = generic.getLoc();
    Type f32 = rewriter.getF32Type();
    SmallVector<Type> types(matmuls.size() + 1, f32);
    SmallVector<Location> locs(types.size(), loc);
    Block *block =
        rewriter.createBlock(&fused.getEpilogue().front(), {}, types, locs);
    Block &body = generic.getRegion().front();
    IRMapping map;
    for (auto [i, matmul] : llvm::enumerate(matmuls)) {
      ExpertMatmulOp projection = matmul;
      Type element =
          llvm::cast<RankedTensorType>(projection.getResult().getType())
              .getElementType();
      Value sum = castFloat(rewriter, loc, block->getArgument(i), element);
      map.map(body.getArgument(i),
              castFloat(rewriter, loc, sum, body.getArgument(i).getType()));
    }
    // Constants from outside the generic's body are cloned in first.
    auto cloneConstant = [&](Value value) {
      if (map.contains(value) || llvm::isa<BlockArgument>(value) ||
          value.getDefiningOp()->getBlock() == &body)
        return;
      rewriter.clone(*value.getDefiningOp(), map);
    };
    for (Operation &op : body.without_terminator()) {
      for (Value operand : op.getOperands())
        cloneConstant(operand);
      rewriter.clone(op, map);
    }
    cloneConstant(body.getTerminator()->getOperand(0));
    Value value = map.lookup(body.getTerminator()->getOperand(0));
    YieldOp::create(rewriter, loc, castFloat(rewriter, loc, value, f32));
  }

  RowCoverage coverage;
};

/// The combine of an expert matmul's rows (the down projection) fused into
/// that matmul's write-back: each row, times its combine weight, is added to
/// its token's row of the `[T, N]` result (zeros, or the combine's init);
/// the `[R, N]` rows are never written. Matches before FormGroupedMatmul
/// forms the matmul alone.
struct FormScatteringGroupedMatmul : OpRewritePattern<CombineOp> {
  FormScatteringGroupedMatmul(MLIRContext *context, RowCoverage coverage,
                              bool atomicCombine)
      : OpRewritePattern(context, /*benefit=*/2), coverage(coverage),
        atomicCombine(atomicCombine) {}

  LogicalResult matchAndRewrite(CombineOp combine,
                                PatternRewriter &rewriter) const override {
    auto op = combine.getRows().getDefiningOp<ExpertMatmulOp>();
    if (!op || getFusableCombine(op) != combine)
      return rewriter.notifyMatchFailure(
          combine, "rows not from an expert matmul of its own, without "
                   "bias, in the layout of the row map");
    RoutingPlanOp plan = findPlan(rewriter, op, coverage.blockRows);
    if (!plan)
      return rewriter.notifyMatchFailure(
          combine, "offsets not from a dispatch or plan in whole row blocks");
    Location loc = combine.getLoc();
    auto weightType = llvm::cast<RankedTensorType>(op.getWeight().getType());
    auto resultType =
        llvm::cast<RankedTensorType>(combine.getResult().getType());
    GroupedOperands operands =
        buildGroupedOperands(rewriter, op, plan, coverage);
    Value targets =
        buildPrefix(rewriter, loc, plan.getRowSources(), operands.computedRows);
    Value scales =
        buildRowScales(rewriter, loc, combine.getWeights(), plan.getRowMap(),
                       targets, operands.computedRows);
    // One row per token (a top-1 row map): no two rows share a target, so
    // parallel row blocks need no atomic adds.
    bool uniqueTargets =
        llvm::cast<RankedTensorType>(plan.getRowMap().getType())
            .getDimSize(1) == 1;
    // The rows add to zeros, or to the combine's init (in f32).
    Value acc;
    if (Value init = combine.getInit()) {
      acc = init;
      if (!llvm::cast<RankedTensorType>(init.getType())
               .getElementType()
               .isF32())
        acc = buildEpilogue(rewriter, loc, init, /*bias=*/Value(),
                            /*blocks=*/Value(), coverage.blockRows,
                            rewriter.getF32Type());
    } else {
      Value tokens =
          tensor::DimOp::create(rewriter, loc, combine.getWeights(), 0);
      acc = buildAccumulator(rewriter, loc, tokens, weightType.getDimSize(1));
    }
    // [T, N] with the weights' N: tiling reads the columns from it.
    auto accType =
        RankedTensorType::get({ShapedType::kDynamic, weightType.getDimSize(1)},
                              rewriter.getF32Type());
    if (acc.getType() != accType)
      acc = tensor::CastOp::create(rewriter, loc, accType, acc);
    acc = GroupedMatmulOp::create(
              rewriter, loc, TypeRange{acc.getType()}, operands.input,
              op.getWeight(), Value(), operands.blocks, operands.sizes,
              operands.sources, targets, scales, op.getWeightScale(), Value(),
              acc, rewriter.getI64IntegerAttr(coverage.blockRows),
              op.getWeightBlockAttr(), op.getExactProductsAttr(),
              atomicCombine && !uniqueTargets ? rewriter.getUnitAttr()
                                              : UnitAttr(),
              atomicCombine && uniqueTargets ? rewriter.getUnitAttr()
                                             : UnitAttr(),
              /*epilogueCount=*/0)
              .getResult()[0];
    Value result = acc;
    if (!resultType.getElementType().isF32())
      result = buildEpilogue(rewriter, loc, acc, Value(), operands.blocks,
                             coverage.blockRows, resultType.getElementType());
    if (result.getType() != resultType)
      result = tensor::CastOp::create(rewriter, loc, resultType, result);
    rewriter.replaceOp(combine, result);
    rewriter.eraseOp(op);
    return success();
  }

  RowCoverage coverage;
  /// Whether the scattered adds are atomic (`atomic`: row blocks parallel).
  bool atomicCombine;
};

struct MoEFormGroupedMatmulPass
    : public moe::impl::MoEFormGroupedMatmulPassBase<MoEFormGroupedMatmulPass> {
  using MoEFormGroupedMatmulPassBase::MoEFormGroupedMatmulPassBase;

  LogicalResult initialize(MLIRContext *context) override {
    if (blockRows < 1)
      return emitError(UnknownLoc::get(context))
             << "moe-form-grouped-matmul: block-rows must be at least 1, got "
             << static_cast<int64_t>(blockRows);
    if (atomicCombine && !fuseCombine)
      return emitError(UnknownLoc::get(context))
             << "moe-form-grouped-matmul: atomic-combine needs fuse-combine "
                "(it makes the fused combine's adds atomic)";
    return success();
  }

  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    RowCoverage coverage{blockRows, boundRows};
    patterns.add<FormGroupedMatmul>(&getContext(), coverage, fuseCombine,
                                    fuseActivation);
    if (fuseCombine)
      patterns.add<FormScatteringGroupedMatmul>(&getContext(), coverage,
                                                atomicCombine);
    if (fuseActivation)
      patterns.add<FormEpilogueGroupedMatmul>(&getContext(), coverage);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
