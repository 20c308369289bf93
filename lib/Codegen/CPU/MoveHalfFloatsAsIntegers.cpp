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

/// Makes `value` (a 16-bit float) the i16 `bits` in place; its uses take
/// it back through a bitcast.
void retypeToBits(Value value, Type bits) {
  Type type = value.getType();
  value.setType(bits);
  OpBuilder b(value.getContext());
  b.setInsertionPointAfterValue(value);
  auto cast = LLVM::BitcastOp::create(b, value.getLoc(), type, value);
  value.replaceAllUsesExcept(cast, cast);
}

/// Makes `operand` the i16 `bits` of its value, through a bitcast before
/// its owner.
void operandToBits(OpOperand &operand, Type bits) {
  OpBuilder b(operand.getOwner());
  operand.set(LLVM::BitcastOp::create(b, operand.getOwner()->getLoc(), bits,
                                      operand.get()));
}

struct MoEMoveHalfFloatsAsIntegersPass
    : moe::impl::MoEMoveHalfFloatsAsIntegersPassBase<
          MoEMoveHalfFloatsAsIntegersPass> {
  void runOnOperation() override {
    // Each op changes in place (a load keeps its alignment, volatility and
    // ordering); the bitcasts added around it are not rewritten.
    getOperation()->walk([](Operation *op) {
      if (auto load = llvm::dyn_cast<LLVM::LoadOp>(op)) {
        if (Type bits = bitsOf(load.getType()))
          retypeToBits(load.getResult(), bits);
      } else if (auto store = llvm::dyn_cast<LLVM::StoreOp>(op)) {
        if (Type bits = bitsOf(store.getValue().getType()))
          operandToBits(store.getValueMutable(), bits);
      } else if (auto select = llvm::dyn_cast<LLVM::SelectOp>(op)) {
        if (Type bits = bitsOf(select.getType())) {
          operandToBits(select.getTrueValueMutable(), bits);
          operandToBits(select.getFalseValueMutable(), bits);
          retypeToBits(select.getResult(), bits);
        }
      }
    });
  }
};

} // namespace
