//===- BF16Terms.cpp - f32 values as sums of exact bf16 terms -------------===//

#include "BF16Terms.h"

#include "mlir/Dialect/Arith/IR/Arith.h"

using namespace mlir;
using namespace mlir::moe;

int64_t gpu_codegen::bf16TermsOf(GroupedMatmulOp op) {
  if (!op.getExactProducts())
    return 1;
  Type element = getElementTypeOrSelf(op.getInput().getType());
  return element.isF32() ? 3 : element.isF16() ? 2 : 1;
}

/// The constant `attr`, or its splat of the shape of `like` (a vector).
static Value splat(OpBuilder &b, Location loc, Type like, TypedAttr attr) {
  if (auto vector = llvm::dyn_cast<VectorType>(like))
    return arith::ConstantOp::create(
        b, loc,
        DenseElementsAttr::get(vector.clone(attr.getType()), Attribute(attr)));
  return arith::ConstantOp::create(b, loc, attr);
}

/// `type` (f32 or a vector of it) with `element` elements.
static Type withElement(Type type, Type element) {
  if (auto vector = llvm::dyn_cast<VectorType>(type))
    return vector.clone(element);
  return element;
}

SmallVector<Value, 3> gpu_codegen::splitIntoBF16Terms(OpBuilder &b,
                                                      Location loc, Value value,
                                                      int64_t terms) {
  Type type = value.getType();
  Type bitsType = withElement(type, b.getI32Type());
  Value mask = splat(b, loc, type,
                     b.getI32IntegerAttr(static_cast<int32_t>(0xFFFF0000u)));
  // The upper 16 bits: the upper 8 significand bits, toward zero (never to
  // infinity), a bf16 value.
  auto upperHalf = [&](Value x) -> Value {
    Value bits = arith::BitcastOp::create(b, loc, bitsType, x);
    return arith::BitcastOp::create(b, loc, type,
                                    arith::AndIOp::create(b, loc, bits, mask));
  };
  Value first = upperHalf(value);
  SmallVector<Value, 3> parts = {first};
  if (terms == 1)
    return parts;
  // x = x0 + r exactly; an x that is its first term (an infinite one among
  // them: inf - inf would be NaN) has no rest. Each further term is the
  // next 8 bits; the last is the remainder, of at most 8 significant bits.
  Value whole =
      arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OEQ, value, first);
  Value rest = arith::SelectOp::create(
      b, loc, whole, splat(b, loc, type, b.getF32FloatAttr(0)),
      arith::SubFOp::create(b, loc, value, first));
  for (int64_t i = 1; i < terms; ++i) {
    if (i + 1 == terms) {
      parts.push_back(rest);
      break;
    }
    Value part = upperHalf(rest);
    parts.push_back(part);
    rest = arith::SubFOp::create(b, loc, rest, part);
  }
  return parts;
}

Value gpu_codegen::bf16OfTerm(OpBuilder &b, Location loc, Value term) {
  Type type = term.getType();
  Type bitsType = withElement(type, b.getI32Type());
  Value bits = arith::ShRUIOp::create(
      b, loc, arith::BitcastOp::create(b, loc, bitsType, term),
      splat(b, loc, type, b.getI32IntegerAttr(16)));
  return arith::BitcastOp::create(
      b, loc, withElement(type, b.getBF16Type()),
      arith::TruncIOp::create(b, loc, withElement(type, b.getI16Type()), bits));
}
