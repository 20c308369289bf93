//===- RoutingPlanBuilders.cpp - Counting-sort builders for routing -------===//

#include "RoutingPlanBuilders.h"
#include "LoweringUtils.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::lowering;

namespace {

/// Writes an `index` into an integer tensor.
Value writeIndex(OpBuilder &b, Location loc, Value index, Value tensor,
                 ValueRange at) {
  Type type = llvm::cast<RankedTensorType>(tensor.getType()).getElementType();
  return tensor::InsertOp::create(
      b, loc, arith::IndexCastOp::create(b, loc, type, index), tensor, at);
}

/// `value + 1` at `at` of an integer or f32 tensor.
Value incrementAt(OpBuilder &b, Location loc, Value tensor, ValueRange at) {
  Type type = llvm::cast<RankedTensorType>(tensor.getType()).getElementType();
  if (llvm::isa<FloatType>(type)) {
    Value v = tensor::ExtractOp::create(b, loc, tensor, at);
    Value next = arith::AddFOp::create(
        b, loc, v,
        arith::ConstantOp::create(b, loc, b.getFloatAttr(type, 1.0)));
    return tensor::InsertOp::create(b, loc, next, tensor, at);
  }
  Value next = arith::AddIOp::create(b, loc, readIndex(b, loc, tensor, at),
                                     indexConstant(b, loc, 1));
  return writeIndex(b, loc, next, tensor, at);
}

} // namespace

Value lowering::buildNumChunks(OpBuilder &b, Location loc, Value numTokens,
                               OpFoldResult chunkTokens) {
  return arith::CeilDivUIOp::create(
      b, loc, numTokens, getValueOrCreateConstantIndexOp(b, loc, chunkTokens));
}

Value lowering::buildPlanChunkTokens(OpBuilder &b, Location loc,
                                     Value numTokens, int64_t choices) {
  Type f64 = b.getF64Type(), i64 = b.getI64Type();
  Value perChoice = arith::DivUIOp::create(
      b, loc, numTokens, indexConstant(b, loc, std::max<int64_t>(choices, 1)));
  Value root = math::SqrtOp::create(
      b, loc,
      arith::UIToFPOp::create(
          b, loc, f64, arith::IndexCastUIOp::create(b, loc, i64, perChoice)));
  Value tokens = arith::IndexCastUIOp::create(
      b, loc, b.getIndexType(), arith::FPToUIOp::create(b, loc, i64, root));
  return arith::MinUIOp::create(
      b, loc, arith::MaxUIOp::create(b, loc, tokens, indexConstant(b, loc, 1)),
      indexConstant(b, loc, kRoutingChunkTokens));
}

SmallVector<Value>
lowering::buildChunkParallel(OpBuilder &b, Location loc, Value numTokens,
                             ValueRange perToken, ValueRange perChunk,
                             ChunkBody body, OpFoldResult chunkTokens) {
  SmallVector<Value> inits(perToken);
  llvm::append_range(inits, perChunk);
  Value numChunks = buildNumChunks(b, loc, numTokens, chunkTokens);
  Value tokensPerChunk = getValueOrCreateConstantIndexOp(b, loc, chunkTokens);
  auto forall = scf::ForallOp::create(b, loc, ArrayRef<OpFoldResult>{numChunks},
                                      inits, std::nullopt);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPoint(forall.getTerminator());
  Value chunk = forall.getInductionVar(0);
  Value first = arith::MulIOp::create(b, loc, chunk, tokensPerChunk);
  Value count = arith::MinUIOp::create(
      b, loc, tokensPerChunk, arith::SubIOp::create(b, loc, numTokens, first));
  SmallVector<OpFoldResult> strides(2, b.getIndexAttr(1));
  SmallVector<SmallVector<OpFoldResult>> offsets, sizes;
  SmallVector<Value> tokenRows, chunkRows;
  for (auto [i, out] : llvm::enumerate(forall.getRegionIterArgs())) {
    bool isPerToken = i < perToken.size();
    auto type = llvm::cast<RankedTensorType>(out.getType());
    offsets.push_back({isPerToken ? first : chunk, b.getIndexAttr(0)});
    sizes.push_back({isPerToken ? OpFoldResult(count) : b.getIndexAttr(1),
                     tensor::getMixedSize(b, loc, out, 1)});
    auto sliceType = RankedTensorType::get(
        {isPerToken ? ShapedType::kDynamic : 1, type.getDimSize(1)},
        type.getElementType());
    Value slice = tensor::ExtractSliceOp::create(
        b, loc, sliceType, out, offsets.back(), sizes.back(), strides);
    (isPerToken ? tokenRows : chunkRows).push_back(slice);
  }
  SmallVector<Value> updated = body(b, loc, first, count, tokenRows, chunkRows);
  b.setInsertionPointToStart(forall.getTerminator().getBody());
  for (auto [i, value] : llvm::enumerate(updated))
    tensor::ParallelInsertSliceOp::create(b, loc, value,
                                          forall.getRegionIterArgs()[i],
                                          offsets[i], sizes[i], strides);
  return SmallVector<Value>(forall.getResults());
}

