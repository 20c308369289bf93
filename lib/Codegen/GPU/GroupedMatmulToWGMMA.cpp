//===- GroupedMatmulToWGMMA.cpp - Grouped matmul tiles on a warpgroup -----===//
//
// A tile of the tiled program (a row block of 64 or 128 rows x up to 256
// columns) computed on Hopper's warpgroup MMA for bf16 weights, either by
// one warpgroup (4 warps, 128 threads; 64-row blocks) or, specialized, by a
// producer warpgroup that gathers A and issues the TMA loads and one
// consumer warpgroup per 64 rows that multiplies (256 or 384 threads; the
// two consumers of a 128-row block share each stage's weight boxes):
//
// - the weights' [columns x 64 depths] slice of each step comes by TMA
//   (nvgpu.tma.async.load of a descriptor of the whole [E, N, K] weight,
//   created on the host before the launch) into shared memory in the
//   128-byte swizzled layout, completing on the stage's mbarrier;
// - the A slice [rows x 64 depths] is gathered by the threads from the
//   rows' sources (rounded to bf16, zeros for a filled row without a
//   source and past K; rows past the filled ones are not stored) and
//   stored in the same swizzled layout (TMA cannot gather rows): bf16 rows
//   at 16-byte boundaries by cp.async (global to shared memory, no
//   registers; zero-filled past K and for rows without a source), which
//   completes on the stage's mbarrier with the weights' TMA bytes
//   (cp.async.mbarrier.arrive.noinc), others through the threads'
//   registers (rounded to bf16) and stores; or,
//   when the rows are the input's own (no row sources: the down
//   projection's bf16 hidden rows), comes by TMA with the weights;
// - a ring of `stages` buffers keeps stages - G steps' loads in flight
//   while `nvvm.wgmma.mma_async` (m64nNk16, both operands K-major from
//   shared memory, f32 accumulators in registers) works on the G steps'
//   groups in flight (G = 1 for wide tiles, up to 4 for narrow ones);
// - each thread writes its accumulators once, through the op's epilogue
//   (SwiGLU of the paired gate/up sums), added, or scattered;
// - with `exact_products`, f32 (f16) rows are not rounded: the ring runs
//   the depths three (two) times, once per bf16 term of the rows (their
//   upper, middle and lower 8 significand bits; the lowest first), whose
//   products with the bf16 weights are exact, into the same f32
//   accumulators.
//
// The shared-memory layout of one stage (1024-byte aligned):
//   A: 64 or 128 rows x 128 bytes | B of weight 0: BN rows x 128 bytes | ...
// Row r's 16-byte chunk c sits at r * 128 + (c ^ (r % 8)) * 16 (the
// 128-byte swizzle TMA writes and the wgmma descriptors name).
//
//===----------------------------------------------------------------------===//

#include "moe/Codegen/GPU/Passes.h"

#include "BF16Terms.h"
#include "ClusterPairs.h"
#include "TileWrites.h"
#include "moe/Dialect/MoE/IR/MoE.h"
#include "moe/Dialect/MoE/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Interfaces/ValueBoundsOpInterface.h"

#include "llvm/ADT/DenseMap.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOELOWERGROUPEDMATMULTOWGMMAPASS
#include "moe/Codegen/GPU/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::gpu_codegen;

namespace {

constexpr int64_t kWarpgroupThreads = 128;
/// The registers a thread of a 384-thread block has at entry (the 64 K
/// register file over 384 threads, in steps of 8; moe-pin-entry-registers
/// makes ptxas start there), from which the specialized roles move them.
constexpr int32_t kEntryRegisters = 65536 / 384 / 8 * 8;
/// wgmma's M: the rows of a warpgroup's part of a block.
constexpr int64_t kPartRows = 64;
/// Depths per stage: one 128-byte swizzle row of bf16.
constexpr int64_t kStepDepth = 64;
constexpr int64_t kRowBytes = kStepDepth * 2;
/// wgmma's K for 16-bit operands.
constexpr int64_t kMmaDepth = 16;
/// A stage's A buffer for one warpgroup's part of the rows.
constexpr int64_t kPartBytes = kPartRows * kRowBytes;
/// The 128-byte swizzle repeats every 8 rows of 128 bytes; buffers start
/// at multiples of it (the descriptors' base offset is then 0).
constexpr int64_t kSwizzleAtomBytes = 1024;
constexpr int64_t kSwizzleAtomRows = kSwizzleAtomBytes / kRowBytes;
/// Elements per 16-byte chunk, and the chunks of a row a thread gathers
/// (two threads per row).
constexpr int64_t kChunkElements = 8;
constexpr int64_t kChunksPerThread = kStepDepth / kChunkElements / 2;
/// Bounds of the ring: at least double buffering; 4 stages unless the
/// weights' bytes in flight need more.
constexpr int64_t kMinStages = 2, kMaxStages = 4;
/// The most stages of eight rows a ring has (a few more than the 56 that
/// a 16-column tile's 64-row ring holds).
constexpr int64_t kMaxFewRowStages = 64;
/// Filled rows a block may have for the eight-row stages (one swizzle
/// atom of A).
constexpr int64_t kFewRows = 8;
/// Shared memory of one mbarrier.
constexpr int64_t kMbarrierBytes = 8;
/// The weight bytes a tile keeps in flight (stages - 1 steps' boxes; a
/// narrow tile's groups in flight then take some of them: 26-28 KiB at 16
/// columns with 64-row stages) when shared memory allows: with two tiles
/// per multiprocessor, 64 KiB cover HBM's latency (~1-2 us) at a
/// multiprocessor's share of its bandwidth (~33 GB/s of 4.3 TB/s over
/// 132). Narrow tiles (decode) need more stages for it than wide ones,
/// whose 4 stages hold 48-96 KiB.
constexpr int64_t kWeightBytesInFlight = 32 * 1024;
/// The weights' columns (summed over the weights) whose step a tile's
/// wgmma groups in flight cover together: a group's latency barely
/// depends on its N, so a narrow tile keeps more of its steps' groups in
/// flight to multiply weight bytes at a wide tile's rate.
constexpr int64_t kColumnsInFlight = 64;
/// Weights x columns of the accumulators a thread may hold (x 1/2 f32
/// registers each).
constexpr int64_t kMaxAccumulatorColumns = 256;
/// How long one mbarrier try_wait suspends before it polls again.
constexpr int64_t kWaitTicks = 10000000;

/// What a TMA descriptor describes: an operand's source above the launch
/// (a weight's [E, N, K] memref, or the [rows, K] input rows), and where
/// the tile's view starts in it.
struct TmaSource {
  Value root;
  SmallVector<OpFoldResult> offsets;
};

/// What one op's kernel code is built from.
struct WarpgroupPlan {
  int64_t columns = 0; // BN: the wgmma N and the TMA box rows.
  int64_t stages = 0;
  /// The bf16 terms each input element is split into: 1 (rounded, or bf16
  /// rows), or with exact products 3 for f32 rows and 2 for f16 ones. The
  /// steps run over the depths once per term.
  int64_t terms = 1;
  /// Parts of 64 rows in a block (the plan's block rows / 64), each one
  /// warpgroup's wgmma M.
  int64_t parts = 1;
  /// Blocks of a producer warpgroup (A's gather, the TMA loads) and a
  /// consumer warpgroup per part (wgmma, the epilogue), handing stages over
  /// on mbarriers; the consumers share each stage's weight boxes.
  bool specialized = false;
  /// The specialized form on 64-row blocks with two consumer warpgroups
  /// that take the row blocks in turns (ping-pong): each multiplies a
  /// whole block on its own, and one's epilogue runs while the other's
  /// wgmmas do. A pair of mbarriers hands the turn over once a consumer
  /// has waited for its block's last stage, so that the two never wait on
  /// stages of more than one round of the ring.
  bool pingPong = false;
  SmallVector<TmaSource, 2> weights;
  /// A's rows by TMA as well, when they are the input's own rows (no row
  /// sources: e.g. the down projection's hidden rows, in the plan's order)
  /// in bf16; else the threads gather them. Boxes of 8 rows x 64 depths
  /// (one swizzle atom), as many as cover the block's filled rows: at
  /// decode a block's one filled row costs 1 KiB a step from L2, not the
  /// 8 KiB of all 64.
  std::optional<TmaSource> input;
  /// A's gathered rows by cp.async (bf16 rows at 16-byte boundaries): each
  /// thread's 16-byte chunks go from global to shared memory without
  /// registers and complete on the stage's mbarrier, which the threads
  /// that multiply wait for (no block barrier orders A), then fence for
  /// the async proxy. Else the threads load, round and store A.
  bool asyncGather = false;
  /// An atomic scatter's pairs of adjacent sums go by one `red.add.v2.f32`
  /// (PTX 8.1) where their addresses allow.
  bool vectorReductions = false;
  /// The specialized form in a launch of 2-CTA clusters (each CTA's op
  /// reached at most once, one row block): the two CTAs compare the weight
  /// boxes their tiles load (expert, column and depth offsets, steps), and
  /// when they are the same each CTA loads half of every box for both
  /// (TMA multicast; the descriptors are of half boxes), its consumers
  /// releasing a stage in both CTAs; else each loads its own boxes.
  bool clusterPairs = false;
  /// One warpgroup and one row block: the stages of the ring's second
  /// layout, for a block of at most 8 filled rows (decode), whose stages
  /// hold 8 A rows (1 KiB, which the wgmmas read for all 64 of their rows
  /// through a descriptor stride of 0) and the weights' boxes, in the
  /// shared memory of the `stages` stages of 64 rows; 0: the 64-row layout
  /// only.
  int64_t fewRowStages = 0;
  /// The wgmma groups (steps) a tile keeps in flight; a step's stage is
  /// refilled (one warpgroup) or released to the producer (specialized)
  /// once its group is done, `groupsInFlight` steps later, so the loads
  /// run stages - groupsInFlight steps ahead.
  int64_t groupsInFlight = 1;

