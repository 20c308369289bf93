//===- InitAllDialects.h - Register the project's dialects ------*- C++ -*-===//

#ifndef MOE_INITALLDIALECTS_H
#define MOE_INITALLDIALECTS_H

#include "moe/Dialect/MoE/IR/MoE.h"
#include "moe/Dialect/MoE/Transforms/InterfaceModels.h"

#include "mlir/IR/DialectRegistry.h"

namespace mlir::moe {

/// Adds every dialect of this project to `registry`.
inline void registerAllDialects(DialectRegistry &registry) {
  registry.insert<MoeDialect>();
  registerTilingInterfaceExternalModels(registry);
  registerBufferizableOpInterfaceExternalModels(registry);
  registerValueBoundsOpInterfaceExternalModels(registry);
}

} // namespace mlir::moe

#endif // MOE_INITALLDIALECTS_H
