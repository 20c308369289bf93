//===- StridedCopiesToLinalg.cpp - memref.copy without a runtime call -----===//
//
// memref.copy between buffers that are not both contiguous lowers to a call
// of `memrefCopy`, a function of MLIR's C runner utilities that compiled
// modules do not link. Such copies become linalg.copy, which the pipeline
// lowers to loops; contiguous copies stay (they lower to memcpy).
//
//===----------------------------------------------------------------------===//

#include "moe/Codegen/CPU/Passes.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOESTRIDEDCOPIESTOLINALGPASS
#include "moe/Codegen/CPU/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;

namespace {

bool isContiguous(Type type) {
  auto memref = llvm::dyn_cast<MemRefType>(type);
  return memref && memref.getLayout().isIdentity();
}

struct StridedCopyToLinalg : OpRewritePattern<memref::CopyOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(memref::CopyOp copy,
                                PatternRewriter &rewriter) const override {
    if (isContiguous(copy.getSource().getType()) &&
        isContiguous(copy.getTarget().getType()))
      return rewriter.notifyMatchFailure(copy, "contiguous: memcpy");
    if (!llvm::isa<MemRefType>(copy.getSource().getType()) ||
        !llvm::isa<MemRefType>(copy.getTarget().getType()))
      return rewriter.notifyMatchFailure(copy, "unranked");
    rewriter.replaceOpWithNewOp<linalg::CopyOp>(copy, copy.getSource(),
                                                copy.getTarget());
    return success();
  }
};

struct MoEStridedCopiesToLinalgPass
    : public moe::impl::MoEStridedCopiesToLinalgPassBase<
          MoEStridedCopiesToLinalgPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<StridedCopyToLinalg>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
