//===- LowerStatistics.cpp - Routing statistics of moe.gate ---------------===//
//
// The statistics results of moe.gate (docs/Routing.md, "Statistics") as scf
// loops over the routing tensors, accumulated in i64 (counts) and f32
// (losses). Per-expert counts and sums are scatter-adds guarded by the id's
// range, so ids of -1 (not taken) are skipped without reading out of bounds.
// Every loss is 0 when there are no tokens.
//
//===----------------------------------------------------------------------===//

#include "GateLowering.h"
#include "LoweringUtils.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

#include <limits>

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::lowering;

namespace {

/// A constant `[E]` tensor of zeros of `elementType`.
Value zeroVector(OpBuilder &b, Location loc, int64_t numExperts,
                 Type elementType) {
  auto type = RankedTensorType::get({numExperts}, elementType);
  return arith::ConstantOp::create(b, loc, type,
                                   DenseElementsAttr::get(
                                       type, b.getZeroAttr(elementType)));
}

/// Adds `value` to `vector[id]` when `id` (i32) is a valid expert index.
Value scatterAdd(OpBuilder &b, Location loc, Value vector, Value id,
                 Value value, int64_t numExperts) {
  Value index = arith::IndexCastOp::create(b, loc, b.getIndexType(), id);
  Value valid = isInRange(b, loc, index, indexConstant(b, loc, numExperts));
  return buildIf(
      b, loc, valid,
      [&](OpBuilder &nb, Location nl) {
        Value old = tensor::ExtractOp::create(nb, nl, vector, index);
        Value sum = isa<FloatType>(value.getType())
                        ? arith::AddFOp::create(nb, nl, old, value).getResult()
                        : arith::AddIOp::create(nb, nl, old, value).getResult();
        return SmallVector<Value>{
            tensor::InsertOp::create(nb, nl, sum, vector, index)};
      },
      ValueRange{vector})[0];
}

/// Loops over every (t, c) of a `[T,C]` tensor, carrying `init`.
Value forEachChoice(OpBuilder &b, Location loc, Value choices, Value init,
                    function_ref<Value(OpBuilder &, Location, Value t,
                                       Value c, Value carried)>
                        body) {
  Value zero = indexConstant(b, loc, 0);
  Value numTokens = tensor::DimOp::create(b, loc, choices, 0);
  Value numChoices = tensor::DimOp::create(b, loc, choices, 1);
  return buildLoop(
      b, loc, zero, numTokens, ValueRange{init},
      [&](OpBuilder &tb, Location tl, Value t, ValueRange tokenCarried) {
        return buildLoop(
            tb, tl, zero, numChoices, tokenCarried,
            [&](OpBuilder &cb, Location cl, Value c, ValueRange carried) {
              return SmallVector<Value>{body(cb, cl, t, c, carried[0])};
            });
      })[0];
}

/// `[E]` i64: how many entries of `ids` `[T,C]` (i32) name each expert.
Value buildExpertCounts(OpBuilder &b, Location loc, Value ids,
                        int64_t numExperts) {
  Value one = arith::ConstantIntOp::create(b, loc, b.getI64Type(), 1);
  return forEachChoice(
      b, loc, ids, zeroVector(b, loc, numExperts, b.getI64Type()),
      [&](OpBuilder &nb, Location nl, Value t, Value c, Value counts) {
        Value id = tensor::ExtractOp::create(nb, nl, ids, ValueRange{t, c});
        return scatterAdd(nb, nl, counts, id, one, numExperts);
      });
}

/// `[E]` f32: the sum of `weights[t,c]` over the entries where `ids[t,c]` is
/// each expert (the column sums of the dense `[T,E]` combine matrix).
Value buildExpertWeightSums(OpBuilder &b, Location loc, Value weights,
                            Value ids, int64_t numExperts) {
  return forEachChoice(
      b, loc, ids, zeroVector(b, loc, numExperts, b.getF32Type()),
      [&](OpBuilder &nb, Location nl, Value t, Value c, Value sums) {
        Value id = tensor::ExtractOp::create(nb, nl, ids, ValueRange{t, c});
        Value w = tensor::ExtractOp::create(nb, nl, weights, ValueRange{t, c});
        return scatterAdd(nb, nl, sums, id, w, numExperts);
      });
}

/// Folds the elements of a rank-1 tensor: `combine(acc, element)` from
/// `init`.
Value reduceVector(OpBuilder &b, Location loc, Value vector, Value init,
                   function_ref<Value(OpBuilder &, Location, Value, Value)>
                       combine) {
  Value size = tensor::DimOp::create(b, loc, vector, 0);
  return buildLoop(
      b, loc, indexConstant(b, loc, 0), size, ValueRange{init},
      [&](OpBuilder &nb, Location nl, Value i, ValueRange carried) {
        Value v = tensor::ExtractOp::create(nb, nl, vector, i);
        return SmallVector<Value>{combine(nb, nl, carried[0], v)};
      })[0];
}

Value addF(OpBuilder &b, Location loc, Value x, Value y) {
  return arith::AddFOp::create(b, loc, x, y);
}
Value mulF(OpBuilder &b, Location loc, Value x, Value y) {
  return arith::MulFOp::create(b, loc, x, y);
}
Value divF(OpBuilder &b, Location loc, Value x, Value y) {
  return arith::DivFOp::create(b, loc, x, y);
}

/// The token count T as f32, and whether it is 0.
std::pair<Value, Value> tokenCount(OpBuilder &b, Location loc, Value scores) {
  Value numTokens = tensor::DimOp::create(b, loc, scores, 0);
  Value isEmpty =
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, numTokens,
                            indexConstant(b, loc, 0));
  Value asInt =
      arith::IndexCastOp::create(b, loc, b.getI64Type(), numTokens);
  Value asFloat = arith::SIToFPOp::create(b, loc, b.getF32Type(), asInt);
  return {asFloat, isEmpty};
}

