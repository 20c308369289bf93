//===- ManifestGlobal.h - The module manifest as a JSON global --*- C++ -*-===//
//
// Internal to MoETransforms. The manifest (docs/CompiledModules.md) lives in
// the NUL-terminated string global `moe_module_manifest`; moe-export-entries
// writes it and later passes that change an entry's signature amend it.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_DIALECT_MOE_TRANSFORMS_MANIFESTGLOBAL_H
#define MOE_LIB_DIALECT_MOE_TRANSFORMS_MANIFESTGLOBAL_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/JSON.h"

#include <optional>

namespace mlir::moe {

/// The module's manifest, std::nullopt when it has none; failure (with an
/// error on the global) when the global is not a JSON manifest.
FailureOr<std::optional<llvm::json::Value>> readManifest(ModuleOp module);

/// Writes `manifest` as the module's manifest global, replacing any.
void writeManifest(ModuleOp module, const llvm::json::Value &manifest);

/// The manifest's `"packing"` object of a weight packed by `function` from
/// the checkpoint shape `sourceShape`.
llvm::json::Object describePacking(StringRef function,
                                   ArrayRef<int64_t> sourceShape);

/// Whether argument `index` of entry `entry` is recorded as a weight.
bool isManifestWeight(const llvm::json::Value &manifest, StringRef entry,
                      unsigned index);

/// Records that argument `index` of `entry` now has shape `packedShape` and
/// is packed by `function` from `sourceShape`.
void recordPacking(llvm::json::Value &manifest, StringRef entry, unsigned index,
                   ArrayRef<int64_t> packedShape, StringRef function,
                   ArrayRef<int64_t> sourceShape);

} // namespace mlir::moe

#endif // MOE_LIB_DIALECT_MOE_TRANSFORMS_MANIFESTGLOBAL_H
