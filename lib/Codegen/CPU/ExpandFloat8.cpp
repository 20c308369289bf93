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
/// type is of that f32. The byte sign-extended and shifted left by 20, masked
/// to the sign and E.EEE.MMM, is the f32 of the value times 2^-120 (an e4m3
/// subnormal an f32 subnormal): one multiply by 2^120 makes it exact.
/// S.1111.111 is NaN. Kernels decode FP8 weights through this (one place
/// for the format), about ten vector ops per 16 bytes.
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
    Value bytes = arith::BitcastOp::create(rewriter, loc, i8, op.getIn());
    Value word = arith::AndIOp::create(
        rewriter, loc,
        arith::ShLIOp::create(
            rewriter, loc, arith::ExtSIOp::create(rewriter, loc, i32, bytes),
            createScalarOrSplatConstant(rewriter, loc, i32, 20)),
        createScalarOrSplatConstant(rewriter, loc, i32,
                                    static_cast<int32_t>(0x87F00000u)));
    Value result = arith::MulFOp::create(
        rewriter, loc, arith::BitcastOp::create(rewriter, loc, f32, word),
        createScalarOrSplatConstant(rewriter, loc, f32, APFloat(0x1p120f)));
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
