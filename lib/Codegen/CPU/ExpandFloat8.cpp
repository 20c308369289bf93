//===- ExpandFloat8.cpp - f8E4M3FN to f32 as integer arithmetic -----------===//

#include "moe/Codegen/CPU/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/IR/TypeUtilities.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEEXPANDFLOAT8PASS
#include "moe/Codegen/CPU/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;

namespace {

/// `type` (a scalar or a vector) with `element` for its element type.
Type withElement(Type type, Type element) {
  if (auto vector = llvm::dyn_cast<VectorType>(type))
    return vector.clone(element);
  return element;
}

/// arith.extf from f8E4M3FN: the f32 of its bits, then whatever the target
/// type is of that f32.
struct ExpandExtFFromFloat8 : OpRewritePattern<arith::ExtFOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(arith::ExtFOp op,
                                PatternRewriter &rewriter) const override {
    Type sourceType = op.getIn().getType();
    if (!llvm::isa<Float8E4M3FNType>(getElementTypeOrSelf(sourceType)))
      return rewriter.notifyMatchFailure(op, "not from f8E4M3FN");
    Location loc = op.getLoc();
    Type i8 = withElement(sourceType, rewriter.getI8Type());
    Type i32 = withElement(sourceType, rewriter.getI32Type());
    Type f32 = withElement(sourceType, rewriter.getF32Type());
    auto bits = [&](int32_t v) {
      return createScalarOrSplatConstant(rewriter, loc, i32, v);
    };
    auto cmpEq = [&](Value x, int64_t v) {
      return arith::CmpIOp::create(rewriter, loc, arith::CmpIPredicate::eq, x,
                                   bits(v));
    };
    Value byte = arith::ExtUIOp::create(
        rewriter, loc, i32,
        arith::BitcastOp::create(rewriter, loc, i8, op.getIn()));
    Value sign = arith::ShLIOp::create(
        rewriter, loc, arith::AndIOp::create(rewriter, loc, byte, bits(0x80)),
        bits(24));
    // Exponent and mantissa, E.EEE.MMM.
    Value magnitude = arith::AndIOp::create(rewriter, loc, byte, bits(0x7F));
    // Normal: exponent + (127 - 7), the mantissa's 3 bits at the top of
    // f32's 23.
    Value normal = arith::ShLIOp::create(
        rewriter, loc,
        arith::AddIOp::create(rewriter, loc, magnitude, bits((127 - 7) << 3)),
        bits(20));
    // Subnormal (exponent 0): mantissa * 2^-9, exact in f32.
    Value mantissa = arith::AndIOp::create(rewriter, loc, byte, bits(0x7));
    Value subnormal = arith::BitcastOp::create(
        rewriter, loc, i32,
        arith::MulFOp::create(
            rewriter, loc,
            arith::UIToFPOp::create(rewriter, loc, f32, mantissa),
            createScalarOrSplatConstant(rewriter, loc, f32,
                                        APFloat(1.0f / 512.0f))));
    Value isSubnormal = arith::CmpIOp::create(
        rewriter, loc, arith::CmpIPredicate::ult, magnitude, bits(0x8));
    Value value =
        arith::SelectOp::create(rewriter, loc, isSubnormal, subnormal, normal);
    value = arith::SelectOp::create(rewriter, loc, cmpEq(magnitude, 0x7F),
                                    bits(0x7FC00000), value);
    Value result = arith::BitcastOp::create(
        rewriter, loc, f32, arith::OrIOp::create(rewriter, loc, value, sign));
    // Other targets from the f32 (every float type holds an e4m3 value).
    unsigned width = getElementTypeOrSelf(op.getType()).getIntOrFloatBitWidth();
    if (width > 32)
      result = arith::ExtFOp::create(rewriter, loc, op.getType(), result);
    else if (width < 32)
      result = arith::TruncFOp::create(rewriter, loc, op.getType(), result);
    rewriter.replaceOp(op, result);
    return success();
  }
};

struct MoEExpandFloat8Pass
    : public moe::impl::MoEExpandFloat8PassBase<MoEExpandFloat8Pass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<ExpandExtFFromFloat8>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();
  }
};

} // namespace
