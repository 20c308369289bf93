//===- LowerGate.cpp - moe.gate to linalg and scf --------------------------===//
//
// Scores and selection scores (noise on the logits first, then the
// selection-only bias) as element-wise linalg.generic ops over [T,E], the
// kept groups of group-limited routing over [T,G], then:
// - token choice: per token the K best experts in one total order (score
//   descending, NaN first, ties to the lower index): for K <= 16 one pass
//   over the experts keeping the K best sorted in loop-carried values (an
//   expert enters when it ranks before the K-th and bubbles into place);
//   for larger K, K arg-max passes, each picking the best expert ranking
//   after the previous pick, so no scratch buffer of taken experts is
//   needed. Random second choices and
//   capacity (LowerCapacity.cpp) set dropped ids to -1; the combine weights
//   are renormalized and scaled last;
// - expert choice: each expert's top-C tokens per group (LowerCapacity.cpp).
//
//===----------------------------------------------------------------------===//

#include "GateLowering.h"
#include "LoweringUtils.h"
#include "moe/Conversion/MoEToLinalg/MoEToLinalg.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Transforms/DialectConversion.h"

#include "moe/Dialect/MoE/Utils/TensorBuilders.h"

#include <limits>

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::lowering;

namespace {

/// Reads element (i, j) of a rank-2 tensor.
Value extract2D(OpBuilder &b, Location loc, Value tensor, Value i, Value j) {
  return tensor::ExtractOp::create(b, loc, tensor, ValueRange{i, j});
}

/// Which index of a `[T,E]` element a vector operand is read at.
enum class VectorIndex { Row, Column };

/// `[T,E]` f32: `fn(matrix[t,e], vector[t or e])`.
Value mapWithVector(OpBuilder &b, Location loc, Value matrix, Value vector,
                    VectorIndex index, int64_t cols,
                    function_ref<Value(OpBuilder &, Location, Value, Value)> fn) {
  return buildTensorFromIndices(
      b, loc, matrix, b.getIndexAttr(cols), b.getF32Type(),
      [&](OpBuilder &nb, Location nl, Value t, Value e) {
        Value at = index == VectorIndex::Row ? t : e;
        return fn(nb, nl, extract2D(nb, nl, matrix, t, e),
                  tensor::ExtractOp::create(nb, nl, vector, ValueRange{at}));
      });
}

/// Softmax or sigmoid of `[T,E]` f32 logits.
Value buildScores(OpBuilder &b, Location loc, Value logits,
                  ScoringFunc scoring, int64_t numExperts) {
  if (scoring == ScoringFunc::Sigmoid)
    return buildTensorFromIndices(
        b, loc, logits, b.getIndexAttr(numExperts), b.getF32Type(),
        [&](OpBuilder &nb, Location nl, Value t, Value e) {
          return buildSigmoid(nb, nl, extract2D(nb, nl, logits, t, e));
        });
  // exp(l - max) / sum; maximumf propagates NaN to the whole row.
  Value rowMax = buildRowReduction(
      b, loc, logits, -std::numeric_limits<double>::infinity(),
      [](OpBuilder &nb, Location nl, Value acc, Value v) {
        return arith::MaximumFOp::create(nb, nl, acc, v).getResult();
      });
  Value exps = mapWithVector(
      b, loc, logits, rowMax, VectorIndex::Row, numExperts,
      [](OpBuilder &nb, Location nl, Value l, Value max) {
        Value shifted = arith::SubFOp::create(nb, nl, l, max);
        return math::ExpOp::create(nb, nl, shifted).getResult();
      });
  Value rowSum =
      buildRowReduction(b, loc, exps, 0.0,
                        [](OpBuilder &nb, Location nl, Value acc, Value v) {
                          return arith::AddFOp::create(nb, nl, acc, v)
                              .getResult();
                        });
  return mapWithVector(b, loc, exps, rowSum, VectorIndex::Row, numExperts,
                       [](OpBuilder &nb, Location nl, Value v, Value sum) {
                         return arith::DivFOp::create(nb, nl, v, sum)
                             .getResult();
                       });
}

/// `[T,G]` group scores: the max, or the sum of the two largest selection
/// scores of each group of `perGroup` consecutive experts.
Value buildGroupScores(OpBuilder &b, Location loc, Value selection,
                       int64_t numGroups, int64_t perGroup,
                       GroupScore groupScore) {
  return buildTensorFromIndices(
      b, loc, selection, b.getIndexAttr(numGroups), b.getF32Type(),
      [&](OpBuilder &nb, Location nl, Value t, Value j) {
        Value first = arith::MulIOp::create(
            nb, nl, j, indexConstant(nb, nl, perGroup));
        Value negInf =
            f32Constant(nb, nl, -std::numeric_limits<double>::infinity());
        // (largest, second largest); maximumf/minimumf propagate NaN.
        SmallVector<Value> top = buildLoop(
            nb, nl, indexConstant(nb, nl, 0), indexConstant(nb, nl, perGroup),
            ValueRange{negInf, negInf},
            [&](OpBuilder &lb, Location ll, Value i, ValueRange carried) {
              Value e = arith::AddIOp::create(lb, ll, first, i);
              Value v = extract2D(lb, ll, selection, t, e);
              Value largest =
                  arith::MaximumFOp::create(lb, ll, carried[0], v);
              Value second = arith::MaximumFOp::create(
                  lb, ll, carried[1],
                  arith::MinimumFOp::create(lb, ll, carried[0], v));
              return SmallVector<Value>{largest, second};
            });
        if (groupScore == GroupScore::Max)
          return top[0];
        return arith::AddFOp::create(nb, nl, top[0], top[1]).getResult();
      });
}

/// `[T,G]` i1: whether a group is among the `keep` best of its token.
Value buildKeptGroups(OpBuilder &b, Location loc, Value groupScores,
                      int64_t numGroups, int64_t keep) {
  return buildTensorFromIndices(
      b, loc, groupScores, b.getIndexAttr(numGroups), b.getI1Type(),
      [&](OpBuilder &nb, Location nl, Value t, Value j) {
        Value score = extract2D(nb, nl, groupScores, t, j);
        Value zero = indexConstant(nb, nl, 0);
        Value one = indexConstant(nb, nl, 1);
        Value rank = buildLoop(
            nb, nl, zero, indexConstant(nb, nl, numGroups), ValueRange{zero},
            [&](OpBuilder &lb, Location ll, Value other, ValueRange carried) {
              Value before = ranksBefore(
                  lb, ll, extract2D(lb, ll, groupScores, t, other), other,
                  score, j);
              Value step = arith::SelectOp::create(lb, ll, before, one, zero);
              return SmallVector<Value>{
                  arith::AddIOp::create(lb, ll, carried[0], step)};
            })[0];
        return arith::CmpIOp::create(nb, nl, arith::CmpIPredicate::slt, rank,
                                     indexConstant(nb, nl, keep))
            .getResult();
      });
}

/// The `[T,E]` f32 tensors a gate routes on.
struct RoutingScores {
  /// The logits with the noise (already scaled) added.
  Value logits;
  /// Softmax or sigmoid of `logits`.
  Value scores;
  /// `scores` plus the selection-only bias.
  Value selection;
};

/// Routed logits, scores and selection scores of a gate. Noise is added to
/// the logits before anything else; the selection adds the selection-only
/// bias to the scores.
RoutingScores buildScoresAndSelection(OpBuilder &b, Location loc, GateOp op,
                                      Value logits, Value noise, Value bias) {
  RoutingAttr routing = op.getRouting();
  int64_t numExperts = op.getNumExperts();
  if (noise)
    logits = buildTensorFromIndices(
        b, loc, logits, b.getIndexAttr(numExperts), b.getF32Type(),
        [&](OpBuilder &nb, Location nl, Value t, Value e) {
          return arith::AddFOp::create(nb, nl,
                                       extract2D(nb, nl, logits, t, e),
                                       extract2D(nb, nl, noise, t, e))
              .getResult();
        });
  Value scores =
      buildScores(b, loc, logits, routing.getScoring(), numExperts);
  // Sparsemixer chooses by the logits (its scores are the softmax, for
  // statistics; its weights come after the choice).
  Value selection =
      routing.getScoring() == ScoringFunc::Sparsemixer ? logits : scores;
  if (bias)
    selection = mapWithVector(
        b, loc, scores, bias, VectorIndex::Column, numExperts,
        [](OpBuilder &nb, Location nl, Value score, Value biasValue) {
          return arith::AddFOp::create(nb, nl, score, biasValue).getResult();
        });
  return {logits, scores, selection};
}

/// Sparsemixer's `[T,K]` weights of the chosen experts `ids` (best first):
/// choice k of token t, the expert of logit `m = l[t, ids[t,k]]`, weighs
/// `1 / sum_e exp(l[t,e] - m)` over the experts not chosen before it whose
/// relative gap `(m - l[t,e]) / max(|l[t,e]|, m)` is not above
/// `2 * jitter` (a NaN gap keeps the expert, as `transformers`' mask does).
Value buildSparsemixerGates(OpBuilder &b, Location loc, Value logits, Value ids,
                            double jitter, int64_t numExperts) {
  int64_t topK = llvm::cast<RankedTensorType>(ids.getType()).getDimSize(1);
  return buildTensorFromIndices(
      b, loc, ids, b.getIndexAttr(topK), b.getF32Type(),
      [&](OpBuilder &nb, Location nl, Value t, Value k) {
        auto chosen = [&](OpBuilder &cb, Location cl, Value j) {
          Value id = tensor::ExtractOp::create(cb, cl, ids, ValueRange{t, j});
          return arith::IndexCastOp::create(cb, cl, cb.getIndexType(), id)
              .getResult();
        };
        Value m = extract2D(nb, nl, logits, t, chosen(nb, nl, k));
        Value threshold = f32Constant(nb, nl, 2.0 * jitter);
        Value zero = indexConstant(nb, nl, 0);
        SmallVector<Value> sum = buildLoop(
            nb, nl, zero, indexConstant(nb, nl, numExperts),
            ValueRange{f32Constant(nb, nl, 0.0)},
            [&](OpBuilder &eb, Location el, Value e, ValueRange carried) {
              Value l = extract2D(eb, el, logits, t, e);
              Value scale = arith::MaximumFOp::create(
                  eb, el, math::AbsFOp::create(eb, el, l), m);
              Value gap = arith::DivFOp::create(
                  eb, el, arith::SubFOp::create(eb, el, m, l), scale);
              Value kept = arith::CmpFOp::create(
                  eb, el, arith::CmpFPredicate::ULE, gap, threshold);
              // Not one of the choices before k.
              SmallVector<Value> before = buildLoop(
                  eb, el, zero, k,
                  ValueRange{arith::ConstantIntOp::create(eb, el, 0, 1)},
                  [&](OpBuilder &jb, Location jl, Value j, ValueRange taken) {
                    Value same = arith::CmpIOp::create(
                        jb, jl, arith::CmpIPredicate::eq, chosen(jb, jl, j), e);
                    return SmallVector<Value>{
                        arith::OrIOp::create(jb, jl, taken[0], same)};
                  });
              Value notBefore = arith::XOrIOp::create(
                  eb, el, before[0],
                  arith::ConstantIntOp::create(eb, el, 1, 1));
              Value term = math::ExpOp::create(
                  eb, el, arith::SubFOp::create(eb, el, l, m));
              Value add = arith::AndIOp::create(eb, el, kept, notBefore);
              return SmallVector<Value>{arith::SelectOp::create(
                  eb, el, add, arith::AddFOp::create(eb, el, carried[0], term),
                  carried[0])};
            });
        return arith::DivFOp::create(nb, nl, f32Constant(nb, nl, 1.0), sum[0])
            .getResult();
      });
}

/// Token choice: per token the K best experts of the (group-masked)
/// selection scores in the total order of ranksBefore. Returns `[T,K]` gates
/// (the scores of the chosen experts, best first) and `[T,K]` i32 ids.
std::pair<Value, Value> buildTopKChoices(OpBuilder &b, Location loc,
                                         RoutingAttr routing, Value scores,
                                         Value selection,
                                         int64_t numExperts) {
  Type f32 = b.getF32Type();
  Type i32 = b.getI32Type();
  int64_t topK = routing.getTopK();
  int64_t perGroup = numExperts / routing.getNumGroups();
  Value keptGroups;
  if (routing.isGroupLimited())
    keptGroups = buildKeptGroups(
        b, loc,
        buildGroupScores(b, loc, selection, routing.getNumGroups(), perGroup,
                         routing.getGroupScore()),
        routing.getNumGroups(), routing.getTopkGroups());

  Value numTokens = tensor::DimOp::create(b, loc, scores, 0);
  // The rows of the results: static where the scores' are.
  OpFoldResult tokenRows = tensor::getMixedSize(b, loc, scores, 0);
  Value zero = indexConstant(b, loc, 0);
  Value minusOne = indexConstant(b, loc, -1);
  Value kCount = indexConstant(b, loc, topK);
  Value eCount = indexConstant(b, loc, numExperts);
  auto isEligible = [&](OpBuilder &eb, Location el, Value t,
                        Value e) -> Value {
    if (!keptGroups)
      return arith::ConstantIntOp::create(eb, el, 1, 1);
    Value group =
        arith::DivUIOp::create(eb, el, e, indexConstant(eb, el, perGroup));
    return extract2D(eb, el, keptGroups, t, group);
  };
  // Writes the gate (the score of the chosen expert) and the id of choice
  // k of token t into its [1, K] rows.
  auto storeChoice = [&](OpBuilder &kb, Location kl, Value t, Value k,
                         Value expert, Value gates, Value ids) {
    // Every choice finds an expert (K <= eligible experts); the guard keeps
    // a malformed state from reading out of bounds.
    Value found =
        arith::CmpIOp::create(kb, kl, arith::CmpIPredicate::sge, expert, zero);
    Value safeExpert = arith::SelectOp::create(kb, kl, found, expert, zero);
    Value gate = arith::SelectOp::create(
        kb, kl, found, extract2D(kb, kl, scores, t, safeExpert),
        f32Constant(kb, kl, 0.0));
    Value id = arith::IndexCastOp::create(kb, kl, i32, expert);
    return SmallVector<Value>{
        tensor::InsertOp::create(kb, kl, gate, gates, ValueRange{zero, k}),
        tensor::InsertOp::create(kb, kl, id, ids, ValueRange{zero, k})};
  };
  // Tokens are independent: one parallel iteration per token, writing its
  // [1, K] rows of gates and ids.
  if (topK <= kMaxInsertionTopK) {
    // One pass over the experts keeping the K best so far, sorted, in
    // loop-carried registers: an expert enters only when it ranks before
    // the K-th, then bubbles into place. About E compares plus a few
    // insertions, instead of K passes of E.
    SmallVector<Value> results = buildRowParallel(
        b, loc, numTokens,
        ValueRange{buildEmptyRows(b, loc, tokenRows, topK, f32),
                   buildEmptyRows(b, loc, tokenRows, topK, i32)},
        [&](OpBuilder &tb, Location tl, Value t, ValueRange tokenCarried) {
          // (score, expert) of the K best, best first; expert -1 is empty.
          SmallVector<Value> init(topK, f32Constant(tb, tl, 0.0));
          init.append(topK, minusOne);
          SmallVector<Value> best = buildLoop(
              tb, tl, zero, eCount, init,
              [&](OpBuilder &eb, Location el, Value e, ValueRange kept) {
                return buildTopKInsertion(eb, el, kept,
                                          extract2D(eb, el, selection, t, e), e,
                                          isEligible(eb, el, t, e));
              });
          SmallVector<Value> rows(tokenCarried.begin(), tokenCarried.end());
          for (int64_t k = 0; k < topK; ++k)
            rows = storeChoice(tb, tl, t, indexConstant(tb, tl, k),
                               best[topK + k], rows[0], rows[1]);
          return rows;
        });
    return {results[0], results[1]};
  }
  SmallVector<Value> results = buildRowParallel(
      b, loc, numTokens,
      ValueRange{buildEmptyRows(b, loc, tokenRows, topK, f32),
                 buildEmptyRows(b, loc, tokenRows, topK, i32)},
      [&](OpBuilder &tb, Location tl, Value t, ValueRange tokenCarried) {
        Value zeroF = f32Constant(tb, tl, 0.0);
        // K arg-max passes: (previous score, previous expert, gates, ids).
        SmallVector<Value> picked = buildLoop(
            tb, tl, zero, kCount,
            ValueRange{zeroF, minusOne, tokenCarried[0], tokenCarried[1]},
            [&](OpBuilder &kb, Location kl, Value k, ValueRange carried) {
              Value isFirst = arith::CmpIOp::create(
                  kb, kl, arith::CmpIPredicate::eq, k, zero);
              SmallVector<Value> best = buildLoop(
                  kb, kl, zero, eCount, ValueRange{zeroF, minusOne},
                  [&](OpBuilder &eb, Location el, Value e,
                      ValueRange bestSoFar) {
                    Value s = extract2D(eb, el, selection, t, e);
                    Value eligible = arith::AndIOp::create(
                        eb, el, isEligible(eb, el, t, e),
                        arith::OrIOp::create(
                            eb, el, isFirst,
                            ranksBefore(eb, el, carried[0], carried[1], s,
                                        e)));
                    Value none = arith::CmpIOp::create(
                        eb, el, arith::CmpIPredicate::slt, bestSoFar[1],
                        zero);
                    Value better = arith::OrIOp::create(
                        eb, el, none,
                        ranksBefore(eb, el, s, e, bestSoFar[0],
                                    bestSoFar[1]));
                    Value take =
                        arith::AndIOp::create(eb, el, eligible, better);
                    return SmallVector<Value>{
                        arith::SelectOp::create(eb, el, take, s,
                                                bestSoFar[0]),
                        arith::SelectOp::create(eb, el, take, e,
                                                bestSoFar[1])};
                  });
              SmallVector<Value> rows =
                  storeChoice(kb, kl, t, k, best[1], carried[2], carried[3]);
              return SmallVector<Value>{best[0], best[1], rows[0], rows[1]};
            });
        return SmallVector<Value>{picked[2], picked[3]};
      });
  return {results[0], results[1]};
}

/// `second = random`: the second choice of token t is not dispatched (id -1)
/// unless `2 * gate > uniform[t]`.
Value buildRandomSecondDrop(OpBuilder &b, Location loc, Value gates,
                            Value ids, Value uniform) {
  Value zero = indexConstant(b, loc, 0);
  Value second = indexConstant(b, loc, 1);
  Value numTokens = tensor::DimOp::create(b, loc, ids, 0);
  return buildLoop(
      b, loc, zero, numTokens, ValueRange{ids},
      [&](OpBuilder &tb, Location tl, Value t, ValueRange carried) {
        Value gate = extract2D(tb, tl, gates, t, second);
        Value doubled =
            arith::AddFOp::create(tb, tl, gate, gate).getResult();
        Value sample =
            tensor::ExtractOp::create(tb, tl, uniform, ValueRange{t});
        Value dispatched = arith::CmpFOp::create(
            tb, tl, arith::CmpFPredicate::OGT, doubled, sample);
        Value id = arith::SelectOp::create(
            tb, tl, dispatched, extract2D(tb, tl, carried[0], t, second),
            arith::ConstantIntOp::create(tb, tl, tb.getI32Type(), -1));
        return SmallVector<Value>{tensor::InsertOp::create(
            tb, tl, id, carried[0], ValueRange{t, second})};
      })[0];
}

} // namespace

