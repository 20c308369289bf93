//===- DropUnreadInits.cpp - Fills no later op reads ----------------------===//
//
// A grouped matmul whose epilogue ignores the old value writes every row it
// computes (the filled rows of its owned blocks) and keeps `init` in the
// others. When the only reader of its result is a grouped matmul over the
// same plan that reads its input rows in place, no value of `init` is ever
// read, and a `linalg.fill` that made it is dropped (pass description in
// Passes.td): the gate/up projection's zeroed hidden rows, which the down
// projection reads only where the gate/up epilogue wrote them. Over a zero
// fill, a grouped matmul adding its sums to `init` writes them instead,
// when the combine of the plan's row map reads its rows only where they
// were computed: the down projection's rows, no longer zeroed nor read
// back.
//
//===----------------------------------------------------------------------===//

#include "moe/Dialect/MoE/IR/MoE.h"
#include "moe/Dialect/MoE/Transforms/Passes.h"

#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Interfaces/ValueBoundsOpInterface.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOEDROPUNREADINITSPASS
#include "moe/Dialect/MoE/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// `value` seen through 1-d slices that start at 0 with unit stride (a
/// prefix of the same tensor): the plan's block ids and sizes as each
/// grouped matmul views them.
Value prefixRoot(Value value) {
  while (auto slice = value.getDefiningOp<tensor::ExtractSliceOp>()) {
    if (slice.getSourceType().getRank() != 1 ||
        !isConstantIntValue(slice.getMixedOffsets()[0], 0) ||
        !isConstantIntValue(slice.getMixedStrides()[0], 1))
      break;
    value = slice.getSource();
  }
  return value;
}

bool sameOrBothAbsent(Value a, Value b) {
  return (!a && !b) || (a && b && prefixRoot(a) == prefixRoot(b));
}

using Variable = ValueBoundsConstraintSet::Variable;

bool provablyAtMost(const Variable &lhs, const Variable &rhs) {
  return ValueBoundsConstraintSet::compare(
      lhs, ValueBoundsConstraintSet::ComparisonOperator::LE, rhs);
}

/// The cases of `size`, an index computed by an affine.apply from an
/// affine.min (or the minimum itself): the apply with the minimum replaced
/// by each of its results in turn. Empty for another `size`.
SmallVector<Variable> casesOfMinimum(Value size) {
  auto apply = size.getDefiningOp<affine::AffineApplyOp>();
  AffineMap applyMap;
  SmallVector<Value> operands;
  if (apply) {
    applyMap = apply.getAffineMap();
    operands.append(apply.getOperands().begin(), apply.getOperands().end());
  } else {
    applyMap = AffineMap::getMultiDimIdentityMap(1, size.getContext());
    operands.push_back(size);
  }
  auto *minimumOperand = llvm::find_if(operands, [](Value operand) {
    return operand.getDefiningOp<affine::AffineMinOp>();
  });
  if (minimumOperand == operands.end())
    return {};
  unsigned position = minimumOperand - operands.begin();
  auto minimum = minimumOperand->getDefiningOp<affine::AffineMinOp>();
  AffineMap minimumMap = minimum.getAffineMap();
  // The operands of both, all as dimensions: the apply's, then the
  // minimum's.
  unsigned numApplyOperands = operands.size();
  operands.append(minimum.getOperands().begin(), minimum.getOperands().end());
  MLIRContext *ctx = size.getContext();
  auto dimsFrom = [&](unsigned first, unsigned count) {
    SmallVector<AffineExpr> dims;
    for (unsigned i = 0; i < count; ++i)
      dims.push_back(getAffineDimExpr(first + i, ctx));
    return dims;
  };
  SmallVector<Variable> cases;
  for (AffineExpr result : minimumMap.getResults()) {
    AffineExpr taken = result.replaceDimsAndSymbols(
        dimsFrom(numApplyOperands, minimumMap.getNumDims()),
        dimsFrom(numApplyOperands + minimumMap.getNumDims(),
                 minimumMap.getNumSymbols()));
    SmallVector<AffineExpr> applyOperands = dimsFrom(0, numApplyOperands);
    applyOperands[position] = taken;
    AffineExpr expr = applyMap.getResult(0).replaceDimsAndSymbols(
        ArrayRef(applyOperands).take_front(applyMap.getNumDims()),
        ArrayRef(applyOperands).drop_front(applyMap.getNumDims()));
    cases.emplace_back(AffineMap::get(operands.size(), 0, expr), operands);
  }
  return cases;
}

/// Whether the 1-d `fewer` provably has at most as many elements as `more`
/// (a prefix of the blocks `more` covers). Value bounds bound a minimum
/// from above only; a prefix of `f(min(a, b))` elements (the block count
/// of a projection that may have fewer input rows than the plan) is
/// compared case by case: `fewer <= f(a)` and `fewer <= f(b)`.
bool atMostAsLong(Value fewer, Value more) {
  if (fewer == more || provablyAtMost(Variable(fewer, 0), Variable(more, 0)))
    return true;
  auto slice = more.getDefiningOp<tensor::ExtractSliceOp>();
  if (!slice || slice.getSourceType().getRank() != 1 ||
      !slice.getSizes().size())
    return false;
  SmallVector<Variable> cases = casesOfMinimum(slice.getSizes()[0]);
  return !cases.empty() && llvm::all_of(cases, [&](const Variable &size) {
    return provablyAtMost(Variable(fewer, 0), size);
  });
}

