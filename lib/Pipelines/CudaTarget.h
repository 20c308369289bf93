//===- CudaTarget.h - What a CUDA chip and PTX version allow ----*- C++ -*-===//
//
// The CUDA pipeline's questions about its target, shared by the pipeline
// and the check of its options.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_PIPELINES_CUDATARGET_H
#define MOE_LIB_PIPELINES_CUDATARGET_H

#include "moe/Pipelines/Pipelines.h"

#include "llvm/ADT/StringRef.h"

#include <string>

namespace mlir::moe {

/// Whether PTX `features` allow PTX version `least` (as 78 for 7.8): the
/// version the features name, if any, else the toolkit's default, which
/// is later than any this pipeline asks for.
inline bool ptxAtLeast(llvm::StringRef features, unsigned least) {
  size_t ptx = features.find("+ptx");
  if (ptx == llvm::StringRef::npos)
    return true;
  llvm::StringRef named = features.drop_front(ptx + 4);
  unsigned ptxVersion = 0;
  return !named.consumeInteger(10, ptxVersion) && ptxVersion >= least;
}

/// Whether code for `chip` with PTX `features` may use griddepcontrol
/// (sm_90 and PTX 7.8 or later).
inline bool hasGridDependencyControl(llvm::StringRef chip,
                                     llvm::StringRef features) {
  unsigned version = 0;
  if (!chip.consume_front("sm_") || chip.consumeInteger(10, version) ||
      version < 90)
    return false;
  return ptxAtLeast(features, 78);
}

/// The chip the kernels are compiled for: as given, else sm_90a for the
/// wgmma forms (their instructions are sm_90a's), else the option's
/// default.
inline std::string kernelChip(const LowerToCUDAOptions &options) {
  if (options.mma != CudaMma::Sync && options.chip.getNumOccurrences() == 0)
    return "sm_90a";
  return options.chip;
}

} // namespace mlir::moe

#endif // MOE_LIB_PIPELINES_CUDATARGET_H
