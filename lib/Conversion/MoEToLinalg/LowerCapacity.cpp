//===- LowerCapacity.cpp - Token groups, capacity, expert choice ----------===//
//
// Capacity-limited routing on tensors with a dynamic T. Token groups are
// consecutive runs of S tokens (the last may be shorter and gets the capacity
// of its own size). Token choice places the assignments of a group rank by
// rank into per-expert counters and drops those that reach the capacity;
// expert choice ranks each token among its group for every expert. Both are
// quadratic at worst (score priority ranks S tokens against each other): this
// is the reference lowering, not the fast path.
//
//===----------------------------------------------------------------------===//

#include "GateLowering.h"
#include "LoweringUtils.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

#include <limits>

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::lowering;

namespace {

Value minIndex(OpBuilder &b, Location loc, Value x, Value y) {
  return arith::MinSIOp::create(b, loc, x, y);
}

/// `index` -> f64.
Value toF64(OpBuilder &b, Location loc, Value index) {
  Value i64 = arith::IndexCastOp::create(b, loc, b.getI64Type(), index);
  return arith::SIToFPOp::create(b, loc, b.getF64Type(), i64);
}

/// An integral f64 -> `index`.
Value toIndex(OpBuilder &b, Location loc, Value f64) {
  Value i64 = arith::FPToSIOp::create(b, loc, b.getI64Type(), f64);
  return arith::IndexCastOp::create(b, loc, b.getIndexType(), i64);
}

Value f64Constant(OpBuilder &b, Location loc, double value) {
  return arith::ConstantOp::create(b, loc, b.getF64FloatAttr(value));
}

/// The rank of `(score, index)` among the entries `first .. last-1` of a
/// sequence: how many rank before it (`ranksBefore`). `scoreAt(i)` reads
/// entry i.
Value buildRank(OpBuilder &b, Location loc, Value first, Value last,
                Value score, Value index,
                function_ref<Value(OpBuilder &, Location, Value)> scoreAt) {
  Value zero = indexConstant(b, loc, 0);
  Value one = indexConstant(b, loc, 1);
  return buildLoop(
      b, loc, first, last, ValueRange{zero},
      [&](OpBuilder &lb, Location ll, Value other, ValueRange carried) {
        Value before =
            ranksBefore(lb, ll, scoreAt(lb, ll, other), other, score, index);
        Value step = arith::SelectOp::create(lb, ll, before, one, zero);
        return SmallVector<Value>{
            arith::AddIOp::create(lb, ll, carried[0], step)};
      })[0];
}

/// The first token of the group of token `t` and the group's end.
std::pair<Value, Value> groupBounds(OpBuilder &b, Location loc, Value t,
                                    Value groupSize, Value numTokens) {
  Value index = arith::DivUIOp::create(b, loc, t, groupSize);
  Value first = arith::MulIOp::create(b, loc, index, groupSize);
  Value end = minIndex(b, loc, arith::AddIOp::create(b, loc, first, groupSize),
                       numTokens);
  return {first, end};
}

/// `[T]` f32: the largest score of each token (NaN propagates).
Value buildTopScores(OpBuilder &b, Location loc, Value scores) {
  return buildRowReduction(
      b, loc, scores, -std::numeric_limits<double>::infinity(),
      [](OpBuilder &nb, Location nl, Value acc, Value v) {
        return arith::MaximumFOp::create(nb, nl, acc, v).getResult();
      });
}

/// The tokens `first .. end-1` in descending order of `topScores` (ties to
/// the lower token): a `[end - first]` index tensor.
Value buildScoreOrder(OpBuilder &b, Location loc, Value topScores,
                      Value first, Value end) {
  Value count = arith::SubIOp::create(b, loc, end, first);
  Value order = tensor::EmptyOp::create(
      b, loc, ArrayRef<OpFoldResult>{count}, b.getIndexType());
  auto scoreAt = [&](OpBuilder &nb, Location nl, Value u) -> Value {
    return tensor::ExtractOp::create(nb, nl, topScores, ValueRange{u});
  };
  return buildLoop(
      b, loc, first, end, ValueRange{order},
      [&](OpBuilder &lb, Location ll, Value t, ValueRange carried) {
        Value rank =
            buildRank(lb, ll, first, end, scoreAt(lb, ll, t), t, scoreAt);
        return SmallVector<Value>{
            tensor::InsertOp::create(lb, ll, t, carried[0], ValueRange{rank})};
      })[0];
}

} // namespace

Value lowering::buildGroupSize(OpBuilder &b, Location loc, RoutingAttr routing,
                               Value numTokens) {
  if (routing.getGroupSize() > 0)
    return indexConstant(b, loc, routing.getGroupSize());
  return arith::MaxUIOp::create(b, loc, numTokens, indexConstant(b, loc, 1));
}

