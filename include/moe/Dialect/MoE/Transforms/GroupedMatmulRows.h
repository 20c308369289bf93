//===- GroupedMatmulRows.h - Whole-depth sums of grouped matmul rows -*- C++
//-*-===//
//
// The scalar form of a moe.grouped_matmul point that needs whole sums (an
// epilogue, or a scatter whose row blocks run in parallel): each filled
// row's sums over all of K in registers, shared by the op's scalar
// implementation (TilingInterface) and the GPU's CUDA-core tiles.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_DIALECT_MOE_TRANSFORMS_GROUPEDMATMULROWS_H
#define MOE_DIALECT_MOE_TRANSFORMS_GROUPEDMATMULROWS_H

#include "moe/Dialect/MoE/IR/MoE.h"

#include "llvm/ADT/STLFunctionalExtras.h"

namespace mlir::moe {

/// Memref form of `op`: `input[source, depth]` as f32, or 0 where the row
/// has no source (`valid` false).
Value loadGroupedMatmulInput(OpBuilder &b, Location loc, GroupedMatmulOp op,
                             Value source, Value valid, Value depth);

/// Memref form of `op`: for each filled row of row block `block` whose
/// expert owns it, the f32 sums over K (as the input and every weight hold
/// it) of the row times column `column` of each weight, one per weight, in
/// registers, handed to `body` with the row.
void forEachRowSums(
    OpBuilder &b, Location loc, GroupedMatmulOp op, Value block, Value column,
    llvm::function_ref<void(OpBuilder &, Location, Value row, ValueRange sums)>
        body);

} // namespace mlir::moe

#endif // MOE_DIALECT_MOE_TRANSFORMS_GROUPEDMATMULROWS_H
