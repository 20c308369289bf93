//===- FuseSiblingLoops.cpp - Independent parallel loops as one -----------===//
//
// Upstream's parallel loop fusion merges loops of the same iteration space
// where one's iteration reads only what the same iteration of the other
// wrote. Loops of different spaces that share no buffer (a fill next to a
// matmul, the index arrays of a plan) are merged here instead: one loop
// over the largest space, each loop's iteration guarded by its own trip
// count, so that a GPU launches one kernel for them.
//
//===----------------------------------------------------------------------===//

#include "moe/Codegen/GPU/Passes.h"

#include "LoopIterations.h"

#include "moe/Dialect/MoE/IR/MoE.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/MemRef/Utils/MemRefUtils.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Interfaces/FunctionInterfaces.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "llvm/ADT/SmallPtrSet.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEFUSESIBLINGLOOPSPASS
#include "moe/Codegen/GPU/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe::gpu_codegen;

namespace {

/// The buffers a loop reads and writes (allocations private to an
/// iteration left out).
struct Accesses {
  llvm::SmallPtrSet<Value, 8> reads, writes;

  bool conflictsWith(const Accesses &other) const {
    auto meets = [](const llvm::SmallPtrSet<Value, 8> &a,
                    const llvm::SmallPtrSet<Value, 8> &b) {
      return llvm::any_of(a, [&](Value v) { return b.contains(v); });
    };
    return meets(writes, other.reads) || meets(writes, other.writes) ||
           meets(other.writes, reads);
  }
};

/// The accesses of `loop`, or nothing when a buffer it touches cannot be
/// told apart from others: an effect that names no buffer, a buffer that
/// is neither an allocation, a global nor the function's argument (one
/// that control flow or a call yields, a region's argument), a global it
/// writes.
std::optional<Accesses> accessesOf(scf::ParallelOp loop) {
  std::optional<SmallVector<MemoryEffects::EffectInstance>> effects =
      getEffectsRecursively(loop);
  if (!effects)
    return std::nullopt;
  Accesses accesses;
  for (const MemoryEffects::EffectInstance &effect : *effects) {
    // An allocation inside the loop is the iteration's own; a free (of a
    // buffer from outside) counts as a write.
    if (llvm::isa<MemoryEffects::Allocate>(effect.getEffect()))
      continue;
    auto value = llvm::dyn_cast_if_present<MemrefValue>(effect.getValue());
    if (!value)
      return std::nullopt;
    bool writes = !llvm::isa<MemoryEffects::Read>(effect.getEffect());
    BufferKey key = classifyBuffer(value, loop, writes);
    if (key.kind == BufferKey::Private)
      continue;
    if (key.kind == BufferKey::Unknown)
      return std::nullopt;
    if (writes)
      accesses.writes.insert(key.buffer);
    else
      accesses.reads.insert(key.buffer);
  }
  return accesses;
}

/// A loop this pass may merge: no reductions, no tiles.
scf::ParallelOp mergeable(Operation *op) {
  auto loop = llvm::dyn_cast<scf::ParallelOp>(op);
  if (!loop || loop.getNumResults() != 0 || holdsGroupedMatmul(loop))
    return {};
  return loop;
}

/// An op that may run before the loops preceding it: no memory effect but
/// allocating its result, no region.
bool movable(Operation *op) {
  return op->getNumRegions() == 0 &&
         (isMemoryEffectFree(op) ||
          llvm::isa<memref::AllocOp, memref::AllocaOp>(op));
}

/// Replaces `loops` (in order, the first dominating the others' operands
/// once the ops between them moved) by one loop.
void merge(ArrayRef<scf::ParallelOp> loops) {
  scf::ParallelOp first = loops.front();
  OpBuilder b(first);
  Location loc = first.getLoc();
  SmallVector<SmallVector<Value>> counts;
  SmallVector<Value> totals;
  Value largest;
  for (scf::ParallelOp loop : loops) {
    counts.push_back(tripCounts(b, loc, loop));
    totals.push_back(product(b, loc, counts.back()));
    largest = largest ? arith::MaxUIOp::create(b, loc, largest, totals.back())
                            .getResult()
                      : totals.back();
  }
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  Value one = arith::ConstantIndexOp::create(b, loc, 1);
  scf::ParallelOp::create(
      b, loc, ValueRange{zero}, ValueRange{largest}, ValueRange{one},
      [&](OpBuilder &nb, Location nl, ValueRange ivs) {
        for (auto [k, loop] : llvm::enumerate(loops)) {
          Value inRange = arith::CmpIOp::create(
              nb, nl, arith::CmpIPredicate::ult, ivs.front(), totals[k]);
          auto guarded = scf::IfOp::create(nb, nl, inRange,
                                           /*withElseRegion=*/false);
          OpBuilder ib = OpBuilder::atBlockTerminator(guarded.thenBlock());
          cloneIteration(ib, nl, loop, counts[k], ivs.front());
        }
      });
  for (scf::ParallelOp loop : loops)
    loop.erase();
}

/// Merges the groups of independent sibling loops of `block`.
void mergeSiblings(Block &block) {
  SmallVector<Operation *> ops;
  for (Operation &op : block)
    ops.push_back(&op);
  for (size_t i = 0; i < ops.size(); ++i) {
    scf::ParallelOp first = mergeable(ops[i]);
    if (!first)
      continue;
    std::optional<Accesses> firstAccesses = accessesOf(first);
    if (!firstAccesses)
      continue;
    SmallVector<scf::ParallelOp> group{first};
    SmallVector<Accesses> accesses{*firstAccesses};
    SmallVector<Operation *> between, pending;
    size_t last = i;
    for (size_t j = i + 1; j < ops.size(); ++j) {
      if (movable(ops[j])) {
        pending.push_back(ops[j]);
        continue;
      }
      scf::ParallelOp next = mergeable(ops[j]);
      if (!next)
        break;
      std::optional<Accesses> nextAccesses = accessesOf(next);
      if (!nextAccesses ||
          llvm::any_of(accesses, [&](const Accesses &earlier) {
            return earlier.conflictsWith(*nextAccesses);
          }))
        break;
      group.push_back(next);
      accesses.push_back(*nextAccesses);
      between.append(pending);
      pending.clear();
      last = j;
    }
    if (group.size() < 2)
      continue;
    for (Operation *op : between)
      op->moveBefore(first);
    merge(group);
    i = last;
  }
}

struct MoEFuseSiblingLoopsPass
    : public moe::impl::MoEFuseSiblingLoopsPassBase<MoEFuseSiblingLoopsPass> {
  void runOnOperation() override {
    // The blocks of host code: the function's and those of control flow
    // around loops, not the bodies of parallel loops.
    SmallVector<Block *> blocks;
    getOperation()->walk<WalkOrder::PreOrder>([&](Operation *op) {
      if (llvm::isa<scf::ParallelOp, scf::ForallOp>(op))
        return WalkResult::skip();
      for (Region &region : op->getRegions())
        for (Block &block : region)
          blocks.push_back(&block);
      return WalkResult::advance();
    });
    for (Block *block : blocks)
      mergeSiblings(*block);
  }
};

} // namespace
