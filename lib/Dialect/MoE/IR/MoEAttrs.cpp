//===- MoEAttrs.cpp - MoE routing attribute -------------------------------===//
//
// Parsing, printing and verification of `#moe.routing<...>`.
//
//===----------------------------------------------------------------------===//

#include "moe/Dialect/MoE/IR/MoE.h"

#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>

using namespace mlir;
using namespace mlir::moe;

#define GET_ATTRDEF_CLASSES
#include "moe/Dialect/MoE/IR/MoEAttrs.cpp.inc"

void MoeDialect::registerAttributes() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "moe/Dialect/MoE/IR/MoEAttrs.cpp.inc"
      >();
}

namespace {
/// The routing items in their mutable, parse-time form, with defaults.
struct RoutingFields {
  ScoringFunc scoring = ScoringFunc::Softmax;
  RoutingMode mode = RoutingMode::TokenChoice;
  int64_t topK = 0;
  Renormalize renormalize = Renormalize::None;
  double scale = 1.0;
  bool selectionBias = false;
  int64_t numGroups = 1;
  std::optional<int64_t> topkGroups; // absent: every group is kept
  GroupScore groupScore = GroupScore::SumTop2;
  CapacityKind capacityKind = CapacityKind::None;
  int64_t fixedCapacity = 0;
  double capacityFactor = 0.0;
  Rounding rounding = Rounding::Ceil;
  int64_t minCapacity = 0;
  int64_t groupSize = 0;
  Priority priority = Priority::Position;
  SecondPolicy secondPolicy = SecondPolicy::All;
  bool noisy = false;
  double jitter = 0.0;
  bool unweighted = false;
};
} // namespace

/// Parses `keyword` and maps it through `symbolize`, naming `what` on error.
template <typename EnumT>
static ParseResult
parseEnumKeyword(AsmParser &parser, StringRef what, EnumT &result,
                 std::optional<EnumT> (*symbolize)(StringRef)) {
  SMLoc loc = parser.getCurrentLocation();
  StringRef keyword;
  if (parser.parseKeyword(&keyword))
    return failure();
  std::optional<EnumT> value = symbolize(keyword);
  if (!value)
    return parser.emitError(loc, "unknown ") << what << " '" << keyword << "'";
  result = *value;
  return success();
}

/// Parses `fixed(C)`, `factor(F, rounding[, min = M])` or `fraction(F)`.
static ParseResult parseCapacity(AsmParser &parser, RoutingFields &fields) {
  if (parseEnumKeyword(parser, "capacity kind", fields.capacityKind,
                       &symbolizeCapacityKind))
    return failure();
  if (fields.capacityKind == CapacityKind::None)
    return success();
  if (parser.parseLParen())
    return failure();
  switch (fields.capacityKind) {
  case CapacityKind::Fixed:
    if (parser.parseInteger(fields.fixedCapacity))
      return failure();
    break;
  case CapacityKind::Fraction:
    if (parser.parseFloat(fields.capacityFactor))
      return failure();
    break;
  case CapacityKind::Factor:
    if (parser.parseFloat(fields.capacityFactor) || parser.parseComma() ||
        parseEnumKeyword(parser, "rounding", fields.rounding,
                         &symbolizeRounding))
      return failure();
    if (succeeded(parser.parseOptionalComma()) &&
        (parser.parseKeyword("min") || parser.parseEqual() ||
         parser.parseInteger(fields.minCapacity)))
      return failure();
    break;
  case CapacityKind::None:
    break;
  }
  return parser.parseRParen();
}

