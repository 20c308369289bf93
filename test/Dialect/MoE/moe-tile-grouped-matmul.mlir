// RUN: moe-opt %s --moe-tile-grouped-matmul="tile-n=16 tile-k=8" | FileCheck %s
// RUN: moe-opt %s --moe-tile-grouped-matmul="tile-n=16 tile-k=0" | FileCheck %s --check-prefix=NOK
// RUN: moe-opt %s --moe-tile-grouped-matmul="tile-n=16 tile-k=0 gpu-mapping=1" | FileCheck %s --check-prefix=GPU
// RUN: moe-opt %s --moe-tile-grouped-matmul="tile-n=16 tile-k=0 narrow-tile-n=4,8 min-tiles=24" | FileCheck %s --check-prefix=NARROW
// RUN: moe-opt %s --moe-tile-grouped-matmul="tile-n=16 tile-k=0 single-tile-n=32 narrow-tile-n=8 min-tiles=24" | FileCheck %s --check-prefix=SINGLE
// RUN: moe-opt %s --moe-tile-grouped-matmul="tile-n=16 tile-k=0 narrow-tile-n=4,8 min-tiles=4" | FileCheck %s --check-prefix=PRUNED
// RUN: not moe-opt %s --moe-tile-grouped-matmul="tile-n=-1" 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: not moe-opt %s --moe-tile-grouped-matmul="single-tile-n=-1" 2>&1 | FileCheck %s --check-prefix=BADSINGLE
// RUN: not moe-opt %s --moe-tile-grouped-matmul="tile-n=16 narrow-tile-n=16 min-tiles=4" 2>&1 | FileCheck %s --check-prefix=BADNARROW
// RUN: not moe-opt %s --moe-tile-grouped-matmul="tile-n=16 narrow-tile-n=8" 2>&1 | FileCheck %s --check-prefix=NOMIN
// RUN: not moe-opt %s --moe-tile-grouped-matmul="min-tiles=-2" 2>&1 | FileCheck %s --check-prefix=BADMIN

// BAD: moe-tile-grouped-matmul: tile sizes must not be negative, got tile-n=-1 tile-k=1024 min-tiles=0 single-tile-n=0
// BADSINGLE: moe-tile-grouped-matmul: tile sizes must not be negative, got tile-n=64 tile-k=1024 min-tiles=0 single-tile-n=-1
// BADNARROW: moe-tile-grouped-matmul: each narrow-tile-n must be positive and below tile-n, got 16
// NOMIN: moe-tile-grouped-matmul: narrow-tile-n needs min-tiles
// BADMIN: moe-tile-grouped-matmul: tile sizes must not be negative, got tile-n=64 tile-k=1024 min-tiles=-2