bool lowering::hasCombineWeightRules(RoutingAttr routing) {
  return routing.hasCapacity() ||
         routing.getSecondPolicy() == SecondPolicy::Random ||
         routing.getRenormalize() != Renormalize::None ||
         routing.getScaleValue() != 1.0 || routing.getUnweighted();
}

SmallVector<Value> lowering::buildTokenCombineWeights(OpBuilder &b,
                                                      Location loc,
                                                      RoutingAttr routing,
                                                      ArrayRef<Value> gates,
                                                      ArrayRef<Value> kept) {
  Value zero = f32Constant(b, loc, 0.0);
  Renormalize renormalize = routing.getRenormalize();
  double scale = routing.getScaleValue();
  Value denominator;
  if (renormalize != Renormalize::None) {
    denominator = zero;
    for (auto [gate, isKept] : llvm::zip(gates, kept)) {
      Value g = gate;
      if (renormalize == Renormalize::Kept)
        g = arith::SelectOp::create(b, loc, isKept, g, zero);
      denominator = arith::AddFOp::create(b, loc, denominator, g);
    }
    if (renormalize == Renormalize::Kept)
      denominator = arith::MaximumFOp::create(
          b, loc, denominator,
          f32Constant(b, loc, std::numeric_limits<float>::epsilon()));
  }
  SmallVector<Value> weights;
  for (auto [gate, isKept] : llvm::zip(gates, kept)) {
    // Unweighted routing combines a kept choice with weight 1 (times scale).
    Value w = routing.getUnweighted() ? f32Constant(b, loc, 1.0) : gate;
    if (denominator)
      w = arith::DivFOp::create(b, loc, w, denominator);
    if (scale != 1.0)
      w = arith::MulFOp::create(b, loc, w, f32Constant(b, loc, scale));
    weights.push_back(arith::SelectOp::create(b, loc, isKept, w, zero));
  }
  return weights;
}

