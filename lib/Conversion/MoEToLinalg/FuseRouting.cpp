//===- FuseRouting.cpp - Gate, counts and routing plan in one loop nest ---===//
//
// A token-choice moe.gate whose ids feed a moe.routing_plan is routed in the
// plan's counting loop: per chunk of tokens (the chunks in parallel), per
// token, the scores of its E experts go to a row of scratch the chunk owns,
// the K best are selected in registers (buildTopKInsertion), the combine
// weights and ids are written, and the chunk's expert counts grow. Only the
// offsets, the block table and the placement remain after the loop. No
// [T,E] tensor other than the logits is formed, and nothing sorts.
//
// The arithmetic is the reference lowering's, operation for operation
// (maximum, exponentials and their sum in expert order, the same selection
// order, the same weight rules), so the results are bitwise the same.
//
// Up to `lane-max-tokens` tokens, a second loop routes them with the work
// of a token parallel over its experts (LaneRouter): reductions over the
// experts for the softmax, the group scores and each of the K choices, so
// that a GPU runs a token on the lanes of a warp instead of one thread.
//
//===----------------------------------------------------------------------===//

#include "GateLowering.h"
#include "LoweringUtils.h"
#include "RoutingPlanBuilders.h"
#include "moe/Conversion/Passes.h"
#include "moe/Dialect/MoE/IR/MoE.h"
#include "moe/Dialect/MoE/Utils/TensorBuilders.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <limits>

namespace mlir::moe {
#define GEN_PASS_DEF_MOEFUSEROUTINGPASS
#include "moe/Conversion/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::lowering;

namespace {

/// Why `gate` cannot be routed token by token, or null when it can:
/// capacity and expert choice order tokens against each other.
const char *whyNotFusible(GateOp gate) {
  RoutingAttr routing = gate.getRouting();
  if (routing.isExpertChoice())
    return "expert choice ranks tokens against each other";
  if (routing.hasCapacity())
    return "capacity drops depend on other tokens";
  if (routing.getTopK() > kMaxInsertionTopK)
    return "top-k too large to keep in registers";
  if (!gate.getRequestedStatistics().empty())
    return "statistics results";
  if (routing.getScoring() == ScoringFunc::Sparsemixer)
    return "sparsemixer weights (the gate lowering computes them)";
  return nullptr;
}

/// Why a fusible `gate` cannot be routed on lanes (LaneRouter), or null:
/// its kept groups are the bits of one i64, and its experts' indices fit
/// the low 32 bits of a selection key.
const char *whyNotOnLanes(GateOp gate) {
  RoutingAttr routing = gate.getRouting();
  if (routing.isGroupLimited() && routing.getNumGroups() > 64)
    return "more than 64 groups";
  if (gate.getNumExperts() >= (int64_t{1} << 31))
    return "too many experts for a selection key";
  return nullptr;
}

/// What routes one token: its K combine weights and K ids (i32).
struct RoutedToken {
  SmallVector<Value> weights, ids;
};

/// The end of a token's routing, shared by both routers: from the K chosen
/// experts (`index`, -1 for none) and their scores (`scoreOf`), the gates,
/// the random second choice, the combine weights and the ids.
RoutedToken
finishToken(OpBuilder &b, Location loc, RoutingAttr routing, int64_t numExperts,
            Value uniform, Value t, ArrayRef<Value> experts,
            function_ref<Value(OpBuilder &, Location, Value)> scoreOf) {
  RoutedToken routed;
  Value zero = indexConstant(b, loc, 0);
  Value eCount = indexConstant(b, loc, numExperts);
  SmallVector<Value> gates, kept;
  for (Value expert : experts) {
    // Every choice finds an expert (K <= eligible experts); the guard keeps
    // a malformed state from reading out of bounds.
    Value found =
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge, expert, zero);
    Value safe = arith::SelectOp::create(b, loc, found, expert, zero);
    gates.push_back(arith::SelectOp::create(
        b, loc, found, scoreOf(b, loc, safe), f32Constant(b, loc, 0.0)));
    routed.ids.push_back(
        arith::IndexCastOp::create(b, loc, b.getI32Type(), expert));
  }
  // `second = random`: the second choice is dispatched only when
  // 2 * gate > uniform[t].
  if (routing.getSecondPolicy() == SecondPolicy::Random) {
    Value doubled = arith::AddFOp::create(b, loc, gates[1], gates[1]);
    Value sample = tensor::ExtractOp::create(b, loc, uniform, ValueRange{t});
    Value dispatched = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT,
                                             doubled, sample);
    routed.ids[1] = arith::SelectOp::create(
        b, loc, dispatched, routed.ids[1],
        arith::ConstantIntOp::create(b, loc, b.getI32Type(), -1));
  }
  routed.weights = gates;
  if (hasCombineWeightRules(routing)) {
    for (Value id : routed.ids)
      kept.push_back(isInRange(
          b, loc, arith::IndexCastOp::create(b, loc, b.getIndexType(), id),
          eCount));
    routed.weights = buildTokenCombineWeights(b, loc, routing, gates, kept);
  }
  return routed;
}

