//===- GroupedMatmulToMMA.cpp - Grouped matmul tiles on a warp ------------===//
//
// A tile of the tiled program (one or more row blocks x some columns) that
// the warps of a block compute. 16-bit and block-scaled weights go through
// the tensor cores, one m16n8k16 mma.sync per 16 rows x 8 columns x 16
// depths (row blocks of several 16-row slices: the warps take the filled
// slices x groups of 8 columns in turns), with
// the PTX fragment layouts (PTX ISA, "Matrix Fragments for mma.m16n8k16"):
// lane l holds rows g = l / 4 and g + 8, depth pairs 2 * (l % 4) (+ 8) of A,
// column g and the same depth pairs of B, and accumulators of rows g, g + 8
// and columns 2 * (l % 4) + {0, 1}. f32 weights stay on the CUDA cores,
// one column per lane.
//
// The fragments are gathered straight from global memory; staging in shared
// memory, pipelining and larger warp tiles are tuning of this structure.
//
//===----------------------------------------------------------------------===//

#include "moe/Codegen/GPU/Passes.h"

#include "BF16Terms.h"
#include "TileWrites.h"

#include "moe/Dialect/MoE/IR/MoE.h"
#include "moe/Dialect/MoE/Transforms/GroupedMatmulRows.h"
#include "moe/Dialect/MoE/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Interfaces/TilingInterface.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOELOWERGROUPEDMATMULTOMMAPASS
#include "moe/Codegen/GPU/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::gpu_codegen;

namespace {

constexpr int64_t kWarpSize = 32;
// The mma.sync shape.
constexpr int64_t kMmaRows = 16, kMmaCols = 8, kMmaDepth = 16;
/// The steps of 16 depths whose fragments a warp gathers before their
/// mmas: each step's loads come from global memory (the weights from HBM
/// at decode), and a warp that waited for one step's loads per mma would
/// keep a single step's bytes in flight.
constexpr int64_t kStepsInFlight = 4;
constexpr int64_t kWarpgroupWarps = 4;

/// The 16-bit type of the tensor-core operands, or null where the weights
/// take the CUDA cores: f32 weights, and exact products of rows of another
/// type than f16 weights' (which the tensor cores would round; f32 and f16
/// rows by bf16 weights are split into exact bf16 terms).
Type mmaElementType(GroupedMatmulOp op) {
  if (op.getBlockRows() % kMmaRows != 0)
    return {};
  Type element =
      llvm::cast<ShapedType>(op.getWeight().getType()).getElementType();
  Builder b(op.getContext());
  Type half;
  if (element.isF16())
    half = b.getF16Type();
  // Block-scaled weights (FP8, e2m1) are scaled in f32 and rounded to bf16.
  else if (element.isBF16() || op.getWeightScale())
    half = b.getBF16Type();
  if (half && op.getExactProducts() &&
      getElementTypeOrSelf(op.getInput().getType()) != half &&
      !(half.isBF16() && bf16TermsOf(op) > 1))
    return {};
  return half;
}

/// Two f32 values rounded to `half` as the bits of one 32-bit register,
/// the first in the low half.
Value packBits(OpBuilder &b, Location loc, Type half, Value low, Value high) {
  Type i16 = b.getI16Type(), i32 = b.getI32Type();
  auto bits = [&](Value value) -> Value {
    // An exact bf16 term is converted already.
    Value narrow = value.getType() == half
                       ? value
                       : arith::TruncFOp::create(b, loc, half, value);
    return arith::ExtUIOp::create(
        b, loc, i32, arith::BitcastOp::create(b, loc, i16, narrow));
  };
  Value shifted = arith::ShLIOp::create(
      b, loc, bits(high),
      arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(16)));
  return arith::OrIOp::create(b, loc, bits(low), shifted);
}

/// A pair of a fragment in the operand type of nvvm.mma.sync: an i32 for
/// bf16, a vector<2xf16> for f16.
Value packPair(OpBuilder &b, Location loc, Type half, Value low, Value high) {
  Value bits = packBits(b, loc, half, low, high);
  if (!half.isF16())
    return bits;
  return LLVM::BitcastOp::create(b, loc, VectorType::get({2}, half), bits);
}

