//===- LowerTransposedMatmulToVector.cpp - A * B^T to the micro-kernel ----===//
//
// linalg.matmul (m, k), (n, k) -> (m, n) on memrefs, the form of every
// projection whose weights keep the checkpoint layout [N, K] (routers,
// shared experts, dense layers), becomes
//
//   scf.forall (n0, m0) = (0, 0) to (N, M) step (TN, BM)
//     C[m0 : m0 + min(BM, M - m0), n0 : min(n0 + TN, N)] += A[...] * B[...]^T
//
// each tile the dot-product kernel of DotKernel.h. Columns outermost: a
// thread's contiguous share of the tiles reuses its weight panel across
// the rows. linalg.batch_matmul (b, m, k), (b, n, k) -> (b, m, n) (the
// capacity layout's experts) gets the batch as one more, outermost, forall
// dimension.
//
//===----------------------------------------------------------------------===//

#include "DotKernel.h"
#include "moe/Codegen/CPU/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOELOWERTRANSPOSEDMATMULTOVECTORPASS
#include "moe/Codegen/CPU/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::cpu;

namespace {

/// A memref of `rank` with an element type `elementOk` accepts whose
/// innermost dimension is contiguous.
bool isUnitStrideMemRef(Value value, int64_t rank,
                        function_ref<bool(Type)> elementOk) {
  auto type = llvm::dyn_cast<MemRefType>(value.getType());
  return type && type.getRank() == rank && elementOk(type.getElementType()) &&
         type.isLastDimUnitStride();
}

/// Whether `op` is `C += A * B^T` (rank 2) or its batched form (rank 3:
/// `C[b] += A[b] * B[b]^T`) on memrefs the kernel handles.
bool isTransposedMatmul(linalg::LinalgOp op) {
  int64_t rank;
  if (isa<linalg::MatmulTransposeBOp>(op.getOperation()))
    rank = 2;
  else if (isa<linalg::BatchMatmulTransposeBOp>(op.getOperation()))
    rank = 3;
  else
    return false;
  if (!op.hasPureBufferSemantics())
    return false;
  auto isF32 = [](Type t) { return t.isF32(); };
  auto isFloat = [](Type t) { return t.isF32() || t.isBF16() || t.isF16(); };
  return isUnitStrideMemRef(op.getDpsInputOperand(0)->get(), rank, isF32) &&
         isUnitStrideMemRef(op.getDpsInputOperand(1)->get(), rank, isFloat) &&
         isUnitStrideMemRef(op.getDpsInitOperand(0)->get(), rank, isF32);
}

/// `memref[index, ...]` as a rank-reduced view of one fewer dimension.
Value batchView(OpBuilder &b, Location loc, Value memref, Value index) {
  auto type = llvm::cast<MemRefType>(memref.getType());
  SmallVector<OpFoldResult> offsets(type.getRank(), b.getIndexAttr(0));
  offsets[0] = index;
  SmallVector<OpFoldResult> sizes = memref::getMixedSizes(b, loc, memref);
  sizes[0] = b.getIndexAttr(1);
  SmallVector<OpFoldResult> strides(type.getRank(), b.getIndexAttr(1));
  auto viewType = memref::SubViewOp::inferRankReducedResultType(
      type.getShape().drop_front(), type, offsets, sizes, strides);
  return memref::SubViewOp::create(b, loc, llvm::cast<MemRefType>(viewType),
                                   memref, offsets, sizes, strides);
}

void emitTransposedMatmul(OpBuilder &b, linalg::LinalgOp op, KernelShape shape,
                          int64_t blockRows, int64_t tileN) {
  Location loc = op.getLoc();
  Value a = op.getDpsInputOperand(0)->get();
  Value w = op.getDpsInputOperand(1)->get();
  Value c = op.getDpsInitOperand(0)->get();
  bool batched = llvm::cast<MemRefType>(a.getType()).getRank() == 3;
  int64_t first = batched ? 1 : 0;
  auto dim = [&](Value memref, int64_t d) {
    return memrefDim(b, loc, memref, d);
  };
  auto minOf = [&](Value x, Value y) { return minIndex(b, loc, x, y); };
  // Sizes as the buffers have them (minIndex).
  Value rows = minOf(dim(a, first), dim(c, first));
  Value columns = minOf(dim(w, first), dim(c, first + 1));
  Value depth = minOf(dim(a, first + 1), dim(w, first + 1));
  Value bm = arith::ConstantIndexOp::create(b, loc, blockRows);
  Value tn = arith::ConstantIndexOp::create(b, loc, tileN);
  Value one = arith::ConstantIndexOp::create(b, loc, 1);
  SmallVector<OpFoldResult> lbs, ubs, steps;
  if (batched) {
    Value batches = minOf(minOf(dim(a, 0), dim(w, 0)), dim(c, 0));
    lbs.push_back(b.getIndexAttr(0));
    ubs.push_back(batches);
    steps.push_back(one);
  }
  lbs.append(2, b.getIndexAttr(0));
  ubs.append({columns, rows});
  steps.append({tn, bm});
  // An scf.forall, like the grouped matmul's tiles: every dimension stays
  // parallel (moe-parallelize-outer-dimension leaves foralls alone).
  scf::ForallOp::create(
      b, loc, lbs, ubs, steps, ValueRange{}, std::nullopt,
      [&](OpBuilder &nb, Location nl, ValueRange ivs) {
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
        Value input = a, output = c;
        SmallVector<Value> prefix;
        if (batched) {
          input = batchView(b, nl, a, ivs[0]);
          output = batchView(b, nl, c, ivs[0]);
          prefix.push_back(ivs[0]);
        }
        Value column = ivs[first], row = ivs[first + 1];
        DotKernelEmitter kernel(b, nl, shape, input, ValueRange{w}, output,
                                depth);
        Value endColumn =
            minOf(arith::AddIOp::create(b, nl, column, tn), columns);
        Value tileRows = minOf(bm, arith::SubIOp::create(b, nl, rows, row));
        kernel.emitRows(row, tileRows, column, endColumn, prefix);
        scf::InParallelOp::create(b, nl);
      });
}

struct MoELowerTransposedMatmulToVectorPass
    : public moe::impl::MoELowerTransposedMatmulToVectorPassBase<
          MoELowerTransposedMatmulToVectorPass> {
  using MoELowerTransposedMatmulToVectorPassBase::
      MoELowerTransposedMatmulToVectorPassBase;

  LogicalResult initialize(MLIRContext *context) override {
    std::string error;
    if (failed(verifyKernelShape({vectorWidth, tileRows, tileCols},
                                 getArgument(), error)))
      return emitError(UnknownLoc::get(context)) << error;
    if (blockRows < 1 || tileN < 1)
      return emitError(UnknownLoc::get(context))
             << getArgument() << ": block-rows and tile-n must be at least 1, "
             << "got " << static_cast<int64_t>(blockRows) << ", "
             << static_cast<int64_t>(tileN);
    return success();
  }

  void runOnOperation() override {
    SmallVector<linalg::LinalgOp> ops;
    getOperation()->walk([&](linalg::LinalgOp op) {
      if (isTransposedMatmul(op))
        ops.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (linalg::LinalgOp op : ops) {
      rewriter.setInsertionPoint(op);
      emitTransposedMatmul(rewriter, op, {vectorWidth, tileRows, tileCols},
                           blockRows, tileN);
      rewriter.eraseOp(op);
    }
  }
};

} // namespace
