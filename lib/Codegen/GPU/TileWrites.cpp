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
  if (op.hasEpilogue()) {
    SmallVector<Value> args(sums);
    args.push_back(op.loadInitElement(b, loc, row, column));
    Value element = cloneElementwiseBody(b, op.getEpilogueBody(), args, {})[0];
    op.storeInitElement(b, loc, element, row, column);
    return;
  }
  if (!op.isScattering()) {
    op.addToInitElement(b, loc, sums[0], row, column);
    return;
  }
  Value target, scale, adds;
  std::tie(target, scale, adds) = op.loadScatterTarget(b, loc, row);
  scf::IfOp::create(b, loc, adds, [&](OpBuilder &ab, Location al) {
    op.addToInitElement(ab, al, arith::MulFOp::create(ab, al, scale, sums[0]),
                        target, column);
    scf::YieldOp::create(ab, al);
  });
}