// One scf.forall over (column block, row block), columns outermost; inside,
// an scf.for over the depth; the tile is a grouped matmul of one row block
// reading every expert's [16, 8] weight slice.
// CHECK-DAG: #[[$ROW:.*]] = affine_map<(d0) -> (d0 * 4)>
// CHECK-DAG: #{{.*}} = affine_map<(d0, d1)[s0] -> (4, d1 - d0 * 4, d0 * -4 + s0)>
// CHECK-DAG: #[[$PANEL:.*]] = affine_map<(d0) -> (d0 floordiv 32)>
// CHECK-DAG: #[[$PANELS:.*]] = affine_map<(d0) -> (d0 ceildiv 32)>
// CHECK-DAG: #[[$HALF:.*]] = affine_map<(d0) -> (d0 floordiv 2)>
// CHECK-DAG: #[[$PAIRS:.*]] = affine_map<(d0) -> (d0 ceildiv 2)>
// CHECK-LABEL: func @tile
// CHECK: %[[B:.*]] = tensor.dim %{{.*}}, %c0 : tensor<?xi32>
// CHECK: scf.forall (%[[N:.*]], %[[BLK:.*]]) = (0, 0) to (32, %[[B]]) step (16, 1) shared_outs(%[[OUT:.*]] = %{{.*}})
// CHECK:   %[[R:.*]] = affine.apply #[[$ROW]](%[[BLK]])
// CHECK:   tensor.extract_slice %{{.*}}[%[[R]], 0] [4, 16] [1, 1] : tensor<?x16xf32> to tensor<4x16xf32>
// CHECK:   tensor.extract_slice %{{.*}}[0, %[[N]], 0] [8, 16, 16] [1, 1, 1] : tensor<8x32x16xbf16> to tensor<8x16x16xbf16>
// CHECK:   tensor.extract_slice %{{.*}}[%[[BLK]]] [1] [1] : tensor<?xi32> to tensor<1xi32>
// CHECK:   scf.for %[[K:.*]] = %c0{{.*}} to %c16 step %c8
// CHECK:     moe.grouped_matmul block_rows(4) ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<4x8xf32>, tensor<8x16x8xbf16>, tensor<1xi32>) outs(%{{.*}} : tensor<4x16xf32>) -> tensor<4x16xf32>
// CHECK:   scf.forall.in_parallel
// CHECK:     tensor.parallel_insert_slice %{{.*}} into %[[OUT]][%{{.*}}, %[[N]]] [4, 16] [1, 1]

// With gpu-mapping, the forall's (column block, row block) are GPU blocks
// y and x: the grid moe-map-to-gpu launches.
// GPU-LABEL: func @tile
// GPU: scf.forall
// GPU: } {mapping = [#gpu.block<y>, #gpu.block<x>]}
// NOK-LABEL: func @tile
// NOK: scf.forall
// NOK-NOT: scf.for
// NOK: moe.grouped_matmul block_rows(4) ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<4x16xf32>, tensor<8x16x16xbf16>, tensor<1xi32>)
func.func @tile(%rows: tensor<?x16xf32>, %w: tensor<8x32x16xbf16>,
                %blocks: tensor<?xi32>, %acc: tensor<?x32xf32>) -> tensor<?x32xf32> {
  %r = moe.grouped_matmul block_rows(4)
      ins(%rows, %w, %blocks : tensor<?x16xf32>, tensor<8x32x16xbf16>, tensor<?xi32>)
      outs(%acc : tensor<?x32xf32>) -> tensor<?x32xf32>
  return %r : tensor<?x32xf32>
}

// The memref form is left alone.
// CHECK-LABEL: func @memrefs
// CHECK-NOT: scf.forall
// CHECK: moe.grouped_matmul block_rows(2)
func.func @memrefs(%rows: memref<6x16xf32>, %w: memref<1x8x16xf32>,
                   %blocks: memref<3xi32>, %acc: memref<6x8xf32>) {
  moe.grouped_matmul block_rows(2)
      ins(%rows, %w, %blocks : memref<6x16xf32>, memref<1x8x16xf32>, memref<3xi32>)
      outs(%acc : memref<6x8xf32>)
  return
}