/// `value`, or 0 when there are no tokens.
Value zeroIfEmpty(OpBuilder &b, Location loc, Value isEmpty, Value value) {
  return arith::SelectOp::create(b, loc, isEmpty, f32Constant(b, loc, 0.0),
                                 value);
}

/// `E * sum_e f_e * P_e` with `f_e` the fraction of tokens whose first choice
/// is e and `P_e` the mean router probability of e (sigmoid scores are
/// normalized per token first).
Value buildLoadBalancingLoss(OpBuilder &b, Location loc, RoutingAttr routing,
                             const RoutingStatisticsInputs &in,
                             int64_t numExperts) {
  Value zero = indexConstant(b, loc, 0);
  Value eCount = indexConstant(b, loc, numExperts);
  Value numTokens = tensor::DimOp::create(b, loc, in.scores, 0);
  Type f32 = b.getF32Type();
  Value one = arith::ConstantIntOp::create(b, loc, b.getI64Type(), 1);
  bool normalize = routing.getScoring() == ScoringFunc::Sigmoid;
  // Per token: the first choice counted, the probabilities summed.
  SmallVector<Value> sums = buildLoop(
      b, loc, zero, numTokens,
      ValueRange{zeroVector(b, loc, numExperts, b.getI64Type()),
                 zeroVector(b, loc, numExperts, f32)},
      [&](OpBuilder &tb, Location tl, Value t, ValueRange carried) {
        Value first =
            tensor::ExtractOp::create(tb, tl, in.firstChoice, ValueRange{t, zero});
        Value counts = scatterAdd(tb, tl, carried[0], first, one, numExperts);
        Value rowSum;
        if (normalize)
          rowSum = buildLoop(
              tb, tl, zero, eCount, ValueRange{f32Constant(tb, tl, 0.0)},
              [&](OpBuilder &eb, Location el, Value e, ValueRange acc) {
                Value s = tensor::ExtractOp::create(eb, el, in.scores,
                                                    ValueRange{t, e});
                return SmallVector<Value>{addF(eb, el, acc[0], s)};
              })[0];
        Value probSums = buildLoop(
            tb, tl, zero, eCount, ValueRange{carried[1]},
            [&](OpBuilder &eb, Location el, Value e, ValueRange acc) {
              Value p = tensor::ExtractOp::create(eb, el, in.scores,
                                                  ValueRange{t, e});
              if (rowSum)
                p = divF(eb, el, p, rowSum);
              Value old = tensor::ExtractOp::create(eb, el, acc[0], e);
              return SmallVector<Value>{tensor::InsertOp::create(
                  eb, el, addF(eb, el, old, p), acc[0], e)};
            })[0];
        return SmallVector<Value>{counts, probSums};
      });
  // sum_e count_e * probSum_e, then * E / T^2.
  Value dot = buildLoop(
      b, loc, zero, eCount, ValueRange{f32Constant(b, loc, 0.0)},
      [&](OpBuilder &nb, Location nl, Value e, ValueRange acc) {
        Value count = tensor::ExtractOp::create(nb, nl, sums[0], e);
        Value countF = arith::SIToFPOp::create(nb, nl, f32, count);
        Value probSum = tensor::ExtractOp::create(nb, nl, sums[1], e);
        return SmallVector<Value>{
            addF(nb, nl, acc[0], mulF(nb, nl, countF, probSum))};
      })[0];
  auto [tokens, isEmpty] = tokenCount(b, loc, in.scores);
  Value loss = divF(b, loc,
                    mulF(b, loc, dot, f32Constant(b, loc, double(numExperts))),
                    mulF(b, loc, tokens, tokens));
  return zeroIfEmpty(b, loc, isEmpty, loss);
}

