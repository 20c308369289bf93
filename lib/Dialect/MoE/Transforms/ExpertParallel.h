//===- ExpertParallel.h - Rows to their experts' ranks and back -*- C++ -*-===//
//
// Internal to MoETransforms: what moe-decompose builds for a layer with
// `expert_ranks` (expert parallelism over MPI_COMM_WORLD). The rows a rank
// dispatches go to the ranks owning their experts, which run them on their
// window of experts and send the results back.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_DIALECT_MOE_TRANSFORMS_EXPERTPARALLEL_H
#define MOE_LIB_DIALECT_MOE_TRANSFORMS_EXPERTPARALLEL_H

#include "moe/Dialect/MoE/IR/MoE.h"

namespace mlir::moe {

/// The rows a rank received for its experts, and what sends results back.
struct ExpertExchange {
  /// `[M, H]`: the rows of every rank for this rank's experts, in the order
  /// (source rank, expert, the source's row order).
  Value rows;
  /// `[M, 1]` i32: each received row's expert as an index into the rank's
  /// window of experts.
  Value windowIds;
  /// `[R]` i64 row counts sent to and received from each rank.
  Value sendCounts, recvCounts;
  /// The number of rows sent (index).
  Value sentRows;
  Value comm;
};

/// Sends the rows of `dispatch` (grouped layout, align 1, over all
/// `numExperts` experts) to the ranks owning their experts, `numRanks`
/// ranks owning contiguous ranges `[floor(r E / R), floor((r+1) E / R))`.
ExpertExchange buildExpertExchange(OpBuilder &b, Location loc,
                                   DispatchOp dispatch, int64_t numRanks);

/// Sends `results` (`[M, N]`, one row per received row, in their order)
/// back to the ranks the rows came from: `[sent rows, N]` in the order of
/// the dispatch's rows.
Value buildReturnExchange(OpBuilder &b, Location loc,
                          const ExpertExchange &exchange, Value results);

/// The first expert of the window of ceil(E / R) experts rank `rank` holds.
int64_t getExpertWindowStart(int64_t numExperts, int64_t numRanks,
                             int64_t rank);

} // namespace mlir::moe

#endif // MOE_LIB_DIALECT_MOE_TRANSFORMS_EXPERTPARALLEL_H