/// The logit of expert `e` for token `t` as routed: plus its noise.
Value routedLogit(OpBuilder &b, Location loc, Value logits, Value noise,
                  Value t, Value e) {
  Value l = tensor::ExtractOp::create(b, loc, logits, ValueRange{t, e});
  if (noise)
    l = arith::AddFOp::create(
        b, loc, l, tensor::ExtractOp::create(b, loc, noise, ValueRange{t, e}));
  return l;
}

/// Whether group `j` of score `score` is kept: fewer than topk_groups
/// groups (their scores from `groupScore`) rank before it.
Value buildGroupIsKept(
    OpBuilder &b, Location loc, RoutingAttr routing, Value j, Value score,
    function_ref<Value(OpBuilder &, Location, Value)> groupScore) {
  Value zero = indexConstant(b, loc, 0);
  Value one = indexConstant(b, loc, 1);
  Value rank = buildLoop(
      b, loc, zero, indexConstant(b, loc, routing.getNumGroups()), {zero},
      [&](OpBuilder &rb, Location rl, Value other, ValueRange carried) {
        Value before =
            ranksBefore(rb, rl, groupScore(rb, rl, other), other, score, j);
        return SmallVector<Value>{arith::AddIOp::create(
            rb, rl, carried[0],
            arith::SelectOp::create(rb, rl, before, one, zero))};
      })[0];
  return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, rank,
                               indexConstant(b, loc, routing.getTopkGroups()));
}

/// What both routers read of a gate.
struct GateOperands {
  GateOperands(GateOp gate)
      : logits(gate.getLogits()), noise(gate.getNoise()), bias(gate.getBias()),
        uniform(gate.getUniform()), routing(gate.getRouting()),
        numExperts(gate.getNumExperts()), topK(routing.getTopK()) {}

  Value logits, noise, bias, uniform;
  RoutingAttr routing;
  int64_t numExperts, topK;
};

/// Builds the routing of one token into its rows.
class TokenRouter : GateOperands {
public:
  using GateOperands::GateOperands;

  /// The chunk's work row: `[1, E + E + G]` f32, the chunk's expert counts
  /// (exact in f32: a chunk has at most 64 * 16 assignments), then scratch
  /// for a token's E scores and, with group-limited routing, its G group
  /// scores. One row with the counts, which are read after the loop, so
  /// that no canonicalization drops the scratch from the loop's outputs.
  int64_t getWorkColumns() const {
    return 2 * numExperts +
           (routing.isGroupLimited() ? routing.getNumGroups() : 0);
  }

  /// Routes token `t` with the chunk's `work` row. Returns the token's K
  /// combine weights and K ids (i32) and the updated work row (scratch
  /// written, counts unchanged).
  struct Routed {
    SmallVector<Value> weights, ids;
    Value work;
  };
  Routed route(OpBuilder &b, Location loc, Value t, Value work) const;

private:
  /// Element `first + i` of the work row, and its update.
  Value readRow(OpBuilder &b, Location loc, Value row, int64_t first,
                Value i) const {
    return tensor::ExtractOp::create(
        b, loc, row,
        ValueRange{indexConstant(b, loc, 0), at(b, loc, first, i)});
  }
  Value writeRow(OpBuilder &b, Location loc, Value v, Value row, int64_t first,
                 Value i) const {
    return tensor::InsertOp::create(
        b, loc, v, row,
        ValueRange{indexConstant(b, loc, 0), at(b, loc, first, i)});
  }
  Value at(OpBuilder &b, Location loc, int64_t first, Value i) const {
    return first
               ? arith::AddIOp::create(b, loc, i, indexConstant(b, loc, first))
                     .getResult()
               : i;
  }
  /// Columns of the work row: scores, then group scores.
  int64_t scoresAt() const { return numExperts; }
  int64_t groupsAt() const { return 2 * numExperts; }
  /// Loop over the experts `[0, E)` carrying `init`.
  SmallVector<Value> forExperts(OpBuilder &b, Location loc, ValueRange init,
                                LoopBody body) const {
    return buildLoop(b, loc, indexConstant(b, loc, 0),
                     indexConstant(b, loc, numExperts), init, body);
  }
  /// Softmax or sigmoid of the token's routed logits, into `work`.
  Value buildScores(OpBuilder &b, Location loc, Value t, Value work) const;
  /// The selection score of expert `e`: its score plus the selection bias.
  Value selection(OpBuilder &b, Location loc, Value work, Value e) const;
  /// The group scores of group-limited routing, into `work`.
  Value buildGroupScores(OpBuilder &b, Location loc, Value work) const;
  /// The K best (score, expert) of the eligible experts.
  SmallVector<Value> buildTopK(OpBuilder &b, Location loc, Value work) const;
};

