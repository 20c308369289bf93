//===- Communicator.h - The side-effect resource of collectives -*- C++ -*-===//
//
// Collectives (moe.all_to_all, a moe.layer under expert parallelism) read
// and write the MPI communicator: an effect that keeps them from being
// removed, merged, moved past each other or speculated.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_DIALECT_MOE_IR_COMMUNICATOR_H
#define MOE_DIALECT_MOE_IR_COMMUNICATOR_H

#include "mlir/Interfaces/SideEffectInterfaces.h"

namespace mlir::moe {

/// The communicator every rank of a collective takes part in.
struct CommunicatorResource
    : public SideEffects::Resource::Base<CommunicatorResource> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(CommunicatorResource)
  StringRef getName() final { return "MPI communicator"; }
};

/// Adds the read and the write of the communicator to `effects`.
inline void addCommunicatorEffects(
    SmallVectorImpl<SideEffects::EffectInstance<MemoryEffects::Effect>>
        &effects) {
  effects.emplace_back(MemoryEffects::Read::get(), CommunicatorResource::get());
  effects.emplace_back(MemoryEffects::Write::get(),
                       CommunicatorResource::get());
}

} // namespace mlir::moe

#endif // MOE_DIALECT_MOE_IR_COMMUNICATOR_H