/// Whether `op` writes each row it computes without reading `init` there:
/// a block-form op whose epilogue does not use the old value.
bool overwritesComputedRows(GroupedMatmulOp op) {
  if (op.isDense() || op.isScattering() || !op.hasEpilogue())
    return false;
  Block &body = op.getEpilogueBody();
  return body.getArguments().back().use_empty();
}

/// Whether `op` adds its sums to `init` (block form, no epilogue, no
/// scatter): over a zero fill, writing them is the same but for the sign
/// of a zero sum.
bool addsToInit(GroupedMatmulOp op) {
  return !op.isDense() && !op.isScattering() && !op.hasEpilogue();
}

int64_t expertsOf(GroupedMatmulOp op) {
  return llvm::cast<ShapedType>(op.getWeight().getType()).getDimSize(0);
}

/// Whether `writer` computes every filled row its blocks have by `sizes`:
/// it has no block sizes (all BM rows of an owned block), or the same.
bool computesFilledRows(GroupedMatmulOp writer, Value sizes) {
  Value own = writer.getBlockSizes();
  return !own || (sizes && prefixRoot(sizes) == prefixRoot(own));
}

/// Whether `reader` reads its input only in rows `writer` computes: block
/// rows read in place (no row sources) by blocks of the same plan (the
/// same block rows, experts and block ids, no more blocks than `writer`
/// has, and filled rows that `writer` computes), so that each row it reads
/// is a computed row of an owned block of `writer`.
bool readsOnlyComputedRows(GroupedMatmulOp reader, GroupedMatmulOp writer) {
  return !reader.isDense() && !reader.getRowSources() &&
         reader.getBlockRows() == writer.getBlockRows() &&
         expertsOf(reader) == expertsOf(writer) &&
         sameOrBothAbsent(reader.getBlockExperts(), writer.getBlockExperts()) &&
         atMostAsLong(reader.getBlockExperts(), writer.getBlockExperts()) &&
         computesFilledRows(writer, reader.getBlockSizes());
}

/// Whether `writer` computes every filled row of `plan`: its block ids are
/// a prefix of the plan's covering all of them, with the plan's block
/// rows and experts, and it computes the filled rows of its blocks.
bool coversPlan(GroupedMatmulOp writer, RoutingPlanOp plan) {
  return plan && !writer.isDense() &&
         plan.getBlockRows() == writer.getBlockRows() &&
         plan.getNumExperts() == expertsOf(writer) &&
         prefixRoot(writer.getBlockExperts()) == plan.getBlockExperts() &&
         atMostAsLong(plan.getBlockExperts(), writer.getBlockExperts()) &&
         computesFilledRows(writer, plan.getBlockSizes());
}

/// Whether `combine` reads its rows only where `writer` computed them: its
/// row map is the one of a plan `writer` covers (each assignment's row is
/// a filled row of a block of its expert).
bool combinesOnlyComputedRows(CombineOp combine, GroupedMatmulOp writer) {
  return coversPlan(writer, combine.getRowMap().getDefiningOp<RoutingPlanOp>());
}

/// The plan whose block ids `writer`'s are a prefix of, when it is of one
/// expert and one choice per token with every token routed to it (ids a
/// fill of 0) and `writer` covers it (coversPlan); null otherwise. Such a
/// plan (a shared expert's) puts token `t` in row `t`: rows `[0, T)` are
/// filled rows of its blocks.
RoutingPlanOp tokenOrderPlanOf(GroupedMatmulOp writer) {
  if (writer.isDense() || !writer.getBlockExperts())
    return nullptr;
  auto plan =
      prefixRoot(writer.getBlockExperts()).getDefiningOp<RoutingPlanOp>();
  if (!plan || plan.getNumExperts() != 1 ||
      plan.getIds().getType().getDimSize(1) != 1)
    return nullptr;
  auto ids = plan.getIds().getDefiningOp<linalg::FillOp>();
  if (!ids || !matchPattern(ids.getInputs()[0], m_Zero()) ||
      !coversPlan(writer, plan))
    return nullptr;
  return plan;
}