Value TokenRouter::buildScores(OpBuilder &b, Location loc, Value t,
                               Value work) const {
  auto logitOf = [&](OpBuilder &nb, Location nl, Value e) {
    return routedLogit(nb, nl, logits, noise, t, e);
  };
  if (routing.getScoring() == ScoringFunc::Sigmoid)
    return forExperts(b, loc, {work},
                      [&](OpBuilder &nb, Location nl, Value e, ValueRange row) {
                        Value s = buildSigmoid(nb, nl, logitOf(nb, nl, e));
                        return SmallVector<Value>{
                            writeRow(nb, nl, s, row[0], scoresAt(), e)};
                      })[0];
  // exp(l - max) / sum, reduced in expert order; maximumf propagates NaN to
  // the whole row.
  SmallVector<Value> withMax = forExperts(
      b, loc,
      {work, f32Constant(b, loc, -std::numeric_limits<double>::infinity())},
      [&](OpBuilder &nb, Location nl, Value e, ValueRange carried) {
        Value l = logitOf(nb, nl, e);
        return SmallVector<Value>{
            writeRow(nb, nl, l, carried[0], scoresAt(), e),
            arith::MaximumFOp::create(nb, nl, carried[1], l)};
      });
  SmallVector<Value> withSum = forExperts(
      b, loc, {withMax[0], f32Constant(b, loc, 0.0)},
      [&](OpBuilder &nb, Location nl, Value e, ValueRange carried) {
        Value shifted = arith::SubFOp::create(
            nb, nl, readRow(nb, nl, carried[0], scoresAt(), e), withMax[1]);
        Value x = math::ExpOp::create(nb, nl, shifted);
        return SmallVector<Value>{
            writeRow(nb, nl, x, carried[0], scoresAt(), e),
            arith::AddFOp::create(nb, nl, carried[1], x)};
      });
  return forExperts(
      b, loc, {withSum[0]},
      [&](OpBuilder &nb, Location nl, Value e, ValueRange row) {
        Value s = arith::DivFOp::create(
            nb, nl, readRow(nb, nl, row[0], scoresAt(), e), withSum[1]);
        return SmallVector<Value>{writeRow(nb, nl, s, row[0], scoresAt(), e)};
      })[0];
}

Value TokenRouter::selection(OpBuilder &b, Location loc, Value work,
                             Value e) const {
  Value s = readRow(b, loc, work, scoresAt(), e);
  if (bias)
    s = arith::AddFOp::create(
        b, loc, s, tensor::ExtractOp::create(b, loc, bias, ValueRange{e}));
  return s;
}

Value TokenRouter::buildGroupScores(OpBuilder &b, Location loc,
                                    Value work) const {
  int64_t numGroups = routing.getNumGroups();
  int64_t perGroup = numExperts / numGroups;
  return buildLoop(
      b, loc, indexConstant(b, loc, 0), indexConstant(b, loc, numGroups),
      {work}, [&](OpBuilder &gb, Location gl, Value j, ValueRange row) {
        Value first =
            arith::MulIOp::create(gb, gl, j, indexConstant(gb, gl, perGroup));
        Value negInf =
            f32Constant(gb, gl, -std::numeric_limits<double>::infinity());
        // (largest, second largest); maximumf/minimumf propagate NaN.
        SmallVector<Value> top = buildLoop(
            gb, gl, indexConstant(gb, gl, 0), indexConstant(gb, gl, perGroup),
            {negInf, negInf},
            [&](OpBuilder &lb, Location ll, Value i, ValueRange carried) {
              Value v = selection(lb, ll, row[0],
                                  arith::AddIOp::create(lb, ll, first, i));
              Value largest = arith::MaximumFOp::create(lb, ll, carried[0], v);
              Value second = arith::MaximumFOp::create(
                  lb, ll, carried[1],
                  arith::MinimumFOp::create(lb, ll, carried[0], v));
              return SmallVector<Value>{largest, second};
            });
        Value score =
            routing.getGroupScore() == GroupScore::Max
                ? top[0]
                : arith::AddFOp::create(gb, gl, top[0], top[1]).getResult();
        return SmallVector<Value>{
            writeRow(gb, gl, score, row[0], groupsAt(), j)};
      })[0];
}

