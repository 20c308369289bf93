//===- GroupedMatmulOp.cpp - moe.grouped_matmul ---------------------------===//
//
// Verifier, memory effects and result shapes of the destination-passing
// grouped matmul. Its TilingInterface and bufferization models live in
// Dialect/MoE/Transforms (external models, as upstream Linalg's).
//
//===----------------------------------------------------------------------===//

#include "moe/Dialect/MoE/IR/MoE.h"

#include "BufferEffects.h"
#include "ShapeChecker.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

using namespace mlir;
using namespace mlir::moe;
using mlir::moe::detail::ShapeChecker;

static bool isFloatOperand(Type type) {
  Type element = llvm::cast<ShapedType>(type).getElementType();
  return element.isF32() || element.isBF16() || element.isF16();
}

/// c13-c17: the block scales of f8E4M3FN weights.
static LogicalResult verifyWeightScales(GroupedMatmulOp op,
                                        ShapeChecker &shapes) {
  // c17.
  if (op.getExactProducts() && op.getWeightScale())
    return op.emitOpError("'exact_products' goes with unscaled weights");
  auto weightType = llvm::cast<ShapedType>(op.getWeight().getType());
  bool fp8 = llvm::isa<Float8E4M3FNType>(weightType.getElementType());
  bool e2m1 = isE2M1Pairs(weightType.getElementType());
  // c13.
  if (static_cast<bool>(op.getWeightScale()) !=
      static_cast<bool>(op.getWeightBlockAttr()))
    return op.emitOpError("'scale' and 'block' come together");
  if (!op.getWeightScale()) {
    if (fp8)
      return op.emitOpError("f8E4M3FN weights need their block 'scale'");
    if (e2m1)
      return op.emitOpError("e2m1-pair (i8) weights need their block 'scale'");
    if (op.getPairedWeightScale())
      return op.emitOpError("'paired_scale' needs a 'scale'");
    return success();
  }
  if (!fp8 && !e2m1)
    return op.emitOpError()
           << "block scales are for f8E4M3FN or e2m1-pair (i8) weights, got "
           << weightType;
  ArrayRef<int64_t> block = *op.getWeightBlock();
  if (block.size() != 2 || block[0] < 1 || block[1] < 1)
    return op.emitOpError("'block' must be two sizes of at least 1 (columns "
                          "and depth of the weight per scale)");
  // c14.
  auto ceilDiv = [](int64_t size, int64_t by) {
    return ShapedType::isDynamic(size) ? ShapedType::kDynamic
                                       : llvm::divideCeilSigned(size, by);
  };
  shapes.fix("NB", ceilDiv(shapes.get("N"), block[0]),
             "'weight' (ceil(N / BN))");
  shapes.fix("KB", ceilDiv(shapes.get("K"), block[1]),
             "'weight' (ceil(K / BK))");
  bool packedScales = op.hasPackedScales();
  if (packedScales && (!op.isPacked() || block[0] != 1))
    return op.emitOpError("scales in panels [E, NP, KB, P] need packed "
                          "weights and blocks of one column (BN = 1)");
  if (failed(shapes.check("scale", op.getWeightScale().getType(),
                          packedScales
                              ? ArrayRef<StringRef>{"E", "NP", "KB", "P"}
                              : ArrayRef<StringRef>{"E", "NB", "KB"})))
    return failure();
  if (!llvm::cast<ShapedType>(op.getWeightScale().getType())
           .getElementType()
           .isF32())
    return op.emitOpError() << "'scale' must have f32 elements, got "
                            << op.getWeightScale().getType();
  // c15.
  if (static_cast<bool>(op.getPairedWeight()) !=
      static_cast<bool>(op.getPairedWeightScale()))
    return op.emitOpError("a scaled op has 'paired_scale' exactly when it has "
                          "'paired_weight'");
  if (Value paired = op.getPairedWeightScale())
    if (paired.getType() != op.getWeightScale().getType())
      return op.emitOpError()
             << "'paired_scale' must have the type of 'scale' ("
             << op.getWeightScale().getType() << "), got " << paired.getType();
  // c16.
  if (int64_t panel = op.getPanelColumns();
      panel && block[0] % panel != 0 && !packedScales)
    return op.emitOpError() << "packed scaled weights need panels that divide "
                               "the scale block (or per-column scales in "
                               "panels too): P = "
                            << panel << ", BN = " << block[0];
  if (op.isDepthPaired() && block[1] % 2 != 0)
    return op.emitOpError() << "scaled weights packed in pairs of K need an "
                               "even block depth, got BK = "
                            << block[1];
  return success();
}

