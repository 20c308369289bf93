//===- Passes.h - MoE dialect passes ----------------------------*- C++ -*-===//

#ifndef MOE_DIALECT_MOE_TRANSFORMS_PASSES_H
#define MOE_DIALECT_MOE_TRANSFORMS_PASSES_H

#include "moe/Dialect/MoE/IR/MoE.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Interfaces/ViewLikeInterface.h"
#include "mlir/Pass/Pass.h"

namespace mlir::moe {

#define GEN_PASS_DECL
#include "moe/Dialect/MoE/Transforms/Passes.h.inc"

/// Adds the pattern that rewrites moe.layer into gate, dispatch,
/// expert_matmul and combine (what moe-decompose applies).
void populateMoEDecomposePatterns(RewritePatternSet &patterns,
                                  int64_t rowAlign);

/// The iteration domain of `op` (memref form) that its operands hold: row
/// blocks clamped to the whole blocks of its rows and outputs, columns and
/// depth to those of every weight. What a loop nest around the op's scalar
/// implementation (or a GPU lowering) covers.
SmallVector<Range> getComputedDomain(OpBuilder &b, GroupedMatmulOp op);

/// Marks `module` as running on `ranks` ranks of MPI_COMM_WORLD
/// (`moe.mpi_ranks`, recorded in the manifest) and, unless it has a DLTI
/// map, as calling `library`'s ABI ("OpenMPI" or "MPICH"; the DLTI entry
/// "MPI:Implementation" the MPI lowerings read). Fails, with an error on
/// the module, when it is marked for another number of ranks.
LogicalResult markMPIWorld(ModuleOp module, int64_t ranks, StringRef library);

/// The MPI library whose ABI `module`'s MPI calls follow: its DLTI entry
/// "MPI:Implementation", MPICH without one (as the MPI dialect's lowering
/// reads it).
StringRef getMPILibrary(ModuleOp module);

/// Checks that every moe.layer with `expert_ranks` under `root` is in a
/// module marked for as many MPI ranks (`moe.mpi_ranks`): the world the
/// runtime checks on load is then the layers'. Errors on the layer.
LogicalResult verifyExpertParallelLayers(Operation *root);

#define GEN_PASS_REGISTRATION
#include "moe/Dialect/MoE/Transforms/Passes.h.inc"

} // namespace mlir::moe

#endif // MOE_DIALECT_MOE_TRANSFORMS_PASSES_H
