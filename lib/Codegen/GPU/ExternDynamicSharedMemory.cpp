//===- ExternDynamicSharedMemory.cpp - Keep dynamic shared memory last ----===//
//
// The dynamic shared memory symbol must name where the launch's dynamic
// shared memory starts, after every static shared variable; as an internal
// global, NVPTX demotes it to a static variable of its own (pass
// description in Passes.td).
//
//===----------------------------------------------------------------------===//

#include "moe/Codegen/GPU/Passes.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEEXTERNDYNAMICSHAREDMEMORYPASS
#include "moe/Codegen/GPU/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;

namespace {

struct MoEExternDynamicSharedMemoryPass
    : moe::impl::MoEExternDynamicSharedMemoryPassBase<
          MoEExternDynamicSharedMemoryPass> {
  void runOnOperation() override {
    for (auto global : getOperation().getOps<LLVM::GlobalOp>()) {
      auto array = llvm::dyn_cast<LLVM::LLVMArrayType>(global.getGlobalType());
      if (global.getAddrSpace() !=
              static_cast<unsigned>(NVVM::NVVMMemorySpace::Shared) ||
          !array || array.getNumElements() != 0 ||
          !global.getSymName().starts_with("__dynamic_shmem__") ||
          global.getInitializerRegion().getBlocks().size() != 0 ||
          global.getValueAttr())
        continue;
      global.setLinkage(LLVM::Linkage::External);
    }
  }
};

} // namespace
