//===- MoEOps.cpp - MoE dialect operations --------------------------------===//
//
// Verifiers and custom assembly directives of the moe ops. Each verifier rule
// corresponds to a constraint id (c1, c2, ...) in the op's ODS description.
//
//===----------------------------------------------------------------------===//

#include "moe/Dialect/MoE/IR/Communicator.h"
#include "moe/Dialect/MoE/IR/MoE.h"

#include "ShapeChecker.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/SmallSet.h"

using namespace mlir;
using namespace mlir::moe;
using mlir::moe::detail::ShapeChecker;

//===----------------------------------------------------------------------===//
// Statistics
//===----------------------------------------------------------------------===//

RankedTensorType mlir::moe::getStatisticType(MLIRContext *context,
                                             Statistic statistic,
                                             int64_t numExperts) {
  Builder b(context);
  switch (statistic) {
  case Statistic::TokensPerExpert:
  case Statistic::TokensPerExpertBeforeDrop:
    return RankedTensorType::get({numExperts}, b.getI64Type());
  case Statistic::DroppedCount:
    return RankedTensorType::get({}, b.getI64Type());
  case Statistic::LoadBalancingLoss:
  case Statistic::ZLoss:
  case Statistic::ImportanceLoss:
    return RankedTensorType::get({}, b.getF32Type());
  }
  llvm_unreachable("unknown statistic");
}

/// Parses the `[name, ...]` list of an op's `statistics` clause.
static ParseResult parseStatisticList(OpAsmParser &parser,
                                      StatisticsAttr &stats) {
  SmallVector<Statistic> list;
  auto parseOne = [&]() -> ParseResult {
    SMLoc loc = parser.getCurrentLocation();
    StringRef name;
    if (parser.parseKeyword(&name))
      return failure();
    std::optional<Statistic> stat = symbolizeStatistic(name);
    if (!stat)
      return parser.emitError(loc, "unknown statistic '") << name << "'";
    list.push_back(*stat);
    return success();
  };
  SMLoc listLoc = parser.getCurrentLocation();
  if (parser.parseCommaSeparatedList(OpAsmParser::Delimiter::Square, parseOne))
    return failure();
  if (list.empty())
    return parser.emitError(listLoc, "statistics list must not be empty; "
                                     "omit the clause instead");
  stats = StatisticsAttr::get(parser.getContext(), list);
  return success();
}

static void printStatisticList(OpAsmPrinter &printer, Operation *,
                               StatisticsAttr stats) {
  printer << "[";
  llvm::interleaveComma(stats.getValues(), printer, [&](Statistic stat) {
    printer << stringifyStatistic(stat);
  });
  printer << "]";
}

/// Parses `[gate %g : type,] up %u : type, down %d : type`.
static ParseResult parseProjections(
    OpAsmParser &parser, std::optional<OpAsmParser::UnresolvedOperand> &gate,
    Type &gateType, OpAsmParser::UnresolvedOperand &up, Type &upType,
    OpAsmParser::UnresolvedOperand &down, Type &downType) {
  if (succeeded(parser.parseOptionalKeyword("gate"))) {
    gate.emplace();
    if (parser.parseOperand(*gate) || parser.parseColonType(gateType) ||
        parser.parseComma())
      return failure();
  }
  return failure(parser.parseKeyword("up") || parser.parseOperand(up) ||
                 parser.parseColonType(upType) || parser.parseComma() ||
                 parser.parseKeyword("down") || parser.parseOperand(down) ||
                 parser.parseColonType(downType));
}

static void printProjections(OpAsmPrinter &printer, Operation *, Value gate,
                             Type gateType, Value up, Type upType, Value down,
                             Type downType) {
  if (gate)
    printer << "gate " << gate << " : " << gateType << ", ";
  printer << "up " << up << " : " << upType << ", down " << down << " : "
          << downType;
}

