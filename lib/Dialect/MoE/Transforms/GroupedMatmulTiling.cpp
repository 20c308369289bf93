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
// Block scales are sliced with their weight: the tile's column and depth
// offsets must then be whole scale blocks.
//
// Scattering (scatter_rows/scatter_scales), rows add to arbitrary rows of
// init: row blocks are a reduction dimension, and a tile's init is every
// row of init in its columns, its scatter tables rows of its blocks.
//
// A dense op (no block ids) has ceil(R / BM) row blocks, the last one
// partly filled: a tile's rows stop at R.
//
// The scalar implementation is the reference loop nest, one point (b, n, k)
// of the domain updating the BM rows of block b (or their targets).
//
//===----------------------------------------------------------------------===//

#include "moe/Dialect/MoE/IR/MoE.h"
#include "moe/Dialect/MoE/Transforms/GroupedMatmulRows.h"
#include "moe/Dialect/MoE/Transforms/InterfaceModels.h"
#include "moe/Dialect/MoE/Utils/ElementwiseClone.h"

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

/// The rows of the tile of row blocks [offset, offset + size): from
/// `offset * BM`, `size * BM` of them, or in a dense op (whose last block
/// holds the rows left) at most the rows from there to R.
std::pair<OpFoldResult, OpFoldResult> tileRows(OpBuilder &b, Location loc,
                                               GroupedMatmulOp matmul,
                                               OpFoldResult offset,
                                               OpFoldResult size) {
  int64_t blockRows = matmul.getBlockRows();
  OpFoldResult first = scaled(b, loc, offset, blockRows);
  if (!matmul.isDense())
    return {first, scaled(b, loc, size, blockRows)};
  // At most the rows both input and init hold (as the lowerings' filled
  // rows), so that no slice reaches past either.
  AffineExpr d0 = b.getAffineDimExpr(0), d1 = b.getAffineDimExpr(1),
             d2 = b.getAffineDimExpr(2), d3 = b.getAffineDimExpr(3);
  AffineMap rows = AffineMap::get(
      4, 0, {d0 * blockRows, d2 - d1 * blockRows, d3 - d1 * blockRows},
      b.getContext());
  OpFoldResult count = affine::makeComposedFoldedAffineMin(
      b, loc, rows,
      {size, offset, dimOf(b, loc, matmul.getInit(), 0),
       dimOf(b, loc, matmul.getInput(), 0)});
  return {first, count};
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
    auto matmul = llvm::cast<GroupedMatmulOp>(op);
    // An epilogue needs whole sums: K is not a dimension of the domain.
    if (matmul.hasEpilogue())
      return {utils::IteratorType::parallel, utils::IteratorType::parallel};
    return {matmul.rowBlocksReduce() ? utils::IteratorType::reduction
                                     : utils::IteratorType::parallel,
            utils::IteratorType::parallel, utils::IteratorType::reduction};
  }

  SmallVector<Range> getIterationDomain(Operation *op, OpBuilder &b) const {
    auto matmul = llvm::cast<GroupedMatmulOp>(op);
    Location loc = op->getLoc();
    OpFoldResult zero = b.getIndexAttr(0), one = b.getIndexAttr(1);
    SmallVector<Range> domain = {
        Range{zero, matmul.getBlockCount(b, loc), one},
        Range{zero, dimOf(b, loc, matmul.getInit(), 1), one}};
    if (!matmul.hasEpilogue())
      domain.push_back(Range{zero, dimOf(b, loc, matmul.getInput(), 1), one});
    return domain;
  }

  FailureOr<TilingResult>
  getTiledImplementation(Operation *op, OpBuilder &b,
                         ArrayRef<OpFoldResult> tileOffsets,
                         ArrayRef<OpFoldResult> tileSizes) const {
    auto matmul = llvm::cast<GroupedMatmulOp>(op);
    Location loc = op->getLoc();
    OpFoldResult zero = b.getIndexAttr(0);
    // With an epilogue every tile spans all of K (of the input and of the
    // weights, each as it has it).
    SmallVector<OpFoldResult> offsets(tileOffsets), sizes(tileSizes);
    if (matmul.hasEpilogue()) {
      offsets.push_back(zero);
      sizes.push_back(dimOf(b, loc, matmul.getInput(), 1));
    }
    // Pairs of K: the tile's depth is whole pairs, [k0 / 2, ceil(kk / 2)).
    bool pairs = matmul.isDepthPaired();
    if (pairs && !matmul.hasEpilogue() && !isMultipleOf(offsets[2], 2)) {
      op->emitOpError() << "weight packed in pairs of K: the depth tile "
                           "offset must be even";
      return failure();
    }
    AffineExpr d0 = b.getAffineDimExpr(0);
    auto weightDepthOffset = [&]() -> OpFoldResult {
      if (matmul.hasEpilogue())
        return zero;
      if (!pairs)
        return offsets[2];
      return affine::makeComposedFoldedAffineApply(b, loc, d0.floorDiv(2),
                                                   {offsets[2]});
    };
    auto weightDepth = [&](Value weight) -> OpFoldResult {
      if (matmul.hasEpilogue())
        return dimOf(b, loc, weight, 2);
      if (!pairs)
        return sizes[2];
      return affine::makeComposedFoldedAffineApply(b, loc, d0.ceilDiv(2),
                                                   {sizes[2]});
    };
    auto [rowOffset, rowSize] = tileRows(b, loc, matmul, offsets[0], sizes[0]);

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
    int64_t panel = matmul.getPanelColumns();
    // Whole panels: [n0 / P, ceil(nn / P)) of every expert.
    if (panel && !isMultipleOf(offsets[1], panel)) {
      op->emitOpError() << "packed weight: the column tile offset must be "
                           "a multiple of the panel width "
                        << panel;
      return failure();
    }
    auto sliceWeight = [&](Value weight) -> Value {
      if (!weight)
        return {};
      if (!panel)
        return sliceOperand(b, loc, weight,
                            {zero, offsets[1], weightDepthOffset()},
                            {experts, sizes[1], weightDepth(weight)});
      OpFoldResult firstPanel = affine::makeComposedFoldedAffineApply(
          b, loc, d0.floorDiv(panel), {offsets[1]});
      OpFoldResult panels = affine::makeComposedFoldedAffineApply(
          b, loc, d0.ceilDiv(panel), {sizes[1]});
      SmallVector<OpFoldResult> weightOffsets = {zero, firstPanel,
                                                 weightDepthOffset(), zero};
      SmallVector<OpFoldResult> weightSizes = {
          experts, panels, weightDepth(weight), b.getIndexAttr(panel)};
      if (llvm::cast<ShapedType>(weight.getType()).getRank() == 5) {
        weightOffsets.push_back(zero);
        weightSizes.push_back(b.getIndexAttr(2));
      }
      return sliceOperand(b, loc, weight, weightOffsets, weightSizes);
    };
    Value weight = sliceWeight(matmul.getWeight());
    Value paired = sliceWeight(matmul.getPairedWeight());
    // Block scales: the blocks of the tile's columns and depth, whose
    // offsets must be whole blocks.
    Value scale, pairedScale;
    if (std::optional<ArrayRef<int64_t>> block = matmul.getWeightBlock()) {
      int64_t bn = (*block)[0], bk = (*block)[1];
      bool depthTiled = !matmul.hasEpilogue();
      if (!isMultipleOf(offsets[1], bn) ||
          (depthTiled && !isMultipleOf(offsets[2], bk))) {
        op->emitOpError() << "block-scaled weight: tile offsets must be "
                             "whole scale blocks ("
                          << bn << " columns, " << bk << " depth)";
        return failure();
      }
      auto blocksOf = [&](OpFoldResult offset, OpFoldResult size,
                          int64_t by) -> std::pair<OpFoldResult, OpFoldResult> {
        return {affine::makeComposedFoldedAffineApply(b, loc, d0.floorDiv(by),
                                                      {offset}),
                affine::makeComposedFoldedAffineApply(b, loc, d0.ceilDiv(by),
                                                      {size})};
      };
      OpFoldResult columnBlock, columnBlocks, depthBlock, depthBlocks;
      std::tie(columnBlock, columnBlocks) = blocksOf(offsets[1], sizes[1], bn);
      std::tie(depthBlock, depthBlocks) = blocksOf(offsets[2], sizes[2], bk);
      auto sliceScale = [&](Value value) -> Value {
        if (!value)
          return {};
        // Scales in the weights' panels: the tile's whole panels.
        if (matmul.hasPackedScales())
          return sliceOperand(
              b, loc, value,
              {zero,
               affine::makeComposedFoldedAffineApply(b, loc, d0.floorDiv(panel),
                                                     {offsets[1]}),
               depthBlock, zero},
              {experts,
               affine::makeComposedFoldedAffineApply(b, loc, d0.ceilDiv(panel),
                                                     {sizes[1]}),
               depthBlocks, b.getIndexAttr(panel)});
        return sliceOperand(b, loc, value, {zero, columnBlock, depthBlock},
                            {experts, columnBlocks, depthBlocks});
      };
      scale = sliceScale(matmul.getWeightScale());
      pairedScale = sliceScale(matmul.getPairedWeightScale());
    }
    Value blocks;
    if (!matmul.isDense())
      blocks = sliceOperand(b, loc, matmul.getBlockExperts(), {offsets[0]},
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
        b, loc, resultTypes, input, weight, paired, blocks, blockSizes, sources,
        scatterRows, scatterScales, scale, pairedScale, init,
        matmul.getBlockRowsAttr(), matmul.getWeightBlockAttr(),
        matmul.getExactProductsAttr(), matmul.getAtomicScatterAttr(),
        matmul.getUniqueScatterAttr(), matmul.getEpilogue().size());
    tiled.copyEpilogueFrom(matmul);
    SmallVector<Operation *> slices;
    for (Value v : {input, weight, paired, blocks, blockSizes, sources,
                    scatterRows, scatterScales, scale, pairedScale, init})
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
    if (matmul.isScattering()) {
      // Any row may receive: every row of init, in the tile's columns.
      resultOffsets = {b.getIndexAttr(0), offsets[1]};
      resultSizes = {dimOf(b, loc, matmul.getInit(), 0), sizes[1]};
      return success();
    }
    auto [rowOffset, rowSize] = tileRows(b, loc, matmul, offsets[0], sizes[0]);
    resultOffsets = {rowOffset, offsets[1]};
    resultSizes = {rowSize, sizes[1]};
    return success();
  }

  LogicalResult generateScalarImplementation(Operation *op, OpBuilder &b,
                                             Location loc,
                                             ValueRange ivs) const {
    auto matmul = llvm::cast<GroupedMatmulOp>(op);
    if (!llvm::isa<MemRefType>(matmul.getInit().getType()))
      return failure();
    if (matmul.hasEpilogue()) {
      // One point (b, n): each filled row's sums over K, then the epilogue
      // of them and init[row, n] stored into init[row, n].
      Value column = ivs[1];
      forEachRowSums(
          b, loc, matmul, ivs[0], column,
          [&](OpBuilder &rb, Location rl, Value row, ValueRange sums) {
            SmallVector<Value> args(sums);
            args.push_back(matmul.loadInitElement(rb, rl, row, column));
            Value element =
                cloneElementwiseBody(rb, matmul.getEpilogueBody(), args, {})[0];
            matmul.storeInitElement(rb, rl, element, row, column);
          });
      return success();
    }
    Value block = ivs[0], column = ivs[1], depth = ivs[2];
    Value expert, owned;
    std::tie(expert, owned) = matmul.loadBlockExpert(b, loc, block);
    Value zero = arith::ConstantIndexOp::create(b, loc, 0);
    scf::IfOp::create(b, loc, owned, [&](OpBuilder &tb, Location tl) {
      Value blockRows =
          arith::ConstantIndexOp::create(tb, tl, matmul.getBlockRows());
      Value one = arith::ConstantIndexOp::create(tb, tl, 1);
      Value firstRow = arith::MulIOp::create(tb, tl, block, blockRows);
      Value weight = matmul.loadScaledWeight(tb, tl, matmul.getWeight(), expert,
                                             column, depth);
      Value rows = matmul.loadFilledRows(tb, tl, block);
      scf::ForOp::create(
          tb, tl, zero, rows, one, ValueRange{},
          [&](OpBuilder &lb, Location ll, Value i, ValueRange) {
            Value row = arith::AddIOp::create(lb, ll, firstRow, i);
            auto [source, valid] = matmul.loadRowSource(lb, ll, row);
            Value x =
                loadGroupedMatmulInput(lb, ll, matmul, source, valid, depth);
            Value product = arith::MulFOp::create(lb, ll, x, weight);
            if (!matmul.isScattering()) {
              matmul.addToInitElement(lb, ll, product, row, column);
            } else {
              // A row that adds nowhere touches no memory (init may have
              // no row at all).
              Value target, scale, adds;
              std::tie(target, scale, adds) =
                  matmul.loadScatterTarget(lb, ll, row);
              scf::IfOp::create(lb, ll, adds, [&](OpBuilder &ab, Location al) {
                matmul.addToInitElement(
                    ab, al, arith::MulFOp::create(ab, al, scale, product),
                    target, column);
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

Value mlir::moe::loadGroupedMatmulInput(OpBuilder &b, Location loc,
                                        GroupedMatmulOp op, Value source,
                                        Value valid, Value depth) {
  Value x =
      memref::LoadOp::create(b, loc, op.getInput(), ValueRange{source, depth});
  if (!x.getType().isF32())
    x = arith::ExtFOp::create(b, loc, b.getF32Type(), x);
  return arith::SelectOp::create(
      b, loc, valid, x,
      arith::ConstantOp::create(b, loc, b.getF32FloatAttr(0)));
}

void mlir::moe::forEachRowSums(
    OpBuilder &b, Location loc, GroupedMatmulOp op, Value block, Value column,
    function_ref<void(OpBuilder &, Location, Value, ValueRange)> body) {
  Value expert, owned;
  std::tie(expert, owned) = op.loadBlockExpert(b, loc, block);
  scf::IfOp::create(b, loc, owned, [&](OpBuilder &tb, Location tl) {
    Value zero = arith::ConstantIndexOp::create(tb, tl, 0);
    Value one = arith::ConstantIndexOp::create(tb, tl, 1);
    Value firstRow = arith::MulIOp::create(
        tb, tl, block,
        arith::ConstantIndexOp::create(tb, tl, op.getBlockRows()));
    SmallVector<Value> weights = op.getWeights();
    // K as every operand has it.
    Value depth = memref::DimOp::create(tb, tl, op.getInput(), 1);
    for (Value weight : weights)
      depth = arith::MinUIOp::create(
          tb, tl, depth, op.getWeightExtents(tb, tl, weight).second);
    SmallVector<Value> zeros(
        weights.size(),
        arith::ConstantOp::create(tb, tl, tb.getF32FloatAttr(0)));
    scf::ForOp::create(
        tb, tl, zero, op.loadFilledRows(tb, tl, block), one, ValueRange{},
        [&](OpBuilder &lb, Location ll, Value i, ValueRange) {
          Value row = arith::AddIOp::create(lb, ll, firstRow, i);
          Value source, valid;
          std::tie(source, valid) = op.loadRowSource(lb, ll, row);
          auto sums = scf::ForOp::create(
              lb, ll, zero, depth, one, zeros,
              [&](OpBuilder &kb, Location kl, Value k, ValueRange acc) {
                Value x = loadGroupedMatmulInput(kb, kl, op, source, valid, k);
                SmallVector<Value> next;
                for (auto [weight, sum] : llvm::zip(weights, acc))
                  next.push_back(arith::AddFOp::create(
                      kb, kl, sum,
                      arith::MulFOp::create(kb, kl, x,
                                            op.loadScaledWeight(kb, kl, weight,
                                                                expert, column,
                                                                k))));
                scf::YieldOp::create(kb, kl, next);
              });
          body(lb, ll, row, sums.getResults());
          scf::YieldOp::create(lb, ll);
        });
    scf::YieldOp::create(tb, tl);
  });
}

void mlir::moe::registerTilingInterfaceExternalModels(
    DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *ctx, MoeDialect *) {
    GroupedMatmulOp::attachInterface<GroupedMatmulTilingModel>(*ctx);
  });
}
