//===- DotKernel.h - Register-tiled dot-product matmul kernel ---*- C++ -*-===//
//
// Internal to MoECPUCodegen. The micro-kernel both the grouped matmul and
// plain `A * B^T` matmuls lower to: a run of output rows, split into
// register tiles of MR x NR outputs, each output a vector<VW x f32>
// accumulator over the reduction dimension that both operands are read
// along (contiguously):
//
//   for n0 in columns step NR:  for m0 in rows step MR:
//     acc[MR][NR] = 0
//     for k in 0..K step VW:                         (remainder: padded read)
//       a[i] = input[row0 + m0 + i, k:k+VW]
//       w[j] = weight[prefix..., n0 + j, k:k+VW]
//       acc[i][j] = fma(a[i], w[j], acc[i][j])
//     out[row0 + m0 + i, n0 : n0 + NR] += lane sums of acc[i][0 .. NR)
//
// MR + NR loads feed MR * NR FMAs. Weights of bf16 or f16 are widened in
// registers. When NR is a power of two up to VW, the NR lane sums of a tile
// row come out of pairwise halving as one vector (sumLanesTransposed), added
// to the NR contiguous outputs at once; otherwise each output is reduced on
// its own.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_CODEGEN_CPU_DOTKERNEL_H
#define MOE_LIB_CODEGEN_CPU_DOTKERNEL_H

#include "mlir/IR/Builders.h"

#include <functional>

namespace mlir::moe::cpu {

/// The register tile of the kernel.
struct KernelShape {
  /// f32 lanes per accumulator.
  int64_t vectorWidth;
  /// Rows (MR) and columns (NR) of a register tile.
  int64_t tileRows;
  int64_t tileCols;
};

/// Size `d` of `memref` as an index value (a constant when static).
Value memrefDim(OpBuilder &b, Location loc, Value memref, int64_t d);

/// The smaller of two index values (unsigned). The kernels' callers clamp
/// every extent to all buffers that have it: a dynamic mismatch the
/// verifier could not see shrinks the work, it never reads or writes past a
/// buffer.
Value minIndex(OpBuilder &b, Location loc, Value x, Value y);

/// Whether `shape` is usable; otherwise `error` says why, naming `pass`.
LogicalResult verifyKernelShape(const KernelShape &shape, StringRef pass,
                                std::string &error);

/// The input row an output row reads, and whether it is one (i1; a row
/// that is none contributes zeros). Given a kernel, rows are gathered
/// (moe.grouped_matmul's row_sources); without one, output row r reads
/// input row r.
using RowSource =
    std::function<std::pair<Value, Value>(OpBuilder &, Location, Value)>;

/// Where an output row goes: the row of the output it adds to (clamped into
/// the output), its scale (f32) and whether it adds anywhere (i1). Given a
/// kernel, rows are scattered (moe.grouped_matmul's scatter_rows); without
/// one, output row r adds to row r unscaled.
using RowTarget = std::function<std::tuple<Value, Value, Value>(
    OpBuilder &, Location, Value)>;

/// Loop and constant helpers the kernel emitters share.
class KernelBuilder {
public:
  KernelBuilder(OpBuilder &b, Location loc) : b(b), loc(loc) {}

  Value constant(int64_t v);
  /// `scf.for iv = lb to ub step step { body(iv) }`.
  void forLoop(Value lb, Value ub, int64_t step,
               function_ref<void(Value)> body);
  /// Gather the input rows through `source` (see RowSource).
  void setRowSource(RowSource source) { rowSource = std::move(source); }
  /// Scatter the output rows through `target` (see RowTarget).
  void setRowTarget(RowTarget target) { rowTarget = std::move(target); }
  /// Write each output element as `epilogue(sums..., old)` (a grouped
  /// matmul's epilogue: one sum per weight, then the element) instead of
  /// adding the sum to it. Math ops it creates on vectors are appended to
  /// `vectorMath`.
  void setEpilogue(Block *body, SmallVectorImpl<Operation *> *math) {
    epilogue = body;
    vectorMath = math;
  }

protected:
  Value add(Value x, Value y);
  /// For output rows `first + i`, i < count: the input row each reads and
  /// whether it is one (null: always).
  SmallVector<std::pair<Value, Value>> inputRows(Value first, int64_t count);
  /// `value` where `valid` (null: always), zeros elsewhere.
  Value keepValid(Value valid, Value value);
  /// Scales a row's sums before they are added to its output row.
  using Scale = function_ref<Value(Value)>;
  /// Emits the write-back of output row `row` through `body(outputRow,
  /// scale)`: with a row target inside an `scf.if` on whether the row adds
  /// anywhere (so that nothing is touched otherwise) and `scale` multiplying
  /// by the row's scale; without one, row `row` itself, `scale` the
  /// identity.
  void writeBack(Value row, function_ref<void(Value, Scale)> body);
  /// The new value of output elements (a vector or a scalar) from their
  /// `sums`, one per weight: `readOld() + scale(sums[0])`, or the epilogue
  /// of the sums and `readOld()` (called only if the epilogue reads it).
  Value combine(ArrayRef<Value> sums, function_ref<Value()> readOld,
                Scale scale);
  /// Output elements (r, c) as f32: a vector of `f32Type` (null: one
  /// element) read from `output`, whose elements an epilogue may write in
  /// bf16 or f16 (widened here).
  Value readOutput(Value output, Value r, Value c, VectorType f32Type,
                   bool inBounds);
  /// Writes the f32 `value` (a vector or one element) at (r, c), rounded to
  /// the output's element type.
  void writeOutput(Value value, Value output, Value r, Value c, bool inBounds);

  OpBuilder &b;
  Location loc;
  RowSource rowSource;
  RowTarget rowTarget;
  Block *epilogue = nullptr;
  SmallVectorImpl<Operation *> *vectorMath = nullptr;
};

/// Emits kernels at the builder's insertion point. `input` is an f32
/// `[M, K]` memref, `weights` one or more float memrefs of one type whose
/// last two dimensions are `[N, K]` (leading ones indexed by the caller's
/// prefix), `output` an f32 `[M, N]` memref the products are added to (or,
/// with an epilogue, the sums of all weights combined into); `depth` is K,
/// read as is (the caller clamps it to every operand). Two weights need
/// twice the accumulators of one: the caller halves the tile.
class DotKernelEmitter : public KernelBuilder {
public:
  DotKernelEmitter(OpBuilder &b, Location loc, KernelShape shape, Value input,
                   ValueRange weights, Value output, Value depth);

  /// out[firstRow + i, c] += sum_k input[firstRow + i, k] *
  /// weight[prefix, c, k] for i < rows and firstColumn <= c < endColumn.
  void emitRows(Value firstRow, Value rows, Value firstColumn, Value endColumn,
                ValueRange weightPrefix);

private:
  Value read(Value memref, SmallVector<Value> indices, bool inBounds);
  SmallVector<Value> step(ArrayRef<std::pair<Value, Value>> rows, Value column,
                          int64_t mr, int64_t nr, Value k, ValueRange acc,
                          bool inBounds);
  void emitTile(Value row, Value column, int64_t mr, int64_t nr);
  Value sumLanesTransposed(ArrayRef<Value> accumulators);

  KernelShape shape;
  Value input, output, depth;
  SmallVector<Value, 2> weights;
  Type f32;
  Value zero, mainDepth, firstRow;
  SmallVector<Value> prefix;
  bool hasDepthRemainder = true;
};

} // namespace mlir::moe::cpu

#endif // MOE_LIB_CODEGEN_CPU_DOTKERNEL_H
