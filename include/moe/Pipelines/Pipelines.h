//===- Pipelines.h - MoE lowering pipelines ---------------------*- C++ -*-===//
//
// Named pipelines from moe ops on tensors down to the LLVM dialect, each
// driven by one options struct (as upstream's sparsifier pipeline).
//
//===----------------------------------------------------------------------===//

#ifndef MOE_PIPELINES_PIPELINES_H
#define MOE_PIPELINES_PIPELINES_H

#include "mlir/Pass/PassOptions.h"

namespace mlir {
class OpPassManager;
} // namespace mlir

namespace mlir::moe {

/// Options of `--moe-lower-to-cpu`.
struct LowerToCPUOptions : public PassPipelineOptions<LowerToCPUOptions> {
  PassOptions::Option<int64_t> rowAlign{
      *this, "row-align",
      llvm::cl::desc("Pad each expert's dispatched rows to a multiple of this "
                     "many rows (moe-decompose row-align)"),
      llvm::cl::init(1)};
  PassOptions::Option<bool> cInterface{
      *this, "c-interface",
      llvm::cl::desc("Export public functions as entry points: C interface "
                     "wrappers and the moe_module_manifest global "
                     "(moe-export-entries); what the runtime loads"),
      llvm::cl::init(true)};
};

/// Builds the CPU pipeline: moe ops on tensors to the LLVM dialect.
void buildLowerToCPUPipeline(OpPassManager &pm,
                             const LowerToCPUOptions &options);

/// Registers `--moe-lower-to-cpu`.
void registerMoEPipelines();

} // namespace mlir::moe

#endif // MOE_PIPELINES_PIPELINES_H
