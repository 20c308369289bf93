//===- ParserCrashGuard.h - Parses that crash LLVM --------------*- C++ -*-===//
//
// Included by the tools that parse MLIR text (moe-opt, moe-compile). LLVM
// 22's parsers of some upstream ops report an error and then go on with the
// null attribute it left (linalg.transpose's `permutation = [0, x]`,
// linalg.broadcast's and linalg.reduce's `dimensions`), and crash. Before a
// tool parses its input for real, it parses a copy under LLVM's crash
// recovery: if that parse crashes, the tool prints the errors reported
// before the crash and exits 1, as for any other parse error.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_TOOLS_PARSERCRASHGUARD_H
#define MOE_TOOLS_PARSERCRASHGUARD_H

#include "mlir/IR/Block.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Support/ToolUtilities.h"

#include "llvm/Support/CrashRecoveryContext.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <csignal>
#include <cstdlib>
#include <string>

namespace moe::tools {

/// Parses each chunk of `input` (split at `splitMarker`, when not empty, as
/// the tool will) in a context of its own, without verifying it, under
/// crash recovery. When a parse reports an error and then faults
/// (SIGSEGV, SIGBUS), prints the diagnostics it reported and ends the
/// process with exit code 1 at once: what the crashed parse allocated is
/// reachable only from its lost stack, so neither destructors nor a leak
/// check may run. Any other crash is raised again. Otherwise returns,
/// whatever the parse found (the tool's own parse reports it).
inline void exitIfParserCrashes(const llvm::MemoryBuffer &input,
                                const mlir::DialectRegistry &registry,
                                bool allowUnregisteredDialects,
                                llvm::StringRef splitMarker,
                                llvm::StringRef tool) {
  auto parseChunk = [&](std::unique_ptr<llvm::MemoryBuffer> chunk,
                        llvm::raw_ostream &) {
    mlir::MLIRContext context(registry, mlir::MLIRContext::Threading::DISABLED);
    context.allowUnregisteredDialects(allowUnregisteredDialects);
    llvm::SourceMgr sourceMgr;
    sourceMgr.AddNewSourceBuffer(std::move(chunk), llvm::SMLoc());
    std::string diagnostics;
    llvm::CrashRecoveryContext recovery;
    bool finished = recovery.RunSafely([&] {
      llvm::raw_string_ostream stream(diagnostics);
      mlir::SourceMgrDiagnosticHandler handler(sourceMgr, &context, stream);
      mlir::Block block;
      (void)mlir::parseSourceFile(
          sourceMgr, &block,
          mlir::ParserConfig(&context, /*verifyAfterParse=*/false));
    });
    if (!finished) {
      llvm::errs() << diagnostics;
      // The known upstream defect: a segmentation fault after an error.
      // Any other crash (an assertion, a sanitizer's report, a fault with
      // no error before it) is raised again, so that it stays a crash.
      int fault = recovery.RetCode - 128;
      if (!diagnostics.empty() && (fault == SIGSEGV || fault == SIGBUS)) {
        llvm::errs().flush();
        std::_Exit(EXIT_FAILURE);
      }
      llvm::errs() << tool << ": the MLIR parser crashed on this input\n";
      llvm::CrashRecoveryContext::Disable();
      llvm::CrashRecoveryContext::throwIfCrash(recovery.RetCode);
      std::_Exit(EXIT_FAILURE);
    }
    return mlir::success();
  };
  llvm::CrashRecoveryContext::Enable();
  std::string discarded;
  llvm::raw_string_ostream discardedStream(discarded);
  (void)mlir::splitAndProcessBuffer(
      llvm::MemoryBuffer::getMemBufferCopy(input.getBuffer(),
                                           input.getBufferIdentifier()),
      parseChunk, discardedStream, splitMarker, /*outputSplitMarker=*/"");
  // Crashes past the parse are the tool's own: reported as crashes.
  llvm::CrashRecoveryContext::Disable();
}

} // namespace moe::tools

#endif // MOE_TOOLS_PARSERCRASHGUARD_H
