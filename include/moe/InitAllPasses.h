//===- InitAllPasses.h - Register the project's passes ----------*- C++ -*-===//

#ifndef MOE_INITALLPASSES_H
#define MOE_INITALLPASSES_H

#include "moe/Dialect/MoE/Transforms/Passes.h"

namespace mlir::moe {

/// Registers every pass and pipeline of this project with the global registry.
inline void registerAllPasses() { registerMoEPasses(); }

} // namespace mlir::moe

#endif // MOE_INITALLPASSES_H
