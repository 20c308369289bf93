//===- CPUPipeline.cpp - The moe-lower-to-cpu pipeline --------------------===//
//
// moe ops on tensors -> linalg/scf on tensors -> buffers -> loops -> LLVM.
// The reference (correctness-first) lowering; the optimized CPU path will
// replace the middle stages, not the ends.
//
//===----------------------------------------------------------------------===//

#include "moe/Pipelines/Pipelines.h"

#include "moe/Conversion/Passes.h"
#include "moe/Dialect/MoE/Transforms/Passes.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Arith/Transforms/Passes.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

void moe::buildLowerToCPUPipeline(OpPassManager &pm,
                                  const LowerToCPUOptions &options) {
  // Entry points are described while their signatures are still tensors.
  if (options.cInterface)
    pm.addPass(moe::createMoEExportEntriesPass());

  // moe ops to linalg, scf and tensor ops.
  pm.addPass(moe::createMoEDecomposePass(
      moe::MoEDecomposePassOptions{options.rowAlign}));
  pm.addPass(moe::createConvertMoEToLinalgPass());
  // Element-wise arith/math on tensors around the layers (e.g. the residual
  // adds of a module stacking layers) become linalg.generic.
  pm.addNestedPass<func::FuncOp>(createConvertElementwiseToLinalgPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());

  // Tensors to buffers. Function boundaries get identity layouts so entry
  // points take plain row-major descriptors.
  bufferization::OneShotBufferizePassOptions bufferize;
  bufferize.bufferizeFunctionBoundaries = true;
  bufferize.functionBoundaryTypeConversion =
      bufferization::LayoutMapOption::IdentityLayoutMap;
  pm.addPass(bufferization::createOneShotBufferizePass(bufferize));
  // Identical subviews become one, so in-place slice updates lose their
  // self-copies.
  pm.addPass(createCSEPass());
  pm.addPass(createCanonicalizerPass());
  bufferization::buildBufferDeallocationPipeline(pm);

  // Buffers to loops to LLVM.
  pm.addNestedPass<func::FuncOp>(createConvertLinalgToLoopsPass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  pm.addNestedPass<func::FuncOp>(createSCFToControlFlowPass());
  // bf16 <-> f32 conversions as integer arithmetic: no compiler-rt calls.
  arith::ArithExpandOpsPassOptions expand;
  expand.includeBf16 = true;
  pm.addNestedPass<func::FuncOp>(arith::createArithExpandOpsPass(expand));
  pm.addNestedPass<func::FuncOp>(createConvertMathToLLVMPass());
  pm.addPass(createConvertMathToLibmPass());
  pm.addPass(createConvertToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
}

void moe::registerMoEPipelines() {
  PassPipelineRegistration<LowerToCPUOptions>(
      "moe-lower-to-cpu",
      "Lower moe ops on tensors to the LLVM dialect for the CPU (reference "
      "lowering: convert-moe-to-linalg, one-shot bufferization, loops)",
      buildLowerToCPUPipeline);
}