/// Lowers one grouped matmul for the warp whose lane id is `lane`.
class WarpMatmul {
public:
  WarpMatmul(GroupedMatmulOp op, Value lane, int64_t threads)
      : op(op), lane(lane), threads(threads) {}

  void emitTensorCores(OpBuilder &b, Type half);
  LogicalResult emitCudaCores(OpBuilder &b);

private:
  /// `input[row's source, depth]` as f32: 0 past `depthBound`, for rows
  /// without a source and for rows that are not filled.
  Value inputElement(OpBuilder &b, Location loc, Value source, Value valid,
                     Value depth, Type half);
  /// The scaled weight of `expert`, `column`, `depth` as f32, 0 outside
  /// the columns and depth the operands hold.
  Value weightElement(OpBuilder &b, Location loc, Value weight, Value expert,
                      Value column, Value depth, bool scaled);

  GroupedMatmulOp op;
  Value lane;
  /// The threads of the block (`lane` runs from 0 to threads - 1).
  int64_t threads;
  Value columns, depthBound;
};

Value WarpMatmul::inputElement(OpBuilder &b, Location loc, Value source,
                               Value valid, Value depth, Type half) {
  Value use = arith::AndIOp::create(b, loc, valid,
                                    lessThan(b, loc, depth, depthBound));
  // Loaded only where there is an element (an input may have no row).
  auto load = scf::IfOp::create(
      b, loc, use,
      [&](OpBuilder &tb, Location tl) {
        Value x = memref::LoadOp::create(tb, tl, op.getInput(),
                                         ValueRange{source, depth});
        if (!x.getType().isF32())
          x = arith::ExtFOp::create(tb, tl, tb.getF32Type(), x);
        scf::YieldOp::create(tb, tl, x);
      },
      [&](OpBuilder &eb, Location el) {
        scf::YieldOp::create(eb, el, f32Constant(eb, el, 0));
      });
  Value x = load.getResult(0);
  if (!half.isF16())
    return x;
  // f16 operands: saturated to the largest f16 instead of infinity.
  Value largest = f32Constant(b, loc, 65504.0f);
  Value below = arith::MinimumFOp::create(b, loc, x, largest);
  return arith::MaximumFOp::create(b, loc, below,
                                   arith::NegFOp::create(b, loc, largest));
}

Value WarpMatmul::weightElement(OpBuilder &b, Location loc, Value weight,
                                Value expert, Value column, Value depth,
                                bool scaled) {
  Value inside =
      arith::AndIOp::create(b, loc, lessThan(b, loc, column, columns),
                            lessThan(b, loc, depth, depthBound));
  Value clampedColumn = clampBelow(b, loc, column, columns);
  Value clampedDepth = clampBelow(b, loc, depth, depthBound);
  Value w = scaled ? op.loadScaledWeight(b, loc, weight, expert, clampedColumn,
                                         clampedDepth)
                   : op.loadWeightValue(b, loc, weight, expert, clampedColumn,
                                        clampedDepth);
  return arith::SelectOp::create(b, loc, inside, w, f32Constant(b, loc, 0));
}