  int64_t weightStageBytes() const { return columns * kRowBytes; }
  int64_t inputStageBytes() const { return parts * kPartBytes; }
  int64_t stageBytes() const {
    return inputStageBytes() +
           static_cast<int64_t>(weights.size()) * weightStageBytes();
  }
  /// A stage of the eight-row layout.
  int64_t fewRowStageBytes() const {
    return kSwizzleAtomBytes +
           static_cast<int64_t>(weights.size()) * weightStageBytes();
  }
  /// The mbarriers per group: one per stage of the larger layout.
  int64_t barrierStages() const { return std::max(stages, fewRowStages); }
  /// Dynamic shared memory: the ring, and room to align its start.
  int64_t sharedBytes() const {
    return stages * stageBytes() + kSwizzleAtomBytes;
  }
};

/// The value defined above `launch` that `value` views through subviews
/// inside it, each of which `accept`s; null on any other view.
Value sourceAboveLaunch(Value value, gpu::LaunchOp launch,
                        function_ref<bool(memref::SubViewOp)> accept) {
  while (launch.getBody().isAncestor(value.getParentRegion())) {
    auto subview = value.getDefiningOp<memref::SubViewOp>();
    if (!subview || !accept(subview))
      return {};
    value = subview.getSource();
  }
  return value;
}

bool hasUnitStrides(memref::SubViewOp subview) {
  return llvm::all_of(subview.getMixedStrides(), [](OpFoldResult stride) {
    return isConstantIntValue(stride, 1);
  });
}

/// Whether `type` is laid out as TMA and 16-byte vector accesses need: the
/// innermost stride 1, the other strides and the offset static multiples
/// of 16 bytes.
bool hasAlignedLayout(MemRefType type) {
  SmallVector<int64_t> strides;
  int64_t offset;
  if (failed(type.getStridesAndOffset(strides, offset)) ||
      strides.back() != 1 || ShapedType::isDynamic(offset))
    return false;
  int64_t bytes = type.getElementTypeBitWidth() / 8;
  for (int64_t stride : ArrayRef<int64_t>(strides).drop_back())
    if (ShapedType::isDynamic(stride) || stride * bytes % 16 != 0)
      return false;
  return offset * bytes % 16 == 0;
}

/// Follows `view` through unit-stride subviews to a value defined above
/// `launch`, adding up their offsets; fails on anything else.
FailureOr<TmaSource> traceSource(Value view, gpu::LaunchOp launch,
                                 OpBuilder &b) {
  auto type = llvm::cast<MemRefType>(view.getType());
  SmallVector<OpFoldResult> offsets(type.getRank(), b.getIndexAttr(0));
  Value root = sourceAboveLaunch(view, launch, [&](memref::SubViewOp subview) {
    if (subview.getSourceType().getRank() != type.getRank() ||
        !hasUnitStrides(subview))
      return false;
    // Offsets add up (at the op, which every subview of the chain
    // dominates).
    for (auto [total, offset] : llvm::zip(offsets, subview.getMixedOffsets())) {
      if (isConstantIntValue(offset, 0))
        continue;
      if (isConstantIntValue(total, 0)) {
        total = offset;
        continue;
      }
      Location loc = subview.getLoc();
      total = arith::AddIOp::create(
                  b, loc, getValueOrCreateConstantIndexOp(b, loc, total),
                  getValueOrCreateConstantIndexOp(b, loc, offset))
                  .getResult();
    }
    return true;
  });
  if (!root)
    return failure();
  return TmaSource{root, offsets};
}

/// Whether every row of `input` starts at a 16-byte boundary: it views
/// whole rows (column offset 0, unit strides) of a source with an aligned
/// layout (buffers themselves are aligned: the GPU allocator's 256 bytes).
bool hasAlignedRows(Value input, gpu::LaunchOp launch) {
  Value source = sourceAboveLaunch(input, launch, [](memref::SubViewOp view) {
    return isConstantIntValue(view.getMixedOffsets().back(), 0) &&
           hasUnitStrides(view);
  });
  return source && hasAlignedLayout(llvm::cast<MemRefType>(source.getType()));
}

/// Whether `op`'s row blocks are at most one, known statically.
bool atMostOneBlock(GroupedMatmulOp op) {
  auto type = llvm::cast<ShapedType>(
      op.isDense() ? op.getInit().getType() : op.getBlockExperts().getType());
  if (type.isDynamicDim(0))
    return false;
  return op.isDense()
             ? type.getDimSize(0) <= static_cast<int64_t>(op.getBlockRows())
             : type.getDimSize(0) <= 1;
}

/// The loop directly in `launch` (without results) whose iterations each
/// hold one run of `op`'s tile, if any: only scf.ifs without results
/// between them, and nothing else in the loop with memory effects.
scf::ForOp walkAroundTile(GroupedMatmulOp op, gpu::LaunchOp launch) {
  scf::ForOp walk = op->getParentOfType<scf::ForOp>();
  if (!walk || walk->getParentOp() != launch.getOperation() ||
      walk->getNumResults() != 0 || !onlyBranchesAround(op, walk))
    return {};
  bool alone = true;
  walk.getBody()->walk<WalkOrder::PreOrder>([&](Operation *other) {
    if (other == op.getOperation() || !alone)
      return WalkResult::skip();
    if (other->isProperAncestor(op))
      return WalkResult::advance();
    alone &= isMemoryEffectFree(other);
    return WalkResult::skip();
  });
  return alone ? walk : scf::ForOp();
}

/// Whether `value` is the same in both CTAs of a launch's 2-CTA clusters:
/// defined above the launch, a grid, block or cluster size, the cluster's
/// index (the block id x / 2), or computed from such values by pure ops.
bool sameInClusterOfTwo(Value value, gpu::LaunchOp launch, unsigned depth = 0) {
  if (!launch.getBody().isAncestor(value.getParentRegion()))
    return true;
  if (depth > 16)
    return false;
  if (auto argument = llvm::dyn_cast<BlockArgument>(value)) {
    if (argument.getOwner() != &launch.getBody().front())
      return false;
    unsigned index = argument.getArgNumber();
    // Grid and block sizes (6-11), cluster sizes (15-17).
    return (index >= 6 && index < 12) || (index >= 15 && index < 18);
  }
  Operation *def = value.getDefiningOp();
  if (auto divide = llvm::dyn_cast<arith::DivUIOp>(def))
    if (divide.getLhs() == launch.getBlockIds().x &&
        getConstantIntValue(divide.getRhs()) == 2)
      return true;
  if (!isPure(def) || def->getNumRegions() != 0)
    return false;
  return llvm::all_of(def->getOperands(), [&](Value operand) {
    return sameInClusterOfTwo(operand, launch, depth + 1);
  });
}

/// Whether the specialized form of `op` walks a loop (walkAroundTile) that
/// both CTAs of a 2-CTA cluster run the same number of times, so that they
/// meet at each of its tiles' rendezvous.
bool clusterWalk(GroupedMatmulOp op, gpu::LaunchOp launch) {
  scf::ForOp walk =
      op.rowBlocksReduce() ? scf::ForOp() : walkAroundTile(op, launch);
  return walk && sameInClusterOfTwo(walk.getLowerBound(), launch) &&
         sameInClusterOfTwo(walk.getUpperBound(), launch) &&
         sameInClusterOfTwo(walk.getStep(), launch);
}

/// Makes each scf.if (without results) between `from` and `around` return
/// `values` (defined in the innermost one's branch that leads to `from`)
/// on the path to `from` and `otherwise` on every other; returns the
/// outermost one's results (`values` themselves when there is none).
SmallVector<Value> yieldThroughBranches(Operation *from, Operation *around,
                                        ValueRange values,
                                        ValueRange otherwise) {
  SmallVector<Value> current(values);
  Operation *reached = from;
  for (Operation *parent = from->getParentOp(); parent != around;) {
    auto branch = llvm::cast<scf::IfOp>(parent);
    bool inThen = branch.getThenRegion().isAncestor(reached->getParentRegion());
    OpBuilder b(branch);
    auto withResult = scf::IfOp::create(
        b, branch.getLoc(), TypeRange(ValueRange(current)),
        branch.getCondition(),
        /*addThenBlock=*/false, /*addElseBlock=*/false);
    withResult.getThenRegion().takeBody(branch.getThenRegion());
    withResult.getElseRegion().takeBody(branch.getElseRegion());
    for (Region *region :
         {&withResult.getThenRegion(), &withResult.getElseRegion()}) {
      if (region->empty()) {
        OpBuilder eb(branch.getContext());
        eb.createBlock(region);
        scf::YieldOp::create(eb, branch.getLoc());
      }
      auto yield = llvm::cast<scf::YieldOp>(region->front().getTerminator());
      bool onPath = (region == &withResult.getThenRegion()) == inThen;
      yield->insertOperands(0, onPath ? ValueRange(current) : otherwise);
    }
    branch.erase();
    current.assign(withResult.getResults().begin(),
                   withResult.getResults().end());
    reached = withResult;
    parent = withResult->getParentOp();
  }
  return current;
}

/// Why `op` in `launch` is not lowered here, or its plan.
FailureOr<WarpgroupPlan>
planWarpgroupTile(GroupedMatmulOp op, gpu::LaunchOp launch,
                  int64_t maxSharedBytes, bool asyncGather, bool eightRowStages,
                  int64_t maxGroupsInFlight, std::string &reason) {
  auto fail = [&](const Twine &why) {
    reason = why.str();
    return failure();
  };
  auto sizeOf = [](Value value) {
    return getConstantIntValue(value).value_or(0);
  };
  int64_t threads = sizeOf(launch.getBlockSizeX());
  if ((threads != kWarpgroupThreads && threads != 2 * kWarpgroupThreads &&
       threads != 3 * kWarpgroupThreads) ||
      sizeOf(launch.getBlockSizeY()) != 1 ||
      sizeOf(launch.getBlockSizeZ()) != 1)
    return fail("its gpu.launch does not run blocks of one, two or three "
                "warpgroups (128, 256 or 384 x 1 x 1 threads)");
  if (op.getBlockRows() != kPartRows && op.getBlockRows() != 2 * kPartRows)
    return fail("its blocks are not of 64 or 128 rows (one or two of "
                "wgmma's M)");
  // One warpgroup for 64 rows, a producer and one consumer per 64 rows, or
  // (64-row blocks) a producer and two consumers taking blocks in turns.
  int64_t parts = op.getBlockRows() / kPartRows;
  int64_t warpgroups = threads / kWarpgroupThreads;
  bool pingPong = parts == 1 && warpgroups == 3;
  if (warpgroups != parts + 1 && !(warpgroups == 1 && parts == 1) &&
      !pingPong)
    return fail("its blocks of " + Twine(op.getBlockRows()) +
                " rows take one warpgroup (64 rows), a producer and one "
                "warpgroup per 64 rows, or a producer and two taking 64-row "
                "blocks in turns, not the " +
                Twine(warpgroups) + " of its gpu.launch");
  if (op.getWeightScale())
    return fail("its weights are block-scaled");
  auto inputType = llvm::dyn_cast<MemRefType>(op.getInput().getType());
  SmallVector<int64_t> inputStrides;
  int64_t inputOffset;
  if (!inputType || inputType.getRank() != 2 ||
      !llvm::isa<FloatType>(inputType.getElementType()) ||
      failed(inputType.getStridesAndOffset(inputStrides, inputOffset)) ||
      inputStrides[1] != 1)
    return fail("its input is not a 2-d memref of floats with contiguous "
                "rows");

  WarpgroupPlan plan;
  plan.parts = parts;
  plan.specialized = warpgroups > parts;
  plan.pingPong = pingPong;
  plan.terms = bf16TermsOf(op);
  OpBuilder b(op);
  std::optional<int64_t> depth;
  for (Value weight : op.getWeights()) {
    auto type = llvm::cast<MemRefType>(weight.getType());
    if (!type.getElementType().isBF16() || type.getRank() != 3)
      return fail("its weights are not [E, N, K] memrefs of bf16");
    FailureOr<TmaSource> source = traceSource(weight, launch, b);
    if (failed(source))
      return fail("a weight is not a unit-stride subview of a memref "
                  "defined above the launch");
    auto rootType = llvm::cast<MemRefType>(source->root.getType());
    if (!hasAlignedLayout(rootType))
      return fail("a weight's rows are not contiguous with 16-byte "
                  "aligned strides and start (TMA)");
    // The boxes read all of the root's depth: the view must have it too
    // (what lies past a shorter view's K is not zero).
    if (rootType.isDynamicDim(2) || type.isDynamicDim(2) ||
        type.getDimSize(2) != rootType.getDimSize(2) ||
        !isConstantIntValue(source->offsets[2], 0))
      return fail("a weight's depth is dynamic or a part of its tensor's");
    depth = rootType.getDimSize(2);
    plan.weights.push_back(*source);
  }
  // A by TMA: the block's rows are the input's own (no row sources), in
  // bf16, from a source above the launch laid out as TMA needs, of the
  // whole depth (what lies past a shorter view's K is not zero). Rows of a
  // block past its filled ones then hold whatever the buffer holds there
  // (zeros past its end), where the threads' gather stores zeros: their
  // products only reach their own accumulator rows, which the epilogue
  // does not write.
  if (!op.getRowSources() && inputType.getElementType().isBF16()) {
    FailureOr<TmaSource> source = traceSource(op.getInput(), launch, b);
    if (succeeded(source)) {
      auto rootType = llvm::cast<MemRefType>(source->root.getType());
      if (hasAlignedLayout(rootType) && !rootType.isDynamicDim(1) &&
          !inputType.isDynamicDim(1) &&
          rootType.getDimSize(1) == inputType.getDimSize(1) &&
          isConstantIntValue(source->offsets[1], 0))
        plan.input = *source;
    }
  }
  // cp.async for gathered bf16 rows: its 16-byte copies need 16-byte
  // aligned sources (each chunk starts at a multiple of 8 depths).
  plan.asyncGather = asyncGather && !plan.input && plan.terms == 1 &&
                     inputType.getElementType().isBF16() &&
                     hasAlignedRows(op.getInput(), launch);
  // BN: the columns of the tile, at most its upper bound rounded to 8.
  Value columns = op.getInit();
  FailureOr<int64_t> bound = ValueBoundsConstraintSet::computeConstantBound(
      presburger::BoundType::UB, ValueBoundsConstraintSet::Variable(columns, 1),
      /*stopCondition=*/nullptr,
      /*closedUB=*/true);
  if (failed(bound) || *bound < 1)
    return fail("its tile's columns have no constant bound");
  plan.columns = llvm::alignTo(*bound, 8);
  if (plan.columns > 256)
    return fail("its tile has more than 256 columns (wgmma's N)");
  // Each thread holds W x BN / 2 f32 accumulators: at most 128 registers
  // (paired BN 128, single BN 256) leave room for the rest of the 255 a
  // thread may have, or of the 168 of a 384-thread block (the consumers'
  // ~30 others: 154-160 used, no spills; bench/results/gpu_structure.json).
  if (static_cast<int64_t>(plan.weights.size()) * plan.columns >
      kMaxAccumulatorColumns)
    return fail("its accumulators would not fit in registers (weights x "
                "columns above 256)");
  // A tile keeps the groups of enough steps in flight that they cover
  // kColumnsInFlight columns of weights (narrow tiles: 4 at 16 columns of
  // one weight, 2 at 32), at most maxGroupsInFlight and half the ring's
  // stages (below).
  plan.groupsInFlight = std::clamp<int64_t>(
      kColumnsInFlight /
          (static_cast<int64_t>(plan.weights.size()) * plan.columns),
      1, maxGroupsInFlight);
  // The stage rule: as many stages as shared memory holds, no more than
  // the steps of K, at least kMinStages, and at most kMaxStages or the
  // stages that keep kWeightBytesInFlight in flight, whichever is more.
  // (Not counting the groups in flight, which then take from the stages
  // the loads run ahead: counting them would take a narrow gate/up tile's
  // ring past half of a multiprocessor's shared memory, one tile per
  // multiprocessor instead of two.)
  int64_t budget = maxSharedBytes - kSwizzleAtomBytes;
  int64_t fit = budget / plan.stageBytes();
  if (fit < kMinStages)
    return fail("two stages of its tile do not fit in shared memory");
  int64_t steps = plan.terms * llvm::divideCeil(*depth, kStepDepth);
  int64_t weightBytes =
      static_cast<int64_t>(plan.weights.size()) * plan.weightStageBytes();
  int64_t wanted = std::max<int64_t>(
      kMaxStages, 1 + llvm::divideCeil(kWeightBytesInFlight, weightBytes));
  plan.stages = std::clamp<int64_t>(std::min(fit, steps), kMinStages,
                                    std::min(fit, wanted));
  plan.groupsInFlight =
      std::min(plan.groupsInFlight, std::max<int64_t>(1, plan.stages / 2));
  // One warpgroup: a block of few rows fills the same ring with stages of
  // 8 A rows, as many as fit (the weight bytes in flight bound a decode
  // tile's speed), no more than the steps. (The tiled program's ops have
  // one row block each; with more, the ring's slots count on across the
  // blocks in one layout.)
  if (eightRowStages && !plan.specialized && atMostOneBlock(op)) {
    // Every stage's boxes, and the last one's 64-row view of A (only its
    // first 8 rows are used), inside the ring; the mbarriers (static
    // shared memory, 8 bytes each) within what the ring leaves.
    int64_t ring = plan.stages * plan.stageBytes();
    int64_t few =
        std::min({kMaxFewRowStages, steps, ring / plan.fewRowStageBytes(),
                  (ring - kPartBytes) / plan.fewRowStageBytes() + 1,
                  (maxSharedBytes - plan.sharedBytes()) / kMbarrierBytes});
    if (few > plan.stages)
      plan.fewRowStages = few;
  }
  return plan;
}

/// Emits the kernel code of one op.
class WarpgroupMatmul {
public:
  WarpgroupMatmul(GroupedMatmulOp op, gpu::LaunchOp launch,
                  const WarpgroupPlan &plan, ArrayRef<Value> descriptors,
                  Value inputDescriptor)
      : op(op), launch(launch), plan(plan),
        descriptors(descriptors.begin(), descriptors.end()),
        inputDescriptor(inputDescriptor) {}

  void emit(OpBuilder &b);

