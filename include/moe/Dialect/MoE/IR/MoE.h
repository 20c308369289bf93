//===- MoE.h - MoE dialect --------------------------------------*- C++ -*-===//
//
// The `moe` dialect: its enums, attributes and operations.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_DIALECT_MOE_IR_MOE_H
#define MOE_DIALECT_MOE_IR_MOE_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MPI/IR/MPI.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/DestinationStyleOpInterface.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "moe/Dialect/MoE/IR/MoEDialect.h.inc"
#include "moe/Dialect/MoE/IR/MoEEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "moe/Dialect/MoE/IR/MoEAttrs.h.inc"

namespace mlir::moe {

/// Whether expert weights of element type `element` hold two e2m1
/// (f4E2M1FN) values per byte along their depth, the even one in the low
/// nibble: MXFP4 blocks. Such weights are `i8` and block-scaled; their last
/// dimension is `ceil(K / 2)`.
inline bool isE2M1Pairs(Type element) { return element.isInteger(8); }

/// The stored depth of a weight of logical depth `depth` (K, or K / 2
/// rounded up for e2m1 pairs); dynamic stays dynamic.
inline int64_t storedDepth(Type element, int64_t depth) {
  if (!isE2M1Pairs(element) || ShapedType::isDynamic(depth))
    return depth;
  return (depth + 1) / 2;
}

} // namespace mlir::moe

#define GET_OP_CLASSES
#include "moe/Dialect/MoE/IR/MoEOps.h.inc"

namespace mlir::moe {

/// Expert ids are i32, so no op may have more experts than this.
constexpr int64_t kMaxExperts = 2147483647;

/// The function-argument attribute naming the checkpoint tensor an entry
/// point's argument is bound to.
constexpr llvm::StringLiteral kWeightAttrName = "moe.weight";
/// The importance of each intermediate neuron of a dense FFN (a float array
/// on its moe.layer), which moe-dense-to-moe splits by.
constexpr llvm::StringLiteral kNeuronImportanceAttrName =
    "moe.neuron_importance";

/// The function-argument attribute of a weight stored in another format
/// than its type (docs/CompiledModules.md): `"mxfp4"`, a bf16 `[..., N, K]`
/// weight the runtime decodes from `<name>_blocks` and `<name>_scales`;
/// `"e8m0"`, an f32 tensor the checkpoint stores as U8 exponents (MXFP4
/// scales, `2^(s - 127)`).
constexpr llvm::StringLiteral kWeightFormatAttrName = "moe.weight_format";

/// The function-argument attribute of a packed weight: `{function =
/// @packing_function, shape = array<i64: ...>}`, the function that packs it
/// and the checkpoint shape it reads (moe-pack-expert-weights).
constexpr llvm::StringLiteral kPackingAttrName = "moe.packing";

/// The function-argument attribute of a weight that holds a rank's window
/// of experts (expert parallelism): `moe.expert_window = E`, the number of
/// experts of the checkpoint tensor, whose first dimension is the experts.
/// The argument's first dimension is the window, `ceil(E / R)` for the
/// module's `R` ranks (docs/ExpertParallelism.md).
constexpr llvm::StringLiteral kExpertWindowAttrName = "moe.expert_window";

/// The module attribute of a module that runs on MPI ranks (expert
/// parallelism, shard collectives): the size of MPI_COMM_WORLD it needs (an
/// i64).
constexpr llvm::StringLiteral kMPIRanksAttrName = "moe.mpi_ranks";

/// The placeholder of a weight name that stacks per-expert tensors.
constexpr llvm::StringLiteral kExpertPlaceholder = "{e}";

/// The f32 values of e2m1 codes: `codes` is an integer scalar or vector
/// whose low 4 bits are each a code (sign, two exponent bits, one mantissa
/// bit); higher bits are ignored. Integer arithmetic and selects, without
/// f32 subnormals (so flush-to-zero modes do not change it), so that
/// kernels decode vectors of codes the same way.
Value buildE2M1ToF32(OpBuilder &b, Location loc, Value codes);

/// The f32 value of element `depth` (index) of an e2m1 pair `byte` (i8):
/// its low nibble for even `depth`, its high nibble for odd.
Value buildE2M1PairElement(OpBuilder &b, Location loc, Value byte,
                           Value depth);

/// The tensor type a requested routing statistic has, for `numExperts`
/// experts.
RankedTensorType getStatisticType(MLIRContext *context, Statistic statistic,
                                  int64_t numExperts);

} // namespace mlir::moe

#endif // MOE_DIALECT_MOE_IR_MOE_H
