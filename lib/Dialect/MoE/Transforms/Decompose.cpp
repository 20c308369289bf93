//===- Decompose.cpp - moe.layer to routing ops ---------------------------===//
//
// Splits a whole MoE block into router logits (linalg), moe.gate,
// moe.dispatch, per-projection moe.expert_matmul with the activation as
// linalg.generic, moe.combine, and the shared expert in linalg (FP8 and bf16
// shared weights as an expert every token picks).
//
//===----------------------------------------------------------------------===//

#include "moe/Dialect/MoE/Transforms/Passes.h"

#include "ExpertParallel.h"
#include "moe/Dialect/MoE/Utils/TensorBuilders.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEDECOMPOSEPASS
#include "moe/Dialect/MoE/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// The feed-forward weights of one expert kind (routed or shared).
struct FeedForward {
  Value gate; // null for ungated experts
  Value up;
  Value down;
};

/// `act(gate) * up` for gated experts (`buildGatedActivation`), `act(up)`
/// otherwise, element-wise.
static Value buildHidden(OpBuilder &b, Location loc, Activation act,
                         const SwigluClamp &clamp, Value gate, Value up,
                         Type elementType) {
  if (!gate)
    return buildElementwise(b, loc, up, elementType,
                            [&](OpBuilder &nb, Location nl, ValueRange args) {
                              return buildActivation(nb, nl, act, args[0]);
                            });
  return buildElementwise(b, loc, ValueRange{gate, up}, elementType,
                          [&](OpBuilder &nb, Location nl, ValueRange args) {
                            return buildGatedActivation(nb, nl, act, clamp,
                                                        args[0], args[1]);
                          });
}

/// The shared expert on all tokens, accumulated in f32: `[T, H]`.
static Value buildSharedExpert(OpBuilder &b, Location loc, Value x,
                               Activation act, const SwigluClamp &clamp,
                               const FeedForward &ffn) {
  Type f32 = b.getF32Type();
  Value gate = ffn.gate ? buildLinear(b, loc, x, ffn.gate, f32) : Value();
  Value up = buildLinear(b, loc, x, ffn.up, f32);
  Value hidden = buildHidden(b, loc, act, clamp, gate, up, f32);
  return buildLinear(b, loc, hidden, ffn.down, f32);
}

/// `matrix[t, e] + bias[e]` in f32 (`matrix` f32 `[T, E]`, `bias` `[E]`).
static Value addRowBias(OpBuilder &b, Location loc, Value matrix, Value bias) {
  MLIRContext *ctx = b.getContext();
  AffineExpr t, e;
  bindDims(ctx, t, e);
  SmallVector<AffineMap> maps = {AffineMap::get(2, 0, {t, e}, ctx),
                                 AffineMap::get(2, 0, {e}, ctx),
                                 AffineMap::get(2, 0, {t, e}, ctx)};
  Value init = buildEmptyLike(b, loc, matrix, b.getF32Type());
  return linalg::GenericOp::create(
             b, loc, init.getType(), ValueRange{matrix, bias}, ValueRange{init},
             maps,
             SmallVector<utils::IteratorType>(2, utils::IteratorType::parallel),
             [](OpBuilder &nb, Location nl, ValueRange args) {
               Value value = args[1];
               if (!value.getType().isF32())
                 value = arith::ExtFOp::create(nb, nl, nb.getF32Type(), value);
               linalg::YieldOp::create(
                   nb, nl,
                   arith::AddFOp::create(nb, nl, args[0], value).getResult());
             })
      .getResult(0);
}

