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

/// Builds the routing of one token into its rows.
class TokenRouter {
public:
  TokenRouter(GateOp gate)
      : logits(gate.getLogits()), noise(gate.getNoise()), bias(gate.getBias()),
        uniform(gate.getUniform()), routing(gate.getRouting()),
        numExperts(gate.getNumExperts()), topK(routing.getTopK()) {}

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

  Value logits, noise, bias, uniform;
  RoutingAttr routing;
  int64_t numExperts, topK;
};

Value TokenRouter::buildScores(OpBuilder &b, Location loc, Value t,
                               Value work) const {
  auto routedLogit = [&](OpBuilder &nb, Location nl, Value e) -> Value {
    Value l = tensor::ExtractOp::create(nb, nl, logits, ValueRange{t, e});
    if (noise)
      l = arith::AddFOp::create(
          nb, nl, l,
          tensor::ExtractOp::create(nb, nl, noise, ValueRange{t, e}));
    return l;
  };
  if (routing.getScoring() == ScoringFunc::Sigmoid)
    return forExperts(b, loc, {work},
                      [&](OpBuilder &nb, Location nl, Value e, ValueRange row) {
                        Value s = buildSigmoid(nb, nl, routedLogit(nb, nl, e));
                        return SmallVector<Value>{
                            writeRow(nb, nl, s, row[0], scoresAt(), e)};
                      })[0];
  // exp(l - max) / sum, reduced in expert order; maximumf propagates NaN to
  // the whole row.
  SmallVector<Value> withMax = forExperts(
      b, loc,
      {work, f32Constant(b, loc, -std::numeric_limits<double>::infinity())},
      [&](OpBuilder &nb, Location nl, Value e, ValueRange carried) {
        Value l = routedLogit(nb, nl, e);
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
  Value one = indexConstant(b, loc, 1);
  Value groupCount = indexConstant(b, loc, numGroups);
  return buildLoop(
      b, loc, zero, groupCount, init,
      [&](OpBuilder &gb, Location gl, Value j, ValueRange kept) {
        Value score = readRow(gb, gl, work, groupsAt(), j);
        Value rank = buildLoop(
            gb, gl, zero, groupCount, {zero},
            [&](OpBuilder &rb, Location rl, Value other, ValueRange carried) {
              Value before =
                  ranksBefore(rb, rl, readRow(rb, rl, work, groupsAt(), other),
                              other, score, j);
              return SmallVector<Value>{arith::AddIOp::create(
                  rb, rl, carried[0],
                  arith::SelectOp::create(rb, rl, before, one, zero))};
            })[0];
        Value isKept = arith::CmpIOp::create(
            gb, gl, arith::CmpIPredicate::slt, rank,
            indexConstant(gb, gl, routing.getTopkGroups()));
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
  Value zero = indexConstant(b, loc, 0);
  Value eCount = indexConstant(b, loc, numExperts);
  SmallVector<Value> gates, kept;
  for (int64_t k = 0; k < topK; ++k) {
    // Every choice finds an expert (K <= eligible experts); the guard keeps
    // a malformed state from reading out of bounds.
    Value expert = best[topK + k];
    Value found =
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge, expert, zero);
    Value safe = arith::SelectOp::create(b, loc, found, expert, zero);
    gates.push_back(arith::SelectOp::create(
        b, loc, found, readRow(b, loc, routed.work, scoresAt(), safe),
        f32Constant(b, loc, 0.0)));
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

struct FuseRouting : OpRewritePattern<RoutingPlanOp> {
  FuseRouting(MLIRContext *context, bool tokenParallel)
      : OpRewritePattern(context), tokenParallel(tokenParallel) {}

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
    SmallVector<Value> perChunk;
    if (!tokenParallel)
      perChunk.push_back(zeroedWork(rewriter, loc, numChunks));
    SmallVector<Value> results = buildChunkParallel(
        rewriter, loc, numTokens,
        {buildEmptyRows(rewriter, loc, numTokens, topK, f32),
         buildEmptyRows(rewriter, loc, numTokens, topK, i32)},
        perChunk,
        [&](OpBuilder &cb, Location cl, Value first, Value count,
            ValueRange tokenRows, ValueRange chunkRows) {
          SmallVector<Value> init(tokenRows);
          if (tokenParallel)
            init.push_back(zeroedWork(cb, cl, cb.getIndexAttr(1)));
          else
            llvm::append_range(init, chunkRows);
          SmallVector<Value> routed = buildLoop(
              cb, cl, indexConstant(cb, cl, 0), count, init,
              [&](OpBuilder &tb, Location tl, Value i, ValueRange carried) {
                Value t = arith::AddIOp::create(tb, tl, first, i);
                TokenRouter::Routed routed =
                    router.route(tb, tl, t, carried[2]);
                Value weights = carried[0], ids = carried[1],
                      counts = routed.work;
                for (int64_t k = 0; k < topK; ++k) {
                  Value choice = indexConstant(tb, tl, k);
                  weights =
                      tensor::InsertOp::create(tb, tl, routed.weights[k],
                                               weights, ValueRange{i, choice});
                  ids = tensor::InsertOp::create(tb, tl, routed.ids[k], ids,
                                                 ValueRange{i, choice});
                  if (!tokenParallel)
                    counts = buildCountAssignment(tb, tl, counts,
                                                  routed.ids[k], numExperts);
                }
                return SmallVector<Value>{weights, ids, counts};
              });
          if (tokenParallel)
            routed.pop_back();
          return routed;
        },
        chunkTokens);
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
};

struct MoEFuseRoutingPass
    : public moe::impl::MoEFuseRoutingPassBase<MoEFuseRoutingPass> {
  using MoEFuseRoutingPassBase::MoEFuseRoutingPassBase;

  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<FuseRouting>(&getContext(), tokenParallel);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
