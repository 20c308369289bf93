//===- MapToGPU.cpp - A bufferized function's loops as GPU kernels --------===//
//
// The tiled program the CPU pipeline runs on threads, run on a GPU: each
// top-level parallel loop becomes a kernel, the sequential code between
// them kernels of one thread (or one warp), and the buffers device memory.
// Everything is ordered on one chain of async tokens (one stream per call);
// the host waits only where it reads a value back.
//
//===----------------------------------------------------------------------===//

#include "moe/Codegen/GPU/Passes.h"

#include "LoopIterations.h"
#include "TileOrder.h"

#include "moe/Dialect/MoE/IR/MoE.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/MemRef/Utils/MemRefUtils.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SCF/Transforms/Transforms.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Interfaces/ViewLikeInterface.h"

#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/Support/CheckedArithmetic.h"

#include <numeric>

namespace mlir::moe {
#define GEN_PASS_DEF_MOEMAPTOGPUPASS
#include "moe/Codegen/GPU/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe::gpu_codegen;

namespace {

/// Whether `op` loads from a function argument bound to a weight
/// (`moe.weight`) that is a matrix (rank 2 or more: the router's [E, H]),
/// directly or through views of it. A vector weight (a bias or a scale per
/// expert) is small: reading it does not call for every multiprocessor.
bool readsWeightMatrix(Operation *op) {
  auto func = op->getParentOfType<func::FuncOp>();
  auto isWeight = [&](MemrefValue memref) {
    auto arg = llvm::dyn_cast<BlockArgument>(memref::skipViewLikeOps(memref));
    return arg && arg.getOwner()->isEntryBlock() &&
           arg.getOwner()->getParentOp() == func.getOperation() &&
           func.getArgAttr(arg.getArgNumber(), "moe.weight") &&
           llvm::cast<MemRefType>(arg.getType()).getRank() >= 2;
  };
  return op
      ->walk([&](Operation *inner) {
        if (auto load = llvm::dyn_cast<memref::LoadOp>(inner);
            load && isWeight(cast<MemrefValue>(load.getMemRef())))
          return WalkResult::interrupt();
        return WalkResult::advance();
      })
      .wasInterrupted();
}

/// The buffers (views traced to their source) of rank 2 or more that `op`
/// loads from.
llvm::SmallPtrSet<Value, 4> loadedMatrices(Operation *op) {
  llvm::SmallPtrSet<Value, 4> matrices;
  op->walk([&](memref::LoadOp load) {
    Value source = memref::skipViewLikeOps(cast<MemrefValue>(load.getMemRef()));
    if (llvm::cast<MemRefType>(source.getType()).getRank() >= 2)
      matrices.insert(source);
  });
  return matrices;
}

/// Ops the host runs where they are: scalar arithmetic, memref views and
/// sizes (no memory effect, no region).
bool runsOnHost(Operation *op) {
  return op->getNumRegions() == 0 && isMemoryEffectFree(op);
}

/// Whether `op` at most reads memory, so that every lane may run it.
bool onlyReads(Operation *op) {
  std::optional<SmallVector<MemoryEffects::EffectInstance>> effects =
      getEffectsRecursively(op);
  return effects && llvm::all_of(*effects, [](const auto &effect) {
           return llvm::isa<MemoryEffects::Read>(effect.getEffect());
         });
}

/// The combining op of each reduction of `loop` (its scf.reduce regions),
/// when every one is a single op that threads may combine in any grouping
/// (allReduceKind) of the region's two arguments; empty otherwise.
SmallVector<Operation *> teamCombiners(scf::ParallelOp loop) {
  SmallVector<Operation *> combiners;
  if (loop.getNumReductions() == 0)
    return {};
  auto reduce = llvm::cast<scf::ReduceOp>(loop.getBody()->getTerminator());
  for (Region &region : reduce.getReductions()) {
    Block &body = region.front();
    Operation &combiner = body.front();
    if (!allReduceKind(&combiner) || !combiner.getNextNode() ||
        combiner.getNextNode() != body.getTerminator() ||
        body.getTerminator()->getOperand(0) != combiner.getResult(0) ||
        combiner.getOperand(0) != body.getArgument(0) ||
        combiner.getOperand(1) != body.getArgument(1) ||
        !combiner.getResult(0).getType().isIntOrFloat())
      return {};
    combiners.push_back(&combiner);
  }
  return combiners;
}

/// Whether the threads of a team run `loop` together: a parallel loop of
/// reductions they combine with gpu.all_reduce (teamCombiners), whose body
/// only reads (moe-split-parallel-reductions' lanes).
bool isTeamReduction(Operation *op) {
  auto loop = llvm::dyn_cast<scf::ParallelOp>(op);
  return loop && !teamCombiners(loop).empty() && onlyReads(loop);
}

bool holdsTeamReduction(Operation *op) {
  return op
      ->walk([](Operation *inner) {
        return isTeamReduction(inner) ? WalkResult::interrupt()
                                      : WalkResult::advance();
      })
      .wasInterrupted();
}

/// The most threads of a block, and blocks of a grid's x.
constexpr int64_t kMaxBlockThreads = 1024;
constexpr int64_t kMaxGridX = (int64_t{1} << 31) - 1;

/// The threads of a block that runs one iteration of `loop` with its team
/// reductions on them: their largest constant iteration count, at most
/// kMaxBlockThreads; 0 when `loop` holds none.
int64_t teamSize(scf::ParallelOp loop) {
  // An iteration's own buffers would be each thread's (stack memory) while
  // thread 0 alone writes them.
  if (holdsAllocation(loop))
    return 0;
  int64_t size = 0;
  loop.getBody()->walk([&](scf::ParallelOp inner) {
    if (!isTeamReduction(inner))
      return;
    int64_t iterations = 1;
    for (auto [lower, upper, step] : llvm::zip(
             inner.getLowerBound(), inner.getUpperBound(), inner.getStep())) {
      std::optional<int64_t> l = getConstantIntValue(lower);
      std::optional<int64_t> u = getConstantIntValue(upper);
      std::optional<int64_t> s = getConstantIntValue(step);
      if (!l || !u || !s || *s <= 0)
        return;
      std::optional<int64_t> span = llvm::checkedSub(*u, *l);
      if (!span)
        return;
      int64_t count = *span <= 0 ? 0
                                 : std::min(llvm::divideCeilSigned(*span, *s),
                                            kMaxBlockThreads);
      iterations = std::min(iterations * count, kMaxBlockThreads);
    }
    size = std::max(size, iterations);
  });
  return size >= 2 ? size : 0;
}

/// The discardable attribute that keeps an scf.forall's device mapping on
/// the scf.parallel the pass makes of it.
constexpr llvm::StringLiteral kMappingAttr = "moe.gpu_mapping";

/// The grid dimension (0 x, 1 y, 2 z) of each dimension of `loop`, from the
/// #gpu.block mapping of the forall it was; empty when it had none, or one
/// that is not a distinct block dimension per loop dimension.
SmallVector<int64_t> mappedBlockDims(scf::ParallelOp loop) {
  auto mapping = loop->getAttrOfType<ArrayAttr>(kMappingAttr);
  if (!mapping || mapping.size() != loop.getNumLoops())
    return {};
  SmallVector<int64_t> dims;
  for (Attribute attr : mapping) {
    auto block = llvm::dyn_cast<gpu::GPUBlockMappingAttr>(attr);
    if (!block || block.getBlock() > gpu::MappingId::DimZ)
      return {};
    int64_t dim = static_cast<int64_t>(block.getBlock());
    if (llvm::is_contained(dims, dim))
      return {};
    dims.push_back(dim);
  }
  return dims;
}

/// Every scf.forall on buffers (no results) of `func` as an scf.parallel,
/// its mapping kept in kMappingAttr.
LogicalResult forallsToParallelLoops(func::FuncOp func) {
  SmallVector<scf::ForallOp> foralls;
  func.walk([&](scf::ForallOp forall) { foralls.push_back(forall); });
  IRRewriter rewriter(func.getContext());
  for (scf::ForallOp forall : foralls) {
    std::optional<ArrayAttr> mapping = forall.getMapping();
    rewriter.setInsertionPoint(forall);
    scf::ParallelOp loop;
    if (failed(scf::forallToParallelLoop(rewriter, forall, &loop)))
      return forall.emitError("moe-map-to-gpu: an scf.forall with results "
                              "(run after bufferization)");
    if (mapping && *mapping)
      loop->setAttr(kMappingAttr, *mapping);
  }
  return success();
}

/// A scalar as the i64 bits it is copied back through, and back.
FailureOr<Value> toBits(OpBuilder &b, Location loc, Value value) {
  Type type = value.getType();
  Type i64 = b.getI64Type();
  if (type.isIndex())
    return arith::IndexCastUIOp::create(b, loc, i64, value).getResult();
  if (auto floatType = llvm::dyn_cast<FloatType>(type)) {
    value = arith::BitcastOp::create(
        b, loc, b.getIntegerType(floatType.getWidth()), value);
    type = value.getType();
  }
  auto intType = llvm::dyn_cast<IntegerType>(type);
  if (!intType || intType.getWidth() > 64)
    return failure();
  if (intType.getWidth() == 64)
    return value;
  return arith::ExtUIOp::create(b, loc, i64, value).getResult();
}

Value fromBits(OpBuilder &b, Location loc, Value bits, Type type) {
  if (type.isIndex())
    return arith::IndexCastUIOp::create(b, loc, type, bits);
  unsigned width = type.getIntOrFloatBitWidth();
  Value value = bits;
  if (width != 64)
    value = arith::TruncIOp::create(b, loc, b.getIntegerType(width), bits);
  if (llvm::isa<FloatType>(type))
    value = arith::BitcastOp::create(b, loc, type, value);
  return value;
}

/// Moves each buffer allocated inside sequential control flow (the scratch
/// of a loop over groups of tokens) before the top-level op that holds it,
/// freed after that op, when its sizes are known there: it becomes one
/// device buffer instead of an allocation inside a kernel. Buffers of
/// parallel iterations stay (each iteration needs its own).
/// Whether `buffer`, or a view of it, leaves the region it is defined in
/// (yielded, or a result of a region's op): then its lifetime is not the
/// iteration's.
bool escapesRegion(Value buffer) {
  SmallVector<Value> worklist{buffer};
  while (!worklist.empty()) {
    Value value = worklist.pop_back_val();
    for (Operation *user : value.getUsers()) {
      if (user->hasTrait<OpTrait::IsTerminator>())
        return true;
      if (llvm::isa<ViewLikeOpInterface, memref::CastOp,
                    memref::ReinterpretCastOp, memref::ExpandShapeOp,
                    memref::CollapseShapeOp>(user))
        llvm::append_range(worklist, user->getResults());
    }
  }
  return false;
}

/// Whether `value` is known before `top` (an op of `body`), or computed
/// from such values by host arithmetic (pure, no region, not in a loop)
/// that may move before it: a size the host computes inside a region (the
/// plan's row bound under an scf.if on T).
bool isComputableBefore(Value value, Operation *top, Block &body) {
  Operation *def = value.getDefiningOp();
  if (!def)
    return value.getParentBlock() == &body;
  if (def->getBlock() == &body)
    return def->isBeforeInBlock(top);
  // Speculatable too: it runs whichever branch is taken.
  if (!top->isAncestor(def) || def->getNumRegions() != 0 || !isPure(def) ||
      def->getParentOfType<scf::ParallelOp>() ||
      def->getParentOfType<scf::ForallOp>() ||
      def->getParentOfType<scf::ForOp>())
    return false;
  return llvm::all_of(def->getOperands(), [&](Value operand) {
    return isComputableBefore(operand, top, body);
  });
}

/// Moves the host arithmetic that computes `value` before `top`, operands
/// first (isComputableBefore holds).
void computeBefore(Value value, Operation *top, Block &body) {
  Operation *def = value.getDefiningOp();
  if (!def || def->getBlock() == &body)
    return;
  for (Value operand : def->getOperands())
    computeBefore(operand, top, body);
  def->moveBefore(top);
}

void hoistSequentialAllocations(func::FuncOp func) {
  Block &body = func.getBody().front();
  SmallVector<memref::AllocOp> allocations;
  func.walk([&](memref::AllocOp alloc) {
    if (alloc->getBlock() != &body &&
        !alloc->getParentOfType<scf::ParallelOp>() &&
        !alloc->getParentOfType<scf::ForallOp>())
      allocations.push_back(alloc);
  });
  for (memref::AllocOp alloc : allocations) {
    Operation *top = body.findAncestorOpInBlock(*alloc);
    bool sizesKnown = llvm::all_of(alloc->getOperands(), [&](Value size) {
      return isComputableBefore(size, top, body);
    });
    if (!sizesKnown || escapesRegion(alloc.getResult()))
      continue;
    for (Value size : alloc->getOperands())
      computeBefore(size, top, body);
    for (Operation *user : llvm::make_early_inc_range(alloc->getUsers()))
      if (llvm::isa<memref::DeallocOp>(user))
        user->erase();
    alloc->moveBefore(top);
    OpBuilder b(top->getContext());
    b.setInsertionPointAfter(top);
    memref::DeallocOp::create(b, alloc.getLoc(), alloc.getResult());
  }
}

/// The threads of one block that run a sequential kernel's ops together:
/// loops spread over them, writes by thread 0, a barrier after each.
struct Team {
  mutable gpu::LaunchOp launch;
  Value thread;
  int64_t size;
  /// The lanes of one warp (spreadOverWarps): reductions by shuffles,
  /// ordered by bar.warp.sync instead of the block's barrier.
  bool lanes = false;
  /// When the team is the threads of every block of the grid (`thread` the
  /// index among them, `size` a block's): their count, and the thread's
  /// index in its block. Null for a block's (or a warp's) team.
  Value span = {}, blockThread = {};

