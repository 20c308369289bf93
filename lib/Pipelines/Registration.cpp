//===- Registration.cpp - The named MoE pipelines -------------------------===//

#include "moe/Pipelines/Pipelines.h"

#include "mlir/Pass/PassRegistry.h"

using namespace mlir;

/// Registers pipeline `arg` built by `build` from its parsed options, once
/// `check` accepts them (PassPipelineRegistration, with the check).
template <typename Options>
static void registerCheckedPipeline(
    StringRef arg, StringRef description,
    void (*build)(OpPassManager &, const Options &),
    LogicalResult (*check)(const Options &,
                           function_ref<void(const Twine &)>)) {
  registerPassPipeline(
      arg, description,
      [build, check](OpPassManager &pm, StringRef text,
                     function_ref<LogicalResult(const Twine &)> onError) {
        Options options;
        if (failed(options.parseFromString(text)))
          return failure();
        if (failed(check(options, [&](const Twine &message) {
              (void)onError(message);
            })))
          return failure();
        build(pm, options);
        return success();
      },
      [](function_ref<void(const detail::PassOptions &)> optionsHandler) {
        optionsHandler(Options());
      });
}

void moe::registerMoEPipelines() {
  registerCheckedPipeline<LowerToCPUOptions>(
      "moe-lower-to-cpu",
      "Lower moe ops on tensors to the LLVM dialect for the CPU (fast path: "
      "tiled, vectorized grouped matmuls; reference=1: the reference "
      "lowering)",
      buildLowerToCPUPipeline, checkLowerToCPUOptions);
  registerCheckedPipeline<LowerToCUDAOptions>(
      "moe-lower-to-cuda",
      "Lower moe ops on tensors to host code in the LLVM dialect launching "
      "CUDA kernels, embedded as a GPU binary (fast path: the tiled grouped "
      "matmuls on tensor cores; reference=1: the reference lowering)",
      buildLowerToCUDAPipeline, checkLowerToCUDAOptions);
}
