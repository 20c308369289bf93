//===- ToolVersion.h - --version of the MLIR-based tools --------*- C++ -*-===//
//
// Included by the main file of moe-opt and moe-compile: `--version` prints the
// project's version (moe/Version.h) and the LLVM/MLIR it was built on,
// instead of LLVM's own banner.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TOOLS_TOOLVERSION_H
#define MOE_TOOLS_TOOLVERSION_H

#include "moe/Version.h"

#include "llvm/Config/llvm-config.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/raw_ostream.h"

namespace moe::tools {

/// Makes `--version` print "<tool> (MoE-MLIR) <version>" and the LLVM/MLIR
/// version; call before the command line is parsed.
inline void setVersionPrinter() {
  llvm::cl::SetVersionPrinter([](llvm::raw_ostream &os) {
    os << "MoE-MLIR version " MOE_VERSION_STRING "\n"
       << "  built with LLVM/MLIR " LLVM_VERSION_STRING "\n";
  });
}

} // namespace moe::tools

#endif // MOE_TOOLS_TOOLVERSION_H