  /// The distance between a thread's iterations of a loop spread over the
  /// team.
  Value stride(OpBuilder &b, Location loc) const {
    return span ? span
                : arith::ConstantIndexOp::create(b, loc, size).getResult();
  }
};

/// The threads of a warp (NVIDIA's), the lanes that share an iteration
/// under spreadOverWarps.
constexpr int64_t kWarpLanes = 32;

/// The most workgroup memory the warps' copies of an iteration's buffers
/// take (of the 48 KiB a block may have statically).
constexpr int64_t kWarpScratchBytes = 32 * 1024;

/// Whether `loop`'s reductions can be combined by a warp's shuffles: each
/// one op (teamCombiners) of at most 64 bits.
bool hasLaneCombiners(scf::ParallelOp loop) {
  SmallVector<Operation *> combiners = teamCombiners(loop);
  if (combiners.empty())
    return false;
  return llvm::all_of(loop.getResultTypes(), [](Type type) {
    return type.isIndex() ||
           (type.isIntOrFloat() && type.getIntOrFloatBitWidth() <= 64);
  });
}

/// Whether the lanes of a warp can run `block` (of an iteration, or of
/// control flow in it) together: nested parallel loops (spread over the
/// lanes; their reductions by shuffles), stores (lane 0), reads and scalar
/// code (every lane), buffers (the warp's), and control flow holding these.
bool runsOnLanes(Block &block) {
  for (Operation &op : block) {
    if (runsOnHost(&op) || llvm::isa<memref::StoreOp, memref::AllocOp,
                                     memref::AllocaOp, memref::DeallocOp>(op))
      continue;
    if (auto loop = llvm::dyn_cast<scf::ParallelOp>(op)) {
      if (holdsGroupedMatmul(loop) ||
          (loop.getNumReductions() > 0 && !hasLaneCombiners(loop)))
        return false;
      continue;
    }
    if (llvm::isa<scf::ForOp, scf::IfOp>(op)) {
      for (Region &region : op.getRegions())
        for (Block &inner : region)
          if (!runsOnLanes(inner))
            return false;
      continue;
    }
    if (!onlyReads(&op))
      return false;
  }
  return true;
}

/// The buffers an iteration of `loop` allocates outside its nested
/// parallel loops (those are each lane's own).
SmallVector<Operation *> iterationBuffers(scf::ParallelOp loop) {
  SmallVector<Operation *> buffers;
  loop.getBody()->walk([&](Operation *op) {
    if (llvm::isa<memref::AllocOp, memref::AllocaOp>(op) &&
        op->getParentOfType<scf::ParallelOp>() == loop)
      buffers.push_back(op);
  });
  return buffers;
}

/// How many warps of a team of `teamSize` threads can each run
/// iterations of `loop` on their lanes (spreadOverWarps), 0 for none: the
/// iteration's work holds reductions over a range (nested parallel loops
/// with scf.reduce, which the lanes split), the lanes can run all of it
/// (runsOnLanes), and its buffers, of static sizes and only loaded and
/// stored, have a copy per warp in workgroup memory: as many warps as the
/// copies fit in kWarpScratchBytes (the others wait at the block's
/// barrier).
int64_t warpsFor(scf::ParallelOp loop, int64_t teamSize) {
  if (teamSize < kWarpLanes || teamSize % kWarpLanes != 0 ||
      holdsGroupedMatmul(loop) || !runsOnLanes(*loop.getBody()))
    return 0;
  bool reduces = false;
  loop.getBody()->walk([&](scf::ParallelOp inner) {
    reduces |= inner.getNumReductions() > 0 &&
               inner->getParentOfType<scf::ParallelOp>() == loop;
  });
  if (!reduces)
    return 0;
  int64_t bytesPerWarp = 0;
  for (Operation *buffer : iterationBuffers(loop)) {
    auto type = llvm::cast<MemRefType>(buffer->getResult(0).getType());
    if (!type.hasStaticShape() || !type.getLayout().isIdentity() ||
        !type.getElementType().isIntOrFloat() ||
        llvm::any_of(buffer->getUsers(), [](Operation *user) {
          return !llvm::isa<memref::LoadOp, memref::StoreOp, memref::DeallocOp>(
              user);
        }))
      return 0;
    bytesPerWarp += type.getNumElements() *
                    llvm::divideCeil(type.getElementTypeBitWidth(), 8);
  }
  int64_t warps = teamSize / kWarpLanes;
  if (bytesPerWarp > 0)
    warps = std::min(warps, kWarpScratchBytes / bytesPerWarp);
  return warps;
}

/// `value` (at most 64 bits) of the lane `offset` lanes away by xor.
Value shuffleXor(OpBuilder &b, Location loc, Value value, int64_t offset) {
  Type type = value.getType();
  Type i32 = b.getI32Type(), i64 = b.getI64Type();
  Value width = arith::ConstantIntOp::create(b, loc, i32, kWarpLanes);
  Value distance = arith::ConstantIntOp::create(b, loc, i32, offset);
  auto shuffle32 = [&](Value word) {
    return gpu::ShuffleOp::create(b, loc, word, distance, width,
                                  gpu::ShuffleMode::XOR)
        .getShuffleResult();
  };
  if (type.isIndex()) {
    Value bits = arith::IndexCastUIOp::create(b, loc, i64, value);
    return arith::IndexCastUIOp::create(b, loc, type,
                                        shuffleXor(b, loc, bits, offset));
  }
  unsigned bitWidth = type.getIntOrFloatBitWidth();
  Type intType = b.getIntegerType(bitWidth);
  Value bits = llvm::isa<FloatType>(type)
                   ? arith::BitcastOp::create(b, loc, intType, value)
                   : value;
  Value shuffled;
  if (bitWidth == 64) {
    // Two 32-bit shuffles, the low word and the high.
    Value low = arith::TruncIOp::create(b, loc, i32, bits);
    Value high = arith::TruncIOp::create(
        b, loc, i32,
        arith::ShRUIOp::create(b, loc, bits,
                               arith::ConstantIntOp::create(b, loc, i64, 32)));
    Value lowBack = arith::ExtUIOp::create(b, loc, i64, shuffle32(low));
    Value highBack = arith::ShLIOp::create(
        b, loc, arith::ExtUIOp::create(b, loc, i64, shuffle32(high)),
        arith::ConstantIntOp::create(b, loc, i64, 32));
    shuffled = arith::OrIOp::create(b, loc, highBack, lowBack);
  } else if (bitWidth == 32) {
    shuffled = shuffle32(bits);
  } else {
    shuffled = arith::TruncIOp::create(
        b, loc, intType, shuffle32(arith::ExtUIOp::create(b, loc, i32, bits)));
  }
  return llvm::isa<FloatType>(type)
             ? arith::BitcastOp::create(b, loc, type, shuffled).getResult()
             : shuffled;
}

/// The combination of every lane's `value` by `combiner`, on every lane: a
/// butterfly of xor shuffles (each lane combines the same pairs, in
/// another operand order: the combiners commute, so all get the same
/// bits).
Value warpAllReduce(OpBuilder &b, Location loc, Value value,
                    Operation *combiner) {
  for (int64_t offset = kWarpLanes / 2; offset >= 1; offset /= 2)
    value = cloneCombiner(b, loc, combiner, value,
                          shuffleXor(b, loc, value, offset));
  return value;
}

/// A bar.warp.sync of the whole warp: the lanes' stores before it are
/// ordered before their loads after it.
void syncWarp(OpBuilder &b, Location loc) {
  NVVM::SyncWarpOp::create(
      b, loc, arith::ConstantIntOp::create(b, loc, b.getI32Type(), -1));
}

/// Rewrites one function.
class FunctionMapper {
public:
  FunctionMapper(func::FuncOp func, int64_t blockSize, int64_t warpSize,
                 int64_t routingBlockSize, int64_t tileGridLimit,
                 int64_t teamGridLimit, int64_t tileGroupRows,
                 int64_t multiprocessors, bool deviceIO, int64_t tileCluster)
      : func(func), blockSize(blockSize), warpSize(warpSize),
        routingBlockSize(routingBlockSize), tileGridLimit(tileGridLimit),
        teamGridLimit(teamGridLimit), tileGroupRows(tileGroupRows),
        multiprocessors(multiprocessors), tileCluster(tileCluster),
        deviceIO(deviceIO),
        tokenType(gpu::AsyncTokenType::get(func.getContext())) {}