SmallVector<Value> TokenRouter::buildTopK(OpBuilder &b, Location loc,
                                          Value work) const {
  SmallVector<Value> init(topK, f32Constant(b, loc, 0.0));
  init.append(topK, indexConstant(b, loc, -1));
  Value always = arith::ConstantIntOp::create(b, loc, 1, 1);
  auto insertExpert = [&](OpBuilder &eb, Location el, Value e,
                          ValueRange kept) {
    return buildTopKInsertion(eb, el, kept, selection(eb, el, work, e), e,
                              always);
  };
  if (!routing.isGroupLimited())
    return forExperts(b, loc, init, insertExpert);
  // The experts of the kept groups, in expert order: a group is kept when
  // fewer than topk_groups groups rank before it.
  int64_t numGroups = routing.getNumGroups();
  int64_t perGroup = numExperts / numGroups;
  Value zero = indexConstant(b, loc, 0);
  Value groupCount = indexConstant(b, loc, numGroups);
  return buildLoop(
      b, loc, zero, groupCount, init,
      [&](OpBuilder &gb, Location gl, Value j, ValueRange kept) {
        Value score = readRow(gb, gl, work, groupsAt(), j);
        Value isKept =
            buildGroupIsKept(gb, gl, routing, j, score,
                             [&](OpBuilder &rb, Location rl, Value other) {
                               return readRow(rb, rl, work, groupsAt(), other);
                             });
        return buildIf(
            gb, gl, isKept,
            [&](OpBuilder &ib, Location il) {
              Value first = arith::MulIOp::create(
                  ib, il, j, indexConstant(ib, il, perGroup));
              Value last = arith::AddIOp::create(
                  ib, il, first, indexConstant(ib, il, perGroup));
              return buildLoop(ib, il, first, last, kept, insertExpert);
            },
            kept);
      });
}

TokenRouter::Routed TokenRouter::route(OpBuilder &b, Location loc, Value t,
                                       Value work) const {
  Routed routed;
  routed.work = buildScores(b, loc, t, work);
  if (routing.isGroupLimited())
    routed.work = buildGroupScores(b, loc, routed.work);
  SmallVector<Value> best = buildTopK(b, loc, routed.work);
  RoutedToken token = finishToken(
      b, loc, routing, numExperts, uniform, t, ArrayRef(best).drop_front(topK),
      [&](OpBuilder &sb, Location sl, Value e) {
        return readRow(sb, sl, routed.work, scoresAt(), e);
      });
  routed.weights = std::move(token.weights);
  routed.ids = std::move(token.ids);
  return routed;
}

/// Routes one token with its work parallel over the experts: each step
/// that the insertion takes expert by expert is a reduction over the
/// experts (scf.parallel, scf.reduce), each write of the scores a parallel
/// loop, so that the lanes of a warp can share a token.
class LaneRouter : GateOperands {
public:
  using GateOperands::GateOperands;

  RoutedToken route(OpBuilder &b, Location loc, Value t) const;

private:
  /// The combination by `Combiner` over `[first, first + count)` of
  /// `element(e)`, from `init`.
  template <typename Combiner>
  Value reduce(OpBuilder &b, Location loc, Value first, int64_t count,
               Value init,
               function_ref<Value(OpBuilder &, Location, Value)> element) const;
  /// `[E]` f32: the softmax or sigmoid of the token's routed logits.
  Value buildScores(OpBuilder &b, Location loc, Value t) const;
  /// The selection key of expert `e` (i64, never 0): its selection score's
  /// bits ordered as the floats (NaN above all, -0 as +0), then
  /// 0xFFFFFFFE - e, so that the larger key ranks first (ties to the lower
  /// expert), as ranksBefore orders them.
  Value selectionKey(OpBuilder &b, Location loc, Value scores, Value e) const;
  /// The selection score a key holds (-inf for 0, no expert).
  Value keyScore(OpBuilder &b, Location loc, Value key) const;
  /// The expert a key names (`index`; -1 for 0).
  Value keyExpert(OpBuilder &b, Location loc, Value key) const;
  /// The i64 whose bit j says that group j is kept.
  Value buildKeptGroups(OpBuilder &b, Location loc, Value scores) const;
};

template <typename Combiner>
Value LaneRouter::reduce(
    OpBuilder &b, Location loc, Value first, int64_t count, Value init,
    function_ref<Value(OpBuilder &, Location, Value)> element) const {
  auto loop = scf::ParallelOp::create(
      b, loc, ValueRange{indexConstant(b, loc, 0)},
      ValueRange{indexConstant(b, loc, count)},
      ValueRange{indexConstant(b, loc, 1)}, ValueRange{init},
      [&](OpBuilder &pb, Location pl, ValueRange ivs, ValueRange) {
        Value e = arith::AddIOp::create(pb, pl, first, ivs[0]);
        auto reduce = scf::ReduceOp::create(pb, pl, element(pb, pl, e));
        Block &body = reduce.getReductions()[0].front();
        OpBuilder rb = OpBuilder::atBlockBegin(&body);
        Value combined =
            Combiner::create(rb, pl, body.getArgument(0), body.getArgument(1));
        scf::ReduceReturnOp::create(rb, pl, combined);
      });
  return loop.getResult(0);
}

