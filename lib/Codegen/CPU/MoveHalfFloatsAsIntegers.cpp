//===- MoveHalfFloatsAsIntegers.cpp - 16-bit float moves as i16 -----------===//
//
// Where the CPU pipeline leaves bf16 or f16 values in the LLVM dialect, it
// only moves them: loads, stores and selects (their arithmetic is already
// integer arithmetic on the bits, or vector intrinsics). x86 code
// generation for targets where bf16 is a register type (AVX512_BF16)
// moves a scalar bf16 through f32 and rounds it back with a compiler-rt
// call (__truncsfbf2) that a module loaded by the runtime cannot resolve:
// a plain copy of a bf16 bias became a libcall. Moving the bits as i16,
// with bitcasts that LLVM folds away, leaves no such conversion.
//
//===----------------------------------------------------------------------===//

#include "moe/Codegen/CPU/Passes.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/TypeUtilities.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEMOVEHALFFLOATSASINTEGERSPASS
#include "moe/Codegen/CPU/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;

namespace {

/// The i16 type (or vector of i16) that holds the bits of `type` when it
/// is a 16-bit float scalar or vector; null otherwise.
Type bitsOf(Type type) {
  auto vector = llvm::dyn_cast<VectorType>(type);
  if (!vector && !llvm::isa<FloatType>(type))
    return {};
  auto element = llvm::dyn_cast<FloatType>(getElementTypeOrSelf(type));
  if (!element || element.getWidth() != 16)
    return {};
  Type bits = IntegerType::get(type.getContext(), 16);
  return vector ? Type(vector.clone(bits)) : bits;
}

Value bitcast(OpBuilder &b, Location loc, Type type, Value value) {
  return LLVM::BitcastOp::create(b, loc, type, value);
}

struct MoEMoveHalfFloatsAsIntegersPass
    : moe::impl::MoEMoveHalfFloatsAsIntegersPassBase<
          MoEMoveHalfFloatsAsIntegersPass> {
  void runOnOperation() override {
    SmallVector<Operation *> moves;
    getOperation()->walk([&](Operation *op) {
      if (auto load = llvm::dyn_cast<LLVM::LoadOp>(op)) {
        if (bitsOf(load.getType()))
          moves.push_back(op);
      } else if (auto store = llvm::dyn_cast<LLVM::StoreOp>(op)) {
        if (bitsOf(store.getValue().getType()))
          moves.push_back(op);
      } else if (auto select = llvm::dyn_cast<LLVM::SelectOp>(op)) {
        if (bitsOf(select.getType()))
          moves.push_back(op);
      }
    });
    for (Operation *op : moves) {
      OpBuilder b(op);
      Location loc = op->getLoc();
      if (auto load = llvm::dyn_cast<LLVM::LoadOp>(op)) {
        // The same load (alignment, volatility, ordering) of the bits.
        Type type = load.getType();
        b.setInsertionPointAfter(load);
        Operation *bits = b.clone(*load);
        bits->getResult(0).setType(bitsOf(type));
        load.getResult().replaceAllUsesWith(
            bitcast(b, loc, type, bits->getResult(0)));
        load.erase();
      } else if (auto store = llvm::dyn_cast<LLVM::StoreOp>(op)) {
        Value value = store.getValue();
        store.getValueMutable().assign(
            bitcast(b, loc, bitsOf(value.getType()), value));
      } else {
        auto select = llvm::cast<LLVM::SelectOp>(op);
        Type type = select.getType(), bits = bitsOf(type);
        Value chosen = LLVM::SelectOp::create(
            b, loc, select.getCondition(),
            bitcast(b, loc, bits, select.getTrueValue()),
            bitcast(b, loc, bits, select.getFalseValue()));
        select.getResult().replaceAllUsesWith(bitcast(b, loc, type, chosen));
        select.erase();
      }
    }
  }
};

} // namespace
