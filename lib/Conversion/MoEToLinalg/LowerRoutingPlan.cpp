//===- LowerRoutingPlan.cpp - moe.routing_plan to scf ---------------------===//
//
// The routing plan is a counting sort: per-expert counts over chunks of
// tokens in parallel, the aligned prefix sum, the table of row blocks, each
// expert's first row per chunk, then the chunks' assignments placed in
// parallel (each chunk's in order) and each row's source token scattered
// in parallel over the tokens.
// moe-fuse-routing builds the same plan from counts taken while routing.
// The plan of one expert that every token picks (a shared expert's) is
// known without sorting: element-wise, in parallel.
//
//===----------------------------------------------------------------------===//

#include "LoweringUtils.h"
#include "RoutingPlanBuilders.h"
#include "moe/Conversion/MoEToLinalg/MoEToLinalg.h"
#include "moe/Dialect/MoE/IR/MoE.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Transforms/DialectConversion.h"

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::lowering;

SmallVector<Value> lowering::buildRoutingPlanResults(OpBuilder &b, Location loc,
                                                     RoutingPlanOp plan,
                                                     Value ids,
                                                     Value chunkCounts,
                                                     Value chunkTokens) {
  ReifiedRankedShapedTypeDims shapes;
  // The shapes are a function of T alone (never fails).
  (void)plan.reifyResultShapes(b, shapes);
  Value counts =
      buildSumOfChunkCounts(b, loc, chunkCounts, plan.getNumExperts());
  Value offsets = buildAlignedOffsets(b, loc, counts, plan.getAlign());
  Value numBlocks = getValueOrCreateConstantIndexOp(b, loc, shapes[1][0]);
  auto [blockExperts, blockSizes] =
      buildBlockTable(b, loc, counts, offsets, numBlocks, plan.getBlockRows());
  auto [rowSources, rowMap] = buildChunkedPlacement(
      b, loc, ids, offsets, chunkCounts, chunkTokens,
      buildFilledVector(b, loc, shapes[3][0], b.getI32Type(), -1));
  SmallVector<Value> results = {offsets, blockExperts, blockSizes, rowSources,
                                rowMap};
  for (auto [i, result] : llvm::enumerate(plan.getResults()))
    results[i] = castToType(b, loc, results[i], result.getType());
  return results;
}

namespace {

/// Whether `ids` is `[T, 1]` zeros (linalg.fill of 0): every token picks
/// expert 0 once, as a shared expert's dispatch does.
bool isEveryTokenToExpertZero(Value ids) {
  auto type = llvm::cast<RankedTensorType>(ids.getType());
  auto fill = ids.getDefiningOp<linalg::FillOp>();
  return type.getDimSize(1) == 1 && fill &&
         matchPattern(fill.getInputs()[0], m_Zero());
}

/// The plan of one expert that every token picks once (no counting sort):
/// token t is row t, the first ceil(T / align) * align rows are the
/// expert's, each of their blocks holds min(block rows, T - first row)
/// rows. Every result is element-wise (parallel), where the counting sort
/// places the assignments one after another.
SmallVector<Value> buildEveryTokenPlan(OpBuilder &b, Location loc,
                                       RoutingPlanOp plan, Value ids) {
  ReifiedRankedShapedTypeDims shapes;
  (void)plan.reifyResultShapes(b, shapes);
  Type i32 = b.getI32Type(), i64 = b.getI64Type();
  Value tokens = tensor::DimOp::create(b, loc, ids, 0);
  Value align = indexConstant(b, loc, plan.getAlign());
  Value used = arith::MulIOp::create(
      b, loc, arith::CeilDivUIOp::create(b, loc, tokens, align), align);
  Value blockRows = indexConstant(b, loc, plan.getBlockRows());
  auto i32Of = [&](OpBuilder &nb, Location nl, Value index) -> Value {
    return arith::IndexCastOp::create(nb, nl, i32, index);
  };
  Value offsets = buildVectorFromIndices(
      b, loc, b.getIndexAttr(2), i64,
      [&](OpBuilder &nb, Location nl, Value i) -> Value {
        Value last = arith::CmpIOp::create(nb, nl, arith::CmpIPredicate::eq, i,
                                           indexConstant(nb, nl, 1));
        return arith::IndexCastOp::create(
            nb, nl, i64,
            arith::SelectOp::create(nb, nl, last, used,
                                    indexConstant(nb, nl, 0)));
      });
  // Row `first` of a block (or a row) is the expert's when below `used`.
  auto owned = [&](OpBuilder &nb, Location nl, Value first) -> Value {
    return arith::CmpIOp::create(nb, nl, arith::CmpIPredicate::ult, first,
                                 used);
  };
  Value blockExperts = buildVectorFromIndices(
      b, loc, shapes[1][0], i32,
      [&](OpBuilder &nb, Location nl, Value block) -> Value {
        Value first = arith::MulIOp::create(nb, nl, block, blockRows);
        return arith::SelectOp::create(
            nb, nl, owned(nb, nl, first),
            arith::ConstantIntOp::create(nb, nl, i32, 0),
            arith::ConstantIntOp::create(nb, nl, i32, -1));
      });
  Value blockSizes = buildVectorFromIndices(
      b, loc, shapes[2][0], i32,
      [&](OpBuilder &nb, Location nl, Value block) -> Value {
        Value first = arith::MulIOp::create(nb, nl, block, blockRows);
        Value left = arith::SubIOp::create(
            nb, nl, arith::MaxUIOp::create(nb, nl, tokens, first), first);
        return i32Of(nb, nl, arith::MinUIOp::create(nb, nl, left, blockRows));
      });
  Value rowSources = buildVectorFromIndices(
      b, loc, shapes[3][0], i32,
      [&](OpBuilder &nb, Location nl, Value row) -> Value {
        Value filled = arith::CmpIOp::create(nb, nl, arith::CmpIPredicate::ult,
                                             row, tokens);
        return arith::SelectOp::create(
            nb, nl, filled, i32Of(nb, nl, row),
            arith::ConstantIntOp::create(nb, nl, i32, -1));
      });
  Value rowMap = buildTensorFromIndices(
      b, loc, ids, b.getIndexAttr(1), i32,
      [&](OpBuilder &nb, Location nl, Value token, Value) -> Value {
        return i32Of(nb, nl, token);
      });
  SmallVector<Value> results = {offsets, blockExperts, blockSizes, rowSources,
                                rowMap};
  for (auto [i, result] : llvm::enumerate(plan.getResults()))
    results[i] = castToType(b, loc, results[i], result.getType());
  return results;
}

struct LowerRoutingPlan : OpConversionPattern<RoutingPlanOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(RoutingPlanOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value ids = adaptor.getIds();
    if (op.getNumExperts() == 1 && isEveryTokenToExpertZero(ids)) {
      rewriter.replaceOp(op, buildEveryTokenPlan(rewriter, loc, op, ids));
      return success();
    }
    Value chunkTokens = buildPlanChunkTokens(
        rewriter, loc, tensor::DimOp::create(rewriter, loc, ids, 0),
        llvm::cast<RankedTensorType>(ids.getType()).getDimSize(1));
    Value chunkCounts = buildChunkExpertCounts(rewriter, loc, ids,
                                               op.getNumExperts(), chunkTokens);
    rewriter.replaceOp(op, buildRoutingPlanResults(rewriter, loc, op, ids,
                                                   chunkCounts, chunkTokens));
    return success();
  }
};

} // namespace

void mlir::moe::populateRoutingPlanLoweringPatterns(
    RewritePatternSet &patterns) {
  patterns.add<LowerRoutingPlan>(patterns.getContext());
}
