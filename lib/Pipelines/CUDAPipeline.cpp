//===- CUDAPipeline.cpp - The moe-lower-to-cuda pipeline ------------------===//
//
// moe ops on tensors -> the tiled program on buffers (shared with the CPU
// pipeline) -> kernels: each parallel loop of the program a gpu.launch
// (moe-map-to-gpu), each grouped matmul tile one warp on the tensor cores
// (moe-lower-grouped-matmul-to-mma) -> outlined gpu.module -> NVVM -> a
// binary for one architecture embedded in host code that calls the mgpu*
// functions of the runtime.
//
//===----------------------------------------------------------------------===//

#include "moe/Pipelines/Pipelines.h"

#include "CudaTarget.h"
#include "GivenOptions.h"
#include "TiledProgram.h"
#include "moe/Codegen/CPU/Passes.h"
#include "moe/Codegen/GPU/Passes.h"
#include "moe/Dialect/MoE/Transforms/Passes.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Dialect/SCF/Transforms/Passes.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;
using mlir::moe::given;

/// The fewest experts whose router runs as bf16 terms on the tensor cores
/// (tensor-core-router-min-tokens).
static constexpr int64_t kTensorCoreRouterMinExperts = 32;

/// The threads of a warp: the lanes that route a token together.
static constexpr int64_t kWarpLanes = 32;

