//===- DotKernel.cpp - Register-tiled dot-product matmul kernel -----------===//

#include "DotKernel.h"

#include "moe/Dialect/MoE/Utils/ElementwiseClone.h"

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
  error = (pass +
           ": vector-width, tile-rows and tile-cols must be at least 1 "
           "and tile-rows * tile-cols at most 64, got " +
           Twine(shape.vectorWidth) + ", " + Twine(shape.tileRows) + ", " +
           Twine(shape.tileCols))
              .str();
  return failure();
}

DotKernelEmitter::DotKernelEmitter(OpBuilder &b, Location loc,
                                   KernelShape shape, Value input,
                                   ValueRange weights, Value output,
                                   Value depth)
    : KernelBuilder(b, loc), shape(shape), input(input), output(output),
      depth(depth), weights(weights.begin(), weights.end()),
      f32(b.getF32Type()) {
  zero = constant(0);
  mainDepth = arith::SubIOp::create(
      b, loc, depth,
      arith::RemUIOp::create(b, loc, depth, constant(shape.vectorWidth)));
  std::optional<int64_t> staticDepth = getConstantIntValue(depth);
  hasDepthRemainder = !staticDepth || *staticDepth % shape.vectorWidth != 0;
}

Value KernelBuilder::constant(int64_t v) {
  return arith::ConstantIndexOp::create(b, loc, v);
}

Value moe::cpu::memrefDim(OpBuilder &b, Location loc, Value memref, int64_t d) {
  return getValueOrCreateConstantIndexOp(
      b, loc, memref::getMixedSize(b, loc, memref, d));
}

Value moe::cpu::minIndex(OpBuilder &b, Location loc, Value x, Value y) {
  return arith::MinUIOp::create(b, loc, x, y);
}

Value KernelBuilder::add(Value x, Value y) {
  return arith::AddIOp::create(b, loc, x, y);
}

SmallVector<std::pair<Value, Value>> KernelBuilder::inputRows(Value first,
                                                              int64_t count) {
  SmallVector<std::pair<Value, Value>> rows;
  for (int64_t i = 0; i < count; ++i) {
    Value row = add(first, constant(i));
    rows.push_back(rowSource ? rowSource(b, loc, row)
                             : std::pair<Value, Value>{row, Value()});
  }
  return rows;
}

Value KernelBuilder::keepValid(Value valid, Value value) {
  if (!valid)
    return value;
  Value zeros =
      arith::ConstantOp::create(b, loc, b.getZeroAttr(value.getType()));
  return arith::SelectOp::create(b, loc, valid, value, zeros);
}

void KernelBuilder::writeBack(Value row,
                              function_ref<void(Value, Scale)> body) {
  if (!rowTarget) {
    body(row, [](Value v) { return v; });
    return;
  }
  Value target, scale, adds;
  std::tie(target, scale, adds) = rowTarget(b, loc, row);
  auto ifOp = scf::IfOp::create(b, loc, adds, /*withElse=*/false);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(ifOp.thenBlock());
  body(target, [&](Value v) -> Value {
    Value factor = scale;
    if (auto type = llvm::dyn_cast<VectorType>(v.getType()))
      factor = vector::BroadcastOp::create(b, loc, type, scale);
    return arith::MulFOp::create(b, loc, factor, v);
  });
}

Value KernelBuilder::readOutput(Value output, Value r, Value c,
                                VectorType f32Type, bool inBounds) {
  Type element = llvm::cast<MemRefType>(output.getType()).getElementType();
  Value value;
  if (f32Type) {
    Value padding = arith::ConstantOp::create(b, loc, b.getZeroAttr(element));
    value = vector::TransferReadOp::create(b, loc, f32Type.clone(element),
                                           output, ValueRange{r, c}, padding,
                                           ArrayRef<bool>{inBounds});
  } else {
    value = memref::LoadOp::create(b, loc, output, ValueRange{r, c});
  }
  if (element.isF32())
    return value;
  return arith::ExtFOp::create(b, loc, f32Type ? Type(f32Type) : b.getF32Type(),
                               value);
}

