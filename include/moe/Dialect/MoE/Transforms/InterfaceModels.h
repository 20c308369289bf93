//===- InterfaceModels.h - External interface models of moe ops -*- C++ -*-===//
//
// TilingInterface and BufferizableOpInterface of moe.grouped_matmul, and
// ValueBoundsOpInterface of moe.routing_plan, are attached as external
// models (as upstream Linalg does), so the dialect itself does not depend
// on SCF, bufferization or value bounds. Tools register them with the
// dialect; the dialect promises them and fails loudly when they are
// missing.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_DIALECT_MOE_TRANSFORMS_INTERFACEMODELS_H
#define MOE_DIALECT_MOE_TRANSFORMS_INTERFACEMODELS_H

namespace mlir {
class DialectRegistry;
} // namespace mlir

namespace mlir::moe {

/// TilingInterface for moe.grouped_matmul: domain row blocks x N x K.
void registerTilingInterfaceExternalModels(DialectRegistry &registry);

/// One-shot bufferization of moe.grouped_matmul (destination-passing).
void registerBufferizableOpInterfaceExternalModels(DialectRegistry &registry);

/// ValueBoundsOpInterface for moe.routing_plan (its sizes) and for
/// bufferization.alloc_tensor (which upstream does not model).
void registerValueBoundsOpInterfaceExternalModels(DialectRegistry &registry);

} // namespace mlir::moe

#endif // MOE_DIALECT_MOE_TRANSFORMS_INTERFACEMODELS_H