LogicalResult GroupedMatmulOp::verify() {
  // c1.
  bool onTensors = llvm::isa<RankedTensorType>(getInit().getType());
  for (Value operand : getOperation()->getOperands()) {
    Type type = operand.getType();
    bool ok = onTensors ? llvm::isa<RankedTensorType>(type)
                        : llvm::isa<MemRefType>(type);
    if (!ok)
      return emitOpError() << "operands must be all ranked tensors or all "
                              "memrefs, got "
                           << type << " with 'init' of type "
                           << getInit().getType();
  }
  if (onTensors) {
    if (getResult().size() != 1 || getResult()[0].getType() != getInit().getType())
      return emitOpError() << "on tensors, needs one result of the type of "
                              "'init' ("
                           << getInit().getType() << ")";
  } else if (!getResult().empty()) {
    return emitOpError("on memrefs, has no result");
  }

  ShapeChecker shapes(*this);
  for (StringRef symbol : {"E", "N", "K"})
    shapes.requirePositive(symbol);
  shapes.requireStatic("E");
  // c3, c2, c4, c5.
  auto weightType = llvm::cast<ShapedType>(getWeight().getType());
  bool packed = isPacked();
  bool paired = isDepthPaired();
  bool e2m1 = isE2M1Pairs(weightType.getElementType());
  if (packed)
    shapes.requireStatic("P");
  // e2m1 pairs (i8) hold two K per byte in every layout.
  SmallVector<StringRef, 5> weightSpec = {"E", "N", e2m1 ? "KP" : "K"};
  if (weightType.getRank() == 5)
    weightSpec = {"E", "NP", "KP", "P", "2"};
  else if (packed)
    weightSpec = {"E", "NP", e2m1 ? "KP" : "K", "P"};
  if (failed(shapes.check("weight", weightType, weightSpec)) ||
      failed(shapes.check("input", getInput().getType(),
                          {getRowSources() ? "S" : "R", "K"})) ||
      (!isDense() &&
       failed(shapes.check("block_experts", getBlockExperts().getType(),
                           {"B"}))) ||
      failed(shapes.check("init", getInit().getType(),
                          {isScattering() ? "T" : "R", "N"})))
    return failure();
  // c7: N columns in NP panels of P, the last one zero-padded.
  if (packed) {
    int64_t panelColumns = shapes.get("P"), panels = shapes.get("NP");
    int64_t columns = shapes.get("N");
    if (panelColumns < 1)
      return emitOpError() << "packed 'weight' needs panels of at least 1 "
                              "column, got P = "
                           << panelColumns;
    if (!ShapedType::isDynamic(panels) && !ShapedType::isDynamic(columns) &&
        panels != llvm::divideCeilSigned(columns, panelColumns))
      return emitOpError() << "packed 'weight' has NP = " << panels
                           << " panels of " << panelColumns
                           << " columns for N = " << columns << ", expected "
                           << llvm::divideCeilSigned(columns, panelColumns);
  }
  if (paired) {
    int64_t pairs = shapes.get("KP"), depth = shapes.get("K");
    if (!ShapedType::isDynamic(pairs) && !ShapedType::isDynamic(depth) &&
        pairs != llvm::divideCeilSigned(depth, 2))
      return emitOpError() << "'weight' packed in pairs of K has KP = " << pairs
                           << " pairs for K = " << depth << ", expected "
                           << llvm::divideCeilSigned(depth, 2);
    Type element = weightType.getElementType();
    if (weightType.getRank() == 5 && !element.isBF16() &&
        !llvm::isa<Float8E4M3FNType>(element))
      return emitOpError() << "'weight' packed in pairs of K must have bf16 "
                              "or f8E4M3FN elements, got "
                           << weightType;
  }
  if (shapes.get("E") > kMaxExperts)
    return emitOpError() << "'weight' has " << shapes.get("E")
                         << " experts, more than " << kMaxExperts
                         << " (expert ids are i32)";
  bool fp8 = llvm::isa<Float8E4M3FNType>(weightType.getElementType());
  if (!isFloatOperand(getInput().getType()) ||
      (!fp8 && !e2m1 && !isFloatOperand(weightType)))
    return emitOpError("'input' and 'weight' must have f32, bf16 or f16 "
                       "elements (or f8E4M3FN or e2m1-pair i8 weights with "
                       "scales)");
  if (failed(verifyWeightScales(*this, shapes)))
    return failure();
  // c18.
  if (isDense()) {
    if (shapes.get("E") != 1)
      return emitOpError() << "a dense op (no 'block_experts') has one "
                              "expert, got E = "
                           << shapes.get("E");
    if (getBlockSizes() || getRowSources() || isScattering())
      return emitOpError("a dense op (no 'block_experts') has no "
                         "'block_sizes', 'row_sources' or 'scatter'");
  } else if (!llvm::cast<ShapedType>(getBlockExperts().getType())
                  .getElementType()
                  .isInteger(32)) {
    return emitOpError() << "'block_experts' must have i32 elements, got "
                         << getBlockExperts().getType();
  }
  if (Value sizes = getBlockSizes()) {
    if (failed(shapes.check("block_sizes", sizes.getType(), {"B"})))
      return failure();
    if (!llvm::cast<ShapedType>(sizes.getType()).getElementType().isInteger(32))
      return emitOpError() << "'block_sizes' must have i32 elements, got "
                           << sizes.getType();
  }
  if (Value sources = getRowSources()) {
    if (failed(shapes.check("row_sources", sources.getType(), {"R"})))
      return failure();
    if (!llvm::cast<ShapedType>(sources.getType())
             .getElementType()
             .isInteger(32))
      return emitOpError() << "'row_sources' must have i32 elements, got "
                           << sources.getType();
  }
  // c8.
  if (static_cast<bool>(getScatterRows()) !=
      static_cast<bool>(getScatterScales()))
    return emitOpError("'scatter_rows' and 'scatter_scales' come together");
  if (isScattering()) {
    if (failed(
            shapes.check("scatter_rows", getScatterRows().getType(), {"R"})) ||
        failed(shapes.check("scatter_scales", getScatterScales().getType(),
                            {"R"})))
      return failure();
    if (!llvm::cast<ShapedType>(getScatterRows().getType())
             .getElementType()
             .isInteger(32))
      return emitOpError() << "'scatter_rows' must have i32 elements, got "
                           << getScatterRows().getType();
    if (!llvm::cast<ShapedType>(getScatterScales().getType())
             .getElementType()
             .isF32())
      return emitOpError() << "'scatter_scales' must have f32 elements, got "
                           << getScatterScales().getType();
  }
  // c9, c12 (the region itself: verifyRegions).
  if (Value paired = getPairedWeight()) {
    if (paired.getType() != getWeight().getType())
      return emitOpError() << "'paired_weight' must have the type of 'weight' ("
                           << getWeight().getType() << "), got "
                           << paired.getType();
    if (!hasEpilogue())
      return emitOpError("'paired_weight' needs an epilogue to combine the "
                         "two sums");
  }
  // c19.
  if ((getAtomicScatter() || getUniqueScatter()) && !isScattering())
    return emitOpError("'atomic' and 'unique' go with 'scatter': they say "
                       "how scattered rows share their targets");
  if (getAtomicScatter() && getUniqueScatter())
    return emitOpError("'atomic' and 'unique' exclude each other: unique "
                       "targets need no atomic adds");
  if (hasEpilogue() && isScattering())
    return emitOpError("an epilogue writes rows in place; it cannot scatter");
  // c5: an epilogue writes its f32 values rounded to bf16 or f16 too.
  Type initElement =
      llvm::cast<ShapedType>(getInit().getType()).getElementType();
  if (!initElement.isF32() &&
      !(hasEpilogue() && (initElement.isBF16() || initElement.isF16())))
    return emitOpError() << "'init' is the f32 accumulator (or f32, bf16 or "
                            "f16 with an epilogue), got "
                         << getInit().getType();
  // c6.
  int64_t blockRows = getBlockRows();
  if (blockRows < 1)
    return emitOpError() << "'block_rows' must be at least 1, got "
                         << blockRows;
  // A dense op's last block holds the rows left.
  if (isDense())
    return success();
  int64_t rows = shapes.get("R"), blocks = shapes.get("B");
  if (!ShapedType::isDynamic(rows) && rows % blockRows != 0)
    return emitOpError() << "R = " << rows
                         << " rows are not whole blocks of " << blockRows;
  // (R is whole blocks here: compared by division, which cannot overflow.)
  if (!ShapedType::isDynamic(rows) && !ShapedType::isDynamic(blocks) &&
      rows / blockRows != blocks)
    return emitOpError() << "R = " << rows << " rows, expected B * block_rows = "
                         << blocks << " * " << blockRows;
  return success();
}