Value LaneRouter::buildScores(OpBuilder &b, Location loc, Value t) const {
  Type f32 = b.getF32Type();
  Value zero = indexConstant(b, loc, 0);
  Value empty =
      tensor::EmptyOp::create(b, loc, ArrayRef<int64_t>{numExperts}, f32);
  auto logitOf = [&](OpBuilder &nb, Location nl, Value e) {
    return routedLogit(nb, nl, logits, noise, t, e);
  };
  // out[e] = f(e, out[e]) over the experts, a parallel loop.
  auto map = [&](Value out,
                 function_ref<Value(OpBuilder &, Location, Value, Value)> f) {
    AffineMap identity = b.getMultiDimIdentityMap(1);
    return linalg::GenericOp::create(
               b, loc, TypeRange{out.getType()}, ValueRange{}, ValueRange{out},
               ArrayRef<AffineMap>{identity},
               ArrayRef<utils::IteratorType>{utils::IteratorType::parallel},
               [&](OpBuilder &gb, Location gl, ValueRange args) {
                 Value e = linalg::IndexOp::create(gb, gl, 0);
                 linalg::YieldOp::create(gb, gl, f(gb, gl, e, args[0]));
               })
        .getResult(0);
  };
  if (routing.getScoring() == ScoringFunc::Sigmoid)
    return map(empty, [&](OpBuilder &nb, Location nl, Value e, Value) {
      return buildSigmoid(nb, nl, logitOf(nb, nl, e));
    });
  // exp(l - max) / sum; maximumf propagates NaN to the whole row.
  Value max = reduce<arith::MaximumFOp>(
      b, loc, zero, numExperts,
      f32Constant(b, loc, -std::numeric_limits<double>::infinity()), logitOf);
  Value exps = map(empty, [&](OpBuilder &nb, Location nl, Value e, Value) {
    return math::ExpOp::create(
        nb, nl, arith::SubFOp::create(nb, nl, logitOf(nb, nl, e), max));
  });
  Value sum = reduce<arith::AddFOp>(
      b, loc, zero, numExperts, f32Constant(b, loc, 0.0),
      [&](OpBuilder &nb, Location nl, Value e) -> Value {
        return tensor::ExtractOp::create(nb, nl, exps, ValueRange{e});
      });
  return map(exps, [&](OpBuilder &nb, Location nl, Value, Value x) {
    return arith::DivFOp::create(nb, nl, x, sum);
  });
}

Value LaneRouter::selectionKey(OpBuilder &b, Location loc, Value scores,
                               Value e) const {
  Type i32 = b.getI32Type(), i64 = b.getI64Type();
  auto i32Constant = [&](int64_t v) {
    return arith::ConstantIntOp::create(b, loc, i32, v).getResult();
  };
  auto i64Constant = [&](int64_t v) {
    return arith::ConstantIntOp::create(b, loc, i64, v).getResult();
  };
  Value s = tensor::ExtractOp::create(b, loc, scores, ValueRange{e});
  if (bias)
    s = arith::AddFOp::create(
        b, loc, s, tensor::ExtractOp::create(b, loc, bias, ValueRange{e}));
  // -0 + 0 is +0: equal scores, equal bits.
  s = arith::AddFOp::create(b, loc, s, f32Constant(b, loc, 0.0));
  Value bits = arith::BitcastOp::create(b, loc, i32, s);
  Value negative = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt,
                                         bits, i32Constant(0));
  Value ordered = arith::SelectOp::create(
      b, loc, negative, arith::XOrIOp::create(b, loc, bits, i32Constant(-1)),
      arith::OrIOp::create(b, loc, bits,
                           i32Constant(static_cast<int32_t>(0x80000000u))));
  Value isNaN = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::UNO, s, s);
  ordered = arith::SelectOp::create(b, loc, isNaN, i32Constant(-1), ordered);
  Value high = arith::ShLIOp::create(
      b, loc, arith::ExtUIOp::create(b, loc, i64, ordered), i64Constant(32));
  Value low =
      arith::SubIOp::create(b, loc, i64Constant(0xFFFFFFFELL),
                            arith::IndexCastUIOp::create(b, loc, i64, e));
  return arith::OrIOp::create(b, loc, high, low);
}

