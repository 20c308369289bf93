//===- PassTensorMapsByValue.cpp - TMA descriptors as kernel parameters ---===//
//
// Kernels take the TMA descriptors of their launches by value, as
// grid-constant parameters, instead of a pointer to a device copy (pass
// description in Passes.td).
//
//===----------------------------------------------------------------------===//

#include "moe/Codegen/GPU/Passes.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/IR/SymbolTable.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/MapVector.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEPASSTENSORMAPSBYVALUEPASS
#include "moe/Codegen/GPU/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;

namespace {

constexpr StringLiteral kEncodeToDevice = "mgpuTensorMapEncodeTiledMemref";
constexpr StringLiteral kEncodeInto = "mgpuTensorMapEncodeTiledMemrefInto";
/// A CUtensorMap: 128 bytes, 64-byte aligned.
constexpr int64_t kMapWords = 16;
constexpr int64_t kMapAlignment = 64;

/// The call of `mgpuTensorMapEncodeTiledMemref` that defines `value`, or
/// null.
LLVM::CallOp encodingCall(Value value) {
  auto call = value.getDefiningOp<LLVM::CallOp>();
  if (!call || call.getCallee() != kEncodeToDevice || call.getNumResults() != 1)
    return nullptr;
  return call;
}

/// Whether the kernel only reads through its pointer parameter `arg`: the
/// TMA copies that name it as their descriptor, and loads.
bool onlyReadThrough(BlockArgument arg) {
  return llvm::all_of(arg.getUses(), [](OpOperand &use) {
    Operation *user = use.getOwner();
    if (auto load = llvm::dyn_cast<LLVM::LoadOp>(user))
      return load.getAddr() == use.get();
    if (auto copy =
            llvm::dyn_cast<NVVM::CpAsyncBulkTensorGlobalToSharedClusterOp>(
                user))
      return copy.getTmaDescriptor() == use.get();
    return false;
  });
}

struct MoEPassTensorMapsByValuePass
    : moe::impl::MoEPassTensorMapsByValuePassBase<
          MoEPassTensorMapsByValuePass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *ctx = &getContext();
    SymbolTableCollection symbols;

    // The launches of each kernel.
    llvm::MapVector<LLVM::LLVMFuncOp, SmallVector<gpu::LaunchFuncOp>> launches;
    bool unknownKernel = false;
    module.walk([&](gpu::LaunchFuncOp launch) {
      auto kernel = symbols.lookupNearestSymbolFrom<LLVM::LLVMFuncOp>(
          launch, launch.getKernel());
      if (!kernel) {
        unknownKernel = true;
        return;
      }
      launches[kernel].push_back(launch);
    });
    if (unknownKernel) {
      // A kernel not yet in the LLVM dialect: launches and parameters do
      // not correspond one for one.
      module.emitError("moe-pass-tensor-maps-by-value: expects kernels in "
                       "the LLVM dialect (run after convert-gpu-to-nvvm and "
                       "gpu-to-llvm)");
      return signalPassFailure();
    }

    auto mapType =
        LLVM::LLVMArrayType::get(IntegerType::get(ctx, 64), kMapWords);
    auto pointerType = LLVM::LLVMPointerType::get(ctx);
    // The host values that replace each encoding call's result.
    llvm::DenseMap<Operation *, Value> byValue;
    SmallVector<LLVM::CallOp> replaced;
    for (auto &entry : launches) {
      LLVM::LLVMFuncOp kernel = entry.first;
      ArrayRef<gpu::LaunchFuncOp> kernelLaunches = entry.second;
      if (kernel.isExternal() ||
          llvm::any_of(kernelLaunches, [&](gpu::LaunchFuncOp launch) {
            return launch.getNumKernelOperands() != kernel.getNumArguments();
          }))
        continue;
      for (unsigned index = 0; index < kernel.getNumArguments(); ++index) {
        BlockArgument arg = kernel.getArgument(index);
        if (!llvm::isa<LLVM::LLVMPointerType>(arg.getType()) ||
            kernel.getArgAttr(index, LLVM::LLVMDialect::getByValAttrName()) ||
            !onlyReadThrough(arg))
          continue;
        bool everyLaunchEncodes =
            llvm::all_of(kernelLaunches, [&](gpu::LaunchFuncOp launch) {
              return encodingCall(launch.getKernelOperand(index));
            });
        if (!everyLaunchEncodes)
          continue;
        for (gpu::LaunchFuncOp launch : kernelLaunches) {
          LLVM::CallOp call = encodingCall(launch.getKernelOperand(index));
          Value &bytes = byValue[call];
          if (!bytes) {
            bytes = encodeInto(call, mapType, pointerType);
            replaced.push_back(call);
          }
          launch.getKernelOperandsMutable()[index].assign(bytes);
        }
        kernel.setArgAttr(index, LLVM::LLVMDialect::getByValAttrName(),
                          TypeAttr::get(mapType));
        kernel.setArgAttr(
            index, LLVM::LLVMDialect::getAlignAttrName(),
            IntegerAttr::get(IntegerType::get(ctx, 64), kMapAlignment));
        kernel.setArgAttr(index, NVVM::NVVMDialect::getGridConstantAttrName(),
                          UnitAttr::get(ctx));
      }
    }
    for (LLVM::CallOp call : replaced)
      if (call->use_empty())
        call.erase();
    if (auto declaration =
            module.lookupSymbol<LLVM::LLVMFuncOp>(kEncodeToDevice))
      if (declaration.isExternal() &&
          SymbolTable::symbolKnownUseEmpty(declaration, module))
        declaration.erase();
  }

  /// At `call`: the same descriptor encoded into a stack slot of its host
  /// function, and the slot's 128 bytes loaded.
  Value encodeInto(LLVM::CallOp call, LLVM::LLVMArrayType mapType,
                   LLVM::LLVMPointerType pointerType) {
    ModuleOp module = getOperation();
    Location loc = call.getLoc();
    auto host = call->getParentOfType<LLVM::LLVMFuncOp>();
    OpBuilder entry = OpBuilder::atBlockBegin(&host.getBody().front());
    Value one = LLVM::ConstantOp::create(entry, loc, entry.getI64Type(),
                                         entry.getI64IntegerAttr(1));
    Value slot = LLVM::AllocaOp::create(entry, loc, pointerType, mapType, one,
                                        kMapAlignment);

    auto declaration = module.lookupSymbol<LLVM::LLVMFuncOp>(kEncodeInto);
    if (!declaration) {
      SmallVector<Type> params(call.getArgOperands().getTypes());
      params.push_back(pointerType);
      OpBuilder top = OpBuilder::atBlockEnd(module.getBody());
      declaration = LLVM::LLVMFuncOp::create(
          top, loc, kEncodeInto,
          LLVM::LLVMFunctionType::get(LLVM::LLVMVoidType::get(&getContext()),
                                      params));
    }
    OpBuilder b(call);
    SmallVector<Value> operands(call.getArgOperands());
    operands.push_back(slot);
    LLVM::CallOp::create(b, loc, declaration, operands);
    return LLVM::LoadOp::create(b, loc, mapType, slot, kMapAlignment);
  }
};

} // namespace
