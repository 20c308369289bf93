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
/// type is of that f32. A normal e4m3 (E.EEE > 0): its E.EEE.MMM bits at
/// the bottom of an f32's exponent and the top of its mantissa, the
/// exponent rebiased by 120 (127 - 7); a subnormal one: its mantissa times
/// 2^-9. No f32 subnormal on the way, so flush-to-zero modes (a caller's
/// DAZ) change nothing. S.1111.111 is NaN. Kernels decode FP8 weights
/// through this (one place for the format), about a dozen vector ops per
/// 16 bytes.
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
    auto word = [&](int64_t v) {
      return createScalarOrSplatConstant(rewriter, loc, i32, v);
    };
    Value bytes = arith::BitcastOp::create(rewriter, loc, i8, op.getIn());
    Value unsignedWord = arith::ExtUIOp::create(rewriter, loc, i32, bytes);
    Value magnitude =
        arith::AndIOp::create(rewriter, loc, unsignedWord, word(0x7F));
    Value normal = arith::BitcastOp::create(
        rewriter, loc, f32,
        arith::AddIOp::create(
            rewriter, loc,
            arith::ShLIOp::create(rewriter, loc, magnitude, word(20)),
            word(120 << 23)));
    Value subnormal = arith::MulFOp::create(
        rewriter, loc,
        arith::UIToFPOp::create(
            rewriter, loc, f32,
            arith::AndIOp::create(rewriter, loc, magnitude, word(7))),
        createScalarOrSplatConstant(rewriter, loc, f32, APFloat(0x1p-9f)));
    Value isSubnormal = arith::CmpIOp::create(
        rewriter, loc, arith::CmpIPredicate::ult, magnitude, word(8));
    Value value =
        arith::SelectOp::create(rewriter, loc, isSubnormal, subnormal, normal);
    Value sign = arith::ShLIOp::create(
        rewriter, loc,
        arith::AndIOp::create(rewriter, loc, unsignedWord, word(0x80)),
        word(24));
    Value result = arith::BitcastOp::create(
        rewriter, loc, f32,
        arith::OrIOp::create(
            rewriter, loc, arith::BitcastOp::create(rewriter, loc, i32, value),
            sign));
    // S.1111.111, compared on the bytes.
    Value nanBits = createScalarOrSplatConstant(rewriter, loc, i8, 0x7F);
    Value isNaN = arith::CmpIOp::create(
        rewriter, loc, arith::CmpIPredicate::eq,
        arith::AndIOp::create(rewriter, loc, bytes, nanBits), nanBits);
    result = arith::SelectOp::create(
        rewriter, loc, isNaN,
        createScalarOrSplatConstant(rewriter, loc, f32,
                                    APFloat::getQNaN(APFloat::IEEEsingle())),
        result);
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
