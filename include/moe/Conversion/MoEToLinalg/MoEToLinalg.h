//===- MoEToLinalg.h - Lowering moe ops to upstream ops ---------*- C++ -*-===//

#ifndef MOE_CONVERSION_MOETOLINALG_MOETOLINALG_H
#define MOE_CONVERSION_MOETOLINALG_MOETOLINALG_H

#include "moe/Dialect/MoE/IR/MoE.h"

#include "mlir/IR/PatternMatch.h"

namespace mlir::moe {

/// Lowers moe.gate (token choice with or without capacity, random second
/// choices, noise; expert choice; statistics results) to linalg and scf on tensors.
void populateGateLoweringPatterns(RewritePatternSet &patterns);

/// Lowers moe.dispatch and moe.combine to scf loops on tensors.
void populateDispatchCombineLoweringPatterns(RewritePatternSet &patterns);

/// Lowers moe.routing_plan to a counting sort in scf loops on tensors.
void populateRoutingPlanLoweringPatterns(RewritePatternSet &patterns);

/// Lowers moe.expert_matmul to a loop of linalg matmuls on expert slices.
void populateExpertMatmulLoweringPatterns(RewritePatternSet &patterns);

} // namespace mlir::moe

#endif // MOE_CONVERSION_MOETOLINALG_MOETOLINALG_H
