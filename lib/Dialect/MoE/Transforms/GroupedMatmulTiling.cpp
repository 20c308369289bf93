//===- GroupedMatmulTiling.cpp - TilingInterface of moe.grouped_matmul ----===//
//
// Iteration domain: row blocks x N x K (parallel, parallel, reduction). A tile
// (blocks [b0, b0+nb), columns [n0, n0+nn), depth [k0, k0+nk)) is again a
// moe.grouped_matmul on slices: rows [b0*BM, (b0+nb)*BM) of input and init,
// the block ids [b0, b0+nb), and weight[:, n0.., k0..] of every expert (the
// tile reads its experts from the block ids at run time). Tiling K is
// correct with sequential loops because the op accumulates into init.
//
// A packed weight ([E, NP, K, P]) is sliced by whole panels, so column
// offsets must be multiples of P (tile sizes that are).
//
// Scattering (scatter_rows/scatter_scales), rows add to arbitrary rows of
// init: row blocks are a reduction dimension, and a tile's init is every
// row of init in its columns, its scatter tables rows of its blocks.
//
// The scalar implementation is the reference loop nest, one point (b, n, k)
// of the domain updating the BM rows of block b (or their targets).
//
//===----------------------------------------------------------------------===//

#include "moe/Dialect/MoE/IR/MoE.h"
#include "moe/Dialect/MoE/Transforms/InterfaceModels.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/Interfaces/LoopLikeInterface.h"
#include "mlir/Interfaces/TilingInterface.h"

using namespace mlir;
using namespace mlir::moe;