/// Parses one `key [= value]` routing item into `fields`.
static ParseResult parseRoutingItem(AsmParser &parser, StringRef key,
                                    SMLoc keyLoc, RoutingFields &fields) {
  if (key == "top_k")
    return failure(parser.parseEqual() || parser.parseInteger(fields.topK));
  if (key == "expert_choice") {
    fields.mode = RoutingMode::ExpertChoice;
    return success();
  }
  if (key == "renormalize") {
    fields.renormalize = Renormalize::Selected;
    if (succeeded(parser.parseOptionalEqual()))
      return parseEnumKeyword(parser, "renormalization", fields.renormalize,
                              &symbolizeRenormalize);
    return success();
  }
  if (key == "scale")
    return failure(parser.parseEqual() || parser.parseFloat(fields.scale));
  if (key == "selection_bias") {
    fields.selectionBias = true;
    return success();
  }
  if (key == "groups")
    return failure(parser.parseEqual() ||
                   parser.parseInteger(fields.numGroups));
  if (key == "topk_groups") {
    fields.topkGroups.emplace();
    return failure(parser.parseEqual() ||
                   parser.parseInteger(*fields.topkGroups));
  }
  if (key == "group_score")
    return failure(parser.parseEqual() ||
                   parseEnumKeyword(parser, "group score", fields.groupScore,
                                    &symbolizeGroupScore));
  if (key == "capacity")
    return failure(parser.parseEqual() || parseCapacity(parser, fields));
  if (key == "group_size")
    return failure(parser.parseEqual() ||
                   parser.parseInteger(fields.groupSize));
  if (key == "priority")
    return failure(parser.parseEqual() ||
                   parseEnumKeyword(parser, "priority", fields.priority,
                                    &symbolizePriority));
  if (key == "second")
    return failure(parser.parseEqual() ||
                   parseEnumKeyword(parser, "second-choice policy",
                                    fields.secondPolicy,
                                    &symbolizeSecondPolicy));
  if (key == "noisy") {
    fields.noisy = true;
    return success();
  }
  if (key == "jitter")
    return failure(parser.parseEqual() || parser.parseFloat(fields.jitter));
  if (key == "unweighted") {
    fields.unweighted = true;
    return success();
  }
  return parser.emitError(keyLoc, "unknown routing item '") << key << "'";
}

Attribute RoutingAttr::parse(AsmParser &parser, Type) {
  SMLoc loc = parser.getCurrentLocation();
  RoutingFields fields;
  if (parser.parseLess() ||
      parseEnumKeyword(parser, "scoring function", fields.scoring,
                       &symbolizeScoringFunc))
    return {};
  llvm::StringSet<> seen;
  while (succeeded(parser.parseOptionalComma())) {
    SMLoc keyLoc = parser.getCurrentLocation();
    StringRef key;
    if (parser.parseKeyword(&key))
      return {};
    if (!seen.insert(key).second) {
      parser.emitError(keyLoc, "routing item '") << key << "' given twice";
      return {};
    }
    if (parseRoutingItem(parser, key, keyLoc, fields))
      return {};
  }
  if (parser.parseGreater())
    return {};
  if (fields.mode == RoutingMode::ExpertChoice && seen.contains("top_k")) {
    parser.emitError(loc, "routing: expert_choice routing takes no top_k "
                          "(experts choose tokens)");
    return {};
  }
  return RoutingAttr::getChecked(
      [&] { return parser.emitError(loc); }, parser.getContext(),
      fields.scoring, fields.mode, fields.topK, fields.renormalize,
      APFloat(fields.scale), fields.selectionBias, fields.numGroups,
      fields.topkGroups.value_or(fields.numGroups), fields.groupScore,
      fields.capacityKind, fields.fixedCapacity, APFloat(fields.capacityFactor),
      fields.rounding, fields.minCapacity, fields.groupSize, fields.priority,
      fields.secondPolicy, fields.noisy, APFloat(fields.jitter),
      fields.unweighted);
}

