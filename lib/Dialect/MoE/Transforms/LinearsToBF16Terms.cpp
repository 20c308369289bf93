//===- LinearsToBF16Terms.cpp - f32 linears as exact bf16 products --------===//
//
// The router's logits are an f32 linear `x w^T` over bf16 weights: on a
// GPU, CUDA-core f32 arithmetic that at prefill costs more than the 5% of
// the layer routing may take. As the routed experts' grouped matmul with
// exact products, on one expert whose weight is `w`, the tensor cores
// compute it: its tiles split each f32 row element into three bf16 terms
// (its 24 significand bits are three runs of 8), so that every product is
// exact in f32. It is a dense grouped matmul (no routing plan: every row
// block the one expert's), so no kernel computes a plan before its tiles.
//
//===----------------------------------------------------------------------===//

#include "moe/Dialect/MoE/Transforms/Passes.h"

#include "moe/Dialect/MoE/IR/MoE.h"
#include "moe/Dialect/MoE/Utils/TensorBuilders.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOELINEARSTOBF16TERMSPASS
#include "moe/Dialect/MoE/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// Whether `op` is `out[t, n] += x[t, k] * w[n, k]` on tensors with bf16
/// `w`, f32, f16 or bf16 `x` and an f32 result of at least `minColumns`
/// columns.
bool isBF16TermLinear(linalg::MatmulOp op, int64_t minColumns) {
  if (!llvm::isa<linalg::MatmulTransposeBOp>(op.getOperation()) ||
      !op.hasPureTensorSemantics())
    return false;
  auto x = llvm::cast<RankedTensorType>(op.getInputs()[0].getType());
  auto w = llvm::cast<RankedTensorType>(op.getInputs()[1].getType());
  auto out = llvm::cast<RankedTensorType>(op.getOutputs()[0].getType());
  // Rows a grouped matmul takes (their split into bf16 terms is the tiles').
  Type rows = x.getElementType();
  return w.getElementType().isBF16() &&
         (rows.isF32() || rows.isF16() || rows.isBF16()) &&
         out.getElementType().isF32() && !out.isDynamicDim(1) &&
         out.getDimSize(1) >= minColumns && !x.isDynamicDim(1);
}

struct MoELinearsToBF16TermsPass
    : public moe::impl::MoELinearsToBF16TermsPassBase<
          MoELinearsToBF16TermsPass> {
  using Base::Base;

  LogicalResult initialize(MLIRContext *context) override {
    auto fail = [&](StringRef option, int64_t value, int64_t least) {
      return emitError(UnknownLoc::get(context))
             << "moe-linears-to-bf16-terms: " << option << " must be at least "
             << least << ", got " << value;
    };
    if (minRows < 0)
      return fail("min-rows", minRows, 0);
    if (minColumns < 1)
      return fail("min-columns", minColumns, 1);
    if (blockRows < 1)
      return fail("block-rows", blockRows, 1);
    return success();
  }

  void runOnOperation() override {
    SmallVector<linalg::MatmulOp> linears;
    getOperation()->walk([&](linalg::MatmulOp op) {
      if (isBF16TermLinear(op, minColumns))
        linears.push_back(op);
    });
    for (linalg::MatmulOp op : linears)
      rewrite(op);
  }

private:
  void rewrite(linalg::MatmulOp op) {
    Value x = op.getInputs()[0];
    auto xType = llvm::cast<RankedTensorType>(x.getType());
    if (!xType.isDynamicDim(0) && xType.getDimSize(0) < minRows)
      return;
    OpBuilder b(op);
    Location loc = op.getLoc();
    if (minRows == 0 || !xType.isDynamicDim(0)) {
      Value result = buildTermsLinear(b, loc, op, op.getOutputs()[0]);
      op->getResult(0).replaceAllUsesWith(result);
      op.erase();
      return;
    }
    // A filled init (the usual zeros) is filled in each branch, so that
    // each form writes its destination once.
    Value init = op.getOutputs()[0];
    auto fill = init.getDefiningOp<linalg::FillOp>();
    if (fill && !fill.hasPureTensorSemantics())
      fill = {};
    auto initIn = [&](OpBuilder &bb) -> Value {
      if (!fill)
        return init;
      return bb.clone(*fill)->getResult(0);
    };
    Value tokens = tensor::DimOp::create(b, loc, x, 0);
    Value enough =
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::uge, tokens,
                              arith::ConstantIndexOp::create(b, loc, minRows));
    auto choice = scf::IfOp::create(
        b, loc, enough,
        [&](OpBuilder &tb, Location tl) {
          scf::YieldOp::create(tb, tl,
                               buildTermsLinear(tb, tl, op, initIn(tb)));
        },
        [&](OpBuilder &eb, Location el) {
          IRMapping mapping;
          mapping.map(init, initIn(eb));
          scf::YieldOp::create(eb, el, eb.clone(*op, mapping)->getResults());
        });
    op->getResult(0).replaceAllUsesWith(choice.getResult(0));
    op.erase();
    if (fill && fill->use_empty())
      fill.erase();
  }

  /// The linear `init + x w^T` as a dense grouped matmul with exact
  /// products, on one expert whose weight is `w`.
  Value buildTermsLinear(OpBuilder &b, Location loc, linalg::MatmulOp op,
                         Value init) {
    Value x = op.getInputs()[0], w = op.getInputs()[1];
    auto wType = llvm::cast<RankedTensorType>(w.getType());
    Value weight = tensor::ExpandShapeOp::create(
        b, loc,
        RankedTensorType::get({1, wType.getDimSize(0), wType.getDimSize(1)},
                              wType.getElementType()),
        w, ArrayRef<ReassociationIndices>{{0, 1}, {2}});
    auto matmul = GroupedMatmulOp::create(
        b, loc, TypeRange{init.getType()}, x, weight, /*paired_weight=*/Value(),
        /*block_experts=*/Value(), /*block_sizes=*/Value(),
        /*row_sources=*/Value(), /*scatter_rows=*/Value(),
        /*scatter_scales=*/Value(), /*weight_scale=*/Value(),
        /*paired_weight_scale=*/Value(), init, b.getI64IntegerAttr(blockRows),
        /*weight_block=*/DenseI64ArrayAttr(), b.getUnitAttr(),
        /*atomic_scatter=*/UnitAttr(), /*unique_scatter=*/UnitAttr(),
        /*epilogueCount=*/0);
    return matmul->getResult(0);
  }
};

} // namespace
