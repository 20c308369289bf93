//===- GuardParallelRegions.cpp - omp.parallel if(enough iterations) ------===//
//
// convert-scf-to-openmp makes one omp.parallel per parallel loop, forked on
// every execution whatever the trip count. A loop of one iteration (per
// token at T = 1) gains nothing from the team and pays its wake-up and
// join; the if clause keeps it on the calling thread.
//
//===----------------------------------------------------------------------===//

#include "moe/Codegen/CPU/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/OpenMP/OpenMPDialect.h"
#include "mlir/IR/Builders.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEGUARDPARALLELREGIONSPASS
#include "moe/Codegen/CPU/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;

namespace {

/// The loop nest of `parallel` when its body is one worksharing loop whose
/// bounds are defined outside the region; null otherwise.
omp::LoopNestOp guardedLoopNest(omp::ParallelOp parallel) {
  Block &body = parallel.getRegion().front();
  omp::WsloopOp wsloop;
  for (Operation &op : body.without_terminator()) {
    if (wsloop || !(wsloop = llvm::dyn_cast<omp::WsloopOp>(op)))
      return {};
  }
  if (!wsloop)
    return {};
  auto nest = llvm::dyn_cast<omp::LoopNestOp>(wsloop.getWrappedLoop());
  if (!nest)
    return {};
  for (Value bound : nest->getOperands())
    if (parallel->isAncestor(bound.getParentRegion()->getParentOp()))
      return {};
  return nest;
}

struct MoEGuardParallelRegionsPass
    : public moe::impl::MoEGuardParallelRegionsPassBase<
          MoEGuardParallelRegionsPass> {
  using MoEGuardParallelRegionsPassBase::MoEGuardParallelRegionsPassBase;

  LogicalResult initialize(MLIRContext *context) override {
    if (minIterations < 1)
      return emitError(UnknownLoc::get(context))
             << "moe-guard-parallel-regions: min-iterations must be at "
                "least 1, got "
             << static_cast<int64_t>(minIterations);
    return success();
  }

  void runOnOperation() override {
    SmallVector<omp::ParallelOp> regions;
    getOperation()->walk(
        [&](omp::ParallelOp parallel) { regions.push_back(parallel); });
    for (omp::ParallelOp parallel : regions) {
      omp::LoopNestOp nest = guardedLoopNest(parallel);
      if (!nest)
        continue;
      OpBuilder b(parallel);
      Location loc = parallel.getLoc();
      Value zero = arith::ConstantOp::create(
          b, loc, b.getZeroAttr(nest.getLoopLowerBounds()[0].getType()));
      Value iterations;
      for (auto [lb, ub, step] :
           llvm::zip(nest.getLoopLowerBounds(), nest.getLoopUpperBounds(),
                     nest.getLoopSteps())) {
        // ceil((ub - lb) / step), 0 when empty (steps are positive).
        Value span = arith::SubIOp::create(b, loc, ub, lb);
        Value positive = arith::MaxSIOp::create(b, loc, span, zero);
        Value trips = arith::CeilDivSIOp::create(b, loc, positive, step);
        iterations = iterations
                         ? arith::MulIOp::create(b, loc, iterations, trips)
                         : trips;
      }
      Value minimum = arith::ConstantOp::create(
          b, loc, b.getIntegerAttr(iterations.getType(), minIterations));
      Value enough = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge,
                                           iterations, minimum);
      if (Value existing = parallel.getIfExpr())
        enough = arith::AndIOp::create(b, loc, existing, enough);
      parallel.getIfExprMutable().assign(enough);
    }
  }
};

} // namespace