void RoutingAttr::print(AsmPrinter &printer) const {
  printer << "<" << stringifyScoringFunc(getScoring());
  if (isExpertChoice())
    printer << ", expert_choice";
  else
    printer << ", top_k = " << getTopK();
  if (getRenormalize() == Renormalize::Selected)
    printer << ", renormalize";
  else if (getRenormalize() == Renormalize::Kept)
    printer << ", renormalize = kept";
  if (getScaleValue() != 1.0) {
    printer << ", scale = ";
    printer.printFloat(getScale());
  }
  if (getSelectionBias())
    printer << ", selection_bias";
  if (isGroupLimited()) {
    printer << ", groups = " << getNumGroups();
    printer << ", topk_groups = " << getTopkGroups();
    printer << ", group_score = " << stringifyGroupScore(getGroupScore());
  }
  switch (getCapacityKind()) {
  case CapacityKind::None:
    break;
  case CapacityKind::Fixed:
    printer << ", capacity = fixed(" << getFixedCapacity() << ")";
    break;
  case CapacityKind::Fraction:
    printer << ", capacity = fraction(";
    printer.printFloat(getCapacityFactor());
    printer << ")";
    break;
  case CapacityKind::Factor:
    printer << ", capacity = factor(";
    printer.printFloat(getCapacityFactor());
    printer << ", " << stringifyRounding(getRounding());
    if (getMinCapacity() != 0)
      printer << ", min = " << getMinCapacity();
    printer << ")";
    break;
  }
  if (getGroupSize() != 0)
    printer << ", group_size = " << getGroupSize();
  if (getPriority() != Priority::Position)
    printer << ", priority = " << stringifyPriority(getPriority());
  if (getSecondPolicy() != SecondPolicy::All)
    printer << ", second = " << stringifySecondPolicy(getSecondPolicy());
  if (getNoisy())
    printer << ", noisy";
  if (!getJitter().isZero()) {
    printer << ", jitter = ";
    printer.printFloat(getJitter());
  }
  if (getUnweighted())
    printer << ", unweighted";
  printer << ">";
}

static bool isFiniteNonNegative(const APFloat &value) {
  return value.isFinite() && !value.isNegative();
}

