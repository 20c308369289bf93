//===- MoEDialect.cpp - MoE dialect registration --------------------------===//

#include "moe/Dialect/MoE/IR/MoE.h"

#include "mlir/Dialect/Bufferization/IR/BufferizableOpInterface.h"
#include "mlir/IR/DialectImplementation.h"
#include "mlir/Interfaces/FunctionInterfaces.h"
#include "mlir/Interfaces/TilingInterface.h"
#include "mlir/Interfaces/ValueBoundsOpInterface.h"

using namespace mlir;
using namespace mlir::moe;

#include "moe/Dialect/MoE/IR/MoEDialect.cpp.inc"
#include "moe/Dialect/MoE/IR/MoEEnums.cpp.inc"

void MoeDialect::initialize() {
  registerAttributes();
  addOperations<
#define GET_OP_LIST
#include "moe/Dialect/MoE/IR/MoEOps.cpp.inc"
      >();
  // Attached by registerTilingInterfaceExternalModels,
  // registerBufferizableOpInterfaceExternalModels and
  // registerValueBoundsOpInterfaceExternalModels (MoETransforms).
  declarePromisedInterfaces<TilingInterface, GroupedMatmulOp>();
  declarePromisedInterfaces<bufferization::BufferizableOpInterface,
                            GroupedMatmulOp>();
  declarePromisedInterfaces<ValueBoundsOpInterface, RoutingPlanOp>();
}

/// `moe.packing = {function = @f, shape = array<i64: ...>}` on a weight
/// argument (moe-pack-expert-weights).
static LogicalResult verifyPackingAttribute(Operation *op, unsigned regionIndex,
                                            unsigned argIndex,
                                            NamedAttribute attribute) {
  auto packing = llvm::dyn_cast<DictionaryAttr>(attribute.getValue());
  auto function =
      packing ? packing.getAs<FlatSymbolRefAttr>("function") : nullptr;
  auto shape = packing ? packing.getAs<DenseI64ArrayAttr>("shape") : nullptr;
  if (!function || !shape || packing.size() != 2)
    return op->emitError() << "'" << kPackingAttrName << "' of argument "
                           << argIndex
                           << " must be {function = @symbol, shape = "
                              "array<i64: ...>}";
  if (llvm::any_of(shape.asArrayRef(), [](int64_t d) { return d < 0; }))
    return op->emitError() << "'" << kPackingAttrName << "' of argument "
                           << argIndex << " needs a static shape";
  auto func = llvm::dyn_cast<FunctionOpInterface>(op);
  if (!func || !func.getArgAttr(argIndex, kWeightAttrName))
    return op->emitError() << "'" << kPackingAttrName << "' argument "
                           << argIndex << " needs a '" << kWeightAttrName
                           << "' binding";
  return success();
}

/// The shaped type of argument `argIndex` of `op`'s region `regionIndex`,
/// or null: no such argument (a declaration), or one that is no longer
/// shaped (tensors before bufferization, memrefs after it; once lowered to
/// LLVM a pointer, whose binding was recorded already).
static ShapedType getArgumentShape(Operation *op, unsigned regionIndex,
                                   unsigned argIndex) {
  Region &region = op->getRegion(regionIndex);
  if (region.empty() || argIndex >= region.getNumArguments())
    return {};
  return llvm::dyn_cast<ShapedType>(region.getArgument(argIndex).getType());
}

