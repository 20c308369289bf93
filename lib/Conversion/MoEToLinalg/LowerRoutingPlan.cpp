//===- LowerRoutingPlan.cpp - moe.routing_plan to scf ---------------------===//
//
// The routing plan is a counting sort: per-expert counts over chunks of
// tokens in parallel, the aligned prefix sum, the table of row blocks, then
// one sequential pass that places every taken assignment (scalar work).
// moe-fuse-routing builds the same plan from counts taken while routing.
//
//===----------------------------------------------------------------------===//

#include "LoweringUtils.h"
#include "RoutingPlanBuilders.h"
#include "moe/Conversion/MoEToLinalg/MoEToLinalg.h"
#include "moe/Dialect/MoE/IR/MoE.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Transforms/DialectConversion.h"

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::lowering;

SmallVector<Value> lowering::buildRoutingPlanResults(OpBuilder &b, Location loc,
                                                     RoutingPlanOp plan,
                                                     Value ids, Value counts) {
  ReifiedRankedShapedTypeDims shapes;
  // The shapes are a function of T alone (never fails).
  (void)plan.reifyResultShapes(b, shapes);
  Value offsets = buildAlignedOffsets(b, loc, counts, plan.getAlign());
  Value numBlocks = getValueOrCreateConstantIndexOp(b, loc, shapes[1][0]);
  auto [blockExperts, blockSizes] =
      buildBlockTable(b, loc, counts, offsets, numBlocks, plan.getBlockRows());
  auto [rowSources, rowMap] = buildPlacement(
      b, loc, ids, offsets,
      buildFilledVector(b, loc, shapes[3][0], b.getI32Type(), -1));
  SmallVector<Value> results = {offsets, blockExperts, blockSizes, rowSources,
                                rowMap};
  for (auto [i, result] : llvm::enumerate(plan.getResults()))
    results[i] = castToType(b, loc, results[i], result.getType());
  return results;
}

namespace {

struct LowerRoutingPlan : OpConversionPattern<RoutingPlanOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(RoutingPlanOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    Location loc = op.getLoc();
    Value ids = adaptor.getIds();
    Value counts = buildExpertCounts(rewriter, loc, ids, op.getNumExperts());
    rewriter.replaceOp(op,
                       buildRoutingPlanResults(rewriter, loc, op, ids, counts));
    return success();
  }
};

} // namespace

void mlir::moe::populateRoutingPlanLoweringPatterns(
    RewritePatternSet &patterns) {
  patterns.add<LowerRoutingPlan>(patterns.getContext());
}
