//===- LinearsToBF16Terms.cpp - f32 linears as exact bf16 products --------===//
//
// The router's logits are an f32 linear `x w^T` over bf16 weights: on a
// GPU, CUDA-core f32 arithmetic that at prefill costs more than the 5% of
// the layer routing may take. Split into bf16 terms (three for f32 rows,
// whose 24 significand bits are three runs of 8), every product is exact
// in f32 and the linear becomes bf16 matmuls with f32 sums, which the
// routed experts' grouped matmul runs on the tensor cores: the terms are
// rows dispatched to one expert whose weight is `w`.
//
//===----------------------------------------------------------------------===//

#include "moe/Dialect/MoE/Transforms/Passes.h"

#include "moe/Dialect/MoE/IR/MoE.h"
#include "moe/Dialect/MoE/Utils/TensorBuilders.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOELINEARSTOBF16TERMSPASS
#include "moe/Dialect/MoE/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// How many bf16 terms sum to an element of `type` (f32: 24 significand
/// bits, f16: 11, bf16: 8); 0 for other types.
int64_t termsOf(Type type) {
  if (type.isF32())
    return 3;
  if (type.isF16())
    return 2;
  if (type.isBF16())
    return 1;
  return 0;
}

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
  return w.getElementType().isBF16() && termsOf(x.getElementType()) > 0 &&
         out.getElementType().isF32() && !out.isDynamicDim(1) &&
         out.getDimSize(1) >= minColumns && !x.isDynamicDim(1);
}

/// Keeps the bits of `value` (f32) above the lowest 16: its upper 8
/// significand bits, a bf16 value, rounded toward zero (never to infinity).
Value upperHalf(OpBuilder &b, Location loc, Value value) {
  Type i32 = b.getI32Type();
  Value bits = arith::BitcastOp::create(b, loc, i32, value);
  Value mask = arith::ConstantIntOp::create(
      b, loc, i32, static_cast<int64_t>(static_cast<int32_t>(0xFFFF0000u)));
  return arith::BitcastOp::create(b, loc, b.getF32Type(),
                                  arith::AndIOp::create(b, loc, bits, mask));
}

/// The bf16 whose bits are the upper 16 of `value` (f32): `value` itself
/// when it is a bf16 value (every term is), subnormals included (which a
/// conversion may flush to zero: the CPU's does).
Value upperHalfAsBF16(OpBuilder &b, Location loc, Value value) {
  Value bits = arith::BitcastOp::create(b, loc, b.getI32Type(), value);
  Value upper = arith::ShRUIOp::create(
      b, loc, bits, arith::ConstantIntOp::create(b, loc, b.getI32Type(), 16));
  return arith::BitcastOp::create(
      b, loc, b.getBF16Type(),
      arith::TruncIOp::create(b, loc, b.getI16Type(), upper));
}