Value lowering::buildFilledVector(OpBuilder &b, Location loc, OpFoldResult size,
                                  Type type, int64_t value) {
  Value empty =
      tensor::EmptyOp::create(b, loc, ArrayRef<OpFoldResult>{size}, type);
  Value constant =
      arith::ConstantOp::create(b, loc, b.getIntegerAttr(type, value));
  return linalg::FillOp::create(b, loc, ValueRange{constant}, ValueRange{empty})
      .getResult(0);
}

Value lowering::buildChunkCountsInit(OpBuilder &b, Location loc,
                                     Value numChunks, int64_t numExperts) {
  Type i32 = b.getI32Type();
  Value empty = tensor::EmptyOp::create(
      b, loc, ArrayRef<OpFoldResult>{numChunks, b.getIndexAttr(numExperts)},
      i32);
  Value zero = arith::ConstantIntOp::create(b, loc, i32, 0);
  return linalg::FillOp::create(b, loc, ValueRange{zero}, ValueRange{empty})
      .getResult(0);
}

Value lowering::buildCountAssignment(OpBuilder &b, Location loc, Value counts,
                                     Value id, int64_t numExperts) {
  Value expert = arith::IndexCastOp::create(b, loc, b.getIndexType(), id);
  Value taken = isInRange(b, loc, expert, indexConstant(b, loc, numExperts));
  return buildIf(b, loc, taken,
                 [&](OpBuilder &ib, Location il) {
                   return SmallVector<Value>{incrementAt(
                       ib, il, counts, {indexConstant(ib, il, 0), expert})};
                 },
                 {counts})[0];
}

Value lowering::buildExpertCounts(OpBuilder &b, Location loc, Value ids,
                                  int64_t numExperts) {
  return buildSumOfChunkCounts(
      b, loc,
      buildChunkExpertCounts(b, loc, ids, numExperts,
                             b.getIndexAttr(kRoutingChunkTokens)),
      numExperts);
}

Value lowering::buildChunkExpertCounts(OpBuilder &b, Location loc, Value ids,
                                       int64_t numExperts,
                                       OpFoldResult chunkTokens) {
  Value zero = indexConstant(b, loc, 0);
  Value numTokens = tensor::DimOp::create(b, loc, ids, 0);
  Value choices = tensor::DimOp::create(b, loc, ids, 1);
  Value chunkCounts = buildChunkCountsInit(
      b, loc, buildNumChunks(b, loc, numTokens, chunkTokens), numExperts);
  chunkCounts = buildChunkParallel(
      b, loc, numTokens, {}, {chunkCounts},
      [&](OpBuilder &cb, Location cl, Value first, Value count, ValueRange,
          ValueRange chunkRows) {
        return buildLoop(
            cb, cl, zero, count, chunkRows,
            [&](OpBuilder &tb, Location tl, Value i, ValueRange counts) {
              Value t = arith::AddIOp::create(tb, tl, first, i);
              return buildLoop(
                  tb, tl, zero, choices, counts,
                  [&](OpBuilder &kb, Location kl, Value k, ValueRange current) {
                    Value id = tensor::ExtractOp::create(kb, kl, ids,
                                                         ValueRange{t, k});
                    return SmallVector<Value>{buildCountAssignment(
                        kb, kl, current[0], id, numExperts)};
                  });
            });
      },
      chunkTokens)[0];
  return chunkCounts;
}

// The plan's per-expert steps are element-wise or log-step loops rather
// than one loop over the experts: on a GPU the routing kernel spreads them
// over its threads, where a loop over E (256 at DeepSeek-V3) would be E
// dependent round trips to memory on one thread, the better part of a
// decode step's budget.

