//===- TileOrder.h - The order in which a grid runs its tiles ---*- C++ -*-===//
//
// Internal to moe-map-to-gpu: which tile of a grouped matmul's (row block,
// column tile) grid a block's linear index runs. Blocks start in the order
// of their linear index, so the tiles resident at one time are a run of
// consecutive indices: that order decides what the L2 cache shares among
// them. Row blocks fastest over all of them makes every wave of tiles
// read the A rows of all row blocks once per column tile, which the L2
// cannot hold for long K (Mixtral's down projection: 470 MB of f32 rows at
// T = 4096, read 16 times). Tiles walked in groups of G row blocks (row
// blocks fastest in a group, then columns: the "grouped" order of tuned
// GEMMs) keep a wave's A rows to G row blocks and its weight panels to
// about (wave / G) column tiles.
//
//===----------------------------------------------------------------------===//

#ifndef MOE_LIB_CODEGEN_GPU_TILEORDER_H
#define MOE_LIB_CODEGEN_GPU_TILEORDER_H

#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Builders.h"

namespace mlir::moe::gpu_codegen {

/// Row blocks per group of the tile order of `loop` (a tile loop holding
/// one `moe.grouped_matmul` on buffers), for `multiprocessors` tiles
/// resident at once: the G that minimizes the bytes a wave reads from
/// memory when the G row blocks share their expert,
///   G x BM x K x (input bytes) + (wave / G) x BN x W x K x (weight bytes),
/// that is G = sqrt(wave x BN x W x weight bytes / (BM x input bytes)),
/// rounded, at least 1 (BM the block rows, BN the tile's columns, W its
/// weights). 0 when the tile's shape is not static or there is not one
/// grouped matmul.
int64_t groupRowsByRule(scf::ParallelOp loop, int64_t multiprocessors);

/// The indices of tile `linear` over dimensions of `counts` walked in
/// `order` (fastest first). With `groupRows` G >= 1 and at least two
/// dimensions, the first two (row blocks, columns) are walked in groups of
/// G row blocks, row blocks fastest within a group, then columns (the last
/// group holds the remaining row blocks); the other dimensions are outer.
/// With 0, each dimension in turn, fastest first.
SmallVector<Value> tileIndices(OpBuilder &b, Location loc, Value linear,
                               ArrayRef<Value> counts, ArrayRef<int64_t> order,
                               int64_t groupRows);

} // namespace mlir::moe::gpu_codegen

#endif // MOE_LIB_CODEGEN_GPU_TILEORDER_H
