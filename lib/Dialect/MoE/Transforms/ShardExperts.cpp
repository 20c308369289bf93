//===- ShardExperts.cpp - Expert parallelism over MPI ranks ---------------===//
//
// Gives every moe.layer `expert_ranks` and narrows its expert operands to
// the rank's window of experts: entry arguments change type (the runtime
// binds only the window), anything else is sliced at the window start,
// which depends on the rank (mpi.comm_rank). moe-decompose builds the
// exchange of rows between the ranks.
//
//===----------------------------------------------------------------------===//

#include "moe/Dialect/MoE/Transforms/Passes.h"

#include "ExpertParallel.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/DLTI/DLTI.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MPI/IR/MPI.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/Support/MathExtras.h"

namespace mlir::moe {
#define GEN_PASS_DEF_MOESHARDEXPERTSPASS
#include "moe/Dialect/MoE/Transforms/Passes.h.inc"
} // namespace mlir::moe

using namespace mlir;
using namespace mlir::moe;

namespace {

/// The operands of `layer` whose first dimension is the experts.
SmallVector<OpOperand *> getExpertOperands(LayerOp layer) {
  SmallVector<OpOperand *> operands = {&layer.getExpertUpMutable(),
                                       &layer.getExpertDownMutable()};
  for (MutableOperandRange range :
       {layer.getExpertGateMutable(), layer.getGateBiasMutable(),
        layer.getUpBiasMutable(), layer.getDownBiasMutable(),
        layer.getGateScaleMutable(), layer.getUpScaleMutable(),
        layer.getDownScaleMutable()})
    for (unsigned i = 0, e = range.size(); i < e; ++i)
      operands.push_back(&range[i]);
  return operands;
}

/// `type` with `size` as its first dimension.
RankedTensorType withFirstDim(Type type, int64_t size) {
  auto tensor = llvm::cast<RankedTensorType>(type);
  SmallVector<int64_t> shape(tensor.getShape());
  shape[0] = size;
  return tensor.clone(shape);
}

/// `value`'s experts `[start, start + window)`, `start` the window start of
/// the rank this runs on.
Value buildWindowSlice(OpBuilder &b, Location loc, Value value,
                       int64_t numExperts, int64_t numRanks) {
  SmallVector<int64_t> starts;
  for (int64_t rank = 0; rank < numRanks; ++rank)
    starts.push_back(getExpertWindowStart(numExperts, numRanks, rank));
  auto tableType = RankedTensorType::get({numRanks}, b.getI64Type());
  Value table = arith::ConstantOp::create(
      b, loc, DenseIntElementsAttr::get(tableType, ArrayRef<int64_t>(starts)));
  Value comm =
      mpi::CommWorldOp::create(b, loc, mpi::CommType::get(b.getContext()));
  Value rank = arith::IndexCastOp::create(
      b, loc, b.getIndexType(),
      mpi::CommRankOp::create(b, loc, Type(), b.getI32Type(), comm).getRank());
  Value start = arith::IndexCastOp::create(
      b, loc, b.getIndexType(), tensor::ExtractOp::create(b, loc, table, rank));
  auto type = llvm::cast<RankedTensorType>(value.getType());
  SmallVector<OpFoldResult> offsets(type.getRank(), b.getIndexAttr(0));
  offsets[0] = start;
  SmallVector<OpFoldResult> sizes = tensor::getMixedSizes(b, loc, value);
  sizes[0] = b.getIndexAttr(llvm::divideCeil(numExperts, numRanks));
  SmallVector<OpFoldResult> strides(type.getRank(), b.getIndexAttr(1));
  return tensor::ExtractSliceOp::create(b, loc, value, offsets, sizes, strides);
}

struct MoEShardExpertsPass
    : public moe::impl::MoEShardExpertsPassBase<MoEShardExpertsPass> {
  using MoEShardExpertsPassBase::MoEShardExpertsPassBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *context = &getContext();
    if (ranks < 1) {
      module.emitError("moe-shard-experts: ranks must be at least 1, got ")
          << static_cast<int64_t>(ranks);
      return signalPassFailure();
    }
    if (mpi != "OpenMPI" && mpi != "MPICH") {
      module.emitError("moe-shard-experts: mpi must be OpenMPI or MPICH, "
                       "got '")
          << mpi << "'";
      return signalPassFailure();
    }
    SmallVector<LayerOp> layers;
    WalkResult walk = module.walk([&](LayerOp layer) -> WalkResult {
      std::optional<uint64_t> already = layer.getExpertRanks();
      if (!already) {
        layers.push_back(layer);
        return WalkResult::advance();
      }
      if (static_cast<int64_t>(*already) == ranks)
        return WalkResult::advance();
      layer.emitError("moe-shard-experts: the layer runs on ")
          << *already << " ranks already, not " << static_cast<int64_t>(ranks);
      return WalkResult::interrupt();
    });
    if (walk.wasInterrupted())
      return signalPassFailure();
    // Experts of the layers each argument feeds; -1 where an argument is
    // used otherwise, or by layers of different expert counts.
    llvm::DenseMap<BlockArgument, int64_t> argumentExperts;
    // Arguments of entry points nothing in the module calls (a call would
    // pass the whole tensor).
    auto isEntryArgument = [&](Value value) {
      auto arg = llvm::dyn_cast<BlockArgument>(value);
      auto func =
          arg ? llvm::dyn_cast<func::FuncOp>(arg.getOwner()->getParentOp())
              : func::FuncOp();
      return func && func.isPublic() && !func.isExternal() &&
             arg.getOwner() == &func.getBody().front() &&
             SymbolTable::symbolKnownUseEmpty(func, module);
    };
    for (LayerOp layer : layers) {
      int64_t numExperts = layer.getNumExperts();
      if (ranks > numExperts) {
        layer.emitError("moe-shard-experts: ranks = ")
            << static_cast<int64_t>(ranks) << " exceeds the layer's "
            << numExperts << " experts";
        return signalPassFailure();
      }
      for (OpOperand *operand : getExpertOperands(layer)) {
        if (!isEntryArgument(operand->get()))
          continue;
        auto arg = llvm::cast<BlockArgument>(operand->get());
        auto [it, inserted] = argumentExperts.try_emplace(arg, numExperts);
        if (!inserted && it->second != numExperts)
          it->second = -1;
      }
    }
    llvm::SmallPtrSet<Operation *, 8> sharded(
        llvm::from_range, llvm::map_range(layers, [](LayerOp layer) {
          return layer.getOperation();
        }));
    for (auto &[arg, experts] : argumentExperts)
      for (OpOperand &use : arg.getUses())
        if (!sharded.contains(use.getOwner()) ||
            !llvm::is_contained(
                getExpertOperands(llvm::cast<LayerOp>(use.getOwner())), &use))
          experts = -1;

    OpBuilder b(context);
    for (LayerOp layer : layers) {
      int64_t numExperts = layer.getNumExperts();
      b.setInsertionPoint(layer);
      for (OpOperand *operand : getExpertOperands(layer)) {
        auto arg = llvm::dyn_cast<BlockArgument>(operand->get());
        auto known = arg ? argumentExperts.find(arg) : argumentExperts.end();
        if (known != argumentExperts.end() && known->second > 0)
          continue;
        operand->set(buildWindowSlice(b, layer.getLoc(), operand->get(),
                                      numExperts, ranks));
      }
      layer.setExpertRanks(static_cast<uint64_t>(ranks));
    }
    // Entry arguments bound to the window.
    for (auto &[arg, experts] : argumentExperts) {
      if (experts < 1)
        continue;
      auto func = llvm::cast<func::FuncOp>(arg.getOwner()->getParentOp());
      arg.setType(withFirstDim(arg.getType(),
                               llvm::divideCeil(experts, int64_t(ranks))));
      func.setArgAttr(arg.getArgNumber(), kExpertWindowAttrName,
                      b.getI64IntegerAttr(experts));
      func.setType(FunctionType::get(context,
                                     func.getBody().front().getArgumentTypes(),
                                     func.getResultTypes()));
    }
    if (failed(markMPIWorld(module, ranks, mpi)))
      return signalPassFailure();
  }
};

} // namespace