void KernelBuilder::writeOutput(Value value, Value output, Value r, Value c,
                                bool inBounds) {
  Type element = llvm::cast<MemRefType>(output.getType()).getElementType();
  auto vectorType = llvm::dyn_cast<VectorType>(value.getType());
  if (!element.isF32())
    value = arith::TruncFOp::create(
        b, loc, vectorType ? Type(vectorType.clone(element)) : element, value);
  if (vectorType)
    vector::TransferWriteOp::create(b, loc, value, output, ValueRange{r, c},
                                    ArrayRef<bool>{inBounds});
  else
    memref::StoreOp::create(b, loc, value, output, ValueRange{r, c});
}

Value KernelBuilder::combine(ArrayRef<Value> sums,
                             function_ref<Value()> readOld, Scale scale) {
  if (!epilogue)
    return arith::AddFOp::create(b, loc, readOld(), scale(sums.front()));
  SmallVector<Value> args(sums);
  args.push_back(epilogue->getArguments().back().use_empty() ? Value()
                                                             : readOld());
  SmallVector<int64_t> shape;
  if (auto type = llvm::dyn_cast<VectorType>(sums.front().getType()))
    llvm::append_range(shape, type.getShape());
  return cloneElementwiseBody(b, *epilogue, args, shape, vectorMath).front();
}

