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
    auto bufferOf = [&](Value operand) -> FailureOr<Value> {
      if (!operand || !llvm::isa<TensorType>(operand.getType()))
        return operand;
      return getBuffer(rewriter, operand, options, state);
    };
    FailureOr<Value> input = bufferOf(matmul.getInput());
    FailureOr<Value> weight = bufferOf(matmul.getWeight());
    FailureOr<Value> paired = bufferOf(matmul.getPairedWeight());
    FailureOr<Value> blocks = bufferOf(matmul.getBlockExperts());
    FailureOr<Value> sizes = bufferOf(matmul.getBlockSizes());
    FailureOr<Value> sources = bufferOf(matmul.getRowSources());
    FailureOr<Value> targets = bufferOf(matmul.getScatterRows());
    FailureOr<Value> scales = bufferOf(matmul.getScatterScales());
    FailureOr<Value> weightScale = bufferOf(matmul.getWeightScale());
    FailureOr<Value> pairedScale = bufferOf(matmul.getPairedWeightScale());
    FailureOr<Value> init = bufferOf(matmul.getInit());
    if (failed(input) || failed(weight) || failed(paired) || failed(blocks) ||
        failed(sizes) || failed(sources) || failed(targets) || failed(scales) ||
        failed(weightScale) || failed(pairedScale) || failed(init))
      return failure();
    rewriter.setInsertionPoint(op);
    auto buffered = GroupedMatmulOp::create(
        rewriter, op->getLoc(), TypeRange{}, *input, *weight, *paired, *blocks,
        *sizes, *sources, *targets, *scales, *weightScale, *pairedScale, *init,
        matmul.getBlockRowsAttr(), matmul.getWeightBlockAttr(),
        matmul.getEpilogue().size());
    buffered.copyEpilogueFrom(matmul);
    replaceOpWithBufferizedValues(rewriter, op, *init);
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
