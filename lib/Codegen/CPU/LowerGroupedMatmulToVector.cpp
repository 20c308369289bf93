//===- LowerGroupedMatmulToVector.cpp - grouped matmul micro-kernel -------===//
//
// moe.grouped_matmul on memrefs -> a loop over row blocks, each block's
// filled rows the dot-product kernel of DotKernel.h with its expert's
// weights:
//
//   for b in blocks:  e = block_experts[b]; skip unless 0 <= e < E
//     init[b*BM : b*BM + filled(b), :] += input[...] * weight[e]^T
//
// With row_sources the kernels read each row's source row of the input
// (gathered, clamped; rows of no source contribute zeros); with
// scatter_rows they add each row, scaled, to its target row of init (rows
// of no target add nothing).
//
// Reading both operands along K is what the checkpoint layout [E, N, K]
// offers without repacking. Packed weights ([E, NP, K, P]) get the
// outer-product kernel of PanelKernel.h instead; bf16 weights packed in
// pairs of K its bf16 dot-product form. With a paired weight both
// weights' sums come from one pass over each row, and an epilogue combines
// them in registers into the one write of each output (its vector math
// approximated as in moe-vectorize-elementwise). Block-scaled FP8 weights
// are decoded by the outer-product kernel when packed (in pairs of K, to
// the bf16 pairs of its dot-product form); in the checkpoint layout they
// are left for moe-grouped-matmul-to-loops, as are atomic scatters.
//
//===----------------------------------------------------------------------===//

#include "ApproximateVectorMath.h"
#include "DotKernel.h"
#include "PanelKernel.h"
#include "moe/Codegen/CPU/Passes.h"
#include "moe/Dialect/MoE/IR/MoE.h"
#include "moe/Dialect/MoE/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Dialect/X86Vector/X86VectorDialect.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOELOWERGROUPEDMATMULTOVECTORPASS
#include "moe/Codegen/CPU/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::cpu;

