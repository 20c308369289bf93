//===- SplitParallelReductions.cpp - Long reductions over lanes -----------===//
//
// With few parallel iterations, one thread per iteration leaves most of a
// GPU idle while each thread runs a long reduction alone (the router's
// matmul at decode: 256 threads at DeepSeek-V3's T = 1, each summing 7168
// products one after another). Each such reduction loop is split over
// lanes that sum strided parts of it; an scf.parallel over the lanes with
// an scf.reduce combines them, which moe-map-to-gpu runs as a block of
// threads and a gpu.all_reduce.
//
//===----------------------------------------------------------------------===//

#include "moe/Codegen/GPU/Passes.h"

#include "LoopIterations.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "llvm/Support/CheckedArithmetic.h"
#include "llvm/Support/MathExtras.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOESPLITPARALLELREDUCTIONSPASS
#include "moe/Codegen/GPU/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe::gpu_codegen;

namespace {

/// The op of `loop`'s body that combines iteration argument `i` into what
/// the body yields for it, when the argument qualifies (see the pass
/// description); null otherwise.
Operation *combinerOf(scf::ForOp loop, unsigned i) {
  BlockArgument carried = loop.getRegionIterArgs()[i];
  if (!carried.hasOneUse())
    return nullptr;
  Operation *combiner = carried.use_begin()->getOwner();
  if (combiner->getBlock() != loop.getBody() || !allReduceKind(combiner) ||
      combiner->getResult(0).getType() != carried.getType() ||
      !combiner->getResult(0).hasOneUse())
    return nullptr;
  OpOperand &yielded = loop.getBody()->getTerminator()->getOpOperand(i);
  return yielded.get() == combiner->getResult(0) ? combiner : nullptr;
}

/// The lanes `loop` is split over, or 0 when it does not qualify.
int64_t lanesFor(scf::ForOp loop, int64_t maxLanes, int64_t minTripsPerLane) {
  // Index loops with signed bounds: the lanes' first iterations and
  // strides are index arithmetic, and the trip count below is signed.
  if (loop.getNumRegionIterArgs() == 0 ||
      !loop.getInductionVar().getType().isIndex() || loop.getUnsignedCmp())
    return 0;
  std::optional<int64_t> lower = getConstantIntValue(loop.getLowerBound());
  std::optional<int64_t> upper = getConstantIntValue(loop.getUpperBound());
  std::optional<int64_t> step = getConstantIntValue(loop.getStep());
  if (!lower || !upper || !step || *step <= 0 || *upper <= *lower)
    return 0;
  std::optional<int64_t> span = llvm::checkedSub(*upper, *lower);
  if (!span)
    return 0;
  for (Operation &op : loop.getBody()->without_terminator())
    if (op.getNumRegions() != 0 || (!isMemoryEffectFree(&op) &&
                                    !hasSingleEffect<MemoryEffects::Read>(&op)))
      return 0;
  for (unsigned i = 0, e = loop.getNumRegionIterArgs(); i < e; ++i)
    if (!combinerOf(loop, i))
      return 0;
  int64_t trips = llvm::divideCeilSigned(*span, *step);
  int64_t lanes =
      std::min(maxLanes, trips / std::max<int64_t>(minTripsPerLane, 1));
  if (lanes < 2)
    return 0;
  return static_cast<int64_t>(llvm::bit_floor(static_cast<uint64_t>(lanes)));
}

/// Replaces `loop` by its split over `lanes` lanes.
void split(scf::ForOp loop, int64_t lanes) {
  OpBuilder b(loop);
  Location loc = loop.getLoc();
  unsigned count = loop.getNumRegionIterArgs();
  SmallVector<Operation *> combiners;
  SmallVector<Value> neutrals;
  for (unsigned i = 0; i < count; ++i) {
    combiners.push_back(combinerOf(loop, i));
    neutrals.push_back(
        arith::ConstantOp::create(b, loc, neutralElement(combiners.back())));
  }
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  Value one = arith::ConstantIndexOp::create(b, loc, 1);
  Value laneCount = arith::ConstantIndexOp::create(b, loc, lanes);
  auto lanesLoop = scf::ParallelOp::create(
      b, loc, ValueRange{zero}, ValueRange{laneCount}, ValueRange{one},
      neutrals, [&](OpBuilder &pb, Location pl, ValueRange ivs, ValueRange) {
        Value first = arith::AddIOp::create(
            pb, pl, loop.getLowerBound(),
            arith::MulIOp::create(pb, pl, ivs[0], loop.getStep()));
        Value stride = arith::MulIOp::create(pb, pl, loop.getStep(), laneCount);
        auto part = scf::ForOp::create(
            pb, pl, first, loop.getUpperBound(), stride, neutrals,
            [&](OpBuilder &fb, Location fl, Value iv, ValueRange carried) {
              IRMapping mapping;
              mapping.map(loop.getInductionVar(), iv);
              mapping.map(loop.getRegionIterArgs(), carried);
              for (Operation &op : loop.getBody()->getOperations())
                fb.clone(op, mapping);
            },
            loop.getUnsignedCmp());
        auto reduce = scf::ReduceOp::create(pb, pl, part.getResults());
        for (unsigned i = 0; i < count; ++i) {
          Block &body = reduce.getReductions()[i].front();
          OpBuilder rb = OpBuilder::atBlockBegin(&body);
          Value combined = cloneCombiner(
              rb, pl, combiners[i], body.getArgument(0), body.getArgument(1));
          scf::ReduceReturnOp::create(rb, pl, combined);
        }
      });
  for (unsigned i = 0; i < count; ++i)
    loop.getResult(i).replaceAllUsesWith(cloneCombiner(
        b, loc, combiners[i], loop.getInitArgs()[i], lanesLoop.getResult(i)));
  loop.erase();
}

/// The qualifying reduction loops of `loop` and their lanes.
SmallVector<std::pair<scf::ForOp, int64_t>>
splittable(scf::ParallelOp loop, int64_t maxLanes, int64_t minTripsPerLane) {
  SmallVector<std::pair<scf::ForOp, int64_t>> found;
  loop.getBody()->walk([&](scf::ForOp inner) {
    if (inner->getParentOfType<scf::ParallelOp>() != loop)
      return;
    if (int64_t lanes = lanesFor(inner, maxLanes, minTripsPerLane))
      found.push_back({inner, lanes});
  });
  return found;
}

struct MoESplitParallelReductionsPass
    : moe::impl::MoESplitParallelReductionsPassBase<
          MoESplitParallelReductionsPass> {
  using Base::Base;

  LogicalResult initialize(MLIRContext *context) override {
    if (lanes >= 2 && !llvm::isPowerOf2_64(static_cast<uint64_t>(lanes)))
      return emitError(UnknownLoc::get(context))
             << "moe-split-parallel-reductions: lanes must be a power of two";
    if (maxIterations < 0)
      return emitError(UnknownLoc::get(context))
             << "moe-split-parallel-reductions: max-iterations must be at "
                "least 0";
    return success();
  }

  void runOnOperation() override {
    if (lanes < 2)
      return;
    SmallVector<scf::ParallelOp> loops;
    getOperation().walk([&](scf::ParallelOp loop) {
      if (!loop->getParentOfType<scf::ParallelOp>() &&
          !loop->getParentOfType<scf::ForallOp>() &&
          loop.getNumResults() == 0 && !holdsGroupedMatmul(loop) &&
          // Buffers of an iteration's own would need sharing between the
          // threads of its block.
          !holdsAllocation(loop) && !splittable(loop, lanes, minTripsPerLane).empty())
        loops.push_back(loop);
    });
    for (scf::ParallelOp loop : loops) {
      scf::ParallelOp target = loop;
      if (maxIterations > 0) {
        // The split copy for few iterations, the loop as it was otherwise.
        OpBuilder b(loop);
        Location loc = loop.getLoc();
        Value few = arith::CmpIOp::create(
            b, loc, arith::CmpIPredicate::ult,
            product(b, loc, tripCounts(b, loc, loop)),
            arith::ConstantIndexOp::create(b, loc, maxIterations));
        auto choice = scf::IfOp::create(b, loc, few, /*withElseRegion=*/true);
        OpBuilder tb = OpBuilder::atBlockBegin(choice.thenBlock());
        target = llvm::cast<scf::ParallelOp>(tb.clone(*loop));
        loop->moveBefore(choice.elseBlock()->getTerminator());
      }
      for (auto [reduction, count] : splittable(target, lanes, minTripsPerLane))
        split(reduction, count);
    }
  }
};

} // namespace
