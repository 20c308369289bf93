// RUN: moe-opt %s --split-input-file --moe-lower-grouped-matmul-to-mma | FileCheck %s

// bf16 weights, blocks of 16 rows: per block, 8 columns and 16 depths at a
// time, one m16n8k16 mma.sync on bf16 pairs (row-major A, column-major B)
// with f32 accumulators carried over the depth; lane l gathers rows l / 4
// and l / 4 + 8 of its block (through the row sources), depths
// 2 (l % 4) (+ 8), and writes its four sums once, added to the outputs.
// CHECK-LABEL: func @bf16
// CHECK: gpu.launch
// CHECK-SAME: threads(%[[LANE:[a-z0-9]+]],
// CHECK: %[[GROUP:.*]] = arith.divui %[[LANE]], %c4
// CHECK: %[[QUAD:.*]] = arith.remui %[[LANE]], %c4
// CHECK: %[[PAIR:.*]] = arith.muli %[[QUAD]], %c2
// CHECK: scf.for %[[BLOCK:.*]] = %c0{{.*}} to %{{.*}} step %c1
// CHECK:   memref.load %{{.*}}[%[[BLOCK]]] : memref<1xi32
// CHECK:   scf.if
// CHECK:     memref.load %{{.*}} : memref<16xi32
// CHECK:     scf.for %[[COL:.*]] = %c0{{.*}} to %{{.*}} step %c8
// Four steps' fragments are gathered before their four mmas (a warp keeps
// four steps' loads in flight), then the steps left one at a time.
// CHECK:       %[[GROUPED:.*]]:4 = scf.for %{{.*}} = %c0{{.*}} to %[[WHOLE:.*]] step %c64{{.*}} iter_args(
// CHECK-NOT: nvvm.mma.sync
// CHECK:         memref.load %{{.*}} : memref<4x32x16xbf16>
// CHECK-NOT: nvvm.mma.sync
// CHECK:         memref.load %{{.*}} : memref<4x32x16xbf16>
// CHECK-NOT: nvvm.mma.sync
// CHECK:         memref.load %{{.*}} : memref<4x32x16xbf16>
// CHECK-NOT: nvvm.mma.sync
// CHECK:         memref.load %{{.*}} : memref<4x32x16xbf16>
// CHECK-NOT: nvvm.mma.sync
// CHECK:         memref.load %{{.*}} : memref<4x32x16xbf16>
// CHECK-NOT: nvvm.mma.sync
// CHECK:         memref.load %{{.*}} : memref<4x32x16xbf16>
// CHECK-NOT: nvvm.mma.sync
// CHECK:         memref.load %{{.*}} : memref<4x32x16xbf16>
// CHECK-NOT: nvvm.mma.sync
// CHECK:         memref.load %{{.*}} : memref<4x32x16xbf16>
// CHECK-NOT: nvvm.mma.sync
// CHECK:         memref.load %{{.*}} : memref<4x32x16xbf16>
// CHECK-NOT: nvvm.mma.sync
// CHECK:         memref.load %{{.*}} : memref<4x32x16xbf16>
// CHECK-NOT: nvvm.mma.sync
// CHECK:         memref.load %{{.*}} : memref<4x32x16xbf16>
// CHECK-NOT: nvvm.mma.sync
// CHECK:         memref.load %{{.*}} : memref<4x32x16xbf16>
// CHECK-NOT: nvvm.mma.sync
// CHECK:         memref.load %{{.*}} : memref<4x32x16xbf16>
// CHECK-NOT: nvvm.mma.sync
// CHECK:         memref.load %{{.*}} : memref<4x32x16xbf16>
// CHECK-NOT: nvvm.mma.sync
// CHECK:         memref.load %{{.*}} : memref<4x32x16xbf16>
// CHECK-NOT: nvvm.mma.sync
// CHECK:         memref.load %{{.*}} : memref<4x32x16xbf16>
// CHECK-NOT: memref.load %{{.*}} : memref<4x32x16xbf16>
// CHECK-COUNT-4: nvvm.mma.sync
// CHECK:       %[[SUMS:.*]]:4 = scf.for %{{.*}} = %[[WHOLE]] to %{{.*}} step %c16{{.*}} iter_args(%{{.*}} = %[[GROUPED]]#0,
// CHECK:         arith.truncf %{{.*}} : f32 to bf16
// CHECK:         arith.shli %{{.*}}, %c16_i32
// CHECK:         memref.load %{{.*}} : memref<4x32x16xbf16>
// CHECK:         %[[MMA:.*]] = nvvm.mma.sync A[%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}] B[%{{.*}}, %{{.*}}] C[%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}] {layoutA = #nvvm.mma_layout<row>, layoutB = #nvvm.mma_layout<col>, multiplicandAPtxType = #nvvm.mma_type<bf16>, multiplicandBPtxType = #nvvm.mma_type<bf16>, shape = #nvvm.shape<m = 16, n = 8, k = 16>} : (i32, i32, f32) -> !llvm.struct<(f32, f32, f32, f32)>
// CHECK:         llvm.extractvalue %[[MMA]][3]
// CHECK-COUNT-4: arith.addf %{{.*}}, %[[SUMS]]#{{[0-3]}} : f32
// CHECK-NOT: gpu.barrier
// CHECK-NOT: moe.grouped_matmul
func.func @bf16(%x: memref<?x16xf32>, %w: memref<4x32x16xbf16>,
                %experts: memref<1xi32>, %sources: memref<16xi32>,
                %y: memref<16x32xf32>) {
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c32, %sy = %c1, %sz = %c1) {
    moe.grouped_matmul block_rows(16)
        ins(%x, %w, %experts : memref<?x16xf32>, memref<4x32x16xbf16>, memref<1xi32>)
        row_sources(%sources : memref<16xi32>)
        outs(%y : memref<16x32xf32>)
    gpu.terminator
  }
  return
}

