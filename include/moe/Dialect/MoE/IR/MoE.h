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

#define GET_OP_CLASSES
#include "moe/Dialect/MoE/IR/MoEOps.h.inc"

namespace mlir::moe {

/// Expert ids are i32, so no op may have more experts than this.
constexpr int64_t kMaxExperts = 2147483647;

/// The function-argument attribute naming the checkpoint tensor an entry
/// point's argument is bound to.
constexpr llvm::StringLiteral kWeightAttrName = "moe.weight";

/// The function-argument attribute of a weight stored in another format
/// than its type: `"mxfp4"`, a bf16 `[..., N, K]` weight the runtime
/// decodes from `<name>_blocks` and `<name>_scales` (docs/CompiledModules.md).
constexpr llvm::StringLiteral kWeightFormatAttrName = "moe.weight_format";

/// The function-argument attribute of a packed weight: `{function =
/// @packing_function, shape = array<i64: ...>}`, the function that packs it
/// and the checkpoint shape it reads (moe-pack-expert-weights).
constexpr llvm::StringLiteral kPackingAttrName = "moe.packing";

/// The placeholder of a weight name that stacks per-expert tensors.
constexpr llvm::StringLiteral kExpertPlaceholder = "{e}";

/// The tensor type a requested routing statistic has, for `numExperts`
/// experts.
RankedTensorType getStatisticType(MLIRContext *context, Statistic statistic,
                                  int64_t numExperts);

} // namespace mlir::moe

#endif // MOE_DIALECT_MOE_IR_MOE_H