// A zero fill of the accumulator is fused into the tiles (destination
// fusion): the forall's shared output is the unfilled buffer and every tile
// fills its own [4, 16] slice before the depth loop adds into it.
// CHECK-LABEL: func @fused_fill
// CHECK-SAME: %[[ACC:[a-z0-9_]+]]: tensor<?x32xf32>)
// CHECK: scf.forall (%[[N:.*]], %[[BLK:.*]]) = {{.*}} shared_outs(%[[OUT:.*]] = %[[ACC]])
// CHECK:   %[[SLICE:.*]] = tensor.extract_slice %[[OUT]][%{{.*}}, %[[N]]] [4, 16] [1, 1]
// CHECK:   %[[ZERO:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%[[SLICE]] : tensor<4x16xf32>)
// CHECK:   scf.for %{{.*}} iter_args(%{{.*}} = %[[ZERO]])
// CHECK:     moe.grouped_matmul
// With narrow-tile-n and min-tiles, one tiling per column count (16, then
// 8 and 4, widest first), chosen by the row blocks: 16 columns when
// B x 2 tiles reach 24, else 8 columns when B x 4 do, else 4. Each tiling
// fuses its own copy of the fill.
// NARROW-LABEL: func @fused_fill
// NARROW: %[[B:.*]] = tensor.dim %{{.*}}, %c0 : tensor<?xi32>
// NARROW: %[[WIDE:.*]] = arith.muli %[[B]], %c2
// NARROW: %[[FILLS:.*]] = arith.cmpi uge, %[[WIDE]], %c24
// NARROW: %[[R:.*]] = scf.if %[[FILLS]]
// NARROW:   scf.forall {{.*}} to (32, %{{.*}}) step (16, 1)
// NARROW:     linalg.fill
// NARROW:     moe.grouped_matmul {{.*}} outs(%{{.*}} : tensor<4x16xf32>)
// NARROW: } else {
// NARROW:   arith.muli %{{.*}}, %c4
// NARROW:   scf.if
// NARROW:     scf.forall {{.*}} to (32, %{{.*}}) step (8, 1)
// NARROW:       moe.grouped_matmul {{.*}} outs(%{{.*}} : tensor<4x8xf32>)
// NARROW:   } else {
// NARROW:     scf.forall {{.*}} to (32, %{{.*}}) step (4, 1)
// NARROW:       moe.grouped_matmul {{.*}} outs(%{{.*}} : tensor<4x4xf32>)
// NARROW: return %[[R]]
// With min-tiles=4, the 8-column tiling's 4 column tiles reach it at one
// row block: the 4-column one would never run and is not built.
// PRUNED-LABEL: func @fused_fill
// PRUNED: %[[B:.*]] = tensor.dim %{{.*}}, %c0 : tensor<?xi32>
// PRUNED: %[[WIDE:.*]] = arith.muli %[[B]], %c2
// PRUNED: %[[FILLS:.*]] = arith.cmpi uge, %[[WIDE]], %c4
// PRUNED: scf.if %[[FILLS]]
// PRUNED:   scf.forall {{.*}} to (32, %{{.*}}) step (16, 1)
// PRUNED: } else {
// PRUNED-NOT: scf.if
// PRUNED:   scf.forall {{.*}} to (32, %{{.*}}) step (8, 1)
// PRUNED-NOT: step (4, 1)
// PRUNED-LABEL: func @packed
// single-tile-n=32: a grouped matmul of one weight is tiled 32 wide, then
// at tile-n (16) and narrow-tile-n (8) when fewer tiles than min-tiles;
// a paired one (@epilogue) at tile-n, then 8.
// SINGLE-LABEL: func @fused_fill
// SINGLE: %[[B:.*]] = tensor.dim %{{.*}}, %c0 : tensor<?xi32>
// SINGLE: %[[FILLS:.*]] = arith.cmpi uge, %[[B]], %c24
// SINGLE: scf.if %[[FILLS]]
// SINGLE:   scf.forall {{.*}} to (32, %{{.*}}) step (32, 1)
// SINGLE:     moe.grouped_matmul {{.*}} outs(%{{.*}} : tensor<4x32xf32>)
// SINGLE: } else {
// SINGLE:   arith.muli %{{.*}}, %c2
// SINGLE:   scf.if
// SINGLE:     scf.forall {{.*}} to (32, %{{.*}}) step (16, 1)
// SINGLE:   } else {
// SINGLE:     scf.forall {{.*}} to (32, %{{.*}}) step (8, 1)
// SINGLE-LABEL: func @epilogue
// SINGLE: scf.if
// SINGLE:   scf.forall {{.*}} to (32, %{{.*}}) step (16, 1)
// SINGLE: } else {
// SINGLE:   scf.forall {{.*}} to (32, %{{.*}}) step (8, 1)
// SINGLE-NOT: step (32, 1)
// SINGLE: return
func.func @fused_fill(%rows: tensor<?x16xf32>, %w: tensor<8x32x16xbf16>,
                      %blocks: tensor<?xi32>, %acc: tensor<?x32xf32>) -> tensor<?x32xf32> {
  %zero = arith.constant 0.0 : f32
  %filled = linalg.fill ins(%zero : f32) outs(%acc : tensor<?x32xf32>) -> tensor<?x32xf32>
  %r = moe.grouped_matmul block_rows(4)
      ins(%rows, %w, %blocks : tensor<?x16xf32>, tensor<8x32x16xbf16>, tensor<?xi32>)
      outs(%filled : tensor<?x32xf32>) -> tensor<?x32xf32>
  return %r : tensor<?x32xf32>
}

