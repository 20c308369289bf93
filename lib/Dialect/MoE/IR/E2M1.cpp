//===- E2M1.cpp - Decoding e2m1 (FP4) codes -------------------------------===//
//
// One place for the e2m1 format (OCP microscaling FP4): the reference
// lowerings and the CPU kernels decode MXFP4 weights through these.
//
//===----------------------------------------------------------------------===//

#include "moe/Dialect/MoE/IR/MoE.h"

#include "mlir/Dialect/Arith/Utils/Utils.h"

using namespace mlir;

/// `type` (a scalar or a vector) with `element` for its element type.
static Type withElement(Type type, Type element) {
  if (auto vector = llvm::dyn_cast<VectorType>(type))
    return vector.clone(element);
  return element;
}

Value mlir::moe::buildE2M1ToF32(OpBuilder &b, Location loc, Value codes) {
  Type i32 = withElement(codes.getType(), b.getI32Type());
  Type f32 = withElement(codes.getType(), b.getF32Type());
  unsigned width = getElementTypeOrSelf(codes.getType()).getIntOrFloatBitWidth();
  if (width < 32)
    codes = arith::ExtUIOp::create(b, loc, i32, codes);
  else if (width > 32)
    codes = arith::TruncIOp::create(b, loc, i32, codes);
  auto constant = [&](int64_t v) {
    return createScalarOrSplatConstant(b, loc, i32, v);
  };
  // Magnitudes 2-7 (E.EM, E > 0): the bits at the bottom of an f32's
  // exponent and the top of its mantissa, the exponent rebiased by 126.
  // Magnitudes 0 and 1 (0 and 0.5) are the subnormal ones: half the code.
  // No f32 subnormal on the way, so flush-to-zero modes change nothing.
  Value magnitude = arith::AndIOp::create(b, loc, codes, constant(7));
  Value normal = arith::BitcastOp::create(
      b, loc, f32,
      arith::AddIOp::create(
          b, loc, arith::ShLIOp::create(b, loc, magnitude, constant(22)),
          constant(126 << 23)));
  Value small = arith::MulFOp::create(
      b, loc, arith::UIToFPOp::create(b, loc, f32, magnitude),
      createScalarOrSplatConstant(b, loc, f32, APFloat(0.5f)));
  Value value = arith::SelectOp::create(
      b, loc,
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, magnitude,
                            constant(2)),
      small, normal);
  Value sign = arith::ShLIOp::create(
      b, loc, arith::AndIOp::create(b, loc, codes, constant(8)), constant(28));
  return arith::BitcastOp::create(
      b, loc, f32,
      arith::OrIOp::create(b, loc, arith::BitcastOp::create(b, loc, i32, value),
                           sign));
}

Value mlir::moe::buildE2M1PairElement(OpBuilder &b, Location loc, Value byte,
                                      Value depth) {
  Type i32 = b.getI32Type();
  Value word = arith::ExtUIOp::create(b, loc, i32, byte);
  // 4 * (depth mod 2): the high nibble for odd depth.
  Value shift = arith::ShLIOp::create(
      b, loc,
      arith::AndIOp::create(
          b, loc, arith::IndexCastUIOp::create(b, loc, i32, depth),
          arith::ConstantIntOp::create(b, loc, i32, 1)),
      arith::ConstantIntOp::create(b, loc, i32, 2));
  return buildE2M1ToF32(b, loc, arith::ShRUIOp::create(b, loc, word, shift));
}
