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

#include "llvm/ADT/StringRef.h"
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

/// Whether `text` may reach a crash in LLVM 22's own parsers rather than
/// ours: linalg.transpose, linalg.broadcast and linalg.reduce parse their
/// `permutation = [..]` / `dimensions = [..]` with DenseI64ArrayAttr::parse
/// and store its result unchecked, so a malformed list becomes a null
/// attribute that NamedAttrList::set dereferences. Such inputs are skipped
/// (conservatively: any of those keywords not followed by a list of
/// integers); docs/Security.md lists the crash.
bool reachesUpstreamArrayCrash(llvm::StringRef text) {
  for (llvm::StringRef keyword : {"permutation", "dimensions"}) {
    for (size_t at = text.find(keyword); at != llvm::StringRef::npos;
         at = text.find(keyword, at + 1)) {
      llvm::StringRef rest = text.drop_front(at + keyword.size()).ltrim();
      if (!rest.consume_front("="))
        continue;
      rest = rest.ltrim();
      if (!rest.consume_front("["))
        return true;
      // Integers separated by commas, then ']'.
      while (true) {
        rest = rest.ltrim();
        if (rest.consume_front("]"))
          break;
        rest.consume_front("-");
        size_t digits = rest.find_first_not_of("0123456789");
        if (digits == 0 || digits == llvm::StringRef::npos)
          return true;
        rest = rest.drop_front(digits).ltrim();
        if (rest.consume_front("]"))
          break;
        if (!rest.consume_front(","))
          return true;
      }
    }
  }
  return false;
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
  if (reachesUpstreamArrayCrash(text))
    return 0;
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
