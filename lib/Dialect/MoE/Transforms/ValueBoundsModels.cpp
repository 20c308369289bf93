//===- ValueBoundsModels.cpp - Sizes ValueBoundsConstraintSet can follow --===//
//
// ValueBoundsOpInterface for the routing plan's results, whose sizes are
// tied to each other and to the token count (R = B * BM, R bounded by T),
// and for bufferization.alloc_tensor, the accumulators the fast path
// allocates (upstream has no model for it; its sizes are its operands). A
// pass proving that one op covers another's blocks (moe-drop-unread-inits)
// follows sizes through them. moe.grouped_matmul needs no model: its
// results are tied to its inits (destination-passing style), which
// ValueBoundsConstraintSet follows by itself.
//
//===----------------------------------------------------------------------===//

#include "moe/Dialect/MoE/IR/MoE.h"
#include "moe/Dialect/MoE/Transforms/InterfaceModels.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Interfaces/ValueBoundsOpInterface.h"

using namespace mlir;
using namespace mlir::moe;

namespace {

/// The plan's sizes: `[E+1]` offsets (static), `[B]` block experts and
/// sizes, `[R]` row sources with R = B * BM, and a `[T,K]` row map like
/// its ids. R is also at most A * T*K and at most A * floor((T*K +
/// E*(A-1)) / A) (RoutingPlanOp's description: it is the smaller of
/// the two).
struct RoutingPlanValueBoundsModel
    : public ValueBoundsOpInterface::ExternalModel<RoutingPlanValueBoundsModel,
                                                   RoutingPlanOp> {
  void populateBoundsForShapedValueDim(Operation *op, Value value, int64_t dim,
                                       ValueBoundsConstraintSet &cstr) const {
    auto plan = llvm::cast<RoutingPlanOp>(op);
    if (value == plan.getRowMap()) {
      cstr.bound(value)[dim] == cstr.getExpr(plan.getIds(), dim);
      return;
    }
    int64_t blockRows = plan.getBlockRows();
    AffineExpr blocks = cstr.getExpr(plan.getBlockExperts(), 0);
    if (value == plan.getBlockSizes()) {
      cstr.bound(value)[0] == blocks;
      return;
    }
    AffineExpr rows = cstr.getExpr(plan.getRowSources(), 0);
    if (value == plan.getBlockExperts()) {
      // R is a multiple of BM: the division is exact.
      cstr.bound(value)[0] == rows.floorDiv(blockRows);
      return;
    }
    if (value != plan.getRowSources())
      return;
    cstr.bound(value)[0] == blocks *blockRows;
    int64_t align = plan.getAlign();
    int64_t choices = plan.getIds().getType().getDimSize(1);
    AffineExpr assignments = cstr.getExpr(plan.getIds(), 0) * choices;
    cstr.bound(value)[0] <= assignments *align;
    cstr.bound(value)[0] <=
        (assignments + plan.getNumExperts() * (align - 1)).floorDiv(align) *
            align;
  }
};

/// A fresh tensor's sizes: its dynamic sizes, or those of the tensor it
/// copies.
struct AllocTensorValueBoundsModel
    : public ValueBoundsOpInterface::ExternalModel<
          AllocTensorValueBoundsModel, bufferization::AllocTensorOp> {
  void populateBoundsForShapedValueDim(Operation *op, Value value, int64_t dim,
                                       ValueBoundsConstraintSet &cstr) const {
    auto alloc = llvm::cast<bufferization::AllocTensorOp>(op);
    if (Value copied = alloc.getCopy()) {
      cstr.bound(value)[dim] == cstr.getExpr(copied, dim);
      return;
    }
    auto type = llvm::cast<RankedTensorType>(value.getType());
    // Static sizes are bound by the constraint set itself.
    if (type.isDynamicDim(dim))
      cstr.bound(value)[dim] ==
          alloc.getDynamicSizes()[type.getDynamicDimIndex(dim)];
  }
};

} // namespace

void mlir::moe::registerValueBoundsOpInterfaceExternalModels(
    DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *ctx, MoeDialect *) {
    RoutingPlanOp::attachInterface<RoutingPlanValueBoundsModel>(*ctx);
  });
  registry.addExtension(+[](MLIRContext *ctx,
                            bufferization::BufferizationDialect *) {
    bufferization::AllocTensorOp::attachInterface<AllocTensorValueBoundsModel>(
        *ctx);
  });
}
