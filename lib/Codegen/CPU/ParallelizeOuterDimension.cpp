//===- ParallelizeOuterDimension.cpp - One parallel dimension per loop ----===//
//
// scf.parallel (i, j, ...) { body }  ->  scf.parallel (i) { scf.for j { ...
// body } }, and scf.parallel nested in a parallel loop -> scf.for nest. See
// the pass description for why.
//
//===----------------------------------------------------------------------===//

#include "moe/Codegen/CPU/Passes.h"

#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEPARALLELIZEOUTERDIMENSIONPASS
#include "moe/Codegen/CPU/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;

namespace {

/// Replaces `op` (no reductions) by the dimensions from `firstSequential` on
/// as an scf.for nest, inside an scf.parallel over the dimensions before it
/// when there are any.
void splitParallelLoop(RewriterBase &rewriter, scf::ParallelOp op,
                       unsigned firstSequential) {
  Location loc = op.getLoc();
  rewriter.setInsertionPoint(op);
  IRMapping mapping;
  auto emitSequential = [&](OpBuilder &b) {
    for (unsigned d = firstSequential; d < op.getNumLoops(); ++d) {
      auto loop = scf::ForOp::create(b, loc, op.getLowerBound()[d],
                                     op.getUpperBound()[d], op.getStep()[d]);
      mapping.map(op.getInductionVars()[d], loop.getInductionVar());
      b.setInsertionPointToStart(loop.getBody());
    }
    for (Operation &nested : op.getBody()->without_terminator())
      b.clone(nested, mapping);
  };
  if (firstSequential == 0) {
    OpBuilder::InsertionGuard guard(rewriter);
    emitSequential(rewriter);
  } else {
    scf::ParallelOp::create(rewriter, loc,
                            op.getLowerBound().take_front(firstSequential),
                            op.getUpperBound().take_front(firstSequential),
                            op.getStep().take_front(firstSequential),
                            [&](OpBuilder &b, Location, ValueRange ivs) {
                              for (unsigned d = 0; d < firstSequential; ++d)
                                mapping.map(op.getInductionVars()[d], ivs[d]);
                              emitSequential(b);
                            });
  }
  rewriter.eraseOp(op);
}

struct MoEParallelizeOuterDimensionPass
    : public moe::impl::MoEParallelizeOuterDimensionPassBase<
          MoEParallelizeOuterDimensionPass> {
  void runOnOperation() override {
    // Innermost first: rewriting a loop clones its body, so the loops in
    // it must be done by then. A loop with a parallel ancestor is
    // sequential whatever becomes of the ancestor (the outermost stays
    // parallel).
    SmallVector<scf::ParallelOp> loops;
    getOperation()->walk<WalkOrder::PostOrder>(
        [&](scf::ParallelOp op) { loops.push_back(op); });
    IRRewriter rewriter(&getContext());
    for (scf::ParallelOp op : loops) {
      if (op.getNumReductions() != 0)
        continue;
      bool nested = op->getParentOfType<scf::ParallelOp>() ||
                    op->getParentOfType<scf::ForallOp>();
      if (nested)
        splitParallelLoop(rewriter, op, 0);
      else if (op.getNumLoops() > 1)
        splitParallelLoop(rewriter, op, 1);
    }
  }
};

} // namespace