StringRef mlir::moe::getMPILibrary(ModuleOp module) {
  FailureOr<Attribute> library =
      dlti::query(module, ArrayRef<StringRef>{"MPI:Implementation"});
  auto name =
      succeeded(library) ? llvm::dyn_cast<StringAttr>(*library) : StringAttr();
  return name ? name.getValue() : StringRef("MPICH");
}

LogicalResult mlir::moe::markMPIWorld(ModuleOp module, int64_t ranks,
                                      StringRef library) {
  Builder b(module.getContext());
  if (auto marked = module->getAttrOfType<IntegerAttr>(kMPIRanksAttrName);
      marked && marked.getInt() != ranks)
    return module.emitError("the module runs on ")
           << marked.getInt() << " MPI ranks already, not " << ranks;
  module->setAttr(kMPIRanksAttrName, b.getI64IntegerAttr(ranks));
  // The library's entry in the module's DLTI map, added to one it has.
  constexpr StringLiteral key = "MPI:Implementation";
  SmallVector<DataLayoutEntryInterface> entries;
  if (Attribute existing = module->getAttr("dlti.map")) {
    auto map = llvm::dyn_cast<MapAttr>(existing);
    if (!map)
      return module.emitError("the module's 'dlti.map' is not a #dlti.map");
    for (DataLayoutEntryInterface entry : map.getEntries()) {
      auto name = llvm::dyn_cast_if_present<StringAttr>(entry.getKey());
      if (name && name.getValue() == key) {
        auto value = llvm::dyn_cast<StringAttr>(entry.getValue());
        if (!value || value.getValue() != library)
          return module.emitError("the module's DLTI map names another MPI "
                                  "library than ")
                 << library << ": " << entry.getValue();
        return success();
      }
      entries.push_back(entry);
    }
  }
  entries.push_back(
      DataLayoutEntryAttr::get(b.getStringAttr(key), b.getStringAttr(library)));
  module->setAttr("dlti.map", MapAttr::get(module.getContext(), entries));
  return success();
}
