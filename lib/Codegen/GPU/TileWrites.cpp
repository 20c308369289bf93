//===- TileWrites.cpp - Where a GPU tile's sums go ------------------------===//

#include "TileWrites.h"

#include "moe/Dialect/MoE/Utils/ElementwiseClone.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

using namespace mlir;
using namespace mlir::moe;

Value gpu_codegen::clampBelow(OpBuilder &b, Location loc, Value index,
                              Value bound) {
  Value last = arith::SubIOp::create(b, loc, bound, indexConstant(b, loc, 1));
  return arith::MinUIOp::create(b, loc, index, last);
}

Value gpu_codegen::depthBoundOf(OpBuilder &b, Location loc,
                                GroupedMatmulOp op) {
  Value depth = memref::DimOp::create(b, loc, op.getInput(), 1);
  for (Value weight : op.getWeights())
    depth = arith::MinUIOp::create(b, loc, depth,
                                   op.getWeightExtents(b, loc, weight).second);
  return depth;
}

void gpu_codegen::writeTileElement(OpBuilder &b, Location loc,
                                   GroupedMatmulOp op, Value row, Value column,
                                   ArrayRef<Value> sums) {
  if (op.hasEpilogue()) {
    SmallVector<Value> args(sums);
    args.push_back(op.loadInitElement(b, loc, row, column));
    Value element = cloneElementwiseBody(b, op.getEpilogueBody(), args, {})[0];
    op.storeInitElement(b, loc, element, row, column);
    return;
  }
  if (!op.isScattering()) {
    op.addToInitElement(b, loc, sums[0], row, column);
    return;
  }
  Value target, scale, adds;
  std::tie(target, scale, adds) = op.loadScatterTarget(b, loc, row);
  scf::IfOp::create(b, loc, adds, [&](OpBuilder &ab, Location al) {
    op.addToInitElement(ab, al, arith::MulFOp::create(ab, al, scale, sums[0]),
                        target, column);
    scf::YieldOp::create(ab, al);
  });
}

void gpu_codegen::addScatteredPair(OpBuilder &b, Location loc,
                                   GroupedMatmulOp op, Value row, Value column,
                                   Value first, Value second,
                                   Value secondInRange, bool vector) {
  assert(op.getAtomicScatter() && "plain adds of a pair are two elements");
  Value target, scale, adds;
  std::tie(target, scale, adds) = op.loadScatterTarget(b, loc, row);
  scf::IfOp::create(b, loc, adds, [&](OpBuilder &ab, Location al) {
    Value termFirst = arith::MulFOp::create(ab, al, scale, first);
    Value termSecond = arith::MulFOp::create(ab, al, scale, second);
    auto scalars = [&](OpBuilder &sb, Location sl) {
      op.addToInitElement(sb, sl, termFirst, target, column);
      scf::IfOp::create(sb, sl, secondInRange, [&](OpBuilder &tb, Location tl) {
        op.addToInitElement(
            tb, tl, termSecond, target,
            arith::AddIOp::create(tb, tl, column, indexConstant(tb, tl, 1)));
        scf::YieldOp::create(tb, tl);
      });
    };
    if (!vector) {
      scalars(ab, al);
      scf::YieldOp::create(ab, al);
      return;
    }
    // The element's address: the buffer's aligned pointer plus its offset
    // in elements (the init may be a strided view of the result).
    auto metadata =
        memref::ExtractStridedMetadataOp::create(ab, al, op.getInit());
    Value element = arith::AddIOp::create(
        ab, al, metadata.getOffset(),
        arith::AddIOp::create(
            ab, al,
            arith::MulIOp::create(ab, al, target, metadata.getStrides()[0]),
            arith::MulIOp::create(ab, al, column, metadata.getStrides()[1])));
    Value pointer = memref::ExtractAlignedPointerAsIndexOp::create(
        ab, al, metadata.getBaseBuffer());
    Value address = arith::AddIOp::create(
        ab, al, pointer,
        arith::MulIOp::create(ab, al, element, indexConstant(ab, al, 4)));
    Value adjacent = arith::CmpIOp::create(ab, al, arith::CmpIPredicate::eq,
                                           metadata.getStrides()[1],
                                           indexConstant(ab, al, 1));
    Value aligned = arith::CmpIOp::create(
        ab, al, arith::CmpIPredicate::eq,
        arith::RemUIOp::create(ab, al, address, indexConstant(ab, al, 8)),
        indexConstant(ab, al, 0));
    Value both =
        arith::AndIOp::create(ab, al, secondInRange,
                              arith::AndIOp::create(ab, al, adjacent, aligned));
    scf::IfOp::create(
        ab, al, both,
        [&](OpBuilder &vb, Location vl) {
          Value address64 =
              arith::IndexCastUIOp::create(vb, vl, vb.getI64Type(), address);
          LLVM::InlineAsmOp::create(
              vb, vl, TypeRange{}, ValueRange{address64, termFirst, termSecond},
              "red.add.v2.f32 [$0], {$1, $2};", "l,f,f,~{memory}",
              /*has_side_effects=*/true, /*is_align_stack=*/false,
              LLVM::tailcallkind::TailCallKind::None,
              /*asm_dialect=*/LLVM::AsmDialectAttr(),
              /*operand_attrs=*/ArrayAttr());
          scf::YieldOp::create(vb, vl);
        },
        [&](OpBuilder &sb, Location sl) {
          scalars(sb, sl);
          scf::YieldOp::create(sb, sl);
        });
    scf::YieldOp::create(ab, al);
  });
}
