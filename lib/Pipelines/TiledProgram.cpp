//===- TiledProgram.cpp - The front end the CPU and GPU pipelines share ---===//

#include "TiledProgram.h"

#include "moe/Codegen/CPU/Passes.h"
#include "moe/Conversion/Passes.h"
#include "moe/Dialect/MoE/Transforms/Passes.h"

#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"

#include <numeric>

using namespace mlir;

void moe::addTiledProgramPasses(OpPassManager &pm,
                                const TiledProgramOptions &options) {
  // Collectives of upstream's shard dialect over MPI; then expert windows:
  // the entry points' weights change type.
  pm.addPass(moe::createConvertShardAllToAllToMoEPass(
      moe::ConvertShardAllToAllToMoEPassOptions{options.mpi}));
  if (options.ranks != 0)
    pm.addPass(moe::createMoEShardExpertsPass(
        moe::MoEShardExpertsPassOptions{options.ranks, options.mpi}));
  // Entry points are described while their signatures are still tensors.
  if (options.cInterface)
    pm.addPass(moe::createMoEExportEntriesPass(
        moe::MoEExportEntriesPassOptions{options.cudaChip, options.deviceIO}));

  // moe ops to linalg, scf and tensor ops; on the fast path the expert
  // matmuls become tiled moe.grouped_matmul ops first.
  bool fast = !options.reference;
  int64_t rowAlign = options.rowAlign;
  // (A block-rows below 1 is left for moe-form-grouped-matmul to report.)
  if (fast && options.blockRows >= 1 && rowAlign >= 1)
    rowAlign = std::lcm(rowAlign, static_cast<int64_t>(options.blockRows));
  pm.addPass(
      moe::createMoEDecomposePass(moe::MoEDecomposePassOptions{rowAlign}));
  if (fast) {
    if (options.bf16TermLinears)
      pm.addPass(moe::createMoELinearsToBF16TermsPass(
          moe::MoELinearsToBF16TermsPassOptions{
              options.bf16TermsMinRows, options.bf16TermsMinColumns,
              std::max<int64_t>(options.blockRows, 1)}));
    pm.addPass(moe::createMoEFormGroupedMatmulPass(
        moe::MoEFormGroupedMatmulPassOptions{
            options.blockRows, options.fuseCombine, options.atomicCombine,
            options.fuseActivation, options.boundRows}));
    if (options.narrowEpilogueOutputs)
      pm.addPass(moe::createMoENarrowEpilogueOutputsPass());
    if (options.approximateEpilogueMath)
      pm.addPass(moe::createMoEApproximateEpilogueMathPass());
    if (options.narrowGroupedMatmulInputs)
      pm.addPass(moe::createMoENarrowGroupedMatmulInputsPass(
          moe::MoENarrowGroupedMatmulInputsPassOptions{
              options.narrowInputsMinRows}));
    // The hidden rows' zero fill: the down projection reads only the rows
    // the gate/up epilogue writes. Under a gather combine the down
    // projection writes its sums instead of adding them to zeros, unless
    // the depth is tiled (an epilogue needs whole sums).
    pm.addPass(moe::createMoEDropUnreadInitsPass(
        moe::MoEDropUnreadInitsPassOptions{/*writeSums=*/options.tileK <= 0}));
    // Expert weights in panels, packed by functions the runtime calls once
    // after binding (the manifest, written above, is amended).
    if (options.packWeights)
      pm.addPass(moe::createMoEPackExpertWeightsPass(
          moe::MoEPackExpertWeightsPassOptions{options.panelCols,
                                               options.bf16Pairs}));
    pm.addPass(moe::createMoETileGroupedMatmulPass(
        moe::MoETileGroupedMatmulPassOptions{
            options.tileN, options.tileK, options.gpuMapping,
            options.narrowTileN, options.singleTileN, options.minTiles}));
    // The gate and the routing plan of its ids in one loop over the tokens.
    if (options.fuseRouting)
      pm.addPass(moe::createMoEFuseRoutingPass(moe::MoEFuseRoutingPassOptions{
          options.tokenParallelRouting, options.laneRoutingMaxTokens}));
  }
  pm.addPass(moe::createConvertMoEToLinalgPass());
  // Element-wise arith/math on tensors around the layers (e.g. the residual
  // adds of a module stacking layers) become linalg.generic.
  pm.addNestedPass<func::FuncOp>(createConvertElementwiseToLinalgPass());
  // The packing functions' linalg.pack, in ops that bufferize.
  pm.addPass(moe::createMoELowerPackOpsPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());

  // Tensors to buffers. Function boundaries get identity layouts so entry
  // points take plain row-major descriptors.
  // No writer of a filled tensor copies another's (CSE merged the fills),
  // and a tensor.empty a producer fills before it is inserted into a
  // larger tensor (or, for a device-io entry's result, materialized in its
  // output argument) becomes that part of the destination: bufferization
  // then writes in place instead of copying, which on a GPU would run in
  // one thread.
  pm.addPass(moe::createMoECloneSharedFillsPass());
  pm.addPass(bufferization::createEmptyTensorEliminationPass());
  bufferization::OneShotBufferizePassOptions bufferize;
  bufferize.bufferizeFunctionBoundaries = true;
  bufferize.functionBoundaryTypeConversion =
      bufferization::LayoutMapOption::IdentityLayoutMap;
  pm.addPass(bufferization::createOneShotBufferizePass(bufferize));
  // Identical subviews become one, so in-place slice updates lose their
  // self-copies.
  pm.addPass(createCSEPass());
  pm.addPass(createCanonicalizerPass());
  if (options.deallocate)
    bufferization::buildBufferDeallocationPipeline(pm);
}