/// Whether `slice` takes the first rows (all columns) of `writer`'s result,
/// no more than its plan has tokens, in a plan that puts each token in its
/// own row (tokenOrderPlanOf): rows `writer` computes.
bool slicesComputedTokenRows(tensor::ExtractSliceOp slice,
                             GroupedMatmulOp writer) {
  RoutingPlanOp plan = tokenOrderPlanOf(writer);
  if (!plan || slice.getSourceType().getRank() != 2 ||
      slice.getType().getRank() != 2 || !slice.hasUnitStride() ||
      !llvm::all_of(
          slice.getMixedOffsets(),
          [](OpFoldResult offset) { return isConstantIntValue(offset, 0); }) ||
      slice.getSourceType().isDynamicDim(1) ||
      !isConstantIntValue(slice.getMixedSizes()[1],
                          slice.getSourceType().getDimSize(1)))
    return false;
  return provablyAtMost(Variable(slice.getResult(), 0),
                        Variable(plan.getIds(), 0));
}

/// `op` (adding its sums to `init`) with an epilogue that writes each sum
/// instead.
void writeSumsInstead(GroupedMatmulOp op) {
  OpBuilder b(op);
  Location loc = op.getLoc();
  auto replacement = GroupedMatmulOp::create(
      b, loc, op->getResultTypes(), op.getInput(), op.getWeight(),
      op.getPairedWeight(), op.getBlockExperts(), op.getBlockSizes(),
      op.getRowSources(), op.getScatterRows(), op.getScatterScales(),
      op.getWeightScale(), op.getPairedWeightScale(), op.getInit(),
      op.getBlockRowsAttr(), op.getWeightBlockAttr(), op.getExactProductsAttr(),
      op.getAtomicScatterAttr(), op.getUniqueScatterAttr(),
      /*epilogueCount=*/1);
  Type f32 = b.getF32Type();
  Block *body =
      b.createBlock(&replacement.getEpilogue()[0], {}, {f32, f32}, {loc, loc});
  YieldOp::create(b, loc, body->getArgument(0));
  op->replaceAllUsesWith(replacement);
  op.erase();
}

/// Whether every read of `value` (`writer`'s result, or a region result it
/// flows to) is a grouped matmul reading only rows `writer` computes;
/// shape queries read nothing.
bool onlyComputedRowsRead(Value value, GroupedMatmulOp writer) {
  for (OpOperand &use : value.getUses()) {
    Operation *user = use.getOwner();
    if (isa<tensor::DimOp>(user))
      continue;
    if (auto reader = dyn_cast<GroupedMatmulOp>(user)) {
      if (&use != &reader.getInputMutable() ||
          !readsOnlyComputedRows(reader, writer))
        return false;
      continue;
    }
    if (auto combine = dyn_cast<CombineOp>(user)) {
      if (&use != &combine.getRowsMutable() ||
          !combinesOnlyComputedRows(combine, writer))
        return false;
      continue;
    }
    // The first T rows of a shared expert's, in token order, added to by
    // the combine of the routed experts (its `init`).
    if (auto slice = dyn_cast<tensor::ExtractSliceOp>(user)) {
      if (!slicesComputedTokenRows(slice, writer) ||
          !llvm::all_of(slice->getUses(), [](OpOperand &sliceUse) {
            auto reader = dyn_cast<CombineOp>(sliceUse.getOwner());
            return isa<tensor::DimOp>(sliceUse.getOwner()) ||
                   (reader && reader.getInit() &&
                    &sliceUse == &reader.getInitMutable()[0]);
          }))
        return false;
      continue;
    }
    // Yielded by a branch of an scf.if: its result carries the rows.
    auto yield = dyn_cast<scf::YieldOp>(user);
    auto branch =
        yield ? dyn_cast<scf::IfOp>(yield->getParentOp()) : scf::IfOp();
    if (!branch ||
        !onlyComputedRowsRead(branch.getResult(use.getOperandNumber()), writer))
      return false;
  }
  return true;
}

struct MoEDropUnreadInitsPass
    : public moe::impl::MoEDropUnreadInitsPassBase<MoEDropUnreadInitsPass> {
  using Base::Base;

  void runOnOperation() override {
    SmallVector<linalg::FillOp> fills;
    getOperation()->walk([&](linalg::FillOp fill) {
      if (fill.hasPureTensorSemantics())
        fills.push_back(fill);
    });
    for (linalg::FillOp fill : fills) {
      Value filled = fill.getResult(0);
      bool zero = matchPattern(fill.getInputs()[0], m_AnyZeroFloat());
      SmallVector<GroupedMatmulOp> adders;
      bool unread = !filled.use_empty() &&
                    llvm::all_of(filled.getUses(), [&](OpOperand &use) {
                      auto writer = dyn_cast<GroupedMatmulOp>(use.getOwner());
                      if (!writer || &use != &writer.getInitMutable() ||
                          !onlyComputedRowsRead(writer.getResult()[0], writer))
                        return false;
                      if (overwritesComputedRows(writer))
                        return true;
                      if (!writeSums || !zero || !addsToInit(writer))
                        return false;
                      adders.push_back(writer);
                      return true;
                    });
      if (!unread)
        continue;
      for (GroupedMatmulOp writer : adders)
        writeSumsInstead(writer);
      filled.replaceAllUsesWith(fill.getOutputs()[0]);
      fill.erase();
    }
  }
};

} // namespace