LogicalResult GroupedMatmulOp::verifyRegions() {
  if (getEpilogue().size() > 1)
    return emitOpError("has at most one 'epilogue' region");
  if (!hasEpilogue())
    return success();
  // c10 (one block: SizedRegion<1>).
  Block &body = getEpilogueBody();
  unsigned expected = getWeights().size() + 1;
  if (body.getNumArguments() != expected ||
      !llvm::all_of(body.getArgumentTypes(),
                    [](Type type) { return type.isF32(); }))
    return emitOpError() << "'epilogue' takes " << expected
                         << " f32 arguments (one sum per weight, then the "
                            "element of 'init'), got "
                         << body.getNumArguments();
  auto yield = llvm::dyn_cast<YieldOp>(body.getTerminator());
  if (!yield || yield.getValues().size() != 1 ||
      !yield.getValues()[0].getType().isF32())
    return emitOpError("'epilogue' must end in a moe.yield of one f32");
  // c11: what a kernel can apply to vectors of elements.
  for (Operation &op : body.without_terminator()) {
    bool scalar =
        llvm::all_of(op.getOperandTypes(),
                     [](Type t) { return t.isIntOrIndexOrFloat(); }) &&
        llvm::all_of(op.getResultTypes(),
                     [](Type t) { return t.isIntOrIndexOrFloat(); });
    bool elementwise = op.hasTrait<OpTrait::Elementwise>() ||
                       op.hasTrait<OpTrait::ConstantLike>();
    if (!scalar || !elementwise || op.getNumRegions() != 0 ||
        !isMemoryEffectFree(&op))
      return op.emitOpError()
             << "in a grouped matmul's 'epilogue' must be a scalar "
                "element-wise op or a constant";
  }
  return success();
}

