//===- PanelKernel.cpp - Outer-product kernel over packed weights ---------===//

#include "PanelKernel.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include <numeric>

using namespace mlir;
using namespace mlir::moe::cpu;

/// Accumulator sets a one-row tile splits K over when it has fewer
/// accumulators than this: enough independent FMA chains to cover the FMA
/// latency.
static constexpr int64_t kMinIndependentAccumulators = 8;

PanelKernelEmitter::PanelKernelEmitter(OpBuilder &b, Location loc,
                                       int64_t vectorWidth, int64_t tileRows,
                                       Value input, ValueRange weights,
                                       Value output, Value depth)
    : KernelBuilder(b, loc), tileRows(tileRows), input(input), output(output),
      depth(depth), weights(weights.begin(), weights.end()) {
  panelColumns =
      llvm::cast<MemRefType>(weights.front().getType()).getDimSize(3);
  // Vectors that tile a panel exactly.
  lanes = std::gcd(panelColumns, vectorWidth);
  vectorsPerPanel = panelColumns / lanes;
  accType = VectorType::get({lanes}, b.getF32Type());
  zero = constant(0);
}

void PanelKernelEmitter::emitRows(Value first, Value rows, Value columns,
                                  Value expertId) {
  firstRow = first;
  expert = expertId;
  int64_t mr = tileRows;
  Value mainRows = arith::SubIOp::create(
      b, loc, rows, arith::RemUIOp::create(b, loc, rows, constant(mr)));
  Value panels =
      arith::CeilDivUIOp::create(b, loc, columns, constant(panelColumns));
  forLoop(zero, panels, 1, [&](Value panel) {
    forLoop(zero, mainRows, mr, [&](Value row) { emitTile(row, panel, mr); });
    // The rest (< MR rows) as tiles of the powers of two below MR, each
    // taken when its bit is set in the count: MR = 8 leaves 4 + 2 + 1.
    Value row = mainRows;
    Value rest = arith::SubIOp::create(b, loc, rows, mainRows);
    for (int64_t h = llvm::PowerOf2Ceil(mr) / 2; h >= 1; h /= 2) {
      Value taken = arith::CmpIOp::create(
          b, loc, arith::CmpIPredicate::ne,
          arith::AndIOp::create(b, loc, rest, constant(h)), zero);
      auto ifOp = scf::IfOp::create(b, loc, taken, /*withElse=*/false);
      {
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPointToStart(ifOp.thenBlock());
        emitTile(row, panel, h);
      }
      row = arith::SelectOp::create(b, loc, taken, add(row, constant(h)), row);
    }
  });
}

/// acc[i][w][j] += input[row + i, k] *
///                  weights[w][expert, panel, k, j-th vector].
SmallVector<Value>
PanelKernelEmitter::step(ArrayRef<std::pair<Value, Value>> rows, Value panel,
                         int64_t mr, Value k, ValueRange acc) {
  auto weightType = llvm::cast<MemRefType>(weights.front().getType());
  Type f32 = b.getF32Type();
  SmallVector<Value> w;
  Value padding = arith::ConstantOp::create(
      b, loc, b.getZeroAttr(weightType.getElementType()));
  for (Value weight : weights)
    for (int64_t j = 0; j < vectorsPerPanel; ++j) {
      Value v = vector::TransferReadOp::create(
          b, loc, VectorType::get({lanes}, weightType.getElementType()), weight,
          ValueRange{expert, panel, k, constant(j * lanes)}, padding,
          ArrayRef<bool>{true});
      if (weightType.getElementType() != f32)
        v = arith::ExtFOp::create(b, loc, accType, v);
      w.push_back(v);
    }
  SmallVector<Value> next;
  for (int64_t i = 0; i < mr; ++i) {
    Value x =
        memref::LoadOp::create(b, loc, input, ValueRange{rows[i].first, k});
    if (x.getType() != f32)
      x = arith::ExtFOp::create(b, loc, f32, x);
    Value a = vector::BroadcastOp::create(b, loc, accType, x);
    for (auto [j, wj] : llvm::enumerate(w))
      next.push_back(
          vector::FMAOp::create(b, loc, a, wj, acc[i * w.size() + j]));
  }
  return next;
}

void PanelKernelEmitter::emitTile(Value row, Value panel, int64_t mr) {
  int64_t perRow = vectorsPerPanel * static_cast<int64_t>(weights.size());
  int64_t perSet = mr * perRow;
  // Accumulator sets over which K is split (interleaved, k mod sets).
  int64_t sets = 1;
  while (perSet * sets < kMinIndependentAccumulators)
    sets *= 2;
  Value zeros = arith::ConstantOp::create(
      b, loc, accType, DenseElementsAttr::get(accType, b.getF32FloatAttr(0)));
  SmallVector<Value> init(perSet * sets, zeros);
  SmallVector<std::pair<Value, Value>> rows = inputRows(add(firstRow, row), mr);
  Value mainDepth = arith::SubIOp::create(
      b, loc, depth, arith::RemUIOp::create(b, loc, depth, constant(sets)));
  auto loop = scf::ForOp::create(
      b, loc, zero, mainDepth, constant(sets), init,
      [&](OpBuilder &, Location, Value k, ValueRange acc) {
        SmallVector<Value> next;
        for (int64_t s = 0; s < sets; ++s)
          llvm::append_range(next,
                             step(rows, panel, mr, s ? add(k, constant(s)) : k,
                                  acc.slice(s * perSet, perSet)));
        scf::YieldOp::create(b, loc, next);
      });
  // Fold the sets into the first, then the depth's remainder.
  SmallVector<Value> acc(loop.getResults().take_front(perSet));
  for (int64_t s = 1; s < sets; ++s)
    for (int64_t a = 0; a < perSet; ++a)
      acc[a] =
          arith::AddFOp::create(b, loc, acc[a], loop.getResult(s * perSet + a));
  if (sets > 1) {
    auto rest = scf::ForOp::create(
        b, loc, mainDepth, depth, constant(1), acc,
        [&](OpBuilder &, Location, Value k, ValueRange acc) {
          scf::YieldOp::create(b, loc, step(rows, panel, mr, k, acc));
        });
    acc.assign(rest.getResults().begin(), rest.getResults().end());
  }
  // Columns past N (the zero padding of the last panel) are masked off.
  Value padding = arith::ConstantOp::create(b, loc, b.getF32FloatAttr(0));
  Value firstColumn =
      arith::MulIOp::create(b, loc, panel, constant(panelColumns));
  for (int64_t i = 0; i < mr; ++i) {
    writeBack(add(add(firstRow, row), constant(i)), [&](Value r, Scale scale) {
      for (int64_t j = 0; j < vectorsPerPanel; ++j) {
        Value c = add(firstColumn, constant(j * lanes));
        SmallVector<Value, 2> sums;
        for (size_t w = 0; w < weights.size(); ++w)
          sums.push_back(keepValid(rows[i].second,
                                   acc[i * perRow + w * vectorsPerPanel + j]));
        Value value = combine(
            sums,
            [&]() -> Value {
              return vector::TransferReadOp::create(b, loc, accType, output,
                                                    ValueRange{r, c}, padding,
                                                    ArrayRef<bool>{false});
            },
            scale);
        vector::TransferWriteOp::create(b, loc, value, output, ValueRange{r, c},
                                        ArrayRef<bool>{false});
      }
    });
  }
}
