//===- TileGroupedMatmul.cpp - Tiling moe.grouped_matmul ------------------===//
//
// Tiles every moe.grouped_matmul on tensors through its TilingInterface with
// upstream scf tiling:
//
//   scf.forall (column block, row block)      -- parallel, independent tiles
//     scf.for depth block                     -- sequential: accumulates
//       moe.grouped_matmul (one row block x tile-n columns x tile-k depth)
//
// A grouped matmul with an epilogue is written from whole sums: its tiles
// span all of K, with no depth loop. One on block-scaled (FP8) weights
// takes 4 row blocks per tile (the kernel stages an expert's panels once
// for its consecutive blocks).
//
// With `narrow-tile-n` and `min-tiles`, the op is tiled once per column
// count under a chain of scf.if on its row blocks (host arithmetic): the
// widest whose tiles number at least min-tiles, else the narrowest (none
// narrower than the first whose column tiles alone reach min-tiles). A
// decode step (few row blocks) then spreads each expert's columns over
// more tiles, so that its tiles fill the GPU's multiprocessors.
//
// Column blocks are the outer dimension of the forall so that, run in order,
// consecutive tiles reuse one expert's [tile-n, K] weight panel from cache
// across all of that expert's row blocks: weights stream from memory once.
//
//===----------------------------------------------------------------------===//

#include "moe/Dialect/MoE/Transforms/Passes.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SCF/Transforms/TileUsingInterface.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Interfaces/TilingInterface.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOETILEGROUPEDMATMULPASS
#include "moe/Dialect/MoE/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// Row blocks per tile of a grouped matmul on block-scaled weights.
constexpr int64_t kScaledRowBlocksPerTile = 4;

/// Tiles `op` with `sizes` (0: untiled) into loops of `loopType`; returns the
/// innermost tiled op.
FailureOr<Operation *> tile(RewriterBase &rewriter, Operation *op,
                            ArrayRef<int64_t> sizes,
                            ArrayRef<int64_t> interchange,
                            scf::SCFTilingOptions::LoopType loopType) {
  scf::SCFTilingOptions options;
  options.setLoopType(loopType);
  SmallVector<OpFoldResult> tileSizes;
  for (int64_t size : sizes)
    tileSizes.push_back(rewriter.getIndexAttr(size));
  options.setTileSizes(tileSizes);
  if (!interchange.empty())
    options.setInterchange(interchange);
  rewriter.setInsertionPoint(op);
  FailureOr<scf::SCFTilingResult> tiled =
      scf::tileUsingSCF(rewriter, llvm::cast<TilingInterface>(op), options);
  if (failed(tiled))
    return failure();
  rewriter.replaceOp(op, tiled->replacements);
  return tiled->tiledOps.front();
}

/// Tiles `op` into an scf.forall over (row block, column tile) as `tile`
/// does, fusing a `linalg.fill` that produces its accumulator into each
/// tile: every tile then zeroes its own [BM, TN] slice right before the
/// kernel adds into it (in cache), instead of a separate pass over the
/// whole accumulator. Not where tiles share result elements (`fuseFill`
/// false: an atomic scatter's tiles of different row blocks add to the
/// same rows, which one fill before them all must zero).
FailureOr<Operation *> tileFusingFill(RewriterBase &rewriter, Operation *op,
                                      ArrayRef<int64_t> sizes,
                                      ArrayRef<int64_t> interchange,
                                      bool gpuMapping, bool fuseFill = true) {
  scf::SCFTilingOptions tiling;
  tiling.setLoopType(scf::SCFTilingOptions::LoopType::ForallOp);
  SmallVector<OpFoldResult> tileSizes;
  for (int64_t size : sizes)
    tileSizes.push_back(rewriter.getIndexAttr(size));
  tiling.setTileSizes(tileSizes);
  tiling.setInterchange(interchange);
  if (gpuMapping) {
    // The forall's dimensions (the tiled ones, in interchanged order) as
    // GPU blocks: row blocks (up to 2^31 of them) on x, column tiles on y,
    // or on x when the row blocks are not split.
    bool rowBlocksSplit = sizes[0] != 0;
    SmallVector<Attribute> mapping;
    for (int64_t dim : interchange) {
      if (dim > 1 || sizes[dim] == 0)
        continue;
      auto id = dim == 0 || !rowBlocksSplit ? gpu::MappingId::DimX
                                            : gpu::MappingId::DimY;
      mapping.push_back(gpu::GPUBlockMappingAttr::get(op->getContext(), id));
    }
    tiling.setMapping(mapping);
  }
  scf::SCFTileAndFuseOptions options;
  options.setTilingOptions(tiling);
  options.setFusionControlFn(
      [fuseFill](tensor::ExtractSliceOp, OpResult producer, bool isDestination)
          -> std::optional<scf::SCFTileAndFuseOptions::ControlFnResult> {
        if (fuseFill && isDestination &&
            isa<linalg::FillOp>(producer.getOwner()))
          return scf::SCFTileAndFuseOptions::ControlFnResult{};
        return std::nullopt;
      });
  rewriter.setInsertionPoint(op);
  FailureOr<scf::SCFTileAndFuseResult> tiled =
      scf::tileConsumerAndFuseProducersUsingSCF(
          rewriter, llvm::cast<TilingInterface>(op), options);
  if (failed(tiled))
    return failure();
  for (OpResult result : op->getResults())
    rewriter.replaceAllUsesWith(result, tiled->replacements.lookup(result));
  rewriter.eraseOp(op);
  return tiled->tiledAndFusedOps.front();
}