  LogicalResult map();

private:
  /// The token the next GPU operation depends on, a new chain if none.
  Value stream(OpBuilder &b, Location loc) {
    if (!token)
      token =
          gpu::WaitOp::create(b, loc, tokenType, ValueRange{}).getAsyncToken();
    return token;
  }
  /// The host waits for everything enqueued so far.
  void sync(OpBuilder &b, Location loc) {
    if (token)
      gpu::WaitOp::create(b, loc, Type(), ValueRange{token});
    token = {};
  }

  /// Whether `op` uses a value defined by the pending run.
  bool usesRun(Operation *op) {
    return llvm::any_of(op->getOperands(), [&](Value operand) {
      Operation *def = operand.getDefiningOp();
      return def && runSet.contains(def);
    });
  }
  void addToRun(Operation *op, int64_t team) {
    if (run.empty())
      runTeam = team;
    run.push_back(op);
    runSet.insert(op);
  }

  LogicalResult copyInputs();
  LogicalResult mapBlock(Block &block);
  LogicalResult flush(Operation *before);
  /// Launches `loop` (a one-thread-per-iteration kernel is named after
  /// `role`).
  LogicalResult launchParallel(scf::ParallelOp loop, StringRef role = "loop");
  LogicalResult distribute(Block &block, const Team &team);
  LogicalResult runOnce(Operation &op, const Team &team);
  /// A barrier before `op` unless one is there, or `op` starts the kernel
  /// or one of its tiles (ops without memory effects aside): a write waits
  /// for every thread's earlier reads.
  void barrierBefore(Operation *op, const Team &team);
  /// Whether `block` holds the ops of one tile and nothing else runs in
  /// the kernel before or after them: the launch's body, or the body of a
  /// persistent grid's walk over tiles (its iterations are independent
  /// tiles, which need no ordering between them).
  bool holdsOneTile(Block *block, const Team &team) {
    return block == &team.launch.getBody().front() ||
           tileWalkBodies.contains(block);
  }
  void spread(scf::ParallelOp loop, const Team &team);
  /// Each of `warps` warps (warpsFor) of each block of the team runs
  /// iterations of `loop`, one after another, on its lanes: the
  /// iteration's buffers in workgroup memory (a copy per warp), its ops by
  /// distributeOnLanes.
  void spreadOverWarps(scf::ParallelOp loop, const Team &team, int64_t warps);
  /// The ops of `block` on the lanes of a warp (runsOnLanes).
  void distributeOnLanes(Block &block, const Team &lanes);
  /// Whether `op` (an scf.if of the routing region) runs in the routing
  /// kernel: only parallel loops that would (no weight matrix, no token
  /// rows, no tiles), host arithmetic and such scf.ifs again.
  bool joinsRoutingKernel(Operation *op);
  /// How many of the pending run's first ops the threads of every block of
  /// a routing kernel run (0: none): its first op that touches memory
  /// when that is a parallel loop (or a choice of such loops:
  /// joinsRoutingKernel) with no reductions whose bounds the host knows,
  /// and some op follows it (which runs on the last block).
  size_t gridPhaseEnd();
  /// Whether the host knows `value` before the run's kernel: defined
  /// outside the run, or by host arithmetic inside `scope` (a run op) on
  /// such values.
  bool hostKnows(Value value, Operation *scope);
  /// The blocks for `ops` (gridPhaseEnd's): enough for one iteration of
  /// each loop per thread (per warp, for a loop on warps), at least 1, at
  /// most `multiprocessors`.
  Value gridPhaseBlocks(OpBuilder &b, Location loc, ArrayRef<Operation *> ops);
  /// The blocks the loops of `op` (a run op, `scope`, or an op in it) take
  /// on the host.
  Value blocksFor(OpBuilder &b, Location loc, Operation *op, Operation *scope);
  /// After the grid's loop in `launch`: each block, once all its threads
  /// are done (each fencing its writes), counts itself in `counter`; the
  /// last one counted runs the returned block (the then-block of an
  /// scf.if; its threads fence before they read the other blocks' writes).
  Block *buildLastBlockHandoff(gpu::LaunchOp launch, Value counter,
                               Location loc);
  /// Each thread combines its share of `loop`'s iterations, then the team
  /// combines the threads' (gpu.all_reduce): every thread has the results.
  void spreadReduction(scf::ParallelOp loop, const Team &team);
  LogicalResult copyResults(func::ReturnOp ret);
  /// A launch of `grid` blocks of `threads` threads whose kernel (and its
  /// GPU module) is named `<function>_<role>_<n>`, n counting the
  /// function's launches: profiles and traces then say what runs.
  /// With `cluster` > 1, in thread block clusters of that many CTAs on x.
  gpu::LaunchOp createLaunch(OpBuilder &b, Location loc, StringRef role,
                             Value grid, int64_t threads, Value gridY = {},
                             Value gridZ = {}, int64_t cluster = 1);

