//===- DropUnreadInits.cpp - Fills no later op reads ----------------------===//
//
// A grouped matmul whose epilogue ignores the old value writes every row it
// computes (the filled rows of its owned blocks) and keeps `init` in the
// others. When the only reader of its result is a grouped matmul over the
// same plan that reads its input rows in place, no value of `init` is ever
// read, and a `linalg.fill` that made it is dropped (pass description in
// Passes.td): the gate/up projection's zeroed hidden rows, which the down
// projection reads only where the gate/up epilogue wrote them.
//
//===----------------------------------------------------------------------===//

#include "moe/Dialect/MoE/IR/MoE.h"
#include "moe/Dialect/MoE/Transforms/Passes.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEDROPUNREADINITSPASS
#include "moe/Dialect/MoE/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// `value` seen through 1-d slices that start at 0 with unit stride (a
/// prefix of the same tensor): the plan's block ids and sizes as each
/// grouped matmul views them.
Value prefixRoot(Value value) {
  while (auto slice = value.getDefiningOp<tensor::ExtractSliceOp>()) {
    if (slice.getSourceType().getRank() != 1 ||
        !isConstantIntValue(slice.getMixedOffsets()[0], 0) ||
        !isConstantIntValue(slice.getMixedStrides()[0], 1))
      break;
    value = slice.getSource();
  }
  return value;
}

bool sameOrBothAbsent(Value a, Value b) {
  return (!a && !b) || (a && b && prefixRoot(a) == prefixRoot(b));
}

/// Whether `op` writes each row it computes without reading `init` there:
/// a block-form op whose epilogue does not use the old value.
bool overwritesComputedRows(GroupedMatmulOp op) {
  if (op.isDense() || op.isScattering() || !op.hasEpilogue())
    return false;
  Block &body = op.getEpilogueBody();
  return body.getArguments().back().use_empty();
}

/// Whether `reader` reads its input only in rows `writer` computes: block
/// rows read in place (no row sources) by blocks of the same plan (the
/// same block rows, experts, block ids and filled rows), so that each row
/// it reads is a filled row of an owned block of `writer`.
bool readsOnlyComputedRows(GroupedMatmulOp reader, GroupedMatmulOp writer) {
  auto experts = [](GroupedMatmulOp op) {
    return llvm::cast<ShapedType>(op.getWeight().getType()).getDimSize(0);
  };
  return !reader.isDense() && !reader.getRowSources() &&
         reader.getBlockRows() == writer.getBlockRows() &&
         experts(reader) == experts(writer) &&
         sameOrBothAbsent(reader.getBlockExperts(), writer.getBlockExperts()) &&
         sameOrBothAbsent(reader.getBlockSizes(), writer.getBlockSizes());
}

/// Whether every read of `value` (`writer`'s result, or a region result it
/// flows to) is a grouped matmul reading only rows `writer` computes;
/// shape queries read nothing.
bool onlyComputedRowsRead(Value value, GroupedMatmulOp writer) {
  for (OpOperand &use : value.getUses()) {
    Operation *user = use.getOwner();
    if (isa<tensor::DimOp>(user))
      continue;
    if (auto reader = dyn_cast<GroupedMatmulOp>(user)) {
      if (use.get() != reader.getInput() ||
          !readsOnlyComputedRows(reader, writer))
        return false;
      continue;
    }
    // Yielded by a branch of an scf.if: its result carries the rows.
    auto yield = dyn_cast<scf::YieldOp>(user);
    auto branch =
        yield ? dyn_cast<scf::IfOp>(yield->getParentOp()) : scf::IfOp();
    if (!branch ||
        !onlyComputedRowsRead(branch.getResult(use.getOperandNumber()), writer))
      return false;
  }
  return true;
}

struct MoEDropUnreadInitsPass
    : public moe::impl::MoEDropUnreadInitsPassBase<MoEDropUnreadInitsPass> {
  void runOnOperation() override {
    SmallVector<linalg::FillOp> fills;
    getOperation()->walk([&](linalg::FillOp fill) {
      if (fill.hasPureTensorSemantics())
        fills.push_back(fill);
    });
    for (linalg::FillOp fill : fills) {
      Value filled = fill.getResult(0);
      bool unread =
          !filled.use_empty() &&
          llvm::all_of(filled.getUses(), [&](OpOperand &use) {
            auto writer = dyn_cast<GroupedMatmulOp>(use.getOwner());
            return writer && use.get() == writer.getInit() &&
                   overwritesComputedRows(writer) &&
                   onlyComputedRowsRead(writer.getResult()[0], writer);
          });
      if (!unread)
        continue;
      filled.replaceAllUsesWith(fill.getOutputs()[0]);
      fill.erase();
    }
  }
};

} // namespace
