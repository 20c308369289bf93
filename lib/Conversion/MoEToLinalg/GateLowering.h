//===- GateLowering.h - Builders shared by the moe.gate lowerings -*- C++ -*-===//
//
// Routing stages of moe.gate on tensors with a dynamic token count T: token
// groups and their capacity (RoutingAttr's rules, docs/Routing.md), dropping
// the token-choice assignments over capacity, and expert choice's per-expert
// top-C token selection.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_CONVERSION_MOETOLINALG_GATELOWERING_H
#define MOE_LIB_CONVERSION_MOETOLINALG_GATELOWERING_H

#include "moe/Dialect/MoE/IR/MoE.h"

#include "mlir/IR/Builders.h"

namespace mlir::moe::lowering {

/// The size S of a token group (`index`, at least 1): `group_size`, or the
/// whole batch `numTokens` when the routing has none.
Value buildGroupSize(OpBuilder &b, Location loc, RoutingAttr routing,
                     Value numTokens);

/// The per-expert capacity (`index`) of a group of `groupTokens` tokens:
/// `fixed(C)`, `fraction(F)` = ceil(F * S), or `factor(F, r, min = M)` =
/// max(M, r(((F * S) * K) / E)) in f64 (K = 1 for expert choice).
Value buildGroupCapacity(OpBuilder &b, Location loc, RoutingAttr routing,
                         Value groupTokens, int64_t numExperts);

/// Token-choice capacity: `ids` `[T,K]` i32 with every assignment whose
/// position at its expert reaches the group's capacity set to -1. Per group,
/// rank 0 choices are placed first, then rank 1, ...; each rank in token order
/// or, with `priority = score`, by descending top score of `scores` `[T,E]`
/// (ties to the lower token). Assignments already -1 take no position.
Value buildCapacityDrop(OpBuilder &b, Location loc, RoutingAttr routing,
                        Value scores, Value ids, int64_t numExperts);

/// Expert choice: `[T,E]` i1, true where expert e takes token t, i.e. t is
/// among the min(C, S) best tokens of its group by `selection[:, e]` (ties to
/// the lower token).
Value buildExpertChoiceMask(OpBuilder &b, Location loc, RoutingAttr routing,
                            Value selection, int64_t numExperts);

} // namespace mlir::moe::lowering

#endif // MOE_LIB_CONVERSION_MOETOLINALG_GATELOWERING_H