void GroupedMatmulOp::copyEpilogueFrom(GroupedMatmulOp from) {
  IRMapping mapping;
  for (auto [source, target] : llvm::zip(from.getEpilogue(), getEpilogue()))
    source.cloneInto(&target, mapping);
}

void GroupedMatmulOp::getEffects(
    SmallVectorImpl<SideEffects::EffectInstance<MemoryEffects::Effect>>
        &effects) {
  // On tensors the op is pure; on memrefs it reads everything and writes the
  // accumulator.
  detail::addBufferEffects(getOperation(), getInitMutable(), effects);
}

LogicalResult GroupedMatmulOp::reifyResultShapes(
    OpBuilder &b, ReifiedRankedShapedTypeDims &reifiedReturnShapes) {
  if (!llvm::isa<RankedTensorType>(getInit().getType()))
    return failure();
  reifiedReturnShapes.push_back(
      tensor::getMixedSizes(b, getLoc(), getInit()));
  return success();
}

/// The size of dimension `dim` of a tensor or memref, folded where static.
static OpFoldResult mixedSizeOf(OpBuilder &b, Location loc, Value value,
                                int64_t dim) {
  if (llvm::isa<RankedTensorType>(value.getType()))
    return tensor::getMixedSize(b, loc, value, dim);
  return memref::getMixedSize(b, loc, value, dim);
}

OpFoldResult GroupedMatmulOp::getBlockCount(OpBuilder &b, Location loc) {
  if (!isDense())
    return mixedSizeOf(b, loc, getBlockExperts(), 0);
  // R is init's rows (a dense op does not scatter).
  OpFoldResult rows = mixedSizeOf(b, loc, getInit(), 0);
  if (std::optional<int64_t> known = getConstantIntValue(rows))
    return b.getIndexAttr(llvm::divideCeil(*known, getBlockRows()));
  return arith::CeilDivUIOp::create(
             b, loc, llvm::cast<Value>(rows),
             arith::ConstantIndexOp::create(b, loc, getBlockRows()))
      .getResult();
}