/// Checks that `results` holds one tensor per requested statistic, typed as
/// `getStatisticType` says, and that no statistic is requested twice.
static LogicalResult verifyStatistics(Operation *op, ArrayRef<Statistic> stats,
                                      ValueRange results, int64_t numExperts) {
  llvm::SmallSet<Statistic, 8> seen;
  for (Statistic stat : stats) {
    if (!seen.insert(stat).second)
      return op->emitOpError() << "statistic '" << stringifyStatistic(stat)
                               << "' requested twice";
  }
  if (results.size() != stats.size())
    return op->emitOpError()
           << "requests " << stats.size() << " statistics but has "
           << results.size() << " statistics results";
  for (auto [stat, result] : llvm::zip(stats, results)) {
    RankedTensorType expected =
        getStatisticType(op->getContext(), stat, numExperts);
    if (result.getType() != expected)
      return op->emitOpError()
             << "statistic '" << stringifyStatistic(stat) << "' must be "
             << expected << ", got " << result.getType();
  }
  return success();
}

/// Checks the routing attribute against the number of experts.
static LogicalResult verifyRouting(Operation *op, RoutingAttr routing,
                                   int64_t numExperts) {
  return routing.verifyForExperts([op] { return op->emitOpError(); },
                                  numExperts);
}

/// Requires `value` to be present iff `required`, naming why.
static LogicalResult verifyPresence(Operation *op, Value value,
                                    StringRef operand, bool required,
                                    StringRef reason) {
  if (value && !required)
    return op->emitOpError()
           << "'" << operand << "' given but " << reason << " is not set";
  if (!value && required)
    return op->emitOpError() << "'" << operand << "' required by " << reason;
  return success();
}

/// Requires `value` (named `name`) to have the element type of `reference`
/// (named `referenceName`).
static LogicalResult verifySameElementType(Operation *op, StringRef name,
                                           Value value, StringRef referenceName,
                                           Value reference) {
  Type actual = llvm::cast<ShapedType>(value.getType()).getElementType();
  Type expected = llvm::cast<ShapedType>(reference.getType()).getElementType();
  if (actual != expected)
    return op->emitOpError()
           << name << " element type " << actual << " must match the "
           << referenceName << " element type " << expected;
  return success();
}

/// Checks the routing operands shared by moe.layer and moe.gate: the
/// selection bias iff `selection_bias`, noise only when `noisy`, uniform
/// samples iff `second = random`.
static LogicalResult verifyRoutingOperands(Operation *op, RoutingAttr routing,
                                           StringRef biasName, Value bias,
                                           Value noise, Value uniform) {
  if (failed(verifyPresence(op, bias, biasName, routing.getSelectionBias(),
                            "routing selection_bias")) ||
      failed(verifyPresence(op, uniform, "uniform",
                            routing.getSecondPolicy() == SecondPolicy::Random,
                            "routing second = random")))
    return failure();
  if (noise && !routing.getNoisy())
    return op->emitOpError("'noise' given but routing noisy is not set");
  return success();
}

/// Statically known experts from dimension `dim` of `value`'s tensor type.
static int64_t staticDim(Value value, unsigned dim) {
  auto type = llvm::dyn_cast<RankedTensorType>(value.getType());
  if (!type || type.getRank() <= dim)
    return ShapedType::kDynamic;
  return type.getDimSize(dim);
}

//===----------------------------------------------------------------------===//
// LayerOp
//===----------------------------------------------------------------------===//

int64_t LayerOp::getNumCandidates() { return staticDim(getRouter(), 0); }

int64_t LayerOp::getNumExperts() {
  return getNumCandidates() - getNumZeroExperts();
}

void LayerOp::getEffects(
    SmallVectorImpl<SideEffects::EffectInstance<MemoryEffects::Effect>>
        &effects) {
  // Pure, but for the exchange of expert parallelism.
  if (getExpertRanks())
    addCommunicatorEffects(effects);
}

Speculation::Speculatability LayerOp::getSpeculatability() {
  return getExpertRanks() ? Speculation::NotSpeculatable
                          : Speculation::Speculatable;
}