// -----

// f16 weights: the pairs are f16 vectors, the inputs saturated to the
// f16 range and rounded to f16.
// CHECK-LABEL: func @f16
// CHECK: arith.minimumf %{{.*}}, %cst{{.*}} : f32
// CHECK: arith.maximumf
// CHECK: arith.truncf %{{.*}} : f32 to f16
// CHECK: llvm.bitcast %{{.*}} : i32 to vector<2xf16>
// CHECK: nvvm.mma.sync {{.*}}shape = #nvvm.shape<m = 16, n = 8, k = 16>} : (vector<2xf16>, vector<2xf16>, f32)
func.func @f16(%x: memref<32x8xf32>, %w: memref<2x8x8xf16>,
               %experts: memref<2xi32>, %y: memref<32x8xf32>) {
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c32, %sy = %c1, %sz = %c1) {
    moe.grouped_matmul block_rows(16)
        ins(%x, %w, %experts : memref<32x8xf32>, memref<2x8x8xf16>, memref<2xi32>)
        outs(%y : memref<32x8xf32>)
    gpu.terminator
  }
  return
}

// -----

// Gate and up in one pass over K: two mma.sync per step sharing the A
// fragment, the epilogue applied to each pair of sums (its result stored,
// not added).
// CHECK-LABEL: func @paired_epilogue
// CHECK: scf.for {{.*}} step %c64
// CHECK: %[[SUMS:.*]]:8 = scf.for {{.*}} step %c16
// CHECK-COUNT-2: nvvm.mma.sync
// CHECK: scf.yield
// CHECK: scf.if
// CHECK:   %[[OLD:.*]] = memref.load %{{.*}} : memref<16x8xf32>
// CHECK:   %[[NEG:.*]] = arith.negf %[[SUMS]]#0
// CHECK:   math.exp %[[NEG]]
// CHECK:   arith.mulf %{{.*}}, %[[SUMS]]#4
// CHECK:   memref.store
func.func @paired_epilogue(%x: memref<16x8xf32>, %wg: memref<2x8x8xbf16>,
                           %wu: memref<2x8x8xbf16>, %experts: memref<1xi32>,
                           %y: memref<16x8xf32>) {
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c32, %sy = %c1, %sz = %c1) {
    moe.grouped_matmul block_rows(16)
        ins(%x, %wg, %experts : memref<16x8xf32>, memref<2x8x8xbf16>, memref<1xi32>)
        paired(%wu : memref<2x8x8xbf16>)
        outs(%y : memref<16x8xf32>)
        epilogue {
        ^bb0(%g: f32, %u: f32, %old: f32):
          %one = arith.constant 1.0 : f32
          %n = arith.negf %g : f32
          %e = math.exp %n : f32
          %d = arith.addf %one, %e : f32
          %s = arith.divf %g, %d : f32
          %r = arith.mulf %s, %u : f32
          moe.yield %r : f32
        }
    gpu.terminator
  }
  return
}