void WarpMatmul::emitTensorCores(OpBuilder &b, Type half) {
  Location loc = op.getLoc();
  MLIRContext *ctx = b.getContext();
  SmallVector<Range> domain = getComputedDomain(b, op);
  Value blocks = getValueOrCreateConstantIndexOp(b, loc, domain[0].size);
  columns = getValueOrCreateConstantIndexOp(b, loc, domain[1].size);
  depthBound = depthBoundOf(b, loc, op);

  Value zero = indexConstant(b, loc, 0), one = indexConstant(b, loc, 1);
  Value four = indexConstant(b, loc, 4), eight = indexConstant(b, loc, 8);
  // The block's warps and this thread's warp and lane in it.
  int64_t warps = threads / kWarpSize;
  Value warp = zero, warpLane = lane;
  if (warps > 1) {
    Value warpSize = indexConstant(b, loc, kWarpSize);
    warp = arith::DivUIOp::create(b, loc, lane, warpSize);
    warpLane = arith::RemUIOp::create(b, loc, lane, warpSize);
  }
  Value group = arith::DivUIOp::create(b, loc, warpLane, four);
  Value pairDepth = arith::MulIOp::create(
      b, loc, arith::RemUIOp::create(b, loc, warpLane, four),
      indexConstant(b, loc, 2));
  // A row block's slices of 16 rows (the mma's M).
  int64_t slices = op.getBlockRows() / kMmaRows;
  // The steps a warp gathers ahead: fewer in blocks of more than a
  // warpgroup, whose kernels ptxas keeps to 80 registers a thread (384
  // threads), where 4 steps of a paired tile's fragments spill.
  int64_t stepsInFlight =
      warps > kWarpgroupWarps ? kStepsInFlight / 2 : kStepsInFlight;
  SmallVector<Value> weights = op.getWeights();
  // Block-scaled weights whose depth blocks are whole mma steps are scaled
  // per block, after the mma (0: each weight is scaled before it).
  int64_t scaleBlockDepth = 0;
  if (std::optional<ArrayRef<int64_t>> block = op.getWeightBlock();
      block && op.getWeightScale() && (*block)[1] % kMmaDepth == 0)
    scaleBlockDepth = (*block)[1];
  NVVM::MMATypes ptxType =
      half.isF16() ? NVVM::MMATypes::f16 : NVVM::MMATypes::bf16;
  Type f32 = b.getF32Type();
  Type accType = LLVM::LLVMStructType::getLiteral(ctx, {f32, f32, f32, f32});
  // The rows' bf16 terms, and the one the steps being built multiply.
  int64_t terms = bf16TermsOf(op), term = 0;

  scf::ForOp::create(
      b, loc, zero, blocks, one, ValueRange{},
      [&](OpBuilder &bb, Location bl, Value block, ValueRange) {
        Value expert, owned;
        std::tie(expert, owned) = op.loadBlockExpert(bb, bl, block);
        scf::IfOp::create(bb, bl, owned, [&](OpBuilder &ob, Location ol) {
          Value rows = op.loadFilledRows(ob, ol, block);
          Value blockFirstRow = arith::MulIOp::create(
              ob, ol, block, indexConstant(ob, ol, op.getBlockRows()));
          Value zeroSum = f32Constant(ob, ol, 0);
          // The lane's two rows of the slice of 16 from `sliceFirst` (in
          // the block): their ids, sources, places in the block, and whether
          // they are filled.
          struct LaneRows {
            SmallVector<Value, 2> rowIds, sources, inBlockRows, valid;
          };
          auto laneRows = [&](OpBuilder &rb, Location rl, Value sliceFirst) {
            LaneRows lr;
            for (int64_t offset : {0, 8}) {
              Value inBlock = arith::AddIOp::create(
                  rb, rl, sliceFirst,
                  arith::AddIOp::create(rb, rl, group,
                                        indexConstant(rb, rl, offset)));
              Value row = arith::AddIOp::create(rb, rl, blockFirstRow, inBlock);
              Value source, hasSource;
              std::tie(source, hasSource) = op.loadRowSource(rb, rl, row);
              lr.rowIds.push_back(row);
              lr.sources.push_back(source);
              lr.inBlockRows.push_back(inBlock);
              lr.valid.push_back(arith::AndIOp::create(
                  rb, rl, hasSource, lessThan(rb, rl, inBlock, rows)));
            }
            return lr;
          };
          // The 8 columns from `firstColumn` of the rows `lr` this warp
          // multiplies.
          auto item =
              [&](OpBuilder &nb, Location nl, const LaneRows &lr,
                  Value firstColumn) {
                ArrayRef<Value> rowIds = lr.rowIds, sources = lr.sources,
                                inBlockRows = lr.inBlockRows, valid = lr.valid;
                // The fragments of one step of 16 depths: A's (a0..a3) and
                // each weight's B (b0, b1).
                struct Fragments {
                  SmallVector<Value, 4> a;
                  SmallVector<SmallVector<Value, 2>, 2> b;
                };
                auto gather = [&](OpBuilder &kb, Location kl, Value firstDepth,
                                  bool scaled) {
                  Value depth0 =
                      arith::AddIOp::create(kb, kl, firstDepth, pairDepth);
                  Value depth8 = arith::AddIOp::create(kb, kl, depth0, eight);
                  auto pairOf = [&](auto element, Value depth) {
                    Value next = arith::AddIOp::create(kb, kl, depth, one);
                    return packPair(kb, kl, half, element(depth),
                                    element(next));
                  };
                  Fragments fragments;
                  // A: rows g, g + 8 x depths d, d + 8 (a0..a3); with
                  // exact products, the current bf16 term of each.
                  for (Value depth : {depth0, depth8})
                    for (int64_t r : {0, 1})
                      fragments.a.push_back(pairOf(
                          [&](Value k) {
                            Value x = inputElement(kb, kl, sources[r], valid[r],
                                                   k, half);
                            if (terms == 1)
                              return x;
                            return bf16OfTerm(
                                kb, kl,
                                splitIntoBF16Terms(kb, kl, x, terms)[term]);
                          },
                          depth));
                  Value column =
                      arith::AddIOp::create(kb, kl, firstColumn, group);
                  for (Value weight : weights) {
                    // B: column g x depths d, d + 8 (b0, b1).
                    SmallVector<Value, 2> bFragment;
                    for (Value depth : {depth0, depth8})
                      bFragment.push_back(pairOf(
                          [&](Value k) {
                            return weightElement(kb, kl, weight, expert,
                                                 column, k, scaled);
                          },
                          depth));
                    fragments.b.push_back(bFragment);
                  }
                  return fragments;
                };
                // The mma of every weight on one step's fragments.
                auto multiply = [&](OpBuilder &kb, Location kl,
                                    const Fragments &fragments,
                                    ValueRange sums) {
                  SmallVector<Value> next;
                  for (size_t w = 0; w < weights.size(); ++w) {
                    ValueRange c = sums.slice(4 * w, 4);
                    auto mma = NVVM::MmaOp::create(
                        kb, kl, accType, fragments.a, fragments.b[w], c,
                        {kMmaRows, kMmaCols, kMmaDepth},
                        /*b1Op=*/std::nullopt, /*intOverflow=*/std::nullopt,
                        std::array<NVVM::MMATypes, 2>{ptxType, ptxType},
                        std::array<NVVM::MMALayout, 2>{NVVM::MMALayout::row,
                                                       NVVM::MMALayout::col});
                    for (int64_t i = 0; i < 4; ++i)
                      next.push_back(
                          LLVM::ExtractValueOp::create(kb, kl, mma, i));
                  }
                  return next;
                };
                // The steps over [from, to), from the sums `init`: up to
                // `inFlight` steps' fragments gathered before their mmas,
                // so that a warp has that many steps' loads in flight
                // rather than one (each step's loads would otherwise wait
                // for the previous step's mmas, which wait for its loads),
                // then the steps left one at a time. The mmas, and so the
                // sums, are in the same order either way.
                auto steps = [&](OpBuilder &lb, Location ll, Value from,
                                 Value to, ValueRange init, bool scaled,
                                 int64_t inFlight) {
                  auto stepsOf = [&](OpBuilder &sb, Location sl, Value begin,
                                     Value end, int64_t count,
                                     ValueRange start) -> SmallVector<Value> {
                    auto loop = scf::ForOp::create(
                        sb, sl, begin, end,
                        indexConstant(sb, sl, count * kMmaDepth), start,
                        [&](OpBuilder &kb, Location kl, Value firstDepth,
                            ValueRange sums) {
                          SmallVector<Fragments> gathered;
                          for (int64_t u = 0; u < count; ++u)
                            gathered.push_back(gather(
                                kb, kl,
                                u == 0
                                    ? firstDepth
                                    : arith::AddIOp::create(
                                          kb, kl, firstDepth,
                                          indexConstant(kb, kl, u * kMmaDepth)),
                                scaled));
                          SmallVector<Value> current =
                              llvm::to_vector_of<Value>(sums);
                          for (const Fragments &fragments : gathered)
                            current = multiply(kb, kl, fragments, current);
                          scf::YieldOp::create(kb, kl, current);
                        });
                    return llvm::to_vector_of<Value>(loop.getResults());
                  };
                  if (inFlight <= 1)
                    return stepsOf(lb, ll, from, to, 1, init);
                  // [from, whole): whole groups of `inFlight` steps.
                  Value group = indexConstant(lb, ll, inFlight * kMmaDepth);
                  Value whole = arith::AddIOp::create(
                      lb, ll, from,
                      arith::MulIOp::create(
                          lb, ll,
                          arith::DivUIOp::create(
                              lb, ll, arith::SubIOp::create(lb, ll, to, from),
                              group),
                          group));
                  SmallVector<Value> grouped =
                      stepsOf(lb, ll, from, whole, inFlight, init);
                  return stepsOf(lb, ll, whole, to, 1, grouped);
                };
                SmallVector<Value> initSums(4 * weights.size(), zeroSum);
                SmallVector<Value> finalSums;
                if (scaleBlockDepth) {
                  // Block-scaled weights: the mma of their exact values
                  // (e4m3 and e2m1 are bf16 numbers) over each depth block,
                  // its sums then added times the block's scales.
                  Value blockDepth = indexConstant(nb, nl, scaleBlockDepth);
                  auto blocksLoop = scf::ForOp::create(
                      nb, nl, zero, depthBound, blockDepth, initSums,
                      [&](OpBuilder &sb, Location sl, Value firstDepth,
                          ValueRange sums) {
                        Value end = arith::MinUIOp::create(
                            sb, sl,
                            arith::AddIOp::create(sb, sl, firstDepth,
                                                  blockDepth),
                            depthBound);
                        SmallVector<Value> zeros(4 * weights.size(),
                                                 f32Constant(sb, sl, 0));
                        SmallVector<Value> partial(
                            steps(sb, sl, firstDepth, end, zeros,
                                  /*scaled=*/false,
                                  std::min(stepsInFlight,
                                           scaleBlockDepth / kMmaDepth)));
                        SmallVector<Value> next;
                        for (size_t w = 0; w < weights.size(); ++w)
                          for (int64_t i = 0; i < 4; ++i) {
                            Value column = arith::AddIOp::create(
                                sb, sl, firstColumn,
                                arith::AddIOp::create(
                                    sb, sl, pairDepth,
                                    indexConstant(sb, sl, i % 2)));
                            Value factor = memref::LoadOp::create(
                                sb, sl, op.getScaleOf(weights[w]),
                                op.getScaleIndices(
                                    sb, sl, expert,
                                    clampBelow(sb, sl, column, columns),
                                    firstDepth));
                            next.push_back(arith::AddFOp::create(
                                sb, sl, sums[4 * w + i],
                                arith::MulFOp::create(sb, sl, factor,
                                                      partial[4 * w + i])));
                          }
                        scf::YieldOp::create(sb, sl, next);
                      });
                  finalSums.assign(blocksLoop.getResults().begin(),
                                   blocksLoop.getResults().end());
                } else {
                  // Once over K per bf16 term of the rows (one unless the
                  // products are exact), into the same sums, the lowest
                  // term first: the lower terms' sum (at most 16
                  // significant bits) times a bf16 weight is exact in f32,
                  // so that a sum of one product rounds once, as the f32
                  // product does.
                  finalSums = initSums;
                  for (term = terms - 1; term >= 0; --term) {
                    finalSums = steps(nb, nl, zero, depthBound, finalSums,
                                      /*scaled=*/true, stepsInFlight);
                  }
                }
                // c0, c1: row g, columns 2 (l % 4) + {0, 1}; c2, c3: row g + 8.
                // Each pair of adjacent columns is written together.
                for (int64_t i = 0; i < 4; i += 2) {
                  Value column =
                      arith::AddIOp::create(nb, nl, firstColumn, pairDepth);
                  Value inBlock = inBlockRows[i < 2 ? 0 : 1];
                  Value writes = arith::AndIOp::create(
                      nb, nl, lessThan(nb, nl, inBlock, rows),
                      lessThan(nb, nl, column, columns));
                  Value secondInRange =
                      lessThan(nb, nl,
                               arith::AddIOp::create(nb, nl, column,
                                                     indexConstant(nb, nl, 1)),
                               columns);
                  SmallVector<Value> first, second;
                  for (size_t w = 0; w < weights.size(); ++w) {
                    first.push_back(finalSums[4 * w + i]);
                    second.push_back(finalSums[4 * w + i + 1]);
                  }
                  scf::IfOp::create(
                      nb, nl, writes, [&](OpBuilder &wb, Location wl) {
                        // (red.add.v2.f32 is sm_90's; these tiles run from
                        // sm_80.)
                        writeTilePair(wb, wl, op, rowIds[i < 2 ? 0 : 1], column,
                                      first, second, secondInRange,
                                      /*vectorReductions=*/false);
                        scf::YieldOp::create(wb, wl);
                      });
                }
              };
          Value columnStep = indexConstant(ob, ol, kMmaCols);
          if (slices == 1) {
            // One slice: the warps take the groups of 8 columns in turns.
            LaneRows lr = laneRows(ob, ol, zero);
            Value warpColumn =
                warps > 1 ? arith::MulIOp::create(ob, ol, warp, columnStep)
                          : zero;
            Value stride = indexConstant(ob, ol, warps * kMmaCols);
            scf::ForOp::create(
                ob, ol, warpColumn, columns, stride, ValueRange{},
                [&](OpBuilder &nb, Location nl, Value firstColumn, ValueRange) {
                  item(nb, nl, lr, firstColumn);
                  scf::YieldOp::create(nb, nl);
                });
          } else {
            // The slices that hold filled rows x the groups of 8 columns,
            // the warps taking them in turns (slices fastest: warps at one
            // column group share its weights through L1). At decode a
            // block's one filled row is one slice, which the warps then
            // split by columns.
            Value filledSlices = arith::MinUIOp::create(
                ob, ol,
                arith::CeilDivUIOp::create(ob, ol, rows,
                                           indexConstant(ob, ol, kMmaRows)),
                indexConstant(ob, ol, slices));
            Value items = arith::MulIOp::create(
                ob, ol, filledSlices,
                arith::CeilDivUIOp::create(ob, ol, columns, columnStep));
            scf::ForOp::create(
                ob, ol, warp, items, indexConstant(ob, ol, warps), ValueRange{},
                [&](OpBuilder &nb, Location nl, Value index, ValueRange) {
                  Value slice =
                      arith::RemUIOp::create(nb, nl, index, filledSlices);
                  Value firstColumn = arith::MulIOp::create(
                      nb, nl,
                      arith::DivUIOp::create(nb, nl, index, filledSlices),
                      columnStep);
                  LaneRows lr = laneRows(
                      nb, nl,
                      arith::MulIOp::create(nb, nl, slice,
                                            indexConstant(nb, nl, kMmaRows)));
                  item(nb, nl, lr, firstColumn);
                  scf::YieldOp::create(nb, nl);
                });
          }
          scf::YieldOp::create(ob, ol);
        });
        // Rows of later blocks may scatter to the same outputs.
        if (op.rowBlocksReduce())
          gpu::BarrierOp::create(bb, bl);
        scf::YieldOp::create(bb, bl);
      });
}

