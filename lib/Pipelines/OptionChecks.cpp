//===- OptionChecks.cpp - The pipelines' options, checked before use ------===//
//
// What no pass of a pipeline checks: values the pipeline consumes itself or
// passes on only in some configurations, and options given (in the option
// string) that the lowering they select does not use. An option accepted
// and then ignored would leave its user believing it took effect, so each
// is refused with one line naming it and what it needs.
//
//===----------------------------------------------------------------------===//

#include "moe/Pipelines/Pipelines.h"

#include "CudaTarget.h"
#include "GivenOptions.h"

#include "llvm/ADT/STLExtras.h"

using namespace mlir;
using mlir::moe::given;

namespace {

/// The first option of `options` that was given, as its argument name.
template <typename... Options>
std::optional<StringRef> firstGiven(const Options &...options) {
  std::optional<StringRef> name;
  auto visit = [&](const auto &option) {
    if (!name && given(option))
      name = option.ArgStr;
  };
  (visit(options), ...);
  return name;
}

/// Checks an int64 option's lower bound.
template <typename Option>
LogicalResult atLeast(StringRef pipeline, const Option &option, int64_t least,
                      function_ref<void(const Twine &)> error) {
  int64_t value = option;
  if (value >= least)
    return success();
  error(pipeline + ": " + option.ArgStr + " must be at least " + Twine(least) +
        ", got " + Twine(value));
  return failure();
}

/// Refuses option `name`, given where `setting` makes the pipeline ignore
/// it.
LogicalResult ignoredUnder(StringRef pipeline, StringRef name,
                           const Twine &applies, const Twine &setting,
                           function_ref<void(const Twine &)> error) {
  error(pipeline + ": " + name + " applies to " + applies + ", which " +
        setting + " does not use");
  return failure();
}

} // namespace

LogicalResult
moe::checkLowerToCPUOptions(const LowerToCPUOptions &options,
                            function_ref<void(const Twine &)> error) {
  StringRef pipeline = "moe-lower-to-cpu";
  const LowerToCPUOptions &o = options;
  if (failed(atLeast(pipeline, o.ranks, 0, error)))
    return failure();
  if (o.reference) {
    if (std::optional<StringRef> name = firstGiven(
            o.blockRows, o.tileN, o.tileK, o.vectorWidth, o.tileRows,
            o.tileCols, o.packWeights, o.panelCols, o.panelRows, o.bf16Matmul,
            o.fp8ByteLookup, o.fuseCombine, o.fuseActivation, o.fuseRouting,
            o.tokenParallelRouting, o.openmp))
      return ignoredUnder(pipeline, *name, "the fast path",
                          "the reference lowering (reference=1)", error);
    return success();
  }
  if (!o.packWeights)
    if (std::optional<StringRef> name =
            firstGiven(o.panelCols, o.panelRows, o.bf16Matmul, o.fp8ByteLookup))
      return ignoredUnder(pipeline, *name, "packed weights", "pack-weights=0",
                          error);
  if (!o.fuseRouting)
    if (std::optional<StringRef> name = firstGiven(o.tokenParallelRouting))
      return ignoredUnder(pipeline, *name, "the fused routing",
                          "fuse-routing=0", error);
  return success();
}

LogicalResult
moe::checkLowerToCUDAOptions(const LowerToCUDAOptions &options,
                             function_ref<void(const Twine &)> error) {
  StringRef pipeline = "moe-lower-to-cuda";
  const LowerToCUDAOptions &o = options;
  // What the pipeline consumes itself, or passes on only to some passes.
  if (failed(atLeast(pipeline, o.multiprocessors, 0, error)) ||
      failed(atLeast(pipeline, o.maxGroupsInFlight, 1, error)) ||
      failed(atLeast(pipeline, o.persistent, 0, error)))
    return failure();
  // Both lowerings launch kernels: programmatic launches need sm_90's
  // griddepcontrol.
  std::string chip = kernelChip(o);
  if (given(o.programmaticLaunches) && o.programmaticLaunches &&
      !hasGridDependencyControl(chip, o.features)) {
    error(pipeline +
          ": programmatic-launches needs sm_90 or later and PTX "
          "7.8 or later (griddepcontrol), not chip " +
          chip + " with features '" + o.features + "'");
    return failure();
  }
  if (o.reference) {
    if (std::optional<StringRef> name = firstGiven(
            o.mma, o.multiprocessors, o.blockRows, o.tileN, o.singleTileN,
            o.narrowTileN, o.tileGroupRows, o.narrowInputsMinTokens,
            o.tensorCoreRouterMinTokens, o.persistent, o.cluster, o.asyncGather,
            o.eightRowStages, o.maxGroupsInFlight, o.fuseCombine,
            o.atomicCombine, o.fastEpilogueMath, o.fuseActivation,
            o.fuseRouting, o.tokenParallelRouting, o.laneRoutingMaxTokens,
            o.routingBlockSize))
      return ignoredUnder(pipeline, *name, "the fast path",
                          "the reference lowering (reference=1)", error);
    return success();
  }
  StringRef mma = o.mma == CudaMma::Sync               ? "mma=sync"
                  : o.mma == CudaMma::Wgmma            ? "mma=wgmma"
                  : o.mma == CudaMma::WgmmaSpecialized ? "mma=wgmma-specialized"
                                                       : "mma=wgmma-pingpong";
  if (o.mma == CudaMma::Sync)
    if (std::optional<StringRef> name =
            firstGiven(o.asyncGather, o.maxGroupsInFlight))
      return ignoredUnder(pipeline, *name, "the wgmma forms", mma, error);
  // Blocks of at most 8 filled rows take their own stages in the
  // one-warpgroup tiles only.
  if (o.mma != CudaMma::Wgmma)
    if (std::optional<StringRef> name = firstGiven(o.eightRowStages))
      return ignoredUnder(pipeline, *name, "mma=wgmma", mma, error);
  // Only the specialized tiles share weight boxes across a cluster.
  if (o.mma != CudaMma::WgmmaSpecialized && o.cluster != 1)
    return ignoredUnder(pipeline, o.cluster.ArgStr, "mma=wgmma-specialized",
                        mma, error);
  if (!o.fuseRouting)
    if (std::optional<StringRef> name =
            firstGiven(o.tokenParallelRouting, o.laneRoutingMaxTokens))
      return ignoredUnder(pipeline, *name, "the fused routing",
                          "fuse-routing=0", error);
  if (!o.tokenParallelRouting)
    if (std::optional<StringRef> name = firstGiven(o.laneRoutingMaxTokens))
      return ignoredUnder(pipeline, *name, "the token-parallel routing",
                          "token-parallel-routing=0", error);
  return success();
}