// -----

// bf16 rows in and out: the A fragment loads bf16 and keeps it; the
// epilogue's old element is widened to f32 and its value rounded to bf16
// as it is stored.
// CHECK-LABEL: func @bf16_rows
// CHECK: memref.load %{{.*}} : memref<16x8xbf16>
// CHECK: nvvm.mma.sync
// CHECK: scf.for {{.*}} step %c16
// CHECK: nvvm.mma.sync
// CHECK-NEXT: llvm.extractvalue
// CHECK: scf.yield
// A lane's two adjacent columns are written together: one 4-byte vector
// store where aligned (the second's old element read from its column, or
// from the first's where it is past the columns), else one element each.
// CHECK: scf.if
// CHECK:   %[[OLD:.*]] = memref.load %{{.*}} : memref<16x8xbf16>
// CHECK:   arith.extf %[[OLD]] : bf16 to f32
// CHECK:   %[[SECONDCOL:.*]] = arith.select
// CHECK:   %[[OLD2:.*]] = memref.load %{{.*}}[%{{.*}}, %[[SECONDCOL]]] : memref<16x8xbf16>
// CHECK:   arith.extf %[[OLD2]] : bf16 to f32
// CHECK:   arith.truncf %{{.*}} : vector<2xf32> to vector<2xbf16>
// CHECK:   vector.store %{{.*}} {alignment = 4 : i64} : memref<16x8xbf16>, vector<2xbf16>
// CHECK: } else {
// CHECK:   %[[V:.*]] = arith.truncf %{{.*}} : f32 to bf16
// CHECK:   memref.store %[[V]], %{{.*}} : memref<16x8xbf16>
func.func @bf16_rows(%x: memref<16x8xbf16>, %w: memref<2x8x8xbf16>,
                     %experts: memref<1xi32>, %y: memref<16x8xbf16>) {
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c32, %sy = %c1, %sz = %c1) {
    moe.grouped_matmul block_rows(16)
        ins(%x, %w, %experts : memref<16x8xbf16>, memref<2x8x8xbf16>, memref<1xi32>)
        outs(%y : memref<16x8xbf16>)
        epilogue {
        ^bb0(%s: f32, %old: f32):
          %r = arith.addf %s, %old : f32
          moe.yield %r : f32
        }
    gpu.terminator
  }
  return
}

// -----

// Outputs whose columns may not be adjacent (a dynamic innermost stride):
// no vector access, each element of a pair added on its own.
// CHECK-LABEL: func @strided_columns
// CHECK: nvvm.mma.sync
// CHECK-NOT: vector.load
// CHECK-NOT: vector.store
// CHECK: memref.load %{{.*}} : memref<16x32xf32, strided<[?, ?], offset: ?>>
// CHECK: arith.addf
// CHECK: memref.store %{{.*}} : memref<16x32xf32, strided<[?, ?], offset: ?>>
// CHECK: scf.if
// CHECK:   memref.load %{{.*}} : memref<16x32xf32, strided<[?, ?], offset: ?>>
// CHECK:   arith.addf
// CHECK:   memref.store %{{.*}} : memref<16x32xf32, strided<[?, ?], offset: ?>>
// CHECK-NOT: vector.load
// CHECK-NOT: vector.store
// CHECK: gpu.terminator
func.func @strided_columns(%x: memref<16x16xf32>, %w: memref<4x32x16xbf16>,
                           %experts: memref<1xi32>,
                           %y: memref<16x32xf32, strided<[?, ?], offset: ?>>) {
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c32, %sy = %c1, %sz = %c1) {
    moe.grouped_matmul block_rows(16)
        ins(%x, %w, %experts : memref<16x16xf32>, memref<4x32x16xbf16>, memref<1xi32>)
        outs(%y : memref<16x32xf32, strided<[?, ?], offset: ?>>)
    gpu.terminator
  }
  return
}

