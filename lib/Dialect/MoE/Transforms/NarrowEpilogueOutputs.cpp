//===- NarrowEpilogueOutputs.cpp - Epilogue rows written in bf16 ----------===//
//
// A grouped matmul's epilogue (SwiGLU of the gate and up sums) writes the
// hidden rows that the down projection reads. Where every reader multiplies
// them by bf16 weights in kernels that round their input rows to bf16 anyway
// (the GPU's tensor cores as they load them, the CPU's bf16 dot products on
// the tensor), the epilogue can round them once as it writes them: half the
// bytes written and read, the same products. (Not f16: the GPU tiles
// saturate f16 inputs, where rounding gives infinities.)
//
//===----------------------------------------------------------------------===//

#include "moe/Dialect/MoE/Transforms/Passes.h"

#include "moe/Dialect/MoE/IR/MoE.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Matchers.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOENARROWEPILOGUEOUTPUTSPASS
#include "moe/Dialect/MoE/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// Whether every reader of `op`'s result reads it as the `input` of a
/// grouped matmul of bf16 weights that may round it (not exact products),
/// or reads only its sizes.
bool readInBF16(GroupedMatmulOp op) {
  return llvm::all_of(op.getResult()[0].getUses(), [](OpOperand &use) {
    if (llvm::isa<tensor::DimOp>(use.getOwner()))
      return true;
    auto reader = llvm::dyn_cast<GroupedMatmulOp>(use.getOwner());
    return reader && &use == &reader.getInputMutable() &&
           !reader.getExactProducts() &&
           llvm::cast<ShapedType>(reader.getWeight().getType())
               .getElementType()
               .isBF16();
  });
}

/// `init` in `type`: a fill of a constant becomes a fill of the constant
/// rounded; anything else is rounded element by element.
Value narrowInit(OpBuilder &b, Location loc, Value init, FloatType type) {
  auto narrow = llvm::cast<RankedTensorType>(init.getType()).clone(type);
  FloatAttr value;
  if (auto fill = init.getDefiningOp<linalg::FillOp>();
      fill && matchPattern(fill.value(), m_Constant(&value))) {
    SmallVector<OpFoldResult> sizes =
        tensor::getMixedSizes(b, loc, fill.getOutputs()[0]);
    Value empty = tensor::EmptyOp::create(b, loc, sizes, type);
    APFloat rounded = value.getValue();
    bool losesInfo;
    rounded.convert(type.getFloatSemantics(), APFloat::rmNearestTiesToEven,
                    &losesInfo);
    Value constant =
        arith::ConstantOp::create(b, loc, type, b.getFloatAttr(type, rounded));
    return linalg::FillOp::create(b, loc, constant, empty).getResult(0);
  }
  return arith::TruncFOp::create(b, loc, narrow, init);
}

struct MoENarrowEpilogueOutputsPass
    : public moe::impl::MoENarrowEpilogueOutputsPassBase<
          MoENarrowEpilogueOutputsPass> {
  void runOnOperation() override {
    SmallVector<GroupedMatmulOp> ops;
    getOperation()->walk([&](GroupedMatmulOp op) {
      // On tensors, with an epilogue that writes f32 without reading the
      // old element (so that the rounded init it would read changes
      // nothing), and something reads the rows.
      if (op.getResult().size() == 1 && op.hasEpilogue() &&
          llvm::cast<ShapedType>(op.getInit().getType())
              .getElementType()
              .isF32() &&
          op.getEpilogueBody().getArguments().back().use_empty() &&
          !op.getResult()[0].use_empty())
        ops.push_back(op);
    });
    for (GroupedMatmulOp op : ops) {
      if (!readInBF16(op))
        continue;
      OpBuilder b(op);
      Value init = narrowInit(b, op.getLoc(), op.getInit(),
                              BFloat16Type::get(op.getContext()));
      op.getInitMutable().assign(init);
      op.getResult()[0].setType(init.getType());
    }
  }
};

} // namespace