  func::FuncOp func;
  int64_t blockSize, warpSize, routingBlockSize, tileGridLimit, teamGridLimit;
  int64_t tileGroupRows, multiprocessors, tileCluster;
  /// Arguments and results are device memory; no host wait but the last.
  bool deviceIO;
  Type tokenType;
  Value token;
  /// Top-level ops that run, in order, in the next sequential kernel, and
  /// the threads of its team.
  SmallVector<Operation *> run;
  llvm::SmallPtrSet<Operation *, 16> runSet;
  int64_t runTeam = 1;
  /// Whether the block being mapped is a region of control flow that only
  /// launches (onlyLaunches): it ends without a host wait.
  bool chaining = false;
  /// Whether no matmul tile was met yet (with routing-block-size).
  bool routing = false;
  /// The launches created so far (their kernels' names count them).
  int64_t launches = 0;
  /// Device copies of host arguments, freed when the call ends.
  SmallVector<Value> inputCopies;
  /// The call's input matrices (arguments that are no weight, or their
  /// device copies) that the router's matmul reads: the token rows.
  llvm::SmallPtrSet<Value, 2> tokenRows;
  /// The value every thread of a team loads of a result thread 0 computed
  /// (runOnce): what a read back to the host stores.
  DenseMap<Value, Value> sharedValues;
  /// The bodies of the persistent grids' walks over tiles and of the
  /// clustered grids' guards around theirs (holdsOneTile).
  llvm::SmallPtrSet<Block *, 4> tileWalkBodies;
};

gpu::LaunchOp FunctionMapper::createLaunch(OpBuilder &b, Location loc,
                                           StringRef role, Value grid,
                                           int64_t threads, Value gridY,
                                           Value gridZ, int64_t cluster) {
  Value one = arith::ConstantIndexOp::create(b, loc, 1);
  Value block = arith::ConstantIndexOp::create(b, loc, threads);
  Value clusterX =
      cluster > 1 ? arith::ConstantIndexOp::create(b, loc, cluster) : Value();
  auto launch = gpu::LaunchOp::create(
      b, loc, grid, gridY ? gridY : one, gridZ ? gridZ : one, block, one, one,
      /*dynamicSharedMemorySize=*/nullptr, tokenType,
      ValueRange{stream(b, loc)}, /*workgroupAttributions=*/{},
      /*privateAttributions=*/{}, clusterX, clusterX ? one : Value(),
      clusterX ? one : Value());
  // The builder leaves out the cluster ids and sizes that the body takes
  // after the block sizes when there are clusters.
  if (clusterX)
    for (unsigned i = 0; i < 6; ++i)
      launch.getBody().front().insertArgument(12 + i, b.getIndexType(), loc);
  auto name = FlatSymbolRefAttr::get(
      b.getContext(),
      (func.getSymName() + "_" + role + "_" + Twine(launches++)).str());
  launch.setModuleAttr(name);
  launch.setFunctionAttr(name);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToEnd(&launch.getBody().front());
  gpu::TerminatorOp::create(b, loc);
  token = launch.getAsyncToken();
  return launch;
}

LogicalResult FunctionMapper::copyInputs() {
  Block &entry = func.getBody().front();
  OpBuilder b = OpBuilder::atBlockBegin(&entry);
  Location loc = func.getLoc();
  for (BlockArgument arg : func.getArguments()) {
    auto type = llvm::dyn_cast<MemRefType>(arg.getType());
    if (!type) {
      if (llvm::isa<BaseMemRefType>(arg.getType()))
        return func.emitError("moe-map-to-gpu: unranked memref argument ")
               << arg.getArgNumber();
      continue;
    }
    // Weights are device memory already.
    if (func.getArgAttr(arg.getArgNumber(), "moe.weight"))
      continue;
    if (!type.getLayout().isIdentity())
      return func.emitError("moe-map-to-gpu: argument ")
             << arg.getArgNumber() << " is not a contiguous row-major buffer";
    // The caller's device buffers.
    if (deviceIO)
      continue;
    llvm::SmallPtrSet<Operation *, 4> own;
    SmallVector<Value> sizes;
    for (int64_t d = 0; d < type.getRank(); ++d)
      if (type.isDynamicDim(d)) {
        auto dim = memref::DimOp::create(b, loc, arg, d);
        own.insert(dim);
        sizes.push_back(dim);
      }
    auto alloc = gpu::AllocOp::create(b, loc, type, tokenType,
                                      ValueRange{stream(b, loc)}, sizes,
                                      ValueRange{}, /*hostShared=*/false);
    auto copy = gpu::MemcpyOp::create(b, loc, tokenType,
                                      ValueRange{alloc.getAsyncToken()},
                                      alloc.getMemref(), arg);
    own.insert(copy);
    token = copy.getAsyncToken();
    arg.replaceUsesWithIf(alloc.getMemref(), [&](OpOperand &use) {
      return !own.contains(use.getOwner());
    });
    inputCopies.push_back(alloc.getMemref());
  }
  // Constant buffers (memref.global, e.g. a capacity table) are host
  // memory too: one device copy each, made at the start.
  llvm::MapVector<StringAttr, SmallVector<memref::GetGlobalOp>> globals;
  func.walk([&](memref::GetGlobalOp get) {
    globals[get.getNameAttr().getAttr()].push_back(get);
  });
  for (auto &[name, uses] : globals) {
    // A copy from host memory at every call would wait for the host's
    // pageable memory, and no stream capture allows it.
    if (deviceIO)
      return uses.front().emitError("moe-map-to-gpu: device-io: the function "
                                    "reads the host constant "
                                    "buffer @")
             << name.getValue()
             << ", which every call would copy to the device";
    MemRefType type = uses.front().getType();
    if (!type.getLayout().isIdentity() || !type.hasStaticShape())
      return uses.front().emitError(
                 "moe-map-to-gpu: a global buffer of a non-identity layout "
                 "or a dynamic shape: ")
             << type;
    auto host = memref::GetGlobalOp::create(b, loc, type, name.getValue());
    auto alloc = gpu::AllocOp::create(b, loc, type, tokenType,
                                      ValueRange{stream(b, loc)}, ValueRange{},
                                      ValueRange{}, /*hostShared=*/false);
    auto copy = gpu::MemcpyOp::create(b, loc, tokenType,
                                      ValueRange{alloc.getAsyncToken()},
                                      alloc.getMemref(), host);
    token = copy.getAsyncToken();
    for (memref::GetGlobalOp get : uses) {
      get.getResult().replaceAllUsesWith(alloc.getMemref());
      get.erase();
    }
    inputCopies.push_back(alloc.getMemref());
  }
  return success();
}

void FunctionMapper::spread(scf::ParallelOp loop, const Team &team) {
  OpBuilder b(loop);
  Location loc = loop.getLoc();
  SmallVector<Value> counts = tripCounts(b, loc, loop);
  Value total = product(b, loc, counts);
  Value step = team.stride(b, loc);
  scf::ForOp::create(b, loc, team.thread, total, step, ValueRange{},
                     [&](OpBuilder &lb, Location ll, Value linear, ValueRange) {
                       cloneIteration(lb, ll, loop, counts, linear);
                       scf::YieldOp::create(lb, ll);
                     });
  loop.erase();
}

void FunctionMapper::spreadReduction(scf::ParallelOp loop, const Team &team) {
  OpBuilder b(loop);
  Location loc = loop.getLoc();
  SmallVector<Operation *> combiners = teamCombiners(loop);
  SmallVector<Value> counts = tripCounts(b, loc, loop);
  Value total = product(b, loc, counts);
  Value step = team.stride(b, loc);
  SmallVector<Value> neutrals;
  for (Operation *combiner : combiners)
    neutrals.push_back(
        arith::ConstantOp::create(b, loc, neutralElement(combiner)));
  auto own = scf::ForOp::create(
      b, loc, team.thread, total, step, neutrals,
      [&](OpBuilder &lb, Location ll, Value linear, ValueRange carried) {
        IRMapping mapping;
        cloneIteration(lb, ll, loop, counts, linear, mapping);
        auto reduce =
            llvm::cast<scf::ReduceOp>(loop.getBody()->getTerminator());
        SmallVector<Value> next;
        for (auto [i, combiner] : llvm::enumerate(combiners))
          next.push_back(
              cloneCombiner(lb, ll, combiner, carried[i],
                            mapping.lookupOrDefault(reduce.getOperands()[i])));
        scf::YieldOp::create(lb, ll, next);
      });
  for (auto [i, combiner] : llvm::enumerate(combiners)) {
    if (team.lanes) {
      loop.getResult(i).replaceAllUsesWith(
          cloneCombiner(b, loc, combiner, loop.getInitVals()[i],
                        warpAllReduce(b, loc, own.getResult(i), combiner)));
      continue;
    }
    auto all =
        gpu::AllReduceOp::create(b, loc, own.getResult(i),
                                 gpu::AllReduceOperationAttr::get(
                                     b.getContext(), *allReduceKind(combiner)),
                                 /*uniform=*/true);
    // The workgroup memory the reduction goes through is free again (for
    // the next one, or this one in a loop) once every thread has read it.
    gpu::BarrierOp::create(b, loc);
    loop.getResult(i).replaceAllUsesWith(cloneCombiner(
        b, loc, combiner, loop.getInitVals()[i], all.getResult()));
  }
  loop.erase();
}

void FunctionMapper::spreadOverWarps(scf::ParallelOp loop, const Team &team,
                                     int64_t warps) {
  OpBuilder b(loop);
  Location loc = loop.getLoc();
  SmallVector<Operation *> buffers = iterationBuffers(loop);
  SmallVector<Value> counts = tripCounts(b, loc, loop);
  Value total = product(b, loc, counts);
  Value laneCount = arith::ConstantIndexOp::create(b, loc, kWarpLanes);
  // The warp's index in its block and among the team's taking warps (the
  // grid's, for a team of every block).
  Value warpCount = arith::ConstantIndexOp::create(b, loc, warps);
  Value blockThreads = arith::ConstantIndexOp::create(b, loc, team.size);
  Value blockWarp = arith::DivUIOp::create(
      b, loc, team.blockThread ? team.blockThread : team.thread, laneCount);
  Value warp = blockWarp, warpStride = warpCount;
  if (team.span) {
    Value block = arith::DivUIOp::create(b, loc, team.thread, blockThreads);
    warp = arith::AddIOp::create(
        b, loc, arith::MulIOp::create(b, loc, block, warpCount), blockWarp);
    warpStride = arith::MulIOp::create(
        b, loc, arith::DivUIOp::create(b, loc, team.span, blockThreads),
        warpCount);
  }
  Value lane = arith::RemUIOp::create(b, loc, team.thread, laneCount);
  // Each warp's copy of each buffer, in workgroup memory: its lanes share
  // what the iteration writes there.
  auto workgroup =
      gpu::AddressSpaceAttr::get(b.getContext(), gpu::AddressSpace::Workgroup);
  for (Operation *buffer : buffers) {
    auto type = llvm::cast<MemRefType>(buffer->getResult(0).getType());
    Value copies = team.launch.addWorkgroupAttribution(
        MemRefType::get({warps * type.getNumElements()}, type.getElementType(),
                        MemRefLayoutAttrInterface{}, workgroup),
        loc);
    OpBuilder vb(buffer);
    Value offset = arith::MulIOp::create(
        vb, loc, blockWarp,
        arith::ConstantIndexOp::create(vb, loc, type.getNumElements()));
    SmallVector<int64_t> strides;
    int64_t ignored;
    (void)type.getStridesAndOffset(strides, ignored);
    SmallVector<OpFoldResult> sizes, strideValues;
    for (int64_t size : type.getShape())
      sizes.push_back(vb.getIndexAttr(size));
    for (int64_t stride : strides)
      strideValues.push_back(vb.getIndexAttr(stride));
    auto viewType = MemRefType::get(
        type.getShape(), type.getElementType(),
        StridedLayoutAttr::get(b.getContext(), ShapedType::kDynamic, strides),
        workgroup);
    Value view = memref::ReinterpretCastOp::create(
        vb, loc, viewType, copies, OpFoldResult(offset), sizes, strideValues);
    for (Operation *user :
         llvm::make_early_inc_range(buffer->getResult(0).getUsers())) {
      if (llvm::isa<memref::DeallocOp>(user))
        user->erase();
      else
        user->replaceUsesOfWith(buffer->getResult(0), view);
    }
    buffer->erase();
  }
  barrierBefore(loop, team);
  // Warps past the buffers' copies take no iteration (the block's warps
  // when all fit: always true).
  Value takes = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult,
                                      blockWarp, warpCount);
  auto taking = scf::IfOp::create(b, loc, takes, /*withElse=*/false);
  OpBuilder wb = OpBuilder::atBlockBegin(taking.thenBlock());
  auto walk = scf::ForOp::create(
      wb, loc, warp, total, warpStride, ValueRange{},
      [&](OpBuilder &lb, Location ll, Value linear, ValueRange) {
        cloneIteration(lb, ll, loop, counts, linear);
        scf::YieldOp::create(lb, ll);
      });
  OpBuilder after(loop.getContext());
  after.setInsertionPointAfter(taking);
  gpu::BarrierOp::create(after, loc);
  loop.erase();
  distributeOnLanes(*walk.getBody(),
                    Team{team.launch, lane, kWarpLanes, /*lanes=*/true});
}

void FunctionMapper::distributeOnLanes(Block &block, const Team &lanes) {
  for (Operation &op : llvm::make_early_inc_range(block.without_terminator())) {
    Location loc = op.getLoc();
    if (runsOnHost(&op) || llvm::isa<memref::AllocaOp>(op))
      continue;
    if (auto loop = llvm::dyn_cast<scf::ParallelOp>(op)) {
      // Its writes wait for the lanes' earlier reads, and what follows
      // sees them.
      OpBuilder b(loop);
      syncWarp(b, loc);
      b.setInsertionPointAfter(loop);
      syncWarp(b, loc);
      if (loop.getNumReductions() > 0)
        spreadReduction(loop, lanes);
      else
        spread(loop, lanes);
      continue;
    }
    if (llvm::isa<scf::ForOp, scf::IfOp>(op) && !onlyReads(&op)) {
      // Uniform control flow: its conditions and bounds come from every
      // lane's same values (reductions leave every lane the same bits).
      for (Region &region : op.getRegions())
        for (Block &inner : region)
          distributeOnLanes(inner, lanes);
      continue;
    }
    if (onlyReads(&op))
      continue;
    // A store (runsOnLanes): lane 0's, between syncs.
    OpBuilder b(&op);
    syncWarp(b, loc);
    Value first =
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, lanes.thread,
                              arith::ConstantIndexOp::create(b, loc, 0));
    auto guarded = scf::IfOp::create(b, loc, first, /*withElse=*/false);
    op.moveBefore(guarded.thenBlock()->getTerminator());
    b.setInsertionPointAfter(guarded);
    syncWarp(b, loc);
  }
}

bool FunctionMapper::joinsRoutingKernel(Operation *op) {
  if (!llvm::isa<scf::IfOp>(op) || op->getNumResults() != 0)
    return false;
  for (Region &region : op->getRegions())
    for (Operation &inner : region.getOps()) {
      if (runsOnHost(&inner) || joinsRoutingKernel(&inner))
        continue;
      auto loop = llvm::dyn_cast<scf::ParallelOp>(inner);
      if (!loop || loop.getNumResults() != 0 || holdsGroupedMatmul(loop) ||
          readsWeightMatrix(loop) ||
          llvm::any_of(loadedMatrices(loop),
                       [&](Value m) { return tokenRows.contains(m); }))
        return false;
    }
  return true;
}

/// The parallel loops `op` is or holds (a choice of them).
static SmallVector<scf::ParallelOp> loopsOf(Operation *op) {
  if (auto loop = llvm::dyn_cast<scf::ParallelOp>(op))
    return {loop};
  SmallVector<scf::ParallelOp> loops;
  for (Region &region : op->getRegions())
    for (Operation &inner : region.getOps())
      llvm::append_range(loops, loopsOf(&inner));
  return loops;
}

