//===- VectorizeElementwise.cpp - Element-wise linalg ops on vectors ------===//
//
// An element-wise linalg.generic on memrefs (every loop parallel, every
// operand read and written at the same indices) becomes loops whose
// innermost one steps by the vector width and applies the generic's body to
// whole vectors: its element-wise ops (arith, math) cloned with vector types,
// values from outside the body broadcast. The outer loops are an
// scf.parallel (threads, as for any parallel loop of the pipeline); the
// innermost loop's remainder is one vector read and written past the end
// with padding and masking.
//
// Vector exponentials, tanh, erf and their kin then use upstream's
// polynomial approximations (populateMathPolynomialApproximationPatterns)
// instead of one libm call per lane: activations (SiLU's exp, GELU's erf
// and tanh) run at vector speed.
//
//===----------------------------------------------------------------------===//

#include "ApproximateVectorMath.h"
#include "moe/Codegen/CPU/Passes.h"
#include "moe/Dialect/MoE/Utils/ElementwiseClone.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEVECTORIZEELEMENTWISEPASS
#include "moe/Codegen/CPU/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

bool isScalar(Type type) { return type.isIntOrIndexOrFloat(); }

/// Whether `op` is element-wise on memrefs with a body of element-wise
/// scalar ops: every loop parallel, every indexing map the identity.
bool isVectorizable(linalg::GenericOp op) {
  if (!op.hasPureBufferSemantics() || op.getNumLoops() < 1)
    return false;
  if (!llvm::all_of(op.getIteratorTypesArray(), [](utils::IteratorType type) {
        return type == utils::IteratorType::parallel;
      }))
    return false;
  if (!llvm::all_of(op.getIndexingMapsArray(),
                    [](AffineMap map) { return map.isIdentity(); }))
    return false;
  for (Value operand : op->getOperands()) {
    auto type = llvm::dyn_cast<MemRefType>(operand.getType());
    if (!type || !isScalar(type.getElementType()))
      return false;
  }
  Block &body = op.getRegion().front();
  for (Operation &inner : body.without_terminator()) {
    if (!inner.hasTrait<OpTrait::Elementwise>() || inner.getNumRegions() != 0)
      return false;
    for (Type type : inner.getResultTypes())
      if (!isScalar(type))
        return false;
    for (Value operand : inner.getOperands())
      if (!isScalar(operand.getType()))
        return false;
  }
  return true;
}

/// Emits the vector loops of `op` (see the file comment); returns the math
/// ops it created, to be approximated.
class ElementwiseEmitter {
public:
  ElementwiseEmitter(RewriterBase &rewriter, linalg::GenericOp op,
                     int64_t width)
      : b(rewriter), op(op), loc(op.getLoc()), width(width) {}

  void emit(SmallVectorImpl<Operation *> &mathOps) {
    created = &mathOps;
    SmallVector<Range> ranges = llvm::cast<linalg::LinalgOp>(op.getOperation())
                                    .createLoopRanges(b, loc);
    SmallVector<Value> lbs, ubs, steps;
    for (const Range &range : ArrayRef<Range>(ranges).drop_back()) {
      lbs.push_back(getValueOrCreateConstantIndexOp(b, loc, range.offset));
      ubs.push_back(getValueOrCreateConstantIndexOp(b, loc, range.size));
      steps.push_back(arith::ConstantIndexOp::create(b, loc, 1));
    }
    Value size = getValueOrCreateConstantIndexOp(b, loc, ranges.back().size);
    if (lbs.empty()) {
      emitRow({}, size);
      return;
    }
    scf::ParallelOp::create(
        b, loc, lbs, ubs, steps,
        [&](OpBuilder &, Location, ValueRange outer) { emitRow(outer, size); });
  }

private:
  /// The innermost loop over `size` elements at the outer indices `outer`.
  void emitRow(ValueRange outer, Value size) {
    Value vw = arith::ConstantIndexOp::create(b, loc, width);
    Value main = arith::SubIOp::create(
        b, loc, size, arith::RemUIOp::create(b, loc, size, vw));
    scf::ForOp::create(b, loc, arith::ConstantIndexOp::create(b, loc, 0), main,
                       vw, ValueRange{},
                       [&](OpBuilder &, Location, Value i, ValueRange) {
                         emitVector(outer, i, /*inBounds=*/true);
                         scf::YieldOp::create(b, loc);
                       });
    Value rest =
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, main, size);
    scf::IfOp::create(b, loc, rest, [&](OpBuilder &, Location) {
      emitVector(outer, main, /*inBounds=*/false);
      scf::YieldOp::create(b, loc);
    });
  }

  VectorType vectorOf(Type element) {
    return VectorType::get({width}, element);
  }

  /// The body on one vector at `outer` x [i, i + width); past the end of
  /// the row (not in bounds) lanes read padding and are not written.
  void emitVector(ValueRange outer, Value i, bool inBounds) {
    SmallVector<Value> indices(outer.begin(), outer.end());
    indices.push_back(i);
    Block &body = op.getRegion().front();
    SmallVector<Value> args;
    for (OpOperand &operand : op->getOpOperands()) {
      BlockArgument arg = op.getMatchingBlockArgument(&operand);
      if (arg.use_empty()) {
        args.push_back(Value());
        continue;
      }
      Type element = arg.getType();
      Value padding = arith::ConstantOp::create(b, loc, b.getZeroAttr(element));
      args.push_back(vector::TransferReadOp::create(
          b, loc, vectorOf(element), operand.get(), indices, padding,
          ArrayRef<bool>{inBounds}));
    }
    SmallVector<Value> results =
        cloneElementwiseBody(b, body, args, {width}, created);
    for (auto [value, init] : llvm::zip(results, op.getDpsInitsMutable()))
      vector::TransferWriteOp::create(b, loc, value, init.get(), indices,
                                      ArrayRef<bool>{inBounds});
  }

  RewriterBase &b;
  linalg::GenericOp op;
  Location loc;
  int64_t width;
  SmallVectorImpl<Operation *> *created = nullptr;
};

struct MoEVectorizeElementwisePass
    : public moe::impl::MoEVectorizeElementwisePassBase<
          MoEVectorizeElementwisePass> {
  using MoEVectorizeElementwisePassBase::MoEVectorizeElementwisePassBase;

  LogicalResult initialize(MLIRContext *context) override {
    if (vectorWidth < 1)
      return emitError(UnknownLoc::get(context))
             << getArgument() << ": vector-width must be at least 1, got "
             << static_cast<int64_t>(vectorWidth);
    return success();
  }

  void runOnOperation() override {
    SmallVector<linalg::GenericOp> ops;
    getOperation()->walk([&](linalg::GenericOp op) {
      if (isVectorizable(op))
        ops.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    SmallVector<Operation *> mathOps;
    for (linalg::GenericOp op : ops) {
      rewriter.setInsertionPoint(op);
      ElementwiseEmitter(rewriter, op, vectorWidth).emit(mathOps);
      rewriter.eraseOp(op);
    }
    // Only the vector math created here: scalar math elsewhere (routing's
    // exponentials) keeps its libm results bit for bit.
    if (failed(cpu::approximateVectorMath(&getContext(), mathOps)))
      return signalPassFailure();
  }
};

} // namespace