Value LaneRouter::keyScore(OpBuilder &b, Location loc, Value key) const {
  Type i32 = b.getI32Type(), i64 = b.getI64Type();
  Value ordered = arith::TruncIOp::create(
      b, loc, i32,
      arith::ShRUIOp::create(b, loc, key,
                             arith::ConstantIntOp::create(b, loc, i64, 32)));
  Value zero32 = arith::ConstantIntOp::create(b, loc, i32, 0);
  Value wasPositive =
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, ordered, zero32);
  Value bits = arith::SelectOp::create(
      b, loc, wasPositive,
      arith::AndIOp::create(
          b, loc, ordered,
          arith::ConstantIntOp::create(b, loc, i32, 0x7FFFFFFF)),
      arith::XOrIOp::create(b, loc, ordered,
                            arith::ConstantIntOp::create(b, loc, i32, -1)));
  Value score = arith::BitcastOp::create(b, loc, b.getF32Type(), bits);
  Value none =
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, key,
                            arith::ConstantIntOp::create(b, loc, i64, 0));
  return arith::SelectOp::create(
      b, loc, none,
      f32Constant(b, loc, -std::numeric_limits<double>::infinity()), score);
}

Value LaneRouter::keyExpert(OpBuilder &b, Location loc, Value key) const {
  Type i64 = b.getI64Type();
  Value low = arith::AndIOp::create(
      b, loc, key, arith::ConstantIntOp::create(b, loc, i64, 0xFFFFFFFFLL));
  Value expert = arith::IndexCastUIOp::create(
      b, loc, b.getIndexType(),
      arith::SubIOp::create(
          b, loc, arith::ConstantIntOp::create(b, loc, i64, 0xFFFFFFFELL),
          low));
  Value none =
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, key,
                            arith::ConstantIntOp::create(b, loc, i64, 0));
  return arith::SelectOp::create(b, loc, none, indexConstant(b, loc, -1),
                                 expert);
}

Value LaneRouter::buildKeptGroups(OpBuilder &b, Location loc,
                                  Value scores) const {
  int64_t numGroups = routing.getNumGroups();
  int64_t perGroup = numExperts / numGroups;
  Type i64 = b.getI64Type();
  Value zero = indexConstant(b, loc, 0);
  Value groupCount = indexConstant(b, loc, numGroups);
  Value noKey = arith::ConstantIntOp::create(b, loc, i64, 0);
  // Each group's score: its best selection score, or the sum of its best
  // two (-inf where a group has one expert), as the reference's
  // (largest, second largest) pair.
  Value groups = tensor::EmptyOp::create(b, loc, ArrayRef<int64_t>{numGroups},
                                         b.getF32Type());
  groups = buildLoop(
      b, loc, zero, groupCount, {groups},
      [&](OpBuilder &gb, Location gl, Value j, ValueRange carried) {
        Value first =
            arith::MulIOp::create(gb, gl, j, indexConstant(gb, gl, perGroup));
        auto best = [&](Value below) {
          return reduce<arith::MaxUIOp>(
              gb, gl, first, perGroup, noKey,
              [&](OpBuilder &eb, Location el, Value e) -> Value {
                Value key = selectionKey(eb, el, scores, e);
                if (!below)
                  return key;
                Value under = arith::CmpIOp::create(
                    eb, el, arith::CmpIPredicate::ult, key, below);
                return arith::SelectOp::create(eb, el, under, key, noKey);
              });
        };
        Value top = best({});
        Value score = keyScore(gb, gl, top);
        if (routing.getGroupScore() != GroupScore::Max)
          score =
              arith::AddFOp::create(gb, gl, score, keyScore(gb, gl, best(top)));
        return SmallVector<Value>{
            tensor::InsertOp::create(gb, gl, score, carried[0], ValueRange{j})};
      })[0];
  // A group is kept when fewer than topk_groups groups rank before it.
  return buildLoop(
      b, loc, zero, groupCount, {noKey},
      [&](OpBuilder &gb, Location gl, Value j, ValueRange mask) {
        Value score = tensor::ExtractOp::create(gb, gl, groups, ValueRange{j});
        Value isKept = buildGroupIsKept(
            gb, gl, routing, j, score,
            [&](OpBuilder &rb, Location rl, Value other) -> Value {
              return tensor::ExtractOp::create(rb, rl, groups,
                                               ValueRange{other});
            });
        Value bit = arith::ShLIOp::create(
            gb, gl, arith::ConstantIntOp::create(gb, gl, i64, 1),
            arith::IndexCastUIOp::create(gb, gl, i64, j));
        Value added = arith::OrIOp::create(gb, gl, mask[0], bit);
        return SmallVector<Value>{
            arith::SelectOp::create(gb, gl, isKept, added, mask[0])};
      })[0];
}

