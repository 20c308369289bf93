//===- GroupedMatmulBufferization.cpp - Bufferizing moe.grouped_matmul ----===//
//
// Destination-passing style: inputs are read, `init` is read and written in
// place and aliases the result. The memref form of the op is the same op
// with buffer operands and no result.
//
//===----------------------------------------------------------------------===//

#include "moe/Dialect/MoE/IR/MoE.h"
#include "moe/Dialect/MoE/Transforms/InterfaceModels.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Bufferization/IR/DstBufferizableOpInterfaceImpl.h"

using namespace mlir;
using namespace mlir::bufferization;
using namespace mlir::moe;

namespace {

struct GroupedMatmulBufferizationModel
    : public DstBufferizableOpInterfaceExternalModel<
          GroupedMatmulBufferizationModel, GroupedMatmulOp> {
  LogicalResult bufferize(Operation *op, RewriterBase &rewriter,
                          const BufferizationOptions &options,
                          BufferizationState &state) const {
    auto matmul = llvm::cast<GroupedMatmulOp>(op);
    SmallVector<Value> buffers;
    for (Value operand : op->getOperands()) {
      if (!llvm::isa<TensorType>(operand.getType())) {
        buffers.push_back(operand);
        continue;
      }
      FailureOr<Value> buffer = getBuffer(rewriter, operand, options, state);
      if (failed(buffer))
        return failure();
      buffers.push_back(*buffer);
    }
    rewriter.setInsertionPoint(op);
    GroupedMatmulOp::create(rewriter, op->getLoc(), TypeRange{}, buffers[0],
                            buffers[1], buffers[2], buffers[3],
                            matmul.getBlockRowsAttr());
    replaceOpWithBufferizedValues(rewriter, op, buffers[3]);
    return success();
  }
};

} // namespace

void mlir::moe::registerBufferizableOpInterfaceExternalModels(
    DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *ctx, MoeDialect *) {
    GroupedMatmulOp::attachInterface<GroupedMatmulBufferizationModel>(*ctx);
  });
}
