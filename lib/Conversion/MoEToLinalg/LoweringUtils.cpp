//===- LoweringUtils.cpp - Scalar and loop helpers for MoE lowering -------===//

#include "LoweringUtils.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::lowering;

Value lowering::indexConstant(OpBuilder &b, Location loc, int64_t value) {
  return arith::ConstantIndexOp::create(b, loc, value);
}

Value lowering::f32Constant(OpBuilder &b, Location loc, double value) {
  return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(value));
}

SmallVector<Value> lowering::buildLoop(OpBuilder &b, Location loc, Value lb,
                                       Value ub, ValueRange init,
                                       LoopBody body) {
  Value one = indexConstant(b, loc, 1);
  auto loop = scf::ForOp::create(
      b, loc, lb, ub, one, init,
      [&](OpBuilder &nb, Location nl, Value iv, ValueRange carried) {
        scf::YieldOp::create(nb, nl, body(nb, nl, iv, carried));
      });
  return SmallVector<Value>(loop.getResults());
}

SmallVector<Value>
lowering::buildIf(OpBuilder &b, Location loc, Value cond,
                  function_ref<SmallVector<Value>(OpBuilder &, Location)>
                      thenBody,
                  ValueRange elseValues) {
  auto ifOp = scf::IfOp::create(
      b, loc, cond,
      [&](OpBuilder &nb, Location nl) {
        scf::YieldOp::create(nb, nl, thenBody(nb, nl));
      },
      [&](OpBuilder &nb, Location nl) {
        scf::YieldOp::create(nb, nl, elseValues);
      });
  return SmallVector<Value>(ifOp.getResults());
}

Value lowering::ranksBefore(OpBuilder &b, Location loc, Value aScore,
                            Value aIndex, Value bScore, Value bIndex) {
  using arith::CmpFPredicate;
  auto cmpf = [&](CmpFPredicate pred, Value x, Value y) {
    return arith::CmpFOp::create(b, loc, pred, x, y).getResult();
  };
  auto both = [&](Value x, Value y) {
    return arith::AndIOp::create(b, loc, x, y).getResult();
  };
  auto either = [&](Value x, Value y) {
    return arith::OrIOp::create(b, loc, x, y).getResult();
  };
  Value aNaN = cmpf(CmpFPredicate::UNO, aScore, aScore);
  Value bNaN = cmpf(CmpFPredicate::UNO, bScore, bScore);
  Value trueValue = arith::ConstantIntOp::create(b, loc, 1, 1);
  Value bNumber = arith::XOrIOp::create(b, loc, bNaN, trueValue);
  // a > b, counting NaN above every number.
  Value higher =
      either(cmpf(CmpFPredicate::OGT, aScore, bScore), both(aNaN, bNumber));
  // a == b, counting two NaNs as equal.
  Value tied = either(cmpf(CmpFPredicate::OEQ, aScore, bScore), both(aNaN, bNaN));
  Value lowerIndex = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt,
                                           aIndex, bIndex);
  return either(higher, both(tied, lowerIndex));
}

SmallVector<Value> lowering::buildTopKInsertion(OpBuilder &b, Location loc,
                                                ValueRange kept, Value score,
                                                Value index, Value eligible) {
  int64_t topK = kept.size() / 2;
  Value zero = indexConstant(b, loc, 0);
  // Whether (score, index) goes before place j of `current`.
  auto before = [&](OpBuilder &nb, Location nl, ValueRange current,
                    Value candidateScore, Value candidateIndex, int64_t j) {
    Value empty = arith::CmpIOp::create(nb, nl, arith::CmpIPredicate::slt,
                                        current[topK + j], zero);
    return arith::OrIOp::create(nb, nl, empty,
                                ranksBefore(nb, nl, candidateScore,
                                            candidateIndex, current[j],
                                            current[topK + j]));
  };
  Value enters = arith::AndIOp::create(
      b, loc, eligible, before(b, loc, kept, score, index, topK - 1));
  return buildIf(
      b, loc, enters,
      [&](OpBuilder &ib, Location il) {
        SmallVector<Value> next(kept.begin(), kept.end());
        Value carryScore = score, carryIndex = index;
        for (int64_t j = 0; j < topK; ++j) {
          Value take = before(ib, il, kept, carryScore, carryIndex, j);
          next[j] = arith::SelectOp::create(ib, il, take, carryScore, kept[j]);
          next[topK + j] =
              arith::SelectOp::create(ib, il, take, carryIndex, kept[topK + j]);
          carryScore =
              arith::SelectOp::create(ib, il, take, kept[j], carryScore);
          carryIndex =
              arith::SelectOp::create(ib, il, take, kept[topK + j], carryIndex);
        }
        return next;
      },
      kept);
}

Value lowering::readIndex(OpBuilder &b, Location loc, Value tensor,
                          ValueRange at) {
  Value v = tensor::ExtractOp::create(b, loc, tensor, at);
  if (llvm::isa<FloatType>(v.getType()))
    v = arith::FPToSIOp::create(b, loc, b.getI32Type(), v);
  return arith::IndexCastOp::create(b, loc, b.getIndexType(), v);
}

Value lowering::buildEmptyRows(OpBuilder &b, Location loc, OpFoldResult rows,
                               int64_t columns, Type type) {
  return tensor::EmptyOp::create(
      b, loc, ArrayRef<OpFoldResult>{rows, b.getIndexAttr(columns)}, type);
}

