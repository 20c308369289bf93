//===- LinearsToBF16Terms.cpp - f32 linears as exact bf16 products --------===//
//
// The router's logits are an f32 linear `x w^T` over bf16 weights: on a
// GPU, CUDA-core f32 arithmetic that at prefill costs more than the 5% of
// the layer routing may take. As the routed experts' grouped matmul with
// exact products, on one expert whose weight is `w`, the tensor cores
// compute it: its tiles split each f32 row element into three bf16 terms
// (its 24 significand bits are three runs of 8), so that every product is
// exact in f32.
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
    if (align < 1)
      return fail("align", align, 1);
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
    // A zero-filled (or otherwise filled) init: the terms write the fill's
    // destination and add its value, and the original keeps its fill, so
    // that each form writes the destination once.
    Value init = op.getOutputs()[0];
    auto fill = init.getDefiningOp<linalg::FillOp>();
    if (fill && !fill.hasPureTensorSemantics())
      fill = {};
    Value dest = fill ? fill.getOutputs()[0] : init;
    if (minRows == 0 || !xType.isDynamicDim(0)) {
      Value result = buildTermsLinear(b, loc, op, dest, fill);
      op->getResult(0).replaceAllUsesWith(result);
      op.erase();
      if (fill && fill->use_empty())
        fill.erase();
      return;
    }
    Value tokens = tensor::DimOp::create(b, loc, x, 0);
    Value enough =
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::uge, tokens,
                              arith::ConstantIndexOp::create(b, loc, minRows));
    auto choice = scf::IfOp::create(
        b, loc, enough,
        [&](OpBuilder &tb, Location tl) {
          scf::YieldOp::create(tb, tl,
                               buildTermsLinear(tb, tl, op, dest, fill));
        },
        [&](OpBuilder &eb, Location el) {
          IRMapping mapping;
          if (fill)
            mapping.map(fill->getResult(0), eb.clone(*fill)->getResult(0));
          scf::YieldOp::create(eb, el, eb.clone(*op, mapping)->getResults());
        });
    op->getResult(0).replaceAllUsesWith(choice.getResult(0));
    op.erase();
    if (fill && fill->use_empty())
      fill.erase();
  }

  /// The linear as exact grouped products on one expert, into `dest`.
  Value buildTermsLinear(OpBuilder &b, Location loc, linalg::MatmulOp op,
                         Value dest, linalg::FillOp fill) {
    Value x = op.getInputs()[0], w = op.getInputs()[1];
    auto xType = llvm::cast<RankedTensorType>(x.getType());
    auto wType = llvm::cast<RankedTensorType>(w.getType());
    int64_t depth = xType.getDimSize(1);
    int64_t columns = wType.getDimSize(0);
    Type i32 = b.getI32Type(), i64 = b.getI64Type(), f32 = b.getF32Type();
    int64_t dynamic = ShapedType::kDynamic;

    // Every row to expert 0: the rows in their order, aligned to the
    // grouped matmul's blocks.
    Value ids =
        linalg::FillOp::create(
            b, loc, ValueRange{arith::ConstantIntOp::create(b, loc, i32, 0)},
            ValueRange{tensor::EmptyOp::create(
                b, loc,
                ArrayRef<OpFoldResult>{tensor::getMixedSize(b, loc, x, 0),
                                       b.getIndexAttr(1)},
                i32)})
            .getResult(0);
    auto dispatch = DispatchOp::create(
        b, loc, RankedTensorType::get({dynamic, depth}, xType.getElementType()),
        RankedTensorType::get({2}, i64), ids.getType(), x, ids,
        /*capacity=*/Value(), b.getI64IntegerAttr(align));
    Value weight = tensor::ExpandShapeOp::create(
        b, loc,
        RankedTensorType::get({1, columns, depth}, wType.getElementType()), w,
        ArrayRef<ReassociationIndices>{{0, 1}, {2}});
    auto matmul = ExpertMatmulOp::create(
        b, loc, RankedTensorType::get({dynamic, columns}, f32),
        dispatch.getRows(), weight, dispatch.getExpertRows(),
        /*bias=*/Value(),
        /*weight_scale=*/Value(),
        /*weight_block=*/DenseI64ArrayAttr());
    matmul.setExactProducts(true);

    // The tokens' sums are the first T rows.
    OpFoldResult one = b.getIndexAttr(1);
    Value sums = tensor::ExtractSliceOp::create(
        b, loc, RankedTensorType::get({xType.getDimSize(0), columns}, f32),
        matmul.getResult(),
        ArrayRef<OpFoldResult>{b.getIndexAttr(0), b.getIndexAttr(0)},
        ArrayRef<OpFoldResult>{tensor::getMixedSize(b, loc, x, 0),
                               b.getIndexAttr(columns)},
        ArrayRef<OpFoldResult>{one, one});
    Value fillValue = fill ? fill.getInputs()[0] : Value();
    if (fillValue && matchPattern(fillValue, m_AnyZeroFloat())) {
      if (sums.getType() != dest.getType())
        sums = tensor::CastOp::create(b, loc, dest.getType(), sums);
      return sums;
    }
    AffineMap identity = b.getMultiDimIdentityMap(2);
    auto add = linalg::GenericOp::create(
        b, loc, TypeRange{dest.getType()}, ValueRange{sums}, ValueRange{dest},
        SmallVector<AffineMap>(2, identity),
        SmallVector<utils::IteratorType>(2, utils::IteratorType::parallel),
        [&](OpBuilder &nb, Location nl, ValueRange args) {
          Value base = args[1];
          if (fillValue)
            base = castFloat(nb, nl, fillValue, nb.getF32Type());
          linalg::YieldOp::create(
              nb, nl, arith::AddFOp::create(nb, nl, base, args[0]).getResult());
        });
    return add.getResult(0);
  }
};

} // namespace
