//===- ClusterPairs.h - Two CTAs of a thread block cluster ------*- C++ -*-===//
//
// Internal to moe-lower-grouped-matmul-to-wgmma: the NVVM pieces with which
// the two CTAs of a cluster share a tile's weight boxes (each loads half of
// a box for both by TMA multicast): their ranks, a rendezvous of all their
// threads, an mbarrier arrival in either CTA's shared memory, and the
// rendezvous on the paths of a kernel that do not reach a tile, so that
// every thread of both CTAs meets each rendezvous once.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_CODEGEN_GPU_CLUSTERPAIRS_H
#define MOE_LIB_CODEGEN_GPU_CLUSTERPAIRS_H

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/Builders.h"

namespace mlir::moe::gpu_codegen {

/// Whether `launch` runs thread block clusters of 2 x 1 x 1 CTAs.
bool launchesClustersOfTwo(gpu::LaunchOp launch);

/// Whether every op between `op` and its ancestor `around` (exclusive) is
/// an scf.if without results: then each CTA reaches `op` at most once per
/// run of `around`'s region, and every path that does not is a branch of
/// one of them.
bool onlyBranchesAround(Operation *op, Operation *around);

/// The CTA's rank in its cluster (i32).
Value clusterRank(OpBuilder &b, Location loc);

/// Every thread of the cluster arrives (releasing its writes) and waits
/// for all the others (acquiring theirs).
void syncCluster(OpBuilder &b, Location loc);

/// syncCluster at the start of each branch between `op` and `around`
/// (onlyBranchesAround) that does not lead to `op`, after `before`, so
/// that a CTA that skips it meets the rendezvous that the code at `op`
/// holds (an else branch is added where there is none).
void syncClusterWhereSkipped(Operation *op, Operation *around,
                             function_ref<void(OpBuilder &, Location)> before);

/// `pointer` (a shared::cta pointer) in the shared memory of the cluster's
/// CTA `rank` (i32): a shared::cluster pointer.
Value pointerInCta(OpBuilder &b, Location loc, Value pointer, Value rank);

/// `count` arrivals on the mbarrier at `pointer`: a shared::cta pointer
/// (this CTA's), or a shared::cluster one (releasing at cluster scope).
void arriveOn(OpBuilder &b, Location loc, Value pointer, int64_t count);

} // namespace mlir::moe::gpu_codegen

#endif // MOE_LIB_CODEGEN_GPU_CLUSTERPAIRS_H