  void setAlignedInputRows(bool aligned) { alignedInputRows = aligned; }

private:
  /// The shared-memory buffers of `stage` (an index): A's rows of `part`
  /// (an index), and B of weight w (with `half`, an index, its first or
  /// last BN / 2 columns).
  Value inputBuffer(OpBuilder &b, Location loc, Value stage, Value part);
  Value weightBuffer(OpBuilder &b, Location loc, Value stage, int64_t w,
                     Value half = Value());
  /// The 64-bit wgmma descriptor of a swizzled buffer, its 8-row groups
  /// 1024 bytes apart, or `stride` (the field, an i64) when given.
  Value matrixDescriptor(OpBuilder &b, Location loc, Value buffer,
                         Value stride = Value());
  /// Sets the ring's layout: the plan's, or with `plan.fewRowStages` and
  /// `filledRows` set, the row block's.
  void chooseRingLayout(OpBuilder &b, Location loc);
  /// Starts step `step` (the block's) into ring stage `stage`: the
  /// weights' TMA loads, and A's with `plan.input` (thread 0).
  void issueTmaLoads(OpBuilder &b, Location loc, Value step, Value stage);
  /// The A rows the thread gathers (row myHalfRow of each part) in the
  /// current block: their sources and whether they have one.
  void setUpGatherRows(OpBuilder &b, Location loc);
  /// The thread's A chunks of step `step` (bf16 vectors of bf16 rows, f32
  /// ones of others, loaded from
  /// global memory; stored later, so that the loads are in flight meanwhile).
  SmallVector<Value> loadInput(OpBuilder &b, Location loc, Value step);
  /// Stores the thread's A chunks, rounded to bf16, into stage `stage` at
  /// their swizzled places.
  void storeInput(OpBuilder &b, Location loc, Value stage, ValueRange chunks);
  /// With `plan.asyncGather`: starts the cp.async copies of the thread's A
  /// chunks of step `step` into stage `stage` and arrives on the stage's
  /// mbarrier once they land (every thread, with or without rows).
  void copyInputAsync(OpBuilder &b, Location loc, Value step, Value stage);
  /// Makes shared-memory writes of the generic proxy (the threads' A
  /// stores, or, after the stage's wait, their cp.async copies) visible to
  /// the wgmmas (async proxy).
  void fenceForAsyncProxy(OpBuilder &b, Location loc);
  /// Runs `body(builder, part, c, chunk, buffer, place)` for each of the
  /// thread's A chunks of stage `stage` in its rows that are stored
  /// (the block's filled rows): chunk c of its row in `part`, the chunk's
  /// index in the row, the part's A buffer and the chunk's swizzled
  /// element offset in the row.
  void forEachStoredChunk(
      OpBuilder &b, Location loc, Value stage,
      function_ref<void(OpBuilder &, int64_t, int64_t, Value, Value, Value)>
          body);
  /// Mbarrier `stage` (an index) of `group` as a shared-memory pointer.
  Value barrierPointer(OpBuilder &b, Location loc, Value group, Value stage);
  /// The first depth of step `step`'s slice, and the pass over the depths
  /// it belongs to (with `plan.terms` > 1; one pass per bf16 term of the
  /// rows).
  Value depthOfStep(OpBuilder &b, Location loc, Value step);
  Value passOfStep(OpBuilder &b, Location loc, Value step);
  /// The bf16 term that pass `pass` (an index) multiplies of each element
  /// of `chunk` (a vector of f32), as f32 values that bf16 holds exactly.
  Value termOfChunk(OpBuilder &b, Location loc, Value chunk, Value pass);
  /// The A row of one part that the thread gathers: its source, whether
  /// it has one (else zeros), and whether the row is stored at all (one
  /// of the block's filled rows; the others' products reach only
  /// accumulator rows the epilogue does not write).
  struct GatherRow {
    Value source, valid, stored;
  };
  /// 8 input depths from `depth` of `row`: as loaded for bf16 rows, else
  /// widened to f32.
  Value gatherChunk(OpBuilder &b, Location loc, const GatherRow &row,
                    Value depth);
  /// Writes the accumulators of the part whose first row in the block is
  /// `partFirstRow`.
  void emitEpilogue(OpBuilder &b, Location loc, ValueRange sums,
                    Value partFirstRow);
  /// Ring slot `slot`'s stage, and the parity of its round's phase (the
  /// round's count modulo 2).
  Value stageOf(OpBuilder &b, Location loc, Value slot);
  Value parityOf(OpBuilder &b, Location loc, Value slot);
  /// Waits until the phase of `parity` of mbarrier `stage` of `group`
  /// completed.
  void waitFor(OpBuilder &b, Location loc, Value group, Value parity,
               Value stage);
  /// Zero accumulators, one per weight.
  SmallVector<Value> zeroSums(OpBuilder &b, Location loc);
  /// The wgmma group of one step on stage `stage` for the rows of `part`:
  /// `sums` plus its products, committed (not waited for); with empty
  /// `sums`, its products alone (the first wgmma's scale-d is 0).
  SmallVector<Value> mmaStep(OpBuilder &b, Location loc, Value stage,
                             Value part, ValueRange sums);
  /// A row block of the specialized form: the producer's loop (threads
  /// 0-127) and the consumers' (128 threads per part after them) over
  /// `steps` steps from ring slot `slotBase`.
  void emitRoles(OpBuilder &b, Location loc, Value slotBase, Value steps);
  /// The producer's part of emitRoles (threads 0-127), and the consumers'.
  void emitProducer(OpBuilder &b, Location loc, Value slotBase, Value steps);
  void emitConsumers(OpBuilder &b, Location loc, Value slotBase, Value steps);
  /// A consumer's thread index among the consumers (the thread - 128).
  Value consumerThreadOf(OpBuilder &b, Location loc);
  /// A consumer thread's release of ring slot `slot`'s stage.
  void releaseStage(OpBuilder &b, Location loc, Value slot,
                    Value consumerThread);
  /// A consumer warpgroup's wgmma groups over `steps` steps from ring slot
  /// `slotBase` for the rows of `part` (an index), each stage released
  /// once the group that read it is done, then its epilogue (by the
  /// thread consumerThread % 128 of the warpgroup's layout);
  /// `afterLastWait`, if any, runs once it has waited for the last stage.
  void multiplyPart(
      OpBuilder &b, Location loc, Value slotBase, Value steps, Value part,
      Value consumerThread,
      function_ref<void(OpBuilder &, Location)> afterLastWait = nullptr);
  /// With `plan.pingPong`, the consumers' part: the one whose turn the
  /// current row block is waits for the turn, multiplies the block (handing
  /// the turn over once it has waited for its last stage) and writes it;
  /// the other skips it.
  void emitConsumersInTurns(OpBuilder &b, Location loc, Value slotBase,
                            Value steps);
  /// The loop whose iterations keep the ring (emit), if any.
  scf::ForOp walkToCarryRingAcross();
  /// The specialized form over `walk` (walkToCarryRingAcross): the ring
  /// set up before it, a copy of it per role, each lowering its copy of
  /// the op (emitInWalk), the ring torn down after them; erases `walk`.
  void emitOverWalk(scf::ForOp walk);
  /// Lowers the op, `walk`'s (a copy of emitOverWalk's), for `role`, the
  /// ring's slots carried from iteration to iteration; erases the op.
  void emitInWalk(scf::ForOp walk);
  /// Where the op's lowering starts in the ring: its first slot and, with
  /// `plan.pingPong`, the count of row blocks the consumers took before
  /// (whose parity says whose turn the next one is).
  struct RingPosition {
    Value slot, turns;
  };
  /// The op's row blocks from `first`; returns the position after them.
  RingPosition emitBlocks(OpBuilder &b, RingPosition first);
  /// Which threads' code this lowering emits: both roles of the
  /// specialized form (a scf.if per row block), or one of them.
  enum class Role { Both, Producer, Consumers };
  Role role = Role::Both;
  /// With `plan.clusterPairs`: the ring set up at the start of the
  /// launch, the two CTAs' rendezvous after it (and on the paths that skip
  /// the op, syncClusterWhereSkipped), the op, the ring torn down at the
  /// launch's end; erases the op.
  void emitClustered();
  /// Whether this CTA and its partner load the same weight boxes in their
  /// row blocks (`owned` both, the same expert, columns, depths and
  /// `steps`): each writes its key, a rendezvous, each reads the other's.
  Value sharesWeightsWithPartner(OpBuilder &b, Location loc, Value owned,
                                 Value steps, Value firstSlot);
  /// The words of a key.
  int64_t keyWords() const;
  /// Thread 0 marks this tile's key as no row block (a CTA that skips the
  /// tile: its partner must not match an older key in the buffer).
  void clearKey(OpBuilder &b, Location loc);
  /// With `plan.clusterPairs`: the ranks, the key buffers (cleared), and
  /// the CTAs' rendezvous once both rings are set up.
  void setUpPairing(OpBuilder &b, Location loc);
  /// A consumer warpgroup's release of stage `stage` (its thread
  /// `groupThread` == 0 arrives for it: in both CTAs when they share the
  /// weights, else twice in its own).
  void releaseInPair(OpBuilder &b, Location loc, Value stage,
                     Value groupThread);
  /// The mbarriers (created and initialized) and the ring's buffer.
  void setUpRing(OpBuilder &b, Location loc);
  /// Invalidates the mbarriers once every thread is done with them.
  void tearDownRing(OpBuilder &b, Location loc);
  /// Runs `body(builder, loc, index)` for each mbarrier of `group`.
  void forEachBarrier(OpBuilder &b, Location loc, Value group,
                      function_ref<void(OpBuilder &, Location, Value)> body);
  /// The mbarriers of `group` (one of setUpRing's).
  int64_t barrierCount(Value group) const {
    return group == turnBarriers ? 2 : plan.barrierStages();
  }

  GroupedMatmulOp op;
  gpu::LaunchOp launch;
  /// The op's plan (its TMA offsets name values of the op's loop copy
  /// under emitOverWalk).
  WarpgroupPlan plan;
  SmallVector<Value> descriptors;
  /// The input rows' descriptor with `plan.input`.
  Value inputDescriptor;

  // Set while emitting.
  Value thread, shared, barriers;
  /// The specialized form's mbarriers the consumers arrive on when they
  /// are done with a stage (`barriers` complete when a stage is filled).
  Value released;
  /// With `plan.pingPong`: two mbarriers, consumer c's turn to multiply
  /// comes when the other's 128 threads arrive on turnBarriers[c]; and the
  /// row blocks the consumers took before the current one.
  Value turnBarriers, blocksTaken;
  /// With `plan.clusterPairs`: this CTA's rank and its partner's (i32),
  /// the words of the key a CTA compares with its partner's, and whether
  /// the two share the weight boxes of the current row block.
  Value rank, partner, keyBuffer, sharedPair;
  /// Which of the two keys the current tile writes (0, or a walk's tile
  /// count modulo 2).
  Value keyParity;
  Type accumulatorType;
  NVVM::MMAShapeAttr mmaShape;
  Value block, expert, firstRow, filledRows, depthBound, columns;
  /// Steps of the depths (at least 1: a divisor of the step count).
  Value depthSteps;
  /// The ring's layout (indices): its stages, the bytes of a stage and of
  /// its A rows; constants of the plan, or with `plan.fewRowStages` the
  /// row block's. With eight-row stages, the A descriptors' stride field
  /// (i64) for the block's layout.
  Value ringStages, ringStageBytes, ringInputBytes, inputStride;
  /// With `plan.input`: the 8-row boxes that cover the block's filled rows.
  Value inputBoxes;
  /// Whether the input's rows start at 16-byte boundaries (chunks of 8 then
  /// load as vectors).
  bool alignedInputRows = false;
  /// The gathering thread's row in each part, its first chunk of the row
  /// (two threads per row) and its rows in the current block.
  Value myHalfRow, myChunkBase;
  SmallVector<GatherRow, 2> myRows;
  Type barrierType;
};

Value WarpgroupMatmul::inputBuffer(OpBuilder &b, Location loc, Value stage,
                                   Value part) {
  auto type = MemRefType::get(
      {kPartRows, kStepDepth}, b.getBF16Type(), MemRefLayoutAttrInterface(),
      gpu::AddressSpaceAttr::get(b.getContext(), gpu::AddressSpace::Workgroup));
  // With eight-row stages the view runs past the stage's 8 rows: only
  // rows below the block's filled ones (at most 8) are stored.
  Value offset = arith::AddIOp::create(
      b, loc, arith::MulIOp::create(b, loc, stage, ringStageBytes),
      arith::MulIOp::create(b, loc, part, indexConstant(b, loc, kPartBytes)));
  return memref::ViewOp::create(b, loc, type, shared, offset, ValueRange{});
}

Value WarpgroupMatmul::weightBuffer(OpBuilder &b, Location loc, Value stage,
                                    int64_t w, Value half) {
  int64_t columns = half ? plan.columns / 2 : plan.columns;
  auto type = MemRefType::get(
      {1, columns, kStepDepth}, b.getBF16Type(), MemRefLayoutAttrInterface(),
      gpu::AddressSpaceAttr::get(b.getContext(), gpu::AddressSpace::Workgroup));
  Value offset = b.createOrFold<arith::AddIOp>(
      loc,
      arith::AddIOp::create(
          b, loc, arith::MulIOp::create(b, loc, stage, ringStageBytes),
          ringInputBytes),
      indexConstant(b, loc, w * plan.weightStageBytes()));
  if (half)
    offset = arith::AddIOp::create(
        b, loc, offset,
        arith::MulIOp::create(b, loc, half,
                              indexConstant(b, loc, columns * kRowBytes)));
  return memref::ViewOp::create(b, loc, type, shared, offset, ValueRange{});
}

Value WarpgroupMatmul::matrixDescriptor(OpBuilder &b, Location loc,
                                        Value buffer, Value stride) {
  // PTX ISA, "Matrix Descriptor Format": bits 0-13 the start address >> 4,
  // 16-29 the leading-dimension byte offset >> 4 (unused by K-major
  // swizzled layouts: 1), 32-45 the stride byte offset >> 4 (between
  // 8-row groups: 1024 bytes), 62-63 the swizzle (1: 128 bytes).
  Type i64 = b.getI64Type();
  Value address = arith::IndexCastUIOp::create(
      b, loc, i64,
      memref::ExtractAlignedPointerAsIndexOp::create(b, loc, buffer));
  auto constant = [&](uint64_t value) -> Value {
    return arith::ConstantOp::create(b, loc, b.getI64IntegerAttr(value));
  };
  Value start = arith::AndIOp::create(
      b, loc, arith::ShRUIOp::create(b, loc, address, constant(4)),
      constant(0x3FFF));
  uint64_t fixed = (uint64_t{1} << 16) | (uint64_t{1} << 62);
  if (!stride)
    stride = constant(uint64_t{kSwizzleAtomBytes >> 4} << 32);
  return arith::OrIOp::create(
      b, loc, start, arith::OrIOp::create(b, loc, stride, constant(fixed)));
}

Value WarpgroupMatmul::gatherChunk(OpBuilder &b, Location loc,
                                   const GatherRow &row, Value depth) {
  Value input = op.getInput();
  Type element = llvm::cast<MemRefType>(input.getType()).getElementType();
  // bf16 rows are stored as loaded; f32 and f16 ones go through f32 and
  // are rounded when stored.
  Type chunkElement = element.isBF16() ? element : b.getF32Type();
  auto vectorType = VectorType::get({kChunkElements}, chunkElement);
  Value end = arith::AddIOp::create(b, loc, depth,
                                    indexConstant(b, loc, kChunkElements));
  Value whole = arith::AndIOp::create(
      b, loc, row.valid,
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ule, end,
                            depthBound));
  auto toChunk = [&](OpBuilder &cb, Location cl, Value value) -> Value {
    if (getElementTypeOrSelf(value.getType()) == chunkElement)
      return value;
    Type target = llvm::isa<VectorType>(value.getType()) ? Type(vectorType)
                                                         : chunkElement;
    return arith::ExtFOp::create(cb, cl, target, value);
  };
  auto loaded = scf::IfOp::create(
      b, loc, whole,
      [&](OpBuilder &tb, Location tl) {
        // The whole chunk is inside: one vector load.
        auto load = vector::LoadOp::create(
            tb, tl, VectorType::get({kChunkElements}, element), input,
            ValueRange{row.source, depth});
        if (alignedInputRows)
          load.setAlignmentAttr(tb.getI64IntegerAttr(16));
        scf::YieldOp::create(tb, tl, toChunk(tb, tl, load));
      },
      [&](OpBuilder &eb, Location el) {
        Value zeros = arith::ConstantOp::create(
            eb, el, vectorType,
            DenseElementsAttr::get(vectorType, eb.getZeroAttr(chunkElement)));
        // Without a row (most rows of a block at decode): zeros, at once.
        auto partial = scf::IfOp::create(
            eb, el, row.valid,
            [&](OpBuilder &pb, Location pl) {
              // Past K: element by element, zeros outside.
              Value chunk = zeros;
              for (int64_t i = 0; i < kChunkElements; ++i) {
                Value k = arith::AddIOp::create(pb, pl, depth,
                                                indexConstant(pb, pl, i));
                auto element = scf::IfOp::create(
                    pb, pl, lessThan(pb, pl, k, depthBound),
                    [&](OpBuilder &ib, Location il) {
                      Value x = memref::LoadOp::create(
                          ib, il, input, ValueRange{row.source, k});
                      scf::YieldOp::create(ib, il, toChunk(ib, il, x));
                    },
                    [&](OpBuilder &ob, Location ol) {
                      scf::YieldOp::create(
                          ob, ol,
                          arith::ConstantOp::create(
                              ob, ol, ob.getZeroAttr(chunkElement))
                              .getResult());
                    });
                chunk = vector::InsertOp::create(pb, pl, element.getResult(0),
                                                 chunk, ArrayRef<int64_t>{i});
              }
              scf::YieldOp::create(pb, pl, chunk);
            },
            [&](OpBuilder &zb, Location zl) {
              scf::YieldOp::create(zb, zl, zeros);
            });
        scf::YieldOp::create(eb, el, partial.getResult(0));
      });
  return loaded.getResult(0);
}

