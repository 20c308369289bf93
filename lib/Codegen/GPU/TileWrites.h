//===- TileWrites.h - Where a GPU tile's sums go ----------------*- C++ -*-===//
//
// Internal to the GPU code generation: the small index and constant
// helpers the tile lowerings share, and the write of one output element of
// a grouped matmul tile (through its epilogue, added to its outputs, or
// scattered to the rows it combines into).
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_CODEGEN_GPU_TILEWRITES_H
#define MOE_LIB_CODEGEN_GPU_TILEWRITES_H

#include "moe/Dialect/MoE/IR/MoE.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/Builders.h"

namespace mlir::moe::gpu_codegen {

inline Value indexConstant(OpBuilder &b, Location loc, int64_t value) {
  return arith::ConstantIndexOp::create(b, loc, value);
}

inline Value f32Constant(OpBuilder &b, Location loc, float value) {
  return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(value));
}

/// `lhs < rhs` on unsigned indices.
inline Value lessThan(OpBuilder &b, Location loc, Value lhs, Value rhs) {
  return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, lhs, rhs);
}

/// min(index, bound - 1); bound >= 1 wherever the result is read.
Value clampBelow(OpBuilder &b, Location loc, Value index, Value bound);

/// The depth (K) a tile of `op` (memref form) multiplies over: what the
/// input and every weight hold.
Value depthBoundOf(OpBuilder &b, Location loc, GroupedMatmulOp op);

/// Writes the f32 sums of output element (`row`, `column`) of `op` (memref
/// form; one sum per weight, a paired op's two feed its epilogue): the
/// epilogue's value stored, or the sum added to the output, or, for a
/// scattering op, added times the row's scale to its target row.
void writeTileElement(OpBuilder &b, Location loc, GroupedMatmulOp op, Value row,
                      Value column, ArrayRef<Value> sums);

/// Whether `memref[row, column]` and `memref[row, column + 1]` are adjacent
/// and their pair is aligned to its size (i1): one vector access for both.
Value pairIsAlignedVector(OpBuilder &b, Location loc, Value memref, Value row,
                          Value column);

/// Writes output elements (`row`, `column`) and (`row`, `column` + 1) of
/// `op` (memref form) from their sums (`first`, `second`; one per weight)
/// as writeTileElement writes each, the second only where `secondInRange`:
/// one target lookup for both, and, where both are written, adjacent and
/// aligned, one vector store (and load, for adds) instead of two (atomic
/// adds by addScatteredPair, with `vectorReductions`).
void writeTilePair(OpBuilder &b, Location loc, GroupedMatmulOp op, Value row,
                   Value column, ArrayRef<Value> first, ArrayRef<Value> second,
                   Value secondInRange, bool vectorReductions);

/// For an `atomic` scattering `op` (memref form): adds the f32 sums of
/// elements (`row`, `column`) and (`row`, `column` + 1), times the row's
/// scale, to its target row by atomic adds, the second only where
/// `secondInRange`; with `vector`, both at once (`red.add.v2.f32`: sm_90,
/// PTX 8.1) where they are adjacent in memory and 8-byte aligned. A row
/// scattered nowhere adds nothing.
void addScatteredPair(OpBuilder &b, Location loc, GroupedMatmulOp op, Value row,
                      Value column, Value first, Value second,
                      Value secondInRange, bool vector);

} // namespace mlir::moe::gpu_codegen

#endif // MOE_LIB_CODEGEN_GPU_TILEWRITES_H