/// How one grouped matmul is tiled.
struct TileShape {
  int64_t rowBlocks, columns, depth;
};

/// Tiles `op` with `shape` into the forall of tiles (and the depth loop).
LogicalResult tileGroupedMatmul(RewriterBase &rewriter, GroupedMatmulOp op,
                                TileShape shape, bool depthTiled,
                                bool gpuMapping) {
  // Scattered rows add to shared output rows: the threads split the
  // columns only, and each walks the row blocks in order (unless the adds
  // are atomic: then row blocks are tiles of their own, each adding to
  // its whole target rows in place).
  bool scatters = op.rowBlocksReduce();
  // An epilogue needs whole sums: its domain has no depth to tile.
  bool epilogue = op.hasEpilogue();
  FailureOr<Operation *> tiled =
      epilogue ? tileFusingFill(rewriter, op, {shape.rowBlocks, shape.columns},
                                {1, 0}, gpuMapping)
      : scatters
          ? tileFusingFill(rewriter, op, {0, shape.columns, 0}, {1, 0, 2},
                           gpuMapping)
          : tileFusingFill(rewriter, op, {shape.rowBlocks, shape.columns, 0},
                           {1, 0, 2}, gpuMapping,
                           /*fuseFill=*/!op.isScattering());
  if (failed(tiled))
    return op.emitError("moe-tile-grouped-matmul: tiling over row blocks and "
                        "columns failed");
  if (epilogue || (!depthTiled && !scatters))
    return success();
  if (failed(tile(rewriter, *tiled, {scatters ? 1 : 0, 0, shape.depth}, {},
                  scf::SCFTilingOptions::LoopType::ForOp)))
    return (*tiled)->emitError("moe-tile-grouped-matmul: tiling the depth "
                               "failed");
  return success();
}

/// The tiles `op` makes with `shape` (host arithmetic on its row blocks,
/// folded where static).
Value buildTileCount(OpBuilder &b, Location loc, GroupedMatmulOp op,
                     TileShape shape) {
  auto constant = [&](int64_t value) -> Value {
    return arith::ConstantIndexOp::create(b, loc, value);
  };
  Value columns = b.createOrFold<tensor::DimOp>(loc, op.getInit(), 1);
  Value tiles =
      b.createOrFold<arith::CeilDivUIOp>(loc, columns, constant(shape.columns));
  if (op.rowBlocksReduce())
    return tiles;
  Value blocks =
      getValueOrCreateConstantIndexOp(b, loc, op.getBlockCount(b, loc));
  Value rowTiles = b.createOrFold<arith::CeilDivUIOp>(
      loc, blocks, constant(shape.rowBlocks));
  return b.createOrFold<arith::MulIOp>(loc, rowTiles, tiles);
}

/// Replaces `op` by a chain of scf.if choosing among copies of it, one per
/// shape (widest first): the first whose tiles number at least `minTiles`,
/// else the last. Returns the copies, in the order of `shapes`.
SmallVector<GroupedMatmulOp> buildVariants(RewriterBase &rewriter,
                                           GroupedMatmulOp op,
                                           ArrayRef<TileShape> shapes,
                                           int64_t minTiles) {
  SmallVector<GroupedMatmulOp> copies;
  Location loc = op.getLoc();
  std::function<ValueRange(OpBuilder &, size_t)> choose =
      [&](OpBuilder &b, size_t i) -> ValueRange {
    if (i + 1 == shapes.size()) {
      auto copy = llvm::cast<GroupedMatmulOp>(b.clone(*op));
      copies.push_back(copy);
      return copy->getResults();
    }
    Value fills =
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::uge,
                              buildTileCount(b, loc, op, shapes[i]),
                              arith::ConstantIndexOp::create(b, loc, minTiles));
    auto choice = scf::IfOp::create(
        b, loc, fills,
        [&](OpBuilder &tb, Location tl) {
          auto copy = llvm::cast<GroupedMatmulOp>(tb.clone(*op));
          copies.push_back(copy);
          scf::YieldOp::create(tb, tl, copy->getResults());
        },
        [&](OpBuilder &eb, Location el) {
          scf::YieldOp::create(eb, el, choose(eb, i + 1));
        });
    return choice.getResults();
  };
  rewriter.setInsertionPoint(op);
  ValueRange results = choose(rewriter, 0);
  rewriter.replaceOp(op, results);
  return copies;
}