void moe::buildLowerToCUDAPipeline(OpPassManager &pm,
                                   const LowerToCUDAOptions &options) {
  // The tiled program: weights in their checkpoint layout (the warp reads
  // B fragments along K), every tile all of K.
  // Warpgroup tiles: 64-row blocks (wgmma's M), 128 columns (two paired
  // accumulators of 64 registers each per thread), sm_90a code; options
  // given explicitly stay as given.
  bool wgmma = options.mma != CudaMma::Sync;
  bool specialized = options.mma == CudaMma::WgmmaSpecialized;
  bool pingPong = options.mma == CudaMma::WgmmaPingPong;
  std::string chip = kernelChip(options);
  TiledProgramOptions tiled = sharedTiledProgramOptions(options);
  // Up to a token per warp of the routing kernel (its blocks' warps, on
  // as many blocks as there are multiprocessors: moe-map-to-gpu), each
  // token's routing is its warp's (the lanes split each reduction over the
  // experts); past that, a thread per token. Not in the reference, whose
  // routing keeps its order; values below -1 go on for moe-fuse-routing
  // to refuse.
  tiled.laneRoutingMaxTokens =
      options.laneRoutingMaxTokens != -1 ? options.laneRoutingMaxTokens
      : options.reference
          ? 0
          : std::max<int64_t>(options.routingBlockSize / kWarpLanes, 0) *
                std::max<int64_t>(options.multiprocessors, 1);
  // Specialized tiles: 128-row blocks, two consumer warpgroups sharing
  // each weight box (half the weight traffic per row of the 64-row form).
  if (wgmma && !given(options.blockRows))
    tiled.blockRows = specialized ? 128 : 64;
  if (wgmma && !given(options.tileN))
    tiled.tileN = 128;
  // One weight's tiles (the down projection): 256 columns, wgmma's widest
  // N, whose single accumulator takes the registers of a gate/up pair's
  // two of 128; each A slice in shared memory then feeds twice the columns.
  tiled.singleTileN = options.singleTileN;
  if (wgmma && !given(options.singleTileN))
    tiled.singleTileN = 256;
  // Decode: when the tiles of tile-n columns would not fill the
  // multiprocessors, narrower ones spread each expert's columns further.
  tiled.narrowTileN.assign(options.narrowTileN.begin(),
                           options.narrowTileN.end());
  // By default 64, 32 and 16 columns (those below tile-n; none without a
  // count of multiprocessors to choose by): at 16, a one-expert projection
  // at decode (DeepSeek-V3's shared gate/up, 2048 columns: 64 tiles of 32)
  // gets 128 tiles, so about as many multiprocessors stream its weights as
  // there are.
  if (wgmma && !given(options.narrowTileN) && options.multiprocessors > 0)
    for (int64_t width : {64, 32, 16})
      if (width < tiled.tileN)
        tiled.narrowTileN.push_back(width);
  if (!tiled.narrowTileN.empty())
    tiled.minTiles = options.multiprocessors;
  tiled.cudaChip = chip;
  tiled.deviceIO = options.deviceIO;
  // The combine in the down projection's write-back by atomic adds (an
  // explicit fuse-combine=0 with it moe-form-grouped-matmul refuses).
  if (options.atomicCombine) {
    tiled.atomicCombine = true;
    if (!given(options.fuseCombine))
      tiled.fuseCombine = true;
  }
  // Kernels over the routing plan's row bound: the host never waits for
  // the plan's row count, so the call's work is enqueued without a
  // synchronization until its result is copied back.
  tiled.boundRows = true;
  tiled.packWeights = false;
  // The tensor-core tiles (wgmma on 64- or 128-row blocks, mma.sync on
  // other multiples of 16 rows; others take the CUDA cores in f32) round
  // their input
  // rows to bf16 as they load them: the hidden rows between gate/up and
  // down are written in bf16 at once (half the bytes each way, the same
  // products), and from narrow-inputs-min-tokens on the token rows are
  // rounded once before the gate/up tiles read them, once per column tile.
  // Below that, the rounding's launch would cost more than the bytes it
  // saves: the tiles stream their experts' weights from HBM, and their
  // reads of the token rows (from L2) only count once enough rows share
  // each weight for the arithmetic to bind (about 184 rows per expert on
  // an H200, 790 TFLOP/s over 4.3 TB/s: Mixtral's top-2 of 8 from about
  // 740 tokens).
  bool tensorCoreTiles = tiled.blockRows >= 1 && tiled.blockRows % 16 == 0;
  tiled.narrowEpilogueOutputs = !options.reference && tensorCoreTiles;
  tiled.approximateEpilogueMath =
      !options.reference && options.fastEpilogueMath;
  tiled.narrowGroupedMatmulInputs = !options.reference && tensorCoreTiles;
  tiled.narrowInputsMinRows = options.narrowInputsMinTokens;
  // The router's logits (f32 over bf16 weights) at prefill: on the CUDA
  // cores in f32 they would exceed the routing's share of the layer at
  // Qwen3's and DeepSeek-V3's shapes (docs/Performance.md); as three exact
  // bf16 terms they are tensor-core tiles. Routers of fewer than 32
  // experts (Mixtral's 8) stay on the CUDA cores, where they cost little,
  // and so does decode, where the router's team kernels spread its few
  // sums over every multiprocessor.
  tiled.bf16TermLinears = !options.reference && tensorCoreTiles &&
                          options.tensorCoreRouterMinTokens >= 0;
  tiled.bf16TermsMinRows = options.tensorCoreRouterMinTokens;
  // From 32 experts (Qwen3's 128, DeepSeek-V3's 256; not Mixtral's 8): with
  // fewer, the f32 products cost less than writing and reading the terms.
  tiled.bf16TermsMinColumns = kTensorCoreRouterMinExperts;
  tiled.tileK = 0;
  // The tiles' forall: (row block, column tile) on the grid's (x, y).
  tiled.gpuMapping = true;
  // Device buffers live until the call returns, when the runtime frees
  // what the call allocated (its arena): no per-buffer ownership logic to
  // run on the host between kernels.
  tiled.deallocate = false;
  addTiledProgramPasses(pm, tiled);

  // Buffers to kernels. Copies that are not one memcpy, and every linalg
  // op, become loops; moe-map-to-gpu launches the parallel loops and
  // foralls (the tiles' on the grid of their GPU block mapping).
  pm.addPass(moe::createMoEStridedCopiesToLinalgPass());
  pm.addNestedPass<func::FuncOp>(createConvertLinalgToParallelLoopsPass());
  // Reductions' sums in registers rather than in their output buffer (the
  // router's matmul: no global load and store per multiply-add).
  pm.addNestedPass<func::FuncOp>(moe::createMoEHoistLoopAccumulatorsPass());
  // Adjacent loops over the same iterations become one (the router's fill
  // and matmul: one kernel); CSE first makes their bounds the same values.
  pm.addNestedPass<func::FuncOp>(createCSEPass());
  pm.addNestedPass<func::FuncOp>(createParallelLoopFusionPass());
  // The router's matmul in register tiles of 4 tokens x 4 experts (an
  // operand load serves 4 sums) from 64 tokens on.
  pm.addNestedPass<func::FuncOp>(moe::createMoEJamParallelReductionsPass());
  // Independent loops of other iteration spaces (the shared expert's plan
  // arrays, a fill beside the router): one loop, so one kernel.
  pm.addNestedPass<func::FuncOp>(moe::createMoEFuseSiblingLoopsPass());
  // Below an eighth of the threads the multiprocessors hold (256 each of
  // 2048), a loop's long reductions (the router's sums over H at decode)
  // are split over the 256 threads of a block per iteration, combined by a
  // gpu.all_reduce; not in the reference, whose sums keep their order, nor
  // without a count of multiprocessors to size the choice by.
  if (!options.reference && options.multiprocessors > 0)
    pm.addNestedPass<func::FuncOp>(moe::createMoESplitParallelReductionsPass(
        moe::MoESplitParallelReductionsPassOptions{
            /*lanes=*/256, /*minTripsPerLane=*/8,
            /*maxIterations=*/options.multiprocessors * 256}));
  // A persistent grid of `persistent` blocks per multiprocessor; a product
  // that is not positive is passed on negative, for moe-map-to-gpu to
  // refuse.
  // Consumers in turns alternate over a block's walk of tiles: a persistent
  // grid unless one is given (or no count of multiprocessors sizes it).
  int64_t persistent = options.persistent;
  if (pingPong && !given(options.persistent) && options.multiprocessors > 0)
    persistent = 1;
  int64_t tileGridLimit = persistent * options.multiprocessors;
  if (persistent != 0 && tileGridLimit <= 0)
    tileGridLimit = -1;
  // Team kernels (a block of 256 threads per iteration) on a grid of as
  // many blocks as the multiprocessors hold at once (2048 threads each),
  // walking the iterations: one block each would launch up to
  // multiprocessors x 256 blocks.
  int64_t teamGridLimit = std::max<int64_t>(options.multiprocessors * 8, 0);
  // Threads of a tile's block: a warp (mma.sync), a warpgroup (wgmma), or
  // a producer warpgroup and a consumer per 64 rows (specialized: two for
  // 128-row blocks; other block rows are left to mma.sync, or the CUDA
  // cores, in blocks of two warpgroups), or a producer and two consumers
  // taking 64-row blocks in turns (ping-pong; other block rows likewise).
  int64_t tileThreads = pingPong      ? (tiled.blockRows == 64 ? 384 : 256)
                        : specialized ? (tiled.blockRows == 128 ? 384 : 256)
                        : wgmma       ? 128
                                      : 32;
  pm.addNestedPass<func::FuncOp>(
      moe::createMoEMapToGPUPass(moe::MoEMapToGPUPassOptions{
          options.blockSize,
          /*warpSize=*/tileThreads,
          options.reference ? 0 : options.routingBlockSize, tileGridLimit,
          teamGridLimit, /*tileGroupRows=*/options.tileGroupRows,
          /*multiprocessors=*/std::max<int64_t>(options.multiprocessors, 0),
          options.deviceIO, /*tileCluster=*/options.cluster}));
  // Loops nested in a one-iteration-per-thread kernel run in the thread.
  pm.addPass(createParallelForToNestedForsPass());
  if (wgmma) {
    moe::MoELowerGroupedMatmulToWGMMAPassOptions wgmmaOptions;
    wgmmaOptions.asyncGather = options.asyncGather;
    wgmmaOptions.eightRowStages = options.eightRowStages;
    wgmmaOptions.maxGroupsInFlight = options.maxGroupsInFlight;
    // red.add.v2.f32 needs PTX 8.1.
    wgmmaOptions.vectorReductions = ptxAtLeast(options.features, 81);
    pm.addPass(moe::createMoELowerGroupedMatmulToWGMMAPass(wgmmaOptions));
  }
  pm.addPass(moe::createMoELowerGroupedMatmulToMMAPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  // TMA descriptors (host calls), mbarriers and TMA loads (kernels) to
  // NVVM and LLVM before the kernels are outlined, so that a kernel takes
  // its descriptors as pointers.
  if (wgmma)
    pm.addPass(createConvertNVGPUToNVVMPass());
  // Constants the canonicalizer hoisted out of the launches go back in,
  // so that kernels compute them instead of taking them as parameters.
  pm.addPass(createGpuLaunchSinkIndexComputationsPass());
  pm.addPass(createGpuKernelOutliningPass());
  // Shared-memory globals the kernels took along (the mbarriers).
  pm.addPass(createSymbolDCEPass());
  // Each kernel starts while the one before it ends, and waits for it
  // before touching memory.
  if (options.programmaticLaunches &&
      hasGridDependencyControl(chip, options.features))
    pm.addPass(moe::createMoEProgrammaticLaunchesPass());

  // Kernels to NVVM. FP8 weights are decoded by integer arithmetic (LLVM
  // has no FP8 type).
  pm.addPass(moe::createMoEExpandFloat8Pass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  pm.addPass(createSCFToControlFlowPass());
  GpuNVVMAttachTargetOptions target;
  target.chip = chip;
  target.features = options.features;
  target.optLevel = 3;
  pm.addPass(createGpuNVVMAttachTarget(target));
  pm.addNestedPass<gpu::GPUModuleOp>(createConvertGpuOpsToNVVMOps());
  // Dynamic shared memory after all static shared memory (the mbarriers).
  pm.addNestedPass<gpu::GPUModuleOp>(
      moe::createMoEExternDynamicSharedMemoryPass());
  // Kernels whose warpgroups move registers (the specialized tiles'
  // setmaxnreg) start from a count ptxas knows.
  pm.addNestedPass<gpu::GPUModuleOp>(moe::createMoEPinEntryRegistersPass());
  pm.addNestedPass<gpu::GPUModuleOp>(createCanonicalizerPass());
  pm.addNestedPass<gpu::GPUModuleOp>(createCSEPass());
  pm.addNestedPass<gpu::GPUModuleOp>(createReconcileUnrealizedCastsPass());

  // Host code to LLVM: heap buffers through moe_module_allocator, GPU
  // operations as mgpu* calls.
  FinalizeMemRefToLLVMConversionPassOptions memrefToLLVM;
  memrefToLLVM.useGenericFunctions = true;
  pm.addPass(createFinalizeMemRefToLLVMConversionPass(memrefToLLVM));
  pm.addPass(createGpuToLLVMConversionPass());
  pm.addPass(createConvertToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
  // Kernels take their TMA descriptors by value (grid-constant parameters
  // the host encodes at each launch), not from device copies: a call's own
  // buffers can then be described too, and nothing is allocated or copied.
  if (wgmma)
    pm.addPass(moe::createMoEPassTensorMapsByValuePass());
  GpuModuleToBinaryPassOptions binary;
  binary.compilationTarget = options.format;
  binary.toolkitPath = options.toolkit;
  pm.addPass(createGpuModuleToBinaryPass(binary));
  pm.addPass(moe::createMoEAllocateThroughRuntimePass());
}
