//===- BufferizationModels.cpp - Bufferizing moe ops in DPS form ----------===//
//
// moe.grouped_matmul and moe.all_to_all are in destination-passing style:
// inputs are read, `init` is read and written in place and aliases the
// result. The memref form of each op is the same op with buffer operands
// and no result.
//
//===----------------------------------------------------------------------===//

#include "moe/Dialect/MoE/IR/MoE.h"
#include "moe/Dialect/MoE/Transforms/InterfaceModels.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Bufferization/IR/DstBufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

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
    // Both weights have one type. Views of one fused tensor (its gate and
    // up halves) are buffers with the same strides but other offsets: both
    // are read through the fully dynamic strided layout.
    if (*paired && (*paired).getType() != (*weight).getType()) {
      auto type = llvm::cast<MemRefType>((*weight).getType());
      SmallVector<int64_t> strides(type.getRank(), ShapedType::kDynamic);
      auto common =
          MemRefType::get(type.getShape(), type.getElementType(),
                          StridedLayoutAttr::get(op->getContext(),
                                                 ShapedType::kDynamic, strides),
                          type.getMemorySpace());
      if (!memref::CastOp::areCastCompatible((*weight).getType(), common) ||
          !memref::CastOp::areCastCompatible((*paired).getType(), common))
        return op->emitError("weights of different shapes or element types");
      weight = memref::CastOp::create(rewriter, op->getLoc(), common, *weight)
                   .getResult();
      paired = memref::CastOp::create(rewriter, op->getLoc(), common, *paired)
                   .getResult();
    }
    auto buffered = GroupedMatmulOp::create(
        rewriter, op->getLoc(), TypeRange{}, *input, *weight, *paired, *blocks,
        *sizes, *sources, *targets, *scales, *weightScale, *pairedScale, *init,
        matmul.getBlockRowsAttr(), matmul.getWeightBlockAttr(),
        matmul.getExactProductsAttr(), matmul.getAtomicScatterAttr(),
        matmul.getUniqueScatterAttr(), matmul.getEpilogue().size());
    buffered.copyEpilogueFrom(matmul);
    replaceOpWithBufferizedValues(rewriter, op, *init);
    return success();
  }
};

struct AllToAllBufferizationModel
    : public DstBufferizableOpInterfaceExternalModel<AllToAllBufferizationModel,
                                                     AllToAllOp> {
  LogicalResult bufferize(Operation *op, RewriterBase &rewriter,
                          const BufferizationOptions &options,
                          BufferizationState &state) const {
    auto exchange = llvm::cast<AllToAllOp>(op);
    FailureOr<Value> input =
        getBuffer(rewriter, exchange.getInput(), options, state);
    FailureOr<Value> sendCounts =
        getBuffer(rewriter, exchange.getSendCounts(), options, state);
    FailureOr<Value> recvCounts =
        getBuffer(rewriter, exchange.getRecvCounts(), options, state);
    FailureOr<Value> init =
        getBuffer(rewriter, exchange.getInit(), options, state);
    if (failed(input) || failed(sendCounts) || failed(recvCounts) ||
        failed(init))
      return failure();
    rewriter.setInsertionPoint(op);
    AllToAllOp::create(rewriter, op->getLoc(), TypeRange{}, *input, *sendCounts,
                       *recvCounts, exchange.getComm(), *init);
    replaceOpWithBufferizedValues(rewriter, op, *init);
    return success();
  }
};

} // namespace

void mlir::moe::registerBufferizableOpInterfaceExternalModels(
    DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *ctx, MoeDialect *) {
    GroupedMatmulOp::attachInterface<GroupedMatmulBufferizationModel>(*ctx);
    AllToAllOp::attachInterface<AllToAllBufferizationModel>(*ctx);
  });
}
