//===- DotKernel.cpp - Register-tiled dot-product matmul kernel -----------===//

#include "DotKernel.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace mlir::moe::cpu;

LogicalResult moe::cpu::verifyKernelShape(const KernelShape &shape,
                                          StringRef pass, std::string &error) {
  if (shape.vectorWidth >= 1 && shape.tileRows >= 1 && shape.tileCols >= 1 &&
      shape.tileRows * shape.tileCols <= 64)
    return success();
  error = (pass + ": vector-width, tile-rows and tile-cols must be at least 1 "
                  "and tile-rows * tile-cols at most 64, got " +
           Twine(shape.vectorWidth) + ", " + Twine(shape.tileRows) + ", " +
           Twine(shape.tileCols))
              .str();
  return failure();
}

DotKernelEmitter::DotKernelEmitter(OpBuilder &b, Location loc,
                                   KernelShape shape, Value input,
                                   Value weight, Value output, Value depth)
    : b(b), loc(loc), shape(shape), input(input), weight(weight),
      output(output), depth(depth), f32(b.getF32Type()) {
  zero = constant(0);
  mainDepth = arith::SubIOp::create(
      b, loc, depth,
      arith::RemUIOp::create(b, loc, depth, constant(shape.vectorWidth)));
  std::optional<int64_t> staticDepth = getConstantIntValue(depth);
  hasDepthRemainder = !staticDepth || *staticDepth % shape.vectorWidth != 0;
}

Value DotKernelEmitter::constant(int64_t v) {
  return arith::ConstantIndexOp::create(b, loc, v);
}

Value DotKernelEmitter::dim(Value memref, int64_t d) {
  return getValueOrCreateConstantIndexOp(
      b, loc, memref::getMixedSize(b, loc, memref, d));
}

Value DotKernelEmitter::minOf(Value x, Value y) {
  return arith::MinUIOp::create(b, loc, x, y);
}

Value DotKernelEmitter::add(Value x, Value y) {
  return arith::AddIOp::create(b, loc, x, y);
}

void DotKernelEmitter::forLoop(Value lb, Value ub, int64_t step,
                               function_ref<void(Value)> body) {
  auto loop = scf::ForOp::create(b, loc, lb, ub, constant(step));
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(loop.getBody());
  body(loop.getInductionVar());
}

void DotKernelEmitter::emitRows(Value first, Value rows, Value firstColumn,
                                Value endColumn, ValueRange weightPrefix) {
  firstRow = first;
  prefix.assign(weightPrefix.begin(), weightPrefix.end());
  int64_t mr = shape.tileRows, nr = shape.tileCols;
  Value mainRows = arith::SubIOp::create(
      b, loc, rows, arith::RemUIOp::create(b, loc, rows, constant(mr)));
  Value columns = arith::SubIOp::create(b, loc, endColumn, firstColumn);
  Value mainEnd = add(firstColumn,
                      arith::SubIOp::create(
                          b, loc, columns,
                          arith::RemUIOp::create(b, loc, columns, constant(nr))));
  auto rowsOf = [&](Value column, int64_t width) {
    forLoop(zero, mainRows, mr,
            [&](Value row) { emitTile(row, column, mr, width); });
    if (mr > 1)
      forLoop(mainRows, rows, 1,
              [&](Value row) { emitTile(row, column, 1, width); });
  };
  forLoop(firstColumn, mainEnd, nr, [&](Value column) { rowsOf(column, nr); });
  if (nr > 1)
    forLoop(mainEnd, endColumn, 1, [&](Value column) { rowsOf(column, 1); });
}

/// vector<VW x f32> of `memref[indices..., k : k + VW]`; a padded read
/// (zeros past the end) unless `inBounds`.
Value DotKernelEmitter::read(Value memref, SmallVector<Value> indices,
                             bool inBounds) {
  auto type = llvm::cast<MemRefType>(memref.getType());
  auto vectorType = VectorType::get({shape.vectorWidth}, type.getElementType());
  Value padding =
      arith::ConstantOp::create(b, loc, b.getZeroAttr(type.getElementType()));
  Value v = vector::TransferReadOp::create(b, loc, vectorType, memref, indices,
                                           padding, ArrayRef<bool>{inBounds});
  if (type.getElementType() != f32)
    v = arith::ExtFOp::create(b, loc,
                              VectorType::get({shape.vectorWidth}, f32), v);
  return v;
}

/// acc[i][j] += input row i . weight row j over [k, k + VW).
SmallVector<Value> DotKernelEmitter::step(Value row, Value column, int64_t mr,
                                          int64_t nr, Value k, ValueRange acc,
                                          bool inBounds) {
  SmallVector<Value> a, w;
  for (int64_t i = 0; i < mr; ++i)
    a.push_back(read(input, {add(add(firstRow, row), constant(i)), k},
                     inBounds));
  for (int64_t j = 0; j < nr; ++j) {
    SmallVector<Value> at(prefix);
    at.append({add(column, constant(j)), k});
    w.push_back(read(weight, at, inBounds));
  }
  SmallVector<Value> next;
  for (int64_t i = 0; i < mr; ++i)
    for (int64_t j = 0; j < nr; ++j)
      next.push_back(vector::FMAOp::create(b, loc, a[i], w[j], acc[i * nr + j]));
  return next;
}

void DotKernelEmitter::emitTile(Value row, Value column, int64_t mr,
                                int64_t nr) {
  auto accType = VectorType::get({shape.vectorWidth}, f32);
  Value zeros = arith::ConstantOp::create(
      b, loc, accType, DenseElementsAttr::get(accType, b.getF32FloatAttr(0)));
  SmallVector<Value> init(mr * nr, zeros);
  auto loop = scf::ForOp::create(
      b, loc, zero, mainDepth, constant(shape.vectorWidth), init,
      [&](OpBuilder &, Location, Value k, ValueRange acc) {
        scf::YieldOp::create(b, loc, step(row, column, mr, nr, k, acc, true));
      });
  SmallVector<Value> acc(loop.getResults());
  if (hasDepthRemainder)
    acc = step(row, column, mr, nr, mainDepth, acc, false);
  auto fastmath = arith::FastMathFlagsAttr::get(b.getContext(),
                                                arith::FastMathFlags::reassoc);
  for (int64_t i = 0; i < mr; ++i) {
    Value r = add(add(firstRow, row), constant(i));
    for (int64_t j = 0; j < nr; ++j) {
      Value c = add(column, constant(j));
      Value sum = vector::ReductionOp::create(
          b, loc, vector::CombiningKind::ADD, acc[i * nr + j], Value(),
          fastmath.getValue());
      Value old = memref::LoadOp::create(b, loc, output, ValueRange{r, c});
      memref::StoreOp::create(b, loc, arith::AddFOp::create(b, loc, old, sum),
                              output, ValueRange{r, c});
    }
  }
}