// A packed weight ([E, NP, K, P] with P = 32) is sliced by whole panels:
// tile-n = 16 is rounded up to 32, and each tile reads panel n / 32 of
// every expert (N = 40: the last tile has 8 columns, one padded panel).
// CHECK-LABEL: func @packed
// CHECK: scf.forall (%[[N:.*]], %[[BLK:.*]]) = (0, 0) to (40, %{{.*}}) step (32, 1)
// CHECK:   %[[COLS:.*]] = affine.min
// CHECK:   %[[P:.*]] = affine.apply #[[$PANEL]](%[[N]])
// CHECK:   %[[NP:.*]] = affine.apply #[[$PANELS]](%[[COLS]])
// CHECK:   tensor.extract_slice %{{.*}}[0, %[[P]], 0, 0] [8, %[[NP]], 16, 32] [1, 1, 1, 1] : tensor<8x2x16x32xbf16> to tensor<8x?x16x32xbf16>
// CHECK:   scf.for
// CHECK:     tensor.extract_slice %{{.*}}[0, 0, %{{.*}}, 0] [8, %{{.*}}, 8, 32] [1, 1, 1, 1] : tensor<8x?x16x32xbf16> to tensor<8x?x8x32xbf16>
// CHECK:     moe.grouped_matmul block_rows(4) ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<4x8xf32>, tensor<8x?x8x32xbf16>, tensor<1xi32>) outs(%{{.*}} : tensor<4x?xf32>)
func.func @packed(%rows: tensor<?x16xf32>, %w: tensor<8x2x16x32xbf16>,
                  %blocks: tensor<?xi32>, %acc: tensor<?x40xf32>) -> tensor<?x40xf32> {
  %r = moe.grouped_matmul block_rows(4)
      ins(%rows, %w, %blocks : tensor<?x16xf32>, tensor<8x2x16x32xbf16>, tensor<?xi32>)
      outs(%acc : tensor<?x40xf32>) -> tensor<?x40xf32>
  return %r : tensor<?x40xf32>
}

// Packed in pairs of K ([E, NP, KP, P, 2], K = 15 in 8 pairs): a depth tile
// of 8 reads the 4 pairs from k / 2, the last one 4 pairs for 7 inputs.
// CHECK-LABEL: func @pairs
// CHECK: scf.forall (%[[N:.*]], %[[BLK:.*]]) = (0, 0) to (40, %{{.*}}) step (32, 1)
// CHECK:   tensor.extract_slice %{{.*}}[0, %{{.*}}, 0, 0, 0] [8, %{{.*}}, 8, 32, 2] [1, 1, 1, 1, 1] : tensor<8x2x8x32x2xbf16> to tensor<8x?x8x32x2xbf16>
// CHECK:   scf.for %[[K:.*]] = %{{.*}} to %{{.*}} step %c8
// CHECK:     %[[KK:.*]] = affine.min
// CHECK:     %[[Q:.*]] = affine.apply #[[$HALF]](%[[K]])
// CHECK:     %[[QQ:.*]] = affine.apply #[[$PAIRS]](%[[KK]])
// CHECK:     tensor.extract_slice %{{.*}}[0, 0, %[[Q]], 0, 0] [8, %{{.*}}, %[[QQ]], 32, 2] [1, 1, 1, 1, 1] : tensor<8x?x8x32x2xbf16> to tensor<8x?x?x32x2xbf16>
// CHECK:     moe.grouped_matmul block_rows(4) ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<4x?xbf16>, tensor<8x?x?x32x2xbf16>, tensor<1xi32>)
func.func @pairs(%rows: tensor<?x15xbf16>, %w: tensor<8x2x8x32x2xbf16>,
                 %blocks: tensor<?xi32>, %acc: tensor<?x40xf32>) -> tensor<?x40xf32> {
  %r = moe.grouped_matmul block_rows(4)
      ins(%rows, %w, %blocks : tensor<?x15xbf16>, tensor<8x2x8x32x2xbf16>, tensor<?xi32>)
      outs(%acc : tensor<?x40xf32>) -> tensor<?x40xf32>
  return %r : tensor<?x40xf32>
}

