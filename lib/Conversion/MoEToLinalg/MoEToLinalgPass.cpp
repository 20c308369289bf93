//===- MoEToLinalgPass.cpp - The convert-moe-to-linalg pass ---------------===//

#include "moe/Conversion/Passes.h"
#include "moe/Dialect/MoE/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Transforms/DialectConversion.h"

namespace mlir::moe {
#define GEN_PASS_DEF_CONVERTMOETOLINALGPASS
#include "moe/Conversion/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

struct ConvertMoEToLinalgPass
    : public moe::impl::ConvertMoEToLinalgPassBase<ConvertMoEToLinalgPass> {
  void runOnOperation() override {
    MLIRContext *context = &getContext();
    Operation *root = getOperation();
    if (failed(verifyExpertParallelLayers(root)))
      return signalPassFailure();

    RewritePatternSet patterns(context);
    populateMoEDecomposePatterns(patterns, /*rowAlign=*/1);
    populateGateLoweringPatterns(patterns);
    populateDispatchCombineLoweringPatterns(patterns);
    populateRoutingPlanLoweringPatterns(patterns);
    populateExpertMatmulLoweringPatterns(patterns);

    ConversionTarget target(*context);
    target.addIllegalDialect<MoeDialect>();
    // Already in destination-passing form: bufferized as is, then lowered by
    // its micro-kernel or its scalar implementation.
    target.addLegalOp<AllToAllOp, GroupedMatmulOp, YieldOp>();
    target.markUnknownOpDynamicallyLegal([](Operation *) { return true; });
    if (failed(applyPartialConversion(root, target, std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