// -----

// Rows scattered to the tokens, times their scales: the blocks, which may
// add to the same outputs, one after another with a barrier between them.
// CHECK-LABEL: func @scatter
// CHECK: scf.for
// CHECK:   nvvm.mma.sync
// CHECK:   memref.load %{{.*}} : memref<32xi32>
// CHECK:   memref.load %{{.*}} : memref<32xf32>
// CHECK:   scf.if
// CHECK:     arith.mulf
// CHECK:     arith.mulf
// CHECK:     vector.load %{{.*}} {alignment = 8 : i64} : memref<?x8xf32>, vector<2xf32>
// CHECK:     arith.addf %{{.*}} : vector<2xf32>
// CHECK:   gpu.barrier
func.func @scatter(%x: memref<32x8xf32>, %w: memref<2x8x8xbf16>,
                   %experts: memref<2xi32>, %targets: memref<32xi32>,
                   %scales: memref<32xf32>, %y: memref<?x8xf32>) {
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c32, %sy = %c1, %sz = %c1) {
    moe.grouped_matmul block_rows(16)
        ins(%x, %w, %experts : memref<32x8xf32>, memref<2x8x8xbf16>, memref<2xi32>)
        scatter(%targets, %scales : memref<32xi32>, memref<32xf32>)
        outs(%y : memref<?x8xf32>)
    gpu.terminator
  }
  return
}

// -----

// Atomic scattered adds: no barrier between the blocks.
// CHECK-LABEL: func @atomic_scatter
// CHECK: scf.for
// CHECK:   nvvm.mma.sync
// CHECK:   scf.if
// CHECK:     %[[TERM:.*]] = arith.mulf
// CHECK:     %[[TERM2:.*]] = arith.mulf
// CHECK-NOT: vector.load
// CHECK:     memref.atomic_rmw addf %[[TERM]]
// CHECK:     memref.atomic_rmw addf %[[TERM2]]
// CHECK-NOT: gpu.barrier
// CHECK: gpu.terminator
func.func @atomic_scatter(%x: memref<32x8xf32>, %w: memref<2x8x8xbf16>,
                          %experts: memref<2xi32>, %targets: memref<32xi32>,
                          %scales: memref<32xf32>, %y: memref<?x8xf32>) {
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c32, %sy = %c1, %sz = %c1) {
    moe.grouped_matmul block_rows(16)
        ins(%x, %w, %experts : memref<32x8xf32>, memref<2x8x8xbf16>, memref<2xi32>)
        scatter(%targets, %scales : memref<32xi32>, memref<32xf32>) atomic
        outs(%y : memref<?x8xf32>)
    gpu.terminator
  }
  return
}

// -----

