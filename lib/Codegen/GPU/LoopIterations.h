//===- LoopIterations.h - Iterations of scf.parallel loops -------*- C++
//-*-===//
//
// Internal to the GPU code generation: whether a loop holds matmul tiles,
// a parallel loop's trip counts and
// one of its iterations cloned elsewhere, from its indices or from a
// linear index (the last dimension fastest). A kernel runs a loop this way,
// one iteration per thread or block.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_CODEGEN_GPU_LOOPITERATIONS_H
#define MOE_LIB_CODEGEN_GPU_LOOPITERATIONS_H

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/Utils/MemRefUtils.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"

namespace mlir::moe::gpu_codegen {

/// Whether `op` holds a `moe.grouped_matmul` (matmul tiles).
bool holdsGroupedMatmul(Operation *op);

/// Whether `op` holds a `moe.grouped_matmul` of more than one expert (a
/// weight whose leading dimension is not 1): the routed experts'.
bool holdsGroupedMatmulOfExperts(Operation *op);

/// Whether `op` holds a `memref.alloc` or `memref.alloca` (in a parallel
/// loop: buffers of each iteration's own).
bool holdsAllocation(Operation *op);

/// What a memref that `scope` accesses is known to be, for telling buffers
/// apart: the allocation it views, or (for any argument of the function,
/// and a global it reads) the function's first argument, since a caller
/// may pass one buffer twice, or a global as an argument. Private: an
/// allocation inside `scope` (the iteration's own). Unknown: anything else (a
/// buffer control flow, a call or a region's argument yields), or a global that
/// `writes` would write.
struct BufferKey {
  enum Kind { Known, Private, Unknown } kind;
  Value buffer;
};
BufferKey classifyBuffer(MemrefValue memref, Operation *scope, bool writes);

/// The `gpu.all_reduce` operation of `combiner` when it is a commutative
/// and associative arith op of two operands with a neutral element (what
/// threads may combine partial results with in any grouping): `addf`,
/// `mulf`, `addi`, `muli`, the min and max ops, `andi`, `ori`, `xori`;
/// not `addi` or `muli` with overflow flags, nor `minnumf` or `maxnumf`
/// with `nnan`, which regrouping could make poison.
std::optional<gpu::AllReduceOperation> allReduceKind(Operation *combiner);

/// A new op like `combiner` (its name and attributes) of `lhs` and `rhs`.
Value cloneCombiner(OpBuilder &b, Location loc, Operation *combiner, Value lhs,
                    Value rhs);

/// The neutral element of such a combiner (allReduceKind): -0.0 for
/// `addf` (x + -0.0 is x, also for x = -0.0), else arith's.
TypedAttr neutralElement(Operation *combiner);

/// The trip counts of `loop`'s dimensions (0 for empty ranges).
SmallVector<Value> tripCounts(OpBuilder &b, Location loc,
                              scf::ParallelOp loop);

/// The product of `values` (1 for none).
Value product(OpBuilder &b, Location loc, ArrayRef<Value> values);

/// Clones the body of `loop` at `b` for the iteration whose indices (from
/// 0, in steps of 1) are `indices`; `mapping` then maps the body's values
/// to their clones.
void cloneBody(OpBuilder &b, Location loc, scf::ParallelOp loop,
               ArrayRef<Value> indices, IRMapping &mapping);
void cloneBody(OpBuilder &b, Location loc, scf::ParallelOp loop,
               ArrayRef<Value> indices);

/// Clones the body of `loop` at `b` for the iteration whose linear index
/// (row-major over `counts`) is `linear`.
void cloneIteration(OpBuilder &b, Location loc, scf::ParallelOp loop,
                    ArrayRef<Value> counts, Value linear, IRMapping &mapping);
void cloneIteration(OpBuilder &b, Location loc, scf::ParallelOp loop,
                    ArrayRef<Value> counts, Value linear);

} // namespace mlir::moe::gpu_codegen

#endif // MOE_LIB_CODEGEN_GPU_LOOPITERATIONS_H