/// The choices of zero (identity) experts, ids `numExperts` and up: the
/// ids with those replaced by -1 (not dispatched) and the `[T, 1]` f32 sum
/// of their weights per token.
static std::pair<Value, Value> splitZeroExperts(OpBuilder &b, Location loc,
                                                Value ids, Value weights,
                                                int64_t numExperts) {
  MLIRContext *ctx = b.getContext();
  Type i32 = b.getI32Type(), f32 = b.getF32Type();
  AffineExpr t, k;
  bindDims(ctx, t, k);
  AffineMap identity = AffineMap::get(2, 0, {t, k}, ctx);
  auto isZeroExpert = [&](OpBuilder &nb, Location nl, Value id) {
    return arith::CmpIOp::create(
        nb, nl, arith::CmpIPredicate::sge, id,
        arith::ConstantIntOp::create(nb, nl, i32, numExperts));
  };
  Value routed =
      linalg::GenericOp::create(
          b, loc, ids.getType(), ValueRange{ids},
          ValueRange{buildEmptyLike(b, loc, ids, i32)},
          SmallVector<AffineMap>{identity, identity},
          SmallVector<utils::IteratorType>(2, utils::IteratorType::parallel),
          [&](OpBuilder &nb, Location nl, ValueRange args) {
            Value none = arith::ConstantIntOp::create(nb, nl, i32, -1);
            linalg::YieldOp::create(
                nb, nl,
                arith::SelectOp::create(nb, nl, isZeroExpert(nb, nl, args[0]),
                                        none, args[0])
                    .getResult());
          })
          .getResult(0);
  Value zero = buildZeros(b, loc, ids, f32, /*lastDim=*/1);
  Value identityWeights =
      linalg::GenericOp::create(
          b, loc, zero.getType(), ValueRange{ids, weights}, ValueRange{zero},
          SmallVector<AffineMap>{
              identity, identity,
              AffineMap::get(2, 0, {t, getAffineConstantExpr(0, ctx)}, ctx)},
          SmallVector<utils::IteratorType>{utils::IteratorType::parallel,
                                           utils::IteratorType::reduction},
          [&](OpBuilder &nb, Location nl, ValueRange args) {
            Value weight = arith::SelectOp::create(
                nb, nl, isZeroExpert(nb, nl, args[0]), args[1],
                arith::ConstantOp::create(nb, nl, nb.getF32FloatAttr(0)));
            linalg::YieldOp::create(
                nb, nl,
                arith::AddFOp::create(nb, nl, args[2], weight).getResult());
          })
          .getResult(0);
  return {routed, identityWeights};
}

/// With `weight_inputs`, every (token, choice) is a row of its own.
struct WeightedChoices {
  Value inputs; // [T*K, H]: the token times its choice's weight
  Value ids;    // [T*K, 1]: the choice's expert (-1: dropped)
  Value ones;   // [T*K, 1]: combine weights, f32
};

static WeightedChoices buildWeightedChoices(OpBuilder &b, Location loc, Value x,
                                            Value weights, Value ids) {
  MLIRContext *ctx = b.getContext();
  auto xType = llvm::cast<RankedTensorType>(x.getType());
  Type element = xType.getElementType();
  Type f32 = b.getF32Type();
  int64_t numTokens = xType.getDimSize(0), hidden = xType.getDimSize(1);
  int64_t choices =
      llvm::cast<RankedTensorType>(weights.getType()).getDimSize(1);
  int64_t rows = ShapedType::isDynamic(numTokens) ? ShapedType::kDynamic
                                                  : numTokens * choices;
  OpFoldResult tokens = tensor::getMixedSize(b, loc, x, 0);
  Value empty = tensor::EmptyOp::create(
      b, loc,
      ArrayRef<OpFoldResult>{tokens, b.getIndexAttr(choices),
                             b.getIndexAttr(hidden)},
      element);
  AffineExpr t, k, h;
  bindDims(ctx, t, k, h);
  SmallVector<AffineMap> maps = {AffineMap::get(3, 0, {t, h}, ctx),
                                 AffineMap::get(3, 0, {t, k}, ctx),
                                 AffineMap::get(3, 0, {t, k, h}, ctx)};
  Value scaled =
      linalg::GenericOp::create(
          b, loc, empty.getType(), ValueRange{x, weights}, ValueRange{empty},
          maps,
          SmallVector<utils::IteratorType>(3, utils::IteratorType::parallel),
          [&](OpBuilder &nb, Location nl, ValueRange args) {
            Value value = args[0];
            if (!element.isF32())
              value = arith::ExtFOp::create(nb, nl, f32, value);
            value = arith::MulFOp::create(nb, nl, value, args[1]);
            if (!element.isF32())
              value = arith::TruncFOp::create(nb, nl, element, value);
            linalg::YieldOp::create(nb, nl, value);
          })
          .getResult(0);
  WeightedChoices result;
  result.inputs = tensor::CollapseShapeOp::create(
      b, loc, RankedTensorType::get({rows, hidden}, element), scaled,
      ArrayRef<ReassociationIndices>{{0, 1}, {2}});
  Type i32 = b.getI32Type();
  Value flat = tensor::CollapseShapeOp::create(
      b, loc, RankedTensorType::get({rows}, i32), ids,
      ArrayRef<ReassociationIndices>{{0, 1}});
  OpFoldResult numRows = tensor::getMixedSize(b, loc, flat, 0);
  result.ids = tensor::ExpandShapeOp::create(
      b, loc, RankedTensorType::get({rows, 1}, i32), flat,
      ArrayRef<ReassociationIndices>{{0, 1}},
      ArrayRef<OpFoldResult>{numRows, b.getIndexAttr(1)});
  result.ones = buildFilled(b, loc, result.ids, f32, b.getF32FloatAttr(1));
  return result;
}