/// `mean_t logsumexp(logits[t])^2` (ST-MoE router z-loss).
Value buildZLoss(OpBuilder &b, Location loc, Value logits,
                 int64_t numExperts) {
  Value zero = indexConstant(b, loc, 0);
  Value eCount = indexConstant(b, loc, numExperts);
  Value numTokens = tensor::DimOp::create(b, loc, logits, 0);
  Value total = buildLoop(
      b, loc, zero, numTokens, ValueRange{f32Constant(b, loc, 0.0)},
      [&](OpBuilder &tb, Location tl, Value t, ValueRange acc) {
        auto logit = [&](OpBuilder &eb, Location el, Value e) {
          return tensor::ExtractOp::create(eb, el, logits, ValueRange{t, e})
              .getResult();
        };
        Value max = buildLoop(
            tb, tl, zero, eCount,
            ValueRange{f32Constant(tb, tl,
                                   -std::numeric_limits<double>::infinity())},
            [&](OpBuilder &eb, Location el, Value e, ValueRange m) {
              return SmallVector<Value>{arith::MaximumFOp::create(
                  eb, el, m[0], logit(eb, el, e))};
            })[0];
        Value sumExp = buildLoop(
            tb, tl, zero, eCount, ValueRange{f32Constant(tb, tl, 0.0)},
            [&](OpBuilder &eb, Location el, Value e, ValueRange s) {
              Value shifted = arith::SubFOp::create(eb, el, logit(eb, el, e),
                                                    max);
              return SmallVector<Value>{
                  addF(eb, el, s[0], math::ExpOp::create(eb, el, shifted))};
            })[0];
        Value lse = addF(tb, tl, max, math::LogOp::create(tb, tl, sumExp));
        return SmallVector<Value>{addF(tb, tl, acc[0], mulF(tb, tl, lse, lse))};
      })[0];
  auto [tokens, isEmpty] = tokenCount(b, loc, logits);
  return zeroIfEmpty(b, loc, isEmpty, divF(b, loc, total, tokens));
}

/// `CV(importance)^2 = var / mean^2` of the per-expert sums of the combine
/// weights (population variance); 0 when the mean is 0.
Value buildImportanceLoss(OpBuilder &b, Location loc,
                          const RoutingStatisticsInputs &in,
                          int64_t numExperts) {
  Value importance =
      buildExpertWeightSums(b, loc, in.weights, in.ids, numExperts);
  Value numExpertsF = f32Constant(b, loc, double(numExperts));
  Value mean = divF(b, loc,
                    reduceVector(b, loc, importance, f32Constant(b, loc, 0.0),
                                 addF),
                    numExpertsF);
  Value squares = reduceVector(
      b, loc, importance, f32Constant(b, loc, 0.0),
      [&](OpBuilder &nb, Location nl, Value acc, Value v) {
        Value d = arith::SubFOp::create(nb, nl, v, mean);
        return addF(nb, nl, acc, mulF(nb, nl, d, d));
      });
  Value variance = divF(b, loc, squares, numExpertsF);
  Value zeroMean = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OEQ,
                                         mean, f32Constant(b, loc, 0.0));
  return arith::SelectOp::create(b, loc, zeroMean, f32Constant(b, loc, 0.0),
                                 divF(b, loc, variance, mulF(b, loc, mean, mean)));
}

/// A 0-d tensor holding `scalar`.
Value scalarTensor(OpBuilder &b, Location loc, Value scalar) {
  return tensor::FromElementsOp::create(
      b, loc, RankedTensorType::get({}, scalar.getType()), ValueRange{scalar});
}

/// The sum of a `[E]` i64 vector.
Value sumCounts(OpBuilder &b, Location loc, Value counts) {
  return reduceVector(
      b, loc, counts, arith::ConstantIntOp::create(b, loc, b.getI64Type(), 0),
      [](OpBuilder &nb, Location nl, Value acc, Value v) {
        return arith::AddIOp::create(nb, nl, acc, v).getResult();
      });
}

} // namespace

SmallVector<Value> mlir::moe::lowering::buildRoutingStatistics(
    OpBuilder &b, Location loc, RoutingAttr routing,
    ArrayRef<Statistic> statistics, const RoutingStatisticsInputs &in,
    int64_t numExperts) {
  // The counts are shared by several statistics: build each once.
  Value kept, beforeDrop;
  auto keptCounts = [&] {
    if (!kept)
      kept = buildExpertCounts(b, loc, in.ids, numExperts);
    return kept;
  };
  auto chosenCounts = [&] {
    if (!beforeDrop)
      beforeDrop = buildExpertCounts(b, loc, in.chosenIds, numExperts);
    return beforeDrop;
  };
  SmallVector<Value> results;
  for (Statistic statistic : statistics) {
    switch (statistic) {
    case Statistic::TokensPerExpert:
      results.push_back(keptCounts());
      break;
    case Statistic::TokensPerExpertBeforeDrop:
      results.push_back(chosenCounts());
      break;
    case Statistic::DroppedCount:
      results.push_back(scalarTensor(
          b, loc,
          arith::SubIOp::create(b, loc, sumCounts(b, loc, chosenCounts()),
                                sumCounts(b, loc, keptCounts()))));
      break;
    case Statistic::LoadBalancingLoss:
      results.push_back(scalarTensor(
          b, loc, buildLoadBalancingLoss(b, loc, routing, in, numExperts)));
      break;
    case Statistic::ZLoss:
      results.push_back(
          scalarTensor(b, loc, buildZLoss(b, loc, in.logits, numExperts)));
      break;
    case Statistic::ImportanceLoss:
      results.push_back(
          scalarTensor(b, loc, buildImportanceLoss(b, loc, in, numExperts)));
      break;
    }
  }
  return results;
}