LogicalResult LayerOp::verify() {
  // c15.
  int64_t zeroExperts = getNumZeroExperts();
  if (getZeroExperts() && zeroExperts < 1)
    return emitOpError("'zero_experts' must be positive, got ") << zeroExperts;
  ShapeChecker shapes(*this);
  // The router's rows: the experts, or with zero experts the candidates
  // (N = E + zero_experts).
  StringRef rows = zeroExperts ? "N" : "E";
  for (StringRef symbol : {"E", "H", "I", "S"})
    shapes.requirePositive(symbol);
  shapes.requireStatic(rows);
  if (failed(shapes.check("input", getInput().getType(), {"T", "H"})) ||
      failed(shapes.check("router", getRouter().getType(), {rows, "H"})))
    return failure();
  if (zeroExperts) {
    int64_t candidates = shapes.get("N");
    if (candidates <= zeroExperts)
      return emitOpError("the router's ")
             << candidates
             << " rows leave no expert beside 'zero_experts' = " << zeroExperts;
    shapes.fix("E", candidates - zeroExperts, "router rows less zero_experts");
  }
  // c16. Under expert parallelism the expert operands hold a window of W
  // experts.
  StringRef experts = "E";
  if (std::optional<uint64_t> ranks = getExpertRanks()) {
    int64_t numExperts = shapes.get("E");
    int64_t numRanks = static_cast<int64_t>(*ranks);
    if (numRanks < 1 || numRanks > numExperts)
      return emitOpError("'expert_ranks' must be between 1 and the ")
             << numExperts << " experts, got " << numRanks;
    experts = "W";
    shapes.fix(experts, llvm::divideCeil(numExperts, numRanks),
               "ceil(E / expert_ranks)");
  }
  // The stored depth of a weight: `symbol`, or for e2m1 pairs (i8) the
  // symbol's size halved, rounded up.
  auto depthOf = [&](Value weight, StringRef symbol,
                     StringRef halved) -> StringRef {
    if (!weight || !isE2M1Pairs(getElementTypeOrSelf(weight.getType())))
      return symbol;
    shapes.fix(halved, storedDepth(getElementTypeOrSelf(weight.getType()),
                           shapes.get(symbol)),
               (symbol + " / 2 rounded up (e2m1 pairs)").str());
    return halved;
  };
  // c1, c2, c3.
  if ( // c14.
      failed(shapes.checkOptional("router_bias", getRouterBias(), {rows})) ||
      failed(shapes.checkOptional("noise_router", getNoiseRouter(),
                                  {rows, "H"})) ||
      failed(shapes.checkOptional("score_bias", getScoreBias(), {rows})) ||
      failed(shapes.checkOptional("noise", getNoise(), {"T", rows})) ||
      failed(shapes.checkOptional("uniform", getUniform(), {"T"})) ||
      failed(shapes.checkOptional(
          "expert_gate", getExpertGate(),
          {experts, "I", depthOf(getExpertGate(), "H", "ceil(H/2)")})) ||
      failed(shapes.check(
          "expert_up", getExpertUp().getType(),
          {experts, "I", depthOf(getExpertUp(), "H", "ceil(H/2)")})) ||
      failed(shapes.check(
          "expert_down", getExpertDown().getType(),
          {experts, "H", depthOf(getExpertDown(), "I", "ceil(I/2)")})) ||
      failed(
          shapes.checkOptional("gate_bias", getGateBias(), {experts, "I"})) ||
      failed(shapes.checkOptional("up_bias", getUpBias(), {experts, "I"})) ||
      failed(
          shapes.checkOptional("down_bias", getDownBias(), {experts, "H"})) ||
      failed(shapes.checkOptional(
          "shared_gate", getSharedGate(),
          {"S", depthOf(getSharedGate(), "H", "ceil(H/2)")})) ||
      failed(shapes.checkOptional(
          "shared_up", getSharedUp(),
          {"S", depthOf(getSharedUp(), "H", "ceil(H/2)")})) ||
      failed(shapes.checkOptional(
          "shared_down", getSharedDown(),
          {"H", depthOf(getSharedDown(), "S", "ceil(S/2)")})) ||
      failed(shapes.checkOptional("shared_expert_gate", getSharedExpertGate(),
                                  {"1", "H"})))
    return failure();
  if (getGateBias() && !getExpertGate())
    return emitOpError("'gate_bias' given but the experts have no 'gate' "
                       "projection");
  // c4.
  RoutingAttr routing = getRouting();
  if (failed(verifyRouting(*this, routing, getNumCandidates())))
    return failure();
  // c5, c6, c7.
  if (failed(verifyRoutingOperands(*this, routing, "score_bias", getScoreBias(),
                                   getNoise(), getUniform())) ||
      failed(verifyPresence(*this, getNoiseRouter(), "noise_router",
                            routing.getNoisy(), "routing noisy")))
    return failure();
  // c8.
  if (static_cast<bool>(getSharedUp()) != static_cast<bool>(getSharedDown()))
    return emitOpError("shared expert needs both 'shared_up' and "
                       "'shared_down'");
  if ((getSharedGate() || getSharedExpertGate()) && !getSharedUp())
    return emitOpError("'shared_gate' and 'shared_expert_gate' need a shared "
                       "expert ('shared_up', 'shared_down')");
  // c11, c12.
  if (failed(verifyWeightScales()))
    return failure();
  // c13.
  bool clamped = getActivation() == Activation::ClampedSwiglu;
  if (clamped) {
    if (!getExpertGate() || (getSharedUp() && !getSharedGate()))
      return emitOpError("'clamped_swiglu' needs gated experts (a 'gate' "
                         "projection, and 'shared_gate' with a shared "
                         "expert)");
    if (!getSwigluAlpha() || !getSwigluLimit())
      return emitOpError("'clamped_swiglu' needs 'swiglu_alpha' and "
                         "'swiglu_limit'");
    if (!(getSwigluLimitAttr().getValueAsDouble() > 0))
      return emitOpError("'swiglu_limit' must be positive, got ")
             << getSwigluLimitAttr().getValueAsDouble();
  } else if (getSwigluAlpha() || getSwigluLimit()) {
    return emitOpError("'swiglu_alpha' and 'swiglu_limit' go with activation "
                       "'clamped_swiglu' only");
  }
  // c9.
  if (getResult().getType() != getInput().getType())
    return emitOpError() << "result must have the input type "
                         << getInput().getType() << ", got "
                         << getResult().getType();
  // c10.
  return verifyStatistics(*this, getRequestedStatistics(), getStats(),
                          getNumCandidates());
}