/// The per-token sum of the combined rows of `buildWeightedChoices`:
/// `[T*K, H]` -> `[T, H]`.
static Value sumChoices(OpBuilder &b, Location loc, Value combined, Value x,
                        int64_t choices) {
  auto xType = llvm::cast<RankedTensorType>(x.getType());
  Type element = xType.getElementType();
  int64_t numTokens = xType.getDimSize(0), hidden = xType.getDimSize(1);
  OpFoldResult tokens = tensor::getMixedSize(b, loc, x, 0);
  Value perChoice = tensor::ExpandShapeOp::create(
      b, loc, RankedTensorType::get({numTokens, choices, hidden}, element),
      combined, ArrayRef<ReassociationIndices>{{0, 1}, {2}},
      ArrayRef<OpFoldResult>{tokens, b.getIndexAttr(choices),
                             b.getIndexAttr(hidden)});
  Value zero = buildZeros(b, loc, x, element);
  return linalg::ReduceOp::create(
             b, loc, ValueRange{perChoice}, ValueRange{zero},
             ArrayRef<int64_t>{1},
             [](OpBuilder &nb, Location nl, ValueRange args) {
               linalg::YieldOp::create(
                   nb, nl,
                   arith::AddFOp::create(nb, nl, args[0], args[1]).getResult());
             })
      .getResult(0);
}

struct DecomposeLayer : OpRewritePattern<LayerOp> {
  DecomposeLayer(MLIRContext *context, int64_t rowAlign)
      : OpRewritePattern(context), rowAlign(rowAlign) {}

