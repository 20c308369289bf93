//===- InitAllPasses.h - Register every MoE pass and pipeline ---*- C++ -*-===//

#ifndef MOE_INITALLPASSES_H
#define MOE_INITALLPASSES_H

#include "moe/Codegen/CPU/Passes.h"
#include "moe/Codegen/GPU/Passes.h"
#include "moe/Conversion/Passes.h"
#include "moe/Dialect/MoE/Transforms/Passes.h"
#include "moe/Pipelines/Pipelines.h"

namespace mlir::moe {

inline void registerAllPasses() {
  registerMoEPasses();
  registerMoEConversionPasses();
  registerMoECPUCodegenPasses();
  registerMoEGPUCodegenPasses();
  registerMoEPipelines();
}

} // namespace mlir::moe

#endif // MOE_INITALLPASSES_H