size_t FunctionMapper::gridPhaseEnd() {
  size_t first = 0;
  while (first < run.size() && runsOnHost(run[first]))
    ++first;
  if (first + 1 >= run.size())
    return 0;
  Operation *op = run[first];
  auto loop = llvm::dyn_cast<scf::ParallelOp>(op);
  if (!(loop && loop.getNumResults() == 0 && !holdsGroupedMatmul(loop)) &&
      !joinsRoutingKernel(op))
    return 0;
  // The grid's size is the host's: from bounds it knows before the kernel.
  for (scf::ParallelOp inner : loopsOf(op))
    for (Value bound : llvm::concat<Value>(inner.getLowerBound(),
                                           inner.getUpperBound(),
                                           inner.getStep()))
      if (!hostKnows(bound, op))
        return 0;
  bool follows = llvm::any_of(ArrayRef(run).drop_front(first + 1),
                              [](Operation *next) { return !runsOnHost(next); });
  return follows ? first + 1 : 0;
}

bool FunctionMapper::hostKnows(Value value, Operation *scope) {
  Operation *def = value.getDefiningOp();
  if (!def) {
    // A block argument: the function's, or one inside `scope` (an
    // induction variable), which the host does not know.
    return !scope->isAncestor(value.getParentBlock()->getParentOp());
  }
  if (scope->isAncestor(def))
    return runsOnHost(def) &&
           llvm::all_of(def->getOperands(),
                        [&](Value operand) { return hostKnows(operand, scope); });
  Operation *top = scope->getBlock()->findAncestorOpInBlock(*def);
  return top && !runSet.contains(top);
}

/// `value` where the host computes the grid (hostKnows): the ops that
/// compute it inside `scope`, cloned.
static Value onHost(OpBuilder &b, Value value, Operation *scope) {
  Operation *def = value.getDefiningOp();
  if (!def || !scope->isAncestor(def))
    return value;
  IRMapping mapping;
  for (Value operand : def->getOperands())
    mapping.map(operand, onHost(b, operand, scope));
  return b.clone(*def, mapping)->getResult(
      llvm::cast<OpResult>(value).getResultNumber());
}

Value FunctionMapper::blocksFor(OpBuilder &b, Location loc, Operation *op,
                                Operation *scope) {
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  if (auto loop = llvm::dyn_cast<scf::ParallelOp>(op)) {
    // A block's threads take as many iterations, or its warps (a warp per
    // iteration: spreadOverWarps).
    int64_t warps = warpsFor(loop, routingBlockSize);
    int64_t perBlock = warps > 0 ? warps : routingBlockSize;
    Value iterations = arith::ConstantIndexOp::create(b, loc, 1);
    for (auto [lower, upper, step] : llvm::zip(
             loop.getLowerBound(), loop.getUpperBound(), loop.getStep())) {
      Value span = arith::SubIOp::create(b, loc, onHost(b, upper, scope),
                                         onHost(b, lower, scope));
      span = arith::MaxSIOp::create(b, loc, span, zero);
      iterations = arith::MulIOp::create(
          b, loc, iterations,
          arith::CeilDivUIOp::create(b, loc, span, onHost(b, step, scope)));
    }
    return arith::CeilDivUIOp::create(
        b, loc, iterations, arith::ConstantIndexOp::create(b, loc, perBlock));
  }
  // The most of each region's loops; of the branch taken, for a choice the
  // host makes.
  SmallVector<Value> perRegion;
  for (Region &region : op->getRegions()) {
    Value most = zero;
    for (Operation &inner : region.getOps())
      if (!loopsOf(&inner).empty())
        most = arith::MaxUIOp::create(b, loc, most,
                                      blocksFor(b, loc, &inner, scope));
    perRegion.push_back(most);
  }
  auto choice = llvm::dyn_cast<scf::IfOp>(op);
  if (choice && perRegion.size() == 2 &&
      hostKnows(choice.getCondition(), scope))
    return arith::SelectOp::create(b, loc,
                                   onHost(b, choice.getCondition(), scope),
                                   perRegion[0], perRegion[1]);
  Value most = zero;
  for (Value blocks : perRegion)
    most = arith::MaxUIOp::create(b, loc, most, blocks);
  return most;
}

Value FunctionMapper::gridPhaseBlocks(OpBuilder &b, Location loc,
                                      ArrayRef<Operation *> ops) {
  Value blocks = arith::ConstantIndexOp::create(b, loc, 1);
  for (Operation *op : ops)
    if (!loopsOf(op).empty())
      blocks =
          arith::MaxUIOp::create(b, loc, blocks, blocksFor(b, loc, op, op));
  return arith::MinUIOp::create(
      b, loc, blocks, arith::ConstantIndexOp::create(b, loc, multiprocessors));
}

Block *FunctionMapper::buildLastBlockHandoff(gpu::LaunchOp launch,
                                             Value counter, Location loc) {
  Block &kernel = launch.getBody().front();
  OpBuilder b(kernel.getTerminator());
  Type i32 = b.getI32Type();
  auto gpuScope = NVVM::MemScopeKindAttr::get(b.getContext(),
                                              NVVM::MemScopeKind::GPU);
  // Each thread's writes reach the whole GPU before its block counts
  // itself.
  NVVM::MembarOp::create(b, loc, gpuScope);
  gpu::BarrierOp::create(b, loc);
  auto flagType = MemRefType::get(
      {1}, i32, MemRefLayoutAttrInterface{},
      gpu::AddressSpaceAttr::get(b.getContext(), gpu::AddressSpace::Workgroup));
  Value flag = launch.addWorkgroupAttribution(flagType, loc);
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  Value first = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq,
                                      launch.getThreadIds().x, zero);
  auto count = scf::IfOp::create(b, loc, first, /*withElse=*/false);
  {
    OpBuilder cb(count.thenBlock()->getTerminator());
    Value before = memref::AtomicRMWOp::create(
        cb, loc, arith::AtomicRMWKind::addi,
        arith::ConstantIntOp::create(cb, loc, i32, 1), counter,
        ValueRange{zero});
    Value lastCount = arith::IndexCastUIOp::create(
        cb, loc, i32,
        arith::SubIOp::create(cb, loc, launch.getGridSizeX(),
                              arith::ConstantIndexOp::create(cb, loc, 1)));
    Value isLast = arith::CmpIOp::create(cb, loc, arith::CmpIPredicate::eq,
                                         before, lastCount);
    memref::StoreOp::create(cb, loc, arith::ExtUIOp::create(cb, loc, i32, isLast),
                            flag, ValueRange{zero});
  }
  gpu::BarrierOp::create(b, loc);
  Value last = arith::CmpIOp::create(
      b, loc, arith::CmpIPredicate::ne,
      memref::LoadOp::create(b, loc, flag, ValueRange{zero}),
      arith::ConstantIntOp::create(b, loc, i32, 0));
  return scf::IfOp::create(b, loc, last, /*withElse=*/false).thenBlock();
}

LogicalResult FunctionMapper::runOnce(Operation &op, const Team &team) {
  Location loc = op.getLoc();
  // Reads of other threads before the write.
  barrierBefore(&op, team);
  OpBuilder b(&op);
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  Value first = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq,
                                      team.thread, zero);
  auto guarded = scf::IfOp::create(b, loc, first, /*withElse=*/false);
  op.moveBefore(guarded.thenBlock()->getTerminator());
  b.setInsertionPointAfter(guarded);
  gpu::BarrierOp::create(b, loc);
  if (op.getNumResults() == 0)
    return success();
  // Results reach the other threads through workgroup memory.
  auto shared = MemRefType::get(
      {static_cast<int64_t>(op.getNumResults())}, b.getI64Type(),
      MemRefLayoutAttrInterface{},
      gpu::AddressSpaceAttr::get(b.getContext(), gpu::AddressSpace::Workgroup));
  Value buffer = team.launch.addWorkgroupAttribution(shared, loc);
  OpBuilder sb = OpBuilder::atBlockTerminator(guarded.thenBlock());
  for (auto [i, result] : llvm::enumerate(op.getResults())) {
    FailureOr<Value> bits = toBits(sb, loc, result);
    if (failed(bits))
      return op.emitError("moe-map-to-gpu: cannot share a result of type ")
             << result.getType() << " between threads";
    memref::StoreOp::create(
        sb, loc, *bits, buffer,
        ValueRange{arith::ConstantIndexOp::create(sb, loc, i)});
  }
  for (auto [i, result] : llvm::enumerate(op.getResults())) {
    Value bits = memref::LoadOp::create(
        b, loc, buffer, ValueRange{arith::ConstantIndexOp::create(b, loc, i)});
    Value shared = fromBits(b, loc, bits, result.getType());
    // The kernel's other uses; the host's read back what thread 0 shared.
    result.replaceUsesWithIf(shared, [&](OpOperand &use) {
      return team.launch->isAncestor(use.getOwner()) &&
             !guarded->isAncestor(use.getOwner());
    });
    sharedValues[result] = shared;
  }
  return success();
}

void FunctionMapper::barrierBefore(Operation *op, const Team &team) {
  bool needed = !holdsOneTile(op->getBlock(), team);
  for (Operation *previous = op->getPrevNode(); previous;
       previous = previous->getPrevNode()) {
    if (llvm::isa<gpu::BarrierOp>(previous))
      return;
    if (!isMemoryEffectFree(previous)) {
      needed = true;
      break;
    }
  }
  if (!needed)
    return;
  OpBuilder b(op);
  gpu::BarrierOp::create(b, op->getLoc());
}

LogicalResult FunctionMapper::distribute(Block &block, const Team &team) {
  // One thread runs the ops as they are.
  if (team.size == 1)
    return success();
  for (Operation &op : llvm::make_early_inc_range(block.without_terminator())) {
    Location loc = op.getLoc();
    if (llvm::isa<moe::GroupedMatmulOp>(op)) {
      // The warp computes the tile together (moe-lower-grouped-matmul-to-
      // mma) after every earlier read of what it writes; what follows may
      // read any of it, unless nothing follows in its tile (a persistent
      // grid's next tile then starts at once: the tile's lowering orders
      // its own use of shared memory).
      barrierBefore(&op, team);
      bool lastOfTile =
          holdsOneTile(op.getBlock(), team) &&
          llvm::all_of(llvm::make_range(std::next(op.getIterator()),
                                        op.getBlock()->end()),
                       [](Operation &next) {
                         return next.hasTrait<OpTrait::IsTerminator>() ||
                                isMemoryEffectFree(&next);
                       });
      if (!lastOfTile) {
        OpBuilder b(op.getContext());
        b.setInsertionPointAfter(&op);
        gpu::BarrierOp::create(b, loc);
      }
      continue;
    }
    if (runsOnHost(&op))
      continue;
    if (isTeamReduction(&op)) {
      spreadReduction(llvm::cast<scf::ParallelOp>(op), team);
      continue;
    }
    if (llvm::isa<scf::ForOp, scf::IfOp>(op) &&
        (holdsGroupedMatmul(&op) || holdsTeamReduction(&op) ||
         (llvm::isa<scf::IfOp>(op) && op.getNumResults() == 0 &&
          op.walk([](scf::ParallelOp) {
              return WalkResult::interrupt();
            }).wasInterrupted()))) {
      // Uniform control flow around tiles or team reductions: every thread
      // takes it.
      for (Region &region : op.getRegions())
        for (Block &inner : region)
          if (failed(distribute(inner, team)))
            return failure();
      continue;
    }
    if (auto loop = llvm::dyn_cast<scf::ParallelOp>(op);
        loop && loop.getNumResults() == 0 && !holdsGroupedMatmul(loop)) {
      if (int64_t warps = warpsFor(loop, team.size)) {
        spreadOverWarps(loop, team, warps);
        continue;
      }
      barrierBefore(loop, team);
      OpBuilder b(loop);
      auto barrier = gpu::BarrierOp::create(b, loc);
      barrier->moveAfter(loop);
      spread(loop, team);
      continue;
    }
    if (holdsGroupedMatmul(&op))
      return op.emitError("moe-map-to-gpu: cannot run this op around a "
                          "grouped matmul on a warp");
    if (onlyReads(&op))
      continue;
    // Other writes: once, by thread 0.
    if (failed(runOnce(op, team)))
      return failure();
  }
  return success();
}

