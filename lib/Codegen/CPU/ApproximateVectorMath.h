//===- ApproximateVectorMath.h - Vector math at vector speed ----*- C++ -*-===//
//
// Internal to MoECPUCodegen. The math ops a pass created on vectors (an
// activation's exp, tanh, erf) rewritten with upstream's polynomial
// approximations instead of one libm call per lane; scalar math elsewhere
// (routing's exponentials) is left alone and keeps its libm results.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_CODEGEN_CPU_APPROXIMATEVECTORMATH_H
#define MOE_LIB_CODEGEN_CPU_APPROXIMATEVECTORMATH_H

#include "mlir/IR/Operation.h"

namespace mlir::moe::cpu {

/// Applies populateMathPolynomialApproximationPatterns to `vectorMath` only.
LogicalResult approximateVectorMath(MLIRContext *context,
                                    ArrayRef<Operation *> vectorMath);

} // namespace mlir::moe::cpu

#endif // MOE_LIB_CODEGEN_CPU_APPROXIMATEVECTORMATH_H