Value lowering::buildGroupCapacity(OpBuilder &b, Location loc,
                                   RoutingAttr routing, Value groupTokens,
                                   int64_t numExperts) {
  switch (routing.getCapacityKind()) {
  case CapacityKind::None:
    break;
  case CapacityKind::Fixed:
    return indexConstant(b, loc, routing.getFixedCapacity());
  case CapacityKind::Fraction: {
    Value raw = arith::MulFOp::create(
        b, loc, f64Constant(b, loc, routing.getCapacityFactorValue()),
        toF64(b, loc, groupTokens));
    return toIndex(b, loc, math::CeilOp::create(b, loc, raw));
  }
  case CapacityKind::Factor: {
    int64_t choices = routing.isExpertChoice() ? 1 : routing.getTopK();
    // ((F * S) * K) / E, left to right as the numpy reference.
    Value raw = arith::MulFOp::create(
        b, loc, f64Constant(b, loc, routing.getCapacityFactorValue()),
        toF64(b, loc, groupTokens));
    raw = arith::MulFOp::create(b, loc, raw,
                                f64Constant(b, loc, double(choices)));
    raw = arith::DivFOp::create(b, loc, raw,
                                f64Constant(b, loc, double(numExperts)));
    Value rounded;
    switch (routing.getRounding()) {
    case Rounding::Ceil:
      rounded = math::CeilOp::create(b, loc, raw);
      break;
    case Rounding::Floor:
      rounded = math::FloorOp::create(b, loc, raw);
      break;
    case Rounding::Round:
      rounded = math::RoundEvenOp::create(b, loc, raw);
      break;
    }
    return arith::MaxSIOp::create(
        b, loc, toIndex(b, loc, rounded),
        indexConstant(b, loc, routing.getMinCapacity()));
  }
  }
  llvm_unreachable("capacity of a dropless routing");
}

Value lowering::buildCapacityDrop(OpBuilder &b, Location loc,
                                  RoutingAttr routing, Value scores, Value ids,
                                  int64_t numExperts) {
  Value zero = indexConstant(b, loc, 0);
  Value one = indexConstant(b, loc, 1);
  Value numTokens = tensor::DimOp::create(b, loc, ids, 0);
  Value groupSize = buildGroupSize(b, loc, routing, numTokens);
  Value numGroups = arith::CeilDivUIOp::create(b, loc, numTokens, groupSize);
  bool byScore = routing.getPriority() == Priority::Score;
  Value topScores = byScore ? buildTopScores(b, loc, scores) : Value();
  Value eCount = indexConstant(b, loc, numExperts);
  Value kCount = indexConstant(b, loc, routing.getTopK());
  Type i32 = b.getI32Type();

  return buildLoop(
      b, loc, zero, numGroups, ValueRange{ids},
      [&](OpBuilder &gb, Location gl, Value g, ValueRange groupCarried) {
        Value start = arith::MulIOp::create(gb, gl, g, groupSize);
        Value end = minIndex(
            gb, gl, arith::AddIOp::create(gb, gl, start, groupSize),
            numTokens);
        Value size = arith::SubIOp::create(gb, gl, end, start);
        Value capacity =
            buildGroupCapacity(gb, gl, routing, size, numExperts);
        Value order =
            byScore ? buildScoreOrder(gb, gl, topScores, start, end) : Value();
        Value empty = tensor::EmptyOp::create(
            gb, gl, ArrayRef<int64_t>{numExperts}, gb.getIndexType());
        Value counts =
            linalg::FillOp::create(gb, gl, zero, empty).getResult(0);
        return SmallVector<Value>{buildLoop(
            gb, gl, zero, kCount, ValueRange{groupCarried[0], counts},
            [&](OpBuilder &rb, Location rl, Value rank, ValueRange rankIn) {
              return buildLoop(
                  rb, rl, zero, size, rankIn,
                  [&](OpBuilder &ib, Location il, Value i, ValueRange in) {
                    Value t = byScore
                                  ? tensor::ExtractOp::create(ib, il, order,
                                                              ValueRange{i})
                                        .getResult()
                                  : arith::AddIOp::create(ib, il, start, i)
                                        .getResult();
                    Value id = tensor::ExtractOp::create(ib, il, in[0],
                                                         ValueRange{t, rank});
                    Value e = arith::IndexCastOp::create(
                        ib, il, ib.getIndexType(), id);
                    return buildIf(
                        ib, il, isInRange(ib, il, e, eCount),
                        [&](OpBuilder &tb, Location tl) {
                          Value position = tensor::ExtractOp::create(
                              tb, tl, in[1], ValueRange{e});
                          Value next = tensor::InsertOp::create(
                              tb, tl, arith::AddIOp::create(tb, tl, position,
                                                            one),
                              in[1], ValueRange{e});
                          Value over = arith::CmpIOp::create(
                              tb, tl, arith::CmpIPredicate::sge, position,
                              capacity);
                          Value kept = arith::SelectOp::create(
                              tb, tl, over,
                              arith::ConstantIntOp::create(tb, tl, i32, -1),
                              id);
                          Value updated = tensor::InsertOp::create(
                              tb, tl, kept, in[0], ValueRange{t, rank});
                          return SmallVector<Value>{updated, next};
                        },
                        in);
                  });
            })[0]};
      })[0];
}

Value lowering::buildExpertChoiceMask(OpBuilder &b, Location loc,
                                      RoutingAttr routing, Value selection,
                                      int64_t numExperts) {
  Value numTokens = tensor::DimOp::create(b, loc, selection, 0);
  Value groupSize = buildGroupSize(b, loc, routing, numTokens);
  return buildTensorFromIndices(
      b, loc, selection, b.getIndexAttr(numExperts), b.getI1Type(),
      [&](OpBuilder &nb, Location nl, Value t, Value e) {
        auto [first, end] = groupBounds(nb, nl, t, groupSize, numTokens);
        Value size = arith::SubIOp::create(nb, nl, end, first);
        Value take = minIndex(
            nb, nl, buildGroupCapacity(nb, nl, routing, size, numExperts),
            size);
        auto scoreAt = [&](OpBuilder &sb, Location sl, Value u) -> Value {
          return tensor::ExtractOp::create(sb, sl, selection,
                                           ValueRange{u, e});
        };
        Value rank = buildRank(nb, nl, first, end, scoreAt(nb, nl, t), t,
                               scoreAt);
        return arith::CmpIOp::create(nb, nl, arith::CmpIPredicate::slt, rank,
                                     take)
            .getResult();
      });
}
