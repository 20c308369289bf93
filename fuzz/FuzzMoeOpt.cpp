//===- FuzzMoeOpt.cpp - Fuzzing the MLIR parser with the moe dialect ------===//
//
// What `moe-opt` does first with its input: parse arbitrary bytes as MLIR
// with the moe dialect (and the upstream dialects its IR uses) and run every
// verifier. Invariants: a rejected input reports at least one error
// diagnostic; an accepted module, printed in the generic form and parsed
// again, verifies and prints the same (the round trip the round-trip tests
// rely on).
//
//===----------------------------------------------------------------------===//

#include "FuzzSupport.h"

#include "moe/InitAllDialects.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OperationSupport.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"

#include "llvm/Support/raw_ostream.h"

using namespace mlir;

// LLVM's BumpPtrAllocator poisons its slabs in instrumented code (this
// harness, the dialect) but not in the uninstrumented libMLIR.so that shares
// them, which would read as use-after-poison.
extern "C" const char *__asan_default_options() {
  return "allow_user_poisoning=0";
}

namespace {

std::string print(Operation *op) {
  std::string text;
  llvm::raw_string_ostream os(text);
  op->print(os, OpPrintingFlags().printGenericOpForm());
  return text;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static DialectRegistry *registry = [] {
    auto *r = new DialectRegistry();
    r->insert<func::FuncDialect, arith::ArithDialect, tensor::TensorDialect>();
    mlir::moe::registerAllDialects(*r);
    return r;
  }();
  MLIRContext context(*registry, MLIRContext::Threading::DISABLED);
  context.loadAllAvailableDialects();
  unsigned errors = 0;
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
    if (diag.getSeverity() == DiagnosticSeverity::Error)
      ++errors;
    return success();
  });

  // MLIR's lexer stops at a NUL terminator, which every buffer moe-opt
  // reads (a file's MemoryBuffer) has; std::string gives the copy one.
  std::string text(reinterpret_cast<const char *>(data), size);
  OwningOpRef<ModuleOp> module =
      parseSourceString<ModuleOp>(text, ParserConfig(&context));
  if (!module) {
    FUZZ_CHECK(errors > 0, "parse failed without an error diagnostic");
    return 0;
  }
  // parseSourceString verifies; a module it returns is valid.
  FUZZ_CHECK(errors == 0, "a parsed module came with an error diagnostic");
  std::string printed = print(module->getOperation());
  OwningOpRef<ModuleOp> again =
      parseSourceString<ModuleOp>(printed, ParserConfig(&context));
  FUZZ_CHECK(again, "the printed module does not parse again:\n" + printed);
  FUZZ_CHECK(succeeded(verify(again->getOperation())),
             "the printed module does not verify");
  FUZZ_CHECK(print(again->getOperation()) == printed,
             "the round trip changed the module");
  return 0;
}
