//===- PinEntryRegisters.cpp - Kernels that move registers keep setmaxnreg ===//
//
// setmaxnreg moves registers between a block's warpgroups; ptxas keeps it
// only when it knows a kernel's register count at entry, which .maxntid
// alone does not fix (pass description in Passes.td).
//
//===----------------------------------------------------------------------===//

#include "moe/Codegen/GPU/Passes.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEPINENTRYREGISTERSPASS
#include "moe/Codegen/GPU/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;

namespace {

struct MoEPinEntryRegistersPass
    : moe::impl::MoEPinEntryRegistersPassBase<MoEPinEntryRegistersPass> {
  void runOnOperation() override {
    StringRef minBlocks = NVVM::NVVMDialect::getMinctasmAttrName();
    for (auto func : getOperation().getOps<LLVM::LLVMFuncOp>()) {
      if (!func->hasAttr(NVVM::NVVMDialect::getKernelFuncAttrName()) ||
          func->hasAttr(minBlocks))
        continue;
      bool movesRegisters =
          func.walk([](NVVM::SetMaxRegisterOp) {
                return WalkResult::interrupt();
              }).wasInterrupted();
      if (!movesRegisters)
        continue;
      if (!func->hasAttr(NVVM::NVVMDialect::getMaxntidAttrName())) {
        func.emitError("moe-pin-entry-registers: a kernel that moves "
                       "registers (nvvm.setmaxregister) needs nvvm.maxntid");
        return signalPassFailure();
      }
      func->setAttr(minBlocks, IntegerAttr::get(
                                   IntegerType::get(&getContext(), 32), 1));
    }
  }
};

} // namespace
