//===- HoistLoopAccumulators.cpp - Sums in registers, not in memory -------===//
//
// Converting a linalg reduction to loops keeps its sum in the output buffer:
// every iteration of the reduction loop loads the element and stores it
// back. On a GPU that is a global load and store per multiply-add (the
// router's matmul: one per token, expert and hidden depth). The element is
// carried through the loop instead, loaded once before it and stored once
// after it, when nothing else in the loop may touch the buffer.
//
//===----------------------------------------------------------------------===//

#include "moe/Codegen/GPU/Passes.h"

#include "LoopIterations.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/MemRef/Utils/MemRefUtils.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/UB/IR/UBOps.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEHOISTLOOPACCUMULATORSPASS
#include "moe/Codegen/GPU/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe::gpu_codegen;

namespace {

/// Whether the ops of `loop` other than `load` and `store` leave `key`'s
/// buffer alone and touch only buffers known apart from it.
bool onlyAccessOf(scf::ForOp loop, memref::LoadOp load, memref::StoreOp store,
                  Value key) {
  WalkResult result = loop.getBody()->walk([&](Operation *op) {
    if (op == load || op == store)
      return WalkResult::advance();
    auto effecting = llvm::dyn_cast<MemoryEffectOpInterface>(op);
    if (!effecting) {
      // Nested ops are walked themselves; any other op may do anything.
      return op->hasTrait<OpTrait::HasRecursiveMemoryEffects>()
                 ? WalkResult::advance()
                 : WalkResult::interrupt();
    }
    SmallVector<MemoryEffects::EffectInstance> effects;
    effecting.getEffects(effects);
    for (const MemoryEffects::EffectInstance &effect : effects) {
      if (llvm::isa<MemoryEffects::Allocate>(effect.getEffect()) &&
          !effect.getValue())
        continue;
      auto value = llvm::dyn_cast_if_present<MemrefValue>(effect.getValue());
      if (!value)
        return WalkResult::interrupt();
      bool writes = !llvm::isa<MemoryEffects::Read>(effect.getEffect());
      BufferKey touched = classifyBuffer(value, loop, writes);
      if (touched.kind == BufferKey::Private)
        continue;
      if (touched.kind == BufferKey::Unknown || touched.buffer == key)
        return WalkResult::interrupt();
    }
    return WalkResult::advance();
  });
  return !result.wasInterrupted();
}

/// A load and a store of one loop-invariant element in the loop's body
/// (not nested), the load first, that nothing else in the loop touches.
std::optional<std::pair<memref::LoadOp, memref::StoreOp>>
findAccumulator(scf::ForOp loop) {
  for (auto store : loop.getBody()->getOps<memref::StoreOp>()) {
    auto memref = llvm::cast<MemrefValue>(store.getMemRef());
    if (!loop.isDefinedOutsideOfLoop(memref) ||
        !llvm::all_of(store.getIndices(), [&](Value index) {
          return loop.isDefinedOutsideOfLoop(index);
        }))
      continue;
    BufferKey key = classifyBuffer(memref, loop, /*writes=*/true);
    if (key.kind != BufferKey::Known)
      continue;
    for (auto load : loop.getBody()->getOps<memref::LoadOp>()) {
      if (load.getMemRef() != memref ||
          load.getIndices() != store.getIndices() ||
          !load->isBeforeInBlock(store))
        continue;
      if (onlyAccessOf(loop, load, store, key.buffer))
        return std::make_pair(load, store);
    }
  }
  return std::nullopt;
}

struct MoEHoistLoopAccumulatorsPass
    : moe::impl::MoEHoistLoopAccumulatorsPassBase<
          MoEHoistLoopAccumulatorsPass> {
  void runOnOperation() override {
    IRRewriter rewriter(&getContext());
    SmallVector<scf::ForOp> loops;
    getOperation().walk([&](scf::ForOp loop) { loops.push_back(loop); });
    // Inner loops first (post-order), so that an outer loop sees an inner
    // one's single load and store.
    for (scf::ForOp loop : loops) {
      while (auto found = findAccumulator(loop)) {
        // Named copies: lambdas below capture them (structured bindings
        // cannot be captured before C++20).
        memref::LoadOp load = found->first;
        memref::StoreOp store = found->second;
        rewriter.setInsertionPoint(loop);
        Location loc = load.getLoc();
        // A loop that may run no iteration must not touch the element then
        // (it may be out of bounds): the load and the store are guarded.
        Value runs;
        std::optional<int64_t> lower =
                                   getConstantIntValue(loop.getLowerBound()),
                               upper =
                                   getConstantIntValue(loop.getUpperBound());
        if (!lower || !upper || *lower >= *upper)
          runs = arith::CmpIOp::create(
              rewriter, loc,
              loop.getUnsignedCmp() ? arith::CmpIPredicate::ult
                                    : arith::CmpIPredicate::slt,
              loop.getLowerBound(), loop.getUpperBound());
        Value initial;
        if (runs) {
          Type type = load.getType();
          auto guarded = scf::IfOp::create(
              rewriter, loc, runs,
              [&](OpBuilder &tb, Location tl) {
                scf::YieldOp::create(tb, tl,
                                     memref::LoadOp::create(tb, tl,
                                                            load.getMemRef(),
                                                            load.getIndices())
                                         .getResult());
              },
              [&](OpBuilder &eb, Location el) {
                // Unused: the loop's result is then this value, which the
                // guarded store does not store.
                scf::YieldOp::create(
                    eb, el, ub::PoisonOp::create(eb, el, type).getResult());
              });
          initial = guarded.getResult(0);
        } else {
          initial = memref::LoadOp::create(rewriter, loc, load.getMemRef(),
                                           load.getIndices());
        }
        Value stored = store.getValueToStore();
        FailureOr<LoopLikeOpInterface> replaced =
            cast<LoopLikeOpInterface>(loop.getOperation())
                .replaceWithAdditionalYields(
                    rewriter, ValueRange{initial},
                    /*replaceInitOperandUsesInLoop=*/false,
                    [&](OpBuilder &, Location, ArrayRef<BlockArgument>) {
                      return SmallVector<Value>{stored};
                    });
        if (failed(replaced))
          break;
        auto newLoop = cast<scf::ForOp>(replaced->getOperation());
        rewriter.replaceAllUsesWith(load.getResult(),
                                    newLoop.getRegionIterArgs().back());
        rewriter.setInsertionPointAfter(newLoop);
        auto storeResult = [&](OpBuilder &sb, Location sl) {
          memref::StoreOp::create(sb, sl, newLoop.getResults().back(),
                                  store.getMemRef(), store.getIndices());
        };
        if (runs) {
          scf::IfOp::create(rewriter, store.getLoc(), runs,
                            [&](OpBuilder &tb, Location tl) {
                              storeResult(tb, tl);
                              scf::YieldOp::create(tb, tl);
                            });
        } else {
          storeResult(rewriter, store.getLoc());
        }
        rewriter.eraseOp(load);
        rewriter.eraseOp(store);
        loop = newLoop;
      }
    }
  }
};

} // namespace
