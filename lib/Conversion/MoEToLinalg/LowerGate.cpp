//===- LowerGate.cpp - moe.gate to linalg and scf --------------------------===//
//
// Token-choice, dropless routing: scores and selection scores as element-wise
// linalg.generic ops over [T,E], the kept groups of group-limited routing over
// [T,G], then per token K arg-max passes over the experts. Each pass picks the
// best expert ranking after the previous pick in one total order (score
// descending, NaN first, ties to the lower index), so no scratch buffer of
// already-taken experts is needed.
//
//===----------------------------------------------------------------------===//

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

std::optional<std::string>
mlir::moe::getUnsupportedRoutingReason(RoutingAttr routing,
                                       bool withStatistics) {
  if (routing.isExpertChoice())
    return "expert-choice routing";
  if (routing.getSecondPolicy() == SecondPolicy::Random)
    return "random second-choice routing";
  if (routing.getNoisy())
    return "noisy gating";
  if (routing.hasCapacity())
    return "capacity-limited routing";
  if (withStatistics)
    return "routing statistics";
  return std::nullopt;
}

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

struct LowerTokenChoiceGate : OpConversionPattern<GateOp> {
  using OpConversionPattern::OpConversionPattern;

  LogicalResult
  matchAndRewrite(GateOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    if (std::optional<std::string> reason = getUnsupportedRoutingReason(
            op.getRouting(), !op.getRequestedStatistics().empty()))
      return rewriter.notifyMatchFailure(op, *reason);
    Location loc = op.getLoc();
    RoutingAttr routing = op.getRouting();
    Type f32 = rewriter.getF32Type();
    Type i32 = rewriter.getI32Type();
    int64_t numExperts = op.getNumExperts();
    int64_t topK = routing.getTopK();
    Value logits = adaptor.getLogits();

    Value scores =
        buildScores(rewriter, loc, logits, routing.getScoring(), numExperts);
    Value selection = scores;
    if (Value bias = adaptor.getBias())
      selection = mapWithVector(
          rewriter, loc, scores, bias, VectorIndex::Column, numExperts,
          [](OpBuilder &nb, Location nl, Value score, Value b) {
            return arith::AddFOp::create(nb, nl, score, b).getResult();
          });
    int64_t perGroup = numExperts / routing.getNumGroups();
    Value keptGroups;
    if (routing.isGroupLimited())
      keptGroups = buildKeptGroups(
          rewriter, loc,
          buildGroupScores(rewriter, loc, selection, routing.getNumGroups(),
                           perGroup, routing.getGroupScore()),
          routing.getNumGroups(), routing.getTopkGroups());

    Value numTokens = tensor::DimOp::create(rewriter, loc, logits, 0);
    auto emptyChoices = [&](Type type) {
      return tensor::EmptyOp::create(
                 rewriter, loc,
                 ArrayRef<OpFoldResult>{tensor::getMixedSize(rewriter, loc,
                                                             logits, 0),
                                        rewriter.getIndexAttr(topK)},
                 type)
          .getResult();
    };
    Value zero = indexConstant(rewriter, loc, 0);
    Value minusOne = indexConstant(rewriter, loc, -1);
    Value kCount = indexConstant(rewriter, loc, topK);
    Value eCount = indexConstant(rewriter, loc, numExperts);

    SmallVector<Value> results = buildLoop(
        rewriter, loc, zero, numTokens,
        ValueRange{emptyChoices(f32), emptyChoices(i32)},
        [&](OpBuilder &b, Location l, Value t, ValueRange tokenCarried) {
          Value zeroF = f32Constant(b, l, 0.0);
          // K arg-max passes: (previous score, previous expert, sum, w, ids).
          SmallVector<Value> picked = buildLoop(
              b, l, zero, kCount,
              ValueRange{zeroF, minusOne, zeroF, tokenCarried[0],
                         tokenCarried[1]},
              [&](OpBuilder &kb, Location kl, Value k, ValueRange carried) {
                Value isFirst = arith::CmpIOp::create(
                    kb, kl, arith::CmpIPredicate::eq, k, zero);
                SmallVector<Value> best = buildLoop(
                    kb, kl, zero, eCount, ValueRange{zeroF, minusOne},
                    [&](OpBuilder &eb, Location el, Value e,
                        ValueRange bestSoFar) {
                      Value s = extract2D(eb, el, selection, t, e);
                      Value eligible = arith::OrIOp::create(
                          eb, el, isFirst,
                          ranksBefore(eb, el, carried[0], carried[1], s, e));
                      if (keptGroups) {
                        Value group = arith::DivUIOp::create(
                            eb, el, e, indexConstant(eb, el, perGroup));
                        eligible = arith::AndIOp::create(
                            eb, el, eligible,
                            extract2D(eb, el, keptGroups, t, group));
                      }
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
                // Every pass finds an expert (K <= eligible experts); the
                // guard keeps a malformed state from reading out of bounds.
                Value found = arith::CmpIOp::create(
                    kb, kl, arith::CmpIPredicate::sge, best[1], zero);
                Value safeExpert =
                    arith::SelectOp::create(kb, kl, found, best[1], zero);
                Value weight = arith::SelectOp::create(
                    kb, kl, found, extract2D(kb, kl, scores, t, safeExpert),
                    zeroF);
                Value id = arith::IndexCastOp::create(kb, kl, i32, best[1]);
                Value weights = tensor::InsertOp::create(
                    kb, kl, weight, carried[3], ValueRange{t, k});
                Value ids = tensor::InsertOp::create(kb, kl, id, carried[4],
                                                     ValueRange{t, k});
                Value sum = arith::AddFOp::create(kb, kl, carried[2], weight);
                return SmallVector<Value>{best[0], best[1], sum, weights, ids};
              });
          Value weights = picked[3];
          Renormalize renormalize = routing.getRenormalize();
          double scale = routing.getScaleValue();
          if (renormalize != Renormalize::None || scale != 1.0) {
            Value denominator = picked[2];
            if (renormalize == Renormalize::Kept)
              denominator = arith::MaximumFOp::create(
                  b, l, denominator,
                  f32Constant(b, l, std::numeric_limits<float>::epsilon()));
            weights = buildLoop(
                b, l, zero, kCount, ValueRange{weights},
                [&](OpBuilder &kb, Location kl, Value k, ValueRange carried) {
                  Value w = extract2D(kb, kl, carried[0], t, k);
                  if (renormalize != Renormalize::None)
                    w = arith::DivFOp::create(kb, kl, w, denominator);
                  if (scale != 1.0)
                    w = arith::MulFOp::create(kb, kl, w,
                                              f32Constant(kb, kl, scale));
                  return SmallVector<Value>{tensor::InsertOp::create(
                      kb, kl, w, carried[0], ValueRange{t, k})};
                })[0];
          }
          return SmallVector<Value>{weights, picked[4]};
        });

    rewriter.replaceOp(op, results);
    return success();
  }
};

} // namespace

void mlir::moe::populateGateLoweringPatterns(RewritePatternSet &patterns) {
  patterns.add<LowerTokenChoiceGate>(patterns.getContext());
}