namespace {

/// The loop over the row blocks of `op` (clamped to the rows of its
/// buffers, getComputedDomain), calling `body(block, firstRow, filledRows,
/// expert)` for each block its expert owns.
void forEachOwnedBlock(OpBuilder &b, GroupedMatmulOp op, KernelBuilder &loops,
                       function_ref<void(Value, Value, Value)> body) {
  Location loc = op.getLoc();
  if (op.getRowSources())
    loops.setRowSource([op](OpBuilder &rb, Location rl, Value row) mutable {
      return op.loadRowSource(rb, rl, row);
    });
  if (op.isScattering())
    loops.setRowTarget([op](OpBuilder &rb, Location rl, Value row) mutable {
      return op.loadScatterTarget(rb, rl, row);
    });
  Value bm = loops.constant(op.getBlockRows());
  // The row blocks as every buffer holds them (the lowerings' shared
  // domain: whole blocks, a dense op's last one partly filled).
  Value numBlocks =
      getValueOrCreateConstantIndexOp(b, loc, getComputedDomain(b, op)[0].size);
  loops.forLoop(loops.constant(0), numBlocks, 1, [&](Value block) {
    auto [expert, owned] = op.loadBlockExpert(b, loc, block);
    auto ifOp = scf::IfOp::create(b, loc, owned, /*withElse=*/false);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(ifOp.thenBlock());
    // Only the block's filled rows: padding rows cost nothing.
    body(arith::MulIOp::create(b, loc, block, bm),
         op.loadFilledRows(b, loc, block), expert);
  });
}

/// K and the columns to compute, as every buffer has them (minIndex): the
/// input's and the weights' depth; the weights' columns and init's.
std::pair<Value, Value> clampedExtents(OpBuilder &b, GroupedMatmulOp op) {
  Location loc = op.getLoc();
  Value depth = memrefDim(b, loc, op.getInput(), 1);
  Value columns = memrefDim(b, loc, op.getInit(), 1);
  for (Value weight : op.getWeights()) {
    auto [weightColumns, weightDepth] = op.getWeightExtents(b, loc, weight);
    depth = minIndex(b, loc, depth, weightDepth);
    columns = minIndex(b, loc, columns, weightColumns);
  }
  return {depth, columns};
}

/// The outer-product kernel of a grouped matmul with packed weights.
void emitPackedKernel(OpBuilder &b, GroupedMatmulOp op, int64_t vectorWidth,
                      int64_t panelRows, bool bf16Dot, bool byteLookup,
                      SmallVectorImpl<Operation *> &vectorMath) {
  Value depth, columns;
  std::tie(depth, columns) = clampedExtents(b, op);
  SmallVector<Value> weights = op.getWeights();
  // Each weight has accumulators of its own: as many in all with fewer rows.
  int64_t rows = std::max<int64_t>(1, panelRows / weights.size());
  PanelKernelEmitter kernel(b, op.getLoc(), vectorWidth, rows, op.getInput(),
                            weights, op.getInit(), depth, bf16Dot, byteLookup);
  if (std::optional<ArrayRef<int64_t>> block = op.getWeightBlock())
    kernel.setBlockScales(op.getWeightScales(), *block);
  if (op.hasEpilogue())
    kernel.setEpilogue(&op.getEpilogueBody(), &vectorMath);
  forEachOwnedBlock(b, op, kernel, [&](Value row, Value rows, Value expert) {
    kernel.emitRows(row, rows, columns, expert);
  });
  kernel.finish();
}

/// Emits the kernel of one memref-form grouped matmul in place of it.
void emitGroupedKernel(OpBuilder &b, GroupedMatmulOp op, KernelShape shape,
                       SmallVectorImpl<Operation *> &vectorMath) {
  Value depth, columns;
  std::tie(depth, columns) = clampedExtents(b, op);
  SmallVector<Value> weights = op.getWeights();
  // Each weight has accumulators of its own: as many in all with fewer
  // columns.
  shape.tileCols = std::max<int64_t>(1, shape.tileCols / weights.size());
  DotKernelEmitter kernel(b, op.getLoc(), shape, op.getInput(), weights,
                          op.getInit(), depth);
  if (op.hasEpilogue())
    kernel.setEpilogue(&op.getEpilogueBody(), &vectorMath);
  forEachOwnedBlock(b, op, kernel, [&](Value row, Value rows, Value expert) {
    kernel.emitRows(row, rows, kernel.constant(0), columns, ValueRange{expert});
  });
}

struct MoELowerGroupedMatmulToVectorPass
    : public moe::impl::MoELowerGroupedMatmulToVectorPassBase<
          MoELowerGroupedMatmulToVectorPass> {
  using MoELowerGroupedMatmulToVectorPassBase::
      MoELowerGroupedMatmulToVectorPassBase;

  LogicalResult initialize(MLIRContext *context) override {
    std::string error;
    if (failed(verifyKernelShape({vectorWidth, tileRows, tileCols},
                                 getArgument(), error)))
      return emitError(UnknownLoc::get(context)) << error;
    // vdpbf16ps has 4, 8 or 16 f32 lanes.
    if (bf16Dot && vectorWidth != 4 && vectorWidth != 8 && vectorWidth != 16)
      return emitError(UnknownLoc::get(context))
             << getArgument()
             << ": bf16-dot needs a vector-width of 4, 8 or 16, got "
             << static_cast<int64_t>(vectorWidth);
    if (panelRows < 1 || panelRows > 32)
      return emitError(UnknownLoc::get(context))
             << getArgument() << ": panel-rows must be in [1, 32], got "
             << static_cast<int64_t>(panelRows);
    return success();
  }

  void runOnOperation() override {
    SmallVector<GroupedMatmulOp> ops;
    getOperation()->walk([&](GroupedMatmulOp op) { ops.push_back(op); });
    IRRewriter rewriter(&getContext());
    SmallVector<Operation *> vectorMath;
    for (GroupedMatmulOp op : ops) {
      if (!op.getResult().empty()) {
        op.emitError("moe-lower-grouped-matmul-to-vector: expects the memref "
                     "form (run after bufferization)");
        return signalPassFailure();
      }
      // Block-scaled weights in the checkpoint layout have no vector kernel:
      // moe-grouped-matmul-to-loops lowers them (the reference loops).
      if (op.getWeightScale() && !op.isPacked())
        continue;
      // Atomic scattered adds (row blocks in parallel, a GPU's form) have
      // no vector kernel either: the reference loops add atomically.
      if (op.getAtomicScatter())
        continue;
      rewriter.setInsertionPoint(op);
      if (op.isPacked())
        emitPackedKernel(rewriter, op, vectorWidth, panelRows, bf16Dot,
                         fp8ByteLookup, vectorMath);
      else
        emitGroupedKernel(rewriter, op, {vectorWidth, tileRows, tileCols},
                          vectorMath);
      rewriter.eraseOp(op);
    }
    // Epilogue math on vectors (SiLU's exp) at vector speed.
    if (failed(approximateVectorMath(&getContext(), vectorMath)))
      return signalPassFailure();
  }
};

} // namespace