RoutedToken LaneRouter::route(OpBuilder &b, Location loc, Value t) const {
  Type i64 = b.getI64Type();
  Value scores = buildScores(b, loc, t);
  Value kept;
  if (routing.isGroupLimited())
    kept = buildKeptGroups(b, loc, scores);
  int64_t perGroup =
      routing.isGroupLimited() ? numExperts / routing.getNumGroups() : 0;
  Value noKey = arith::ConstantIntOp::create(b, loc, i64, 0);
  // Choice k: the largest key below choice k-1's among the eligible
  // experts (0 when none is left).
  Value previous = arith::ConstantIntOp::create(b, loc, i64, -1);
  SmallVector<Value> experts;
  for (int64_t k = 0; k < topK; ++k) {
    Value below = previous;
    previous = reduce<arith::MaxUIOp>(
        b, loc, indexConstant(b, loc, 0), numExperts, noKey,
        [&](OpBuilder &eb, Location el, Value e) -> Value {
          Value key = selectionKey(eb, el, scores, e);
          Value candidate = arith::CmpIOp::create(
              eb, el, arith::CmpIPredicate::ult, key, below);
          if (kept) {
            Value group = arith::DivUIOp::create(
                eb, el, e, indexConstant(eb, el, perGroup));
            Value bit = arith::AndIOp::create(
                eb, el,
                arith::ShRUIOp::create(
                    eb, el, kept,
                    arith::IndexCastUIOp::create(eb, el, i64, group)),
                arith::ConstantIntOp::create(eb, el, i64, 1));
            candidate = arith::AndIOp::create(
                eb, el, candidate,
                arith::TruncIOp::create(eb, el, eb.getI1Type(), bit));
          }
          return arith::SelectOp::create(eb, el, candidate, key, noKey);
        });
    experts.push_back(keyExpert(b, loc, previous));
  }
  return finishToken(b, loc, routing, numExperts, uniform, t, experts,
                     [&](OpBuilder &sb, Location sl, Value e) -> Value {
                       return tensor::ExtractOp::create(sb, sl, scores,
                                                        ValueRange{e});
                     });
}

struct FuseRouting : OpRewritePattern<RoutingPlanOp> {
  FuseRouting(MLIRContext *context, bool tokenParallel, int64_t laneMaxTokens)
      : OpRewritePattern(context), tokenParallel(tokenParallel),
        laneMaxTokens(laneMaxTokens) {}

