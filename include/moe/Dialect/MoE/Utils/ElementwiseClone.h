//===- ElementwiseClone.h - Element-wise bodies on scalars or vectors -*- C++
//-*-===//
//
// Bodies of scalar element-wise ops (a linalg.generic's, a grouped matmul's
// epilogue) applied to whole vectors of elements by cloning each op with
// vector types, or to scalars as they are.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_DIALECT_MOE_UTILS_ELEMENTWISECLONE_H
#define MOE_DIALECT_MOE_UTILS_ELEMENTWISECLONE_H

#include "mlir/IR/Builders.h"

namespace mlir::moe {

/// Clones the ops of `body` before its terminator at the insertion point,
/// its arguments bound to `args` (null for an argument the body does not
/// use), and returns the values of the terminator's operands. With a
/// `vectorShape`, every op with operands is cloned on vectors of that shape
/// (`args` are such vectors; scalars the ops use, constants and values from
/// outside the body, are broadcast) and so are the results; without one,
/// the ops are cloned as they are. The body holds element-wise ops
/// (OpTrait::Elementwise) and constants. Math ops created on vectors are
/// appended to `vectorMath` when given (to be approximated by the caller).
SmallVector<Value>
cloneElementwiseBody(OpBuilder &b, Block &body, ValueRange args,
                     ArrayRef<int64_t> vectorShape,
                     SmallVectorImpl<Operation *> *vectorMath = nullptr);

} // namespace mlir::moe

#endif // MOE_DIALECT_MOE_UTILS_ELEMENTWISECLONE_H
