//===- NarrowGroupedMatmulInputs.cpp - Input rows rounded to bf16 once ----===//
//
// A gate/up projection reads its f32 token rows once per tile of columns,
// and its tensor-core tiles round every element they load to bf16. Rounding
// the rows once, before the first such reader, gives the same products
// from half the bytes; other readers (the router) keep the f32 rows. The
// rounding is a pass over the rows of its own (a GPU launch), which pays
// only from some number of rows: below `min-rows`, a reader keeps its f32
// rows, chosen at run time when the count is dynamic.
//
//===----------------------------------------------------------------------===//

#include "moe/Dialect/MoE/Transforms/Passes.h"

#include "moe/Dialect/MoE/IR/MoE.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

#include "llvm/ADT/MapVector.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOENARROWGROUPEDMATMULINPUTSPASS
#include "moe/Dialect/MoE/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// Whether `op` multiplies f32 or f16 rows of a tensor by unscaled bf16
/// weights, and may round them (not exact products).
bool readsWideRowsForBF16(GroupedMatmulOp op) {
  if (op.getResult().empty() || !op.getWeightScales().empty() ||
      op.getExactProducts())
    return false;
  auto input = llvm::dyn_cast<RankedTensorType>(op.getInput().getType());
  return input && input.getRank() == 2 &&
         (input.getElementType().isF32() || input.getElementType().isF16()) &&
         llvm::all_of(op.getWeights(), [](Value weight) {
           return llvm::cast<ShapedType>(weight.getType())
               .getElementType()
               .isBF16();
         });
}

struct MoENarrowGroupedMatmulInputsPass
    : public moe::impl::MoENarrowGroupedMatmulInputsPassBase<
          MoENarrowGroupedMatmulInputsPass> {
  using Base::Base;

  LogicalResult initialize(MLIRContext *context) override {
    if (minRows < 0)
      return emitError(UnknownLoc::get(context))
             << "moe-narrow-grouped-matmul-inputs: min-rows must be at least "
                "0, got "
             << static_cast<int64_t>(minRows);
    return success();
  }

  void runOnOperation() override {
    // The readers of each row tensor, in order; those in the block of the
    // first (the rounding is placed there, before it).
    llvm::MapVector<Value, SmallVector<GroupedMatmulOp>> readers;
    getOperation()->walk([&](GroupedMatmulOp op) {
      if (!readsWideRowsForBF16(op))
        return;
      SmallVector<GroupedMatmulOp> &ops = readers[op.getInput()];
      if (ops.empty() || ops.front()->getBlock() == op->getBlock())
        ops.push_back(op);
    });
    for (auto &[rows, ops] : readers)
      narrow(rows, ops);
  }

private:
  void narrow(Value rows, ArrayRef<GroupedMatmulOp> ops) {
    auto type = llvm::cast<RankedTensorType>(rows.getType());
    std::optional<int64_t> count;
    if (!type.isDynamicDim(0))
      count = type.getDimSize(0);
    if (minRows > 0 && count && *count < minRows)
      return;
    GroupedMatmulOp first = ops.front();
    OpBuilder b(first);
    Location loc = first.getLoc();
    auto narrowType = type.clone(b.getBF16Type());
    // f16 is as wide as bf16: through f32, as the tiles convert it.
    auto round = [&](OpBuilder &rb, Location rl) -> Value {
      Value wide = rows;
      if (!type.getElementType().isF32())
        wide = arith::ExtFOp::create(rb, rl, type.clone(rb.getF32Type()), wide);
      return arith::TruncFOp::create(rb, rl, narrowType, wide);
    };
    if (minRows == 0 || count) {
      Value narrow = round(b, loc);
      for (GroupedMatmulOp op : ops)
        op.getInputMutable().assign(narrow);
      return;
    }
    // The rows' count is known at run time: the rounded rows from min-rows
    // on. Both branches yield the one buffer the rounding writes (unwritten
    // below min-rows), so that the choice is no buffer the host must wait
    // for.
    Value zero = arith::ConstantIndexOp::create(b, loc, 0);
    Value tokens = tensor::DimOp::create(b, loc, rows, zero);
    Value enough =
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::uge, tokens,
                              arith::ConstantIndexOp::create(b, loc, minRows));
    Value buffer = tensor::EmptyOp::create(
        b, loc,
        SmallVector<OpFoldResult>{tokens,
                                  tensor::getMixedSize(b, loc, rows, 1)},
        b.getBF16Type());
    auto rounding = scf::IfOp::create(
        b, loc, enough,
        [&](OpBuilder &tb, Location tl) {
          AffineMap identity = tb.getMultiDimIdentityMap(2);
          auto generic = linalg::GenericOp::create(
              tb, tl, TypeRange{narrowType}, ValueRange{rows},
              ValueRange{buffer}, ArrayRef<AffineMap>{identity, identity},
              SmallVector<utils::IteratorType>(2,
                                               utils::IteratorType::parallel),
              [&](OpBuilder &gb, Location gl, ValueRange args) {
                Value wide = args[0];
                if (!wide.getType().isF32())
                  wide = arith::ExtFOp::create(gb, gl, gb.getF32Type(), wide);
                linalg::YieldOp::create(
                    gb, gl,
                    arith::TruncFOp::create(gb, gl, gb.getBF16Type(), wide)
                        .getResult());
              });
          scf::YieldOp::create(tb, tl, generic.getResult(0));
        },
        [&](OpBuilder &eb, Location el) {
          scf::YieldOp::create(eb, el, buffer);
        });
    Value narrow = rounding.getResult(0);
    // Each reader chooses with the same condition. Both choices update the
    // reader's accumulator (their destination), so that they write one
    // buffer, of the accumulator's layout, and tiling still fuses its
    // fill into the tiles of each.
    for (GroupedMatmulOp op : ops) {
      OpBuilder ob(op);
      auto choice = scf::IfOp::create(
          ob, op.getLoc(), enough,
          [&](OpBuilder &tb, Location tl) {
            auto rounded = llvm::cast<GroupedMatmulOp>(tb.clone(*op));
            rounded.getInputMutable().assign(narrow);
            scf::YieldOp::create(tb, tl, rounded.getResult());
          },
          [&](OpBuilder &eb, Location el) {
            scf::YieldOp::create(eb, el, eb.clone(*op)->getResults());
          });
      op->replaceAllUsesWith(choice.getResults());
      op.erase();
    }
  }
};

} // namespace
