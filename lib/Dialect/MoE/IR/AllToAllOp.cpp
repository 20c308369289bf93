//===- AllToAllOp.cpp - moe.all_to_all ------------------------------------===//
//
// Verifier and memory effects of the rows exchange of expert parallelism.
// Being a collective, the op writes the communicator on tensors too: it is
// never removed as dead nor moved past another collective.
//
//===----------------------------------------------------------------------===//

#include "moe/Dialect/MoE/IR/MoE.h"

#include "BufferEffects.h"
#include "moe/Dialect/MoE/IR/Communicator.h"

using namespace mlir;
using namespace mlir::moe;

LogicalResult AllToAllOp::verify() {
  auto input = llvm::cast<ShapedType>(getInput().getType());
  auto init = llvm::cast<ShapedType>(getInit().getType());
  // c3.
  bool tensors = llvm::isa<RankedTensorType>(input);
  for (Value operand :
       {getInput(), getSendCounts(), getRecvCounts(), getInit()}) {
    Type type = operand.getType();
    if (tensors ? !llvm::isa<RankedTensorType>(type)
                : !llvm::isa<MemRefType>(type))
      return emitOpError("operands must be all ranked tensors or all "
                         "memrefs, got ")
             << type;
  }
  if (tensors != (getNumResults() == 1))
    return emitOpError(tensors ? "on tensors has one result, `init`'s type"
                               : "on buffers has no result");
  if (tensors && getResult()[0].getType() != init)
    return emitOpError("result must have the type of 'init' ")
           << init << ", got " << getResult()[0].getType();
  // c4.
  if (getInput() == getInit())
    return emitOpError("'input' and 'init' must be different values (MPI "
                       "forbids overlapping send and receive buffers)");
  // c1.
  if (input.getRank() < 1 || input.getRank() != init.getRank())
    return emitOpError("'input' and 'init' must have one rank of at least "
                       "1, got ")
           << input << " and " << init;
  if (input.getElementType() != init.getElementType())
    return emitOpError("'input' and 'init' must have one element type, got ")
           << input.getElementType() << " and " << init.getElementType();
  for (int64_t d = 1; d < input.getRank(); ++d) {
    int64_t sent = input.getDimSize(d), received = init.getDimSize(d);
    if (!ShapedType::isDynamic(sent) && !ShapedType::isDynamic(received) &&
        sent != received)
      return emitOpError("rows of 'input' and 'init' differ in dimension ")
             << d << ": " << sent << " vs " << received;
  }
  // c2.
  auto sendCounts = llvm::cast<ShapedType>(getSendCounts().getType());
  for (auto [name, type] :
       {std::pair<StringRef, ShapedType>{"send_counts", sendCounts},
        {"recv_counts", llvm::cast<ShapedType>(getRecvCounts().getType())}}) {
    if (type.getRank() != 1 || !type.getElementType().isInteger(64) ||
        ShapedType::isDynamic(type.getDimSize(0)) || type.getDimSize(0) < 1)
      return emitOpError("'")
             << name << "' must be [R] i64 with a static R >= 1, got " << type;
    if (type.getDimSize(0) != sendCounts.getDimSize(0))
      return emitOpError("'send_counts' and 'recv_counts' must have one "
                         "size (the ranks), got ")
             << sendCounts.getDimSize(0) << " and " << type.getDimSize(0);
  }
  return success();
}

void AllToAllOp::getEffects(
    SmallVectorImpl<SideEffects::EffectInstance<MemoryEffects::Effect>>
        &effects) {
  addCommunicatorEffects(effects);
  detail::addBufferEffects(getOperation(), getInitMutable(), effects);
}
