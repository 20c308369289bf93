//===- AllocateThroughRuntime.cpp - Heap allocations via the runtime ------===//
//
// finalize-memref-to-llvm{use-generic-functions} lowers memref.alloc and
// memref.dealloc to calls of _mlir_memref_to_llvm_alloc/_free. This pass
// defines those two in the module: each calls through the exported table
//
//   moe_module_allocator = {void *(*allocate)(uint64_t), void (*free)(void *)}
//
// when the runtime has filled it in (docs/CompiledModules.md), and malloc /
// free otherwise, so a module loaded by anything else still works.
//
//===----------------------------------------------------------------------===//

#include "moe/Dialect/MoE/Transforms/Passes.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/Builders.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEALLOCATETHROUGHRUNTIMEPASS
#include "moe/Dialect/MoE/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;

namespace {

constexpr llvm::StringLiteral kTable = "moe_module_allocator";

LLVM::LLVMFuncOp getOrDeclare(OpBuilder &b, ModuleOp module, StringRef name,
                              LLVM::LLVMFunctionType type) {
  if (auto existing = module.lookupSymbol<LLVM::LLVMFuncOp>(name))
    return existing;
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(module.getBody());
  return LLVM::LLVMFuncOp::create(b, module.getLoc(), name, type);
}

/// Gives the declaration `hook` a body: call the table's entry `field` when
/// set, `fallback` otherwise.
LogicalResult defineHook(OpBuilder &b, ModuleOp module, LLVM::LLVMFuncOp hook,
                         unsigned field, LLVM::LLVMFuncOp fallback,
                         LLVM::GlobalOp table) {
  if (!hook.getBody().empty())
    return hook.emitError() << "moe-allocate-through-runtime: '"
                            << hook.getName() << "' is already defined";
  LLVM::LLVMFunctionType type = hook.getFunctionType();
  if (type != fallback.getFunctionType())
    return hook.emitError() << "moe-allocate-through-runtime: '"
                            << hook.getName() << "' has type " << type
                            << ", expected " << fallback.getFunctionType();
  Location loc = hook.getLoc();
  MLIRContext *ctx = b.getContext();
  auto ptr = LLVM::LLVMPointerType::get(ctx);
  hook.setLinkage(LLVM::Linkage::Internal);
  Block *entry = hook.addEntryBlock(b);
  Block *viaLibc = b.createBlock(&hook.getBody());
  Block *viaTable = b.createBlock(&hook.getBody());

  b.setInsertionPointToStart(entry);
  Value address = LLVM::AddressOfOp::create(b, loc, table);
  Value slot = LLVM::GEPOp::create(
      b, loc, ptr, table.getGlobalType(), address,
      ArrayRef<LLVM::GEPArg>{0, static_cast<int32_t>(field)});
  Value function = LLVM::LoadOp::create(b, loc, ptr, slot);
  Value null = LLVM::ZeroOp::create(b, loc, ptr);
  Value unset = LLVM::ICmpOp::create(b, loc, LLVM::ICmpPredicate::eq,
                                     function, null);
  LLVM::CondBrOp::create(b, loc, unset, viaLibc, viaTable);

  auto ret = [&](Operation *call) {
    if (call->getNumResults())
      LLVM::ReturnOp::create(b, loc, call->getResult(0));
    else
      LLVM::ReturnOp::create(b, loc, ValueRange{});
  };
  SmallVector<Value> args(entry->getArguments());
  b.setInsertionPointToStart(viaLibc);
  ret(LLVM::CallOp::create(b, loc, fallback, args));
  b.setInsertionPointToStart(viaTable);
  SmallVector<Value> indirect = {function};
  llvm::append_range(indirect, args);
  ret(LLVM::CallOp::create(b, loc, type, indirect));
  return success();
}

struct MoEAllocateThroughRuntimePass
    : public moe::impl::MoEAllocateThroughRuntimePassBase<
          MoEAllocateThroughRuntimePass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto alloc =
        module.lookupSymbol<LLVM::LLVMFuncOp>("_mlir_memref_to_llvm_alloc");
    auto release =
        module.lookupSymbol<LLVM::LLVMFuncOp>("_mlir_memref_to_llvm_free");
    if (!alloc && !release)
      return;
    if (module.lookupSymbol(kTable)) {
      module.emitError() << "moe-allocate-through-runtime: the module already "
                            "has a symbol '"
                         << kTable << "'";
      return signalPassFailure();
    }
    MLIRContext *ctx = &getContext();
    OpBuilder b(ctx);
    auto ptr = LLVM::LLVMPointerType::get(ctx);
    auto i64 = IntegerType::get(ctx, 64);
    auto voidType = LLVM::LLVMVoidType::get(ctx);
    auto tableType = LLVM::LLVMStructType::getLiteral(ctx, {ptr, ptr});

    b.setInsertionPointToStart(module.getBody());
    auto table = LLVM::GlobalOp::create(
        b, module.getLoc(), tableType, /*isConstant=*/false,
        LLVM::Linkage::External, kTable, /*value=*/Attribute());
    b.createBlock(&table.getInitializerRegion());
    LLVM::ReturnOp::create(b, module.getLoc(),
                           LLVM::ZeroOp::create(b, module.getLoc(), tableType)
                               .getResult());

    if (alloc) {
      auto malloc = getOrDeclare(b, module, "malloc",
                                 LLVM::LLVMFunctionType::get(ptr, {i64}));
      if (failed(defineHook(b, module, alloc, 0, malloc, table)))
        return signalPassFailure();
    }
    if (release) {
      auto free = getOrDeclare(b, module, "free",
                               LLVM::LLVMFunctionType::get(voidType, {ptr}));
      if (failed(defineHook(b, module, release, 1, free, table)))
        return signalPassFailure();
    }
  }
};

} // namespace
