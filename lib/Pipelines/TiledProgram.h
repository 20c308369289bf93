//===- TiledProgram.h - The front end the CPU and GPU pipelines share -----===//
//
// moe ops on tensors -> the tiled program on buffers: entry points
// described, layers decomposed, expert matmuls formed into tiled
// moe.grouped_matmul ops (the fast path) or lowered to linalg (the
// reference), then bufferized with deallocations. What follows is the
// target's.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_PIPELINES_TILEDPROGRAM_H
#define MOE_LIB_PIPELINES_TILEDPROGRAM_H

#include "llvm/ADT/SmallVector.h"

#include <cstdint>
#include <string>

namespace mlir {
class OpPassManager;
} // namespace mlir

namespace mlir::moe {

struct TiledProgramOptions {
  bool cInterface = true;
  /// Expert parallelism over this many MPI ranks (moe-shard-experts); 0
  /// for none.
  int64_t ranks = 0;
  /// The MPI library whose ABI such a module calls.
  std::string mpi = "OpenMPI";
  /// Non-empty for a module of CUDA kernels (moe-export-entries cuda-chip).
  std::string cudaChip;
  /// The entries' inputs and results are device memory (moe-export-entries
  /// device-io).
  bool deviceIO = false;
  bool reference = false;
  int64_t rowAlign = 1;
  int64_t blockRows = 16;
  bool fuseCombine = true;
  /// The fused combine's adds are atomic (moe-form-grouped-matmul
  /// atomic-combine).
  bool atomicCombine = false;
  bool fuseActivation = true;
  /// Grouped matmuls over the plan's row bound (moe-form-grouped-matmul
  /// bound-rows).
  bool boundRows = false;
  /// Epilogue rows that only bf16 matmuls read are written in bf16
  /// (moe-narrow-epilogue-outputs): for kernels that round them anyway
  /// (tensor cores; the CPU's bf16 dot products).
  bool narrowEpilogueOutputs = false;
  /// Epilogue functions may be approximate (moe-approximate-epilogue-math):
  /// for targets with fast approximations (the GPU's ex2/rcp.approx).
  bool approximateEpilogueMath = false;
  /// f32 rows that bf16 matmuls read as input are rounded to bf16 once
  /// (moe-narrow-grouped-matmul-inputs), from narrowInputsMinRows rows on
  /// (0: always): for the same kernels.
  bool narrowGroupedMatmulInputs = false;
  int64_t narrowInputsMinRows = 0;
  /// f32 linears over bf16 weights (the router) as exact bf16 terms on
  /// the grouped matmuls (moe-linears-to-bf16-terms), from
  /// bf16TermsMinRows rows and bf16TermsMinColumns columns on: for
  /// tensor-core tiles, where f32 CUDA-core arithmetic binds.
  bool bf16TermLinears = false;
  int64_t bf16TermsMinRows = 0;
  int64_t bf16TermsMinColumns = 1;
  bool fuseRouting = true;
  /// Route in a loop over the tokens, then count per chunk
  /// (moe-fuse-routing token-parallel).
  bool tokenParallelRouting = false;
  /// Up to this many tokens, route each on lanes (moe-fuse-routing
  /// lane-max-tokens; 0: never).
  int64_t laneRoutingMaxTokens = 0;
  bool packWeights = true;
  int64_t panelCols = 32;
  bool bf16Pairs = false;
  int64_t tileN = 64;
  int64_t tileK = 1024;
  /// Map the tiles' foralls to GPU blocks (moe-tile-grouped-matmul
  /// gpu-mapping).
  bool gpuMapping = false;
  /// Narrower tilings chosen at run time when tile-n's tiles number fewer
  /// than minTiles (moe-tile-grouped-matmul narrow-tile-n, min-tiles).
  llvm::SmallVector<int64_t> narrowTileN;
  /// Columns per tile of one-weight grouped matmuls (0: tileN).
  int64_t singleTileN = 0;
  int64_t minTiles = 0;
  /// Free each buffer after its last use (ownership-based deallocation);
  /// without it the target frees them (a GPU call's arena).
  bool deallocate = true;
};

/// The settings a pipeline's options struct shares with the tiled program
/// (the fields of the same names); the target sets the others.
template <typename PipelineOptions>
TiledProgramOptions sharedTiledProgramOptions(const PipelineOptions &options) {
  TiledProgramOptions tiled;
  tiled.cInterface = options.cInterface;
  tiled.reference = options.reference;
  tiled.rowAlign = options.rowAlign;
  tiled.blockRows = options.blockRows;
  tiled.fuseCombine = options.fuseCombine;
  tiled.fuseActivation = options.fuseActivation;
  tiled.fuseRouting = options.fuseRouting;
  tiled.tokenParallelRouting = options.tokenParallelRouting;
  tiled.tileN = options.tileN;
  return tiled;
}

/// Adds the passes from moe ops on tensors to the tiled program on buffers.
void addTiledProgramPasses(OpPassManager &pm,
                           const TiledProgramOptions &options);

} // namespace mlir::moe

#endif // MOE_LIB_PIPELINES_TILEDPROGRAM_H