LogicalResult FunctionMapper::flush(Operation *before) {
  if (run.empty())
    return success();
  Location loc = run.front()->getLoc();
  Block *body = run.front()->getBlock();
  // Values the run computes that ops outside it use.
  SmallVector<Value> escaping;
  for (Operation *op : run)
    for (Value result : op->getResults())
      if (llvm::any_of(result.getUsers(), [&](Operation *user) {
            return !runSet.contains(body->findAncestorOpInBlock(*user));
          }))
        escaping.push_back(result);

  OpBuilder b(before);
  Value scratch;
  auto scratchType =
      MemRefType::get({static_cast<int64_t>(escaping.size())}, b.getI64Type());
  if (!escaping.empty()) {
    auto alloc = gpu::AllocOp::create(b, loc, scratchType, tokenType,
                                      ValueRange{stream(b, loc)}, ValueRange{},
                                      ValueRange{}, /*hostShared=*/false);
    token = alloc.getAsyncToken();
    scratch = alloc.getMemref();
  }
  Value one = arith::ConstantIndexOp::create(b, loc, 1);
  // What the kernel is: matmul tiles, the routing block, or one thread.
  StringRef role = llvm::any_of(run, holdsGroupedMatmul) ? "tiles"
                   : runTeam > 1                         ? "routing"
                                                         : "serial";
  // The routing kernel's first loop (the tokens' routing) over as many
  // blocks as its iterations fill (at most one per multiprocessor), the
  // rest (the plan, which reads all of it) on the last block to finish it.
  size_t spread = role == "routing" && escaping.empty() && multiprocessors > 0
                      ? gridPhaseEnd()
                      : 0;
  Value grid = one;
  Value counter;
  if (spread) {
    grid = gridPhaseBlocks(b, loc, ArrayRef(run).take_front(spread));
    // The blocks that have finished the first loop: one word, zeroed.
    auto counterType = MemRefType::get({1}, b.getI32Type());
    auto alloc = gpu::AllocOp::create(b, loc, counterType, tokenType,
                                      ValueRange{stream(b, loc)}, ValueRange{},
                                      ValueRange{}, /*hostShared=*/false);
    counter = alloc.getMemref();
    auto zero = gpu::MemsetOp::create(
        b, loc, tokenType, ValueRange{alloc.getAsyncToken()}, counter,
        arith::ConstantIntOp::create(b, loc, b.getI32Type(), 0));
    token = zero.getAsyncToken();
  }
  gpu::LaunchOp launch = createLaunch(b, loc, role, grid, runTeam);
  Block &kernel = launch.getBody().front();
  Team team{launch, launch.getThreadIds().x, runTeam};
  if (spread) {
    // The thread's index among the grid's, ahead of the ops that use it.
    OpBuilder kb(kernel.getTerminator());
    Value blockThreads = arith::ConstantIndexOp::create(kb, loc, runTeam);
    Team everyBlock{
        launch,
        arith::AddIOp::create(
            kb, loc,
            arith::MulIOp::create(kb, loc, launch.getBlockIds().x,
                                  blockThreads),
            launch.getThreadIds().x),
        runTeam,
        /*lanes=*/false,
        arith::MulIOp::create(kb, loc, launch.getGridSizeX(), blockThreads),
        launch.getThreadIds().x};
    for (Operation *op : ArrayRef(run).take_front(spread))
      op->moveBefore(kernel.getTerminator());
    if (failed(distribute(kernel, everyBlock)))
      return failure();
    Block *last = buildLastBlockHandoff(launch, counter, loc);
    for (Operation *op : ArrayRef(run).drop_front(spread))
      op->moveBefore(last->getTerminator());
    if (failed(distribute(*last, team)))
      return failure();
    // What the other blocks wrote before counting themselves, every thread
    // of the last one sees after the count that made it the last.
    OpBuilder lb = OpBuilder::atBlockBegin(last);
    NVVM::MembarOp::create(
        lb, loc,
        NVVM::MemScopeKindAttr::get(lb.getContext(), NVVM::MemScopeKind::GPU));
    OpBuilder after(before);
    auto free = gpu::DeallocOp::create(after, loc, tokenType,
                                       ValueRange{token}, counter);
    token = free.getAsyncToken();
  } else {
    for (Operation *op : run)
      op->moveBefore(kernel.getTerminator());
    if (failed(distribute(kernel, team)))
      return failure();
  }
  if (!escaping.empty() && deviceIO)
    return escaping.front().getDefiningOp()->emitError(
        "moe-map-to-gpu: device-io: the host needs a value a kernel "
        "computes, so the call would wait for the GPU before its end");
  if (!escaping.empty()) {
    // Every thread holds the values; thread 0 stores them.
    OpBuilder kb(kernel.getTerminator());
    Value zero = arith::ConstantIndexOp::create(kb, loc, 0);
    Value first = arith::CmpIOp::create(kb, loc, arith::CmpIPredicate::eq,
                                        team.thread, zero);
    auto store = scf::IfOp::create(kb, loc, first, /*withElse=*/false);
    kb.setInsertionPoint(store.thenBlock()->getTerminator());
    for (auto [i, value] : llvm::enumerate(escaping)) {
      FailureOr<Value> bits =
          toBits(kb, loc, sharedValues.lookup_or(value, value));
      if (failed(bits))
        return value.getDefiningOp()->emitError(
                   "moe-map-to-gpu: the host needs a value of type ")
               << value.getType() << " that a kernel computes";
      Value index = arith::ConstantIndexOp::create(kb, loc, i);
      memref::StoreOp::create(kb, loc, *bits, scratch, index);
    }
    // The host reads the values back and waits for them.
    auto host = memref::AllocaOp::create(b, loc, scratchType);
    auto copy = gpu::MemcpyOp::create(b, loc, tokenType, ValueRange{token},
                                      host, scratch);
    token = copy.getAsyncToken();
    sync(b, loc);
    auto free = gpu::DeallocOp::create(b, loc, tokenType,
                                       ValueRange{stream(b, loc)}, scratch);
    token = free.getAsyncToken();
    for (auto [i, value] : llvm::enumerate(escaping)) {
      Value index = arith::ConstantIndexOp::create(b, loc, i);
      Value bits = memref::LoadOp::create(b, loc, host, index);
      Value copyBack = fromBits(b, loc, bits, value.getType());
      value.replaceUsesWithIf(copyBack, [&](OpOperand &use) {
        return !launch->isAncestor(use.getOwner());
      });
    }
  }
  run.clear();
  runSet.clear();
  return success();
}