LogicalResult LayerOp::verifyWeightScales() {
  struct Scaled {
    StringRef weightName, scaleName;
    Value weight, scale;
    // The weight's depth (its last dimension, unless in e2m1 pairs).
    int64_t depth;
  };
  auto dim = [](Value value, unsigned d) {
    return value ? llvm::cast<ShapedType>(value.getType()).getDimSize(d)
                 : ShapedType::kDynamic;
  };
  int64_t hidden = dim(getInput(), 1), intermediate = dim(getExpertUp(), 1),
          shared = dim(getSharedUp(), 0);
  Scaled pairs[] = {
      {"expert_gate", "gate_scale", getExpertGate(), getGateScale(), hidden},
      {"expert_up", "up_scale", getExpertUp(), getUpScale(), hidden},
      {"expert_down", "down_scale", getExpertDown(), getDownScale(),
       intermediate},
      {"shared_gate", "shared_gate_scale", getSharedGate(),
       getSharedGateScale(), hidden},
      {"shared_up", "shared_up_scale", getSharedUp(), getSharedUpScale(),
       hidden},
      {"shared_down", "shared_down_scale", getSharedDown(),
       getSharedDownScale(), shared}};
  std::optional<ArrayRef<int64_t>> block = getWeightBlock();
  bool anyScale = llvm::any_of(pairs, [](const Scaled &p) {
    return static_cast<bool>(p.scale);
  });
  if (anyScale != block.has_value())
    return emitOpError("block scales and 'weight_block' come together");
  if (block && (block->size() != 2 || (*block)[0] < 1 || (*block)[1] < 1))
    return emitOpError("'weight_block' must be two sizes of at least 1 (rows "
                       "and columns of a weight per scale)");
  for (const Scaled &p : pairs) {
    if (p.scale && !p.weight)
      return emitOpError() << "'" << p.scaleName << "' given without '"
                           << p.weightName << "'";
    if (!p.weight)
      continue;
    auto weightType = llvm::cast<RankedTensorType>(p.weight.getType());
    Type element = weightType.getElementType();
    if (!p.scale) {
      if (llvm::isa<Float8E4M3FNType>(element) || isE2M1Pairs(element))
        return emitOpError() << "the "
                             << (isE2M1Pairs(element) ? "e2m1-pair (i8)"
                                                      : "f8E4M3FN")
                             << " '" << p.weightName
                             << "' needs its block scale '" << p.scaleName
                             << "'";
      continue;
    }
    // The kernels scale whole pairs of e2m1 values.
    if (isE2M1Pairs(element) && (*block)[1] % 2 != 0)
      return emitOpError() << "the e2m1-pair (i8) '" << p.weightName
                           << "' needs an even block depth, got "
                           << (*block)[1];
    SmallVector<int64_t> expected(weightType.getShape());
    if (isE2M1Pairs(element))
      expected.back() = p.depth;
    unsigned rank = expected.size();
    for (unsigned d = 0; d < 2; ++d) {
      int64_t &size = expected[rank - 2 + d];
      if (!ShapedType::isDynamic(size))
        size = llvm::divideCeilSigned(size, (*block)[d]);
    }
    auto expectedType =
        RankedTensorType::get(expected, Float32Type::get(getContext()));
    if (p.scale.getType() != expectedType)
      return emitOpError() << "'" << p.scaleName << "' must be "
                           << expectedType << " ('" << p.weightName
                           << "' in blocks of " << (*block)[0] << " x "
                           << (*block)[1] << "), got " << p.scale.getType();
  }
  return success();
}