LogicalResult WarpMatmul::emitCudaCores(OpBuilder &b) {
  Location loc = op.getLoc();
  SmallVector<Range> domain = getComputedDomain(b, op);
  auto tiling = llvm::cast<TilingInterface>(op.getOperation());
  Value zero = indexConstant(b, loc, 0), one = indexConstant(b, loc, 1);
  Value blocks = getValueOrCreateConstantIndexOp(b, loc, domain[0].size);
  Value cols = getValueOrCreateConstantIndexOp(b, loc, domain[1].size);
  LogicalResult result = success();
  // Each thread owns whole columns: no two threads write one element.
  scf::ForOp::create(
      b, loc, zero, blocks, one, ValueRange{},
      [&](OpBuilder &bb, Location bl, Value block, ValueRange) {
        scf::ForOp::create(
            bb, bl, lane, cols, indexConstant(bb, bl, threads), ValueRange{},
            [&](OpBuilder &cb, Location cl, Value column, ValueRange) {
              if (domain.size() == 2) {
                result = tiling.generateScalarImplementation(
                    cb, cl, ValueRange{block, column});
              } else if (op.isScattering() && !op.rowBlocksReduce()) {
                // Row blocks in parallel (atomic or unique adds): each
                // row's sum over the depth in a register, then one add of
                // it to its target, not one (atomic) add per product.
                forEachRowSums(cb, cl, op, block, column,
                               [&](OpBuilder &rb, Location rl, Value row,
                                   ValueRange sums) {
                                 writeTileElement(rb, rl, op, row, column,
                                                  SmallVector<Value>(sums));
                               });
              } else {
                Value depth =
                    getValueOrCreateConstantIndexOp(cb, cl, domain[2].size);
                scf::ForOp::create(
                    cb, cl, zero, depth, one, ValueRange{},
                    [&](OpBuilder &kb, Location kl, Value k, ValueRange) {
                      result = tiling.generateScalarImplementation(
                          kb, kl, ValueRange{block, column, k});
                      scf::YieldOp::create(kb, kl);
                    });
              }
              scf::YieldOp::create(cb, cl);
            });
        if (op.rowBlocksReduce())
          gpu::BarrierOp::create(bb, bl);
        scf::YieldOp::create(bb, bl);
      });
  return result;
}

