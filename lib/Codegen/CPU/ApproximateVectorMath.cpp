//===- ApproximateVectorMath.cpp - Vector math at vector speed ------------===//

#include "ApproximateVectorMath.h"

#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

using namespace mlir;

LogicalResult
moe::cpu::approximateVectorMath(MLIRContext *context,
                                ArrayRef<Operation *> vectorMath) {
  if (vectorMath.empty())
    return success();
  RewritePatternSet patterns(context);
  populateMathPolynomialApproximationPatterns(patterns,
                                              [](StringRef) { return true; });
  return applyOpPatternsGreedily(vectorMath, std::move(patterns));
}