//===----------------------------------------------------------------------===//
// GateOp
//===----------------------------------------------------------------------===//

int64_t GateOp::getNumExperts() { return staticDim(getLogits(), 1); }

LogicalResult GateOp::verify() {
  ShapeChecker shapes(*this);
  shapes.requireStatic("E");
  shapes.requireStatic("C");
  // c1.
  if (failed(shapes.check("logits", getLogits().getType(), {"T", "E"})))
    return failure();
  // c2.
  RoutingAttr routing = getRouting();
  int64_t numExperts = getNumExperts();
  if (failed(verifyRouting(*this, routing, numExperts)))
    return failure();
  // c3.
  shapes.fix("C", routing.getChoicesPerToken(numExperts),
             routing.isExpertChoice() ? "the number of experts (expert choice)"
                                      : "routing top_k");
  if (failed(shapes.check("weights", getWeights().getType(), {"T", "C"})) ||
      failed(shapes.check("ids", getIds().getType(), {"T", "C"})))
    return failure();
  // c4, c5, c6.
  if (failed(shapes.checkOptional("bias", getBias(), {"E"})) ||
      failed(shapes.checkOptional("noise", getNoise(), {"T", "E"})) ||
      failed(shapes.checkOptional("uniform", getUniform(), {"T"})))
    return failure();
  if (failed(verifyRoutingOperands(*this, routing, "bias", getBias(),
                                   getNoise(), getUniform())))
    return failure();
  // c7.
  return verifyStatistics(*this, getRequestedStatistics(), getStats(),
                          numExperts);
}

//===----------------------------------------------------------------------===//
// DispatchOp
//===----------------------------------------------------------------------===//

int64_t DispatchOp::getNumExperts() {
  int64_t size = staticDim(getExpertRows(), 0);
  if (ShapedType::isDynamic(size))
    return size;
  return isCapacityLayout() ? size : size - 1;
}

