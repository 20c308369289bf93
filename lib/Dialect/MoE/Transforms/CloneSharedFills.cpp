//===- CloneSharedFills.cpp - One filled tensor per destination -----------===//
//
// CSE merges identical `tensor.empty` + `linalg.fill` pairs (e.g. the
// zeroed per-chunk counts of a routing plan, built twice), and one-shot
// bufferization then keeps the fill's buffer for its first writer and
// gives every other a copy of it (pass description in Passes.td).
//
//===----------------------------------------------------------------------===//

#include "moe/Dialect/MoE/Transforms/Passes.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/IRMapping.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOECLONESHAREDFILLSPASS
#include "moe/Dialect/MoE/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;

namespace {

/// Whether `use` hands its tensor to an op that writes it in place: a
/// destination operand (`outs`, a forall's `shared_outs`, an insertion's
/// destination) or a loop's initial value.
bool isWrittenInPlace(OpOperand &use) {
  Operation *owner = use.getOwner();
  if (auto destinationStyle = dyn_cast<DestinationStyleOpInterface>(owner))
    return destinationStyle.isDpsInit(&use);
  if (auto forall = dyn_cast<scf::ForallOp>(owner))
    return llvm::is_contained(forall.getOutputsMutable(), use);
  if (auto loop = dyn_cast<scf::ForOp>(owner))
    return llvm::is_contained(loop.getInitArgsMutable(), use);
  return isa<scf::WhileOp>(owner);
}

struct MoECloneSharedFillsPass
    : public moe::impl::MoECloneSharedFillsPassBase<MoECloneSharedFillsPass> {
  void runOnOperation() override {
    SmallVector<linalg::FillOp> fills;
    getOperation()->walk([&](linalg::FillOp fill) {
      if (fill.hasPureTensorSemantics() &&
          fill.getOutputs()[0].getDefiningOp<tensor::EmptyOp>())
        fills.push_back(fill);
    });
    for (linalg::FillOp fill : fills) {
      Value filled = fill.getResult(0);
      SmallVector<OpOperand *> writers;
      for (OpOperand &use : filled.getUses())
        if (isWrittenInPlace(use))
          writers.push_back(&use);
      auto empty = fill.getOutputs()[0].getDefiningOp<tensor::EmptyOp>();
      // Each writer but one gets a filled tensor of its own, made just
      // before it (the empty tensor's sizes dominate the fill, which
      // dominates the writer); the last keeps the original, unless other
      // ops read it.
      for (OpOperand *use : writers) {
        if (filled.hasOneUse())
          break;
        OpBuilder b(use->getOwner());
        IRMapping mapping;
        mapping.map(empty.getResult(), b.clone(*empty)->getResult(0));
        use->set(b.clone(*fill, mapping)->getResult(0));
      }
    }
  }
};

} // namespace