void WarpgroupMatmul::issueTmaLoads(OpBuilder &b, Location loc, Value step,
                                    Value stage) {
  Value firstDepth = depthOfStep(b, loc, step);
  // The weights: one TMA box [1, BN, 64] each, and with `plan.input` A's
  // [8, 64] boxes, from thread 0, completing on the stage's barrier with
  // their bytes.
  Value leader = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, thread,
                                       indexConstant(b, loc, 0));
  scf::IfOp::create(b, loc, leader, [&](OpBuilder &tb, Location tl) {
    Value bytes = indexConstant(tb, tl,
                                static_cast<int64_t>(plan.weights.size()) *
                                    plan.weightStageBytes());
    if (plan.input)
      bytes = arith::AddIOp::create(
          tb, tl, bytes,
          arith::MulIOp::create(tb, tl, inputBoxes,
                                indexConstant(tb, tl, kSwizzleAtomBytes)));
    nvgpu::MBarrierArriveExpectTxOp::create(tb, tl, barriers, bytes, stage,
                                            /*predicate=*/Value());
    for (auto [w, source] : llvm::enumerate(plan.weights)) {
      ArrayRef<OpFoldResult> offsets = source.offsets;
      auto at = [&](int64_t dim, Value local) -> Value {
        Value offset = getValueOrCreateConstantIndexOp(tb, tl, offsets[dim]);
        return arith::AddIOp::create(tb, tl, offset, local);
      };
      // Coordinates innermost first: depth, column, expert.
      int64_t weight = w;
      auto load = [&](OpBuilder &lb, Location ll, Value half, Value mask) {
        Value column = arith::MulIOp::create(
            lb, ll, half, indexConstant(lb, ll, plan.columns / 2));
        SmallVector<Value> coordinates = {at(2, firstDepth), at(1, column),
                                          at(0, expert)};
        nvgpu::TmaAsyncLoadOp::create(
            lb, ll, weightBuffer(lb, ll, stage, weight, half), barriers,
            descriptors[weight], coordinates, stage, mask,
            /*predicate=*/Value());
      };
      if (!plan.clusterPairs) {
        SmallVector<Value> coordinates = {
            at(2, firstDepth), at(1, indexConstant(tb, tl, 0)), at(0, expert)};
        nvgpu::TmaAsyncLoadOp::create(tb, tl, weightBuffer(tb, tl, stage, w),
                                      barriers, descriptors[w], coordinates,
                                      stage, /*multicastMask=*/Value(),
                                      /*predicate=*/Value());
        continue;
      }
      // Clusters: this CTA's half of the box into both CTAs' stage, or
      // both halves into its own.
      scf::IfOp::create(
          tb, tl, sharedPair,
          [&](OpBuilder &mb, Location ml) {
            Value both =
                arith::ConstantOp::create(mb, ml, mb.getI16IntegerAttr(0b11));
            load(mb, ml,
                 arith::IndexCastUIOp::create(mb, ml, mb.getIndexType(), rank),
                 both);
            scf::YieldOp::create(mb, ml);
          },
          [&](OpBuilder &ob, Location ol) {
            for (int64_t half : {0, 1})
              load(ob, ol, indexConstant(ob, ol, half), Value());
            scf::YieldOp::create(ob, ol);
          });
    }
    if (plan.input) {
      // The block's filled rows at the step's depths, 8 at a time, into
      // its parts' A buffers (consecutive in the stage): rows past the
      // last box keep what they held, and multiply into rows the epilogue
      // does not write.
      ArrayRef<OpFoldResult> offsets = plan.input->offsets;
      Value depth = arith::AddIOp::create(
          tb, tl, getValueOrCreateConstantIndexOp(tb, tl, offsets[1]),
          firstDepth);
      Value rowBase = arith::AddIOp::create(
          tb, tl, getValueOrCreateConstantIndexOp(tb, tl, offsets[0]),
          firstRow);
      auto boxType =
          MemRefType::get({kSwizzleAtomRows, kStepDepth}, tb.getBF16Type(),
                          MemRefLayoutAttrInterface(),
                          gpu::AddressSpaceAttr::get(
                              tb.getContext(), gpu::AddressSpace::Workgroup));
      Value stageStart = arith::MulIOp::create(tb, tl, stage, ringStageBytes);
      scf::ForOp::create(
          tb, tl, indexConstant(tb, tl, 0), inputBoxes,
          indexConstant(tb, tl, 1), ValueRange{},
          [&](OpBuilder &gb, Location gl, Value box, ValueRange) {
            Value offset = arith::AddIOp::create(
                gb, gl, stageStart,
                arith::MulIOp::create(
                    gb, gl, box, indexConstant(gb, gl, kSwizzleAtomBytes)));
            Value buffer = memref::ViewOp::create(gb, gl, boxType, shared,
                                                  offset, ValueRange{});
            Value row = arith::AddIOp::create(
                gb, gl, rowBase,
                arith::MulIOp::create(gb, gl, box,
                                      indexConstant(gb, gl, kSwizzleAtomRows)));
            // Coordinates innermost first: depth, row.
            nvgpu::TmaAsyncLoadOp::create(gb, gl, buffer, barriers,
                                          inputDescriptor,
                                          ValueRange{depth, row}, stage,
                                          /*multicastMask=*/Value(),
                                          /*predicate=*/Value());
            scf::YieldOp::create(gb, gl);
          });
    }
    scf::YieldOp::create(tb, tl);
  });
}

void WarpgroupMatmul::setUpGatherRows(OpBuilder &b, Location loc) {
  myRows.clear();
  if (plan.input)
    return;
  for (int64_t part = 0; part < plan.parts; ++part) {
    Value inBlock = arith::AddIOp::create(
        b, loc, myHalfRow, indexConstant(b, loc, part * kPartRows));
    Value row = arith::AddIOp::create(b, loc, firstRow, inBlock);
    auto [source, hasSource] = op.loadRowSource(b, loc, row);
    Value filled = lessThan(b, loc, inBlock, filledRows);
    Value valid = arith::AndIOp::create(b, loc, hasSource, filled);
    myRows.push_back({source, valid, filled});
  }
}

SmallVector<Value> WarpgroupMatmul::loadInput(OpBuilder &b, Location loc,
                                              Value step) {
  if (plan.input || plan.asyncGather)
    return {};
  // A: the thread's rows, their chunks of 8 depths.
  Value firstDepth = depthOfStep(b, loc, step);
  Value pass = plan.terms > 1 ? passOfStep(b, loc, step) : Value();
  SmallVector<Value> chunks;
  for (const GatherRow &row : myRows)
    for (int64_t c = 0; c < kChunksPerThread; ++c) {
      Value chunk =
          arith::AddIOp::create(b, loc, myChunkBase, indexConstant(b, loc, c));
      Value depth = arith::AddIOp::create(
          b, loc, firstDepth,
          arith::MulIOp::create(b, loc, chunk,
                                indexConstant(b, loc, kChunkElements)));
      Value loaded = gatherChunk(b, loc, row, depth);
      if (pass)
        loaded = termOfChunk(b, loc, loaded, pass);
      chunks.push_back(loaded);
    }
  return chunks;
}

Value WarpgroupMatmul::depthOfStep(OpBuilder &b, Location loc, Value step) {
  Value inDepth = step;
  if (plan.terms > 1)
    inDepth = arith::RemUIOp::create(b, loc, step, depthSteps);
  return arith::MulIOp::create(b, loc, inDepth,
                               indexConstant(b, loc, kStepDepth));
}

Value WarpgroupMatmul::passOfStep(OpBuilder &b, Location loc, Value step) {
  return arith::DivUIOp::create(b, loc, step, depthSteps);
}

Value WarpgroupMatmul::termOfChunk(OpBuilder &b, Location loc, Value chunk,
                                   Value pass) {
  // The lowest term first (pass p multiplies term terms - 1 - p): the lower
  // terms' sum (at most 16 significant bits) times a bf16 weight is exact
  // in f32, so that a sum of one product rounds once, as the f32 product
  // does. (Passes past the last take the lowest term, never stored.)
  SmallVector<Value, 3> parts = splitIntoBF16Terms(b, loc, chunk, plan.terms);
  Value chosen = parts.back();
  for (int64_t i = 1; i < plan.terms; ++i) {
    Value isPass = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, pass,
                                         indexConstant(b, loc, i));
    chosen = arith::SelectOp::create(b, loc, isPass, parts[plan.terms - 1 - i],
                                     chosen);
  }
  return chosen;
}

void WarpgroupMatmul::forEachStoredChunk(
    OpBuilder &b, Location loc, Value stage,
    function_ref<void(OpBuilder &, int64_t, int64_t, Value, Value, Value)>
        body) {
  Value rowPhase =
      arith::RemUIOp::create(b, loc, myHalfRow, indexConstant(b, loc, 8));
  for (int64_t part = 0; part < plan.parts; ++part) {
    // Rows past the block's filled ones are not stored: their products
    // reach only accumulator rows the epilogue does not write, so they may
    // hold whatever the stage held (at decode, 63 of a block's 64 rows:
    // 128 bytes stored a step instead of 8 KiB).
    OpBuilder::InsertionGuard guard(b);
    auto ifStored = scf::IfOp::create(b, loc, myRows[part].stored);
    b.setInsertionPointToStart(ifStored.thenBlock());
    Value buffer = inputBuffer(b, loc, stage, indexConstant(b, loc, part));
    for (int64_t c = 0; c < kChunksPerThread; ++c) {
      Value chunk =
          arith::AddIOp::create(b, loc, myChunkBase, indexConstant(b, loc, c));
      Value place = arith::MulIOp::create(
          b, loc, arith::XOrIOp::create(b, loc, chunk, rowPhase),
          indexConstant(b, loc, kChunkElements));
      body(b, part, c, chunk, buffer, place);
    }
  }
}

void WarpgroupMatmul::storeInput(OpBuilder &b, Location loc, Value stage,
                                 ValueRange chunks) {
  if (plan.input)
    return;
  auto bf16Type = VectorType::get({kChunkElements}, b.getBF16Type());
  forEachStoredChunk(
      b, loc, stage,
      [&](OpBuilder &sb, int64_t part, int64_t c, Value, Value buffer,
          Value place) {
        Value rounded = chunks[part * kChunksPerThread + c];
        if (plan.terms > 1)
          rounded = bf16OfTerm(sb, loc, rounded);
        else if (!getElementTypeOrSelf(rounded.getType()).isBF16())
          rounded = arith::TruncFOp::create(sb, loc, bf16Type, rounded);
        auto store = vector::StoreOp::create(sb, loc, rounded, buffer,
                                             ValueRange{myHalfRow, place});
        store.setAlignmentAttr(sb.getI64IntegerAttr(16));
      });
  // The threads' stores, before the async proxy (wgmma) reads them.
  fenceForAsyncProxy(b, loc);
}

void WarpgroupMatmul::copyInputAsync(OpBuilder &b, Location loc, Value step,
                                     Value stage) {
  Value firstDepth = depthOfStep(b, loc, step);
  Value zero = indexConstant(b, loc, 0);
  Value chunkElements = indexConstant(b, loc, kChunkElements);
  forEachStoredChunk(
      b, loc, stage,
      [&](OpBuilder &cb, int64_t part, int64_t, Value chunk, Value buffer,
          Value place) {
        const GatherRow &row = myRows[part];
        Value depth = arith::AddIOp::create(
            cb, loc, firstDepth,
            arith::MulIOp::create(cb, loc, chunk, chunkElements));
        // The elements read: up to 8 before K, none without a source; the
        // copy zero-fills the rest of the 16 bytes.
        Value left = arith::SubIOp::create(
            cb, loc, arith::MaxUIOp::create(cb, loc, depthBound, depth), depth);
        Value count = arith::SelectOp::create(
            cb, loc, row.valid,
            arith::MinUIOp::create(cb, loc, left, chunkElements), zero);
        // A copy that reads nothing still names an address: the row's
        // start.
        Value from = arith::SelectOp::create(
            cb, loc,
            arith::CmpIOp::create(cb, loc, arith::CmpIPredicate::ne, count,
                                  zero),
            depth, zero);
        nvgpu::DeviceAsyncCopyOp::create(
            cb, loc, buffer, ValueRange{myHalfRow, place}, op.getInput(),
            ValueRange{row.source, from}, cb.getIndexAttr(kChunkElements),
            count, cb.getUnitAttr());
      });
  // Every thread arrives (without adding to the pending count: the
  // barrier expects these arrivals), once its copies have landed.
  NVVM::CpAsyncMBarrierArriveOp::create(
      b, loc, barrierPointer(b, loc, barriers, stage), /*noinc=*/true);
}

