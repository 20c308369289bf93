//===- BufferEffects.h - Memory effects of DPS ops on buffers ---*- C++ -*-===//
//
// Internal to the dialect: the ops in destination-passing style are pure on
// tensors; on buffers they read every memref operand and write `init`.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_DIALECT_MOE_IR_BUFFEREFFECTS_H
#define MOE_LIB_DIALECT_MOE_IR_BUFFEREFFECTS_H

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Operation.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

namespace mlir::moe::detail {

/// Adds a read of each memref operand of `op` and the write of `init`.
inline void addBufferEffects(
    Operation *op, OpOperand &init,
    SmallVectorImpl<SideEffects::EffectInstance<MemoryEffects::Effect>>
        &effects) {
  for (OpOperand &operand : op->getOpOperands()) {
    if (!llvm::isa<MemRefType>(operand.get().getType()))
      continue;
    effects.emplace_back(MemoryEffects::Read::get(), &operand,
                         SideEffects::DefaultResource::get());
    if (&operand == &init)
      effects.emplace_back(MemoryEffects::Write::get(), &operand,
                           SideEffects::DefaultResource::get());
  }
}

} // namespace mlir::moe::detail

#endif // MOE_LIB_DIALECT_MOE_IR_BUFFEREFFECTS_H
