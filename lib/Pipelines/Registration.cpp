//===- Registration.cpp - The named MoE pipelines -------------------------===//

#include "moe/Pipelines/Pipelines.h"

#include "mlir/Pass/PassRegistry.h"

using namespace mlir;

void moe::registerMoEPipelines() {
  PassPipelineRegistration<LowerToCPUOptions>(
      "moe-lower-to-cpu",
      "Lower moe ops on tensors to the LLVM dialect for the CPU (fast path: "
      "tiled, vectorized grouped matmuls; reference=1: the reference "
      "lowering)",
      buildLowerToCPUPipeline);
  PassPipelineRegistration<LowerToCUDAOptions>(
      "moe-lower-to-cuda",
      "Lower moe ops on tensors to host code in the LLVM dialect launching "
      "CUDA kernels, embedded as a GPU binary (fast path: the tiled grouped "
      "matmuls on tensor cores; reference=1: the reference lowering)",
      buildLowerToCUDAPipeline);
}
