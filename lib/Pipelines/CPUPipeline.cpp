//===- CPUPipeline.cpp - The moe-lower-to-cpu pipeline --------------------===//
//
// moe ops on tensors -> linalg/scf on tensors -> buffers -> loops -> LLVM.
//
// Two variants share both ends. The reference lowering turns every moe op
// into linalg on tensors (convert-moe-to-linalg): the oracle. The fast path
// first rewrites the expert matmuls into block-aligned moe.grouped_matmul,
// tiles them through TilingInterface and, after bufferization, emits their
// register-blocked vector micro-kernel; its parallel loops run on OpenMP
// threads. Everything else is shared.
//
//===----------------------------------------------------------------------===//

#include "moe/Pipelines/Pipelines.h"

#include "TiledProgram.h"

#include "moe/Codegen/CPU/Passes.h"
#include "moe/Conversion/Passes.h"
#include "moe/Dialect/MoE/Transforms/Passes.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Arith/Transforms/Passes.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Dialect/SCF/Transforms/Passes.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

#include <numeric>

using namespace mlir;

void moe::buildLowerToCPUPipeline(OpPassManager &pm,
                                  const LowerToCPUOptions &options) {
  TiledProgramOptions tiled = sharedTiledProgramOptions(options);
  tiled.packWeights = options.packWeights;
  tiled.panelCols = options.panelCols;
  tiled.bf16Pairs = options.bf16Matmul != moe::Bf16Matmul::F32;
  // The bf16 kernels read their input rows rounded to bf16 (the pack pass
  // rounds them on the tensor): the gate/up epilogue writes the hidden rows
  // so at once, instead of f32 rows a separate pass then rounds.
  tiled.narrowEpilogueOutputs = tiled.packWeights && tiled.bf16Pairs;
  tiled.tileK = options.tileK;
  tiled.ranks = options.ranks;
  tiled.mpi = options.mpi;
  addTiledProgramPasses(pm, tiled);
  bool fast = !options.reference;

  // Buffers to loops to LLVM.
  if (fast) {
    pm.addPass(moe::createMoELowerGroupedMatmulToVectorPass(
        moe::MoELowerGroupedMatmulToVectorPassOptions{
            options.vectorWidth, options.tileRows, options.tileCols,
            options.panelRows,
            options.bf16Matmul == moe::Bf16Matmul::Avx512Bf16,
            options.fp8ByteLookup}));
    // Routers, shared experts, dense projections: the same kernel.
    pm.addPass(moe::createMoELowerTransposedMatmulToVectorPass(
        moe::MoELowerTransposedMatmulToVectorPassOptions{
            options.blockRows, options.tileN, options.vectorWidth,
            options.tileRows, options.tileCols}));
    // Activations and other element-wise ops on whole vectors.
    pm.addPass(moe::createMoEVectorizeElementwisePass(
        moe::MoEVectorizeElementwisePassOptions{options.vectorWidth}));
    // What has no vector kernel (block-scaled weights left unpacked).
    pm.addPass(moe::createMoEGroupedMatmulToLoopsPass());
  } else
    pm.addPass(moe::createMoEGroupedMatmulToLoopsPass());
  pm.addPass(moe::createMoEStridedCopiesToLinalgPass());
  // Parallel loops: the tiles' scf.forall and the outermost parallel
  // dimension of every linalg op become scf.parallel, then OpenMP
  // worksharing loops; the module's caller sets the team size
  // (omp_set_num_threads). Sequential otherwise.
  bool threads = fast && options.openmp;
  if (threads) {
    pm.addNestedPass<func::FuncOp>(createConvertLinalgToParallelLoopsPass());
    // One parallel dimension per linalg loop nest (no collapsed loops,
    // vectorizable inner loops); the tiles' foralls keep theirs.
    pm.addPass(moe::createMoEParallelizeOuterDimensionPass());
    pm.addPass(createForallToParallelLoopPass());
  } else {
    pm.addPass(createForallToForLoopPass());
    pm.addNestedPass<func::FuncOp>(createConvertLinalgToLoopsPass());
  }
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  if (threads) {
    pm.addPass(createConvertSCFToOpenMPPass());
    // Loops of one iteration (per token at T = 1) stay on the calling
    // thread instead of waking the team.
    pm.addPass(moe::createMoEGuardParallelRegionsPass());
    // Inlines the memref.alloca_scope that wraps each loop body (it holds
    // no alloca here), which must not be left around the blocks that
    // scf-to-cf makes of nested loops.
    pm.addPass(createCanonicalizerPass());
  }
  pm.addNestedPass<func::FuncOp>(createConvertVectorToSCFPass());
  pm.addNestedPass<func::FuncOp>(createSCFToControlFlowPass());
  // FP8 weights decoded by integer arithmetic (LLVM has no FP8 type), then
  // bf16 <-> f32 conversions as integer arithmetic: no compiler-rt calls.
  pm.addNestedPass<func::FuncOp>(moe::createMoEExpandFloat8Pass());
  arith::ArithExpandOpsPassOptions expand;
  expand.includeBf16 = true;
  pm.addNestedPass<func::FuncOp>(arith::createArithExpandOpsPass(expand));
  pm.addNestedPass<func::FuncOp>(createConvertMathToLLVMPass());
  pm.addPass(createConvertMathToLibmPass());
  // The kernels' lane sums may reassociate (tree reductions, not serial).
  ConvertVectorToLLVMPassOptions vectorToLLVM;
  vectorToLLVM.reassociateFPReductions = true;
  // x86vector.avx512.dot of the bf16 kernel.
  vectorToLLVM.x86Vector = options.bf16Matmul == moe::Bf16Matmul::Avx512Bf16;
  pm.addPass(createConvertVectorToLLVMPass(vectorToLLVM));
  // Heap buffers through moe_module_allocator, which the runtime fills with
  // buffers it reuses across calls (moe-allocate-through-runtime).
  FinalizeMemRefToLLVMConversionPassOptions memrefToLLVM;
  memrefToLLVM.useGenericFunctions = true;
  pm.addPass(createFinalizeMemRefToLLVMConversionPass(memrefToLLVM));
  pm.addPass(createConvertToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
  // bf16 and f16 moved as i16: no round trip through f32 (a compiler-rt
  // call where bf16 is a register type: AVX512_BF16).
  pm.addPass(moe::createMoEMoveHalfFloatsAsIntegersPass());
  pm.addPass(moe::createMoEAllocateThroughRuntimePass());
}