// Gathered rows: a tile reads every row of the input (any may be a source)
// over its depth block, and the row sources of its row block.
// CHECK-LABEL: func @gathered
// CHECK: scf.forall (%[[N:.*]], %[[BLK:.*]]) = {{.*}} shared_outs
// CHECK:   %[[R:.*]] = affine.apply #[[$ROW]](%[[BLK]])
// CHECK:   tensor.extract_slice %{{.*}}[%[[R]]] [4] [1] : tensor<?xi32> to tensor<4xi32>
// CHECK:   tensor.extract_slice %{{.*}}[0, 0] [5, 16] [1, 1] : tensor<5x16xf32> to tensor<5x16xf32>
// CHECK:   scf.for
// CHECK:     moe.grouped_matmul block_rows(4) ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<5x8xf32>, tensor<8x16x8xbf16>, tensor<1xi32>) row_sources(%{{.*}} : tensor<4xi32>) outs(%{{.*}} : tensor<4x16xf32>)
func.func @gathered(%x: tensor<5x16xf32>, %w: tensor<8x32x16xbf16>, %blocks: tensor<?xi32>,
                    %sources: tensor<?xi32>, %acc: tensor<?x32xf32>) -> tensor<?x32xf32> {
  %r = moe.grouped_matmul block_rows(4)
      ins(%x, %w, %blocks : tensor<5x16xf32>, tensor<8x32x16xbf16>, tensor<?xi32>)
      row_sources(%sources : tensor<?xi32>)
      outs(%acc : tensor<?x32xf32>) -> tensor<?x32xf32>
  return %r : tensor<?x32xf32>
}

// Scattered rows add to shared rows of the [T, N] result: the forall splits
// the columns only (the fill fused into each column tile), and inside it an
// scf.for walks the row blocks, each a tile of one block whose scatter
// tables are its rows and whose init is every row in the tile's columns.
// CHECK-LABEL: func @scattering
// CHECK: scf.forall (%[[N:.*]]) = (0) to (32) step (16) shared_outs(%[[OUT:.*]] = %{{.*}}) -> (tensor<?x32xf32>)
// CHECK:   %[[SLICE:.*]] = tensor.extract_slice %[[OUT]][0, %[[N]]] [%{{.*}}, 16] [1, 1]
// CHECK:   %[[ZERO:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%[[SLICE]] : tensor<?x16xf32>)
// CHECK:   scf.for %[[BLK:.*]] = %{{.*}} to %{{.*}} step %c1 iter_args(%[[ACC:.*]] = %[[ZERO]])
// CHECK:     scf.for
// CHECK:       %[[R:.*]] = affine.apply #[[$ROW]](%[[BLK]])
// CHECK:       tensor.extract_slice %{{.*}}[%[[R]]] [4] [1] : tensor<?xi32> to tensor<4xi32>
// CHECK:       tensor.extract_slice %{{.*}}[%[[R]]] [4] [1] : tensor<?xf32> to tensor<4xf32>
// CHECK:       moe.grouped_matmul block_rows(4) ins({{.*}}) scatter(%{{.*}}, %{{.*}} : tensor<4xi32>, tensor<4xf32>) outs(%{{.*}} : tensor<?x16xf32>)
func.func @scattering(%rows: tensor<?x16xf32>, %w: tensor<8x32x16xf32>,
                      %blocks: tensor<?xi32>, %targets: tensor<?xi32>,
                      %scales: tensor<?xf32>, %tokens: index) -> tensor<?x32xf32> {
  %zero = arith.constant 0.0 : f32
  %empty = tensor.empty(%tokens) : tensor<?x32xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%empty : tensor<?x32xf32>) -> tensor<?x32xf32>
  %r = moe.grouped_matmul block_rows(4)
      ins(%rows, %w, %blocks : tensor<?x16xf32>, tensor<8x32x16xf32>, tensor<?xi32>)
      scatter(%targets, %scales : tensor<?xi32>, tensor<?xf32>)
      outs(%acc : tensor<?x32xf32>) -> tensor<?x32xf32>
  return %r : tensor<?x32xf32>
}