LogicalResult DispatchOp::verify() {
  ShapeChecker shapes(*this);
  for (StringRef symbol : {"E", "K"})
    shapes.requirePositive(symbol);
  shapes.requireStatic("E");
  shapes.requireStatic("E+1");
  // c1, c2.
  if (failed(shapes.check("input", getInput().getType(), {"T", "H"})) ||
      failed(shapes.check("ids", getIds().getType(), {"T", "K"})))
    return failure();
  // c3.
  RankedTensorType rowsType = getRows().getType();
  if (rowsType.getRank() != 2 && rowsType.getRank() != 3)
    return emitOpError() << "'rows' must have shape [N, H] (grouped) or "
                            "[E, C, H] (capacity), got "
                         << rowsType;
  if (failed(verifySameElementType(*this, "'rows'", getRows(), "input",
                                   getInput())))
    return failure();
  // c6.
  int64_t align = getAlignAttr().getInt();
  if (align < 1)
    return emitOpError() << "align must be at least 1, got " << align;
  if (isCapacityLayout()) {
    // c3, c4.
    if (failed(shapes.check("rows", rowsType, {"E", "C", "H"})) ||
        failed(shapes.check("expert_rows", getExpertRows().getType(), {"E"})))
      return failure();
    if (getNumExperts() > kMaxExperts)
      return emitOpError() << "'rows' has more than " << kMaxExperts
                           << " experts (expert ids are i32)";
    // c5.
    if (rowsType.isDynamicDim(1) && !getCapacity())
      return emitOpError("'capacity' operand required: the slot dimension "
                         "of 'rows' is dynamic");
    if (!rowsType.isDynamicDim(1) && getCapacity())
      return emitOpError("'capacity' operand given but the slot dimension of "
                         "'rows' is static");
    if (align != 1)
      return emitOpError("align applies to the grouped layout only");
  } else {
    if (failed(shapes.check("rows", rowsType, {"N", "H"})) ||
        failed(shapes.check("expert_rows", getExpertRows().getType(), {"E+1"})))
      return failure();
    // c4.
    if (getExpertRows().getType().getDimSize(0) - 1 > kMaxExperts)
      return emitOpError() << "'expert_rows' implies more than " << kMaxExperts
                           << " experts (expert ids are i32)";
    if (getExpertRows().getType().getDimSize(0) < 2)
      return emitOpError() << "'expert_rows' must be [E+1] offsets with E >= "
                              "1, got "
                           << getExpertRows().getType();
    if (getCapacity())
      return emitOpError("'capacity' operand applies to the [E, C, H] "
                         "capacity layout only");
  }
  // c7.
  return shapes.check("row_map", getRowMap().getType(), {"T", "K"});
}

//===----------------------------------------------------------------------===//
// ExpertMatmulOp
//===----------------------------------------------------------------------===//