LogicalResult FunctionMapper::launchParallel(scf::ParallelOp loop,
                                             StringRef role) {
  OpBuilder b(loop);
  Location loc = loop.getLoc();
  SmallVector<Value> counts = tripCounts(b, loc, loop);
  Value total = product(b, loc, counts);
  if (holdsGroupedMatmul(loop)) {
    // One block per tile: the tile's block ids from the forall's GPU block
    // mapping (kMappingAttr), else its linear index on x.
    SmallVector<int64_t> blockDims = mappedBlockDims(loop);
    // The mapped dimensions in the order of the grid's x, y, z, which the
    // tile order walks fastest first (row blocks, then columns).
    SmallVector<int64_t> order(counts.size());
    std::iota(order.begin(), order.end(), 0);
    if (!blockDims.empty())
      llvm::sort(order, [&](int64_t a, int64_t c) {
        return blockDims[a] < blockDims[c];
      });
    int64_t groupRows = 0;
    if (!blockDims.empty())
      groupRows = tileGroupRows > 0 ? tileGroupRows
                                    : groupRowsByRule(loop, multiprocessors);
    gpu::LaunchOp launch;
    // Clusters of two CTAs (rank = block id mod 2) over pairs of row blocks
    // of one column tile, the pairs in the tile order (groups of G / 2
    // pairs); a last odd row block's second CTA runs no tile.
    bool paired = tileCluster == 2 && blockDims.size() >= 2;
    SmallVector<Value> pairCounts(counts);
    Value pairs;
    if (paired) {
      Value two = arith::ConstantIndexOp::create(b, loc, 2);
      pairCounts[order[0]] =
          arith::CeilDivUIOp::create(b, loc, counts[order[0]], two);
      pairs = product(b, loc, pairCounts);
    }
    // The tile of pair `pair` for this CTA, under a guard that it exists.
    auto clonePairTile = [&](OpBuilder &kb, Value pair, Value blockId) {
      int64_t rowDim = order[0];
      Value two = arith::ConstantIndexOp::create(kb, loc, 2);
      SmallVector<Value> indices =
          tileIndices(kb, loc, pair, pairCounts, order,
                      groupRows > 0 ? (groupRows + 1) / 2 : 0);
      indices[rowDim] = arith::AddIOp::create(
          kb, loc, arith::MulIOp::create(kb, loc, indices[rowDim], two),
          arith::RemUIOp::create(kb, loc, blockId, two));
      Value exists = arith::CmpIOp::create(kb, loc, arith::CmpIPredicate::ult,
                                           indices[rowDim], counts[rowDim]);
      auto guard = scf::IfOp::create(kb, loc, exists, /*withElse=*/false);
      kb.setInsertionPoint(guard.thenBlock()->getTerminator());
      cloneBody(kb, loc, loop, indices);
      tileWalkBodies.insert(guard.thenBlock());
    };
    if (tileGridLimit > 0) {
      // A persistent grid: at most tileGridLimit blocks, each looping over
      // the tiles' linear indices in the tile order (in clusters, an even
      // number of blocks, each cluster looping over the pairs).
      if (paired) {
        Value limit = arith::ConstantIndexOp::create(
            b, loc, std::max<int64_t>(tileGridLimit / 2, 1));
        Value two = arith::ConstantIndexOp::create(b, loc, 2);
        launch = createLaunch(
            b, loc, "tiles",
            arith::MulIOp::create(
                b, loc, arith::MinUIOp::create(b, loc, pairs, limit), two),
            warpSize, {}, {}, /*cluster=*/2);
        OpBuilder kb(launch.getBody().front().getTerminator());
        Value kTwo = arith::ConstantIndexOp::create(kb, loc, 2);
        Value id = launch.getBlockIds().x;
        auto walk = scf::ForOp::create(
            kb, loc, arith::DivUIOp::create(kb, loc, id, kTwo), pairs,
            arith::DivUIOp::create(kb, loc, launch.getGridSize().x, kTwo));
        kb.setInsertionPoint(walk.getBody()->getTerminator());
        clonePairTile(kb, walk.getInductionVar(), id);
      } else {
        Value limit = arith::ConstantIndexOp::create(b, loc, tileGridLimit);
        launch = createLaunch(b, loc, "tiles",
                              arith::MinUIOp::create(b, loc, total, limit),
                              warpSize);
        OpBuilder kb(launch.getBody().front().getTerminator());
        auto walk = scf::ForOp::create(kb, loc, launch.getBlockIds().x, total,
                                       launch.getGridSize().x);
        kb.setInsertionPoint(walk.getBody()->getTerminator());
        cloneBody(kb, loc, loop,
                  tileIndices(kb, loc, walk.getInductionVar(), counts, order,
                              groupRows));
        tileWalkBodies.insert(walk.getBody());
      }
    } else if (paired) {
      Value two = arith::ConstantIndexOp::create(b, loc, 2);
      launch = createLaunch(b, loc, "tiles",
                            arith::MulIOp::create(b, loc, pairs, two), warpSize,
                            {}, {}, /*cluster=*/2);
      OpBuilder kb(launch.getBody().front().getTerminator());
      Value id = launch.getBlockIds().x;
      clonePairTile(
          kb,
          arith::DivUIOp::create(kb, loc, id,
                                 arith::ConstantIndexOp::create(kb, loc, 2)),
          id);
    } else if (blockDims.empty()) {
      launch = createLaunch(b, loc, "tiles", total, warpSize);
      OpBuilder kb(launch.getBody().front().getTerminator());
      cloneIteration(kb, loc, loop, counts, launch.getBlockIds().x);
    } else if (groupRows > 0 && blockDims.size() >= 2) {
      // Tiles in groups of row blocks: one block per tile on x, its tile
      // from its linear index.
      launch = createLaunch(b, loc, "tiles", total, warpSize);
      OpBuilder kb(launch.getBody().front().getTerminator());
      cloneBody(kb, loc, loop,
                tileIndices(kb, loc, launch.getBlockIds().x, counts, order,
                            groupRows));
    } else {
      SmallVector<Value> grid(3);
      for (auto [d, dim] : llvm::enumerate(blockDims))
        grid[dim] = counts[d];
      launch = createLaunch(
          b, loc, "tiles",
          grid[0] ? grid[0]
                  : arith::ConstantIndexOp::create(b, loc, 1).getResult(),
          warpSize, grid[1], grid[2]);
      gpu::KernelDim3 ids = launch.getBlockIds();
      Value byDim[3] = {ids.x, ids.y, ids.z};
      SmallVector<Value> indices;
      for (int64_t dim : blockDims)
        indices.push_back(byDim[dim]);
      OpBuilder kb(launch.getBody().front().getTerminator());
      cloneBody(kb, loc, loop, indices);
    }
    Team team{launch, launch.getThreadIds().x, warpSize};
    if (failed(distribute(launch.getBody().front(), team)))
      return failure();
  } else if (int64_t teamThreads = teamSize(loop)) {
    // A block per iteration (looping over them past the grid's limit), its
    // reductions over lanes on the block's threads.
    Value limit = arith::ConstantIndexOp::create(
        b, loc,
        teamGridLimit > 0 ? std::min(teamGridLimit, kMaxGridX) : kMaxGridX);
    gpu::LaunchOp launch =
        createLaunch(b, loc, "team",
                     arith::MinUIOp::create(b, loc, total, limit), teamThreads);
    OpBuilder kb(launch.getBody().front().getTerminator());
    auto walk = scf::ForOp::create(kb, loc, launch.getBlockIds().x, total,
                                   launch.getGridSize().x);
    kb.setInsertionPoint(walk.getBody()->getTerminator());
    cloneIteration(kb, loc, loop, counts, walk.getInductionVar());
    Team team{launch, launch.getThreadIds().x, teamThreads};
    if (failed(distribute(launch.getBody().front(), team)))
      return failure();
  } else {
    // One thread per iteration.
    Value threads = arith::ConstantIndexOp::create(b, loc, blockSize);
    Value grid = arith::CeilDivUIOp::create(b, loc, total, threads);
    gpu::LaunchOp launch = createLaunch(b, loc, role, grid, blockSize);
    OpBuilder kb(launch.getBody().front().getTerminator());
    Value first = arith::MulIOp::create(kb, loc, launch.getBlockIds().x,
                                        launch.getBlockSizeX());
    Value linear =
        arith::AddIOp::create(kb, loc, first, launch.getThreadIds().x);
    Value inRange = arith::CmpIOp::create(kb, loc, arith::CmpIPredicate::ult,
                                          linear, total);
    auto guarded = scf::IfOp::create(kb, loc, inRange, /*withElse=*/false);
    kb.setInsertionPoint(guarded.thenBlock()->getTerminator());
    cloneIteration(kb, loc, loop, counts, linear);
  }
  loop.erase();
  return success();
}

/// `value` (a memref) with an identity layout, as gpu.memcpy copies: its
/// source through casts when that has one, else a reinterpret_cast of a
/// view of its buffer's first elements in row-major order (its first rows:
/// static strides, offset 0); null for other views.
Value withIdentityLayout(OpBuilder &b, Location loc, Value value) {
  Value source = value;
  while (auto cast = source.getDefiningOp<memref::CastOp>())
    source = cast.getSource();
  auto type = llvm::cast<MemRefType>(source.getType());
  if (type.getLayout().isIdentity())
    return source;
  auto identity =
      MemRefType::get(type.getShape(), type.getElementType(),
                      MemRefLayoutAttrInterface(), type.getMemorySpace());
  SmallVector<int64_t> strides, rowMajor;
  int64_t offset, zero;
  if (failed(type.getStridesAndOffset(strides, offset)) || offset != 0 ||
      failed(identity.getStridesAndOffset(rowMajor, zero)) ||
      llvm::any_of(strides, ShapedType::isDynamic) || strides != rowMajor)
    return {};
  SmallVector<OpFoldResult> sizes = memref::getMixedSizes(b, loc, source);
  SmallVector<OpFoldResult> strideValues;
  for (int64_t stride : strides)
    strideValues.push_back(b.getIndexAttr(stride));
  return memref::ReinterpretCastOp::create(
      b, loc, identity, source, b.getIndexAttr(0), sizes, strideValues);
}

LogicalResult FunctionMapper::copyResults(func::ReturnOp ret) {
  OpBuilder b(ret);
  Location loc = ret.getLoc();
  llvm::SetVector<Value> freed;
  for (OpOperand &operand : ret->getOpOperands()) {
    auto type = llvm::dyn_cast<MemRefType>(operand.get().getType());
    if (!type)
      continue;
    Value device = operand.get();
    // The caller takes the device buffer (and frees it).
    if (deviceIO)
      continue;
    // A result that views its buffer (the first rows of a larger one) is
    // copied as a buffer of its own shape.
    Value contiguous = withIdentityLayout(b, loc, device);
    if (!contiguous)
      return ret.emitError("moe-map-to-gpu: result #")
             << operand.getOperandNumber()
             << " views its buffer other than by its first rows in "
                "row-major order, which the copy to the host cannot take";
    SmallVector<Value> sizes;
    for (int64_t d = 0; d < type.getRank(); ++d)
      if (type.isDynamicDim(d))
        sizes.push_back(memref::DimOp::create(b, loc, device, d));
    auto host = memref::AllocOp::create(
        b, loc, MemRefType::get(type.getShape(), type.getElementType()), sizes);
    auto copy = gpu::MemcpyOp::create(
        b, loc, tokenType, ValueRange{stream(b, loc)}, host, contiguous);
    token = copy.getAsyncToken();
    Value result = host;
    if (host.getType() != type)
      result = memref::CastOp::create(b, loc, type, host);
    operand.set(result);
    if (device.getDefiningOp<gpu::AllocOp>())
      freed.insert(device);
  }
  // Under device-io a result may view one of them: the runtime's arena
  // frees them after it has copied the results out.
  if (!deviceIO)
    for (Value input : inputCopies)
      freed.insert(input);
  for (Value buffer : freed) {
    auto free = gpu::DeallocOp::create(b, loc, tokenType,
                                       ValueRange{stream(b, loc)}, buffer);
    token = free.getAsyncToken();
  }
  sync(b, loc);
  return success();
}

/// Whether `op` is control flow the host keeps: an scf.if or scf.for that
/// yields buffers, allocates some, or holds parallel loops (launched from
/// within it), rather than a sequential loop for one kernel.
bool needsHostControl(Operation *op) {
  if (!llvm::isa<scf::IfOp, scf::ForOp>(op))
    return false;
  if (llvm::any_of(op->getResultTypes(), llvm::IsaPred<BaseMemRefType>))
    return true;
  return op
      ->walk([](Operation *inner) {
        return llvm::isa<memref::AllocOp, memref::AllocaOp, scf::ParallelOp>(
                   inner)
                   ? WalkResult::interrupt()
                   : WalkResult::advance();
      })
      .wasInterrupted();
}

/// Whether host control flow `op` only launches kernels: no results, and
/// its regions hold nothing but parallel loops (kernels), host arithmetic
/// and such control flow again, so no value its host code uses comes from
/// a kernel. Its kernels then chain on the call's stream without the host
/// waiting before or after it.
bool onlyLaunches(Operation *op) {
  if (!llvm::isa<scf::IfOp, scf::ForOp>(op) || op->getNumResults() != 0)
    return false;
  for (Region &region : op->getRegions())
    for (Block &block : region)
      for (Operation &inner : block) {
        if (llvm::isa<scf::ParallelOp, scf::ForallOp>(inner) ||
            runsOnHost(&inner) || onlyLaunches(&inner))
          continue;
        if (auto yield = llvm::dyn_cast<scf::YieldOp>(inner);
            yield && yield->getNumOperands() == 0)
          continue;
        return false;
      }
  return true;
}

