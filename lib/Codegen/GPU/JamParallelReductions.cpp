//===- JamParallelReductions.cpp - Register tiles of parallel reductions --===//
//
// A parallel loop whose iterations each run one reduction loop (the router's
// matmul: an output per token and expert, a sum over the hidden depths)
// loads two operands per multiply-add. Unroll-and-jam: each iteration of
// the new loop runs F x F iterations of the old one (F tokens x F experts)
// in one reduction loop carrying F x F sums, so that an operand loaded
// once serves F of them (CSE merges the copies). Each sum keeps its order
// of operations, so the results are the same, bit for bit.
//
//===----------------------------------------------------------------------===//

#include "moe/Codegen/GPU/Passes.h"

#include "LoopIterations.h"

#include "mlir/Analysis/SliceAnalysis.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/MemRef/Utils/MemRefUtils.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEJAMPARALLELREDUCTIONSPASS
#include "moe/Codegen/GPU/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;

namespace {

/// Whether `op` (a load) reads what an earlier store of the loop's body, in
/// the same iteration, wrote: that store's value replaces it.
memref::StoreOp forwardingStore(memref::LoadOp load) {
  for (Operation *op = load->getPrevNode(); op; op = op->getPrevNode())
    if (auto store = llvm::dyn_cast<memref::StoreOp>(op))
      if (store.getMemRef() == load.getMemRef() &&
          store.getIndices() == load.getIndices())
        return store;
  return {};
}

/// The loop's one reduction loop, when the loop qualifies: two or more
/// dimensions of step 1, no reductions of its own, not inside another
/// parallel loop; a body of pure ops, loads and stores without regions
/// around exactly one `scf.for` (signed bounds from outside the loop,
/// iteration arguments) whose body has no region and only pure ops and
/// loads; no load of a buffer the body stores into, except of an element
/// an earlier store of the body wrote (its value is used instead), so that
/// iterations past the end, which repeat the last one, read what it read;
/// and an operand of the reduction loaded independently of each of the
/// first two dimensions (what jamming lets several sums share).
scf::ForOp jammableReduction(scf::ParallelOp loop) {
  if (loop.getNumLoops() < 2 || loop.getNumReductions() != 0 ||
      loop->getParentOfType<scf::ParallelOp>() ||
      !llvm::all_of(loop.getStep().take_front(2),
                    [](Value step) { return isConstantIntValue(step, 1); }))
    return {};
  scf::ForOp reduction;
  for (Operation &op : loop.getBody()->without_terminator()) {
    if (auto inner = llvm::dyn_cast<scf::ForOp>(op)) {
      if (reduction)
        return {};
      reduction = inner;
      continue;
    }
    if (op.getNumRegions() != 0)
      return {};
  }
  if (!reduction || reduction.getNumRegionIterArgs() == 0 ||
      reduction.getUnsignedCmp() ||
      !loop.isDefinedOutsideOfLoop(reduction.getLowerBound()) ||
      !loop.isDefinedOutsideOfLoop(reduction.getUpperBound()) ||
      !loop.isDefinedOutsideOfLoop(reduction.getStep()))
    return {};
  // The buffers the body writes; every load reads others (or a forwarded
  // element).
  llvm::SmallPtrSet<Value, 4> written;
  bool known = true;
  loop.getBody()->walk([&](memref::StoreOp store) {
    moe::gpu_codegen::BufferKey key = moe::gpu_codegen::classifyBuffer(
        llvm::cast<MemrefValue>(store.getMemRef()), loop, /*writes=*/true);
    known &= key.kind == moe::gpu_codegen::BufferKey::Known;
    written.insert(key.buffer);
  });
  if (!known)
    return {};
  WalkResult loads = loop.getBody()->walk([&](Operation *op) {
    if (op == reduction || llvm::isa<scf::YieldOp, scf::ReduceOp>(op) ||
        isMemoryEffectFree(op) || llvm::isa<memref::StoreOp>(op))
      return WalkResult::advance();
    auto load = llvm::dyn_cast<memref::LoadOp>(op);
    if (!load)
      return WalkResult::interrupt();
    moe::gpu_codegen::BufferKey key = moe::gpu_codegen::classifyBuffer(
        llvm::cast<MemrefValue>(load.getMemRef()), loop, /*writes=*/false);
    if (key.kind == moe::gpu_codegen::BufferKey::Unknown ||
        (written.contains(key.buffer) &&
         (load->getBlock() != loop.getBody() || !forwardingStore(load))))
      return WalkResult::interrupt();
    return WalkResult::advance();
  });
  if (loads.wasInterrupted())
    return {};
  bool reads[2] = {false, false};
  for (Operation &op : reduction.getBody()->without_terminator()) {
    if (op.getNumRegions() != 0)
      return {};
    if (isMemoryEffectFree(&op))
      continue;
    auto load = llvm::dyn_cast<memref::LoadOp>(op);
    if (!load)
      return {};
    // The ops its indices come from (not past block arguments: a loop's
    // index is where the slice stops, and what is looked for).
    SetVector<Operation *> slice;
    BackwardSliceOptions options;
    options.inclusive = true;
    options.omitBlockArguments = true;
    (void)getBackwardSlice(load.getOperation(), &slice, options);
    for (int d = 0; d < 2; ++d) {
      Value index = loop.getInductionVars()[d];
      bool uses = llvm::any_of(slice, [&](Operation *sliced) {
        return llvm::is_contained(sliced->getOperands(), index);
      });
      reads[d] |= !uses;
    }
  }
  return reads[0] && reads[1] ? reduction : scf::ForOp();
}

/// Emits at `jb` the iterations of `loop`'s tile (`tile`: the tile's
/// index in each of the first two dimensions, whose iterations end at
/// `upper`) in one reduction loop.
void emitTile(OpBuilder &jb, Location loc, scf::ParallelOp loop,
              scf::ForOp reduction, int64_t factor, ArrayRef<Value> tile,
              ArrayRef<Value> upper) {
  Value one = arith::ConstantIndexOp::create(jb, loc, 1);
  Value factorValue = arith::ConstantIndexOp::create(jb, loc, factor);
  // Per jammed iteration u: the indices (the last one's where past the
  // end, so that every load stays a valid iteration's) and whether it is
  // an iteration at all.
  int64_t count = factor * factor;
  SmallVector<IRMapping> mappings(count);
  SmallVector<Value> valid(count);
  for (int64_t u = 0; u < count; ++u) {
    Value inside;
    for (int d = 0; d < 2; ++d) {
      Value original = arith::AddIOp::create(
          jb, loc, loop.getLowerBound()[d],
          arith::AddIOp::create(
              jb, loc, arith::MulIOp::create(jb, loc, tile[d], factorValue),
              arith::ConstantIndexOp::create(
                  jb, loc, d == 0 ? u / factor : u % factor)));
      Value in = arith::CmpIOp::create(jb, loc, arith::CmpIPredicate::slt,
                                       original, upper[d]);
      inside =
          inside ? arith::AndIOp::create(jb, loc, inside, in).getResult() : in;
      Value last = arith::SubIOp::create(jb, loc, upper[d], one);
      mappings[u].map(loop.getInductionVars()[d],
                      arith::MinSIOp::create(jb, loc, original, last));
    }
    valid[u] = inside;
  }
  // An op of the body for each u: writes only where u is an iteration.
  auto cloneFor = [&](Operation &op, int64_t u) {
    if (auto load = llvm::dyn_cast<memref::LoadOp>(op)) {
      if (memref::StoreOp store = forwardingStore(load)) {
        mappings[u].map(load.getResult(),
                        mappings[u].lookupOrDefault(store.getValueToStore()));
        return;
      }
    }
    if (isMemoryEffectFree(&op) || llvm::isa<memref::LoadOp>(op)) {
      jb.clone(op, mappings[u]);
      return;
    }
    auto guard = scf::IfOp::create(jb, op.getLoc(), valid[u]);
    OpBuilder gb = OpBuilder::atBlockBegin(guard.thenBlock());
    gb.clone(op, mappings[u]);
  };
  Block *body = reduction->getBlock();
  auto before = llvm::make_range(body->begin(), reduction->getIterator());
  auto after = llvm::make_range(std::next(reduction->getIterator()),
                                body->getTerminator()->getIterator());
  for (int64_t u = 0; u < count; ++u)
    for (Operation &op : before)
      cloneFor(op, u);
  SmallVector<Value> inits;
  for (int64_t u = 0; u < count; ++u)
    for (Value init : reduction.getInitArgs())
      inits.push_back(mappings[u].lookupOrDefault(init));
  int64_t sums = reduction.getNumRegionIterArgs();
  auto merged = scf::ForOp::create(
      jb, reduction.getLoc(), reduction.getLowerBound(),
      reduction.getUpperBound(), reduction.getStep(), inits,
      [&](OpBuilder &fb, Location fl, Value k, ValueRange carried) {
        SmallVector<Value> yields;
        for (int64_t u = 0; u < count; ++u) {
          IRMapping &mapping = mappings[u];
          mapping.map(reduction.getInductionVar(), k);
          for (int64_t s = 0; s < sums; ++s)
            mapping.map(reduction.getRegionIterArgs()[s],
                        carried[u * sums + s]);
          for (Operation &op : reduction.getBody()->without_terminator())
            fb.clone(op, mapping);
          for (Value yielded :
               reduction.getBody()->getTerminator()->getOperands())
            yields.push_back(mapping.lookupOrDefault(yielded));
        }
        scf::YieldOp::create(fb, fl, yields);
      });
  for (int64_t u = 0; u < count; ++u)
    for (int64_t s = 0; s < sums; ++s)
      mappings[u].map(reduction.getResult(s), merged.getResult(u * sums + s));
  for (int64_t u = 0; u < count; ++u)
    for (Operation &op : after)
      cloneFor(op, u);
}

/// Makes `loop` run, when the first dimension has `minTrips` or more
/// iterations, a tile per iteration over the tiles' counts (its first two
/// upper bounds chosen at run time), else its own iterations: one loop
/// (one kernel, which moe-fuse-sibling-loops may still merge with its
/// neighbours) for both.
void jam(scf::ParallelOp loop, scf::ForOp reduction, int64_t factor,
         int64_t minTrips) {
  OpBuilder b(loop);
  Location loc = loop.getLoc();
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  Value factorValue = arith::ConstantIndexOp::create(b, loc, factor);
  SmallVector<Value> upper(loop.getUpperBound().take_front(2));
  SmallVector<Value> counts, tiles;
  for (int d = 0; d < 2; ++d) {
    counts.push_back(arith::MaxSIOp::create(
        b, loc,
        arith::SubIOp::create(b, loc, upper[d], loop.getLowerBound()[d]),
        zero));
    tiles.push_back(
        arith::CeilDivUIOp::create(b, loc, counts.back(), factorValue));
  }
  Value wide = arith::CmpIOp::create(
      b, loc, arith::CmpIPredicate::sge, counts[0],
      arith::ConstantIndexOp::create(b, loc, std::max<int64_t>(minTrips, 0)));
  // Where wide, the first two dimensions run over the tiles: no iteration
  // without work (a thread, or a step of a block walking them).
  for (int d = 0; d < 2; ++d) {
    Value tileEnd =
        arith::AddIOp::create(b, loc, loop.getLowerBound()[d], tiles[d]);
    loop.getUpperBoundMutable()[d].set(
        arith::SelectOp::create(b, loc, wide, tileEnd, upper[d]));
  }

  Block *body = loop.getBody();
  OpBuilder bb = OpBuilder::atBlockBegin(body);
  auto choice = scf::IfOp::create(bb, loc, wide, /*withElseRegion=*/true);
  // The original iteration in the else branch.
  Operation *elseEnd = choice.elseBlock()->getTerminator();
  for (Operation &op : llvm::make_early_inc_range(
           llvm::make_range(std::next(choice->getIterator()),
                            body->getTerminator()->getIterator())))
    op.moveBefore(elseEnd);
  // The tile of the iteration's indices in the then branch.
  OpBuilder tb = OpBuilder::atBlockBegin(choice.thenBlock());
  Value tile[2];
  for (int d = 0; d < 2; ++d)
    tile[d] = arith::SubIOp::create(tb, loc, loop.getInductionVars()[d],
                                    loop.getLowerBound()[d]);
  emitTile(tb, loc, loop, reduction, factor, tile, upper);
}

struct MoEJamParallelReductionsPass
    : moe::impl::MoEJamParallelReductionsPassBase<
          MoEJamParallelReductionsPass> {
  using Base::Base;

  void runOnOperation() override {
    if (factor < 2)
      return;
    SmallVector<std::pair<scf::ParallelOp, scf::ForOp>> work;
    getOperation().walk([&](scf::ParallelOp loop) {
      if (scf::ForOp reduction = jammableReduction(loop))
        work.push_back({loop, reduction});
    });
    for (auto [loop, reduction] : work)
      jam(loop, reduction, factor, minTrips);
  }
};

} // namespace