Value WarpgroupMatmul::barrierPointer(OpBuilder &b, Location loc, Value group,
                                      Value stage) {
  Value address =
      nvgpu::MBarrierGetOp::create(b, loc, b.getI32Type(), group, stage);
  return LLVM::IntToPtrOp::create(
      b, loc, LLVM::LLVMPointerType::get(b.getContext(), 3), address);
}

void WarpgroupMatmul::fenceForAsyncProxy(OpBuilder &b, Location loc) {
  NVVM::FenceProxyOp::create(
      b, loc, NVVM::ProxyKind::async_shared,
      NVVM::SharedSpaceAttr::get(b.getContext(),
                                 NVVM::SharedSpace::shared_cta));
}

void WarpgroupMatmul::emitEpilogue(OpBuilder &b, Location loc, ValueRange sums,
                                   Value partFirstRow) {
  // The m64nNk16 accumulator layout (PTX ISA, "wgmma .m64nNk16 D"): warp
  // w, lane l hold rows 16 w + l / 4 (+ 8) and, per 8 columns j, columns
  // 8 j + 2 (l % 4) (+ 1): value i is row + 8 ((i / 2) % 2), column
  // 8 (i / 4) + 2 (l % 4) + i % 2.
  Value warp =
      arith::DivUIOp::create(b, loc, thread, indexConstant(b, loc, 32));
  Value lane =
      arith::RemUIOp::create(b, loc, thread, indexConstant(b, loc, 32));
  Value rowBase = arith::AddIOp::create(
      b, loc, partFirstRow,
      arith::AddIOp::create(
          b, loc,
          arith::MulIOp::create(b, loc, warp, indexConstant(b, loc, 16)),
          arith::DivUIOp::create(b, loc, lane, indexConstant(b, loc, 4))));
  Value columnBase = arith::MulIOp::create(
      b, loc, arith::RemUIOp::create(b, loc, lane, indexConstant(b, loc, 4)),
      indexConstant(b, loc, 2));
  int64_t perThread = plan.columns / 2;
  // By pairs of adjacent columns (values i and i + 1, i even): one target
  // lookup, and one vector store, add or reduction for both where it may.
  for (int64_t i = 0; i < perThread; i += 2) {
    Value inBlock = arith::AddIOp::create(
        b, loc, rowBase, indexConstant(b, loc, 8 * ((i / 2) % 2)));
    Value column = arith::AddIOp::create(b, loc, columnBase,
                                         indexConstant(b, loc, 8 * (i / 4)));
    Value writes =
        arith::AndIOp::create(b, loc, lessThan(b, loc, inBlock, filledRows),
                              lessThan(b, loc, column, columns));
    Value secondInRange = lessThan(
        b, loc, arith::AddIOp::create(b, loc, column, indexConstant(b, loc, 1)),
        columns);
    SmallVector<Value> first, second;
    for (Value sum : sums) {
      first.push_back(LLVM::ExtractValueOp::create(b, loc, sum, i));
      second.push_back(LLVM::ExtractValueOp::create(b, loc, sum, i + 1));
    }
    Value row = arith::AddIOp::create(b, loc, firstRow, inBlock);
    scf::IfOp::create(b, loc, writes, [&](OpBuilder &wb, Location wl) {
      writeTilePair(wb, wl, op, row, column, first, second, secondInRange,
                    plan.vectorReductions);
      scf::YieldOp::create(wb, wl);
    });
  }
}

SmallVector<Value> WarpgroupMatmul::zeroSums(OpBuilder &b, Location loc) {
  Value zeroSum = f32Constant(b, loc, 0);
  Value zeros = LLVM::PoisonOp::create(b, loc, accumulatorType);
  for (int64_t i = 0; i < plan.columns / 2; ++i)
    zeros = LLVM::InsertValueOp::create(b, loc, zeros, zeroSum, i);
  return SmallVector<Value>(plan.weights.size(), zeros);
}

SmallVector<Value> WarpgroupMatmul::mmaStep(OpBuilder &b, Location loc,
                                            Value stage, Value part,
                                            ValueRange sums) {
  NVVM::WgmmaFenceAlignedOp::create(b, loc);
  Value aBase =
      matrixDescriptor(b, loc, inputBuffer(b, loc, stage, part), inputStride);
  SmallVector<Value> bBases;
  for (int64_t w = 0; w < static_cast<int64_t>(plan.weights.size()); ++w)
    bBases.push_back(matrixDescriptor(b, loc, weightBuffer(b, loc, stage, w)));
  // Without sums, the first wgmma of each weight adds its products to
  // nothing (scale-d 0) and its accumulator operand is undefined: no
  // instruction writes the accumulator registers before it.
  bool fromZero = sums.empty();
  SmallVector<Value> next(sums.begin(), sums.end());
  if (fromZero)
    next.assign(plan.weights.size(),
                LLVM::PoisonOp::create(b, loc, accumulatorType));
  for (int64_t kk = 0; kk < kStepDepth / kMmaDepth; ++kk) {
    // 16 depths further along the swizzled rows: 32 bytes.
    auto advance = [&](Value descriptor) -> Value {
      if (kk == 0)
        return descriptor;
      return arith::AddIOp::create(
          b, loc, descriptor,
          arith::ConstantOp::create(
              b, loc, b.getI64IntegerAttr(kk * kMmaDepth * 2 / 16)));
    };
    Value a = advance(aBase);
    for (size_t w = 0; w < next.size(); ++w)
      next[w] = NVVM::WgmmaMmaAsyncOp::create(
          b, loc, accumulatorType, next[w], a, advance(bBases[w]), mmaShape,
          NVVM::WGMMATypes::bf16, NVVM::WGMMATypes::bf16, NVVM::WGMMATypes::f32,
          fromZero && kk == 0 ? NVVM::WGMMAScaleOut::zero
                              : NVVM::WGMMAScaleOut::one,
          NVVM::WGMMAScaleIn::one, NVVM::WGMMAScaleIn::one,
          NVVM::MMALayout::row, NVVM::MMALayout::col,
          /*satfinite=*/nullptr);
  }
  NVVM::WgmmaGroupSyncAlignedOp::create(b, loc);
  return next;
}

Value WarpgroupMatmul::stageOf(OpBuilder &b, Location loc, Value slot) {
  return arith::RemUIOp::create(b, loc, slot, ringStages);
}

Value WarpgroupMatmul::parityOf(OpBuilder &b, Location loc, Value slot) {
  Value round = arith::DivUIOp::create(b, loc, slot, ringStages);
  return arith::IndexCastUIOp::create(
      b, loc, b.getI1Type(),
      arith::RemUIOp::create(b, loc, round, indexConstant(b, loc, 2)));
}

void WarpgroupMatmul::chooseRingLayout(OpBuilder &b, Location loc) {
  auto constant = [&](int64_t value) { return indexConstant(b, loc, value); };
  ringStages = constant(plan.stages);
  ringStageBytes = constant(plan.stageBytes());
  ringInputBytes = constant(plan.inputStageBytes());
  inputStride = Value();
  if (!plan.fewRowStages || !filledRows)
    return;
  // Blocks of at most 8 filled rows: stages of one swizzle atom of A,
  // which every 8-row group of the wgmmas' 64 reads (stride 0; the rows
  // past the filled ones reach only accumulator rows the epilogue does not
  // write).
  Value few = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ule,
                                    filledRows, constant(kFewRows));
  auto choose = [&](int64_t ifFew, int64_t otherwise) -> Value {
    return arith::SelectOp::create(b, loc, few, constant(ifFew),
                                   constant(otherwise));
  };
  ringStages = choose(plan.fewRowStages, plan.stages);
  ringStageBytes = choose(plan.fewRowStageBytes(), plan.stageBytes());
  ringInputBytes = choose(kSwizzleAtomBytes, plan.inputStageBytes());
  inputStride = arith::SelectOp::create(
      b, loc, few, arith::ConstantOp::create(b, loc, b.getI64IntegerAttr(0)),
      arith::ConstantOp::create(
          b, loc, b.getI64IntegerAttr(kSwizzleAtomBytes >> 4 << 32)));
}

void WarpgroupMatmul::waitFor(OpBuilder &b, Location loc, Value group,
                              Value parity, Value stage) {
  nvgpu::MBarrierTryWaitParityOp::create(
      b, loc, group, parity, indexConstant(b, loc, kWaitTicks), stage);
}

void WarpgroupMatmul::emitRoles(OpBuilder &b, Location loc, Value slotBase,
                                Value steps) {
  Value isProducer = lessThan(b, loc, thread, indexConstant(b, loc, 128));
  scf::IfOp::create(
      b, loc, isProducer,
      [&](OpBuilder &pb, Location pl) {
        emitProducer(pb, pl, slotBase, steps);
        scf::YieldOp::create(pb, pl);
      },
      [&](OpBuilder &cb, Location cl) {
        emitConsumers(cb, cl, slotBase, steps);
        scf::YieldOp::create(cb, cl);
      });
}

void WarpgroupMatmul::emitProducer(OpBuilder &pb, Location pl, Value slotBase,
                                   Value steps) {
  Value tid = thread;
  Value zero = indexConstant(pb, pl, 0), one = indexConstant(pb, pl, 1);
  // The producer: a thread per half row of A, thread 0 issuing the
  // weights' TMA loads. A stage is refilled once the consumer has
  // released it (in a ring's first round its released phase of
  // parity 1, the one before the first, counts as complete); each
  // step stores the A chunks the previous one loaded and loads the
  // next step's, so that their latency passes while it waits.
  setUpGatherRows(pb, pl);
  SmallVector<Value> first = loadInput(pb, pl, zero);
  scf::ForOp::create(
      pb, pl, zero, steps, one, first,
      [&](OpBuilder &kb, Location kl, Value step, ValueRange chunks) {
        Value slot = arith::AddIOp::create(kb, kl, slotBase, step);
        Value stage = stageOf(kb, kl, slot);
        Value previousPhase = arith::XOrIOp::create(
            kb, kl, parityOf(kb, kl, slot),
            arith::ConstantOp::create(kb, kl, kb.getBoolAttr(true)));
        waitFor(kb, kl, released, previousPhase, stage);
        if (plan.asyncGather) {
          // Thread 0's TMA arrival and every thread's once its
          // copies landed.
          issueTmaLoads(kb, kl, step, stage);
          copyInputAsync(kb, kl, step, stage);
        } else {
          storeInput(kb, kl, stage, chunks);
          issueTmaLoads(kb, kl, step, stage);
          // Thread 0's arrival came with its expect_tx.
          Value others = arith::CmpIOp::create(kb, kl, arith::CmpIPredicate::ne,
                                               tid, zero);
          scf::IfOp::create(kb, kl, others, [&](OpBuilder &ab, Location al) {
            nvgpu::MBarrierArriveOp::create(ab, al, barriers, stage);
            scf::YieldOp::create(ab, al);
          });
        }
        scf::YieldOp::create(
            kb, kl,
            loadInput(kb, kl, arith::AddIOp::create(kb, kl, step, one)));
      });
}

Value WarpgroupMatmul::consumerThreadOf(OpBuilder &b, Location loc) {
  return arith::SubIOp::create(b, loc, thread,
                               indexConstant(b, loc, kWarpgroupThreads));
}

void WarpgroupMatmul::releaseStage(OpBuilder &b, Location loc, Value slot,
                                   Value consumerThread) {
  if (plan.clusterPairs)
    releaseInPair(b, loc, stageOf(b, loc, slot),
                  arith::RemUIOp::create(
                      b, loc, consumerThread,
                      indexConstant(b, loc, kWarpgroupThreads)));
  else
    nvgpu::MBarrierArriveOp::create(b, loc, released, stageOf(b, loc, slot));
}

