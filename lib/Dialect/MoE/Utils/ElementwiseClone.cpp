//===- ElementwiseClone.cpp - Element-wise bodies on scalars or vectors ---===//

#include "moe/Dialect/MoE/Utils/ElementwiseClone.h"

#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/IRMapping.h"

using namespace mlir;

SmallVector<Value>
moe::cloneElementwiseBody(OpBuilder &b, Block &body, ValueRange args,
                          ArrayRef<int64_t> vectorShape,
                          SmallVectorImpl<Operation *> *vectorMath) {
  IRMapping map;
  for (auto [arg, value] : llvm::zip(body.getArguments(), args))
    if (value)
      map.map(arg, value);
  // On vectors: scalars (constants, values from outside the body) are
  // broadcast, once each.
  DenseMap<Value, Value> broadcasts;
  auto operandOf = [&](Value v, Location loc) -> Value {
    Value mapped = map.lookupOrDefault(v);
    if (vectorShape.empty() || llvm::isa<VectorType>(mapped.getType()))
      return mapped;
    Value &splat = broadcasts[mapped];
    if (!splat)
      splat = vector::BroadcastOp::create(
          b, loc, VectorType::get(vectorShape, mapped.getType()), mapped);
    return splat;
  };
  for (Operation &op : body.without_terminator()) {
    if (vectorShape.empty() || op.getNumOperands() == 0) {
      b.clone(op, map);
      continue;
    }
    OperationState state(op.getLoc(), op.getName());
    for (Value operand : op.getOperands())
      state.addOperands(operandOf(operand, op.getLoc()));
    state.addAttributes(op.getAttrs());
    for (Type type : op.getResultTypes())
      state.addTypes(VectorType::get(vectorShape, type));
    Operation *vectorOp = b.create(state);
    map.map(op.getResults(), vectorOp->getResults());
    if (vectorMath && llvm::isa<math::MathDialect>(vectorOp->getDialect()))
      vectorMath->push_back(vectorOp);
  }
  Operation *terminator = body.getTerminator();
  SmallVector<Value> results;
  for (Value v : terminator->getOperands())
    results.push_back(operandOf(v, terminator->getLoc()));
  return results;
}
