//===- RoutingPlanOp.cpp - moe.routing_plan -------------------------------===//
//
// Verifier and result shapes of the block-aligned routing plan. Its row
// count is a bound known from the token count alone, so the shapes reify
// without running the routing.
//
//===----------------------------------------------------------------------===//

#include "moe/Dialect/MoE/IR/MoE.h"

#include "ShapeChecker.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "llvm/Support/MathExtras.h"

using namespace mlir;
using namespace mlir::moe;
using mlir::moe::detail::ShapeChecker;

// Each expert's blocks of A rows number ceil(c_e / A), at most
// floor((c_e + A - 1) / A); summed over experts that is at most
// floor((T*K + E*(A-1)) / A), and at most T*K since ceil(c / A) <= c.
std::optional<int64_t> RoutingPlanOp::getMaxRows(int64_t tokens,
                                                  int64_t choices,
                                                  int64_t numExperts,
                                                  int64_t align) {
  if (ShapedType::isDynamic(tokens))
    return ShapedType::kDynamic;
  int64_t assignments, padding, padded, rows;
  if (llvm::MulOverflow(tokens, choices, assignments) ||
      llvm::MulOverflow(numExperts, align - 1, padding) ||
      llvm::AddOverflow(assignments, padding, padded))
    return std::nullopt;
  int64_t blocks = std::min(assignments, padded / align);
  if (llvm::MulOverflow(blocks, align, rows))
    return std::nullopt;
  return rows;
}

LogicalResult RoutingPlanOp::verify() {
  // c5.
  int64_t blockRows = getBlockRows(), align = getAlign();
  if (blockRows < 1)
    return emitOpError() << "block_rows must be at least 1, got " << blockRows;
  if (align < 1 || align % blockRows != 0)
    return emitOpError() << "align must be a positive multiple of block_rows ("
                         << blockRows << "), got " << align;
  ShapeChecker shapes(*this);
  for (StringRef symbol : {"E", "K"})
    shapes.requirePositive(symbol);
  shapes.requireStatic("E+1");
  shapes.requireStatic("K");
  // c1, c2, c3, c4.
  if (failed(shapes.check("ids", getIds().getType(), {"T", "K"})) ||
      failed(shapes.check("offsets", getOffsets().getType(), {"E+1"})) ||
      failed(
          shapes.check("block_experts", getBlockExperts().getType(), {"B"})) ||
      failed(shapes.check("block_sizes", getBlockSizes().getType(), {"B"})) ||
      failed(shapes.check("row_sources", getRowSources().getType(), {"R"})) ||
      failed(shapes.check("row_map", getRowMap().getType(), {"T", "K"})))
    return failure();
  int64_t numExperts = getNumExperts();
  if (numExperts < 1)
    return emitOpError() << "'offsets' must be [E+1] offsets with E >= 1, got "
                         << getOffsets().getType();
  if (numExperts > kMaxExperts)
    return emitOpError() << "'offsets' implies more than " << kMaxExperts
                         << " experts (expert ids are i32)";
  // c3: R = B * BM, and R is the bound of the description where T is static.
  int64_t tokens = shapes.get("T"), blocks = shapes.get("B"),
          rows = shapes.get("R");
  // (Compared by division, which cannot overflow.)
  if (!ShapedType::isDynamic(blocks) && !ShapedType::isDynamic(rows) &&
      (rows % blockRows != 0 || rows / blockRows != blocks))
    return emitOpError() << "'row_sources' has " << rows << " rows for "
                         << blocks << " blocks of " << blockRows
                         << ", expected B * block_rows";
  std::optional<int64_t> maxRows =
      getMaxRows(tokens, shapes.get("K"), numExperts, align);
  if (!maxRows)
    return emitOpError() << "the row bound for T = " << tokens << ", K = "
                         << shapes.get("K") << ", E = " << numExperts
                         << ", align " << align << " overflows int64";
  int64_t expectedRows = *maxRows;
  if (ShapedType::isDynamic(expectedRows))
    return success();
  int64_t assignments = tokens * shapes.get("K");
  if (!ShapedType::isDynamic(rows) && rows != expectedRows)
    return emitOpError() << "'row_sources' has " << rows << " rows, expected "
                         << expectedRows << " for T*K = " << assignments
                         << ", E = " << numExperts << ", align " << align;
  // The bound is a multiple of align, itself a multiple of block_rows.
  if (!ShapedType::isDynamic(blocks) && expectedRows / blockRows != blocks)
    return emitOpError() << "'block_experts' has " << blocks
                         << " blocks, expected " << expectedRows / blockRows
                         << " for T*K = " << assignments
                         << ", E = " << numExperts << ", align " << align;
  return success();
}

LogicalResult RoutingPlanOp::reifyResultShapes(
    OpBuilder &b, ReifiedRankedShapedTypeDims &reifiedReturnShapes) {
  Location loc = getLoc();
  int64_t choices = getIds().getType().getDimSize(1);
  int64_t align = getAlign(), blockRows = getBlockRows();
  int64_t numExperts = getNumExperts();
  OpFoldResult tokens = tensor::getMixedSize(b, loc, getIds(), 0);
  OpFoldResult rows, blocks;
  if (std::optional<int64_t> known = getConstantIntValue(tokens)) {
    // The verifier rejects a bound that overflows.
    int64_t maxRows = getMaxRows(*known, choices, numExperts, align).value_or(0);
    rows = b.getIndexAttr(maxRows);
    blocks = b.getIndexAttr(maxRows / blockRows);
  } else {
    auto constant = [&](int64_t value) -> Value {
      return arith::ConstantIndexOp::create(b, loc, value);
    };
    Value assignments = arith::MulIOp::create(b, loc, llvm::cast<Value>(tokens),
                                              constant(choices));
    Value alignedBlocks = arith::DivUIOp::create(
        b, loc,
        arith::AddIOp::create(b, loc, assignments,
                              constant(numExperts * (align - 1))),
        constant(align));
    Value rowCount = arith::MulIOp::create(
        b, loc, arith::MinUIOp::create(b, loc, assignments, alignedBlocks),
        constant(align));
    rows = rowCount;
    blocks = arith::DivUIOp::create(b, loc, rowCount, constant(blockRows))
                 .getResult();
  }
  reifiedReturnShapes.push_back({b.getIndexAttr(numExperts + 1)});
  reifiedReturnShapes.push_back({blocks});
  reifiedReturnShapes.push_back({blocks});
  reifiedReturnShapes.push_back({rows});
  reifiedReturnShapes.push_back({tokens, b.getIndexAttr(choices)});
  return success();
}
