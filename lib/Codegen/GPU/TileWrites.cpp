//===- TileWrites.cpp - Where a GPU tile's sums go ------------------------===//

#include "TileWrites.h"

#include "moe/Dialect/MoE/Utils/ElementwiseClone.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace mlir::moe;
using namespace mlir::moe::gpu_codegen;

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

/// The address of `memref[row, column]`: the buffer's aligned pointer plus
/// the element's offset in bytes (the memref may be a strided view).
static Value elementAddress(OpBuilder &b, Location loc, Value memref, Value row,
                            Value column) {
  auto metadata = memref::ExtractStridedMetadataOp::create(b, loc, memref);
  Value element = arith::AddIOp::create(
      b, loc, metadata.getOffset(),
      arith::AddIOp::create(
          b, loc, arith::MulIOp::create(b, loc, row, metadata.getStrides()[0]),
          arith::MulIOp::create(b, loc, column, metadata.getStrides()[1])));
  Value pointer = memref::ExtractAlignedPointerAsIndexOp::create(
      b, loc, metadata.getBaseBuffer());
  int64_t bytes =
      llvm::cast<MemRefType>(memref.getType()).getElementTypeBitWidth() / 8;
  return arith::AddIOp::create(
      b, loc, pointer,
      arith::MulIOp::create(b, loc, element, indexConstant(b, loc, bytes)));
}

Value gpu_codegen::pairIsAlignedVector(OpBuilder &b, Location loc, Value memref,
                                       Value row, Value column) {
  auto type = llvm::cast<MemRefType>(memref.getType());
  Value adjacent = arith::CmpIOp::create(
      b, loc, arith::CmpIPredicate::eq,
      memref::ExtractStridedMetadataOp::create(b, loc, memref).getStrides()[1],
      indexConstant(b, loc, 1));
  int64_t pairBytes = 2 * type.getElementTypeBitWidth() / 8;
  Value aligned = arith::CmpIOp::create(
      b, loc, arith::CmpIPredicate::eq,
      arith::RemUIOp::create(b, loc,
                             elementAddress(b, loc, memref, row, column),
                             indexConstant(b, loc, pairBytes)),
      indexConstant(b, loc, 0));
  return arith::AndIOp::create(b, loc, adjacent, aligned);
}

/// The epilogue's value of element (`row`, `column`) of `op` from its sums.
static Value epilogueValue(OpBuilder &b, Location loc, GroupedMatmulOp op,
                           Value row, Value column, ArrayRef<Value> sums) {
  SmallVector<Value> args(sums);
  args.push_back(op.loadInitElement(b, loc, row, column));
  return cloneElementwiseBody(b, op.getEpilogueBody(), args, {})[0];
}