/// `[P * T, K]` bf16: row `p * T + t` is term `p` of `x[t]`.
Value buildTerms(OpBuilder &b, Location loc, Value x, int64_t terms) {
  auto type = llvm::cast<RankedTensorType>(x.getType());
  if (terms == 1)
    return x;
  MLIRContext *ctx = b.getContext();
  Value tokens = tensor::DimOp::create(b, loc, x, 0);
  int64_t depth = type.getDimSize(1);
  Value empty = tensor::EmptyOp::create(
      b, loc,
      ArrayRef<OpFoldResult>{b.getIndexAttr(terms), tokens,
                             b.getIndexAttr(depth)},
      b.getBF16Type());
  AffineExpr p, t, k;
  bindDims(ctx, p, t, k);
  SmallVector<AffineMap> maps = {AffineMap::get(3, 0, {t, k}, ctx),
                                 AffineMap::get(3, 0, {p, t, k}, ctx)};
  auto generic = linalg::GenericOp::create(
      b, loc, TypeRange{empty.getType()}, ValueRange{x}, ValueRange{empty},
      maps, SmallVector<utils::IteratorType>(3, utils::IteratorType::parallel),
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        Type f32 = nb.getF32Type();
        Value value = args[0];
        if (!value.getType().isF32())
          value = arith::ExtFOp::create(nb, nl, f32, value);
        // x = x0 + r1 exactly; an infinite x is its first term alone
        // (inf - inf would be NaN).
        Value first = upperHalf(nb, nl, value);
        Value infinite = arith::CmpFOp::create(
            nb, nl, arith::CmpFPredicate::OEQ,
            math::AbsFOp::create(nb, nl, value),
            arith::ConstantOp::create(
                nb, nl,
                nb.getF32FloatAttr(std::numeric_limits<float>::infinity())));
        Value rest = arith::SelectOp::create(
            nb, nl, infinite,
            arith::ConstantOp::create(nb, nl, nb.getF32FloatAttr(0.0)),
            arith::SubFOp::create(nb, nl, value, first));
        SmallVector<Value, 3> parts = {first};
        // Each further term the next 8 bits; the last is the remainder,
        // whose at most 8 significant bits are the upper half of its bits
        // (but for bits of a subnormal below 2^-133, which are dropped).
        for (int64_t i = 1; i < terms; ++i) {
          if (i + 1 == terms) {
            parts.push_back(rest);
            break;
          }
          Value part = upperHalf(nb, nl, rest);
          parts.push_back(part);
          rest = arith::SubFOp::create(nb, nl, rest, part);
        }
        Value index = linalg::IndexOp::create(nb, nl, 0);
        Value chosen = parts.front();
        for (int64_t i = 1; i < terms; ++i) {
          Value isTerm =
              arith::CmpIOp::create(nb, nl, arith::CmpIPredicate::eq, index,
                                    arith::ConstantIndexOp::create(nb, nl, i));
          chosen = arith::SelectOp::create(nb, nl, isTerm, parts[i], chosen);
        }
        linalg::YieldOp::create(nb, nl, upperHalfAsBF16(nb, nl, chosen));
      });
  return tensor::CollapseShapeOp::create(
      b, loc, generic.getResult(0),
      ArrayRef<ReassociationIndices>{{0, 1}, {2}});
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

  /// The linear as the terms' grouped products, written into `dest`.
  Value buildTermsLinear(OpBuilder &b, Location loc, linalg::MatmulOp op,
                         Value dest, linalg::FillOp fill) {
    Value x = op.getInputs()[0], w = op.getInputs()[1];
    auto xType = llvm::cast<RankedTensorType>(x.getType());
    auto wType = llvm::cast<RankedTensorType>(w.getType());
    int64_t terms = termsOf(xType.getElementType());
    int64_t depth = xType.getDimSize(1);
    int64_t columns = wType.getDimSize(0);
    Type i32 = b.getI32Type(), i64 = b.getI64Type(), f32 = b.getF32Type();
    int64_t dynamic = ShapedType::kDynamic;

    Value rows = buildTerms(b, loc, x, terms);
    // Every term row to expert 0: rows in their order, aligned to the
    // grouped matmul's blocks.
    Value ids =
        linalg::FillOp::create(
            b, loc, ValueRange{arith::ConstantIntOp::create(b, loc, i32, 0)},
            ValueRange{tensor::EmptyOp::create(
                b, loc,
                ArrayRef<OpFoldResult>{tensor::getMixedSize(b, loc, rows, 0),
                                       b.getIndexAttr(1)},
                i32)})
            .getResult(0);
    auto dispatch = DispatchOp::create(
        b, loc, RankedTensorType::get({dynamic, depth}, wType.getElementType()),
        RankedTensorType::get({2}, i64), ids.getType(), rows, ids,
        /*capacity=*/Value(), b.getI64IntegerAttr(align));
    Value weight = tensor::ExpandShapeOp::create(
        b, loc,
        RankedTensorType::get({1, columns, depth}, wType.getElementType()), w,
        ArrayRef<ReassociationIndices>{{0, 1}, {2}});
    Value products = ExpertMatmulOp::create(
                         b, loc, RankedTensorType::get({dynamic, columns}, f32),
                         dispatch.getRows(), weight, dispatch.getExpertRows(),
                         /*bias=*/Value(),
                         /*weight_scale=*/Value(),
                         /*weight_block=*/DenseI64ArrayAttr())
                         .getResult();

    // Term p's sums are rows [p * T, (p + 1) * T) of the products.
    Value tokens = tensor::DimOp::create(b, loc, x, 0);
    SmallVector<Value> sums;
    OpFoldResult one = b.getIndexAttr(1);
    for (int64_t p = 0; p < terms; ++p) {
      Value offset = arith::MulIOp::create(
          b, loc, tokens, arith::ConstantIndexOp::create(b, loc, p));
      sums.push_back(tensor::ExtractSliceOp::create(
          b, loc, RankedTensorType::get({xType.getDimSize(0), columns}, f32),
          products, ArrayRef<OpFoldResult>{offset, b.getIndexAttr(0)},
          ArrayRef<OpFoldResult>{tensor::getMixedSize(b, loc, x, 0),
                                 b.getIndexAttr(columns)},
          ArrayRef<OpFoldResult>{one, one}));
    }
    AffineMap identity = b.getMultiDimIdentityMap(2);
    SmallVector<AffineMap> maps(terms + 1, identity);
    Value fillValue = fill ? fill.getInputs()[0] : Value();
    auto add = linalg::GenericOp::create(
        b, loc, TypeRange{dest.getType()}, sums, ValueRange{dest}, maps,
        SmallVector<utils::IteratorType>(2, utils::IteratorType::parallel),
        [&](OpBuilder &nb, Location nl, ValueRange args) {
          // The smallest terms' sums first.
          Value sum = args[terms - 1];
          for (int64_t p = terms - 2; p >= 0; --p)
            sum = arith::AddFOp::create(nb, nl, sum, args[p]);
          Value base = args[terms];
          if (fillValue)
            base = castFloat(nb, nl, fillValue, nb.getF32Type());
          linalg::YieldOp::create(
              nb, nl, arith::AddFOp::create(nb, nl, base, sum).getResult());
        });
    return add.getResult(0);
  }
};

} // namespace