LogicalResult RoutingAttr::verify(
    function_ref<InFlightDiagnostic()> emitError, ScoringFunc scoring,
    RoutingMode mode, int64_t topK, Renormalize renormalize, APFloat scale,
    bool selectionBias, int64_t numGroups, int64_t topkGroups,
    GroupScore groupScore, CapacityKind capacityKind, int64_t fixedCapacity,
    APFloat capacityFactor, Rounding rounding, int64_t minCapacity,
    int64_t groupSize, Priority priority, SecondPolicy secondPolicy, bool noisy,
    APFloat jitter, bool unweighted) {
  bool hasCapacity = capacityKind != CapacityKind::None;
  if (!isFiniteNonNegative(jitter))
    return emitError() << "routing: jitter must be finite and non-negative, "
                          "got "
                       << jitter.convertToDouble();
  if (scoring != ScoringFunc::Sparsemixer && !jitter.isZero())
    return emitError() << "routing: jitter applies to sparsemixer scoring "
                          "only";
  if (scoring == ScoringFunc::Sparsemixer &&
      (mode == RoutingMode::ExpertChoice || selectionBias || numGroups != 1))
    return emitError() << "routing: sparsemixer scoring is token choice "
                          "without selection_bias or groups";
  if (mode == RoutingMode::TokenChoice && topK < 1)
    return emitError() << "routing: top_k must be at least 1, got " << topK;
  if (mode == RoutingMode::ExpertChoice) {
    if (topK != 0)
      return emitError() << "routing: expert_choice routing takes no top_k "
                            "(experts choose tokens), got top_k = "
                         << topK;
    if (!hasCapacity)
      return emitError() << "routing: expert_choice routing requires a "
                            "capacity (tokens per expert)";
    if (renormalize != Renormalize::None)
      return emitError() << "routing: expert_choice routing does not "
                            "renormalize (a token's weights are its scores)";
    if (numGroups != 1)
      return emitError() << "routing: expert_choice routing takes no expert "
                            "groups, got groups = "
                         << numGroups;
    if (priority != Priority::Position || secondPolicy != SecondPolicy::All)
      return emitError() << "routing: priority and second-choice policy "
                            "apply to token-choice routing only";
  }
  if (!scale.isFinite() || scale.isNegative() || scale.isZero())
    return emitError() << "routing: scale must be a finite positive number, "
                          "got "
                       << scale.convertToDouble();
  if (numGroups < 1)
    return emitError() << "routing: groups must be at least 1, got "
                       << numGroups;
  if (numGroups == 1 && groupScore != GroupScore::SumTop2)
    return emitError() << "routing: group_score applies to group-limited "
                          "routing (groups > 1)";
  if (topkGroups < 1 || topkGroups > numGroups)
    return emitError() << "routing: topk_groups must be in [1, groups = "
                       << numGroups << "], got " << topkGroups;
  if (renormalize == Renormalize::Kept && !hasCapacity)
    return emitError() << "routing: renormalize = kept renormalizes over the "
                          "choices kept after capacity dropping and requires "
                          "a capacity";
  switch (capacityKind) {
  case CapacityKind::None:
    break;
  case CapacityKind::Fixed:
    if (fixedCapacity < 0)
      return emitError() << "routing: capacity must be non-negative, got "
                         << fixedCapacity;
    break;
  case CapacityKind::Factor:
  case CapacityKind::Fraction:
    if (!isFiniteNonNegative(capacityFactor))
      return emitError() << "routing: capacity "
                         << stringifyCapacityKind(capacityKind)
                         << " must be finite and non-negative, got "
                         << capacityFactor.convertToDouble();
    if (capacityKind == CapacityKind::Fraction &&
        capacityFactor.convertToDouble() > 1.0)
      return emitError() << "routing: capacity fraction must be at most 1, "
                            "got "
                         << capacityFactor.convertToDouble();
    if (minCapacity < 0)
      return emitError() << "routing: minimum capacity must be non-negative, "
                            "got "
                         << minCapacity;
    break;
  }
  if (groupSize < 0)
    return emitError() << "routing: group_size must be non-negative, got "
                       << groupSize;
  if (groupSize > 0 && !hasCapacity)
    return emitError() << "routing: group_size (local group dispatching) "
                          "requires a capacity";
  if (priority == Priority::Score && !hasCapacity)
    return emitError() << "routing: priority = score decides who is dropped "
                          "over capacity and requires a capacity";
  if (unweighted && renormalize != Renormalize::None)
    return emitError() << "routing: unweighted routing combines every kept "
                          "choice with weight 'scale' and does not "
                          "renormalize";
  if (secondPolicy == SecondPolicy::Random && topK != 2)
    return emitError() << "routing: second = random applies to top-2 "
                          "routing, got top_k = "
                       << topK;
  return success();
}

LogicalResult
RoutingAttr::verifyForExperts(function_ref<InFlightDiagnostic()> emitError,
                              int64_t numExperts) const {
  if (numExperts < 1)
    return emitError() << "number of experts must be at least 1, got "
                       << numExperts;
  if (numExperts > kMaxExperts)
    return emitError() << "number of experts must be at most " << kMaxExperts
                       << " (expert ids are i32), got " << numExperts;
  if (!isExpertChoice() && getTopK() > numExperts)
    return emitError() << "routing top_k (" << getTopK()
                       << ") exceeds the number of experts (" << numExperts
                       << ")";
  int64_t groups = getNumGroups();
  if (groups > numExperts || numExperts % groups != 0)
    return emitError() << "routing groups (" << groups
                       << ") must divide the number of experts (" << numExperts
                       << ")";
  int64_t perGroup = numExperts / groups;
  if (isGroupLimited() && getGroupScore() == GroupScore::SumTop2 &&
      perGroup < 2)
    return emitError() << "routing group_score = sum_top2 needs at least 2 "
                          "experts per group, got "
                       << perGroup;
  if (!isExpertChoice() && getTopkGroups() * perGroup < getTopK())
    return emitError() << "routing keeps " << getTopkGroups() << " groups of "
                       << perGroup
                       << " experts, fewer than top_k = " << getTopK();
  return success();
}

LogicalResult
StatisticsAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                       ArrayRef<Statistic> values) {
  if (values.empty())
    return emitError() << "statistics list must not be empty";
  return success();
}