namespace {

/// Combine weights from `[T,K]` gates and ids (buildTokenCombineWeights per
/// token; an id of -1 is not kept).
Value buildCombineWeights(OpBuilder &b, Location loc, RoutingAttr routing,
                          Value gates, Value ids, int64_t numExperts) {
  Value eCount = indexConstant(b, loc, numExperts);
  Value numTokens = tensor::DimOp::create(b, loc, ids, 0);
  return buildLoop(
      b, loc, indexConstant(b, loc, 0), numTokens, ValueRange{gates},
      [&](OpBuilder &tb, Location tl, Value t, ValueRange carried) {
        SmallVector<Value> tokenGates, kept;
        for (int64_t k = 0; k < routing.getTopK(); ++k) {
          Value choice = indexConstant(tb, tl, k);
          tokenGates.push_back(extract2D(tb, tl, gates, t, choice));
          Value id = extract2D(tb, tl, ids, t, choice);
          kept.push_back(isInRange(
              tb, tl, arith::IndexCastOp::create(tb, tl, tb.getIndexType(), id),
              eCount));
        }
        Value weights = carried[0];
        for (auto [k, w] : llvm::enumerate(
                 buildTokenCombineWeights(tb, tl, routing, tokenGates, kept)))
          weights = tensor::InsertOp::create(
              tb, tl, w, weights,
              ValueRange{t, indexConstant(tb, tl, static_cast<int64_t>(k))});
        return SmallVector<Value>{weights};
      })[0];
}

/// `[T,1]` i32: the best expert of each token by `selection` (ties to the
/// lower index, NaN first).
Value buildArgMax(OpBuilder &b, Location loc, Value selection,
                  int64_t numExperts) {
  return buildTensorFromIndices(
      b, loc, selection, b.getIndexAttr(1), b.getI32Type(),
      [&](OpBuilder &nb, Location nl, Value t, Value) {
        Value zero = indexConstant(nb, nl, 0);
        SmallVector<Value> best = buildLoop(
            nb, nl, indexConstant(nb, nl, 1), indexConstant(nb, nl, numExperts),
            ValueRange{extract2D(nb, nl, selection, t, zero), zero},
            [&](OpBuilder &eb, Location el, Value e, ValueRange carried) {
              Value s = extract2D(eb, el, selection, t, e);
              Value better =
                  ranksBefore(eb, el, s, e, carried[0], carried[1]);
              return SmallVector<Value>{
                  arith::SelectOp::create(eb, el, better, s, carried[0]),
                  arith::SelectOp::create(eb, el, better, e, carried[1])};
            });
        return arith::IndexCastOp::create(nb, nl, nb.getI32Type(), best[1])
            .getResult();
      });
}

/// Replaces `op` by its weights and ids and the statistics it asks for.
void replaceGate(ConversionPatternRewriter &rewriter, GateOp op,
                 const RoutingStatisticsInputs &inputs) {
  SmallVector<Value> results = {inputs.weights, inputs.ids};
  llvm::append_range(
      results, buildRoutingStatistics(rewriter, op.getLoc(), op.getRouting(),
                                      op.getRequestedStatistics(), inputs,
                                      op.getNumExperts()));
  rewriter.replaceOp(op, results);
}

struct LowerTokenChoiceGate : OpConversionPattern<GateOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(GateOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    RoutingAttr routing = op.getRouting();
    if (routing.isExpertChoice())
      return rewriter.notifyMatchFailure(op, "expert choice");
    Location loc = op.getLoc();
    int64_t numExperts = op.getNumExperts();
    RoutingScores routed =
        buildScoresAndSelection(rewriter, loc, op, adaptor.getLogits(),
                                adaptor.getNoise(), adaptor.getBias());
    auto [gates, choiceIds] = buildTopKChoices(
        rewriter, loc, routing, routed.scores, routed.selection, numExperts);
    if (routing.getScoring() == ScoringFunc::Sparsemixer)
      gates = buildSparsemixerGates(rewriter, loc, routed.logits, choiceIds,
                                    routing.getJitter().convertToDouble(),
                                    numExperts);
    Value ids = choiceIds;
    if (routing.getSecondPolicy() == SecondPolicy::Random)
      ids = buildRandomSecondDrop(rewriter, loc, gates, ids,
                                  adaptor.getUniform());
    Value dispatchedIds = ids;
    if (routing.hasCapacity())
      ids = buildCapacityDrop(rewriter, loc, routing, routed.scores, ids,
                              numExperts);
    Value weights = gates;
    if (hasCombineWeightRules(routing))
      weights =
          buildCombineWeights(rewriter, loc, routing, gates, ids, numExperts);
    // A second choice that random routing does not dispatch counts neither
    // as chosen nor as dropped.
    replaceGate(rewriter, op, {routed.logits, routed.scores, choiceIds,
                               dispatchedIds, ids, weights});
    return success();
  }
};