  LogicalResult matchAndRewrite(RoutingPlanOp plan,
                                PatternRewriter &rewriter) const override {
    auto gate = plan.getIds().getDefiningOp<GateOp>();
    if (!gate || plan.getIds() != gate.getIds())
      return rewriter.notifyMatchFailure(plan, "ids not from a moe.gate");
    if (const char *reason = whyNotFusible(gate))
      return rewriter.notifyMatchFailure(plan, reason);
    // Everything the loop reads is the gate's operands: it goes where the
    // gate was, before every user of the gate and of the plan.
    rewriter.setInsertionPoint(gate);
    Location loc = plan.getLoc();
    RoutingAttr routing = gate.getRouting();
    int64_t numExperts = gate.getNumExperts();
    int64_t topK = routing.getTopK();
    Type f32 = rewriter.getF32Type(), i32 = rewriter.getI32Type();
    Value numTokens = tensor::DimOp::create(rewriter, loc, gate.getLogits(), 0);
    // Tokens routed per iteration: a chunk's, counting as it goes, or one
    // (counted per chunk after).
    OpFoldResult chunkTokens =
        rewriter.getIndexAttr(tokenParallel ? 1 : kRoutingChunkTokens);
    Value numChunks = buildNumChunks(rewriter, loc, numTokens, chunkTokens);
    TokenRouter router(gate);
    // A zeroed work row of `rows` rows.
    auto zeroedWork = [&](OpBuilder &wb, Location wl, OpFoldResult rows) {
      Value empty = tensor::EmptyOp::create(
          wb, wl,
          ArrayRef<OpFoldResult>{rows,
                                 wb.getIndexAttr(router.getWorkColumns())},
          f32);
      return linalg::FillOp::create(wb, wl,
                                    ValueRange{f32Constant(wb, wl, 0.0)},
                                    ValueRange{empty})
          .getResult(0);
    };
    // Counting as it goes, a chunk's work row holds its counts, an output
    // of the loop. Routing one token at a time, the row is only the
    // token's scratch: made in the iteration, not a row of a [T, columns]
    // buffer that a parallel loop zeroes and each iteration copies.
    Value weightsInit = buildEmptyRows(rewriter, loc, numTokens, topK, f32);
    Value idsInit = buildEmptyRows(rewriter, loc, numTokens, topK, i32);
    LaneRouter laneRouter(gate);
    // The routing loop: token by token in each chunk, each token by
    // TokenRouter, or (onLanes, one token per iteration) by LaneRouter.
    auto buildRouting = [&](OpBuilder &lb, Location ll, bool onLanes) {
      SmallVector<Value> perChunk;
      if (!tokenParallel)
        perChunk.push_back(zeroedWork(lb, ll, numChunks));
      return buildChunkParallel(
          lb, ll, numTokens, {weightsInit, idsInit}, perChunk,
          [&](OpBuilder &cb, Location cl, Value first, Value count,
              ValueRange tokenRows, ValueRange chunkRows) {
            SmallVector<Value> init(tokenRows);
            // LaneRouter's scratch is its own.
            if (tokenParallel && !onLanes)
              init.push_back(zeroedWork(cb, cl, cb.getIndexAttr(1)));
            else if (!tokenParallel)
              llvm::append_range(init, chunkRows);
            SmallVector<Value> routed = buildLoop(
                cb, cl, indexConstant(cb, cl, 0), count, init,
                [&](OpBuilder &tb, Location tl, Value i, ValueRange carried) {
                  Value t = arith::AddIOp::create(tb, tl, first, i);
                  RoutedToken token;
                  Value counts;
                  if (onLanes) {
                    token = laneRouter.route(tb, tl, t);
                  } else {
                    TokenRouter::Routed routed =
                        router.route(tb, tl, t, carried[2]);
                    token.weights = routed.weights;
                    token.ids = routed.ids;
                    counts = routed.work;
                  }
                  Value weights = carried[0], ids = carried[1];
                  for (int64_t k = 0; k < topK; ++k) {
                    Value choice = indexConstant(tb, tl, k);
                    weights = tensor::InsertOp::create(tb, tl, token.weights[k],
                                                       weights,
                                                       ValueRange{i, choice});
                    ids = tensor::InsertOp::create(tb, tl, token.ids[k], ids,
                                                   ValueRange{i, choice});
                    if (!tokenParallel)
                      counts = buildCountAssignment(tb, tl, counts,
                                                    token.ids[k], numExperts);
                  }
                  SmallVector<Value> next{weights, ids};
                  if (counts)
                    next.push_back(counts);
                  return next;
                });
            if (tokenParallel && !onLanes)
              routed.pop_back();
            return routed;
          },
          chunkTokens);
    };
    SmallVector<Value> results;
    if (tokenParallel && laneMaxTokens > 0 && !whyNotOnLanes(gate)) {
      // Few tokens: on lanes; the host picks from T. Both loops write the
      // same rows, so that one buffer holds them whichever runs.
      Value few = arith::CmpIOp::create(
          rewriter, loc, arith::CmpIPredicate::ule, numTokens,
          indexConstant(rewriter, loc, laneMaxTokens));
      auto choice = scf::IfOp::create(
          rewriter, loc, TypeRange{weightsInit.getType(), idsInit.getType()},
          few, /*addThenBlock=*/true, /*addElseBlock=*/true);
      for (auto [block, onLanes] :
           {std::pair{choice.thenBlock(), true}, {choice.elseBlock(), false}}) {
        OpBuilder bb = OpBuilder::atBlockBegin(block);
        scf::YieldOp::create(bb, loc, buildRouting(bb, loc, onLanes));
      }
      results = choice.getResults();
    } else {
      results = buildRouting(rewriter, loc, /*onLanes=*/false);
    }
    Value weights = results[0], ids = results[1];
    // The plan's chunks: the routing loop's when it counted as it went,
    // else sized from T (buildPlanChunkTokens).
    Value planChunkTokens =
        tokenParallel
            ? buildPlanChunkTokens(rewriter, loc, numTokens, topK)
            : getValueOrCreateConstantIndexOp(rewriter, loc, chunkTokens);
    Value chunkCounts =
        tokenParallel ? buildChunkExpertCounts(rewriter, loc, ids, numExperts,
                                               planChunkTokens)
                      : results[2];
    rewriter.replaceOp(plan,
                       buildRoutingPlanResults(rewriter, loc, plan, ids,
                                               chunkCounts, planChunkTokens));
    rewriter.replaceOp(gate, ValueRange{castToType(rewriter, loc, weights,
                                                   gate.getWeights().getType()),
                                        castToType(rewriter, loc, ids,
                                                   gate.getIds().getType())});
    return success();
  }

  bool tokenParallel;
  int64_t laneMaxTokens;
};

struct MoEFuseRoutingPass
    : public moe::impl::MoEFuseRoutingPassBase<MoEFuseRoutingPass> {
  using MoEFuseRoutingPassBase::MoEFuseRoutingPassBase;

  LogicalResult initialize(MLIRContext *context) override {
    if (laneMaxTokens < 0)
      return emitError(UnknownLoc::get(context))
             << "moe-fuse-routing: lane-max-tokens must be at least 0";
    return success();
  }

  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseRouting>(&getContext(), tokenParallel, laneMaxTokens);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
