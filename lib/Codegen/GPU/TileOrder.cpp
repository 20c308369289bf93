//===- TileOrder.cpp - The order in which a grid runs its tiles ----------===//

#include "TileOrder.h"

#include "moe/Dialect/MoE/IR/MoE.h"

#include "mlir/Dialect/Arith/IR/Arith.h"

#include <cmath>

using namespace mlir;

namespace mlir::moe::gpu_codegen {

int64_t groupRowsByRule(scf::ParallelOp loop, int64_t multiprocessors) {
  if (multiprocessors < 1)
    return 0;
  SmallVector<GroupedMatmulOp> matmuls;
  loop.walk([&](GroupedMatmulOp op) { matmuls.push_back(op); });
  if (matmuls.size() != 1)
    return 0;
  GroupedMatmulOp op = matmuls.front();
  auto init = llvm::dyn_cast<MemRefType>(op.getInit().getType());
  auto input = llvm::dyn_cast<MemRefType>(op.getInput().getType());
  auto weight = llvm::dyn_cast<MemRefType>(op.getWeight().getType());
  if (!init || !input || !weight || init.getRank() != 2 || init.isDynamicDim(1))
    return 0;
  double inputBits = input.getElementTypeBitWidth();
  // e2m1 weights hold two values per byte.
  double weightBits =
      weight.getElementTypeBitWidth() / (op.hasE2M1Pairs() ? 2.0 : 1.0);
  double columns = init.getDimSize(1);
  double weights = op.getWeights().size();
  double rows = op.getBlockRows();
  double best = std::sqrt(static_cast<double>(multiprocessors) * columns *
                          weights * weightBits / (rows * inputBits));
  return std::max<int64_t>(1, std::llround(best));
}

SmallVector<Value> tileIndices(OpBuilder &b, Location loc, Value linear,
                               ArrayRef<Value> counts, ArrayRef<int64_t> order,
                               int64_t groupRows) {
  SmallVector<Value> indices(counts.size());
  Value rest = linear;
  ArrayRef<int64_t> plain = order;
  if (groupRows > 0 && order.size() >= 2) {
    Value rows = counts[order[0]], columns = counts[order[1]];
    Value inPlane = rest;
    if (order.size() > 2) {
      Value plane = arith::MulIOp::create(b, loc, rows, columns);
      inPlane = arith::RemUIOp::create(b, loc, rest, plane);
      rest = arith::DivUIOp::create(b, loc, rest, plane);
    }
    Value groupSize = arith::ConstantIndexOp::create(b, loc, groupRows);
    Value groupTiles = arith::MulIOp::create(b, loc, groupSize, columns);
    Value group = arith::DivUIOp::create(b, loc, inPlane, groupTiles);
    Value firstRow = arith::MulIOp::create(b, loc, group, groupSize);
    // The last group may hold fewer row blocks.
    Value height = arith::MinUIOp::create(
        b, loc, arith::SubIOp::create(b, loc, rows, firstRow), groupSize);
    Value local = arith::SubIOp::create(
        b, loc, inPlane, arith::MulIOp::create(b, loc, group, groupTiles));
    indices[order[0]] = arith::AddIOp::create(
        b, loc, firstRow, arith::RemUIOp::create(b, loc, local, height));
    indices[order[1]] = arith::DivUIOp::create(b, loc, local, height);
    plain = order.drop_front(2);
  }
  for (int64_t d : plain) {
    indices[d] = arith::RemUIOp::create(b, loc, rest, counts[d]);
    rest = arith::DivUIOp::create(b, loc, rest, counts[d]);
  }
  return indices;
}

} // namespace mlir::moe::gpu_codegen