/// `moe.weight_format`: on a `moe.weight` argument binding one tensor (no
/// `{e}`). `"mxfp4"`: of bf16 `[..., N, K]` with K a multiple of 32 (the
/// checkpoint shape, `moe.packing`'s once packed); `"e8m0"`: of f32.
static LogicalResult verifyWeightFormatAttribute(Operation *op,
                                                 unsigned regionIndex,
                                                 unsigned argIndex,
                                                 NamedAttribute attribute) {
  auto format = llvm::dyn_cast<StringAttr>(attribute.getValue());
  if (!format || (format.getValue() != "mxfp4" && format.getValue() != "e8m0"))
    return op->emitError() << "'" << kWeightFormatAttrName << "' of argument "
                           << argIndex << " must be \"mxfp4\" or \"e8m0\"";
  auto func = llvm::dyn_cast<FunctionOpInterface>(op);
  auto name = func
                  ? func.getArgAttrOfType<StringAttr>(argIndex, kWeightAttrName)
                  : nullptr;
  if (!name || name.getValue().contains(kExpertPlaceholder))
    return op->emitError() << "'" << kWeightFormatAttrName << "' argument "
                           << argIndex << " needs a '" << kWeightAttrName
                           << "' binding of one tensor (no '"
                           << kExpertPlaceholder << "')";
  ShapedType type = getArgumentShape(op, regionIndex, argIndex);
  if (!type)
    return success();
  if (format.getValue() == "e8m0") {
    if (!type.getElementType().isF32())
      return op->emitError()
             << "'" << kWeightFormatAttrName << "' \"e8m0\" argument "
             << argIndex << " must have f32 elements, got " << type;
    return success();
  }
  ArrayRef<int64_t> shape = type.getShape();
  if (auto packing =
          func.getArgAttrOfType<DictionaryAttr>(argIndex, kPackingAttrName))
    if (auto packed = packing.getAs<DenseI64ArrayAttr>("shape"))
      shape = packed.asArrayRef();
  if (!type.getElementType().isBF16() || shape.size() < 2 ||
      ShapedType::isDynamic(shape.back()) || shape.back() % 32 != 0)
    return op->emitError() << "'" << kWeightFormatAttrName << "' argument "
                           << argIndex
                           << " must be bf16 [..., N, K] with K a multiple "
                              "of 32, got "
                           << type;
  return success();
}

/// `moe.expert_window = E`: on a weight whose first dimension, the window,
/// is between 1 and E.
static LogicalResult verifyExpertWindowAttribute(Operation *op,
                                                 unsigned regionIndex,
                                                 unsigned argIndex,
                                                 NamedAttribute attribute) {
  auto experts = llvm::dyn_cast<IntegerAttr>(attribute.getValue());
  if (!experts || !experts.getType().isInteger(64) || experts.getInt() < 1)
    return op->emitError() << "'" << kExpertWindowAttrName << "' of argument "
                           << argIndex
                           << " must be a positive i64 (the experts)";
  ShapedType type = getArgumentShape(op, regionIndex, argIndex);
  if (!type)
    return success();
  if (type.getRank() < 1 || type.isDynamicDim(0) ||
      type.getDimSize(0) > experts.getInt())
    return op->emitError() << "'" << kExpertWindowAttrName << "' argument "
                           << argIndex << " must have a static window of at "
                           << "most " << experts.getInt()
                           << " experts as its first dimension, got " << type;
  return success();
}

LogicalResult MoeDialect::verifyRegionArgAttribute(Operation *op,
                                                  unsigned regionIndex,
                                                  unsigned argIndex,
                                                  NamedAttribute attribute) {
  if (attribute.getName() == kPackingAttrName)
    return verifyPackingAttribute(op, regionIndex, argIndex, attribute);
  if (attribute.getName() == kWeightFormatAttrName)
    return verifyWeightFormatAttribute(op, regionIndex, argIndex, attribute);
  if (attribute.getName() == kExpertWindowAttrName)
    return verifyExpertWindowAttribute(op, regionIndex, argIndex, attribute);
  if (attribute.getName() != kWeightAttrName)
    return op->emitError() << "unknown moe argument attribute '"
                           << attribute.getName().getValue() << "'";
  auto name = llvm::dyn_cast<StringAttr>(attribute.getValue());
  if (!name || name.getValue().empty())
    return op->emitError() << "'" << kWeightAttrName
                           << "' of argument " << argIndex
                           << " must be a non-empty string";
  StringRef text = name.getValue();
  size_t placeholders = text.count(kExpertPlaceholder);
  if (placeholders > 1)
    return op->emitError() << "'" << kWeightAttrName << "' of argument "
                           << argIndex << " has more than one '"
                           << kExpertPlaceholder << "'";
  ShapedType type = getArgumentShape(op, regionIndex, argIndex);
  if (!type)
    return success();
  if (!type.hasStaticShape())
    return op->emitError() << "'" << kWeightAttrName << "' argument "
                           << argIndex
                           << " must be a statically shaped tensor, got "
                           << type;
  if (placeholders == 1 && type.getRank() < 1)
    return op->emitError() << "'" << kWeightAttrName << "' argument "
                           << argIndex << " stacks per-expert tensors ('"
                           << kExpertPlaceholder
                           << "') and needs rank >= 1, got " << type;
  return success();
}
