//===- TileWrites.cpp - Where a GPU tile's sums go ------------------------===//

#include "TileWrites.h"

#include "moe/Dialect/MoE/Utils/ElementwiseClone.h"

#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

using namespace mlir;
using namespace mlir::moe;

Value gpu_codegen::clampBelow(OpBuilder &b, Location loc, Value index,
                              Value bound) {
  Value last = arith::SubIOp::create(b, loc, bound, indexConstant(b, loc, 1));
  return arith::MinUIOp::create(b, loc, index, last);
}

Value gpu_codegen::depthBoundOf(OpBuilder &b, Location loc,
                                GroupedMatmulOp op) {
  Value depth = memref::DimOp::create(b, loc, op.getInput(), 1);
  for (Value weight : op.getWeights())
    depth = arith::MinUIOp::create(b, loc, depth,
                                   op.getWeightExtents(b, loc, weight).second);
  return depth;
}

void gpu_codegen::writeTileElement(OpBuilder &b, Location loc,
                                   GroupedMatmulOp op, Value row, Value column,
                                   ArrayRef<Value> sums) {
  Value init = op.getInit();
  if (op.hasEpilogue()) {
    SmallVector<Value> args(sums);
    args.push_back(op.loadInitElement(b, loc, row, column));
    Value element = cloneElementwiseBody(b, op.getEpilogueBody(), args, {})[0];
    op.storeInitElement(b, loc, element, row, column);
    return;
  }
  auto addTo = [&](OpBuilder &ab, Location al, Value target, Value term) {
    Value old =
        memref::LoadOp::create(ab, al, init, ValueRange{target, column});
    memref::StoreOp::create(ab, al, arith::AddFOp::create(ab, al, old, term),
                            init, ValueRange{target, column});
  };
  if (!op.isScattering()) {
    addTo(b, loc, row, sums[0]);
    return;
  }
  Value target, scale, adds;
  std::tie(target, scale, adds) = op.loadScatterTarget(b, loc, row);
  scf::IfOp::create(b, loc, adds, [&](OpBuilder &ab, Location al) {
    addTo(ab, al, target, arith::MulFOp::create(ab, al, scale, sums[0]));
    scf::YieldOp::create(ab, al);
  });
}
