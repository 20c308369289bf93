//===- BF16Terms.h - f32 values as sums of exact bf16 terms -----*- C++ -*-===//
//
// Internal to the GPU code generation: how the tensor-core tiles of a
// grouped matmul with exact products split their f32 (or f16) rows into
// bf16 terms, whose products with bf16 weights are exact in f32.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_CODEGEN_GPU_BF16TERMS_H
#define MOE_LIB_CODEGEN_GPU_BF16TERMS_H

#include "moe/Dialect/MoE/IR/MoE.h"

#include "mlir/IR/Builders.h"

namespace mlir::moe::gpu_codegen {

/// The bf16 terms the rows of `op` are split into on bf16 tensor cores: 3
/// for f32 rows and 2 for f16 ones with exact products, else 1 (rounded,
/// or bf16 rows).
int64_t bf16TermsOf(GroupedMatmulOp op);

/// The `terms` bf16 terms of `value` (f32, or a vector of f32), as f32
/// values that bf16 holds exactly and whose sum is `value`: its upper 8
/// significand bits, the next 8, and the rest (an infinite value is its
/// first term, the others zero; bits of subnormals below 2^-133 are lost).
SmallVector<Value, 3> splitIntoBF16Terms(OpBuilder &b, Location loc,
                                         Value value, int64_t terms);

/// The bf16 (or vector of bf16) whose bits are the upper 16 of `term`:
/// `term` itself, exactly, subnormals included (which a rounding
/// conversion might flush).
Value bf16OfTerm(OpBuilder &b, Location loc, Value term);

} // namespace mlir::moe::gpu_codegen

#endif // MOE_LIB_CODEGEN_GPU_BF16TERMS_H
