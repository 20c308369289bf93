//===- LoweringUtils.h - Scalar and loop helpers for MoE lowering -*- C++ -*-===//
//
// Small builders shared by the moe-to-linalg patterns: index and float
// constants, scf.for loops with tensor loop-carried values, the total order
// used by every top-k selection, and 2-D linalg.generic helpers.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_CONVERSION_MOETOLINALG_LOWERINGUTILS_H
#define MOE_LIB_CONVERSION_MOETOLINALG_LOWERINGUTILS_H

#include "mlir/Dialect/Utils/StructuredOpsUtils.h"
#include "mlir/IR/Builders.h"

namespace mlir::moe::lowering {

/// An `index` constant.
Value indexConstant(OpBuilder &b, Location loc, int64_t value);

/// An f32 constant.
Value f32Constant(OpBuilder &b, Location loc, double value);

/// Body of a counted loop: the induction variable and the loop-carried values
/// in, the next loop-carried values out.
using LoopBody = function_ref<SmallVector<Value>(OpBuilder &, Location,
                                                 Value iv, ValueRange carried)>;

/// `scf.for iv = lb to ub step 1` carrying `init`; returns the final values.
SmallVector<Value> buildLoop(OpBuilder &b, Location loc, Value lb, Value ub,
                             ValueRange init, LoopBody body);

/// `scf.if cond` returning `thenBody()` or `elseValues`.
SmallVector<Value> buildIf(OpBuilder &b, Location loc, Value cond,
                           function_ref<SmallVector<Value>(OpBuilder &,
                                                           Location)>
                               thenBody,
                           ValueRange elseValues);

/// True when `(aScore, aIndex)` ranks before `(bScore, bIndex)` in the order
/// of every top-k selection: higher score first, NaN above every number, ties
/// (equal scores, or two NaNs) to the lower index. Indices are `index` values.
Value ranksBefore(OpBuilder &b, Location loc, Value aScore, Value aIndex,
                  Value bScore, Value bIndex);

/// One step of the one-pass top-K selection: `kept` holds the K best
/// (score, index) pairs seen so far in the order of ranksBefore, best first
/// (the K scores, then the K indices; index -1 marks an empty place). When
/// `eligible` (i1) and (score, index) ranks before the K-th, the pair
/// enters and bubbles into place. Returns the next 2K values.
SmallVector<Value> buildTopKInsertion(OpBuilder &b, Location loc,
                                      ValueRange kept, Value score, Value index,
                                      Value eligible);

/// Element `at` of an integer tensor (or of an f32 tensor holding integers)
/// as an `index`.
Value readIndex(OpBuilder &b, Location loc, Value tensor, ValueRange at);

/// A `[rows, columns]` tensor.empty of `type`.
Value buildEmptyRows(OpBuilder &b, Location loc, OpFoldResult rows,
                     int64_t columns, Type type);

/// `tensor` cast to `type` (a tensor type with the same element type that
/// may be more or less static), or `tensor` itself when it has that type.
Value castToType(OpBuilder &b, Location loc, Value tensor, Type type);

/// `0 <= value < bound` for `index` values.
Value isInRange(OpBuilder &b, Location loc, Value value, Value bound);

/// A `[rows, cols]` tensor of `elementType` whose element (i, j) is
/// `body(i, j)`: a linalg.generic with `linalg.index` ops. `rowsSource`
/// provides the (possibly dynamic) row count as its dimension 0.
using ElementBody =
    function_ref<Value(OpBuilder &, Location, Value row, Value col)>;
Value buildTensorFromIndices(OpBuilder &b, Location loc, Value rowsSource,
                             OpFoldResult cols, Type elementType,
                             ElementBody body);

/// A `[size]` tensor of `elementType` whose element i is `body(i)`.
using VectorBody = function_ref<Value(OpBuilder &, Location, Value index)>;
Value buildVectorFromIndices(OpBuilder &b, Location loc, OpFoldResult size,
                             Type elementType, VectorBody body);
/// The same written into `init` (a `[size]` tensor whose values are not
/// read: a buffer to reuse).
Value buildVectorFromIndices(OpBuilder &b, Location loc, Value init,
                             VectorBody body);

/// Body of a row-parallel loop: the row index and, for each output, the
/// row's `[1, C]` slice (to be written in place) in; the new rows out.
using RowsBody = function_ref<SmallVector<Value>(OpBuilder &, Location,
                                                 Value row,
                                                 ValueRange destinations)>;

/// An scf.forall over `rows` rows of the rank-2 `inits`: iteration r gets
/// row r of each init and yields it back, written with
/// tensor.parallel_insert_slice (in place after bufferization). Returns the
/// updated tensors. For per-token work whose tokens are independent (top-k,
/// gathers, combines): the iterations run on threads where the pipeline
/// makes foralls parallel.
SmallVector<Value> buildRowParallel(OpBuilder &b, Location loc,
                                    OpFoldResult rows, ValueRange inits,
                                    RowsBody body);

/// Reduces each row of a `[T, N]` f32 tensor to one value: `[T]`, starting
/// from `init` and folding with `combine(accumulator, element)`.
using Combiner = function_ref<Value(OpBuilder &, Location, Value, Value)>;
Value buildRowReduction(OpBuilder &b, Location loc, Value input, double init,
                        Combiner combine);

} // namespace mlir::moe::lowering

#endif // MOE_LIB_CONVERSION_MOETOLINALG_LOWERINGUTILS_H