// Block-scaled FP8 whose depth blocks are whole mma steps: the tensor
// cores multiply the exact e4m3 values (bf16 numbers), each depth block's
// sums then added times the scale of the block of each accumulator's
// column.
// CHECK-LABEL: func @fp8
// CHECK: %[[TOTAL:.*]]:4 = scf.for %[[KB:.*]] = %c0{{.*}} to %{{.*}} step %c128{{.*}} iter_args(
// CHECK:   %[[GROUPED:.*]]:4 = scf.for %{{.*}} = %[[KB]] to %[[WHOLE:.*]] step %c64{{.*}} iter_args(
// CHECK:     memref.load %{{.*}} : memref<2x8x16xf8E4M3FN>
// CHECK:     arith.extf %{{.*}} : f8E4M3FN to f32
// CHECK-NOT: memref.load %{{.*}} : memref<2x1x1xf32>
// CHECK:     nvvm.mma.sync {{.*}}#nvvm.mma_type<bf16>
// CHECK:   %[[PART:.*]]:4 = scf.for %{{.*}} = %[[WHOLE]] to %{{.*}} step %c16{{.*}} iter_args(%{{.*}} = %[[GROUPED]]#0,
// CHECK-NOT: memref.load %{{.*}} : memref<2x1x1xf32>
// CHECK:     nvvm.mma.sync {{.*}}#nvvm.mma_type<bf16>
// CHECK:   %[[SCALE:.*]] = memref.load %{{.*}} : memref<2x1x1xf32>
// CHECK:   %[[SCALED:.*]] = arith.mulf %[[SCALE]], %[[PART]]#0
// CHECK:   arith.addf %{{.*}}, %[[SCALED]]
func.func @fp8(%x: memref<16x16xf32>, %w: memref<2x8x16xf8E4M3FN>,
               %s: memref<2x1x1xf32>, %experts: memref<1xi32>,
               %y: memref<16x8xf32>) {
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c32, %sy = %c1, %sz = %c1) {
    moe.grouped_matmul block_rows(16)
        ins(%x, %w, %experts : memref<16x16xf32>, memref<2x8x16xf8E4M3FN>, memref<1xi32>)
        scale(%s : memref<2x1x1xf32>) block [128, 128]
        outs(%y : memref<16x8xf32>)
    gpu.terminator
  }
  return
}

// -----

// f32 weights stay f32, on the CUDA cores: each lane computes whole
// columns of each block (the scalar implementation), 32 columns apart.
// CHECK-LABEL: func @f32
// CHECK-SAME: %[[Y:[a-z0-9]+]]: memref<8x40xf32>
// CHECK: gpu.launch
// CHECK-SAME: threads(%[[LANE:[a-z0-9]+]],
// CHECK: scf.for %{{.*}} = %c0{{.*}} to %{{.*}} step %c1
// CHECK:   scf.for %[[COL:.*]] = %[[LANE]] to %{{.*}} step %c32
// CHECK:     scf.for %{{.*}} = %c0{{.*}} to %{{.*}} step %c1
// CHECK:       arith.mulf
// CHECK:       memref.store %{{.*}}, %[[Y]][%{{.*}}, %[[COL]]]
// CHECK-NOT: nvvm.mma.sync
func.func @f32(%x: memref<8x4xf32>, %w: memref<2x40x4xf32>,
               %experts: memref<1xi32>, %y: memref<8x40xf32>) {
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c32, %sy = %c1, %sz = %c1) {
    moe.grouped_matmul block_rows(8)
        ins(%x, %w, %experts : memref<8x4xf32>, memref<2x40x4xf32>, memref<1xi32>)
        outs(%y : memref<8x40xf32>)
    gpu.terminator
  }
  return
}

// -----

// f32 weights of an atomic scatter on the CUDA cores: each filled row's
// sum over the depth in a register, then one atomic add of it times the
// row's scale (not one per product).
// CHECK-LABEL: func @f32_atomic_scatter
// CHECK: scf.for %[[COL:.*]] = %{{.*}} to %{{.*}} step %c32
// CHECK:   scf.if
// CHECK:     scf.for %{{.*}} = %c0{{.*}} to %{{.*}} step %c1
// CHECK:       %[[SUM:.*]] = scf.for %{{.*}} iter_args(%[[ACC:.*]] = %{{.*}}) -> (f32)
// CHECK:         arith.mulf
// CHECK-NOT:     memref.atomic_rmw
// CHECK:         scf.yield
// CHECK:       %[[TERM:.*]] = arith.mulf %{{.*}}, %[[SUM]]
// CHECK:       memref.atomic_rmw addf %[[TERM]], %{{.*}}[%{{.*}}, %[[COL]]]
// CHECK-NOT: gpu.barrier
func.func @f32_atomic_scatter(%x: memref<8x4xf32>, %w: memref<2x40x4xf32>,
                              %experts: memref<1xi32>, %targets: memref<8xi32>,
                              %scales: memref<8xf32>, %y: memref<?x40xf32>) {
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c32, %sy = %c1, %sz = %c1) {
    moe.grouped_matmul block_rows(8)
        ins(%x, %w, %experts : memref<8x4xf32>, memref<2x40x4xf32>, memref<1xi32>)
        scatter(%targets, %scales : memref<8xi32>, memref<8xf32>) atomic
        outs(%y : memref<?x40xf32>)
    gpu.terminator
  }
  return
}