void WarpgroupMatmul::multiplyPart(
    OpBuilder &mb, Location ml, Value slotBase, Value steps, Value part,
    Value consumerThread,
    function_ref<void(OpBuilder &, Location)> afterLastWait) {
  Value tid = thread;
  Value zero = indexConstant(mb, ml, 0), one = indexConstant(mb, ml, 1);
  // The first step's group starts from no sums (scale-d 0) rather than
  // from zeroed registers: LLVM sinks such zeroing into the peeled first
  // step, after its wgmma.fence, where ptxas then serializes every wgmma
  // of the kernel (C7520). The others each release the stage of the step
  // `groupsInFlight` back once its group is done; the last ones after
  // the loop.
  int64_t inFlight = plan.groupsInFlight;
  auto waitAndMultiply = [&](OpBuilder &kb, Location kl, Value slot,
                             ValueRange sums) {
    Value stage = stageOf(kb, kl, slot);
    waitFor(kb, kl, barriers, parityOf(kb, kl, slot), stage);
    if (plan.asyncGather)
      fenceForAsyncProxy(kb, kl);
    SmallVector<Value> next = mmaStep(kb, kl, stage, part, sums);
    NVVM::WgmmaWaitGroupSyncOp::create(kb, kl, inFlight);
    return next;
  };
  Value any =
      arith::CmpIOp::create(mb, ml, arith::CmpIPredicate::ugt, steps, zero);
  SmallVector<Value> zeros = zeroSums(mb, ml);
  auto mainLoop =
      scf::IfOp::create(mb, ml, TypeRange(ValueRange(zeros)), any,
                        /*addThenBlock=*/true, /*addElseBlock=*/true);
  {
    OpBuilder::InsertionGuard guard(mb);
    mb.setInsertionPointToStart(mainLoop.thenBlock());
    SmallVector<Value> first = waitAndMultiply(mb, ml, slotBase, ValueRange{});
    auto rest = scf::ForOp::create(
        mb, ml, one, steps, one, first,
        [&](OpBuilder &kb, Location kl, Value step, ValueRange sums) {
          Value slot = arith::AddIOp::create(kb, kl, slotBase, step);
          SmallVector<Value> next = waitAndMultiply(kb, kl, slot, sums);
          Value back = indexConstant(kb, kl, inFlight);
          auto release = [&](OpBuilder &rb, Location rl) {
            releaseStage(rb, rl, arith::SubIOp::create(rb, rl, slot, back),
                         consumerThread);
          };
          if (inFlight == 1) {
            release(kb, kl);
          } else {
            scf::IfOp::create(kb, kl,
                              arith::CmpIOp::create(kb, kl,
                                                    arith::CmpIPredicate::uge,
                                                    step, back),
                              [&](OpBuilder &rb, Location rl) {
                                release(rb, rl);
                                scf::YieldOp::create(rb, rl);
                              });
          }
          scf::YieldOp::create(kb, kl, next);
        });
    scf::YieldOp::create(mb, ml, rest.getResults());
    mb.setInsertionPointToStart(mainLoop.elseBlock());
    scf::YieldOp::create(mb, ml, zeros);
  }
  if (afterLastWait)
    afterLastWait(mb, ml);
  NVVM::WgmmaWaitGroupSyncOp::create(mb, ml, 0);
  // The stages of the last groups in flight (of the last min(steps,
  // groupsInFlight) steps).
  Value unreleased = arith::SubIOp::create(
      mb, ml,
      arith::MaxUIOp::create(mb, ml, steps, indexConstant(mb, ml, inFlight)),
      indexConstant(mb, ml, inFlight));
  scf::ForOp::create(
      mb, ml, unreleased, steps, one, ValueRange{},
      [&](OpBuilder &rb, Location rl, Value step, ValueRange) {
        releaseStage(rb, rl, arith::AddIOp::create(rb, rl, slotBase, step),
                     consumerThread);
        scf::YieldOp::create(rb, rl);
      });
  // The accumulators' layout is the warpgroup's: thread 128 (1 + c) + t
  // of consumer c holds what thread t of a one-warpgroup block would for
  // its rows.
  thread = arith::RemUIOp::create(mb, ml, consumerThread,
                                  indexConstant(mb, ml, kWarpgroupThreads));
  emitEpilogue(
      mb, ml, mainLoop.getResults(),
      arith::MulIOp::create(mb, ml, part, indexConstant(mb, ml, kPartRows)));
  thread = tid;
}

void WarpgroupMatmul::emitConsumers(OpBuilder &cb, Location cl, Value slotBase,
                                    Value steps) {
  if (plan.pingPong) {
    emitConsumersInTurns(cb, cl, slotBase, steps);
    return;
  }
  // The consumers, one per part of the rows: each waits for a stage's
  // A and weights, multiplies its part's A by the weights, and releases
  // the stage of the step `groupsInFlight` back once that step's wgmma
  // group is done (the last ones after its loop).
  Value consumerThread = consumerThreadOf(cb, cl);
  Value part = arith::DivUIOp::create(
      cb, cl, consumerThread, indexConstant(cb, cl, kWarpgroupThreads));
  if (plan.parts == 1) {
    multiplyPart(cb, cl, slotBase, steps, part, consumerThread);
    return;
  }
  Value zero = indexConstant(cb, cl, 0), one = indexConstant(cb, cl, 1);
  // A part past the block's filled rows (at decode, the second of
  // most blocks) multiplies nothing and writes nothing: it only
  // releases each stage once it is filled (waiting for it, so that
  // its arrivals count towards this round's release, not a later
  // one's).
  Value partFirstRow =
      arith::MulIOp::create(cb, cl, part, indexConstant(cb, cl, kPartRows));
  scf::IfOp::create(
      cb, cl, lessThan(cb, cl, partFirstRow, filledRows),
      [&](OpBuilder &mb, Location ml) {
        multiplyPart(mb, ml, slotBase, steps, part, consumerThread);
        scf::YieldOp::create(mb, ml);
      },
      [&](OpBuilder &ib, Location il) {
        scf::ForOp::create(
            ib, il, zero, steps, one, ValueRange{},
            [&](OpBuilder &kb, Location kl, Value step, ValueRange) {
              Value slot = arith::AddIOp::create(kb, kl, slotBase, step);
              waitFor(kb, kl, barriers, parityOf(kb, kl, slot),
                      stageOf(kb, kl, slot));
              releaseStage(kb, kl, slot, consumerThread);
              scf::YieldOp::create(kb, kl);
            });
        scf::YieldOp::create(ib, il);
      });
}

void WarpgroupMatmul::emitConsumersInTurns(OpBuilder &cb, Location cl,
                                           Value slotBase, Value steps) {
  // Consumer c (0 or 1) takes the row blocks whose count before them has
  // parity c. Its k-th turn starts when the other's k-th (c = 1) or
  // (k - 1)-th (c = 0) has waited for its last stage: phase k or k - 1 of
  // turnBarriers[c] (the phase before the first counts as complete), so
  // that the blocks' waits on the ring's stages stay in the ring's order
  // and no consumer waits on a stage more than one round ahead of its
  // last completed phase.
  Value two = indexConstant(cb, cl, 2);
  Value consumerThread = consumerThreadOf(cb, cl);
  Value consumer = arith::DivUIOp::create(
      cb, cl, consumerThread, indexConstant(cb, cl, kWarpgroupThreads));
  Value mine = arith::CmpIOp::create(
      cb, cl, arith::CmpIPredicate::eq,
      arith::RemUIOp::create(cb, cl, blocksTaken, two), consumer);
  scf::IfOp::create(cb, cl, mine, [&](OpBuilder &mb, Location ml) {
    Value round = arith::DivUIOp::create(mb, ml, blocksTaken, two);
    // Phase k of consumer 1's barrier, k - 1 of consumer 0's: parity
    // (k + 1 + c) % 2.
    Value parity = arith::IndexCastUIOp::create(
        mb, ml, mb.getI1Type(),
        arith::RemUIOp::create(
            mb, ml,
            arith::AddIOp::create(
                mb, ml, round,
                arith::AddIOp::create(mb, ml, consumer,
                                      indexConstant(mb, ml, 1))),
            two));
    waitFor(mb, ml, turnBarriers, parity, consumer);
    Value other = arith::SubIOp::create(mb, ml, indexConstant(mb, ml, 1),
                                        consumer);
    multiplyPart(mb, ml, slotBase, steps, indexConstant(mb, ml, 0),
                 consumerThread, [&](OpBuilder &ab, Location al) {
                   nvgpu::MBarrierArriveOp::create(ab, al, turnBarriers,
                                                   other);
                 });
    scf::YieldOp::create(mb, ml);
  });
}

scf::ForOp WarpgroupMatmul::walkToCarryRingAcross() {
  // A scattering op's row blocks are ordered by block barriers, which the
  // roles' separate walks could not share. (A loop with results is left
  // alone: its copies per role could not both give them.)
  if (!plan.specialized || op.rowBlocksReduce())
    return {};
  return walkAroundTile(op, launch);
}

void WarpgroupMatmul::setUpRing(OpBuilder &b, Location loc) {
  MLIRContext *ctx = b.getContext();
  // One mbarrier per stage: thread 0 arrives with the TMA bytes.
  auto workgroup =
      gpu::AddressSpaceAttr::get(ctx, gpu::AddressSpace::Workgroup);
  barrierType =
      nvgpu::MBarrierGroupType::get(ctx, workgroup, plan.barrierStages());
  barriers = nvgpu::MBarrierCreateOp::create(b, loc, barrierType);
  SmallVector<Value> groups = {barriers};
  if (plan.specialized) {
    released = nvgpu::MBarrierCreateOp::create(b, loc, barrierType);
    groups.push_back(released);
  }
  if (plan.pingPong) {
    turnBarriers = nvgpu::MBarrierCreateOp::create(
        b, loc, nvgpu::MBarrierGroupType::get(ctx, workgroup, 2));
    groups.push_back(turnBarriers);
  }

  // The ring in dynamic shared memory, its start aligned to 1024 bytes and
  // past this group's mbarriers. Upstream's lowering makes the dynamic
  // memory's symbol an internal global, which NVPTX demotes to a one-byte
  // static shared variable that ptxas places before the static ones
  // declared after it (this group's mbarriers); the CUDA pipeline makes it
  // external (moe-extern-dynamic-shared-memory), after all static shared
  // memory, and the start below is safe either way. The launch asks for
  // the ring plus 1024 bytes (TilePlan::sharedBytes), and dynamic shared
  // memory follows all static shared memory, so the ring stays inside it.
  Value dynamic = gpu::DynamicSharedMemoryOp::create(
      b, loc,
      MemRefType::get({ShapedType::kDynamic}, b.getI8Type(),
                      MemRefLayoutAttrInterface(), workgroup));
  Value base = memref::ExtractAlignedPointerAsIndexOp::create(b, loc, dynamic);
  Value past = base;
  for (Value group : groups) {
    Value lastBarrier = arith::IndexCastUIOp::create(
        b, loc, b.getIndexType(),
        nvgpu::MBarrierGetOp::create(
            b, loc, b.getI32Type(), group,
            indexConstant(b, loc, barrierCount(group) - 1)));
    past = arith::MaxUIOp::create(
        b, loc, past,
        arith::AddIOp::create(b, loc, lastBarrier, indexConstant(b, loc, 8)));
  }
  Value atom = indexConstant(b, loc, kSwizzleAtomBytes);
  Value start = arith::MulIOp::create(
      b, loc, arith::CeilDivUIOp::create(b, loc, past, atom), atom);
  Value shift = arith::SubIOp::create(b, loc, start, base);
  // The aligned part as its own buffer, the stages' views into it.
  shared = memref::ViewOp::create(
      b, loc,
      MemRefType::get({plan.stages * plan.stageBytes()}, b.getI8Type(),
                      MemRefLayoutAttrInterface(), workgroup),
      dynamic, shift, ValueRange{});

  Value leader = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, thread,
                                       indexConstant(b, loc, 0));
  // One warpgroup: thread 0's expect_tx completes a stage with the TMA
  // bytes (its threads' A stores are ordered by the block's barriers).
  // Specialized: a stage is filled when the producer's 128 threads have
  // arrived (thread 0's arrival expecting the bytes) and released when all
  // the consumers' threads have. With cp.async, a stage is filled by
  // thread 0's expect_tx arrival and the 128 gathering threads' arrivals
  // once their copies landed.
  int64_t filledArrivals = plan.asyncGather   ? 1 + kWarpgroupThreads
                           : plan.specialized ? kWarpgroupThreads
                                              : 1;
  // In clusters, two arrivals of one thread per consumer warpgroup
  // (releaseInPair).
  int64_t releasedArrivals =
      plan.clusterPairs ? 2 * plan.parts : plan.parts * kWarpgroupThreads;
  // With consumers in turns, a turn is handed over by the 128 threads of
  // the other consumer.
  scf::IfOp::create(b, loc, leader, [&](OpBuilder &tb, Location tl) {
    for (Value group : groups)
      forEachBarrier(tb, tl, group, [&](OpBuilder &ib, Location il, Value s) {
        nvgpu::MBarrierInitOp::create(
            ib, il, group,
            indexConstant(ib, il,
                          group == released       ? releasedArrivals
                          : group == turnBarriers ? kWarpgroupThreads
                                                  : filledArrivals),
            s, /*predicate=*/Value());
      });
    NVVM::FenceMbarrierInitOp::create(tb, tl);
    scf::YieldOp::create(tb, tl);
  });
  gpu::BarrierOp::create(b, loc);
}

void WarpgroupMatmul::forEachBarrier(
    OpBuilder &b, Location loc, Value group,
    function_ref<void(OpBuilder &, Location, Value)> body) {
  int64_t count = barrierCount(group);
  // The usual few one after another; the eight-row stages' up to 64 in a
  // loop.
  if (count <= kMaxStages) {
    for (int64_t s = 0; s < count; ++s)
      body(b, loc, indexConstant(b, loc, s));
    return;
  }
  scf::ForOp::create(b, loc, indexConstant(b, loc, 0),
                     indexConstant(b, loc, count), indexConstant(b, loc, 1),
                     ValueRange{},
                     [&](OpBuilder &fb, Location fl, Value s, ValueRange) {
                       body(fb, fl, s);
                       scf::YieldOp::create(fb, fl);
                     });
}

void WarpgroupMatmul::tearDownRing(OpBuilder &b, Location loc) {
  // Every thread is done with the ring; the barriers end here (this code
  // may run again, e.g. in a loop, and initialize them anew).
  gpu::BarrierOp::create(b, loc);
  Value leader = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, thread,
                                       indexConstant(b, loc, 0));
  scf::IfOp::create(b, loc, leader, [&](OpBuilder &tb, Location tl) {
    for (Value group : {barriers, released, turnBarriers})
      if (group)
        forEachBarrier(tb, tl, group, [&](OpBuilder &ib, Location il, Value s) {
          NVVM::MBarrierInvalOp::create(ib, il,
                                        barrierPointer(ib, il, group, s));
        });
    scf::YieldOp::create(tb, tl);
  });
  gpu::BarrierOp::create(b, loc);
}

void WarpgroupMatmul::emit(OpBuilder &b) {
  Location loc = op.getLoc();
  thread = launch.getThreadIds().x;
  if (scf::ForOp walk = walkToCarryRingAcross()) {
    emitOverWalk(walk);
    return;
  }
  if (plan.clusterPairs) {
    emitClustered();
    return;
  }
  setUpRing(b, loc);
  Value zero = indexConstant(b, loc, 0);
  emitBlocks(b, {zero, plan.pingPong ? zero : Value()});
  tearDownRing(b, loc);
  op.erase();
}

