//===- LowerPackOps.cpp - linalg.pack as pad + reshape + transpose --------===//
//
// The packing functions of moe-pack-expert-weights hold linalg.pack, which
// one-shot bufferization cannot see into; upstream's lowerPack turns it into
// ops that bufferize.
//
//===----------------------------------------------------------------------===//

#include "moe/Codegen/CPU/Passes.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOELOWERPACKOPSPASS
#include "moe/Codegen/CPU/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;

namespace {

struct MoELowerPackOpsPass
    : public moe::impl::MoELowerPackOpsPassBase<MoELowerPackOpsPass> {
  void runOnOperation() override {
    SmallVector<linalg::PackOp> packs;
    getOperation()->walk([&](linalg::PackOp pack) { packs.push_back(pack); });
    IRRewriter rewriter(&getContext());
    for (linalg::PackOp pack : packs) {
      rewriter.setInsertionPoint(pack);
      if (failed(linalg::lowerPack(rewriter, pack))) {
        pack.emitError("moe-lower-pack-ops: cannot lower this linalg.pack");
        return signalPassFailure();
      }
    }
  }
};

} // namespace