std::pair<Value, Value> GroupedMatmulOp::loadBlockExpert(OpBuilder &b,
                                                         Location loc,
                                                         Value block) {
  if (isDense())
    return {arith::ConstantIndexOp::create(b, loc, 0),
            arith::ConstantIntOp::create(b, loc, 1, 1)};
  Value expert = arith::IndexCastOp::create(
      b, loc, b.getIndexType(),
      memref::LoadOp::create(b, loc, getBlockExperts(), ValueRange{block}));
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  Value numExperts = arith::ConstantIndexOp::create(b, loc, getNumExperts());
  // Ids outside [0, E) own no rows: nothing to read or write.
  Value owned = arith::AndIOp::create(
      b, loc,
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge, expert, zero),
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, expert,
                            numExperts));
  return {expert, owned};
}

std::pair<Value, Value> GroupedMatmulOp::loadRowSource(OpBuilder &b,
                                                       Location loc,
                                                       Value row) {
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  Value sources = getRowSources();
  if (!sources)
    return {row, arith::ConstantIntOp::create(b, loc, 1, 1)};
  Value source = arith::IndexCastOp::create(
      b, loc, b.getIndexType(),
      memref::LoadOp::create(b, loc, sources, ValueRange{row}));
  Value rows = memref::DimOp::create(b, loc, getInput(), 0);
  // Sources outside [0, S) read zeros: valid is false, the index clamped.
  Value valid = arith::AndIOp::create(
      b, loc,
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge, source, zero),
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, source, rows));
  return {arith::SelectOp::create(b, loc, valid, source, zero), valid};
}

std::tuple<Value, Value, Value>
GroupedMatmulOp::loadScatterTarget(OpBuilder &b, Location loc, Value row) {
  if (!isScattering())
    return {row, arith::ConstantOp::create(b, loc, b.getF32FloatAttr(1)),
            arith::ConstantIntOp::create(b, loc, 1, 1)};
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  Value target = arith::IndexCastOp::create(
      b, loc, b.getIndexType(),
      memref::LoadOp::create(b, loc, getScatterRows(), ValueRange{row}));
  Value scale =
      memref::LoadOp::create(b, loc, getScatterScales(), ValueRange{row});
  Value rows = memref::DimOp::create(b, loc, getInit(), 0);
  // Targets outside [0, T) drop the row: valid is false, the index clamped.
  Value valid = arith::AndIOp::create(
      b, loc,
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge, target, zero),
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, target, rows));
  return {arith::SelectOp::create(b, loc, valid, target, zero), scale, valid};
}

SmallVector<Value, 5>
GroupedMatmulOp::getWeightIndices(OpBuilder &b, Location loc, Value expert,
                                  Value column, Value depth) {
  int64_t panel = getPanelColumns();
  if (!panel && hasE2M1Pairs())
    return {expert, column,
            arith::DivUIOp::create(b, loc, depth,
                                   arith::ConstantIndexOp::create(b, loc, 2))};
  if (!panel)
    return {expert, column, depth};
  Value p = arith::ConstantIndexOp::create(b, loc, panel);
  Value firstPanel = arith::DivUIOp::create(b, loc, column, p);
  Value inPanel = arith::RemUIOp::create(b, loc, column, p);
  if (!isDepthPaired())
    return {expert, firstPanel, depth, inPanel};
  Value two = arith::ConstantIndexOp::create(b, loc, 2);
  Value pair = arith::DivUIOp::create(b, loc, depth, two);
  if (hasE2M1Pairs())
    return {expert, firstPanel, pair, inPanel};
  return {expert, firstPanel, pair, inPanel,
          arith::RemUIOp::create(b, loc, depth, two)};
}

SmallVector<Value, 4>
GroupedMatmulOp::getScaleIndices(OpBuilder &b, Location loc, Value expert,
                                 Value column, Value depth) {
  ArrayRef<int64_t> block = *getWeightBlock();
  auto divided = [&](Value index, int64_t by) -> Value {
    return arith::DivUIOp::create(b, loc, index,
                                  arith::ConstantIndexOp::create(b, loc, by));
  };
  if (!hasPackedScales()) {
    Value columnBlock = divided(column, block[0]);
    return {expert, columnBlock, divided(depth, block[1])};
  }
  Value panel = divided(column, getPanelColumns());
  Value depthBlock = divided(depth, block[1]);
  return {expert, panel, depthBlock,
          arith::RemUIOp::create(
              b, loc, column,
              arith::ConstantIndexOp::create(b, loc, getPanelColumns()))};
}