void WarpgroupMatmul::emitOverWalk(scf::ForOp walk) {
  Location loc = op.getLoc();
  OpBuilder wb(walk);
  setUpRing(wb, loc);
  if (plan.clusterPairs)
    setUpPairing(wb, loc);
  // The roles split once, each walking every tile of the block: the
  // producer's warpgroup gives back the registers it does not need and the
  // consumers take them (setmaxnreg), from the 168 a thread of 384 has;
  // before the roles join again, each returns to 168 (the consumers give
  // back first, the producer's increase waits for them), so that the code
  // after them runs with one count on every warp.
  Value isProducer =
      lessThan(wb, loc, thread, indexConstant(wb, loc, kWarpgroupThreads));
  auto roles = scf::IfOp::create(wb, loc, isProducer, /*withElseRegion=*/true);
  // A producer that only issues TMA loads or cp.async copies keeps
  // addresses; one that gathers A through its registers holds two rows of
  // chunks in flight. The two consumers share what it gives back.
  int32_t producerRegisters = !plan.asyncGather && !plan.input ? 112 : 40;
  int32_t consumerRegisters =
      kEntryRegisters + (kEntryRegisters - producerRegisters) / 2 / 8 * 8;
  GroupedMatmulOp original = op;
  WarpgroupPlan originalPlan = plan;
  for (Role part : {Role::Producer, Role::Consumers}) {
    bool producer = part == Role::Producer;
    OpBuilder rb = OpBuilder::atBlockTerminator(producer ? roles.thenBlock()
                                                         : roles.elseBlock());
    auto moveRegisters = [&](int32_t to, bool increase) {
      if (plan.parts == 2 || plan.pingPong)
        NVVM::SetMaxRegisterOp::create(
            rb, loc, to,
            increase ? NVVM::SetMaxRegisterAction::increase
                     : NVVM::SetMaxRegisterAction::decrease);
    };
    moveRegisters(producer ? producerRegisters : consumerRegisters,
                  /*increase=*/!producer);
    IRMapping mapping;
    auto copy = llvm::cast<scf::ForOp>(rb.clone(*walk, mapping));
    moveRegisters(kEntryRegisters, /*increase=*/producer);
    // This lowering, on the role's copy of the op.
    op = llvm::cast<GroupedMatmulOp>(mapping.lookup(original.getOperation()));
    plan = originalPlan;
    auto remap = [&](TmaSource &source) {
      for (OpFoldResult &offset : source.offsets)
        if (auto value = llvm::dyn_cast<Value>(offset))
          offset = mapping.lookupOrDefault(value);
    };
    for (TmaSource &source : plan.weights)
      remap(source);
    if (plan.input)
      remap(*plan.input);
    role = part;
    emitInWalk(copy);
  }
  OpBuilder after(roles->getBlock(), std::next(roles->getIterator()));
  if (plan.clusterPairs)
    syncCluster(after, loc);
  tearDownRing(after, loc);
  walk.erase();
}

void WarpgroupMatmul::emitInWalk(scf::ForOp walk) {
  Location loc = op.getLoc();
  IRRewriter rewriter(walk.getContext());
  rewriter.setInsertionPoint(walk);
  // The ring's slot count (and with consumers in turns, the consumers'
  // count of row blocks they took) from iteration to iteration.
  bool countTurns = plan.pingPong && role == Role::Consumers;
  Value zero = indexConstant(rewriter, loc, 0);
  SmallVector<Value> initial = {zero};
  if (countTurns)
    initial.push_back(zero);
  FailureOr<LoopLikeOpInterface> counted = walk.replaceWithAdditionalYields(
      rewriter, initial,
      /*replaceInitOperandUsesInLoop=*/false,
      [](OpBuilder &, Location, ArrayRef<BlockArgument> carried) {
        return SmallVector<Value>(carried.begin(), carried.end());
      });
  walk = llvm::cast<scf::ForOp>(counted->getOperation());
  ArrayRef<BlockArgument> carried =
      walk.getRegionIterArgs().take_back(initial.size());
  Value firstSlot = carried.front();
  if (plan.clusterPairs) {
    // The tiles' keys alternate between two buffers (the partner reads
    // this tile's while this CTA may write the next one's).
    OpBuilder kb = OpBuilder::atBlockBegin(walk.getBody());
    Value tile = arith::DivUIOp::create(
        kb, loc,
        arith::SubIOp::create(kb, loc, walk.getInductionVar(),
                              walk.getLowerBound()),
        walk.getStep());
    keyParity =
        arith::RemUIOp::create(kb, loc, tile, indexConstant(kb, loc, 2));
    syncClusterWhereSkipped(
        op, walk, [&](OpBuilder &sb, Location sl) { clearKey(sb, sl); });
  }
  OpBuilder b(op);
  RingPosition last =
      emitBlocks(b, {firstSlot, countTurns ? Value(carried.back()) : Value()});
  SmallVector<Value> reached = {last.slot};
  if (countTurns)
    reached.push_back(last.turns);
  GroupedMatmulOp lowered = op;
  SmallVector<Value> yielded = yieldThroughBranches(
      op, walk, reached, SmallVector<Value>(carried.begin(), carried.end()));
  auto yield = llvm::cast<scf::YieldOp>(walk.getBody()->getTerminator());
  for (auto [i, value] : llvm::enumerate(yielded))
    yield->setOperand(yield->getNumOperands() - yielded.size() + i, value);
  lowered.erase();
}

int64_t WarpgroupMatmul::keyWords() const {
  return 3 + 3 * static_cast<int64_t>(plan.weights.size());
}

void WarpgroupMatmul::clearKey(OpBuilder &b, Location loc) {
  Value leader = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, thread,
                                       indexConstant(b, loc, 0));
  scf::IfOp::create(b, loc, leader, [&](OpBuilder &tb, Location tl) {
    memref::StoreOp::create(
        tb, tl, arith::ConstantIntOp::create(tb, tl, tb.getI64Type(), 0),
        keyBuffer,
        ValueRange{arith::MulIOp::create(tb, tl, keyParity,
                                         indexConstant(tb, tl, keyWords()))});
    scf::YieldOp::create(tb, tl);
  });
}

void WarpgroupMatmul::setUpPairing(OpBuilder &b, Location loc) {
  rank = clusterRank(b, loc);
  partner = arith::XOrIOp::create(
      b, loc, rank, arith::ConstantIntOp::create(b, loc, b.getI32Type(), 1));
  // Two keys of i64 words (sharesWeightsWithPartner), their first words 0
  // (no row block) until a tile writes them.
  keyBuffer = launch.addWorkgroupAttribution(
      MemRefType::get({2 * keyWords()}, b.getI64Type(),
                      MemRefLayoutAttrInterface(),
                      gpu::AddressSpaceAttr::get(b.getContext(),
                                                 gpu::AddressSpace::Workgroup)),
      loc);
  Value leader = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, thread,
                                       indexConstant(b, loc, 0));
  scf::IfOp::create(b, loc, leader, [&](OpBuilder &tb, Location tl) {
    for (int64_t key : {int64_t{0}, keyWords()})
      memref::StoreOp::create(
          tb, tl, arith::ConstantIntOp::create(tb, tl, tb.getI64Type(), 0),
          keyBuffer, ValueRange{indexConstant(tb, tl, key)});
    scf::YieldOp::create(tb, tl);
  });
  // Both CTAs' mbarriers are initialized and their keys cleared before
  // either touches the other's.
  syncCluster(b, loc);
}

void WarpgroupMatmul::emitClustered() {
  Location loc = op.getLoc();
  Block &body = launch.getBody().front();
  OpBuilder lb = OpBuilder::atBlockBegin(&body);
  setUpRing(lb, loc);
  setUpPairing(lb, loc);
  keyParity = indexConstant(lb, loc, 0);
  // A CTA that skips the tile meets its key's rendezvous all the same.
  syncClusterWhereSkipped(
      op, launch, [&](OpBuilder &sb, Location sl) { clearKey(sb, sl); });
  OpBuilder b(op);
  emitBlocks(b, {indexConstant(b, loc, 0), Value()});
  op.erase();
  // Neither CTA leaves (nor invalidates its mbarriers) while the other may
  // still arrive on them or load into its shared memory.
  OpBuilder eb(body.getTerminator());
  syncCluster(eb, loc);
  tearDownRing(eb, loc);
}

Value WarpgroupMatmul::sharesWeightsWithPartner(OpBuilder &b, Location loc,
                                                Value owned, Value steps,
                                                Value firstSlot) {
  Type i64 = b.getI64Type();
  auto word = [&](Value index) -> Value {
    return arith::IndexCastUIOp::create(b, loc, i64, index);
  };
  // The ring's position too: the CTAs' slots must name the same stages at
  // the same parities (a CTA that skipped a tile of a walk is behind).
  Value position = arith::RemUIOp::create(
      b, loc, firstSlot, indexConstant(b, loc, 2 * plan.stages));
  SmallVector<Value> key = {arith::ExtUIOp::create(b, loc, i64, owned),
                            word(steps), word(position)};
  for (const TmaSource &source : plan.weights) {
    ArrayRef<OpFoldResult> offsets = source.offsets;
    key.push_back(word(arith::AddIOp::create(
        b, loc, getValueOrCreateConstantIndexOp(b, loc, offsets[0]), expert)));
    key.push_back(word(getValueOrCreateConstantIndexOp(b, loc, offsets[1])));
    key.push_back(word(getValueOrCreateConstantIndexOp(b, loc, offsets[2])));
  }
  Value leader = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, thread,
                                       indexConstant(b, loc, 0));
  Value keyStart = arith::MulIOp::create(b, loc, keyParity,
                                         indexConstant(b, loc, keyWords()));
  scf::IfOp::create(b, loc, leader, [&](OpBuilder &tb, Location tl) {
    for (auto [i, value] : llvm::enumerate(key))
      memref::StoreOp::create(tb, tl, value, keyBuffer,
                              ValueRange{arith::AddIOp::create(
                                  tb, tl, keyStart, indexConstant(tb, tl, i))});
    scf::YieldOp::create(tb, tl);
  });
  syncCluster(b, loc);
  // The partner's key, read from its shared memory.
  Value address = arith::IndexCastUIOp::create(
      b, loc, b.getI32Type(),
      arith::AddIOp::create(
          b, loc,
          memref::ExtractAlignedPointerAsIndexOp::create(b, loc, keyBuffer),
          arith::MulIOp::create(b, loc, keyStart, indexConstant(b, loc, 8))));
  Value local = LLVM::IntToPtrOp::create(
      b, loc, LLVM::LLVMPointerType::get(b.getContext(), 3), address);
  Value remote = pointerInCta(b, loc, local, partner);
  Value same = owned;
  for (auto [i, value] : llvm::enumerate(key)) {
    Value at =
        LLVM::GEPOp::create(b, loc, remote.getType(), i64, remote,
                            ArrayRef<LLVM::GEPArg>{static_cast<int32_t>(i)});
    Value theirs = LLVM::LoadOp::create(b, loc, i64, at, /*alignment=*/8);
    same = arith::AndIOp::create(
        b, loc, same,
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, value, theirs));
  }
  return same;
}

void WarpgroupMatmul::releaseInPair(OpBuilder &b, Location loc, Value stage,
                                    Value groupThread) {
  // After the warpgroup's wgmma.wait_group, one of its threads speaks for
  // all of them (their wgmmas have retired): the release count is the
  // consumer warpgroups', twice (setUpRing).
  Value first = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq,
                                      groupThread, indexConstant(b, loc, 0));
  scf::IfOp::create(b, loc, first, [&](OpBuilder &fb, Location fl) {
    Value here = barrierPointer(fb, fl, released, stage);
    scf::IfOp::create(
        fb, fl, sharedPair,
        [&](OpBuilder &sb, Location sl) {
          arriveOn(sb, sl, here, 1);
          arriveOn(sb, sl, pointerInCta(sb, sl, here, partner), 1);
          scf::YieldOp::create(sb, sl);
        },
        [&](OpBuilder &ob, Location ol) {
          arriveOn(ob, ol, here, 2);
          scf::YieldOp::create(ob, ol);
        });
    scf::YieldOp::create(fb, fl);
  });
}

