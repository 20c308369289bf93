//===- ClusterPairs.cpp - Two CTAs of a thread block cluster --------------===//

#include "ClusterPairs.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"

namespace mlir::moe::gpu_codegen {

bool launchesClustersOfTwo(gpu::LaunchOp launch) {
  std::optional<gpu::KernelDim3> sizes = launch.getClusterSizeOperandValues();
  if (!sizes)
    return false;
  return getConstantIntValue(sizes->x) == 2 &&
         getConstantIntValue(sizes->y) == 1 &&
         getConstantIntValue(sizes->z) == 1;
}

bool onlyBranchesAround(Operation *op, Operation *around) {
  if (!around->isProperAncestor(op))
    return false;
  for (Operation *parent = op->getParentOp(); parent != around;
       parent = parent->getParentOp()) {
    auto branch = llvm::dyn_cast_or_null<scf::IfOp>(parent);
    if (!branch || branch->getNumResults() != 0)
      return false;
  }
  return true;
}

Value clusterRank(OpBuilder &b, Location loc) {
  return NVVM::ClusterId::create(b, loc, b.getI32Type());
}

void syncCluster(OpBuilder &b, Location loc) {
  NVVM::ClusterArriveOp::create(b, loc, /*aligned=*/UnitAttr());
  NVVM::ClusterWaitOp::create(b, loc, /*aligned=*/UnitAttr());
}

void syncClusterWhereSkipped(Operation *op, Operation *around,
                             function_ref<void(OpBuilder &, Location)> before) {
  Operation *reached = op;
  for (Operation *parent = op->getParentOp(); parent != around;
       reached = parent, parent = parent->getParentOp()) {
    auto branch = llvm::cast<scf::IfOp>(parent);
    bool inThen = branch.getThenRegion().isAncestor(reached->getParentRegion());
    Region &skipped = inThen ? branch.getElseRegion() : branch.getThenRegion();
    if (skipped.empty()) {
      OpBuilder eb(branch.getContext());
      eb.createBlock(&skipped);
      scf::YieldOp::create(eb, branch.getLoc());
    }
    OpBuilder sb = OpBuilder::atBlockBegin(&skipped.front());
    before(sb, branch.getLoc());
    syncCluster(sb, branch.getLoc());
  }
}

Value pointerInCta(OpBuilder &b, Location loc, Value pointer, Value rank) {
  auto clusterPointer = LLVM::LLVMPointerType::get(
      b.getContext(),
      static_cast<unsigned>(NVVM::NVVMMemorySpace::SharedCluster));
  return NVVM::MapaOp::create(b, loc, clusterPointer, pointer, rank);
}

void arriveOn(OpBuilder &b, Location loc, Value pointer, int64_t count) {
  Value arrivals = arith::ConstantIntOp::create(b, loc, b.getI32Type(), count);
  auto type = llvm::cast<LLVM::LLVMPointerType>(pointer.getType());
  if (type.getAddressSpace() ==
      static_cast<unsigned>(NVVM::NVVMMemorySpace::SharedCluster)) {
    NVVM::MBarrierArriveOp::create(b, loc, /*res=*/Type(), pointer, arrivals,
                                   NVVM::MemScopeKind::CLUSTER);
    return;
  }
  NVVM::MBarrierArriveOp::create(b, loc, b.getI64Type(), pointer, arrivals);
}

} // namespace mlir::moe::gpu_codegen