// -----

// Depth blocks that are not whole mma steps (here 20): each weight is
// decoded and scaled in f32, rounded to bf16 for the tensor cores.
// CHECK-LABEL: func @fp8_odd_blocks
// CHECK: scf.for %{{.*}} step %c16{{.*}} iter_args(
// CHECK:   memref.load %{{.*}} : memref<2x8x40xf8E4M3FN>
// CHECK:   arith.extf %{{.*}} : f8E4M3FN to f32
// CHECK:   memref.load %{{.*}} : memref<2x8x2xf32>
// CHECK:   arith.mulf
// CHECK:   nvvm.mma.sync
func.func @fp8_odd_blocks(%x: memref<16x40xf32>, %w: memref<2x8x40xf8E4M3FN>,
                          %s: memref<2x8x2xf32>, %experts: memref<1xi32>,
                          %y: memref<16x8xf32>) {
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c32, %sy = %c1, %sz = %c1) {
    moe.grouped_matmul block_rows(16)
        ins(%x, %w, %experts : memref<16x40xf32>, memref<2x8x40xf8E4M3FN>, memref<1xi32>)
        scale(%s : memref<2x8x2xf32>) block [1, 20]
        outs(%y : memref<16x8xf32>)
    gpu.terminator
  }
  return
}

// -----

// Blocks of a warpgroup (128 threads, as mma=wgmma launches tiles) for an
// op the wgmma lowering left: the CUDA cores, each thread whole columns,
// the threads 128 columns apart.
// CHECK-LABEL: func @warpgroup_cuda_cores
// CHECK: gpu.launch
// CHECK-SAME: threads(%[[TID:[a-z0-9]+]],
// CHECK: scf.for %{{.*}} = %[[TID]] to %{{.*}} step %c128
// CHECK-NOT: nvvm.mma.sync
func.func @warpgroup_cuda_cores(%x: memref<64x8xf32>, %w: memref<2x8x8xf32>,
                                %experts: memref<1xi32>, %y: memref<64x8xf32>) {
  %c1 = arith.constant 1 : index
  %c128 = arith.constant 128 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c128, %sy = %c1, %sz = %c1) {
    moe.grouped_matmul block_rows(64)
        ins(%x, %w, %experts : memref<64x8xf32>, memref<2x8x8xf32>, memref<1xi32>)
        outs(%y : memref<64x8xf32>)
    gpu.terminator
  }
  return
}

// -----