Value GroupedMatmulOp::loadWeightValue(OpBuilder &b, Location loc,
                                       Value weight, Value expert,
                                       Value column, Value depth) {
  Value value = memref::LoadOp::create(
      b, loc, weight, getWeightIndices(b, loc, expert, column, depth));
  if (hasE2M1Pairs())
    return buildE2M1PairElement(b, loc, value, depth);
  Type f32 = b.getF32Type();
  return value.getType() == f32 ? value
                                : arith::ExtFOp::create(b, loc, f32, value);
}

Value GroupedMatmulOp::loadScaledWeight(OpBuilder &b, Location loc,
                                        Value weight, Value expert,
                                        Value column, Value depth) {
  Value value = loadWeightValue(b, loc, weight, expert, column, depth);
  Value scale = getScaleOf(weight);
  if (!scale)
    return value;
  Value factor = memref::LoadOp::create(
      b, loc, scale, getScaleIndices(b, loc, expert, column, depth));
  return arith::MulFOp::create(b, loc, value, factor);
}

std::pair<Value, Value>
GroupedMatmulOp::getWeightExtents(OpBuilder &b, Location loc, Value weight) {
  auto scaledDim = [&](int64_t d, int64_t factor) -> Value {
    Value size = memref::DimOp::create(b, loc, weight, d);
    if (factor == 1)
      return size;
    return arith::MulIOp::create(
        b, loc, size, arith::ConstantIndexOp::create(b, loc, factor));
  };
  int64_t panel = getPanelColumns();
  return {scaledDim(1, panel ? panel : 1),
          scaledDim(2, isDepthPaired() ? 2 : 1)};
}

Value GroupedMatmulOp::loadInitElement(OpBuilder &b, Location loc, Value row,
                                       Value column) {
  Value element =
      memref::LoadOp::create(b, loc, getInit(), ValueRange{row, column});
  if (element.getType().isF32())
    return element;
  return arith::ExtFOp::create(b, loc, b.getF32Type(), element);
}

void GroupedMatmulOp::addToInitElement(OpBuilder &b, Location loc, Value term,
                                       Value row, Value column) {
  if (getAtomicScatter()) {
    memref::AtomicRMWOp::create(b, loc, arith::AtomicRMWKind::addf, term,
                                getInit(), ValueRange{row, column});
    return;
  }
  Value old =
      memref::LoadOp::create(b, loc, getInit(), ValueRange{row, column});
  memref::StoreOp::create(b, loc, arith::AddFOp::create(b, loc, old, term),
                          getInit(), ValueRange{row, column});
}

void GroupedMatmulOp::storeInitElement(OpBuilder &b, Location loc, Value value,
                                       Value row, Value column) {
  Type element = llvm::cast<MemRefType>(getInit().getType()).getElementType();
  if (element != value.getType())
    value = arith::TruncFOp::create(b, loc, element, value);
  memref::StoreOp::create(b, loc, value, getInit(), ValueRange{row, column});
}

Value GroupedMatmulOp::loadFilledRows(OpBuilder &b, Location loc,
                                      Value block) {
  Value blockRows = arith::ConstantIndexOp::create(b, loc, getBlockRows());
  if (isDense()) {
    // The rows from the block's first on, as both input and init hold
    // them, clamped to [0, BM].
    Value rows = arith::MinUIOp::create(
        b, loc, memref::DimOp::create(b, loc, getInput(), 0),
        memref::DimOp::create(b, loc, getInit(), 0));
    Value first = arith::MulIOp::create(b, loc, block, blockRows);
    Value left = arith::SubIOp::create(
        b, loc, arith::MaxUIOp::create(b, loc, rows, first), first);
    return arith::MinUIOp::create(b, loc, left, blockRows);
  }
  Value sizes = getBlockSizes();
  if (!sizes)
    return blockRows;
  // Rows past the block's size are padding: clamp to [0, BM].
  Value size = arith::IndexCastOp::create(
      b, loc, b.getIndexType(),
      memref::LoadOp::create(b, loc, sizes, ValueRange{block}));
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  return arith::MinSIOp::create(b, loc,
                                arith::MaxSIOp::create(b, loc, size, zero),
                                blockRows);
}
