//===- GateLowering.h - Builders shared by the moe.gate lowerings -*- C++ -*-===//
//
// Routing stages of moe.gate on tensors with a dynamic token count T: token
// groups and their capacity (RoutingAttr's rules, docs/Routing.md), dropping
// the token-choice assignments over capacity, expert choice's per-expert
// top-C token selection, and the routing statistics.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_CONVERSION_MOETOLINALG_GATELOWERING_H
#define MOE_LIB_CONVERSION_MOETOLINALG_GATELOWERING_H

#include "moe/Dialect/MoE/IR/MoE.h"

#include "mlir/IR/Builders.h"

namespace mlir::moe::lowering {

/// Largest K selected in one pass with the K best in registers
/// (buildTopKInsertion); larger K use K arg-max passes.
constexpr int64_t kMaxInsertionTopK = 16;

/// Whether the combine weights of a token-choice gate differ from its gates
/// (the scores of the chosen experts): drops, renormalization or a scale.
bool hasCombineWeightRules(RoutingAttr routing);

/// The K combine weights of one token from its K gates (f32) and whether
/// each choice is kept (i1): renormalized over the K gates
/// (`renormalize`) or over the kept ones, at least eps_f32
/// (`renormalize = kept`), times `scale`; 0 where not kept. Summed in
/// choice order.
SmallVector<Value> buildTokenCombineWeights(OpBuilder &b, Location loc,
                                            RoutingAttr routing,
                                            ArrayRef<Value> gates,
                                            ArrayRef<Value> kept);

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

/// What a gate's routing statistics are computed from (all with T rows).
struct RoutingStatisticsInputs {
  /// `[T,E]` f32 routed logits (noise included).
  Value logits;
  /// `[T,E]` f32 router scores (softmax or sigmoid of `logits`).
  Value scores;
  /// `[T,N]` i32 whose column 0 is each token's first choice: its top-ranked
  /// selection, before any dropping.
  Value firstChoice;
  /// `[T,C]` i32 assignments chosen before capacity dropping (-1: none), for
  /// `tokens_per_expert_before_drop` and `dropped_count`.
  Value chosenIds;
  /// `[T,C]` i32 final ids and f32 combine weights of the gate.
  Value ids;
  Value weights;
};

/// The results of `statistics`, in order, typed as moe.gate's statistics
/// results (docs/Routing.md).
SmallVector<Value> buildRoutingStatistics(OpBuilder &b, Location loc,
                                          RoutingAttr routing,
                                          ArrayRef<Statistic> statistics,
                                          const RoutingStatisticsInputs &in,
                                          int64_t numExperts);

} // namespace mlir::moe::lowering

#endif // MOE_LIB_CONVERSION_MOETOLINALG_GATELOWERING_H
