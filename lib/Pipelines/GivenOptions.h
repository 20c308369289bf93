//===- GivenOptions.h - Whether a pipeline option was given -----*- C++ -*-===//
//
// The pipelines choose some defaults by configuration and keep what the
// user gave; their option checks refuse options given that a configuration
// ignores. Both ask the same question of an option.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_PIPELINES_GIVENOPTIONS_H
#define MOE_LIB_PIPELINES_GIVENOPTIONS_H

namespace mlir::moe {

/// Whether an option was given in the option string (not only assigned by
/// a tool or left at its default).
template <typename Option> bool given(const Option &option) {
  return option.getNumOccurrences() > 0;
}

} // namespace mlir::moe

#endif // MOE_LIB_PIPELINES_GIVENOPTIONS_H