// Atomic scattered adds: row blocks are parallel again, each a tile of its
// own whose init is every row in its columns (the tiles add to shared rows
// in place), and the fill stays before the forall: fused, each tile would
// zero the rows the others added to.
// CHECK-LABEL: func @atomic_scattering
// CHECK: %[[ZERO:.*]] = linalg.fill
// CHECK: scf.forall (%[[N:.*]], %[[BLK:.*]]) = (0, 0) to (32, %{{.*}}) step (16, 1) shared_outs(%[[OUT:.*]] = %[[ZERO]]) -> (tensor<?x32xf32>)
// CHECK-NOT: linalg.fill
// CHECK:   %[[SLICE:.*]] = tensor.extract_slice %[[OUT]][0, %[[N]]] [%{{.*}}, 16] [1, 1]
// CHECK:   scf.for
// CHECK:     moe.grouped_matmul block_rows(4) ins({{.*}}) scatter(%{{.*}}, %{{.*}} : tensor<4xi32>, tensor<4xf32>) atomic outs(%{{.*}} : tensor<?x16xf32>)
// GPU-LABEL: func @atomic_scattering
// GPU: scf.forall ({{.*}}) = (0, 0) to (32, %{{.*}}) step (16, 1)
// GPU: atomic
// GPU: } {mapping = [#gpu.block<y>, #gpu.block<x>]}
func.func @atomic_scattering(%rows: tensor<?x16xf32>, %w: tensor<8x32x16xf32>,
                             %blocks: tensor<?xi32>, %targets: tensor<?xi32>,
                             %scales: tensor<?xf32>, %tokens: index) -> tensor<?x32xf32> {
  %zero = arith.constant 0.0 : f32
  %empty = tensor.empty(%tokens) : tensor<?x32xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%empty : tensor<?x32xf32>) -> tensor<?x32xf32>
  %r = moe.grouped_matmul block_rows(4)
      ins(%rows, %w, %blocks : tensor<?x16xf32>, tensor<8x32x16xf32>, tensor<?xi32>)
      scatter(%targets, %scales : tensor<?xi32>, tensor<?xf32>) atomic
      outs(%acc : tensor<?x32xf32>) -> tensor<?x32xf32>
  return %r : tensor<?x32xf32>
}

// Unique targets: row blocks parallel as with atomic adds.
// GPU-LABEL: func @unique_scattering
// GPU: linalg.fill
// GPU: scf.forall ({{.*}}) = (0, 0) to (32, %{{.*}}) step (16, 1)
// GPU-NOT: linalg.fill
// GPU: unique
// GPU: } {mapping = [#gpu.block<y>, #gpu.block<x>]}
func.func @unique_scattering(%rows: tensor<?x16xf32>, %w: tensor<8x32x16xf32>,
                             %blocks: tensor<?xi32>, %targets: tensor<?xi32>,
                             %scales: tensor<?xf32>, %tokens: index) -> tensor<?x32xf32> {
  %zero = arith.constant 0.0 : f32
  %empty = tensor.empty(%tokens) : tensor<?x32xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%empty : tensor<?x32xf32>) -> tensor<?x32xf32>
  %r = moe.grouped_matmul block_rows(4)
      ins(%rows, %w, %blocks : tensor<?x16xf32>, tensor<8x32x16xf32>, tensor<?xi32>)
      scatter(%targets, %scales : tensor<?xi32>, tensor<?xf32>) unique
      outs(%acc : tensor<?x32xf32>) -> tensor<?x32xf32>
  return %r : tensor<?x32xf32>
}