Value lowering::buildSumOfChunkCounts(OpBuilder &b, Location loc,
                                      Value chunkCounts, int64_t numExperts) {
  Value zero = indexConstant(b, loc, 0);
  Value numChunks = tensor::DimOp::create(b, loc, chunkCounts, 0);
  // Each expert's column summed over the chunks, the experts in parallel.
  return buildVectorFromIndices(
      b, loc, b.getIndexAttr(numExperts), b.getI32Type(),
      [&](OpBuilder &eb, Location el, Value e) -> Value {
        Value total = buildLoop(
            eb, el, zero, numChunks, {zero},
            [&](OpBuilder &cb, Location cl, Value c, ValueRange sum) {
              return SmallVector<Value>{arith::AddIOp::create(
                  cb, cl, sum[0], readIndex(cb, cl, chunkCounts, {c, e}))};
            })[0];
        return arith::IndexCastOp::create(eb, el, eb.getI32Type(), total);
      });
}

Value lowering::buildAlignedOffsets(OpBuilder &b, Location loc, Value counts,
                                    int64_t align) {
  int64_t numExperts =
      llvm::cast<RankedTensorType>(counts.getType()).getDimSize(0);
  Type i64 = b.getI64Type();
  OpFoldResult size = b.getIndexAttr(numExperts + 1);
  // offsets[i] = sum of the padded counts of the experts before i: a scan
  // of [0, padded...] in ceil(log2(E + 1)) steps, each adding the value
  // `distance` places back (Hillis-Steele), every element in parallel.
  Value scan = buildVectorFromIndices(
      b, loc, size, i64, [&](OpBuilder &eb, Location el, Value i) -> Value {
        Value first = arith::CmpIOp::create(eb, el, arith::CmpIPredicate::eq, i,
                                            indexConstant(eb, el, 0));
        Value previous = arith::SubIOp::create(
            eb, el, arith::MaxUIOp::create(eb, el, i, indexConstant(eb, el, 1)),
            indexConstant(eb, el, 1));
        Value alignment = indexConstant(eb, el, align);
        Value padded = arith::MulIOp::create(
            eb, el,
            arith::CeilDivUIOp::create(
                eb, el, readIndex(eb, el, counts, {previous}), alignment),
            alignment);
        return arith::IndexCastOp::create(
            eb, el, i64,
            arith::SelectOp::create(eb, el, first, indexConstant(eb, el, 0),
                                    padded));
      });
  // Each step writes the buffer of the one before the last (two buffers
  // in all).
  Value spare =
      tensor::EmptyOp::create(b, loc, ArrayRef<OpFoldResult>{size}, i64);
  for (int64_t distance = 1; distance < numExperts + 1; distance *= 2) {
    Value previous = scan;
    scan = buildVectorFromIndices(
        b, loc, std::exchange(spare, previous),
        [&](OpBuilder &eb, Location el, Value i) -> Value {
          Value back = indexConstant(eb, el, distance);
          Value reaches =
              arith::CmpIOp::create(eb, el, arith::CmpIPredicate::uge, i, back);
          Value from = arith::SelectOp::create(
              eb, el, reaches, arith::SubIOp::create(eb, el, i, back),
              indexConstant(eb, el, 0));
          Value added = arith::SelectOp::create(
              eb, el, reaches, readIndex(eb, el, previous, {from}),
              indexConstant(eb, el, 0));
          return arith::IndexCastOp::create(
              eb, el, i64,
              arith::AddIOp::create(eb, el, readIndex(eb, el, previous, {i}),
                                    added));
        });
  }
  return scan;
}

Placement lowering::buildPlacement(OpBuilder &b, Location loc, Value ids,
                                   int64_t numExperts, Value rowSources,
                                   Type countType, RowOfAssignment rowOf) {
  auto idsType = llvm::cast<RankedTensorType>(ids.getType());
  Value zero = indexConstant(b, loc, 0);
  Value eCount = indexConstant(b, loc, numExperts);
  Value numTokens = tensor::DimOp::create(b, loc, ids, 0);
  Value choices = indexConstant(b, loc, idsType.getDimSize(1));
  Value rowMap = tensor::EmptyOp::create(
      b, loc,
      ArrayRef<OpFoldResult>{numTokens, b.getIndexAttr(idsType.getDimSize(1))},
      b.getI32Type());
  Value counts =
      buildFilledVector(b, loc, b.getIndexAttr(numExperts), countType, 0);
  SmallVector<Value> placed = buildLoop(
      b, loc, zero, numTokens, {rowSources, rowMap, counts},
      [&](OpBuilder &tb, Location tl, Value t, ValueRange tokenCarried) {
        return buildLoop(
            tb, tl, zero, choices, tokenCarried,
            [&](OpBuilder &kb, Location kl, Value k, ValueRange carried) {
              Value e = readIndex(kb, kl, ids, {t, k});
              Value taken = isInRange(kb, kl, e, eCount);
              Value safe = arith::SelectOp::create(kb, kl, taken, e, zero);
              auto [row, fits] =
                  rowOf(kb, kl, safe, readIndex(kb, kl, carried[2], {safe}));
              Value isPlaced = arith::AndIOp::create(kb, kl, taken, fits);
              Value mapped = arith::SelectOp::create(kb, kl, isPlaced, row,
                                                     indexConstant(kb, kl, -1));
              Value map = writeIndex(kb, kl, mapped, carried[1], {t, k});
              SmallVector<Value> next =
                  buildIf(kb, kl, isPlaced,
                          [&](OpBuilder &ib, Location il) {
                            return SmallVector<Value>{
                                writeIndex(ib, il, t, carried[0], {mapped}),
                                incrementAt(ib, il, carried[2], {safe})};
                          },
                          {carried[0], carried[2]});
              return SmallVector<Value>{next[0], map, next[1]};
            });
      });
  return {placed[0], placed[1], placed[2]};
}

