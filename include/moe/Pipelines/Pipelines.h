//===- Pipelines.h - MoE lowering pipelines ---------------------*- C++ -*-===//
//
// Named pipelines from moe ops on tensors down to the LLVM dialect, each
// driven by one options struct (as upstream's sparsifier pipeline).
//
//===----------------------------------------------------------------------===//

#ifndef MOE_PIPELINES_PIPELINES_H
#define MOE_PIPELINES_PIPELINES_H

#include "mlir/Pass/PassOptions.h"

namespace mlir {
class OpPassManager;
} // namespace mlir

namespace mlir::moe {

/// Options of `--moe-lower-to-cpu`.
/// How the fast path multiplies bf16 expert weights.
enum class Bf16Matmul {
  /// Widened to f32 in registers, f32 FMAs: any x86-64 CPU, f32 accuracy.
  F32,
  /// Packed in pairs of K, rows rounded to bf16, the pairs multiplied by
  /// f32 FMAs: the bf16 kernel's numerics on any CPU.
  PairsFma,
  /// Packed in pairs of K, rows rounded to bf16, vdpbf16ps (AVX512_BF16).
  Avx512Bf16,
};

struct LowerToCPUOptions : public PassPipelineOptions<LowerToCPUOptions> {
  PassOptions::Option<bool> reference{
      *this, "reference",
      llvm::cl::desc("Use the reference lowering (per-expert linalg.matmul "
                     "and scalar loops), the oracle of the fast path"),
      llvm::cl::init(false)};
  PassOptions::Option<int64_t> blockRows{
      *this, "block-rows",
      llvm::cl::desc("Fast path: rows per block of the grouped matmuls "
                     "(moe-form-grouped-matmul block-rows)"),
      llvm::cl::init(16)};
  PassOptions::Option<int64_t> tileN{
      *this, "tile-n",
      llvm::cl::desc("Fast path: columns per tile (moe-tile-grouped-matmul)"),
      llvm::cl::init(64)};
  PassOptions::Option<int64_t> tileK{
      *this, "tile-k",
      llvm::cl::desc("Fast path: reduction depth per tile, 0 for all "
                     "(moe-tile-grouped-matmul)"),
      llvm::cl::init(1024)};
  PassOptions::Option<int64_t> vectorWidth{
      *this, "vector-width",
      llvm::cl::desc("Fast path: f32 lanes per accumulator "
                     "(moe-lower-grouped-matmul-to-vector)"),
      llvm::cl::init(16)};
  PassOptions::Option<int64_t> tileRows{
      *this, "tile-rows",
      llvm::cl::desc("Fast path: rows of a register tile "
                     "(moe-lower-grouped-matmul-to-vector)"),
      llvm::cl::init(2)};
  PassOptions::Option<int64_t> tileCols{
      *this, "tile-cols",
      llvm::cl::desc("Fast path: columns of a register tile "
                     "(moe-lower-grouped-matmul-to-vector)"),
      llvm::cl::init(8)};
  PassOptions::Option<bool> packWeights{
      *this, "pack-weights",
      llvm::cl::desc("Fast path: expert weights packed in panels once per "
                     "loaded module, for the outer-product kernel "
                     "(moe-pack-expert-weights); 0 reads the checkpoint "
                     "layout with the dot-product kernel"),
      llvm::cl::init(true)};
  PassOptions::Option<int64_t> panelCols{
      *this, "panel-cols",
      llvm::cl::desc("Fast path: columns per packed weight panel "
                     "(moe-pack-expert-weights panel-cols)"),
      llvm::cl::init(32)};
  PassOptions::Option<int64_t> panelRows{
      *this, "panel-rows",
      llvm::cl::desc("Fast path: rows of a register tile of the "
                     "packed-weight kernel "
                     "(moe-lower-grouped-matmul-to-vector panel-rows)"),
      llvm::cl::init(8)};
  PassOptions::Option<Bf16Matmul> bf16Matmul{
      *this, "bf16-matmul",
      llvm::cl::desc("Fast path: how packed bf16 expert weights are "
                     "multiplied (moe-pack-expert-weights bf16-pairs, "
                     "moe-lower-grouped-matmul-to-vector bf16-dot)"),
      llvm::cl::init(Bf16Matmul::F32),
      llvm::cl::values(
          clEnumValN(Bf16Matmul::F32, "f32",
                     "widened to f32, f32 FMAs (any CPU; f32 accuracy)"),
          clEnumValN(Bf16Matmul::PairsFma, "pairs-fma",
                     "pairs of K, rows in bf16, f32 FMAs (any CPU)"),
          clEnumValN(Bf16Matmul::Avx512Bf16, "avx512bf16",
                     "pairs of K, rows in bf16, vdpbf16ps (AVX512_BF16)"))};
  PassOptions::Option<bool> fp8ByteLookup{
      *this, "fp8-byte-lookup",
      llvm::cl::desc("Fast path: decode FP8 weights in pairs of K (with "
                     "bf16-matmul pairs-fma or avx512bf16) by byte-table "
                     "lookups, vpermi2b, and MXFP4 ones by word-table "
                     "lookups, vpermw: the target needs AVX512_VBMI "
                     "(moe-lower-grouped-matmul-to-vector fp8-byte-lookup)"),
      llvm::cl::init(false)};
  PassOptions::Option<bool> fuseCombine{
      *this, "fuse-combine",
      llvm::cl::desc("Fast path: fuse each combine into the write-back of "
                     "the down projection (moe-form-grouped-matmul "
                     "fuse-combine)"),
      llvm::cl::init(true)};
  PassOptions::Option<bool> fuseActivation{
      *this, "fuse-activation",
      llvm::cl::desc("Fast path: compute the gate and up projections in one "
                     "grouped matmul with the activation in its epilogue "
                     "(moe-form-grouped-matmul fuse-activation)"),
      llvm::cl::init(true)};
  PassOptions::Option<bool> fuseRouting{
      *this, "fuse-routing",
      llvm::cl::desc("Fast path: route, count and build the routing plan in "
                     "one loop nest over the tokens (moe-fuse-routing); 0 "
                     "routes with the reference gate lowering, then counts"),
      llvm::cl::init(true)};
  PassOptions::Option<bool> tokenParallelRouting{
      *this, "token-parallel-routing",
      llvm::cl::desc("Fast path: route in a loop over the tokens, then count "
                     "per chunk of floor(sqrt(T / K)) tokens, 1 to 64 "
                     "(moe-fuse-routing token-parallel); 0 routes and counts "
                     "per chunk of 64"),
      llvm::cl::init(false)};
  PassOptions::Option<bool> openmp{
      *this, "openmp",
      llvm::cl::desc("Fast path: run the parallel loops (matmul tiles, "
                     "element-wise ops) on OpenMP threads, the module linking "
                     "libomp; 0 keeps them sequential, and the runtime splits "
                     "the tokens over threads instead"),
      llvm::cl::init(true)};
  PassOptions::Option<int64_t> rowAlign{
      *this, "row-align",
      llvm::cl::desc("Pad each expert's dispatched rows to a multiple of this "
                     "many rows (moe-decompose row-align; the fast path pads "
                     "to a common multiple of this and block-rows)"),
      llvm::cl::init(1)};
  PassOptions::Option<int64_t> ranks{
      *this, "ranks",
      llvm::cl::desc("Expert parallelism over this many MPI ranks, each "
                     "holding and running a window of the experts "
                     "(moe-shard-experts ranks); 0 for none"),
      llvm::cl::init(0)};
  PassOptions::Option<std::string> mpi{
      *this, "mpi",
      llvm::cl::desc("The MPI library whose ABI a module exchanging rows "
                     "calls: OpenMPI or MPICH (moe-shard-experts and "
                     "moe-convert-shard-all-to-all mpi)"),
      llvm::cl::init("OpenMPI")};
  PassOptions::Option<bool> cInterface{
      *this, "c-interface",
      llvm::cl::desc("Export public functions as entry points: C interface "
                     "wrappers and the moe_module_manifest global "
                     "(moe-export-entries); what the runtime loads"),
      llvm::cl::init(true)};
};

/// Options of `--moe-lower-to-cuda`.
/// The tensor-core instructions of the CUDA pipeline's matmul tiles.
enum class CudaMma { Sync, Wgmma, WgmmaSpecialized, WgmmaPingPong };

struct LowerToCUDAOptions : public PassPipelineOptions<LowerToCUDAOptions> {
  PassOptions::Option<bool> reference{
      *this, "reference",
      llvm::cl::desc("Use the reference lowering (per-expert linalg ops as "
                     "parallel loops on the CUDA cores), the oracle of the "
                     "tensor-core path"),
      llvm::cl::init(false)};
  PassOptions::Option<CudaMma> mma{
      *this, "mma",
      llvm::cl::desc("The tensor-core instructions of the grouped matmul "
                     "tiles"),
      llvm::cl::init(CudaMma::Sync),
      llvm::cl::values(
          clEnumValN(CudaMma::Sync, "sync",
                     "mma.sync m16n8k16, one warp per tile (sm_80 and "
                     "later)"),
          clEnumValN(CudaMma::Wgmma, "wgmma",
                     "Hopper's warpgroup MMA fed by TMA, one warpgroup per "
                     "tile (sm_90a; bf16 weights; block-scaled and f16 "
                     "weights on the warpgroup's mma.sync, f32 the CUDA "
                     "cores)"),
          clEnumValN(CudaMma::WgmmaSpecialized, "wgmma-specialized",
                     "wgmma tiles of a producer warpgroup (the A gather, "
                     "the TMA loads) and a consumer warpgroup per 64 rows "
                     "(wgmma, the epilogue) handing the ring's stages over "
                     "on mbarriers; 128-row blocks, two consumers sharing "
                     "each weight box (sm_90a)"),
          clEnumValN(CudaMma::WgmmaPingPong, "wgmma-pingpong",
                     "wgmma tiles of a producer warpgroup and two consumer "
                     "warpgroups that take 64-row blocks in turns, one's "
                     "epilogue under the other's wgmmas; on a persistent "
                     "grid unless persistent is given (sm_90a)"))};
  PassOptions::Option<int64_t> blockRows{
      *this, "block-rows",
      llvm::cl::desc("Rows per block of the grouped matmuls "
                     "(moe-form-grouped-matmul block-rows); the tensor cores "
                     "need a multiple of 16 (mma.sync), the wgmma tiles 64 "
                     "under mma=wgmma and mma=wgmma-pingpong, 64 or 128 "
                     "under mma=wgmma-specialized (the default: 16, 64 under "
                     "mma=wgmma(-pingpong), 128 under "
                     "mma=wgmma-specialized)"),
      llvm::cl::init(16)};
  PassOptions::Option<int64_t> tileN{
      *this, "tile-n",
      llvm::cl::desc("Columns of the tile one warp (warpgroup) computes "
                     "(moe-tile-grouped-matmul tile-n; the default: 64, or "
                     "128 under mma=wgmma)"),
      llvm::cl::init(64)};
  PassOptions::Option<int64_t> singleTileN{
      *this, "single-tile-n",
      llvm::cl::desc("Columns of the tile of a grouped matmul with one "
                     "weight (the down projection; moe-tile-grouped-matmul "
                     "single-tile-n; the default: tile-n, or 256 under "
                     "mma=wgmma: wgmma's widest N, its one accumulator "
                     "taking the registers of a gate/up pair of 128)"),
      llvm::cl::init(0)};
  PassOptions::ListOption<int64_t> narrowTileN{
      *this, "narrow-tile-n",
      llvm::cl::desc("Narrower column counts per tile (each below tile-n), "
                     "chosen at run time when tile-n's tiles would not fill "
                     "the multiprocessors (moe-tile-grouped-matmul "
                     "narrow-tile-n; the default: none, or 64,32,16 under "
                     "mma=wgmma)")};
  PassOptions::Option<int64_t> multiprocessors{
      *this, "multiprocessors",
      llvm::cl::desc("The GPU's multiprocessors (132 on H100/H200 SXM): "
                     "the tiles a grid must number before a narrower tiling "
                     "is chosen (moe-tile-grouped-matmul min-tiles), and the "
                     "tiles resident at once in the tile order's rule "
                     "(moe-map-to-gpu multiprocessors)"),
      llvm::cl::init(132)};
  PassOptions::Option<int64_t> tileGroupRows{
      *this, "tile-group-rows",
      llvm::cl::desc("Row blocks per group of the tiles' order, row blocks "
                     "fastest within a group (moe-map-to-gpu "
                     "tile-group-rows); 0: the rule from each tile's shape "
                     "and multiprocessors"),
      llvm::cl::init(0)};
  PassOptions::Option<int64_t> narrowInputsMinTokens{
      *this, "narrow-inputs-min-tokens",
      llvm::cl::desc("From this many tokens, the token rows the tensor-core "
                     "tiles read are rounded to bf16 once, in a kernel "
                     "before them (moe-narrow-grouped-matmul-inputs "
                     "min-rows); 0: at every call"),
      llvm::cl::init(1024)};
  PassOptions::Option<int64_t> tensorCoreRouterMinTokens{
      *this, "tensor-core-router-min-tokens",
      llvm::cl::desc("From this many tokens, the router's f32 logits over "
                     "bf16 weights of at least 32 experts "
                     "run on the tensor-core tiles as exact bf16 terms "
                     "(moe-linears-to-bf16-terms min-rows); 0: at every "
                     "call; negative: never"),
      llvm::cl::init(512)};
  PassOptions::Option<int64_t> persistent{
      *this, "persistent",
      llvm::cl::desc("Tile grids of at most multiprocessors x this many "
                     "blocks, each looping over tiles (moe-map-to-gpu "
                     "tile-grid-limit); 0 launches one block per tile (the "
                     "default: 0, or 1 under mma=wgmma-pingpong)"),
      llvm::cl::init(0)};
  PassOptions::Option<int64_t> cluster{
      *this, "cluster",
      llvm::cl::desc("Under mma=wgmma-specialized, tile grids in thread "
                     "block clusters of this many CTAs (moe-map-to-gpu "
                     "tile-cluster): 2 pairs row blocks of a column tile, "
                     "whose weight boxes each CTA loads half of for both "
                     "(TMA multicast) when they are one expert's (with "
                     "persistent too); 1: no clusters"),
      llvm::cl::init(1)};
  PassOptions::Option<bool> asyncGather{
      *this, "async-gather",
      llvm::cl::desc("Under mma=wgmma(-specialized), the tiles gather bf16 "
                     "token rows at 16-byte boundaries by cp.async, "
                     "completing on the stages' mbarriers "
                     "(moe-lower-grouped-matmul-to-wgmma async-gather); 0 "
                     "loads and stores them through the threads' registers"),
      llvm::cl::init(true)};
  PassOptions::Option<bool> eightRowStages{
      *this, "eight-row-stages",
      llvm::cl::desc("Under mma=wgmma, a row block of at most 8 filled rows "
                     "(decode) runs its ring in stages of 8 A rows and the "
                     "weights' boxes, more of them in the same shared memory "
                     "(moe-lower-grouped-matmul-to-wgmma eight-row-stages); "
                     "0: stages of 64 rows for every block"),
      llvm::cl::init(true)};
  PassOptions::Option<int64_t> maxGroupsInFlight{
      *this, "max-groups-in-flight",
      llvm::cl::desc("Under the wgmma forms, the most wgmma groups (64-depth "
                     "steps) a tile keeps in flight: narrow tiles keep as "
                     "many as cover 64 weight columns "
                     "(moe-lower-grouped-matmul-to-wgmma "
                     "max-groups-in-flight); 1: one"),
      llvm::cl::init(4)};
  PassOptions::Option<bool> programmaticLaunches{
      *this, "programmatic-launches",
      llvm::cl::desc("On sm_90 and later, each kernel may start while the "
                     "one before it on the stream ends (programmatic "
                     "dependent launch: moe-programmatic-launches); 0 "
                     "launches each after the previous has finished"),
      llvm::cl::init(true)};
  PassOptions::Option<bool> deviceIO{
      *this, "device-io",
      llvm::cl::desc("Entry points take and return device memory and are "
                     "enqueued on the caller's stream with no host wait, "
                     "capturable in a CUDA graph (moe-export-entries and "
                     "moe-map-to-gpu device-io)"),
      llvm::cl::init(false)};
  PassOptions::Option<bool> fuseCombine{
      *this, "fuse-combine",
      llvm::cl::desc("Scatter the down projection's rows into the tokens "
                     "(moe-form-grouped-matmul fuse-combine): its row blocks "
                     "then run one after another; 0 gathers them in a "
                     "combine kernel instead"),
      llvm::cl::init(false)};
  PassOptions::Option<bool> atomicCombine{
      *this, "atomic-combine",
      llvm::cl::desc("Add the down projection's rows, times their combine "
                     "weights, to the tokens' rows by atomic adds in its "
                     "tiles' write-back (moe-form-grouped-matmul fuse-combine "
                     "atomic-combine): no [T*K, H] rows written and gathered "
                     "back, the row blocks still parallel; the f32 sums' "
                     "order may change from run to run"),
      llvm::cl::init(false)};
  PassOptions::Option<bool> fastEpilogueMath{
      *this, "fast-epilogue-math",
      llvm::cl::desc("The grouped matmuls' epilogues (SwiGLU's exp and "
                     "division) by the hardware's approximate instructions "
                     "(moe-approximate-epilogue-math); 0 keeps libdevice's "
                     "exact functions"),
      llvm::cl::init(true)};
  PassOptions::Option<bool> fuseActivation{
      *this, "fuse-activation",
      llvm::cl::desc("Compute the gate and up projections in one grouped "
                     "matmul with the activation in its epilogue "
                     "(moe-form-grouped-matmul fuse-activation)"),
      llvm::cl::init(true)};
  PassOptions::Option<bool> fuseRouting{
      *this, "fuse-routing",
      llvm::cl::desc("Route, count and build the routing plan in one loop "
                     "nest over the tokens (moe-fuse-routing)"),
      llvm::cl::init(true)};
  PassOptions::Option<bool> tokenParallelRouting{
      *this, "token-parallel-routing",
      llvm::cl::desc("Route in a loop over the tokens (one thread each), then "
                     "count per chunk of floor(sqrt(T / K)) tokens, 1 to 64 "
                     "(moe-fuse-routing token-parallel); 0 routes and counts "
                     "per chunk (a thread per 64 tokens)"),
      llvm::cl::init(true)};
  PassOptions::Option<int64_t> laneRoutingMaxTokens{
      *this, "lane-routing-max-tokens",
      llvm::cl::desc("Up to this many tokens, each token is routed by the "
                     "lanes of a warp of the routing kernel (moe-fuse-routing "
                     "lane-max-tokens); -1: as many as its blocks have warps "
                     "on one block per multiprocessor; 0: one thread per "
                     "token at every T"),
      llvm::cl::init(-1)};
  PassOptions::Option<int64_t> rowAlign{
      *this, "row-align",
      llvm::cl::desc("Pad each expert's dispatched rows to a multiple of this "
                     "many rows (moe-decompose row-align)"),
      llvm::cl::init(1)};
  PassOptions::Option<int64_t> blockSize{
      *this, "block-size",
      llvm::cl::desc("Threads per block of the kernels that run one loop "
                     "iteration per thread (moe-map-to-gpu block-size)"),
      llvm::cl::init(256)};
  PassOptions::Option<int64_t> routingBlockSize{
      *this, "routing-block-size",
      llvm::cl::desc("Threads of the one block that routes the tokens and "
                     "builds the plan, as one kernel (moe-map-to-gpu "
                     "routing-block-size; the fast path); 0 launches each "
                     "loop on its own"),
      llvm::cl::init(512)};
  PassOptions::Option<std::string> chip{
      *this, "chip",
      llvm::cl::desc("The CUDA architecture of the kernels (nvvm-attach-target "
                     "chip; the default: sm_90, or sm_90a under mma=wgmma)"),
      llvm::cl::init("sm_90")};
  PassOptions::Option<std::string> features{
      *this, "features",
      llvm::cl::desc("PTX features of the kernels (nvvm-attach-target "
                     "features; PTX 8.1 by default, which the driver must "
                     "load: CUDA 12.1 or later; below 8.1 the atomic "
                     "combine adds one element at a time)"),
      llvm::cl::init("+ptx81")};
  PassOptions::Option<std::string> format{
      *this, "format",
      llvm::cl::desc("What the kernels are embedded as (gpu-module-to-binary "
                     "format): fatbin (the cubin and its PTX), bin (the "
                     "cubin), isa (PTX text), offload (LLVM IR)"),
      llvm::cl::init("fatbin")};
  PassOptions::Option<std::string> toolkit{
      *this, "toolkit",
      llvm::cl::desc("The CUDA toolkit whose ptxas and fatbinary build the "
                     "binary (gpu-module-to-binary toolkit)"),
      llvm::cl::init("/usr/local/cuda")};
  PassOptions::Option<bool> cInterface{
      *this, "c-interface",
      llvm::cl::desc("Export public functions as entry points with the "
                     "manifest (moe-export-entries)"),
      llvm::cl::init(true)};
};

/// Builds the CPU pipeline: moe ops on tensors to the LLVM dialect.
void buildLowerToCPUPipeline(OpPassManager &pm,
                             const LowerToCPUOptions &options);

/// Builds the CUDA pipeline: moe ops on tensors to host code in the LLVM
/// dialect that launches kernels embedded as a GPU binary.
void buildLowerToCUDAPipeline(OpPassManager &pm,
                              const LowerToCUDAOptions &options);

/// Checks what no pass of the pipeline checks: values out of range, and
/// options given in the option string that the lowering they select does
/// not use (e.g. a fast-path option with reference=1, async-gather with
/// mma=sync). Reports the first problem through `error`, one line naming
/// the option. The registered pipelines and moe-compile call these before
/// building.
LogicalResult checkLowerToCPUOptions(const LowerToCPUOptions &options,
                                     function_ref<void(const Twine &)> error);
LogicalResult checkLowerToCUDAOptions(const LowerToCUDAOptions &options,
                                      function_ref<void(const Twine &)> error);

/// Registers `--moe-lower-to-cpu` and `--moe-lower-to-cuda`.
void registerMoEPipelines();

} // namespace mlir::moe

#endif // MOE_PIPELINES_PIPELINES_H