LogicalResult ExpertMatmulOp::verify() {
  ShapeChecker shapes(*this);
  for (StringRef symbol : {"E", "N", "K"})
    shapes.requirePositive(symbol);
  shapes.requireStatic("E");
  shapes.requireStatic("E+1");
  // c2 (e2m1 pairs store K in KP = ceil(K / 2) bytes).
  bool e2m1 = isE2M1Pairs(getWeight().getType().getElementType());
  if (failed(shapes.check("weight", getWeight().getType(),
                          {"E", "N", e2m1 ? "KP" : "K"})))
    return failure();
  int64_t numExperts = shapes.get("E");
  if (numExperts > kMaxExperts)
    return emitOpError() << "'weight' has " << numExperts
                         << " experts, more than " << kMaxExperts
                         << " (expert ids are i32)";
  // c1, c3, c4, c6.
  RankedTensorType inputType = getInput().getType();
  if (inputType.getRank() == 2) {
    if (!getOffsets())
      return emitOpError("'offsets' required for grouped rows [R, K]");
    shapes.fix("E+1", numExperts + 1, "'weight' (E + 1)");
    if (failed(shapes.check("input", inputType, {"R", "K"})) ||
        failed(shapes.check("offsets", getOffsets().getType(), {"E+1"})) ||
        failed(shapes.check("result", getResult().getType(), {"R", "N"})))
      return failure();
  } else if (inputType.getRank() == 3) {
    if (getOffsets())
      return emitOpError("'offsets' apply to grouped rows only, not to "
                         "[E, C, K] capacity slots");
    if (failed(shapes.check("input", inputType, {"E", "C", "K"})) ||
        failed(shapes.check("result", getResult().getType(), {"E", "C", "N"})))
      return failure();
  } else {
    return emitOpError() << "'input' must have shape [R, K] (grouped) or "
                            "[E, C, K] (capacity), got "
                         << inputType;
  }
  if (e2m1) {
    int64_t pairs = shapes.get("KP"), depth = shapes.get("K");
    if (!ShapedType::isDynamic(depth) && !ShapedType::isDynamic(pairs) &&
        pairs != storedDepth(getWeight().getType().getElementType(), depth))
      return emitOpError() << "'weight' of e2m1 pairs (i8) has " << pairs
                           << " bytes of depth for K = " << depth
                           << ", expected " << (depth + 1) / 2;
  }
  // c5.
  if (failed(shapes.checkOptional("bias", getBias(), {"E", "N"})))
    return failure();
  // c7, c8, c9.
  if (static_cast<bool>(getWeightScale()) !=
      static_cast<bool>(getWeightBlockAttr()))
    return emitOpError("'scale' and 'block' come together");
  // c10.
  if (getExactProducts() && getWeightScale())
    return emitOpError("'exact_products' goes with unscaled weights");
  if (std::optional<ArrayRef<int64_t>> block = getWeightBlock()) {
    if (block->size() != 2 || (*block)[0] < 1 || (*block)[1] < 1)
      return emitOpError("'block' must be two sizes of at least 1 (rows and "
                         "columns of the weight per scale)");
    auto ceilDiv = [](int64_t size, int64_t by) {
      return ShapedType::isDynamic(size) ? ShapedType::kDynamic
                                         : llvm::divideCeilSigned(size, by);
    };
    if (e2m1 && (*block)[1] % 2 != 0)
      return emitOpError() << "an e2m1-pair (i8) 'weight' needs an even "
                              "block depth, got "
                           << (*block)[1];
    shapes.fix("NB", ceilDiv(shapes.get("N"), (*block)[0]),
               "'weight' (ceil(N / BN))");
    shapes.fix("KB", ceilDiv(shapes.get("K"), (*block)[1]),
               "'weight' (ceil(K / BK))");
    if (failed(shapes.check("scale", getWeightScale().getType(),
                            {"E", "NB", "KB"})))
      return failure();
  } else if (llvm::isa<Float8E4M3FNType>(
                 getWeight().getType().getElementType())) {
    return emitOpError("an f8E4M3FN 'weight' needs its block 'scale'");
  } else if (e2m1) {
    return emitOpError("an e2m1-pair (i8) 'weight' needs its block 'scale'");
  }
  // c6: the input's element type, or the f32 of the sums.
  if (getResult().getType().getElementType().isF32())
    return success();
  return verifySameElementType(*this, "result", getResult(), "input",
                               getInput());
}

//===----------------------------------------------------------------------===//
// CombineOp
//===----------------------------------------------------------------------===//

LogicalResult CombineOp::verify() {
  ShapeChecker shapes(*this);
  shapes.requirePositive("K");
  // c1.
  RankedTensorType rowsType = getRows().getType();
  if (rowsType.getRank() == 2) {
    if (failed(shapes.check("rows", rowsType, {"R", "H"})))
      return failure();
  } else if (rowsType.getRank() == 3) {
    shapes.requirePositive("E");
    if (failed(shapes.check("rows", rowsType, {"E", "C", "H"})))
      return failure();
  } else {
    return emitOpError() << "'rows' must have shape [R, H] (grouped) or "
                            "[E, C, H] (capacity), got "
                         << rowsType;
  }
  // c2, c3, c4.
  if (failed(shapes.check("weights", getWeights().getType(), {"T", "K"})) ||
      failed(shapes.check("row_map", getRowMap().getType(), {"T", "K"})) ||
      failed(shapes.check("result", getResult().getType(), {"T", "H"})) ||
      failed(verifySameElementType(*this, "result", getResult(), "rows",
                                   getRows())))
    return failure();
  // c5.
  Value init = getInit();
  if (failed(shapes.checkOptional("init", init, {"T", "H"})))
    return failure();
  if (!init || getInit().getType().getElementType().isF32())
    return success();
  return verifySameElementType(*this, "init", init, "result", getResult());
}

#define GET_OP_CLASSES
#include "moe/Dialect/MoE/IR/MoEOps.cpp.inc"
