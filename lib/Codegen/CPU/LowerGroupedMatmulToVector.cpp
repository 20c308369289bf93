//===- LowerGroupedMatmulToVector.cpp - grouped matmul micro-kernel -------===//
//
// moe.grouped_matmul on memrefs -> scf loops over row blocks and register
// tiles, each tile a loop over the reduction dimension that keeps one
// vector<VW x f32> accumulator per output:
//
//   for b in blocks:  e = block_experts[b]; skip unless 0 <= e < E
//     for n0 in columns step NR:  for m0 in block rows step MR:
//       acc[MR][NR] = 0
//       for k in 0..K step VW:                        (remainder: padded read)
//         a[i] = input[b*BM + m0 + i, k:k+VW]          (contiguous)
//         w[j] = weight[e, n0 + j, k:k+VW]             (contiguous)
//         acc[i][j] = fma(a[i], w[j], acc[i][j])
//       init[b*BM + m0 + i, n0 + j] += reduce_add(acc[i][j])
//
// Reading both operands along K is what the checkpoint layout [E, N, K]
// offers without repacking; MR + NR loads feed MR * NR FMAs.
//
//===----------------------------------------------------------------------===//

#include "moe/Codegen/CPU/Passes.h"
#include "moe/Dialect/MoE/IR/MoE.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOELOWERGROUPEDMATMULTOVECTORPASS
#include "moe/Codegen/CPU/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

struct KernelShape {
  int64_t vectorWidth;
  int64_t tileRows;
  int64_t tileCols;
};

/// Emits the kernel of one memref-form grouped matmul in place of it.
class KernelEmitter {
public:
  KernelEmitter(OpBuilder &b, GroupedMatmulOp op, KernelShape shape)
      : b(b), loc(op.getLoc()), op(op), shape(shape),
        f32(b.getF32Type()) {}

