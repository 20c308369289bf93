//===- MoveHalfFloatsAsIntegers.cpp - 16-bit float moves as i16 -----------===//
//
// Where the CPU pipeline leaves bf16 or f16 values in the LLVM dialect, it
// only moves them: loads, stores (masked ones too) and selects (their
// arithmetic is already integer arithmetic on the bits, or vector
// intrinsics). x86 code generation moves a bf16 that is not a register
// type (no AVX512_BF16: AVX2) or a scalar one (AVX512_BF16) through f32 and
// rounds it back with a compiler-rt call (__truncsfbf2) that a module
// loaded by the runtime cannot resolve: a plain copy of a bf16 bias, or the
// masked store of a tile's bf16 rows on AVX2, became a libcall. Moving the
// bits as i16, and folding the chains of bitcasts that leaves (i16 to bf16
// to i32 becomes i16 to i32), leaves no bf16 value for LLVM to put back
// into such a move.
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

/// Replaces each bitcast of a bitcast by one bitcast of the first's
/// operand (or that operand itself), and erases the bitcasts left unused.
void foldBitcastChains(Operation *root) {
  SmallVector<LLVM::BitcastOp> casts;
  root->walk([&](LLVM::BitcastOp cast) { casts.push_back(cast); });
  for (LLVM::BitcastOp cast : casts) {
    auto inner = cast.getArg().getDefiningOp<LLVM::BitcastOp>();
    if (!inner)
      continue;
    Value source = inner.getArg();
    if (source.getType() == cast.getType()) {
      cast.replaceAllUsesWith(source);
      continue;
    }
    cast.getArgMutable().assign(source);
  }
  // In reverse order, so that a chain's inner casts lose their last use
  // before they are visited.
  for (LLVM::BitcastOp cast : llvm::reverse(casts))
    if (cast->use_empty())
      cast->erase();
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
      } else if (auto store = llvm::dyn_cast<LLVM::MaskedStoreOp>(op)) {
        if (Type bits = bitsOf(store.getValue().getType()))
          operandToBits(store.getValueMutable(), bits);
      } else if (auto load = llvm::dyn_cast<LLVM::MaskedLoadOp>(op)) {
        if (Type bits = bitsOf(load.getType())) {
          for (OpOperand &passThrough : load.getPassThruMutable())
            operandToBits(passThrough, bits);
          retypeToBits(load.getResult(), bits);
        }
      } else if (auto select = llvm::dyn_cast<LLVM::SelectOp>(op)) {
        if (Type bits = bitsOf(select.getType())) {
          operandToBits(select.getTrueValueMutable(), bits);
          operandToBits(select.getFalseValueMutable(), bits);
          retypeToBits(select.getResult(), bits);
        }
      }
    });
    foldBitcastChains(getOperation());
  }
};

} // namespace