/// Expert choice: slot e of a token is expert e, taken when the token is
/// among the expert's top-C of its group; weight = score * scale.
struct LowerExpertChoiceGate : OpConversionPattern<GateOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(GateOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    RoutingAttr routing = op.getRouting();
    if (!routing.isExpertChoice())
      return rewriter.notifyMatchFailure(op, "token choice");
    Location loc = op.getLoc();
    int64_t numExperts = op.getNumExperts();
    RoutingScores routed =
        buildScoresAndSelection(rewriter, loc, op, adaptor.getLogits(),
                                adaptor.getNoise(), adaptor.getBias());
    Value scores = routed.scores, selection = routed.selection;
    Value chosen =
        buildExpertChoiceMask(rewriter, loc, routing, selection, numExperts);
    double scale = routing.getScaleValue();
    Value weights = buildTensorFromIndices(
        rewriter, loc, scores, rewriter.getIndexAttr(numExperts),
        rewriter.getF32Type(),
        [&](OpBuilder &nb, Location nl, Value t, Value e) {
          Value w = routing.getUnweighted() ? f32Constant(nb, nl, 1.0)
                                            : extract2D(nb, nl, scores, t, e);
          if (scale != 1.0)
            w = arith::MulFOp::create(nb, nl, w, f32Constant(nb, nl, scale));
          return arith::SelectOp::create(nb, nl,
                                         extract2D(nb, nl, chosen, t, e), w,
                                         f32Constant(nb, nl, 0.0))
              .getResult();
        });
    Value ids = buildTensorFromIndices(
        rewriter, loc, scores, rewriter.getIndexAttr(numExperts),
        rewriter.getI32Type(),
        [&](OpBuilder &nb, Location nl, Value t, Value e) {
          Value id = arith::IndexCastOp::create(nb, nl, nb.getI32Type(), e);
          return arith::SelectOp::create(
                     nb, nl, extract2D(nb, nl, chosen, t, e), id,
                     arith::ConstantIntOp::create(nb, nl, nb.getI32Type(), -1))
              .getResult();
        });
    // Nothing is dropped: every expert takes what it chose. The first choice
    // of a token is its best expert by selection score.
    Value firstChoice;
    if (!op.getRequestedStatistics().empty())
      firstChoice = buildArgMax(rewriter, loc, selection, numExperts);
    replaceGate(rewriter, op,
                {routed.logits, scores, firstChoice, ids, ids, weights});
    return success();
  }
};

} // namespace

void mlir::moe::populateGateLoweringPatterns(RewritePatternSet &patterns) {
  patterns.add<LowerTokenChoiceGate, LowerExpertChoiceGate>(
      patterns.getContext());
}
