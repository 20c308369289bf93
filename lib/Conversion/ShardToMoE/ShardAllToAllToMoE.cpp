//===- ShardAllToAllToMoE.cpp - shard.all_to_all over MPI -----------------===//
//
// LLVM 22 lowers no shard.all_to_all to MPI (convert-shard-to-mpi has no
// pattern for it); this pass expresses it with moe.all_to_all, whose
// lowering calls MPI_Alltoallv. Pieces travel as rows: the split axis is
// moved to the front, so that piece p is rows [p n, (p+1) n) of n = dim / R
// each, and what arrives in source order is moved into the concatenation
// axis by reshapes and a transpose.
//
//===----------------------------------------------------------------------===//

#include "moe/Conversion/Passes.h"
#include "moe/Dialect/MoE/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/DLTI/DLTI.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MPI/IR/MPI.h"
#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

#include <numeric>

namespace mlir::moe {
#define GEN_PASS_DEF_CONVERTSHARDALLTOALLTOMOEPASS
#include "moe/Conversion/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// `value` (static shape) with its dimensions permuted: result dimension i
/// is dimension `permutation[i]` of `value`.
Value buildTranspose(OpBuilder &b, Location loc, Value value,
                     ArrayRef<int64_t> permutation) {
  if (llvm::equal(permutation, llvm::seq<int64_t>(0, permutation.size())))
    return value;
  auto type = llvm::cast<RankedTensorType>(value.getType());
  SmallVector<int64_t> shape;
  for (int64_t d : permutation)
    shape.push_back(type.getDimSize(d));
  Value init = tensor::EmptyOp::create(b, loc, shape, type.getElementType());
  return linalg::TransposeOp::create(b, loc, value, init, permutation)
      .getResult()[0];
}

/// The permutation that moves dimension `axis` of a rank-`rank` tensor to
/// the front, the others in order.
SmallVector<int64_t> getToFront(int64_t rank, int64_t axis) {
  SmallVector<int64_t> permutation = {axis};
  for (int64_t d = 0; d < rank; ++d)
    if (d != axis)
      permutation.push_back(d);
  return permutation;
}

LogicalResult lowerAllToAll(shard::AllToAllOp op, int64_t numRanks,
                            OpBuilder &b) {
  Location loc = op.getLoc();
  auto type = llvm::cast<RankedTensorType>(op.getInput().getType());
  auto resultType = llvm::cast<RankedTensorType>(op.getResult().getType());
  if (!type.hasStaticShape() || !resultType.hasStaticShape())
    return op.emitOpError("moe-convert-shard-all-to-all: needs static shapes, "
                          "got ")
           << type << " -> " << resultType;
  int64_t rank = type.getRank();
  int64_t split = op.getSplitAxis().getSExtValue();
  int64_t concat = op.getConcatAxis().getSExtValue();
  int64_t splitSize = type.getDimSize(split);
  if (splitSize % numRanks != 0)
    return op.emitOpError("moe-convert-shard-all-to-all: the split axis (")
           << splitSize << ") does not divide among " << numRanks << " devices";
  int64_t piece = splitSize / numRanks;
  b.setInsertionPoint(op);

  // Pieces as rows: [splitSize, the other dimensions in order].
  SmallVector<int64_t> toFront = getToFront(rank, split);
  Value rows = buildTranspose(b, loc, op.getInput(), toFront);
  auto rowsType = llvm::cast<RankedTensorType>(rows.getType());
  auto countsType = RankedTensorType::get({numRanks}, b.getI64Type());
  Value counts = arith::ConstantOp::create(
      b, loc, DenseIntElementsAttr::get(countsType, piece));
  Value comm =
      mpi::CommWorldOp::create(b, loc, mpi::CommType::get(b.getContext()));
  Value init = tensor::EmptyOp::create(b, loc, rowsType.getShape(),
                                       rowsType.getElementType());
  Value received = AllToAllOp::create(b, loc, TypeRange{rowsType}, rows, counts,
                                      counts, comm, init)
                       .getResult()[0];

  // [R, piece, others...] in source order; the concatenation axis, at
  // position `at` among [piece, others...], takes the source as its outer
  // part.
  SmallVector<int64_t> pieceShape = {numRanks, piece};
  llvm::append_range(pieceShape, rowsType.getShape().drop_front());
  SmallVector<ReassociationIndices> split2 = {{0, 1}};
  for (int64_t d = 2; d <= rank; ++d)
    split2.push_back({d});
  Value pieces = tensor::ExpandShapeOp::create(
      b, loc, RankedTensorType::get(pieceShape, type.getElementType()),
      received, split2);
  int64_t at = concat == split ? 0 : (concat < split ? concat + 1 : concat);
  // Dimensions of `pieces`: 0 the source, 1 + i dimension i of a piece.
  SmallVector<int64_t> interleave;
  for (int64_t i = 0; i < rank; ++i) {
    if (i == at)
      interleave.push_back(0);
    interleave.push_back(1 + i);
  }
  Value moved = buildTranspose(b, loc, pieces, interleave);
  SmallVector<ReassociationIndices> merge;
  for (int64_t i = 0, d = 0; i < rank; ++i) {
    if (i == at) {
      merge.push_back({d, d + 1});
      d += 2;
    } else {
      merge.push_back({d++});
    }
  }
  auto movedType = llvm::cast<RankedTensorType>(moved.getType());
  SmallVector<int64_t> mergedShape;
  for (const ReassociationIndices &group : merge) {
    int64_t size = 1;
    for (int64_t d : group)
      size *= movedType.getDimSize(d);
    mergedShape.push_back(size);
  }
  Value merged = tensor::CollapseShapeOp::create(
      b, loc, RankedTensorType::get(mergedShape, type.getElementType()), moved,
      merge);
  // The split axis back in its place.
  SmallVector<int64_t> back(rank);
  for (int64_t i = 0; i < rank; ++i)
    back[toFront[i]] = i;
  Value result = buildTranspose(b, loc, merged, back);
  if (result.getType() != resultType)
    return op.emitOpError("moe-convert-shard-all-to-all: the result is ")
           << result.getType() << ", not " << resultType;
  op.getResult().replaceAllUsesWith(result);
  op.erase();
  return success();
}

struct ConvertShardAllToAllToMoEPass
    : public moe::impl::ConvertShardAllToAllToMoEPassBase<
          ConvertShardAllToAllToMoEPass> {
  using ConvertShardAllToAllToMoEPassBase::ConvertShardAllToAllToMoEPassBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (mpi != "OpenMPI" && mpi != "MPICH") {
      module.emitError("moe-convert-shard-all-to-all: mpi must be OpenMPI or "
                       "MPICH, got '")
          << mpi << "'";
      return signalPassFailure();
    }
    SmallVector<shard::AllToAllOp> exchanges;
    module.walk([&](shard::AllToAllOp op) { exchanges.push_back(op); });
    SymbolTableCollection symbols;
    OpBuilder b(&getContext());
    std::optional<int64_t> worldSize;
    for (shard::AllToAllOp op : exchanges) {
      shard::GridOp grid = shard::getGridOrNull(op, op.getGridAttr(), symbols);
      if (!grid) {
        op.emitOpError("moe-convert-shard-all-to-all: no grid ")
            << op.getGridAttr();
        return signalPassFailure();
      }
      ArrayRef<int64_t> shape = grid.getShape();
      if (llvm::any_of(shape, ShapedType::isDynamic)) {
        op.emitOpError("moe-convert-shard-all-to-all: the grid's shape must "
                       "be static");
        return signalPassFailure();
      }
      int64_t devices = std::accumulate(shape.begin(), shape.end(), int64_t(1),
                                        std::multiplies<int64_t>());
      // The group's devices in the order of its axes: row-major world ranks
      // only when its axes of more than one device are in increasing order.
      int64_t group = 1, lastAxis = -1;
      for (int16_t axis : op.getGridAxes()) {
        group *= shape[axis];
        if (shape[axis] == 1)
          continue;
        if (axis < lastAxis) {
          op.emitOpError("moe-convert-shard-all-to-all: grid axes out of "
                         "order (")
              << lastAxis << " before " << axis
              << ") number the devices otherwise than MPI_COMM_WORLD";
          return signalPassFailure();
        }
        lastAxis = axis;
      }
      if (group == 1) {
        op.getResult().replaceAllUsesWith(op.getInput());
        op.erase();
        continue;
      }
      if (group != devices) {
        op.emitOpError("moe-convert-shard-all-to-all: exchanges within part "
                       "of the grid (")
            << group << " of " << devices
            << " devices) need sub-communicators, which are not supported";
        return signalPassFailure();
      }
      if (worldSize && *worldSize != devices) {
        op.emitOpError("moe-convert-shard-all-to-all: grids of ")
            << *worldSize << " and " << devices
            << " devices in one module (one MPI_COMM_WORLD)";
        return signalPassFailure();
      }
      worldSize = devices;
      if (failed(lowerAllToAll(op, group, b)))
        return signalPassFailure();
    }
    if (worldSize && failed(markMPIWorld(module, *worldSize, mpi)))
      return signalPassFailure();
    // Grids nothing refers to any more.
    for (shard::GridOp grid :
         llvm::make_early_inc_range(module.getOps<shard::GridOp>()))
      if (SymbolTable::symbolKnownUseEmpty(grid, module))
        grid.erase();
  }
};

} // namespace
