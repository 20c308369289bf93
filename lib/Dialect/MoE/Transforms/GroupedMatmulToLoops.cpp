//===- GroupedMatmulToLoops.cpp - moe.grouped_matmul to scalar loops ------===//
//
// The reference lowering of the memref form: loops over the TilingInterface
// iteration domain around generateScalarImplementation, as upstream lowers
// linalg ops to loops.
//
//===----------------------------------------------------------------------===//

#include "moe/Dialect/MoE/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Interfaces/TilingInterface.h"
#include "mlir/Interfaces/ValueBoundsOpInterface.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEGROUPEDMATMULTOLOOPSPASS
#include "moe/Dialect/MoE/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

SmallVector<Range> mlir::moe::getComputedDomain(OpBuilder &rewriter,
                                                GroupedMatmulOp op) {
  Location loc = op.getLoc();
  // Whole blocks only: the domain's blocks are clamped to the rows that
  // input and init hold.
  auto tiling = llvm::cast<TilingInterface>(op.getOperation());
  SmallVector<Range> domain = tiling.getIterationDomain(rewriter);
  Value bm = arith::ConstantIndexOp::create(rewriter, loc, op.getBlockRows());
  // A dense op's last block holds the rows left: its blocks are counted
  // rounding up (its scalar implementation stops at the rows).
  auto rowsOf = [&](Value memref) -> Value {
    Value rows = memref::DimOp::create(rewriter, loc, memref, 0);
    if (op.isDense())
      return arith::CeilDivUIOp::create(rewriter, loc, rows, bm);
    return arith::DivUIOp::create(rewriter, loc, rows, bm);
  };
  auto clamp = [&](OpFoldResult size, Value bound) -> OpFoldResult {
    return arith::MinUIOp::create(
               rewriter, loc,
               getValueOrCreateConstantIndexOp(rewriter, loc, size), bound)
        .getResult();
  };
  // Rows are those of the input, or of its row sources when gathered.
  Value rowsOwner = op.getRowSources() ? op.getRowSources() : op.getInput();
  // Outputs are the rows of init, or of the scatter table.
  Value outputsOwner = op.isScattering() ? op.getScatterRows() : op.getInit();
  domain[0].size =
      clamp(clamp(domain[0].size, rowsOf(rowsOwner)), rowsOf(outputsOwner));
  if (op.isScattering())
    domain[0].size = clamp(domain[0].size, rowsOf(op.getScatterScales()));
  // A dense tile of at most BM rows (an affine.min of its tiling) is one
  // block, known statically: no loop over blocks whose count the kernel
  // computes, which kept each row chunk's address in a register of its own
  // in the GPU tiles (a block without rows writes nothing).
  if (op.isDense()) {
    FailureOr<int64_t> rows = ValueBoundsConstraintSet::computeConstantBound(
        presburger::BoundType::UB,
        ValueBoundsConstraintSet::Variable(op.getInit(), 0),
        /*stopCondition=*/nullptr, /*closedUB=*/true);
    if (succeeded(rows) && *rows <= static_cast<int64_t>(op.getBlockRows()))
      domain[0].size = rewriter.getIndexAttr(1);
  }
  // Columns and depth every weight holds: N, or NP * P when packed; K,
  // or 2 * KP in pairs (with an epilogue, the scalar implementation's
  // own loop clamps the depth).
  for (Value weight : op.getWeights()) {
    auto [columns, depth] = op.getWeightExtents(rewriter, loc, weight);
    domain[1].size = clamp(domain[1].size, columns);
    if (domain.size() > 2)
      domain[2].size = clamp(domain[2].size, depth);
  }
  return domain;
}

namespace {

/// Loops over `domain[depth..]` around the scalar implementation of `op`.
LogicalResult emitLoops(OpBuilder &b, Location loc, TilingInterface op,
                        ArrayRef<Range> domain, SmallVector<Value> &ivs) {
  if (ivs.size() == domain.size())
    return op.generateScalarImplementation(b, loc, ivs);
  const Range &range = domain[ivs.size()];
  auto loop = scf::ForOp::create(
      b, loc, getValueOrCreateConstantIndexOp(b, loc, range.offset),
      getValueOrCreateConstantIndexOp(b, loc, range.size),
      getValueOrCreateConstantIndexOp(b, loc, range.stride));
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(loop.getBody());
  ivs.push_back(loop.getInductionVar());
  LogicalResult result = emitLoops(b, loc, op, domain, ivs);
  ivs.pop_back();
  return result;
}

struct MoEGroupedMatmulToLoopsPass
    : public moe::impl::MoEGroupedMatmulToLoopsPassBase<
          MoEGroupedMatmulToLoopsPass> {
  void runOnOperation() override {
    SmallVector<GroupedMatmulOp> ops;
    getOperation()->walk([&](GroupedMatmulOp op) { ops.push_back(op); });
    IRRewriter rewriter(&getContext());
    for (GroupedMatmulOp op : ops) {
      if (!op.getResult().empty()) {
        op.emitError("moe-grouped-matmul-to-loops: expects the memref form "
                     "(run after bufferization)");
        return signalPassFailure();
      }
      rewriter.setInsertionPoint(op);
      Location loc = op.getLoc();
      SmallVector<Range> domain = getComputedDomain(rewriter, op);
      auto tiling = llvm::cast<TilingInterface>(op.getOperation());
      SmallVector<Value> ivs;
      if (failed(emitLoops(rewriter, loc, tiling, domain, ivs))) {
        op.emitError("moe-grouped-matmul-to-loops: no scalar implementation");
        return signalPassFailure();
      }
      rewriter.eraseOp(op);
    }
  }
};

} // namespace