struct MoETileGroupedMatmulPass
    : public moe::impl::MoETileGroupedMatmulPassBase<MoETileGroupedMatmulPass> {
  using MoETileGroupedMatmulPassBase::MoETileGroupedMatmulPassBase;

  LogicalResult initialize(MLIRContext *context) override {
    if (tileN < 0 || tileK < 0 || minTiles < 0 || singleTileN < 0)
      return emitError(UnknownLoc::get(context))
             << "moe-tile-grouped-matmul: tile sizes must not be negative, "
                "got tile-n="
             << static_cast<int64_t>(tileN)
             << " tile-k=" << static_cast<int64_t>(tileK)
             << " min-tiles=" << static_cast<int64_t>(minTiles)
             << " single-tile-n=" << static_cast<int64_t>(singleTileN);
    for (int64_t narrow : narrowTileN)
      if (narrow < 1 || (tileN != 0 && narrow >= tileN))
        return emitError(UnknownLoc::get(context))
               << "moe-tile-grouped-matmul: each narrow-tile-n must be "
                  "positive and below tile-n, got "
               << narrow;
    if (!narrowTileN.empty() && minTiles == 0)
      return emitError(UnknownLoc::get(context))
             << "moe-tile-grouped-matmul: narrow-tile-n needs min-tiles";
    return success();
  }

  /// The shape of `op`'s tiles with `columns` columns per tile.
  TileShape shapeOf(GroupedMatmulOp op, int64_t columns) const {
    // Packed weights are sliced by whole panels.
    if (int64_t panel = op.getPanelColumns())
      columns = llvm::alignTo(columns, panel);
    // Weights in pairs of K are sliced by whole pairs.
    int64_t depth = tileK;
    if (op.isDepthPaired())
      depth = llvm::alignTo(depth, 2);
    // Block-scaled weights by whole scale blocks (P divides BN), and
    // several row blocks per tile: a kernel that stages an expert's FP8
    // panels reuses them across that expert's consecutive blocks.
    int64_t rowBlocks = 1;
    if (std::optional<ArrayRef<int64_t>> block = op.getWeightBlock()) {
      columns = llvm::alignTo(std::max<int64_t>(columns, 1), (*block)[0]);
      depth = llvm::alignTo(depth, (*block)[1]);
      rowBlocks = kScaledRowBlocksPerTile;
    }
    return TileShape{rowBlocks, columns, depth};
  }

  /// The columns of `op`'s widest tiles: single-tile-n for one weight
  /// when set, else tile-n.
  int64_t widestOf(GroupedMatmulOp op) const {
    return !op.getPairedWeight() && singleTileN != 0 ? singleTileN : tileN;
  }

  /// The shapes to tile `op` with: the widest, then each narrower one
  /// (narrow-tile-n's, and tile-n's below single-tile-n) that splits its
  /// columns into more tiles, widest first, up to the first whose column
  /// tiles reach min-tiles.
  SmallVector<TileShape> shapesOf(GroupedMatmulOp op) const {
    int64_t widest = widestOf(op);
    SmallVector<TileShape> shapes{shapeOf(op, widest)};
    auto type = llvm::cast<RankedTensorType>(op.getInit().getType());
    if (minTiles == 0 || type.isDynamicDim(1))
      return shapes;
    int64_t columns = type.getDimSize(1);
    auto columnTiles = [&](const TileShape &shape) -> int64_t {
      return shape.columns == 0 ? 1
                                : static_cast<int64_t>(
                                      llvm::divideCeil(columns, shape.columns));
    };
    SmallVector<int64_t> narrow(narrowTileN.begin(), narrowTileN.end());
    if (widest != tileN && tileN != 0 && (widest == 0 || tileN < widest))
      narrow.push_back(tileN);
    llvm::sort(narrow, [](int64_t a, int64_t b) { return a > b; });
    // A shape whose columns alone make min-tiles tiles is chosen whenever
    // the op has a row block (with none, no tile runs): narrower ones would
    // never run.
    for (int64_t width : narrow) {
      if (columnTiles(shapes.back()) >= minTiles)
        break;
      TileShape shape = shapeOf(op, width);
      if (columnTiles(shape) > columnTiles(shapes.back()))
        shapes.push_back(shape);
    }
    return shapes;
  }

  void runOnOperation() override {
    SmallVector<GroupedMatmulOp> ops;
    getOperation()->walk([&](GroupedMatmulOp op) {
      // Memref forms are already placed; tile the tensor program only.
      if (!op.getResult().empty())
        ops.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (GroupedMatmulOp op : ops) {
      SmallVector<TileShape> shapes = shapesOf(op);
      SmallVector<GroupedMatmulOp> copies{op};
      if (shapes.size() > 1)
        copies = buildVariants(rewriter, op, shapes, minTiles);
      for (auto [copy, shape] : llvm::zip(copies, shapes))
        if (failed(tileGroupedMatmul(rewriter, copy, shape, tileK != 0,
                                     gpuMapping)))
          return signalPassFailure();
    }
  }
};

} // namespace