Value lowering::castToType(OpBuilder &b, Location loc, Value tensor,
                           Type type) {
  if (tensor.getType() == type)
    return tensor;
  return tensor::CastOp::create(b, loc, type, tensor);
}

Value lowering::isInRange(OpBuilder &b, Location loc, Value value,
                          Value bound) {
  Value zero = indexConstant(b, loc, 0);
  Value nonNegative = arith::CmpIOp::create(
      b, loc, arith::CmpIPredicate::sge, value, zero);
  Value below =
      arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, value, bound);
  return arith::AndIOp::create(b, loc, nonNegative, below);
}

Value lowering::buildTensorFromIndices(OpBuilder &b, Location loc,
                                       Value rowsSource, OpFoldResult cols,
                                       Type elementType, ElementBody body) {
  MLIRContext *ctx = b.getContext();
  OpFoldResult rows = tensor::getMixedSize(b, loc, rowsSource, 0);
  Value init = tensor::EmptyOp::create(
      b, loc, ArrayRef<OpFoldResult>{rows, cols}, elementType);
  SmallVector<AffineMap> maps = {AffineMap::getMultiDimIdentityMap(2, ctx)};
  SmallVector<utils::IteratorType> iterators(2, utils::IteratorType::parallel);
  auto generic = linalg::GenericOp::create(
      b, loc, TypeRange{init.getType()}, ValueRange{}, ValueRange{init}, maps,
      iterators, [&](OpBuilder &nb, Location nl, ValueRange) {
        Value row = linalg::IndexOp::create(nb, nl, 0);
        Value col = linalg::IndexOp::create(nb, nl, 1);
        linalg::YieldOp::create(nb, nl, body(nb, nl, row, col));
      });
  return generic.getResult(0);
}

Value lowering::buildVectorFromIndices(OpBuilder &b, Location loc,
                                       OpFoldResult size, Type elementType,
                                       VectorBody body) {
  return buildVectorFromIndices(
      b, loc,
      tensor::EmptyOp::create(b, loc, ArrayRef<OpFoldResult>{size},
                              elementType),
      body);
}

Value lowering::buildVectorFromIndices(OpBuilder &b, Location loc, Value init,
                                       VectorBody body) {
  SmallVector<AffineMap> maps = {
      AffineMap::getMultiDimIdentityMap(1, b.getContext())};
  auto generic = linalg::GenericOp::create(
      b, loc, TypeRange{init.getType()}, ValueRange{}, ValueRange{init}, maps,
      {utils::IteratorType::parallel},
      [&](OpBuilder &nb, Location nl, ValueRange) {
        linalg::YieldOp::create(
            nb, nl, body(nb, nl, linalg::IndexOp::create(nb, nl, 0)));
      });
  return generic.getResult(0);
}

Value lowering::buildRowReduction(OpBuilder &b, Location loc, Value input,
                                  double init, Combiner combine) {
  MLIRContext *ctx = b.getContext();
  OpFoldResult rows = tensor::getMixedSize(b, loc, input, 0);
  Value empty = tensor::EmptyOp::create(b, loc, ArrayRef<OpFoldResult>{rows},
                                        b.getF32Type());
  Value filled = linalg::FillOp::create(b, loc,
                                        ValueRange{f32Constant(b, loc, init)},
                                        ValueRange{empty})
                     .getResult(0);
  AffineMap identity = AffineMap::getMultiDimIdentityMap(2, ctx);
  AffineMap rowOnly = AffineMap::get(2, 0, {getAffineDimExpr(0, ctx)}, ctx);
  SmallVector<utils::IteratorType> iterators = {utils::IteratorType::parallel,
                                                utils::IteratorType::reduction};
  auto generic = linalg::GenericOp::create(
      b, loc, TypeRange{filled.getType()}, ValueRange{input},
      ValueRange{filled}, ArrayRef<AffineMap>{identity, rowOnly}, iterators,
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        linalg::YieldOp::create(nb, nl, combine(nb, nl, args[1], args[0]));
      });
  return generic.getResult(0);
}

SmallVector<Value> lowering::buildRowParallel(OpBuilder &b, Location loc,
                                              OpFoldResult rows,
                                              ValueRange inits,
                                              RowsBody body) {
  auto forall = scf::ForallOp::create(b, loc, ArrayRef<OpFoldResult>{rows},
                                      inits, std::nullopt);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPoint(forall.getTerminator());
  Value r = forall.getInductionVar(0);
  SmallVector<OpFoldResult> strides(2, b.getIndexAttr(1));
  SmallVector<OpFoldResult> at = {r, b.getIndexAttr(0)};
  SmallVector<SmallVector<OpFoldResult>> sizes;
  SmallVector<Value> destinations;
  for (Value out : forall.getRegionIterArgs()) {
    auto type = llvm::cast<RankedTensorType>(out.getType());
    sizes.push_back({b.getIndexAttr(1), tensor::getMixedSize(b, loc, out, 1)});
    auto rowType =
        RankedTensorType::get({1, type.getDimSize(1)}, type.getElementType());
    destinations.push_back(tensor::ExtractSliceOp::create(
        b, loc, rowType, out, at, sizes.back(), strides));
  }
  SmallVector<Value> newRows = body(b, loc, r, destinations);
  b.setInsertionPointToStart(forall.getTerminator().getBody());
  for (auto [i, row] : llvm::enumerate(newRows))
    tensor::ParallelInsertSliceOp::create(b, loc, row,
                                          forall.getRegionIterArgs()[i], at,
                                          sizes[i], strides);
  return SmallVector<Value>(forall.getResults());
}