  void emit() {
    Value input = op.getInput(), weight = op.getWeight();
    Value blocks = op.getBlockExperts(), init = op.getInit();
    int64_t blockRows = op.getBlockRows();
    zero = constant(0);
    Value bm = constant(blockRows);
    // Sizes as the buffers have them: a dynamic mismatch the verifier could
    // not see shrinks the work, it never reads or writes past a buffer.
    depth = minOf(dim(input, 1), dim(weight, 2));
    columns = minOf(dim(weight, 1), dim(init, 1));
    Value numBlocks = minOf(
        dim(blocks, 0),
        minOf(arith::DivUIOp::create(b, loc, dim(input, 0), bm),
              arith::DivUIOp::create(b, loc, dim(init, 0), bm)));
    Value vw = constant(shape.vectorWidth);
    mainDepth = arith::SubIOp::create(
        b, loc, depth, arith::RemUIOp::create(b, loc, depth, vw));
    std::optional<int64_t> staticDepth = getConstantIntValue(depth);
    hasDepthRemainder =
        !staticDepth || *staticDepth % shape.vectorWidth != 0;

    forLoop(zero, numBlocks, 1, [&](Value block) {
      Value expert, owned;
      std::tie(expert, owned) = op.loadBlockExpert(b, loc, block);
      auto ifOp = scf::IfOp::create(b, loc, owned, /*withElse=*/false);
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(ifOp.thenBlock());
      this->expert = expert;
      firstRow = arith::MulIOp::create(b, loc, block, bm);
      // Only the block's filled rows: padding rows cost nothing.
      Value rows = op.loadFilledRows(b, loc, block);
      emitBlock(rows);
    });
  }

private:
  Value constant(int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); }
  Value dim(Value memref, int64_t d) {
    return getValueOrCreateConstantIndexOp(
        b, loc, memref::getMixedSize(b, loc, memref, d));
  }
  Value minOf(Value x, Value y) {
    return arith::MinUIOp::create(b, loc, x, y);
  }
  Value add(Value x, Value y) { return arith::AddIOp::create(b, loc, x, y); }

  void forLoop(Value lb, Value ub, int64_t step,
               function_ref<void(Value)> body) {
    auto loop = scf::ForOp::create(b, loc, lb, ub, constant(step));
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    body(loop.getInductionVar());
  }

  /// The first `rows` rows of a row block: full register tiles, then the
  /// remainder columns and rows with narrower tiles.
  void emitBlock(Value rows) {
    int64_t mr = shape.tileRows, nr = shape.tileCols;
    Value mainRows = arith::SubIOp::create(
        b, loc, rows, arith::RemUIOp::create(b, loc, rows, constant(mr)));
    Value mainColumns = arith::SubIOp::create(
        b, loc, columns, arith::RemUIOp::create(b, loc, columns, constant(nr)));
    auto rowsOf = [&](Value column, int64_t width) {
      forLoop(zero, mainRows, mr,
              [&](Value row) { emitTile(row, column, mr, width); });
      if (mr > 1)
        forLoop(mainRows, rows, 1,
                [&](Value row) { emitTile(row, column, 1, width); });
    };
    forLoop(zero, mainColumns, nr, [&](Value column) { rowsOf(column, nr); });
    if (nr > 1)
      forLoop(mainColumns, columns, 1, [&](Value column) { rowsOf(column, 1); });
  }

  /// vector<VW x f32> of `memref[indices..., k : k + VW]`; a padded read
  /// (zeros past the end) unless `inBounds`.
  Value read(Value memref, SmallVector<Value> indices, bool inBounds) {
    auto type = llvm::cast<MemRefType>(memref.getType());
    auto vectorType =
        VectorType::get({shape.vectorWidth}, type.getElementType());
    Value padding = arith::ConstantOp::create(
        b, loc, b.getZeroAttr(type.getElementType()));
    Value v = vector::TransferReadOp::create(b, loc, vectorType, memref,
                                             indices, padding,
                                             ArrayRef<bool>{inBounds});
    if (type.getElementType() != f32)
      v = arith::ExtFOp::create(
          b, loc, VectorType::get({shape.vectorWidth}, f32), v);
    return v;
  }

  /// acc[i][j] += input row i . weight row j over [k, k + VW).
  SmallVector<Value> step(Value row, Value column, int64_t mr, int64_t nr,
                          Value k, ValueRange acc, bool inBounds) {
    SmallVector<Value> a, w;
    for (int64_t i = 0; i < mr; ++i)
      a.push_back(read(op.getInput(), {add(add(firstRow, row), constant(i)), k},
                       inBounds));
    for (int64_t j = 0; j < nr; ++j)
      w.push_back(read(op.getWeight(),
                       {expert, add(column, constant(j)), k}, inBounds));
    SmallVector<Value> next;
    for (int64_t i = 0; i < mr; ++i)
      for (int64_t j = 0; j < nr; ++j)
        next.push_back(
            vector::FMAOp::create(b, loc, a[i], w[j], acc[i * nr + j]));
    return next;
  }

  void emitTile(Value row, Value column, int64_t mr, int64_t nr) {
    auto accType = VectorType::get({shape.vectorWidth}, f32);
    Value zeros = arith::ConstantOp::create(
        b, loc, accType, DenseElementsAttr::get(accType, b.getF32FloatAttr(0)));
    SmallVector<Value> init(mr * nr, zeros);
    auto loop = scf::ForOp::create(
        b, loc, zero, mainDepth, constant(shape.vectorWidth), init,
        [&](OpBuilder &, Location, Value k, ValueRange acc) {
          scf::YieldOp::create(b, loc,
                               step(row, column, mr, nr, k, acc, true));
        });
    SmallVector<Value> acc(loop.getResults());
    if (hasDepthRemainder)
      acc = step(row, column, mr, nr, mainDepth, acc, false);
    auto fastmath = arith::FastMathFlagsAttr::get(
        b.getContext(), arith::FastMathFlags::reassoc);
    for (int64_t i = 0; i < mr; ++i) {
      Value r = add(add(firstRow, row), constant(i));
      for (int64_t j = 0; j < nr; ++j) {
        Value c = add(column, constant(j));
        Value sum = vector::ReductionOp::create(
            b, loc, vector::CombiningKind::ADD, acc[i * nr + j], Value(),
            fastmath.getValue());
        Value old = memref::LoadOp::create(b, loc, op.getInit(),
                                           ValueRange{r, c});
        memref::StoreOp::create(b, loc, arith::AddFOp::create(b, loc, old, sum),
                                op.getInit(), ValueRange{r, c});
      }
    }
  }

  OpBuilder &b;
  Location loc;
  GroupedMatmulOp op;
  KernelShape shape;
  Type f32;
  Value zero, depth, columns, mainDepth, expert, firstRow;
  bool hasDepthRemainder = true;
};

struct MoELowerGroupedMatmulToVectorPass
    : public moe::impl::MoELowerGroupedMatmulToVectorPassBase<
          MoELowerGroupedMatmulToVectorPass> {
  using MoELowerGroupedMatmulToVectorPassBase::
      MoELowerGroupedMatmulToVectorPassBase;

  LogicalResult initialize(MLIRContext *context) override {
    if (vectorWidth < 1 || tileRows < 1 || tileCols < 1 ||
        tileRows * tileCols > 64)
      return emitError(UnknownLoc::get(context))
             << "moe-lower-grouped-matmul-to-vector: vector-width, tile-rows "
                "and tile-cols must be at least 1 and tile-rows * tile-cols "
                "at most 64, got "
             << static_cast<int64_t>(vectorWidth) << ", "
             << static_cast<int64_t>(tileRows) << ", "
             << static_cast<int64_t>(tileCols);
    return success();
  }

  void runOnOperation() override {
    SmallVector<GroupedMatmulOp> ops;
    getOperation()->walk([&](GroupedMatmulOp op) { ops.push_back(op); });
    IRRewriter rewriter(&getContext());
    for (GroupedMatmulOp op : ops) {
      if (!op.getResult().empty()) {
        op.emitError("moe-lower-grouped-matmul-to-vector: expects the memref "
                     "form (run after bufferization)");
        return signalPassFailure();
      }
      rewriter.setInsertionPoint(op);
      KernelEmitter(rewriter, op, {vectorWidth, tileRows, tileCols}).emit();
      rewriter.eraseOp(op);
    }
  }
};

} // namespace
