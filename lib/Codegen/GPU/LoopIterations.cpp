//===- LoopIterations.cpp - Iterations of scf.parallel loops --------------===//

#include "LoopIterations.h"

#include "moe/Dialect/MoE/IR/MoE.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/MemRef/Utils/MemRefUtils.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/FunctionInterfaces.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;

namespace mlir::moe::gpu_codegen {

bool holdsGroupedMatmul(Operation *op) {
  return op->walk([](moe::GroupedMatmulOp) { return WalkResult::interrupt(); })
      .wasInterrupted();
}

bool holdsGroupedMatmulOfExperts(Operation *op) {
  return op
      ->walk([](moe::GroupedMatmulOp matmul) {
        auto weight = llvm::cast<ShapedType>(matmul.getWeight().getType());
        return weight.getDimSize(0) == 1 ? WalkResult::advance()
                                         : WalkResult::interrupt();
      })
      .wasInterrupted();
}

bool holdsAllocation(Operation *op) {
  return op
      ->walk([](Operation *inner) {
        return llvm::isa<memref::AllocOp, memref::AllocaOp>(inner)
                   ? WalkResult::interrupt()
                   : WalkResult::advance();
      })
      .wasInterrupted();
}

BufferKey classifyBuffer(MemrefValue memref, Operation *scope, bool writes) {
  Value buffer = memref::skipViewLikeOps(memref);
  if (Operation *def = buffer.getDefiningOp()) {
    bool allocated = llvm::isa<memref::AllocOp, memref::AllocaOp>(def);
    if (scope->isAncestor(def))
      return {allocated ? BufferKey::Private : BufferKey::Unknown, buffer};
    // Only allocations and globals are known apart (a buffer that control
    // flow or a call returns may be any); two reads of a global may name
    // it twice, a write may not.
    if (!allocated && (!llvm::isa<memref::GetGlobalOp>(def) || writes))
      return {BufferKey::Unknown, buffer};
    if (allocated)
      return {BufferKey::Known, buffer};
    // A global that is read: a caller may also pass it as an argument, so
    // it counts as the arguments' buffer (or as itself where there is none).
    auto func = scope->getParentOfType<FunctionOpInterface>();
    if (func && func.getNumArguments() != 0)
      return {BufferKey::Known, func.getFunctionBody().front().getArgument(0)};
    return {BufferKey::Known, buffer};
  }
  auto func = scope->getParentOfType<FunctionOpInterface>();
  if (func && buffer.getParentBlock() == &func.getFunctionBody().front())
    return {BufferKey::Known, func.getFunctionBody().front().getArgument(0)};
  // The argument of a loop or of a region: it may be any buffer.
  return {BufferKey::Unknown, buffer};
}

std::optional<gpu::AllReduceOperation> allReduceKind(Operation *combiner) {
  using Kind = gpu::AllReduceOperation;
  std::optional<Kind> kind =
      llvm::TypeSwitch<Operation *, std::optional<Kind>>(combiner)
          .Case<arith::AddFOp, arith::AddIOp>([](auto) { return Kind::ADD; })
          .Case<arith::MulFOp, arith::MulIOp>([](auto) { return Kind::MUL; })
          .Case([](arith::MinSIOp) { return Kind::MINSI; })
          .Case([](arith::MinUIOp) { return Kind::MINUI; })
          .Case([](arith::MaxSIOp) { return Kind::MAXSI; })
          .Case([](arith::MaxUIOp) { return Kind::MAXUI; })
          .Case([](arith::MinNumFOp) { return Kind::MINNUMF; })
          .Case([](arith::MaxNumFOp) { return Kind::MAXNUMF; })
          .Case([](arith::MinimumFOp) { return Kind::MINIMUMF; })
          .Case([](arith::MaximumFOp) { return Kind::MAXIMUMF; })
          .Case([](arith::AndIOp) { return Kind::AND; })
          .Case([](arith::OrIOp) { return Kind::OR; })
          .Case([](arith::XOrIOp) { return Kind::XOR; })
          .Default([](Operation *) { return std::nullopt; });
  if (!kind || combiner->getNumOperands() != 2 ||
      combiner->getNumResults() != 1 ||
      !arith::getNeutralElement(combiner).has_value())
    return std::nullopt;
  // Regrouped, integer sums may overflow where the original order did not
  // (poison under nsw/nuw), and under nnan the NaN neutral element of
  // minnumf/maxnumf is poison.
  if (auto flags =
          llvm::dyn_cast<arith::ArithIntegerOverflowFlagsInterface>(combiner);
      flags &&
      flags.getOverflowAttr().getValue() != arith::IntegerOverflowFlags::none)
    return std::nullopt;
  if (auto fastMath = llvm::dyn_cast<arith::ArithFastMathInterface>(combiner);
      fastMath && llvm::isa<arith::MinNumFOp, arith::MaxNumFOp>(combiner) &&
      arith::bitEnumContainsAny(fastMath.getFastMathFlagsAttr().getValue(),
                                arith::FastMathFlags::nnan))
    return std::nullopt;
  return kind;
}

Value cloneCombiner(OpBuilder &b, Location loc, Operation *combiner, Value lhs,
                    Value rhs) {
  OperationState state(loc, combiner->getName(), ValueRange{lhs, rhs},
                       combiner->getResultTypes(), combiner->getAttrs());
  return b.create(state)->getResult(0);
}

TypedAttr neutralElement(Operation *combiner) {
  if (auto add = llvm::dyn_cast<arith::AddFOp>(combiner))
    return FloatAttr::get(add.getType(), -0.0);
  return *arith::getNeutralElement(combiner);
}

/// The trip counts of `loop`'s dimensions (0 for empty ranges).
SmallVector<Value> tripCounts(OpBuilder &b, Location loc,
                              scf::ParallelOp loop) {
  Value zero = arith::ConstantIndexOp::create(b, loc, 0);
  SmallVector<Value> counts;
  for (auto [lower, upper, step] :
       llvm::zip(loop.getLowerBound(), loop.getUpperBound(), loop.getStep())) {
    Value span = arith::SubIOp::create(b, loc, upper, lower);
    span = arith::MaxSIOp::create(b, loc, span, zero);
    counts.push_back(arith::CeilDivUIOp::create(b, loc, span, step));
  }
  return counts;
}

Value product(OpBuilder &b, Location loc, ArrayRef<Value> values) {
  Value result = arith::ConstantIndexOp::create(b, loc, 1);
  for (Value value : values)
    result = arith::MulIOp::create(b, loc, result, value);
  return result;
}

void cloneBody(OpBuilder &b, Location loc, scf::ParallelOp loop,
               ArrayRef<Value> indices, IRMapping &mapping) {
  for (auto [d, index] : llvm::enumerate(indices)) {
    Value offset = arith::MulIOp::create(b, loc, index, loop.getStep()[d]);
    mapping.map(loop.getInductionVars()[d],
                arith::AddIOp::create(b, loc, loop.getLowerBound()[d], offset)
                    .getResult());
  }
  for (Operation &op : loop.getBody()->without_terminator())
    b.clone(op, mapping);
}

void cloneBody(OpBuilder &b, Location loc, scf::ParallelOp loop,
               ArrayRef<Value> indices) {
  IRMapping mapping;
  cloneBody(b, loc, loop, indices, mapping);
}

void cloneIteration(OpBuilder &b, Location loc, scf::ParallelOp loop,
                    ArrayRef<Value> counts, Value linear, IRMapping &mapping) {
  SmallVector<Value> indices(counts.size());
  for (int64_t d = static_cast<int64_t>(counts.size()) - 1; d >= 0; --d) {
    indices[d] = d == 0 ? linear
                        : arith::RemUIOp::create(b, loc, linear, counts[d])
                              .getResult();
    if (d != 0)
      linear = arith::DivUIOp::create(b, loc, linear, counts[d]);
  }
  cloneBody(b, loc, loop, indices, mapping);
}

void cloneIteration(OpBuilder &b, Location loc, scf::ParallelOp loop,
                    ArrayRef<Value> counts, Value linear) {
  IRMapping mapping;
  cloneIteration(b, loc, loop, counts, linear, mapping);
}

} // namespace mlir::moe::gpu_codegen