/// The threads of `launch`'s blocks when they are whole warps along x
/// (32 x 1 x 1 as moe-map-to-gpu launches warp tiles, or more), else 0.
int64_t warpBlockThreads(gpu::LaunchOp launch) {
  auto sizeOf = [](Value value) {
    return getConstantIntValue(value).value_or(0);
  };
  int64_t threads = sizeOf(launch.getBlockSizeX());
  if (threads < kWarpSize || threads % kWarpSize != 0 ||
      sizeOf(launch.getBlockSizeY()) != 1 ||
      sizeOf(launch.getBlockSizeZ()) != 1)
    return 0;
  return threads;
}

struct MoELowerGroupedMatmulToMMAPass
    : public moe::impl::MoELowerGroupedMatmulToMMAPassBase<
          MoELowerGroupedMatmulToMMAPass> {
  void runOnOperation() override {
    SmallVector<GroupedMatmulOp> ops;
    getOperation()->walk([&](GroupedMatmulOp op) { ops.push_back(op); });
    for (GroupedMatmulOp op : ops) {
      if (!op.getResult().empty()) {
        op.emitError("moe-lower-grouped-matmul-to-mma: expects the memref "
                     "form (run after bufferization)");
        return signalPassFailure();
      }
      auto launch = op->getParentOfType<gpu::LaunchOp>();
      int64_t threads = launch ? warpBlockThreads(launch) : 0;
      if (!threads) {
        op.emitError("moe-lower-grouped-matmul-to-mma: expects the op in a "
                     "gpu.launch of blocks of whole warps (32 x 1 x 1 "
                     "threads as moe-map-to-gpu launches tiles, or a "
                     "multiple of 32 along x)");
        return signalPassFailure();
      }
      OpBuilder b(op);
      WarpMatmul lowering(op, launch.getThreadIds().x, threads);
      // The tensor cores for 16-bit and block-scaled weights, on blocks of
      // any number of warps (a warpgroup or more where mma=wgmma launches
      // tiles and its lowering left the op); others the CUDA cores, each
      // thread whole columns.
      Type half = mmaElementType(op);
      if (half) {
        lowering.emitTensorCores(b, half);
      } else if (failed(lowering.emitCudaCores(b))) {
        op.emitError("moe-lower-grouped-matmul-to-mma: no scalar "
                     "implementation");
        return signalPassFailure();
      }
      op.erase();
    }
  }
};

} // namespace
