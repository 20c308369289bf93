//===- ProgrammaticLaunches.cpp - Kernels that start as others end --------===//
//
// Every kernel waits for the grids before it (griddepcontrol.wait) before
// it touches memory and lets the next start at once; the host functions
// that launch them ask the runtime for programmatic launches (pass
// description in Passes.td).
//
//===----------------------------------------------------------------------===//

#include "moe/Codegen/GPU/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/IR/SymbolTable.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEPROGRAMMATICLAUNCHESPASS
#include "moe/Codegen/GPU/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;

namespace {

/// The runtime's function (CudaCalls.cpp) after which the calling entry's
/// launches are programmatic.
constexpr StringLiteral kAllowProgrammaticLaunches =
    "mgpuAllowProgrammaticLaunches";

/// Begins `kernel` with griddepcontrol.wait and launch_dependents, unless
/// it begins with them already (the pass ran before).
void waitThenReleaseDependents(gpu::GPUFuncOp kernel) {
  Block &entry = kernel.getBody().front();
  auto first = dyn_cast<NVVM::GriddepcontrolOp>(&entry.front());
  if (first && first.getKind() == NVVM::GridDepActionKind::wait)
    return;
  OpBuilder b = OpBuilder::atBlockBegin(&entry);
  Location loc = kernel.getLoc();
  NVVM::GriddepcontrolOp::create(b, loc, NVVM::GridDepActionKind::wait);
  NVVM::GriddepcontrolOp::create(b, loc,
                                 NVVM::GridDepActionKind::launch_dependents);
}

struct MoEProgrammaticLaunchesPass
    : public moe::impl::MoEProgrammaticLaunchesPassBase<
          MoEProgrammaticLaunchesPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    module.walk([](gpu::GPUFuncOp function) {
      if (function.isKernel() && !function.getBody().empty())
        waitThenReleaseDependents(function);
    });

    SmallVector<func::FuncOp> launching;
    for (auto function : module.getOps<func::FuncOp>())
      if (!function.isExternal() &&
          function
              .walk([](gpu::LaunchFuncOp) { return WalkResult::interrupt(); })
              .wasInterrupted())
        launching.push_back(function);
    if (launching.empty())
      return;

    SymbolTable symbols(module);
    Operation *existing = symbols.lookup(kAllowProgrammaticLaunches);
    auto declaration = dyn_cast_or_null<func::FuncOp>(existing);
    FunctionType type = FunctionType::get(&getContext(), {}, {});
    if (existing && (!declaration || declaration.getFunctionType() != type)) {
      existing->emitError()
          << "'" << kAllowProgrammaticLaunches
          << "' is the runtime's, a func.func of type () -> ()";
      return signalPassFailure();
    }
    if (!declaration) {
      declaration = func::FuncOp::create(module.getLoc(),
                                         kAllowProgrammaticLaunches, type);
      declaration.setPrivate();
      symbols.insert(declaration);
    }
    for (func::FuncOp function : launching) {
      Block &entry = function.getBody().front();
      auto first = dyn_cast<func::CallOp>(&entry.front());
      if (first && first.getCallee() == kAllowProgrammaticLaunches)
        continue;
      OpBuilder b = OpBuilder::atBlockBegin(&entry);
      func::CallOp::create(b, function.getLoc(), declaration, ValueRange{});
    }
  }
};

} // namespace
