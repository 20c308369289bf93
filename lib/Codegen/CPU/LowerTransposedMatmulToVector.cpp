//===- LowerTransposedMatmulToVector.cpp - A * B^T to the micro-kernel ----===//
//
// linalg.matmul (m, k), (n, k) -> (m, n) on memrefs, the form of every
// projection whose weights keep the checkpoint layout [N, K] (routers,
// shared experts, dense layers), becomes
//
//   scf.parallel (n0, m0) = (0, 0) to (N, M) step (TN, BM)
//     C[m0 : m0 + min(BM, M - m0), n0 : min(n0 + TN, N)] += A[...] * B[...]^T
//
// each tile the dot-product kernel of DotKernel.h. Columns outermost: a
// thread's contiguous share of the tiles reuses its weight panel across
// the rows.
//
//===----------------------------------------------------------------------===//

#include "DotKernel.h"
#include "moe/Codegen/CPU/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
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

/// A memref of `elementTypes` whose innermost dimension is contiguous.
bool isUnitStrideMemRef(Value value, function_ref<bool(Type)> elementOk) {
  auto type = llvm::dyn_cast<MemRefType>(value.getType());
  return type && type.getRank() == 2 && elementOk(type.getElementType()) &&
         type.isLastDimUnitStride();
}

/// Whether `op` is `C += A * B^T` on memrefs the kernel handles.
bool isTransposedMatmul(linalg::MatmulOp op) {
  if (!op.hasPureBufferSemantics())
    return false;
  MLIRContext *ctx = op.getContext();
  AffineExpr m, n, k;
  bindDims(ctx, m, n, k);
  SmallVector<AffineMap> expected =
      AffineMap::inferFromExprList(
          ArrayRef<ArrayRef<AffineExpr>>{{m, k}, {n, k}, {m, n}}, ctx);
  if (op.getIndexingMapsArray() != expected)
    return false;
  auto isF32 = [](Type t) { return t.isF32(); };
  auto isFloat = [](Type t) { return t.isF32() || t.isBF16() || t.isF16(); };
  return isUnitStrideMemRef(op.getDpsInputOperand(0)->get(), isF32) &&
         isUnitStrideMemRef(op.getDpsInputOperand(1)->get(), isFloat) &&
         isUnitStrideMemRef(op.getDpsInitOperand(0)->get(), isF32);
}

void emitTransposedMatmul(OpBuilder &b, linalg::MatmulOp op, KernelShape shape,
                          int64_t blockRows, int64_t tileN) {
  Location loc = op.getLoc();
  Value a = op.getDpsInputOperand(0)->get();
  Value w = op.getDpsInputOperand(1)->get();
  Value c = op.getDpsInitOperand(0)->get();
  auto dim = [&](Value memref, int64_t d) {
    return getValueOrCreateConstantIndexOp(
        b, loc, memref::getMixedSize(b, loc, memref, d));
  };
  auto minOf = [&](Value x, Value y) {
    return arith::MinUIOp::create(b, loc, x, y).getResult();
  };
  // Sizes as the buffers have them (a mismatch shrinks the work).
  Value rows = minOf(dim(a, 0), dim(c, 0));
  Value columns = minOf(dim(w, 0), dim(c, 1));
  DotKernelEmitter kernel(b, loc, shape, a, w, c,
                          minOf(dim(a, 1), dim(w, 1)));
  Value bm = kernel.constant(blockRows), tn = kernel.constant(tileN);
  Value zero = kernel.constant(0);
  scf::ParallelOp::create(
      b, loc, ValueRange{zero, zero}, ValueRange{columns, rows},
      ValueRange{tn, bm},
      [&](OpBuilder &nb, Location nl, ValueRange ivs) {
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
        Value column = ivs[0], row = ivs[1];
        Value endColumn =
            minOf(arith::AddIOp::create(b, nl, column, tn), columns);
        Value tileRows =
            minOf(bm, arith::SubIOp::create(b, nl, rows, row));
        kernel.emitRows(row, tileRows, column, endColumn, ValueRange{});
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
    SmallVector<linalg::MatmulOp> ops;
    getOperation()->walk([&](linalg::MatmulOp op) {
      if (isTransposedMatmul(op))
        ops.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (linalg::MatmulOp op : ops) {
      rewriter.setInsertionPoint(op);
      emitTransposedMatmul(rewriter, op, {vectorWidth, tileRows, tileCols},
                           blockRows, tileN);
      rewriter.eraseOp(op);
    }
  }
};

} // namespace