// Block-scaled weights in 64-row blocks of a warpgroup (as mma=wgmma
// launches tiles; its lowering leaves them): each warp (thread / 32) takes
// 16-row slices of the block's filled ones times groups of 8 columns, in
// turns (slices fastest), the fragments from its lane (thread % 32).
// CHECK-LABEL: func @warpgroup_fp8
// CHECK: gpu.launch
// CHECK-SAME: threads(%[[TID:[a-z0-9]+]],
// CHECK: %[[WARP:.*]] = arith.divui %[[TID]], %c32
// CHECK: %[[LANE:.*]] = arith.remui %[[TID]], %c32
// CHECK: arith.divui %[[LANE]], %c4
// CHECK: arith.remui %[[LANE]], %c4
// CHECK: scf.for %[[BLOCK:.*]] = %c0{{.*}} to %{{.*}} step %c1
// CHECK:   %[[SLICES:.*]] = arith.ceildivui %{{.*}}, %c16
// CHECK:   %[[FILLED:.*]] = arith.minui %[[SLICES]], %c4
// CHECK:   %[[ITEMS:.*]] = arith.muli %[[FILLED]], %{{.*}}
// CHECK:   scf.for %[[ITEM:.*]] = %[[WARP]] to %[[ITEMS]] step %c4
// CHECK:     %[[SLICE:.*]] = arith.remui %[[ITEM]], %[[FILLED]]
// CHECK:     arith.divui %[[ITEM]], %[[FILLED]]
// CHECK:     arith.muli %[[SLICE]], %c16
// CHECK:     nvvm.mma.sync {{.*}}#nvvm.mma_type<bf16>
// CHECK-NOT: moe.grouped_matmul
func.func @warpgroup_fp8(%x: memref<64x256xf32>, %w: memref<2x64x256xf8E4M3FN>,
                         %s: memref<2x1x2xf32>, %experts: memref<1xi32>,
                         %sizes: memref<1xi32>, %y: memref<64x64xf32>) {
  %c1 = arith.constant 1 : index
  %c128 = arith.constant 128 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c128, %sy = %c1, %sz = %c1) {
    moe.grouped_matmul block_rows(64)
        ins(%x, %w, %experts : memref<64x256xf32>, memref<2x64x256xf8E4M3FN>, memref<1xi32>)
        block_sizes(%sizes : memref<1xi32>)
        scale(%s : memref<2x1x2xf32>) block [128, 128]
        outs(%y : memref<64x64xf32>)
    gpu.terminator
  }
  return
}

// -----

// 16-row blocks in a block of 4 warps: one slice, the warps taking the
// groups of 8 columns in turns (warp w from column 8 w, 32 apart).
// CHECK-LABEL: func @warps_one_slice
// CHECK: gpu.launch
// CHECK-SAME: threads(%[[TID:[a-z0-9]+]],
// CHECK: %[[WARP:.*]] = arith.divui %[[TID]], %c32
// CHECK: %[[FIRST:.*]] = arith.muli %[[WARP]], %c8
// CHECK: scf.for %{{.*}} = %[[FIRST]] to %{{.*}} step %c32
// CHECK:   nvvm.mma.sync
func.func @warps_one_slice(%x: memref<16x16xf32>, %w: memref<2x64x16xbf16>,
                           %experts: memref<1xi32>, %y: memref<16x64xf32>) {
  %c1 = arith.constant 1 : index
  %c128 = arith.constant 128 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c128, %sy = %c1, %sz = %c1) {
    moe.grouped_matmul block_rows(16)
        ins(%x, %w, %experts : memref<16x16xf32>, memref<2x64x16xbf16>, memref<1xi32>)
        outs(%y : memref<16x64xf32>)
    gpu.terminator
  }
  return
}

// -----