void gpu_codegen::writeTileElement(OpBuilder &b, Location loc,
                                   GroupedMatmulOp op, Value row, Value column,
                                   ArrayRef<Value> sums) {
  if (op.hasEpilogue()) {
    op.storeInitElement(b, loc, epilogueValue(b, loc, op, row, column, sums),
                        row, column);
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

/// Writes elements (`target`, `column`) and (`target`, `column` + 1) of
/// `op`'s init: by `pairWrite` where `vectors` allows it and both are in range
/// and adjacent and aligned as a pair, else by `scalar` for the first and,
/// where `secondInRange`, the second (`scalar` gets the element's column
/// and its index in the pair).
static void writePairEitherWay(
    OpBuilder &b, Location loc, GroupedMatmulOp op, Value target, Value column,
    Value secondInRange, bool vectors,
    function_ref<void(OpBuilder &, Location)> pairWrite,
    function_ref<void(OpBuilder &, Location, Value, int)> scalar) {
  auto scalars = [&](OpBuilder &sb, Location sl) {
    scalar(sb, sl, column, 0);
    scf::IfOp::create(sb, sl, secondInRange, [&](OpBuilder &tb, Location tl) {
      scalar(tb, tl,
             arith::AddIOp::create(tb, tl, column, indexConstant(tb, tl, 1)),
             1);
      scf::YieldOp::create(tb, tl);
    });
  };
  if (!vectors) {
    scalars(b, loc);
    return;
  }
  Value both = arith::AndIOp::create(
      b, loc, secondInRange,
      pairIsAlignedVector(b, loc, op.getInit(), target, column));
  scf::IfOp::create(
      b, loc, both,
      [&](OpBuilder &vb, Location vl) {
        pairWrite(vb, vl);
        scf::YieldOp::create(vb, vl);
      },
      [&](OpBuilder &sb, Location sl) {
        scalars(sb, sl);
        scf::YieldOp::create(sb, sl);
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
    Value terms[2] = {arith::MulFOp::create(ab, al, scale, first),
                      arith::MulFOp::create(ab, al, scale, second)};
    writePairEitherWay(
        ab, al, op, target, column, secondInRange, vector,
        [&](OpBuilder &vb, Location vl) {
          Value address64 = arith::IndexCastUIOp::create(
              vb, vl, vb.getI64Type(),
              elementAddress(vb, vl, op.getInit(), target, column));
          LLVM::InlineAsmOp::create(
              vb, vl, TypeRange{}, ValueRange{address64, terms[0], terms[1]},
              "red.add.v2.f32 [$0], {$1, $2};", "l,f,f,~{memory}",
              /*has_side_effects=*/true, /*is_align_stack=*/false,
              LLVM::tailcallkind::TailCallKind::None,
              /*asm_dialect=*/LLVM::AsmDialectAttr(),
              /*operand_attrs=*/ArrayAttr());
        },
        [&](OpBuilder &sb, Location sl, Value at, int i) {
          op.addToInitElement(sb, sl, terms[i], target, at);
        });
    scf::YieldOp::create(ab, al);
  });
}

void gpu_codegen::writeTilePair(OpBuilder &b, Location loc, GroupedMatmulOp op,
                                Value row, Value column, ArrayRef<Value> first,
                                ArrayRef<Value> second, Value secondInRange,
                                bool vectorReductions) {
  if (op.getAtomicScatter()) {
    addScatteredPair(b, loc, op, row, column, first[0], second[0],
                     secondInRange, vectorReductions);
    return;
  }
  auto initType = llvm::cast<MemRefType>(op.getInit().getType());
  // Vector loads and stores need a unit innermost stride in the type; the
  // pair's alignment is checked where they run.
  bool vectors = initType.isLastDimUnitStride();
  int64_t pairBytes = 2 * initType.getElementTypeBitWidth() / 8;
  auto pairType = [&](Type element) { return VectorType::get({2}, element); };
  if (op.hasEpilogue()) {
    // The second's old element from the first's column where the second is
    // past the columns (its value is then not stored).
    Value next =
        arith::AddIOp::create(b, loc, column, indexConstant(b, loc, 1));
    Value secondColumn =
        arith::SelectOp::create(b, loc, secondInRange, next, column);
    Value values[2] = {epilogueValue(b, loc, op, row, column, first),
                       epilogueValue(b, loc, op, row, secondColumn, second)};
    writePairEitherWay(
        b, loc, op, row, column, secondInRange, vectors,
        [&](OpBuilder &vb, Location vl) {
          Value pair = vector::FromElementsOp::create(
              vb, vl, pairType(vb.getF32Type()), ValueRange(values));
          Type element = initType.getElementType();
          if (!element.isF32())
            pair = arith::TruncFOp::create(vb, vl, pairType(element), pair);
          vector::StoreOp::create(
              vb, vl, pair, op.getInit(), ValueRange{row, column},
              /*nontemporal=*/false, llvm::MaybeAlign(pairBytes));
        },
        [&](OpBuilder &sb, Location sl, Value at, int i) {
          op.storeInitElement(sb, sl, values[i], row, at);
        });
    return;
  }
  // Sums added to their row of init, or, scattered, times the row's scale
  // to its target row (plain adds: the op's row blocks do not run at once,
  // or their targets are unique).
  Value target = row, scale, adds;
  if (op.isScattering())
    std::tie(target, scale, adds) = op.loadScatterTarget(b, loc, row);
  auto addPair = [&](OpBuilder &ab, Location al) {
    Value terms[2] = {first[0], second[0]};
    if (scale)
      for (Value &term : terms)
        term = arith::MulFOp::create(ab, al, scale, term);
    writePairEitherWay(
        ab, al, op, target, column, secondInRange, vectors,
        [&](OpBuilder &vb, Location vl) {
          Type pair = pairType(vb.getF32Type());
          Value old = vector::LoadOp::create(
              vb, vl, pair, op.getInit(), ValueRange{target, column},
              /*nontemporal=*/false, llvm::MaybeAlign(pairBytes));
          Value sum = arith::AddFOp::create(
              vb, vl, old,
              vector::FromElementsOp::create(vb, vl, pair, ValueRange(terms)));
          vector::StoreOp::create(
              vb, vl, sum, op.getInit(), ValueRange{target, column},
              /*nontemporal=*/false, llvm::MaybeAlign(pairBytes));
        },
        [&](OpBuilder &sb, Location sl, Value at, int i) {
          op.addToInitElement(sb, sl, terms[i], target, at);
        });
  };
  if (!adds) {
    addPair(b, loc);
    return;
  }
  scf::IfOp::create(b, loc, adds, [&](OpBuilder &ab, Location al) {
    addPair(ab, al);
    scf::YieldOp::create(ab, al);
  });
}