std::pair<Value, Value> lowering::buildPlacement(OpBuilder &b, Location loc,
                                                 Value ids, Value offsets,
                                                 Value rowSources) {
  int64_t numExperts =
      llvm::cast<RankedTensorType>(offsets.getType()).getDimSize(0) - 1;
  Placement placement = buildPlacement(
      b, loc, ids, numExperts, rowSources, b.getI32Type(),
      [&](OpBuilder &rb, Location rl, Value e, Value placed) {
        Value row =
            arith::AddIOp::create(rb, rl, readIndex(rb, rl, offsets, {e}), placed);
        return std::pair<Value, Value>{
            row, arith::ConstantIntOp::create(rb, rl, 1, 1)};
      });
  return {placement.rowSources, placement.rowMap};
}

std::pair<Value, Value>
lowering::buildChunkedPlacement(OpBuilder &b, Location loc, Value ids,
                                Value offsets, Value chunkCounts,
                                Value chunkTokens, Value rowSources) {
  int64_t numExperts =
      llvm::cast<RankedTensorType>(offsets.getType()).getDimSize(0) - 1;
  auto idsType = llvm::cast<RankedTensorType>(ids.getType());
  int64_t choices = idsType.getDimSize(1);
  Type i32 = b.getI32Type();
  Value zero = indexConstant(b, loc, 0);
  Value numTokens = tensor::DimOp::create(b, loc, ids, 0);
  Value numChunks = buildNumChunks(b, loc, numTokens, chunkTokens);
  SmallVector<OpFoldResult> unit(2, b.getIndexAttr(1));

  // starts[c][e]: expert e's first row in chunk c, offsets[e] plus the
  // counts of the chunks before; each expert's column in parallel.
  Value starts = buildChunkCountsInit(b, loc, numChunks, numExperts);
  auto perExpert = scf::ForallOp::create(
      b, loc, ArrayRef<OpFoldResult>{b.getIndexAttr(numExperts)},
      ValueRange{starts}, std::nullopt);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(perExpert.getTerminator());
    Value e = perExpert.getInductionVar(0);
    Value all = perExpert.getRegionIterArgs()[0];
    SmallVector<OpFoldResult> at = {b.getIndexAttr(0), e};
    SmallVector<OpFoldResult> size = {numChunks, b.getIndexAttr(1)};
    auto columnType = RankedTensorType::get({ShapedType::kDynamic, 1}, i32);
    Value column =
        tensor::ExtractSliceOp::create(b, loc, columnType, all, at, size, unit);
    Value filled = buildLoop(
        b, loc, zero, numChunks, {column, readIndex(b, loc, offsets, {e})},
        [&](OpBuilder &cb, Location cl, Value c, ValueRange carried) {
          Value next = arith::AddIOp::create(
              cb, cl, carried[1], readIndex(cb, cl, chunkCounts, {c, e}));
          return SmallVector<Value>{writeIndex(cb, cl, carried[1], carried[0],
                                               {c, indexConstant(cb, cl, 0)}),
                                    next};
        })[0];
    b.setInsertionPointToStart(perExpert.getTerminator().getBody());
    tensor::ParallelInsertSliceOp::create(b, loc, filled, all, at, size, unit);
  }
  starts = perExpert.getResult(0);

  // Each chunk's assignments in order from its starts: the row map.
  Value rowMap = tensor::EmptyOp::create(
      b, loc, ArrayRef<OpFoldResult>{numTokens, b.getIndexAttr(choices)}, i32);
  Value eCount = indexConstant(b, loc, numExperts);
  rowMap = buildChunkParallel(
      b, loc, numTokens, {rowMap}, {starts},
      [&](OpBuilder &cb, Location cl, Value first, Value count,
          ValueRange tokenRows, ValueRange chunkRows) {
        return buildLoop(
            cb, cl, zero, count, {tokenRows[0], chunkRows[0]},
            [&](OpBuilder &tb, Location tl, Value i, ValueRange tokenCarried) {
              Value t = arith::AddIOp::create(tb, tl, first, i);
              return buildLoop(
                  tb, tl, zero, indexConstant(tb, tl, choices), tokenCarried,
                  [&](OpBuilder &kb, Location kl, Value k, ValueRange carried) {
                    Value e = readIndex(kb, kl, ids, {t, k});
                    Value taken = isInRange(kb, kl, e, eCount);
                    Value safe =
                        arith::SelectOp::create(kb, kl, taken, e, zero);
                    Value row = readIndex(kb, kl, carried[1], {zero, safe});
                    Value mapped = arith::SelectOp::create(
                        kb, kl, taken, row, indexConstant(kb, kl, -1));
                    Value map = writeIndex(kb, kl, mapped, carried[0], {i, k});
                    Value cursors =
                        buildIf(kb, kl, taken,
                                [&](OpBuilder &ib, Location il) {
                                  return SmallVector<Value>{incrementAt(
                                      ib, il, carried[1], {zero, safe})};
                                },
                                {carried[1]})[0];
                    return SmallVector<Value>{map, cursors};
                  });
            });
      },
      chunkTokens)[0];

  // Each row's source token, scattered by the tokens in parallel: every
  // assignment writes its own element, a taken one its row's, one not
  // taken a slot of its own past the rows (dropped after).
  Value rows = tensor::DimOp::create(b, loc, rowSources, 0);
  OpFoldResult rowsSize = tensor::getMixedSize(b, loc, rowSources, 0);
  Value assignments =
      arith::MulIOp::create(b, loc, numTokens, indexConstant(b, loc, choices));
  Value padded = tensor::EmptyOp::create(
      b, loc,
      ArrayRef<OpFoldResult>{
          arith::AddIOp::create(b, loc, rows, assignments).getResult()},
      i32);
  padded = tensor::InsertSliceOp::create(
      b, loc, rowSources, padded, ArrayRef<OpFoldResult>{b.getIndexAttr(0)},
      ArrayRef<OpFoldResult>{rowsSize},
      ArrayRef<OpFoldResult>{b.getIndexAttr(1)});
  auto perToken =
      scf::ForallOp::create(b, loc, ArrayRef<OpFoldResult>{numTokens},
                            ValueRange{padded}, std::nullopt);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(perToken.getTerminator());
    Value t = perToken.getInductionVar(0);
    Value token = tensor::FromElementsOp::create(
        b, loc, RankedTensorType::get({1}, i32),
        ValueRange{arith::IndexCastOp::create(b, loc, i32, t)});
    SmallVector<Value> places;
    for (int64_t k = 0; k < choices; ++k) {
      Value kk = indexConstant(b, loc, k);
      Value row = tensor::ExtractOp::create(b, loc, rowMap, ValueRange{t, kk});
      Value placed =
          arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge, row,
                                arith::ConstantIntOp::create(b, loc, i32, 0));
      Value own = arith::AddIOp::create(
          b, loc, rows,
          arith::AddIOp::create(
              b, loc,
              arith::MulIOp::create(b, loc, t, indexConstant(b, loc, choices)),
              kk));
      places.push_back(arith::SelectOp::create(
          b, loc, placed,
          arith::IndexCastOp::create(b, loc, b.getIndexType(), row), own));
    }
    b.setInsertionPointToStart(perToken.getTerminator().getBody());
    for (Value place : places)
      tensor::ParallelInsertSliceOp::create(
          b, loc, token, perToken.getRegionIterArgs()[0],
          ArrayRef<OpFoldResult>{place},
          ArrayRef<OpFoldResult>{b.getIndexAttr(1)},
          ArrayRef<OpFoldResult>{b.getIndexAttr(1)});
  }
  Value sources = tensor::ExtractSliceOp::create(
      b, loc, llvm::cast<RankedTensorType>(rowSources.getType()),
      perToken.getResult(0), ArrayRef<OpFoldResult>{b.getIndexAttr(0)},
      ArrayRef<OpFoldResult>{rowsSize},
      ArrayRef<OpFoldResult>{b.getIndexAttr(1)});
  return {sources, rowMap};
}