// An epilogue needs whole sums: the domain is (row blocks, columns) and
// each tile spans all of K, with no depth loop whatever tile-k is; both
// weights are sliced by the tile's columns and the epilogue comes along.
// CHECK-LABEL: func @epilogue
// CHECK: scf.forall (%[[N:.*]], %[[BLK:.*]]) = (0, 0) to (32, %{{.*}}) step (16, 1)
// CHECK-NOT: scf.for
// CHECK:   %[[WG:.*]] = tensor.extract_slice %{{.*}}[0, %[[N]], 0] [8, 16, 16] [1, 1, 1] : tensor<8x32x16xf32> to tensor<8x16x16xf32>
// CHECK:   %[[WU:.*]] = tensor.extract_slice %{{.*}}[0, %[[N]], 0] [8, 16, 16] [1, 1, 1] : tensor<8x32x16xf32> to tensor<8x16x16xf32>
// CHECK:   moe.grouped_matmul block_rows(4) ins(%{{.*}}, %[[WG]], %{{.*}} : tensor<4x16xf32>, tensor<8x16x16xf32>, tensor<1xi32>) paired(%[[WU]] : tensor<8x16x16xf32>) outs(%{{.*}} : tensor<4x16xf32>) epilogue {
// CHECK:     arith.mulf
// CHECK:     moe.yield
// CHECK:   scf.forall.in_parallel
func.func @epilogue(%rows: tensor<?x16xf32>, %wg: tensor<8x32x16xf32>,
                    %wu: tensor<8x32x16xf32>, %blocks: tensor<?xi32>,
                    %acc: tensor<?x32xf32>) -> tensor<?x32xf32> {
  %r = moe.grouped_matmul block_rows(4)
      ins(%rows, %wg, %blocks : tensor<?x16xf32>, tensor<8x32x16xf32>, tensor<?xi32>)
      paired(%wu : tensor<8x32x16xf32>)
      outs(%acc : tensor<?x32xf32>) epilogue {
  ^bb0(%g: f32, %u: f32, %o: f32):
    %y = arith.mulf %g, %u : f32
    moe.yield %y : f32
  } -> tensor<?x32xf32>
  return %r : tensor<?x32xf32>
}