LogicalResult FunctionMapper::mapBlock(Block &block) {
  SmallVector<Operation *> ops;
  for (Operation &op : block)
    ops.push_back(&op);
  for (Operation *op : ops) {
    Location loc = op->getLoc();
    // GPU operations are this pass's own (the copies of the inputs).
    if (llvm::isa<gpu::GPUDialect>(op->getDialect()))
      continue;
    if (op->hasTrait<OpTrait::IsTerminator>()) {
      if (failed(flush(op)))
        return failure();
      if (auto ret = llvm::dyn_cast<func::ReturnOp>(op)) {
        if (failed(copyResults(ret)))
          return failure();
      } else if (!chaining) {
        // A region of host control flow ends with its GPU work done.
        OpBuilder b(op);
        sync(b, loc);
      }
      continue;
    }
    if (routing && joinsRoutingKernel(op)) {
      // A choice between routing loops (a token per warp at small T, per
      // thread past that): in the routing kernel, whichever is taken.
      addToRun(op, routingBlockSize);
      continue;
    }
    if (onlyLaunches(op)) {
      // Its kernels (whichever run) continue the call's chain: they are on
      // its one stream, before what follows it, with no host wait (every
      // token of the chain is that stream once lowered).
      if (failed(flush(op)))
        return failure();
      OpBuilder b(op);
      Value entry = stream(b, loc);
      bool wasChaining = std::exchange(chaining, true);
      for (Region &region : op->getRegions())
        for (Block &inner : region) {
          token = entry;
          if (failed(mapBlock(inner)))
            return failure();
        }
      chaining = wasChaining;
      token = entry;
      continue;
    }
    if (needsHostControl(op)) {
      if (deviceIO)
        return op->emitError("moe-map-to-gpu: device-io: host control flow "
                             "over kernels waits for the GPU before the "
                             "call's end");
      // Its regions start from finished GPU work and map on their own.
      if (failed(flush(op)))
        return failure();
      OpBuilder b(op);
      sync(b, loc);
      for (Region &region : op->getRegions())
        for (Block &inner : region)
          if (failed(mapBlock(inner)))
            return failure();
      token = {};
      continue;
    }
    if (runsOnHost(op)) {
      // Scalar arithmetic on what the pending kernel computes joins it: the
      // host reads a value back only if it needs one itself (a size, a
      // bound, a condition), when the kernel is flushed. Views stay the
      // host's.
      if (!usesRun(op))
        continue;
      if (llvm::all_of(op->getResultTypes(),
                       [](Type type) { return type.isIntOrIndexOrFloat(); })) {
        addToRun(op, runTeam);
        continue;
      }
      if (failed(flush(op)))
        return failure();
      continue;
    }
    if (llvm::isa<memref::AllocOp, memref::AllocaOp>(op)) {
      if (usesRun(op) && failed(flush(op)))
        return failure();
      auto type = llvm::cast<MemRefType>(op->getResult(0).getType());
      if (!type.getLayout().isIdentity())
        return op->emitError("moe-map-to-gpu: allocation of a non-identity "
                             "layout");
      OpBuilder b(op);
      auto alloc = gpu::AllocOp::create(
          b, loc, type, tokenType, ValueRange{stream(b, loc)},
          op->getOperands(), ValueRange{}, /*hostShared=*/false);
      token = alloc.getAsyncToken();
      op->getResult(0).replaceAllUsesWith(alloc.getMemref());
      if (llvm::isa<memref::AllocaOp>(op))
        inputCopies.push_back(alloc.getMemref());
      op->erase();
      continue;
    }
    if (auto dealloc = llvm::dyn_cast<memref::DeallocOp>(op)) {
      if (failed(flush(op)))
        return failure();
      OpBuilder b(op);
      auto free = gpu::DeallocOp::create(
          b, loc, tokenType, ValueRange{stream(b, loc)}, dealloc.getMemref());
      token = free.getAsyncToken();
      op->erase();
      continue;
    }
    bool tiles = holdsGroupedMatmul(op);
    // The routing region ends at the experts' tiles. Tiles of one expert
    // (the router's logits at prefill, a dense grouped matmul) wait for no
    // routing and may come before it; what reads their results (the
    // router's top-k) is routing, in the routing block.
    if (tiles && holdsGroupedMatmulOfExperts(op))
      routing = false;
    if (auto copy = llvm::dyn_cast<memref::CopyOp>(op);
        copy && !routing &&
        llvm::cast<MemRefType>(copy.getSource().getType())
            .getLayout()
            .isIdentity() &&
        llvm::cast<MemRefType>(copy.getTarget().getType())
            .getLayout()
            .isIdentity()) {
      if (failed(flush(op)))
        return failure();
      OpBuilder b(op);
      auto memcpy =
          gpu::MemcpyOp::create(b, loc, tokenType, ValueRange{stream(b, loc)},
                                copy.getTarget(), copy.getSource());
      token = memcpy.getAsyncToken();
      op->erase();
      continue;
    }
    auto loop = llvm::dyn_cast<scf::ParallelOp>(op);
    // In the routing region, a loop reading a weight matrix (the router's
    // matmul, a reduction over H per token and expert) or the token rows
    // (their rounding for the tiles), or a grid of tiles, runs on every
    // multiprocessor, not in the routing kernel's one block.
    if (loop && loop.getNumResults() == 0) {
      // (Named "rows": what it does there is for the tiles, not routing.)
      llvm::SmallPtrSet<Value, 4> loaded = loadedMatrices(loop);
      bool readsTokenRows =
          routing && !readsWeightMatrix(loop) &&
          llvm::any_of(loaded, [&](Value m) { return tokenRows.contains(m); });
      if (!routing || tiles || readsTokenRows || readsWeightMatrix(loop)) {
        if (failed(flush(op)) ||
            failed(launchParallel(loop, readsTokenRows ? "rows" : "loop")))
          return failure();
        continue;
      }
    }
    // Anything else that touches memory runs in a sequential kernel: a
    // warp's when it holds tiles.
    if (tiles) {
      if (!run.empty() && runTeam != warpSize && failed(flush(op)))
        return failure();
      addToRun(op, warpSize);
      continue;
    }
    addToRun(op, routing ? routingBlockSize : 1);
  }
  return success();
}

LogicalResult FunctionMapper::map() {
  if (!func.getBody().hasOneBlock())
    return func.emitError("moe-map-to-gpu: expects a function of one block "
                          "(structured control flow)");
  if (failed(forallsToParallelLoops(func)))
    return failure();
  hoistSequentialAllocations(func);
  if (failed(copyInputs()))
    return failure();
  // The token rows: what the router reads of the call's inputs.
  llvm::SmallPtrSet<Value, 4> callInputs(inputCopies.begin(),
                                         inputCopies.end());
  for (BlockArgument arg : func.getArguments())
    if (!func.getArgAttr(arg.getArgNumber(), "moe.weight"))
      callInputs.insert(arg);
  func.walk([&](scf::ParallelOp loop) {
    if (readsWeightMatrix(loop))
      for (Value matrix : loadedMatrices(loop))
        if (callInputs.contains(matrix))
          tokenRows.insert(matrix);
  });
  // Until the first tile of the experts' matmuls, with routing-block-size,
  // the ops (routing and its plan) gather in one kernel of one block.
  routing = routingBlockSize > 0;
  if (failed(mapBlock(func.getBody().front())))
    return failure();
  // The weights' bindings are in the manifest (moe-export-entries).
  for (unsigned i = 0, e = func.getNumArguments(); i < e; ++i)
    func.removeArgAttr(i, "moe.weight");
  if (deviceIO)
    func->setAttr("moe.device_io", UnitAttr::get(func.getContext()));
  // Buffers a kernel allocates (the scratch of a loop body) are private to
  // the thread that runs the body: stack memory of a fixed size, allocated
  // once at the kernel's start; buffers of a dynamic size come from the
  // device heap (malloc in a kernel).
  WalkResult nested = func.walk([](gpu::LaunchOp launch) {
    SmallVector<Operation *> allocations;
    launch.getBody().walk([&](Operation *op) {
      if (llvm::isa<memref::AllocOp, memref::AllocaOp>(op))
        allocations.push_back(op);
    });
    OpBuilder b = OpBuilder::atBlockBegin(&launch.getBody().front());
    for (Operation *op : allocations) {
      auto type = llvm::cast<MemRefType>(op->getResult(0).getType());
      if (!type.hasStaticShape() && llvm::isa<memref::AllocOp>(op)) {
        // Freed at the end of its block at the latest: the device heap is
        // not the call's arena.
        if (llvm::any_of(op->getUsers(), llvm::IsaPred<memref::DeallocOp>))
          continue;
        if (escapesRegion(op->getResult(0))) {
          op->emitError("moe-map-to-gpu: a kernel allocates a buffer of "
                        "dynamic size that outlives its block");
          return WalkResult::interrupt();
        }
        OpBuilder end(op->getBlock()->getTerminator());
        memref::DeallocOp::create(end, op->getLoc(), op->getResult(0));
        continue;
      }
      if (!type.hasStaticShape() || !type.getLayout().isIdentity()) {
        op->emitError("moe-map-to-gpu: a kernel allocates on its stack a "
                      "buffer of dynamic size ")
            << type;
        return WalkResult::interrupt();
      }
      auto scratch = memref::AllocaOp::create(b, op->getLoc(), type);
      for (Operation *user :
           llvm::make_early_inc_range(op->getResult(0).getUsers()))
        if (llvm::isa<memref::DeallocOp>(user))
          user->erase();
      op->getResult(0).replaceAllUsesWith(scratch.getResult());
      op->erase();
    }
    WalkResult frees = launch.getBody().walk([](memref::DeallocOp op) {
      if (op.getMemref().getDefiningOp<memref::AllocOp>())
        return WalkResult::advance();
      op->emitError("moe-map-to-gpu: a kernel frees a buffer it did not "
                    "allocate");
      return WalkResult::interrupt();
    });
    return frees;
  });
  return failure(nested.wasInterrupted());
}

struct MoEMapToGPUPass
    : public moe::impl::MoEMapToGPUPassBase<MoEMapToGPUPass> {
  using MoEMapToGPUPassBase::MoEMapToGPUPassBase;

  LogicalResult initialize(MLIRContext *context) override {
    if (blockSize < 1 || warpSize < 1 || routingBlockSize < 0 ||
        tileGridLimit < 0 || teamGridLimit < 0 || tileGroupRows < 0 ||
        multiprocessors < 0)
      return emitError(UnknownLoc::get(context))
             << "moe-map-to-gpu: block-size and warp-size must be at least "
                "1, routing-block-size, tile-grid-limit, team-grid-limit, "
                "tile-group-rows and multiprocessors at least 0";
    if (tileCluster != 1 && tileCluster != 2)
      return emitError(UnknownLoc::get(context))
             << "moe-map-to-gpu: tile-cluster must be 1 or 2, not "
             << static_cast<int64_t>(tileCluster);
    return success();
  }

  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (func.isExternal())
      return;
    FunctionMapper mapper(func, blockSize, warpSize, routingBlockSize,
                          tileGridLimit, teamGridLimit, tileGroupRows,
                          multiprocessors, deviceIO, tileCluster);
    if (failed(mapper.map()))
      signalPassFailure();
  }
};

} // namespace