void KernelBuilder::forLoop(Value lb, Value ub, int64_t step,
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
  Value mainEnd = add(
      firstColumn, arith::SubIOp::create(
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
    v = arith::ExtFOp::create(b, loc, VectorType::get({shape.vectorWidth}, f32),
                              v);
  return v;
}

/// acc[i][w][j] += input row i . row j of weight w over [k, k + VW).
SmallVector<Value>
DotKernelEmitter::step(ArrayRef<std::pair<Value, Value>> rows, Value column,
                       int64_t mr, int64_t nr, Value k, ValueRange acc,
                       bool inBounds) {
  SmallVector<Value> a, w;
  for (int64_t i = 0; i < mr; ++i)
    a.push_back(read(input, {rows[i].first, k}, inBounds));
  for (Value weight : weights)
    for (int64_t j = 0; j < nr; ++j) {
      SmallVector<Value> at(prefix);
      at.append({add(column, constant(j)), k});
      w.push_back(read(weight, at, inBounds));
    }
  SmallVector<Value> next;
  for (int64_t i = 0; i < mr; ++i)
    for (auto [j, wj] : llvm::enumerate(w))
      next.push_back(
          vector::FMAOp::create(b, loc, a[i], wj, acc[i * w.size() + j]));
  return next;
}

void DotKernelEmitter::emitTile(Value row, Value column, int64_t mr,
                                int64_t nr) {
  auto accType = VectorType::get({shape.vectorWidth}, f32);
  Value zeros = arith::ConstantOp::create(
      b, loc, accType, DenseElementsAttr::get(accType, b.getF32FloatAttr(0)));
  int64_t perRow = nr * static_cast<int64_t>(weights.size());
  SmallVector<Value> init(mr * perRow, zeros);
  SmallVector<std::pair<Value, Value>> rows = inputRows(add(firstRow, row), mr);
  auto loop = scf::ForOp::create(
      b, loc, zero, mainDepth, constant(shape.vectorWidth), init,
      [&](OpBuilder &, Location, Value k, ValueRange acc) {
        scf::YieldOp::create(b, loc, step(rows, column, mr, nr, k, acc, true));
      });
  SmallVector<Value> acc(loop.getResults());
  if (hasDepthRemainder)
    acc = step(rows, column, mr, nr, mainDepth, acc, false);
  bool transposedSums = nr > 1 && llvm::isPowerOf2_64(nr) &&
                        llvm::isPowerOf2_64(shape.vectorWidth) &&
                        nr <= shape.vectorWidth;
  for (int64_t i = 0; i < mr; ++i) {
    // The accumulators of row i and weight w.
    auto rowAcc = [&](size_t w) {
      return ArrayRef<Value>(acc).slice(i * perRow + w * nr, nr);
    };
    writeBack(add(add(firstRow, row), constant(i)), [&](Value r, Scale scale) {
      if (transposedSums) {
        // The NR sums as one vector, combined with the NR contiguous
        // outputs.
        SmallVector<Value, 2> sums;
        for (size_t w = 0; w < weights.size(); ++w)
          sums.push_back(
              keepValid(rows[i].second, sumLanesTransposed(rowAcc(w))));
        auto sumsType = llvm::cast<VectorType>(sums.front().getType());
        Value value = combine(
            sums,
            [&]() -> Value {
              return readOutput(output, r, column, sumsType,
                                /*inBounds=*/true);
            },
            scale);
        writeOutput(value, output, r, column, /*inBounds=*/true);
        return;
      }
      auto fastmath = arith::FastMathFlagsAttr::get(
          b.getContext(), arith::FastMathFlags::reassoc);
      for (int64_t j = 0; j < nr; ++j) {
        Value c = add(column, constant(j));
        SmallVector<Value, 2> sums;
        for (size_t w = 0; w < weights.size(); ++w)
          sums.push_back(keepValid(
              rows[i].second, vector::ReductionOp::create(
                                  b, loc, vector::CombiningKind::ADD,
                                  rowAcc(w)[j], Value(), fastmath.getValue())));
        Value value = combine(
            sums,
            [&]() -> Value {
              return readOutput(output, r, c, VectorType(), /*inBounds=*/true);
            },
            scale);
        writeOutput(value, output, r, c, /*inBounds=*/true);
      }
    });
  }
}

/// The lane sums of n accumulators of VW lanes (n and VW powers of two,
/// n <= VW) as one vector<n>, by pairwise halving: each step adds the low
/// and high halves of every lane group of two vectors into one vector
/// holding both (vpermt2ps + vaddps), n - 1 steps for n vectors and
/// log2(VW / n) more within the last one; about 3x fewer operations than n
/// separate reductions, and one vector update of the outputs.
Value DotKernelEmitter::sumLanesTransposed(ArrayRef<Value> accumulators) {
  int64_t vw = shape.vectorWidth;
  // Each entry: a vector whose lanes hold, group by group (groupLanes lanes
  // each), partial sums of the outputs listed in `outputs`.
  struct Partial {
    Value vector;
    SmallVector<int64_t> outputs;
  };
  SmallVector<Partial> partials;
  for (auto [j, acc] : llvm::enumerate(accumulators))
    partials.push_back({acc, {static_cast<int64_t>(j)}});
  int64_t groupLanes = vw;
  while (partials.size() > 1) {
    SmallVector<Partial> next;
    int64_t groups = vw / groupLanes;
    int64_t half = groupLanes / 2;
    for (size_t p = 0; p + 1 < partials.size(); p += 2) {
      const Partial &x = partials[p], &y = partials[p + 1];
      SmallVector<int64_t> low, high;
      Partial merged;
      for (int64_t g = 0; g < groups; ++g) {
        for (int64_t l = 0; l < half; ++l) {
          low.push_back(g * groupLanes + l);
          high.push_back(g * groupLanes + half + l);
        }
        for (int64_t l = 0; l < half; ++l) {
          low.push_back(vw + g * groupLanes + l);
          high.push_back(vw + g * groupLanes + half + l);
        }
        merged.outputs.push_back(x.outputs[g]);
        merged.outputs.push_back(y.outputs[g]);
      }
      merged.vector = arith::AddFOp::create(
          b, loc, vector::ShuffleOp::create(b, loc, x.vector, y.vector, low),
          vector::ShuffleOp::create(b, loc, x.vector, y.vector, high));
      next.push_back(std::move(merged));
    }
    partials = std::move(next);
    groupLanes = half;
  }
  // Within the last vector: halve each group until one lane per output.
  Partial last = partials.front();
  int64_t lanes = vw;
  while (groupLanes > 1) {
    int64_t groups = lanes / groupLanes, half = groupLanes / 2;
    SmallVector<int64_t> low, high;
    for (int64_t g = 0; g < groups; ++g)
      for (int64_t l = 0; l < half; ++l) {
        low.push_back(g * groupLanes + l);
        high.push_back(g * groupLanes + half + l);
      }
    last.vector = arith::AddFOp::create(
        b, loc,
        vector::ShuffleOp::create(b, loc, last.vector, last.vector, low),
        vector::ShuffleOp::create(b, loc, last.vector, last.vector, high));
    lanes /= 2;
    groupLanes = half;
  }
  // Lane l now holds output last.outputs[l]: put them in order.
  SmallVector<int64_t> order(last.outputs.size());
  for (auto [lane, output] : llvm::enumerate(last.outputs))
    order[output] = static_cast<int64_t>(lane);
  return vector::ShuffleOp::create(b, loc, last.vector, last.vector, order);
}