WarpgroupMatmul::RingPosition
WarpgroupMatmul::emitBlocks(OpBuilder &b, RingPosition first) {
  Value firstSlot = first.slot;
  Location loc = op.getLoc();
  filledRows = Value();
  chooseRingLayout(b, loc);
  MLIRContext *ctx = b.getContext();
  Value zero = indexConstant(b, loc, 0), one = indexConstant(b, loc, 1);
  SmallVector<Range> domain = getComputedDomain(b, op);
  Value blocks = getValueOrCreateConstantIndexOp(b, loc, domain[0].size);
  columns = getValueOrCreateConstantIndexOp(b, loc, domain[1].size);
  depthBound = depthBoundOf(b, loc, op);

  // The gathering thread's row in each part and half of the row's 8
  // chunks.
  myHalfRow = arith::DivUIOp::create(b, loc, thread, indexConstant(b, loc, 2));
  myChunkBase = arith::MulIOp::create(
      b, loc, arith::RemUIOp::create(b, loc, thread, indexConstant(b, loc, 2)),
      indexConstant(b, loc, kChunksPerThread));
  Value steps = arith::CeilDivUIOp::create(b, loc, depthBound,
                                           indexConstant(b, loc, kStepDepth));
  depthSteps = arith::MaxUIOp::create(b, loc, steps, one);
  if (plan.terms > 1)
    steps =
        arith::MulIOp::create(b, loc, steps, indexConstant(b, loc, plan.terms));

  SmallVector<Type> fields(plan.columns / 2, b.getF32Type());
  accumulatorType = LLVM::LLVMStructType::getLiteral(ctx, fields);
  mmaShape = NVVM::MMAShapeAttr::get(ctx, kPartRows, plan.columns, kMmaDepth);

  // In clusters, whether the CTAs' one row block (if any) loads the same
  // weights as the partner's: decided before the loop, which runs at most
  // once, so that both CTAs meet the key's rendezvous.
  if (plan.clusterPairs) {
    Value any = lessThan(b, loc, zero, blocks);
    auto first = scf::IfOp::create(
        b, loc, TypeRange{b.getIndexType(), b.getI1Type()}, any,
        /*addThenBlock=*/true, /*addElseBlock=*/true);
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(first.thenBlock());
      auto [firstExpert, owned] = op.loadBlockExpert(b, loc, zero);
      scf::YieldOp::create(b, loc, ValueRange{firstExpert, owned});
      b.setInsertionPointToStart(first.elseBlock());
      Value no = arith::ConstantOp::create(b, loc, b.getBoolAttr(false));
      scf::YieldOp::create(b, loc, ValueRange{zero, no});
    }
    expert = first.getResult(0);
    sharedPair =
        sharesWeightsWithPartner(b, loc, first.getResult(1), steps, firstSlot);
  }

  // Row blocks one after another, the ring's slots counted across them
  // (and the blocks the consumers took, with turns).
  SmallVector<Value> initial = {firstSlot};
  if (first.turns)
    initial.push_back(first.turns);
  auto blockLoop = scf::ForOp::create(
      b, loc, zero, blocks, one, initial,
      [&](OpBuilder &bb, Location bl, Value blockIndex, ValueRange carried) {
        block = blockIndex;
        Value slotBase = carried[0];
        blocksTaken = first.turns ? carried[1] : Value();
        // What an owned block yields: the slot after its steps, and one
        // more block taken.
        auto yieldOwned = [&](OpBuilder &yb, Location yl, Value slotEnd) {
          SmallVector<Value> results = {slotEnd};
          if (blocksTaken)
            results.push_back(
                arith::AddIOp::create(yb, yl, blocksTaken, one));
          scf::YieldOp::create(yb, yl, results);
        };
        Value owned;
        std::tie(expert, owned) = op.loadBlockExpert(bb, bl, block);
        auto ifOwned = scf::IfOp::create(
            bb, bl, owned,
            [&](OpBuilder &ob, Location ol) {
              filledRows = op.loadFilledRows(ob, ol, block);
              if (plan.input)
                inputBoxes = arith::CeilDivUIOp::create(
                    ob, ol, filledRows,
                    indexConstant(ob, ol, kSwizzleAtomRows));
              firstRow = arith::MulIOp::create(
                  ob, ol, block, indexConstant(ob, ol, plan.parts * kPartRows));
              Value slotEnd = arith::AddIOp::create(ob, ol, slotBase, steps);
              if (plan.specialized) {
                if (role == Role::Producer)
                  emitProducer(ob, ol, slotBase, steps);
                else if (role == Role::Consumers)
                  emitConsumers(ob, ol, slotBase, steps);
                else
                  emitRoles(ob, ol, slotBase, steps);
                yieldOwned(ob, ol, slotEnd);
                return;
              }
              setUpGatherRows(ob, ol);
              // The ring's layout for this block (its only one with
              // eight-row stages).
              chooseRingLayout(ob, ol);
              // The steps the TMA loads run ahead: the stages besides the
              // groups in flight.
              Value stagesAhead = ob.createOrFold<arith::SubIOp>(
                  ol, ringStages, indexConstant(ob, ol, plan.groupsInFlight));
              // The stage and phase parity of the block's first slot
              // (divided once per block); the steps count them on, with
              // no division by the stage count, which eight-row stages
              // choose at run time.
              Value firstStage = stageOf(ob, ol, slotBase);
              Value firstParity = parityOf(ob, ol, slotBase);
              // A stage index below 2 x stages, back into the ring.
              auto wrapStage = [&](OpBuilder &wb, Location wl, Value index) {
                Value past = arith::CmpIOp::create(
                    wb, wl, arith::CmpIPredicate::uge, index, ringStages);
                return arith::SelectOp::create(
                    wb, wl, past,
                    arith::SubIOp::create(wb, wl, index, ringStages), index);
              };

              // Step `step` into `stage`: the TMA loads, then A's copies
              // or the stores of the chunks `chunks` gives.
              auto fillStage = [&](OpBuilder &fb, Location fl, Value step,
                                   Value stage,
                                   function_ref<SmallVector<Value>()> chunks) {
                issueTmaLoads(fb, fl, step, stage);
                if (plan.asyncGather)
                  copyInputAsync(fb, fl, step, stage);
                else
                  storeInput(fb, fl, stage, chunks());
              };

              // Prologue: the steps the loads run ahead.
              Value ahead = arith::MinUIOp::create(ob, ol, steps, stagesAhead);
              scf::ForOp::create(
                  ob, ol, zero, ahead, one, ValueRange{},
                  [&](OpBuilder &pb, Location pl, Value step, ValueRange) {
                    Value stage = wrapStage(
                        pb, pl,
                        arith::AddIOp::create(pb, pl, firstStage, step));
                    fillStage(pb, pl, step, stage,
                              [&] { return loadInput(pb, pl, step); });
                    scf::YieldOp::create(pb, pl);
                  });
              // The A chunks of the first refill (step `ahead`), loaded
              // now: each step stores the chunks the previous one loaded
              // and loads those of the next refill, so that the loads'
              // latency passes while the wgmma groups run (zeros past the
              // steps; never stored).
              SmallVector<Value> prefetched = loadInput(ob, ol, ahead);

              // One step on `stage` of phase `parity`: `sums` (none at the
              // first step, whose group starts from no sums: see
              // emitRoles) plus its products, the chunks of the next
              // refill, and the next step's stage and parity.
              SmallVector<Value> zeros = zeroSums(ob, ol);
              size_t numSums = zeros.size();
              size_t numChunks = prefetched.size();
              auto stepOf = [&](OpBuilder &kb, Location kl, Value step,
                                Value stage, Value parity, ValueRange sums,
                                ValueRange chunks) {
                // The weights landed (and A, by TMA or cp.async); every
                // thread's A stores done. The prologue's are ordered by a
                // barrier here at the first step; a refill's, stored in
                // the step stages - G (groups in flight) before the one
                // that reads them, by the barrier after the next step's
                // wgmmas when stages - G >= 2, else by one here.
                waitFor(kb, kl, barriers, parity, stage);
                bool firstStep = sums.empty();
                if (plan.asyncGather)
                  fenceForAsyncProxy(kb, kl);
                else if (!plan.input &&
                         (firstStep || plan.stages - plan.groupsInFlight < 2))
                  gpu::BarrierOp::create(kb, kl);
                SmallVector<Value> next = mmaStep(kb, kl, stage, zero, sums);
                // The group of `groupsInFlight` steps back is done: its
                // slot is free once every warp is past this wait.
                NVVM::WgmmaWaitGroupSyncOp::create(kb, kl, plan.groupsInFlight);
                gpu::BarrierOp::create(kb, kl);
                Value refill = arith::AddIOp::create(kb, kl, step, stagesAhead);
                scf::IfOp::create(
                    kb, kl, lessThan(kb, kl, refill, steps),
                    [&](OpBuilder &rb, Location rl) {
                      // The stage the step `groupsInFlight` back read.
                      Value previous = wrapStage(
                          rb, rl,
                          arith::AddIOp::create(rb, rl, stage, stagesAhead));
                      fillStage(rb, rl, refill, previous,
                                [&] { return SmallVector<Value>(chunks); });
                      scf::YieldOp::create(rb, rl);
                    });
                // The next refill's A (zeros past the steps).
                llvm::append_range(
                    next,
                    loadInput(kb, kl,
                              arith::AddIOp::create(kb, kl, refill,
                                                    indexConstant(kb, kl, 1))));
                // The next step's stage; its phase flips past the last.
                Value following = arith::AddIOp::create(kb, kl, stage, one);
                Value wraps = arith::CmpIOp::create(
                    kb, kl, arith::CmpIPredicate::eq, following, ringStages);
                next.push_back(
                    arith::SelectOp::create(kb, kl, wraps, zero, following));
                next.push_back(arith::XOrIOp::create(kb, kl, parity, wraps));
                return next;
              };
              SmallVector<Value> initial = zeros;
              llvm::append_range(initial, prefetched);
              initial.push_back(firstStage);
              initial.push_back(firstParity);
              Value any = lessThan(ob, ol, zero, steps);
              auto mainLoop = scf::IfOp::create(
                  ob, ol, TypeRange(ValueRange(initial)), any,
                  /*addThenBlock=*/true, /*addElseBlock=*/true);
              {
                OpBuilder::InsertionGuard guard(ob);
                ob.setInsertionPointToStart(mainLoop.thenBlock());
                SmallVector<Value> first =
                    stepOf(ob, ol, zero, firstStage, firstParity, ValueRange{},
                           prefetched);
                auto rest = scf::ForOp::create(
                    ob, ol, one, steps, one, first,
                    [&](OpBuilder &kb, Location kl, Value step,
                        ValueRange carried) {
                      scf::YieldOp::create(
                          kb, kl,
                          stepOf(kb, kl, step, carried[numSums + numChunks],
                                 carried[numSums + numChunks + 1],
                                 carried.take_front(numSums),
                                 carried.slice(numSums, numChunks)));
                    });
                scf::YieldOp::create(ob, ol, rest.getResults());
                ob.setInsertionPointToStart(mainLoop.elseBlock());
                scf::YieldOp::create(ob, ol, initial);
              }
              NVVM::WgmmaWaitGroupSyncOp::create(ob, ol, 0);
              emitEpilogue(ob, ol, mainLoop.getResults().take_front(numSums),
                           zero);
              yieldOwned(ob, ol, slotEnd);
            },
            [&](OpBuilder &eb, Location el) {
              scf::YieldOp::create(eb, el, carried);
            });
        // Rows of later blocks may scatter to the same outputs; the one-
        // warpgroup form reuses the ring's buffers in the next block (the
        // specialized form's mbarriers order their reuse).
        if (!plan.specialized || op.rowBlocksReduce())
          gpu::BarrierOp::create(bb, bl);
        scf::YieldOp::create(bb, bl, ifOwned.getResults());
      });
  return {blockLoop.getResult(0),
          first.turns ? blockLoop.getResult(1) : Value()};
}

struct MoELowerGroupedMatmulToWGMMAPass
    : public moe::impl::MoELowerGroupedMatmulToWGMMAPassBase<
          MoELowerGroupedMatmulToWGMMAPass> {
  using Base::Base;

  LogicalResult initialize(MLIRContext *context) override {
    if (maxGroupsInFlight < 1)
      return emitError(UnknownLoc::get(context))
             << "moe-lower-grouped-matmul-to-wgmma: max-groups-in-flight "
                "must be at least 1, not "
             << static_cast<int64_t>(maxGroupsInFlight);
    return success();
  }

  void runOnOperation() override {
    SmallVector<GroupedMatmulOp> ops;
    llvm::DenseMap<Operation *, int64_t> opsPerLaunch;
    getOperation()->walk([&](GroupedMatmulOp op) {
      ops.push_back(op);
      ++opsPerLaunch[op->getParentOfType<gpu::LaunchOp>()];
    });
    // One TMA descriptor per weight and launch.
    llvm::DenseMap<std::tuple<Operation *, Value, int64_t>, Value> created;
    for (GroupedMatmulOp op : ops) {
      if (!op.getResult().empty()) {
        op.emitError("moe-lower-grouped-matmul-to-wgmma: expects the memref "
                     "form (run after bufferization)");
        return signalPassFailure();
      }
      auto launch = op->getParentOfType<gpu::LaunchOp>();
      if (!launch) {
        op.emitError("moe-lower-grouped-matmul-to-wgmma: expects the op in a "
                     "gpu.launch");
        return signalPassFailure();
      }
      std::string reason;
      FailureOr<WarpgroupPlan> plan =
          planWarpgroupTile(op, launch, maxSharedBytes, asyncGather,
                            eightRowStages, maxGroupsInFlight, reason);
      if (failed(plan)) {
        // Left for moe-lower-grouped-matmul-to-mma (mma.sync on the
        // block's warps for 16-bit and block-scaled weights, else the
        // CUDA cores).
        op->emitRemark("moe-lower-grouped-matmul-to-wgmma: left for "
                       "moe-lower-grouped-matmul-to-mma: ")
            << reason;
        continue;
      }
      if (plan->sharedBytes() > maxSharedBytes) {
        op.emitError("moe-lower-grouped-matmul-to-wgmma: the tile needs ")
            << plan->sharedBytes() << " bytes of shared memory (at most "
            << maxSharedBytes << ")";
        return signalPassFailure();
      }
      // Clusters of two CTAs share the weight boxes of a row block (at
      // most one per CTA) in whole swizzle atoms of 8 columns per half;
      // not with consumers in turns (a block's stages are one consumer's).
      plan->clusterPairs =
          plan->specialized && !plan->pingPong &&
          launchesClustersOfTwo(launch) &&
          plan->columns % (2 * kSwizzleAtomRows) == 0 &&
          (onlyBranchesAround(op, launch) || clusterWalk(op, launch)) &&
          atMostOneBlock(op) && opsPerLaunch[launch] == 1;
      // The descriptors, on the host before the launch, 128-byte swizzled,
      // zeros outside: the weights' boxes of one expert x BN columns x 64
      // depths, the input rows' of 8 rows x 64 depths.
      auto describe = [&](Value root, ArrayRef<int64_t> boxShape) -> Value {
        Value &descriptor = created[{launch.getOperation(), root,
                                     boxShape[boxShape.size() - 2]}];
        if (descriptor)
          return descriptor;
        OpBuilder hb(launch);
        Location loc = launch.getLoc();
        auto rootType = llvm::cast<MemRefType>(root.getType());
        Value unranked = memref::CastOp::create(
            hb, loc,
            UnrankedMemRefType::get(rootType.getElementType(),
                                    rootType.getMemorySpace()),
            root);
        auto boxType = MemRefType::get(
            boxShape, hb.getBF16Type(), MemRefLayoutAttrInterface(),
            gpu::AddressSpaceAttr::get(hb.getContext(),
                                       gpu::AddressSpace::Workgroup));
        auto mapType = nvgpu::TensorMapDescriptorType::get(
            hb.getContext(), boxType, nvgpu::TensorMapSwizzleKind::SWIZZLE_128B,
            nvgpu::TensorMapL2PromoKind::L2PROMO_256B,
            nvgpu::TensorMapOOBKind::OOB_ZERO,
            nvgpu::TensorMapInterleaveKind::INTERLEAVE_NONE);
        SmallVector<Value> box;
        for (int64_t size : boxShape)
          box.push_back(indexConstant(hb, loc, size));
        descriptor = nvgpu::TmaCreateDescriptorOp::create(hb, loc, mapType,
                                                          unranked, box);
        return descriptor;
      };
      SmallVector<Value> descriptors;
      int64_t boxColumns =
          plan->clusterPairs ? plan->columns / 2 : plan->columns;
      for (const TmaSource &source : plan->weights)
        descriptors.push_back(
            describe(source.root, {1, boxColumns, kStepDepth}));
      Value inputDescriptor;
      if (plan->input)
        inputDescriptor =
            describe(plan->input->root, {kSwizzleAtomRows, kStepDepth});
      // The launch's dynamic shared memory: the largest tile's.
      {
        OpBuilder lb(launch);
        int64_t bytes = plan->sharedBytes();
        if (Value existing = launch.getDynamicSharedMemorySize())
          bytes = std::max<int64_t>(
              bytes, getConstantIntValue(existing).value_or(bytes));
        launch.getDynamicSharedMemorySizeMutable().assign(
            arith::ConstantOp::create(lb, launch.getLoc(),
                                      lb.getI32IntegerAttr(bytes)));
      }
      OpBuilder b(op);
      plan->vectorReductions = vectorReductions;
      WarpgroupMatmul lowering(op, launch, *plan, descriptors, inputDescriptor);
      lowering.setAlignedInputRows(hasAlignedRows(op.getInput(), launch));
      // Replaces the op (or the persistent walk around it).
      lowering.emit(b);
    }
  }
};

} // namespace