  LogicalResult matchAndRewrite(LayerOp layer,
                                PatternRewriter &rewriter) const override {
    Location loc = layer.getLoc();
    Type f32 = rewriter.getF32Type();
    Value x = layer.getInput();
    auto inputType = llvm::cast<RankedTensorType>(x.getType());
    Type elementType = inputType.getElementType();
    int64_t numTokens = inputType.getDimSize(0);
    int64_t hidden = inputType.getDimSize(1);
    int64_t numExperts = layer.getNumExperts();
    RoutingAttr routing = layer.getRouting();
    int64_t choices = routing.getChoicesPerToken(layer.getNumCandidates());
    Activation act = layer.getActivation();
    SwigluClamp clamp;
    if (layer.getSwigluAlpha() && layer.getSwigluLimit())
      clamp = {layer.getSwigluAlphaAttr().getValueAsDouble(),
               layer.getSwigluLimitAttr().getValueAsDouble()};

    // Router logits (plus the router bias), and the noise term of noisy
    // gating when noise is given.
    Value logits = buildLinear(rewriter, loc, x, layer.getRouter(), f32);
    if (Value bias = layer.getRouterBias())
      logits = addRowBias(rewriter, loc, logits, bias);
    Value gateNoise;
    if (layer.getNoise()) {
      Value noiseLogits =
          buildLinear(rewriter, loc, x, layer.getNoiseRouter(), f32);
      gateNoise = buildElementwise(
          rewriter, loc, ValueRange{layer.getNoise(), noiseLogits}, f32,
          [&](OpBuilder &nb, Location nl, ValueRange args) {
            return arith::MulFOp::create(nb, nl, args[0],
                                         buildSoftplus(nb, nl, args[1]))
                .getResult();
          });
    }

    // Block-scaled (FP8) and bf16 shared weights: an expert that every
    // token picks once with weight 1, on the routed experts' ops, so that
    // its weights take their kernels (decoded on the fly, the bf16 dot
    // product) instead of being dequantized whole on every call or widened
    // to f32. Its plan depends on T alone: built between the router's
    // logits and the routing, its loops join a GPU kernel of either (the
    // router's, moe-fuse-sibling-loops; or the routing block's, when the
    // router's logits are chosen on T: moe-linears-to-bf16-terms).
    DispatchOp sharedDispatch;
    if (layer.hasSharedExpert() &&
        (layer.getSharedUpScale() ||
         llvm::cast<RankedTensorType>(layer.getSharedUp().getType())
             .getElementType()
             .isBF16())) {
      Type i32 = rewriter.getI32Type();
      // [T, 1] columns.
      Value ids =
          buildFilled(rewriter, loc, x, i32, rewriter.getI32IntegerAttr(0), 1);
      // The shared expert accumulates in f32 whatever the activations'
      // type: its rows are the tokens in f32.
      Value sharedX = x;
      if (!elementType.isF32())
        sharedX = buildElementwise(
            rewriter, loc, x, f32,
            [](OpBuilder &, Location, ValueRange args) { return args[0]; });
      sharedDispatch = DispatchOp::create(
          rewriter, loc,
          RankedTensorType::get({ShapedType::kDynamic, hidden}, f32),
          RankedTensorType::get({2}, rewriter.getI64Type()),
          RankedTensorType::get({numTokens, 1}, i32), sharedX, ids,
          /*capacity=*/Value(), rewriter.getI64IntegerAttr(rowAlign));
    }

    // Routing.
    auto choiceType = [&](Type type) {
      return RankedTensorType::get({numTokens, choices}, type);
    };
    SmallVector<Type> gateTypes = {choiceType(f32),
                                   choiceType(rewriter.getI32Type())};
    llvm::append_range(gateTypes, layer.getStats().getTypes());
    auto gate = GateOp::create(
        rewriter, loc, gateTypes, logits, layer.getScoreBias(), gateNoise,
        layer.getUniform(), routing, layer.getStatisticsAttr());

    // Dispatch to expert-grouped rows. With weight_inputs, each choice is a
    // row of its own, `w[t,k] * x[t]`, routed to its expert alone
    // ([T*K, H] rows, ids [T*K, 1]).
    int64_t dynamic = ShapedType::kDynamic;
    auto rowsType = [&](int64_t features) {
      return RankedTensorType::get({dynamic, features}, elementType);
    };
    Value dispatched = x, ids = gate.getIds(), weights = gate.getWeights();
    // Zero experts (ids E and up) are not dispatched: their weight times
    // the token is added at the end.
    Value identityWeights;
    if (layer.getNumZeroExperts()) {
      std::tie(ids, identityWeights) =
          splitZeroExperts(rewriter, loc, ids, weights, numExperts);
    }
    int64_t dispatchRows = numTokens;
    if (layer.getWeightInputs()) {
      WeightedChoices rowsOfChoices =
          buildWeightedChoices(rewriter, loc, x, weights, ids);
      dispatched = rowsOfChoices.inputs;
      ids = rowsOfChoices.ids;
      weights = rowsOfChoices.ones;
      dispatchRows = llvm::cast<RankedTensorType>(ids.getType()).getDimSize(0);
    }
    // Under expert parallelism the rows go to their experts' ranks
    // unpadded, and are dispatched there to the rank's window of experts.
    std::optional<uint64_t> numRanks = layer.getExpertRanks();
    auto dispatch = DispatchOp::create(
        rewriter, loc, rowsType(hidden),
        RankedTensorType::get({numExperts + 1}, rewriter.getI64Type()),
        ids.getType(), dispatched, ids,
        /*capacity=*/Value(),
        rewriter.getI64IntegerAttr(numRanks ? 1 : rowAlign));
    Value rows = dispatch.getRows();
    Value offsets = dispatch.getExpertRows();
    auto expertType =
        llvm::cast<RankedTensorType>(layer.getExpertUp().getType());
    std::optional<ExpertExchange> exchange;
    Value windowRowMap;
    if (numRanks) {
      exchange = buildExpertExchange(rewriter, loc, dispatch,
                                     static_cast<int64_t>(*numRanks));
      auto window = DispatchOp::create(
          rewriter, loc, rowsType(hidden),
          RankedTensorType::get({expertType.getDimSize(0) + 1},
                                rewriter.getI64Type()),
          exchange->windowIds.getType(), exchange->rows, exchange->windowIds,
          /*capacity=*/Value(), rewriter.getI64IntegerAttr(rowAlign));
      rows = window.getRows();
      offsets = window.getExpertRows();
      windowRowMap = window.getRowMap();
    }

    // Routed experts.
    int64_t intermediate = expertType.getDimSize(1);
    // Block scales (FP8 weights) go with their projection.
    auto projectRowsOf = [&](Value rowOffsets, Value input, Value weight,
                             Value bias, Value scale, int64_t features) {
      Type rowElement =
          llvm::cast<RankedTensorType>(input.getType()).getElementType();
      return ExpertMatmulOp::create(
                 rewriter, loc,
                 RankedTensorType::get({dynamic, features}, rowElement), input,
                 weight, rowOffsets, bias, scale,
                 scale ? layer.getWeightBlockAttr() : DenseI64ArrayAttr())
          .getResult();
    };
    auto projectRows = [&](Value input, Value weight, Value bias, Value scale,
                           int64_t features) {
      return projectRowsOf(offsets, input, weight, bias, scale, features);
    };
    Value gateRows;
    if (layer.getExpertGate())
      gateRows = projectRows(rows, layer.getExpertGate(), layer.getGateBias(),
                             layer.getGateScale(), intermediate);
    Value upRows = projectRows(rows, layer.getExpertUp(), layer.getUpBias(),
                               layer.getUpScale(), intermediate);
    Value hiddenRows =
        buildHidden(rewriter, loc, act, clamp, gateRows, upRows, elementType);
    Value downRows =
        projectRows(hiddenRows, layer.getExpertDown(), layer.getDownBias(),
                    layer.getDownScale(), hidden);
    if (exchange) {
      // The results in the order the rows came, back to their ranks.
      Value ones = buildFilled(rewriter, loc, exchange->windowIds, f32,
                               rewriter.getF32FloatAttr(1));
      Value results = CombineOp::create(rewriter, loc, rowsType(hidden),
                                        downRows, ones, windowRowMap,
                                        /*init=*/Value())
                          .getResult();
      downRows = buildReturnExchange(rewriter, loc, *exchange, results);
    }
    // The shared expert's output ([T, H] f32), optionally behind a sigmoid
    // gate (its [T, 1] logits, or null).
    auto buildShared = [&]() -> std::pair<Value, Value> {
      Value sharedOut;
      if (sharedDispatch) {
        // [N, K] as [1, N, K]: the weights of the one expert.
        auto oneExpert = [&](Value value) -> Value {
          if (!value)
            return value;
          auto type = llvm::cast<RankedTensorType>(value.getType());
          return tensor::ExpandShapeOp::create(
              rewriter, loc,
              RankedTensorType::get({1, type.getDimSize(0), type.getDimSize(1)},
                                    type.getElementType()),
              value, ArrayRef<ReassociationIndices>{{0, 1}, {2}});
        };
        // All expanded before the projections: a pass fusing them (gate
        // and up) creates the fused op at the first one.
        Value gateWeight = oneExpert(layer.getSharedGate()),
              gateScale = oneExpert(layer.getSharedGateScale()),
              upWeight = oneExpert(layer.getSharedUp()),
              upScale = oneExpert(layer.getSharedUpScale()),
              downWeight = oneExpert(layer.getSharedDown()),
              downScale = oneExpert(layer.getSharedDownScale());
        auto project = [&](Value input, Value weight, Value scale,
                           int64_t features) -> Value {
          if (!weight)
            return weight;
          return projectRowsOf(sharedDispatch.getExpertRows(), input, weight,
                               Value(), scale, features);
        };
        int64_t sharedInter =
            llvm::cast<RankedTensorType>(layer.getSharedUp().getType())
                .getDimSize(0);
        Value sharedRows = sharedDispatch.getRows();
        Value sharedHidden = buildHidden(
            rewriter, loc, act, clamp,
            project(sharedRows, gateWeight, gateScale, sharedInter),
            project(sharedRows, upWeight, upScale, sharedInter), f32);
        // Every token has one row, in token order (rows follow assignment
        // order within an expert), with weight 1: the combine is the first
        // T rows, a view rather than a gather.
        Value sharedDown =
            project(sharedHidden, downWeight, downScale, hidden);
        OpFoldResult zero = rewriter.getIndexAttr(0);
        OpFoldResult one = rewriter.getIndexAttr(1);
        sharedOut = tensor::ExtractSliceOp::create(
                        rewriter, loc,
                        RankedTensorType::get({numTokens, hidden}, f32),
                        sharedDown, ArrayRef<OpFoldResult>{zero, zero},
                        ArrayRef<OpFoldResult>{
                            tensor::getMixedSize(rewriter, loc, x, 0),
                            rewriter.getIndexAttr(hidden)},
                        ArrayRef<OpFoldResult>{one, one})
                        .getResult();
      } else {
        FeedForward shared{layer.getSharedGate(), layer.getSharedUp(),
                           layer.getSharedDown()};
        sharedOut = buildSharedExpert(rewriter, loc, x, act, clamp, shared);
      }
      Value gateLogits;
      if (layer.getSharedExpertGate())
        gateLogits =
            buildLinear(rewriter, loc, x, layer.getSharedExpertGate(), f32);
      return {sharedOut, gateLogits};
    };
    // An ungated shared expert's output is what the combine's sums are
    // added to (its init): no pass of its own adds it. A gated one's
    // product would take that pass anyway, and rows of weighted inputs and
    // zero experts add their terms after the combine: those add it last.
    bool sharedIntoCombine = layer.hasSharedExpert() &&
                             !layer.getSharedExpertGate() &&
                             !layer.getWeightInputs() && !identityWeights;
    Value combineInit;
    if (sharedIntoCombine)
      combineInit = buildShared().first;
    Value result =
        CombineOp::create(
            rewriter, loc,
            RankedTensorType::get({dispatchRows, hidden}, elementType),
            downRows, weights, dispatch.getRowMap(), combineInit)
            .getResult();
    if (layer.getWeightInputs())
      result = sumChoices(rewriter, loc, result, x, choices);
    if (identityWeights)
      result = buildElementwise(
          rewriter, loc, ValueRange{result, x, identityWeights}, elementType,
          [](OpBuilder &nb, Location nl, ValueRange args) {
            return arith::AddFOp::create(
                       nb, nl, args[0],
                       arith::MulFOp::create(nb, nl, args[2], args[1]))
                .getResult();
          });

    // Shared expert, optionally behind a sigmoid gate, when the combine
    // did not add it.
    if (layer.hasSharedExpert() && !sharedIntoCombine) {
      auto [sharedOut, gateLogits] = buildShared();
      SmallVector<Value> operands = {result, sharedOut};
      if (gateLogits)
        operands.push_back(gateLogits);
      result = buildElementwise(
          rewriter, loc, operands, elementType,
          [&](OpBuilder &nb, Location nl, ValueRange args) {
            Value sharedValue = args[1];
            if (args.size() == 3)
              sharedValue = arith::MulFOp::create(
                  nb, nl, buildSigmoid(nb, nl, args[2]), sharedValue);
            return arith::AddFOp::create(nb, nl, args[0], sharedValue)
                .getResult();
          });
    }

    SmallVector<Value> replacements = {result};
    llvm::append_range(replacements, gate.getStats());
    rewriter.replaceOp(layer, replacements);
    return success();
  }

  int64_t rowAlign;
};

struct MoEDecomposePass
    : public moe::impl::MoEDecomposePassBase<MoEDecomposePass> {
  using MoEDecomposePassBase::MoEDecomposePassBase;

  LogicalResult initialize(MLIRContext *context) override {
    if (rowAlign < 1)
      return emitError(UnknownLoc::get(context))
             << "moe-decompose: row-align must be at least 1, got "
             << static_cast<int64_t>(rowAlign);
    return success();
  }

  void runOnOperation() override {
    if (failed(verifyExpertParallelLayers(getOperation())))
      return signalPassFailure();
    RewritePatternSet patterns(&getContext());
    populateMoEDecomposePatterns(patterns, rowAlign);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace

void mlir::moe::populateMoEDecomposePatterns(RewritePatternSet &patterns,
                                             int64_t rowAlign) {
  patterns.add<DecomposeLayer>(patterns.getContext(), rowAlign);
}