std::pair<Value, Value> lowering::buildBlockTable(OpBuilder &b, Location loc,
                                                  Value counts, Value offsets,
                                                  Value numBlocks,
                                                  int64_t blockRows) {
  int64_t numExperts =
      llvm::cast<RankedTensorType>(counts.getType()).getDimSize(0);
  Type i32 = b.getI32Type();
  // The expert owning block b (its first row `first`): the last expert e
  // with offsets[e] <= first (an empty expert's offset equals the next
  // one's), by binary search over the sorted offsets, every block in
  // parallel; none at or past offsets[E]. Its filled rows: the expert's
  // rows past the block's start, at most a block's.
  int64_t steps = llvm::Log2_64(static_cast<uint64_t>(numExperts)) + 1;
  auto owner = [&](OpBuilder &eb, Location el, Value block) {
    Value first =
        arith::MulIOp::create(eb, el, block, indexConstant(eb, el, blockRows));
    // [lo, lo + n): the experts not yet known to start after `first`.
    SmallVector<Value> range = {indexConstant(eb, el, 0),
                                indexConstant(eb, el, numExperts)};
    for (int64_t step = 0; step < steps; ++step) {
      Value lo = range[0], n = range[1];
      Value half = arith::DivUIOp::create(eb, el, n, indexConstant(eb, el, 2));
      Value mid = arith::AddIOp::create(eb, el, lo, half);
      Value left = arith::CmpIOp::create(eb, el, arith::CmpIPredicate::ugt, n,
                                         indexConstant(eb, el, 0));
      Value safeMid = arith::MinUIOp::create(
          eb, el, mid, indexConstant(eb, el, numExperts - 1));
      Value starts =
          arith::CmpIOp::create(eb, el, arith::CmpIPredicate::ule,
                                readIndex(eb, el, offsets, {safeMid}), first);
      Value after = arith::AndIOp::create(eb, el, left, starts);
      Value one = indexConstant(eb, el, 1);
      // offsets[mid] <= first: the answer is past mid; else before it.
      range[0] = arith::SelectOp::create(
          eb, el, after, arith::AddIOp::create(eb, el, mid, one), lo);
      Value rest = arith::SubIOp::create(
          eb, el, arith::SubIOp::create(eb, el, n, half), one);
      range[1] = arith::SelectOp::create(
          eb, el, left, arith::SelectOp::create(eb, el, starts, rest, half), n);
    }
    // offsets[0] = 0 <= first: at least one expert starts at or before it.
    Value expert = arith::SubIOp::create(
        eb, el,
        arith::MaxUIOp::create(eb, el, range[0], indexConstant(eb, el, 1)),
        indexConstant(eb, el, 1));
    Value owned = arith::CmpIOp::create(
        eb, el, arith::CmpIPredicate::ult, first,
        readIndex(eb, el, offsets, {indexConstant(eb, el, numExperts)}));
    return std::make_tuple(first, expert, owned);
  };
  Value blockExperts = buildVectorFromIndices(
      b, loc, numBlocks, i32,
      [&](OpBuilder &eb, Location el, Value block) -> Value {
        auto [first, expert, owned] = owner(eb, el, block);
        return arith::SelectOp::create(
            eb, el, owned, arith::IndexCastOp::create(eb, el, i32, expert),
            arith::ConstantIntOp::create(eb, el, i32, -1));
      });
  Value blockSizes = buildVectorFromIndices(
      b, loc, numBlocks, i32,
      [&](OpBuilder &eb, Location el, Value block) -> Value {
        auto [first, expert, owned] = owner(eb, el, block);
        Value before = arith::SubIOp::create(
            eb, el, first, readIndex(eb, el, offsets, {expert}));
        Value count = readIndex(eb, el, counts, {expert});
        // count - before, clamped to [0, BM] (count >= 0).
        Value left = arith::SubIOp::create(
            eb, el, arith::MaxUIOp::create(eb, el, count, before), before);
        Value filled = arith::MinUIOp::create(eb, el, left,
                                              indexConstant(eb, el, blockRows));
        return arith::SelectOp::create(
            eb, el, owned, arith::IndexCastOp::create(eb, el, i32, filled),
            arith::ConstantIntOp::create(eb, el, i32, 0));
      });
  return {blockExperts, blockSizes};
}