namespace {

/// `offsets`/`sizes` slice of a ranked tensor (extract_slice) or memref
/// (subview), unit strides.
Value sliceOperand(OpBuilder &b, Location loc, Value value,
                   ArrayRef<OpFoldResult> offsets,
                   ArrayRef<OpFoldResult> sizes) {
  SmallVector<OpFoldResult> strides(offsets.size(), b.getIndexAttr(1));
  if (llvm::isa<RankedTensorType>(value.getType()))
    return tensor::ExtractSliceOp::create(b, loc, value, offsets, sizes,
                                          strides);
  return memref::SubViewOp::create(b, loc, value, offsets, sizes, strides);
}

OpFoldResult dimOf(OpBuilder &b, Location loc, Value value, int64_t dim) {
  if (llvm::isa<RankedTensorType>(value.getType()))
    return tensor::getMixedSize(b, loc, value, dim);
  return memref::getMixedSize(b, loc, value, dim);
}

/// `value * factor` folded where static.
OpFoldResult scaled(OpBuilder &b, Location loc, OpFoldResult value,
                    int64_t factor) {
  AffineExpr d0 = b.getAffineDimExpr(0);
  return affine::makeComposedFoldedAffineApply(b, loc, d0 * factor, {value});
}

/// Whether `value` is provably a multiple of `factor`: a constant, a
/// multiple of an affine symbol or dimension, or the induction variable of a
/// loop (scf.for, scf.forall) whose lower bound and step are multiples.
bool isMultipleOf(OpFoldResult value, int64_t factor) {
  if (std::optional<int64_t> c = getConstantIntValue(value))
    return *c % factor == 0;
  Value v = llvm::cast<Value>(value);
  if (auto apply = v.getDefiningOp<affine::AffineApplyOp>()) {
    AffineExpr expr = apply.getAffineMap().getResult(0);
    if (auto mul = llvm::dyn_cast<AffineBinaryOpExpr>(expr))
      if (mul.getKind() == AffineExprKind::Mul)
        if (auto c = llvm::dyn_cast<AffineConstantExpr>(mul.getRHS()))
          return c.getValue() % factor == 0;
    return false;
  }
  auto arg = llvm::dyn_cast<BlockArgument>(v);
  if (!arg)
    return false;
  Operation *owner = arg.getOwner()->getParentOp();
  if (auto loop = llvm::dyn_cast<LoopLikeOpInterface>(owner)) {
    std::optional<SmallVector<Value>> ivs = loop.getLoopInductionVars();
    if (!ivs)
      return false;
    for (auto [i, iv] : llvm::enumerate(*ivs)) {
      if (iv != v)
        continue;
      std::optional<SmallVector<OpFoldResult>> lbs = loop.getLoopLowerBounds();
      std::optional<SmallVector<OpFoldResult>> steps = loop.getLoopSteps();
      return lbs && steps && isMultipleOf((*lbs)[i], factor) &&
             isMultipleOf((*steps)[i], factor);
    }
  }
  return false;
}

struct GroupedMatmulTilingModel
    : public TilingInterface::ExternalModel<GroupedMatmulTilingModel,
                                            GroupedMatmulOp> {
  SmallVector<utils::IteratorType> getLoopIteratorTypes(Operation *op) const {
    bool scatters = llvm::cast<GroupedMatmulOp>(op).isScattering();
    return {scatters ? utils::IteratorType::reduction
                     : utils::IteratorType::parallel,
            utils::IteratorType::parallel, utils::IteratorType::reduction};
  }

  SmallVector<Range> getIterationDomain(Operation *op, OpBuilder &b) const {
    auto matmul = llvm::cast<GroupedMatmulOp>(op);
    Location loc = op->getLoc();
    OpFoldResult zero = b.getIndexAttr(0), one = b.getIndexAttr(1);
    return {Range{zero, dimOf(b, loc, matmul.getBlockExperts(), 0), one},
            Range{zero, dimOf(b, loc, matmul.getInit(), 1), one},
            Range{zero, dimOf(b, loc, matmul.getInput(), 1), one}};
  }

  FailureOr<TilingResult>
  getTiledImplementation(Operation *op, OpBuilder &b,
                         ArrayRef<OpFoldResult> offsets,
                         ArrayRef<OpFoldResult> sizes) const {
    auto matmul = llvm::cast<GroupedMatmulOp>(op);
    Location loc = op->getLoc();
    int64_t blockRows = matmul.getBlockRows();
    OpFoldResult zero = b.getIndexAttr(0);
    OpFoldResult rowOffset = scaled(b, loc, offsets[0], blockRows);
    OpFoldResult rowSize = scaled(b, loc, sizes[0], blockRows);

    // Gathered rows: every row of the input may be a source.
    Value sources;
    Value input;
    if (Value rowSources = matmul.getRowSources()) {
      sources = sliceOperand(b, loc, rowSources, {rowOffset}, {rowSize});
      input = sliceOperand(b, loc, matmul.getInput(), {zero, offsets[2]},
                           {dimOf(b, loc, matmul.getInput(), 0), sizes[2]});
    } else {
      input = sliceOperand(b, loc, matmul.getInput(), {rowOffset, offsets[2]},
                           {rowSize, sizes[2]});
    }
    OpFoldResult experts = dimOf(b, loc, matmul.getWeight(), 0);
    Value weight;
    if (int64_t panel = matmul.getPanelColumns()) {
      // Whole panels: [n0 / P, ceil(nn / P)) of every expert.
      if (!isMultipleOf(offsets[1], panel)) {
        op->emitOpError() << "packed weight: the column tile offset must be "
                             "a multiple of the panel width "
                          << panel;
        return failure();
      }
      AffineExpr d0 = b.getAffineDimExpr(0);
      OpFoldResult firstPanel = affine::makeComposedFoldedAffineApply(
          b, loc, d0.floorDiv(panel), {offsets[1]});
      OpFoldResult panels = affine::makeComposedFoldedAffineApply(
          b, loc, d0.ceilDiv(panel), {sizes[1]});
      weight = sliceOperand(b, loc, matmul.getWeight(),
                            {zero, firstPanel, offsets[2], zero},
                            {experts, panels, sizes[2], b.getIndexAttr(panel)});
    } else {
      weight = sliceOperand(b, loc, matmul.getWeight(),
                            {zero, offsets[1], offsets[2]},
                            {experts, sizes[1], sizes[2]});
    }
    Value blocks = sliceOperand(b, loc, matmul.getBlockExperts(), {offsets[0]},
                                {sizes[0]});
    Value blockSizes;
    if (matmul.getBlockSizes())
      blockSizes = sliceOperand(b, loc, matmul.getBlockSizes(), {offsets[0]},
                                {sizes[0]});
    Value scatterRows, scatterScales;
    if (matmul.isScattering()) {
      scatterRows =
          sliceOperand(b, loc, matmul.getScatterRows(), {rowOffset}, {rowSize});
      scatterScales = sliceOperand(b, loc, matmul.getScatterScales(),
                                   {rowOffset}, {rowSize});
    }
    SmallVector<OpFoldResult> initOffsets, initSizes;
    if (failed(getResultTilePosition(op, b, 0, offsets, sizes, initOffsets,
                                     initSizes)))
      return failure();
    Value init = sliceOperand(b, loc, matmul.getInit(), initOffsets, initSizes);
    SmallVector<Type> resultTypes;
    if (llvm::isa<RankedTensorType>(init.getType()))
      resultTypes.push_back(init.getType());
    auto tiled = GroupedMatmulOp::create(
        b, loc, resultTypes, input, weight, blocks, blockSizes, sources,
        scatterRows, scatterScales, init, matmul.getBlockRowsAttr());
    SmallVector<Operation *> slices;
    for (Value v : {input, weight, blocks, blockSizes, sources, scatterRows,
                    scatterScales, init})
      if (v)
        slices.push_back(v.getDefiningOp());
    return TilingResult{{tiled}, SmallVector<Value>(tiled->getResults()),
                        slices};
  }

  LogicalResult
  getResultTilePosition(Operation *op, OpBuilder &b, unsigned resultNumber,
                        ArrayRef<OpFoldResult> offsets,
                        ArrayRef<OpFoldResult> sizes,
                        SmallVector<OpFoldResult> &resultOffsets,
                        SmallVector<OpFoldResult> &resultSizes) const {
    auto matmul = llvm::cast<GroupedMatmulOp>(op);
    Location loc = op->getLoc();
    int64_t blockRows = matmul.getBlockRows();
    if (matmul.isScattering()) {
      // Any row may receive: every row of init, in the tile's columns.
      resultOffsets = {b.getIndexAttr(0), offsets[1]};
      resultSizes = {dimOf(b, loc, matmul.getInit(), 0), sizes[1]};
      return success();
    }
    resultOffsets = {scaled(b, loc, offsets[0], blockRows), offsets[1]};
    resultSizes = {scaled(b, loc, sizes[0], blockRows), sizes[1]};
    return success();
  }

  LogicalResult generateScalarImplementation(Operation *op, OpBuilder &b,
                                             Location loc,
                                             ValueRange ivs) const {
    auto matmul = llvm::cast<GroupedMatmulOp>(op);
    if (!llvm::isa<MemRefType>(matmul.getInit().getType()))
      return failure();
    Value block = ivs[0], column = ivs[1], depth = ivs[2];
    Type f32 = b.getF32Type();
    Value expert, owned;
    std::tie(expert, owned) = matmul.loadBlockExpert(b, loc, block);
    Value zero = arith::ConstantIndexOp::create(b, loc, 0);
    auto toF32 = [&](OpBuilder &nb, Value v) -> Value {
      return v.getType() == f32 ? v : arith::ExtFOp::create(nb, loc, f32, v);
    };
    scf::IfOp::create(b, loc, owned, [&](OpBuilder &tb, Location tl) {
      Value blockRows =
          arith::ConstantIndexOp::create(tb, tl, matmul.getBlockRows());
      Value one = arith::ConstantIndexOp::create(tb, tl, 1);
      Value firstRow = arith::MulIOp::create(tb, tl, block, blockRows);
      SmallVector<Value> at{expert, column, depth};
      if (int64_t panel = matmul.getPanelColumns()) {
        Value p = arith::ConstantIndexOp::create(tb, tl, panel);
        at = {expert, arith::DivUIOp::create(tb, tl, column, p), depth,
              arith::RemUIOp::create(tb, tl, column, p)};
      }
      Value weight =
          toF32(tb, memref::LoadOp::create(tb, tl, matmul.getWeight(), at));
      Value rows = matmul.loadFilledRows(tb, tl, block);
      scf::ForOp::create(
          tb, tl, zero, rows, one, ValueRange{},
          [&](OpBuilder &lb, Location ll, Value i, ValueRange) {
            Value row = arith::AddIOp::create(lb, ll, firstRow, i);
            auto [source, valid] = matmul.loadRowSource(lb, ll, row);
            Value x = toF32(lb, memref::LoadOp::create(lb, ll, matmul.getInput(),
                                                       ValueRange{source, depth}));
            x = arith::SelectOp::create(
                lb, ll, valid, x,
                arith::ConstantOp::create(lb, ll, lb.getF32FloatAttr(0)));
            Value product = arith::MulFOp::create(lb, ll, x, weight);
            auto addTo = [&](OpBuilder &ab, Location al, Value target,
                             Value term) {
              Value acc = memref::LoadOp::create(ab, al, matmul.getInit(),
                                                 ValueRange{target, column});
              memref::StoreOp::create(
                  ab, al, arith::AddFOp::create(ab, al, acc, term),
                  matmul.getInit(), ValueRange{target, column});
            };
            if (!matmul.isScattering()) {
              addTo(lb, ll, row, product);
            } else {
              // A row that adds nowhere touches no memory (init may have
              // no row at all).
              Value target, scale, adds;
              std::tie(target, scale, adds) =
                  matmul.loadScatterTarget(lb, ll, row);
              scf::IfOp::create(lb, ll, adds, [&](OpBuilder &ab, Location al) {
                addTo(ab, al, target,
                      arith::MulFOp::create(ab, al, scale, product));
                scf::YieldOp::create(ab, al);
              });
            }
            scf::YieldOp::create(lb, ll);
          });
      scf::YieldOp::create(tb, tl);
    });
    return success();
  }
};

} // namespace

void mlir::moe::registerTilingInterfaceExternalModels(
    DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *ctx, MoeDialect *) {
    GroupedMatmulOp::attachInterface<GroupedMatmulTilingModel>(*ctx);
  });
}