// Block-scaled weights (blocks of 32 columns x 12 depth): tile-n rounds up
// to 32 and tile-k to 12, whole scale blocks, and a tile takes 4 row blocks
// (the kernel stages an expert's FP8 panels once for its consecutive
// blocks); each tile slices the scale by its blocks of columns and depth.
// CHECK-LABEL: func @block_scaled
// CHECK: scf.forall (%[[N:.*]], %[[BLK:.*]]) = (0, 0) to (64, %{{.*}}) step (32, 4)
// CHECK:   %[[WN:.*]] = tensor.extract_slice %{{.*}}[0, %[[N]], 0] [8, 32, 30] [1, 1, 1] : tensor<8x64x30xf8E4M3FN> to tensor<8x32x30xf8E4M3FN>
// CHECK:   %[[NB:.*]] = affine.apply #{{.*}}(%[[N]])
// CHECK:   %[[SN:.*]] = tensor.extract_slice %{{.*}}[0, %[[NB]], 0] [8, 1, 3] [1, 1, 1] : tensor<8x2x3xf32> to tensor<8x1x3xf32>
// CHECK:   scf.for %[[K:.*]] = %{{.*}} to %c30 step %c12
// CHECK:     %[[W:.*]] = tensor.extract_slice %[[WN]][0, 0, %[[K]]] [8, 32, %{{.*}}] [1, 1, 1] : tensor<8x32x30xf8E4M3FN> to tensor<8x32x?xf8E4M3FN>
// CHECK:     %[[KB:.*]] = affine.apply #{{.*}}(%[[K]])
// CHECK:     %[[S:.*]] = tensor.extract_slice %[[SN]][0, 0, %[[KB]]] [8, 1, %{{.*}}] [1, 1, 1] : tensor<8x1x3xf32> to tensor<8x1x?xf32>
// CHECK:     moe.grouped_matmul block_rows(4) ins(%{{.*}}, %[[W]], %{{.*}} : tensor<?x?xf32>, tensor<8x32x?xf8E4M3FN>, tensor<?xi32>) scale(%[[S]] : tensor<8x1x?xf32>) block [32, 12] outs(
// NOK-LABEL: func @block_scaled
// NOK: scf.forall (%{{.*}}, %{{.*}}) = (0, 0) to (64, %{{.*}}) step (32, 4)
// NOK-NOT: scf.for
// NOK: tensor.extract_slice %{{.*}}[0, %{{.*}}, 0] [8, 1, 3] [1, 1, 1] : tensor<8x2x3xf32> to tensor<8x1x3xf32>
func.func @block_scaled(%rows: tensor<?x30xf32>, %w: tensor<8x64x30xf8E4M3FN>,
                        %s: tensor<8x2x3xf32>, %blocks: tensor<?xi32>,
                        %acc: tensor<?x64xf32>) -> tensor<?x64xf32> {
  %r = moe.grouped_matmul block_rows(4)
      ins(%rows, %w, %blocks : tensor<?x30xf32>, tensor<8x64x30xf8E4M3FN>, tensor<?xi32>)
      scale(%s : tensor<8x2x3xf32>) block [32, 12]
      outs(%acc : tensor<?x64xf32>) -> tensor<?x64xf32>
  return %r : tensor<?x64xf32>
}

// A dense grouped matmul (no block ids: one expert's rows, the last block
// partly filled): ceil(R / BM) row blocks, each tile's rows stopping at R
// (the rows init and input both hold).
// CHECK-LABEL: func @dense
// CHECK: %[[R:.*]] = tensor.dim %{{.*}}, %c0 : tensor<?x32xf32>
// CHECK: %[[B:.*]] = arith.ceildivui %[[R]], %c4
// CHECK: scf.forall (%[[N:.*]], %[[BLK:.*]]) = (0, 0) to (32, %[[B]]) step (16, 1)
// CHECK:   %[[FIRST:.*]] = affine.apply #[[$ROW]](%[[BLK]])
// CHECK:   %[[ROWS:.*]] = affine.min #{{.*}}(%[[BLK]], %{{.*}})
// CHECK:   tensor.extract_slice %{{.*}}[%[[FIRST]], 0] [%[[ROWS]], 16] [1, 1] : tensor<?x16xf32> to tensor<?x16xf32>
// CHECK:   scf.for
// CHECK:     moe.grouped_matmul block_rows(4) ins(%{{.*}}, %{{.*}} : tensor<?x8xf32>, tensor<1x16x8xbf16>) exact_products outs(%{{.*}} : tensor<?x16xf32>)
func.func @dense(%rows: tensor<?x16xf32>, %w: tensor<1x32x16xbf16>,
                 %acc: tensor<?x32xf32>) -> tensor<?x32xf32> {
  %r = moe.grouped_matmul block_rows(4)
      ins(%rows, %w : tensor<?x16xf32>, tensor<1x32x16xbf16>) exact_products
      outs(%acc : tensor<?x32xf32>) -> tensor<?x32xf32>
  return %r : tensor<?x32xf32>
}