// Exact products: f32 rows by bf16 weights on the tensor cores, once over
// K per bf16 term of the rows (three loops of mma.sync carrying the same
// sums, the lowest term first), each element's term stored as its upper
// 16 bits (no rounding conversion); f32 rows by f16 weights on the CUDA
// cores (each lane whole columns of the block), which f16 tensor cores
// would round.
// CHECK-LABEL: func @exact
// CHECK: gpu.launch
// CHECK-NOT: arith.truncf
// CHECK: %[[G1:.*]]:4 = scf.for %{{.*}} step %c64
// CHECK:   arith.andi %{{.*}}, %c-65536_i32
// CHECK:   arith.subf
// CHECK:   arith.shrui %{{.*}}, %c16_i32
// CHECK:   nvvm.mma.sync {{.*}}multiplicandAPtxType = #nvvm.mma_type<bf16>
// CHECK: %[[FIRST:.*]]:4 = scf.for %{{.*}} step %c16{{.*}} iter_args(%{{.*}} = %[[G1]]#0,
// CHECK:   nvvm.mma.sync
// CHECK: %[[G2:.*]]:4 = scf.for %{{.*}} step %c64{{.*}} iter_args(%{{.*}} = %[[FIRST]]#0,
// CHECK:   nvvm.mma.sync
// CHECK: %[[SECOND:.*]]:4 = scf.for %{{.*}} step %c16{{.*}} iter_args(%{{.*}} = %[[G2]]#0,
// CHECK:   nvvm.mma.sync
// CHECK: %[[G3:.*]]:4 = scf.for %{{.*}} step %c64{{.*}} iter_args(%{{.*}} = %[[SECOND]]#0,
// CHECK:   nvvm.mma.sync
// CHECK: scf.for %{{.*}} step %c16{{.*}} iter_args(%{{.*}} = %[[G3]]#0,
// CHECK:   nvvm.mma.sync
// CHECK-NOT: arith.truncf
// CHECK: gpu.launch
// CHECK-SAME: threads(%[[LANE:[a-z0-9]+]],
// CHECK: scf.for %{{.*}} = %[[LANE]] to %{{.*}} step %c32
// CHECK:   arith.mulf
// CHECK-NOT: nvvm.mma.sync
// CHECK: gpu.launch
// CHECK: nvvm.mma.sync
func.func @exact(%x: memref<16x16xf32>, %xb: memref<16x16xbf16>,
                 %w: memref<2x32x16xbf16>, %wh: memref<2x32x16xf16>,
                 %experts: memref<1xi32>, %y: memref<16x32xf32>) {
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c32, %sy = %c1, %sz = %c1) {
    moe.grouped_matmul block_rows(16)
        ins(%x, %w, %experts : memref<16x16xf32>, memref<2x32x16xbf16>, memref<1xi32>)
        exact_products
        outs(%y : memref<16x32xf32>)
    gpu.terminator
  }
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c32, %sy = %c1, %sz = %c1) {
    moe.grouped_matmul block_rows(16)
        ins(%x, %wh, %experts : memref<16x16xf32>, memref<2x32x16xf16>, memref<1xi32>)
        exact_products
        outs(%y : memref<16x32xf32>)
    gpu.terminator
  }
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c32, %sy = %c1, %sz = %c1) {
    moe.grouped_matmul block_rows(16)
        ins(%xb, %w, %experts : memref<16x16xbf16>, memref<2x32x16xbf16>, memref<1xi32>)
        exact_products
        outs(%y : memref<16x32xf32>)
    gpu.terminator
  }
  return
}

// -----

// Dense (no block ids): ceil(R / 16) blocks of the one expert (no id
// loaded), each block's filled rows those left from its first row.
// CHECK-LABEL: func @dense
// CHECK: %[[R:.*]] = memref.dim %{{.*}}, %{{.*}} : memref<?x16xf32>
// CHECK: arith.ceildivui %[[R]], %{{.*}} : index
// CHECK-NOT: memref.load %{{.*}} : memref<{{.*}}xi32>
// CHECK: scf.for %[[BLK:[a-z0-9_]+]] = %{{.*}} to %{{.*}} step
// CHECK:   scf.if %true
// CHECK:     %[[RS:.*]] = arith.minui %{{.*}}, %{{.*}} : index
// CHECK:     %[[FIRST:.*]] = arith.muli %[[BLK]], %{{.*}} : index
// CHECK:     %[[PAST:.*]] = arith.maxui %[[RS]], %[[FIRST]]
// CHECK:     %[[LEFT:.*]] = arith.subi %[[PAST]], %[[FIRST]]
// CHECK:     arith.minui %[[LEFT]], %{{.*}} : index
// CHECK:     nvvm.mma.sync
func.func @dense(%x: memref<?x32xf32>, %w: memref<1x16x32xbf16>, %y: memref<?x16xf32>) {
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c32, %sy = %c1, %sz = %c1) {
    moe.grouped_matmul block_rows(16)
        ins(%x, %w : memref<?x32xf32>, memref<1x16x32xbf16>)
        exact_products
        outs(%y : memref<?x16xf32>)
    gpu.terminator
  }
  return
}
