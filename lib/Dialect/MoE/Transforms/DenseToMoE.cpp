//===- DenseToMoE.cpp - A dense FFN rewritten into experts
//-----------------===//
//
// moe-dense-to-moe: a dense FFN, in its dense-expert form (a moe.layer with
// one expert that every token takes with weight 1), becomes a moe.layer of
// E experts made from its weights:
// - split (MoEBERT): the neurons in order of importance, the first S in
//   every expert, the others dealt round-robin; each expert's weights are
//   a gather of the dense rows (columns of the down projection);
// - upcycle (sparse upcycling): every expert is the dense FFN, a broadcast
//   of its weights.
// The router is bound from the checkpoint (`router-weight`) or built by the
// documented rule. See docs/DenseToMoE.md.
//
//===----------------------------------------------------------------------===//

#include "moe/Dialect/MoE/Transforms/Passes.h"
#include "moe/Dialect/MoE/Utils/TensorBuilders.h"

#include "mlir/AsmParser/AsmParser.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/MathExtras.h"

#include <numeric>

namespace mlir::moe {
#define GEN_PASS_DEF_MOEDENSETOMOEPASS
#include "moe/Dialect/MoE/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// Padding in a neuron table: the slot holds no neuron (zero weights).
constexpr int64_t kNoNeuron = -1;

/// Whether `layer` is a dense FFN: one routed expert that every token takes
/// with weight exactly 1 (dropless top-1 over one expert whose weight is a
/// softmax, a renormalized score or unweighted, unscaled), without routing
/// statistics, whose types would depend on the number of experts.
bool isDenseForm(LayerOp layer) {
  RoutingAttr routing = layer.getRouting();
  if (layer.getNumExperts() != 1 || layer.getNumZeroExperts() != 0 ||
      layer.getExpertRanks() || !layer.getStats().empty() ||
      routing.isExpertChoice() || routing.getTopK() != 1 ||
      routing.hasCapacity() || routing.getNoisy() ||
      routing.getScaleValue() != 1.0)
    return false;
  return routing.getUnweighted() ||
         routing.getRenormalize() != Renormalize::None ||
         routing.getScoring() != ScoringFunc::Sigmoid;
}

/// The importance of each of the `size` neurons from the layer's
/// `moe.neuron_importance` (f32 or f64 array, or dense float elements);
/// every neuron 0 when absent (the index order).
FailureOr<SmallVector<double>> readImportance(LayerOp layer, int64_t size) {
  SmallVector<double> scores;
  Attribute attr = layer->getAttr(kNeuronImportanceAttrName);
  if (!attr)
    return SmallVector<double>(size, 0.0);
  if (auto array = llvm::dyn_cast<DenseF32ArrayAttr>(attr))
    llvm::append_range(scores, array.asArrayRef());
  else if (auto array = llvm::dyn_cast<DenseF64ArrayAttr>(attr))
    llvm::append_range(scores, array.asArrayRef());
  else if (auto elements = llvm::dyn_cast<DenseFPElementsAttr>(attr);
           elements && elements.getType().getRank() == 1)
    for (const APFloat &value : elements.getValues<APFloat>())
      scores.push_back(value.convertToDouble());
  else
    return layer.emitOpError()
           << "'" << kNeuronImportanceAttrName
           << "' must be an array or rank-1 dense elements of floats";
  if (static_cast<int64_t>(scores.size()) != size)
    return layer.emitOpError()
           << "'" << kNeuronImportanceAttrName << "' has " << scores.size()
           << " scores for " << size << " neurons";
  if (!llvm::all_of(scores, [](double s) { return std::isfinite(s); }))
    return layer.emitOpError()
           << "'" << kNeuronImportanceAttrName << "' scores must be finite";
  return scores;
}

/// MoEBERT's split of the neurons: their order by descending importance
/// (ties to the lower index); the first `shared` of them are the shared
/// neurons, the rest are dealt round-robin over `numExperts` experts (the
/// i-th of them to expert i mod E).
struct NeuronSplit {
  /// The shared neurons, most important first.
  SmallVector<int64_t> shared;
  /// Row e: expert e's own neurons, padded with kNoNeuron to the longest
  /// row.
  SmallVector<SmallVector<int64_t>> experts;
};

NeuronSplit buildNeuronSplit(ArrayRef<double> importance, int64_t numExperts,
                             int64_t shared) {
  SmallVector<int64_t> order(importance.size());
  std::iota(order.begin(), order.end(), 0);
  // Most important first; ties in neuron order (a stable order, without
  // std::stable_sort's deprecated temporary buffer).
  llvm::sort(order, [&](int64_t a, int64_t b) {
    if (importance[a] != importance[b])
      return importance[a] > importance[b];
    return a < b;
  });
  NeuronSplit split;
  split.shared.assign(order.begin(), order.begin() + shared);
  split.experts.resize(numExperts);
  for (size_t i = shared; i < order.size(); ++i)
    split.experts[(i - shared) % numExperts].push_back(order[i]);
  int64_t own =
      llvm::divideCeil(static_cast<int64_t>(order.size()) - shared, numExperts);
  for (SmallVector<int64_t> &row : split.experts)
    row.resize(own, kNoNeuron);
  return split;
}

/// `[E, M]` constant of `values` (row-major) with `elementType`.
Value buildTableConstant(OpBuilder &b, Location loc,
                         ArrayRef<SmallVector<int64_t>> table) {
  SmallVector<int64_t> flat;
  for (const SmallVector<int64_t> &row : table)
    llvm::append_range(flat, row);
  auto type =
      RankedTensorType::get({static_cast<int64_t>(table.size()),
                             static_cast<int64_t>(table.front().size())},
                            b.getI64Type());
  return arith::ConstantOp::create(
      b, loc, DenseIntElementsAttr::get(type, ArrayRef<int64_t>(flat)));
}

/// `[E, ...]` from a `[1, ...]` value: dimension `neuronDim` picks, for
/// expert e and slot m, the neuron `table[e][m]` of `value` (zero for
/// kNoNeuron); the other dimensions are `value`'s. A linalg.generic over
/// the result reading `value` with tensor.extract (a gather).
Value buildNeuronGather(OpBuilder &b, Location loc, Value value, Value table,
                        unsigned neuronDim) {
  auto type = llvm::cast<RankedTensorType>(value.getType());
  auto tableType = llvm::cast<RankedTensorType>(table.getType());
  SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(b, loc, value);
  sizes[0] = b.getIndexAttr(tableType.getDimSize(0));
  sizes[neuronDim] = b.getIndexAttr(tableType.getDimSize(1));
  Value init = tensor::EmptyOp::create(b, loc, sizes, type.getElementType());
  unsigned rank = type.getRank();
  MLIRContext *ctx = b.getContext();
  SmallVector<AffineMap> maps = {
      AffineMap::get(
          rank, 0, {getAffineDimExpr(0, ctx), getAffineDimExpr(neuronDim, ctx)},
          ctx),
      AffineMap::getMultiDimIdentityMap(rank, ctx)};
  SmallVector<utils::IteratorType> iterators(rank,
                                             utils::IteratorType::parallel);
  return linalg::GenericOp::create(
             b, loc, init.getType(), ValueRange{table}, ValueRange{init}, maps,
             iterators,
             [&](OpBuilder &nb, Location nl, ValueRange args) {
               Value neuron = args[0];
               Value zeroIndex =
                   arith::ConstantIntOp::create(nb, nl, nb.getI64Type(), 0);
               Value present = arith::CmpIOp::create(
                   nb, nl, arith::CmpIPredicate::sge, neuron, zeroIndex);
               Value row = arith::IndexCastOp::create(
                   nb, nl, nb.getIndexType(),
                   arith::SelectOp::create(nb, nl, present, neuron, zeroIndex));
               SmallVector<Value> indices;
               for (unsigned d = 0; d < rank; ++d)
                 indices.push_back(
                     d == 0 ? arith::ConstantIndexOp::create(nb, nl, 0)
                     : d == neuronDim
                         ? row
                         : linalg::IndexOp::create(nb, nl, d).getResult());
               Value read = tensor::ExtractOp::create(nb, nl, value, indices);
               Value zero = arith::ConstantOp::create(
                   nb, nl, nb.getZeroAttr(type.getElementType()));
               linalg::YieldOp::create(nb, nl,
                                       ValueRange{arith::SelectOp::create(
                                           nb, nl, present, read, zero)});
             })
      .getResult(0);
}

/// `[E, ...]` copies of a `[1, ...]` value (linalg.broadcast of it without
/// its unit dimension).
Value buildExpertCopies(OpBuilder &b, Location loc, Value value,
                        int64_t numExperts) {
  auto type = llvm::cast<RankedTensorType>(value.getType());
  SmallVector<ReassociationIndices> reassociation;
  reassociation.push_back({0, 1});
  for (int64_t d = 2; d < type.getRank(); ++d)
    reassociation.push_back({d});
  Value one = tensor::CollapseShapeOp::create(b, loc, value, reassociation);
  SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(b, loc, value);
  sizes[0] = b.getIndexAttr(numExperts);
  Value init = tensor::EmptyOp::create(b, loc, sizes, type.getElementType());
  return linalg::BroadcastOp::create(b, loc, one, init, ArrayRef<int64_t>{0})
      ->getResult(0);
}

/// MoEfication's similarity router: row e is the mean of the rows of the
/// `[1, I, H]` `projection` that `table` row e names (padding excluded),
/// accumulated in f32 and converted to `elementType`. One reduction over
/// (expert, column, slot) reading the rows with tensor.extract: no
/// gathered copy.
Value buildSimilarityRouter(OpBuilder &b, Location loc, Value projection,
                            ArrayRef<SmallVector<int64_t>> table,
                            Type elementType) {
  int64_t numExperts = table.size(), slots = table.front().size();
  SmallVector<float> coefficients;
  for (const SmallVector<int64_t> &row : table) {
    int64_t own = llvm::count_if(row, [](int64_t n) { return n != kNoNeuron; });
    for (int64_t m = 0; m < slots; ++m)
      coefficients.push_back(
          row[m] != kNoNeuron ? 1.0f / static_cast<float>(own) : 0.0f);
  }
  auto coefficientType =
      RankedTensorType::get({numExperts, slots}, b.getF32Type());
  Value neurons = buildTableConstant(b, loc, table);
  Value weights = arith::ConstantOp::create(
      b, loc,
      DenseFPElementsAttr::get(coefficientType, ArrayRef<float>(coefficients)));
  MLIRContext *ctx = b.getContext();
  AffineExpr e = getAffineDimExpr(0, ctx), m = getAffineDimExpr(2, ctx),
             h = getAffineDimExpr(1, ctx);
  AffineMap perSlot = AffineMap::get(3, 0, {e, m}, ctx);
  SmallVector<AffineMap> maps = {perSlot, perSlot,
                                 AffineMap::get(3, 0, {e, h}, ctx)};
  SmallVector<OpFoldResult> sizes = {
      b.getIndexAttr(numExperts), tensor::getMixedSize(b, loc, projection, 2)};
  Value init =
      linalg::FillOp::create(
          b, loc,
          arith::ConstantOp::create(b, loc, b.getF32FloatAttr(0.0)).getResult(),
          tensor::EmptyOp::create(b, loc, sizes, b.getF32Type()).getResult())
          .getResult(0);
  Value sum =
      linalg::GenericOp::create(
          b, loc, init.getType(), ValueRange{neurons, weights},
          ValueRange{init}, maps,
          {utils::IteratorType::parallel, utils::IteratorType::parallel,
           utils::IteratorType::reduction},
          [&](OpBuilder &nb, Location nl, ValueRange args) {
            // A padding slot (coefficient 0) reads row 0.
            Value zero =
                arith::ConstantIntOp::create(nb, nl, nb.getI64Type(), 0);
            Value row = arith::IndexCastOp::create(
                nb, nl, nb.getIndexType(),
                arith::MaxSIOp::create(nb, nl, args[0], zero));
            Value read = tensor::ExtractOp::create(
                nb, nl, projection,
                ValueRange{arith::ConstantIndexOp::create(nb, nl, 0), row,
                           linalg::IndexOp::create(nb, nl, 1)});
            Value product = arith::MulFOp::create(
                nb, nl, castFloat(nb, nl, read, nb.getF32Type()), args[1]);
            linalg::YieldOp::create(
                nb, nl,
                ValueRange{arith::AddFOp::create(nb, nl, args[2], product)});
          })
          .getResult(0);
  if (elementType.isF32())
    return sum;
  return buildElementwise(
      b, loc, sum, elementType,
      [](OpBuilder &, Location, ValueRange args) { return args[0]; });
}

/// Whether nothing calls `func` (it may take new arguments).
bool hasNoCallers(func::FuncOp func) {
  std::optional<SymbolTable::UseRange> uses =
      SymbolTable::getSymbolUses(func, func->getParentOp());
  return uses && uses->empty();
}

/// A second read of `value` that nothing else shares: when `value` is an
/// argument bound to a checkpoint tensor (`moe.weight`) of a function
/// nothing calls, seen through static reshapes, a new argument bound to the
/// same tensor with the reshapes replayed on it; `value` otherwise. Each
/// gather of a tensor then reads it through views of its own, which
/// moe-pack-expert-weights folds into a packing function (two arguments
/// bound to one name bind the tensor once).
Value readAgain(OpBuilder &b, Value value) {
  SmallVector<Operation *> reshapes;
  Value root = value;
  while (Operation *op = root.getDefiningOp()) {
    if (!llvm::isa<tensor::ExpandShapeOp, tensor::CollapseShapeOp>(op))
      return value;
    reshapes.push_back(op);
    root = op->getOperand(0);
  }
  auto arg = llvm::dyn_cast<BlockArgument>(root);
  auto func = arg ? llvm::dyn_cast<func::FuncOp>(arg.getOwner()->getParentOp())
                  : func::FuncOp();
  if (!func || arg.getOwner() != &func.getBody().front() ||
      !func.getArgAttr(arg.getArgNumber(), kWeightAttrName) ||
      !hasNoCallers(func))
    return value;
  unsigned index = func.getNumArguments();
  if (failed(func.insertArgument(index, arg.getType(),
                                 func.getArgAttrDict(arg.getArgNumber()),
                                 arg.getLoc())))
    return value;
  IRMapping mapping;
  mapping.map(root, func.getArgument(index));
  for (Operation *op : llvm::reverse(reshapes))
    b.clone(*op, mapping);
  return mapping.lookup(value);
}

struct DenseToMoEPass
    : public moe::impl::MoEDenseToMoEPassBase<DenseToMoEPass> {
  using MoEDenseToMoEPassBase::MoEDenseToMoEPassBase;

  void runOnOperation() override {
    Operation *root = getOperation();
    FailureOr<RoutingAttr> routing = getRouting(root);
    if (failed(routing))
      return signalPassFailure();
    SmallVector<LayerOp> layers;
    root->walk([&](LayerOp layer) {
      if (isDenseForm(layer))
        layers.push_back(layer);
    });
    if (!routerWeight.empty() && layers.size() > 1) {
      root->emitError() << "moe-dense-to-moe: 'router-weight' names one "
                           "checkpoint tensor, but "
                        << layers.size() << " dense layers would bind it";
      return signalPassFailure();
    }
    for (LayerOp layer : layers)
      if (failed(rewrite(layer, *routing)))
        return signalPassFailure();
  }

  /// The options checked, and the routing of the new layers: `routing`, or
  /// `<softmax, top_k = K, unweighted>` (split: the chosen experts' outputs
  /// add up) or `<softmax, top_k = K, renormalize>` (upcycle: the copies'
  /// weights sum to 1).
  FailureOr<RoutingAttr> getRouting(Operation *root) {
    auto fail = [&](const Twine &message) {
      root->emitError() << "moe-dense-to-moe: " << message;
      return failure();
    };
    if (mode != "split" && mode != "upcycle")
      return fail("mode must be 'split' or 'upcycle', got '" + mode + "'");
    if (experts < 1)
      return fail("experts must be at least 1, got " + Twine(experts));
    if (shared < 0)
      return fail("shared must be non-negative, got " + Twine(shared));
    if (mode == "upcycle" && shared != 0)
      return fail("shared neurons apply to mode=split (every upcycled "
                  "expert holds every neuron)");
    if (topK < 0 || topK > experts)
      return fail("top-k must be 0 (the routing's) or in [1, experts = " +
                  Twine(experts) + "], got " + Twine(topK));
    MLIRContext *ctx = root->getContext();
    if (routingText.empty()) {
      int64_t k = topK ? static_cast<int64_t>(topK) : 1;
      bool split = mode == "split";
      return RoutingAttr::get(
          ctx, ScoringFunc::Softmax, RoutingMode::TokenChoice, k,
          split ? Renormalize::None : Renormalize::Selected, APFloat(1.0),
          /*selectionBias=*/false, /*numGroups=*/1, /*topkGroups=*/1,
          GroupScore::SumTop2, CapacityKind::None, /*fixedCapacity=*/0,
          APFloat(0.0), Rounding::Ceil, /*minCapacity=*/0, /*groupSize=*/0,
          Priority::Position, SecondPolicy::All, /*noisy=*/false, APFloat(0.0),
          /*unweighted=*/split);
    }
    std::string text = routingText;
    if (!StringRef(text).starts_with("#"))
      text = "#moe.routing" + text;
    size_t read = 0;
    Attribute attr = parseAttribute(text, ctx, Type(), &read);
    auto parsed = llvm::dyn_cast_if_present<RoutingAttr>(attr);
    if (!parsed || read != text.size())
      return fail("routing '" + routingText +
                  "' is not a #moe.routing attribute");
    if (failed(parsed.verifyForExperts(
            [&] { return root->emitError() << "moe-dense-to-moe: "; },
            experts)))
      return failure();
    if (parsed.getNoisy() || parsed.getSecondPolicy() == SecondPolicy::Random ||
        parsed.getSelectionBias())
      return fail("routing '" + routingText +
                  "' needs operands (noise, uniform samples or a selection "
                  "bias) that a dense layer has not");
    if (topK && !parsed.isExpertChoice() && parsed.getTopK() != topK)
      return fail("top-k = " + Twine(topK) +
                  " but the routing has top_k = " + Twine(parsed.getTopK()));
    return parsed;
  }

  /// The new layer's router: the bound checkpoint tensor `router-weight`
  /// (a new argument of the enclosing function), the similarity router of
  /// the `[1, I, H]` `rows` (split) or zeros (upcycle: every expert is the
  /// same).
  FailureOr<Value> buildRouter(OpBuilder &b, LayerOp layer, Value rows,
                               ArrayRef<SmallVector<int64_t>> table) {
    Location loc = layer.getLoc();
    auto denseRouter =
        llvm::cast<RankedTensorType>(layer.getRouter().getType());
    auto type = denseRouter.clone(
        {static_cast<int64_t>(experts), denseRouter.getDimSize(1)});
    if (!routerWeight.empty()) {
      auto func = layer->getParentOfType<func::FuncOp>();
      if (!func || func.isExternal())
        return layer.emitOpError()
               << "moe-dense-to-moe: 'router-weight' binds a new argument "
                  "of the enclosing func.func, which this layer has not";
      if (!hasNoCallers(func))
        return layer.emitOpError()
               << "moe-dense-to-moe: 'router-weight' binds a new argument of "
                  "@"
               << func.getSymName() << ", which its callers do not pass";
      if (!type.hasStaticShape())
        return layer.emitOpError() << "moe-dense-to-moe: 'router-weight' "
                                      "needs a router of static width";
      unsigned index = func.getNumArguments();
      NamedAttribute binding(StringAttr::get(b.getContext(), kWeightAttrName),
                             b.getStringAttr(routerWeight));
      if (failed(func.insertArgument(index, type,
                                     b.getDictionaryAttr({binding}), loc)))
        return layer.emitOpError() << "moe-dense-to-moe: cannot add the "
                                      "router argument";
      return Value(func.getArgument(index));
    }
    if (rows)
      return buildSimilarityRouter(b, loc, readAgain(b, rows), table,
                                   type.getElementType());
    SmallVector<OpFoldResult> sizes = {
        b.getIndexAttr(experts),
        tensor::getMixedSize(b, loc, layer.getRouter(), 1)};
    Value empty = tensor::EmptyOp::create(b, loc, sizes, type.getElementType());
    Value zero =
        arith::ConstantOp::create(b, loc, b.getZeroAttr(type.getElementType()));
    return linalg::FillOp::create(b, loc, zero, empty).getResult(0);
  }

  LogicalResult rewrite(LayerOp layer, RoutingAttr routing) {
    OpBuilder b(layer);
    Location loc = layer.getLoc();
    bool split = mode == "split";
    auto upType = llvm::cast<RankedTensorType>(layer.getExpertUp().getType());
    int64_t neurons = upType.getDimSize(1);
    int64_t numExperts = experts;
    NeuronSplit neuronSplit;
    Value table, sharedTable;
    if (split) {
      if (ShapedType::isDynamic(neurons))
        return layer.emitOpError() << "moe-dense-to-moe: mode=split needs "
                                      "a static intermediate size";
      if (neurons - shared < numExperts)
        return layer.emitOpError()
               << "moe-dense-to-moe: " << neurons << " neurons with "
               << static_cast<int64_t>(shared)
               << " shared leave fewer than one for each of " << numExperts
               << " experts";
      if (shared > 0 && layer.hasSharedExpert())
        return layer.emitOpError()
               << "moe-dense-to-moe: the shared neurons become the shared "
                  "expert, which this layer has already";
      if (shared > 0 && (layer.getGateBias() || layer.getUpBias()))
        return layer.emitOpError()
               << "moe-dense-to-moe: the shared neurons become the shared "
                  "expert, which has no gate or up biases";
      FailureOr<SmallVector<double>> importance =
          readImportance(layer, neurons);
      if (failed(importance))
        return failure();
      neuronSplit = buildNeuronSplit(*importance, numExperts, shared);
      table = buildTableConstant(b, loc, neuronSplit.experts);
      if (shared > 0)
        sharedTable = buildTableConstant(b, loc, {neuronSplit.shared});
    }

    // What a split reads its neurons from: the weight, dequantized (to f32)
    // first when block-scaled.
    std::optional<ArrayRef<int64_t>> block = layer.getWeightBlock();
    auto splitSource = [&](Value weight, Value scale,
                           unsigned neuronDim) -> Value {
      if (!weight || !scale)
        return weight;
      // The depth of gate and up is the input width, of down the neurons.
      OpFoldResult depth =
          neuronDim == 1 ? tensor::getMixedSize(b, loc, layer.getInput(), 1)
                         : OpFoldResult(b.getIndexAttr(neurons));
      return buildDequantized(b, loc, weight, scale, *block, depth);
    };
    // The experts' weights: the gather of each one's own neurons (split),
    // or copies of the dense weights and their scales (upcycle).
    auto expertOperand = [&](Value source, unsigned neuronDim) -> Value {
      if (!source)
        return {};
      return split ? buildNeuronGather(b, loc, source, table, neuronDim)
                   : buildExpertCopies(b, loc, source, numExperts);
    };
    // The shared expert's `[S, H]` (`[H, S]` for down) weights.
    auto sharedOperand = [&](Value source, unsigned neuronDim) -> Value {
      if (!source || !sharedTable)
        return {};
      Value gathered = buildNeuronGather(b, loc, readAgain(b, source),
                                         sharedTable, neuronDim);
      return tensor::CollapseShapeOp::create(
          b, loc, gathered, ArrayRef<ReassociationIndices>{{0, 1}, {2}});
    };
    Value gateSource =
        split ? splitSource(layer.getExpertGate(), layer.getGateScale(), 1)
              : layer.getExpertGate();
    Value upSource =
        split ? splitSource(layer.getExpertUp(), layer.getUpScale(), 1)
              : layer.getExpertUp();
    Value downSource =
        split ? splitSource(layer.getExpertDown(), layer.getDownScale(), 2)
              : layer.getExpertDown();
    Value gate = expertOperand(gateSource, 1);
    Value up = expertOperand(upSource, 1);
    Value down = expertOperand(downSource, 2);
    Value gateBias = expertOperand(layer.getGateBias(), 1);
    Value upBias = expertOperand(layer.getUpBias(), 1);
    // Every expert adds the down bias: with unweighted routing, K experts
    // of weight `scale` add it K * scale times, so each adds its share.
    Value downBias;
    if (Value bias = layer.getDownBias()) {
      downBias = buildExpertCopies(b, loc, bias, numExperts);
      if (routing.getUnweighted()) {
        double times = routing.getScaleValue() *
                       (routing.isExpertChoice() ? 1.0 : routing.getTopK());
        if (times != 1.0)
          downBias = buildElementwise(
              b, loc, downBias,
              llvm::cast<RankedTensorType>(bias.getType()).getElementType(),
              [&](OpBuilder &nb, Location nl, ValueRange args) -> Value {
                return arith::MulFOp::create(
                    nb, nl, args[0],
                    arith::ConstantOp::create(nb, nl,
                                              nb.getF32FloatAttr(1.0 / times)));
              });
      }
    }
    Value sharedGate =
        sharedTable ? sharedOperand(gateSource, 1) : layer.getSharedGate();
    Value sharedUp =
        sharedTable ? sharedOperand(upSource, 1) : layer.getSharedUp();
    Value sharedDown =
        sharedTable ? sharedOperand(downSource, 2) : layer.getSharedDown();
    auto keepScale = [&](Value scale) -> Value {
      return split || !scale ? Value()
                             : buildExpertCopies(b, loc, scale, numExperts);
    };
    FailureOr<Value> router = buildRouter(
        b, layer, split ? (gateSource ? gateSource : upSource) : Value(),
        neuronSplit.experts);
    if (failed(router))
      return failure();

    Value none;
    auto moe = LayerOp::create(
        b, loc, layer.getResult().getType(), TypeRange{}, layer.getInput(),
        *router, /*router_bias=*/none,
        /*noise_router=*/none, /*score_bias=*/none, /*noise=*/none,
        /*uniform=*/none, gate, up, down, gateBias, upBias, downBias,
        sharedGate, sharedUp, sharedDown, layer.getSharedExpertGate(),
        keepScale(layer.getGateScale()), keepScale(layer.getUpScale()),
        keepScale(layer.getDownScale()), layer.getSharedGateScale(),
        layer.getSharedUpScale(), layer.getSharedDownScale(),
        split ? DenseI64ArrayAttr() : layer.getWeightBlockAttr(), routing,
        layer.getActivationAttr(), layer.getSwigluAlphaAttr(),
        // Every weight of the dense form is 1: `weight_inputs` changed
        // nothing there, and would scale the experts' inputs here.
        layer.getSwigluLimitAttr(), /*weight_inputs=*/UnitAttr(),
        /*zero_experts=*/IntegerAttr(), /*expert_ranks=*/IntegerAttr(),
        /*statistics=*/StatisticsAttr());
    // Scales of the shared expert keep the block size.
    if (split && (layer.getSharedGateScale() || layer.getSharedUpScale() ||
                  layer.getSharedDownScale()))
      moe.setWeightBlockAttr(layer.getWeightBlockAttr());
    // Other discardable attributes carry over.
    for (NamedAttribute attr : layer->getDiscardableAttrs())
      if (attr.getName() != kNeuronImportanceAttrName)
        moe->setAttr(attr.getName(), attr.getValue());
    layer.getResult().replaceAllUsesWith(moe.getResult());
    layer.erase();
    return success();
  }
};

} // namespace
