// RUN: moe-opt %s --split-input-file --moe-jam-parallel-reductions="factor=2 min-trips=64" | FileCheck %s
// RUN: moe-opt %s --split-input-file --moe-jam-parallel-reductions="factor=1" | FileCheck %s --check-prefix=OFF

// The router's matmul (as moe-hoist-loop-accumulators leaves it, its
// output zeroed first): from 64 tokens on, iteration (t, e) runs the
// 2 x 2 tile of linear index t * 8 + e, if there is one, in one reduction
// loop carrying 4 sums, each summed in its own order; iterations past T
// compute token T - 1's values and write nothing. Below 64 tokens each
// iteration runs its own body.
// CHECK-LABEL: func @router
// CHECK: %[[TILES_T:.*]] = arith.ceildivui %{{.*}}, %c2
// CHECK: %[[TILES_E:.*]] = arith.ceildivui %{{.*}}, %c2
// CHECK: %[[WIDE:.*]] = arith.cmpi sge, %{{.*}}, %c64
// CHECK: %[[TILES:.*]] = arith.muli %[[TILES_T]], %[[TILES_E]]
// CHECK: scf.parallel (%[[T:.*]], %[[E:.*]]) = (%c0, %c0) to (%[[N:.*]], %c8)
// CHECK:   scf.if %[[WIDE]] {
// CHECK:     %[[LINEAR:.*]] = arith.addi
// CHECK:     %[[IS_TILE:.*]] = arith.cmpi ult, %[[LINEAR]], %[[TILES]]
// CHECK:     scf.if %[[IS_TILE]] {
// CHECK:       %[[TT:.*]] = arith.divui %[[LINEAR]], %[[TILES_E]]
// CHECK:       %[[TE:.*]] = arith.remui %[[LINEAR]], %[[TILES_E]]
// CHECK:       arith.minsi
// CHECK:       scf.if
// CHECK:         memref.store %{{.*}}, %[[ACC:.*]][
// CHECK-COUNT-4: memref.load %[[ACC]][
// CHECK:       %[[SUMS:.*]]:4 = scf.for %{{.*}} = %c0 to %c64 step %c1 iter_args(%[[S0:.*]] = %{{.*}}, %[[S1:.*]] = %{{.*}}, %[[S2:.*]] = %{{.*}}, %[[S3:.*]] = %{{.*}}) -> (f32, f32, f32, f32) {
// CHECK-COUNT-4: arith.addf
// CHECK:         scf.yield
// CHECK:       scf.if
// CHECK:         memref.store %[[SUMS]]#0, %[[ACC]]
// CHECK:       scf.if
// CHECK:         memref.store %[[SUMS]]#1, %[[ACC]]
// CHECK:       scf.if
// CHECK:         memref.store %[[SUMS]]#2, %[[ACC]]
// CHECK:       scf.if
// CHECK:         memref.store %[[SUMS]]#3, %[[ACC]]
// CHECK:   } else {
// CHECK:     memref.store %{{.*}}, %[[ACC]][%[[T]], %[[E]]]
// CHECK:     %[[SUM:.*]] = scf.for {{.*}} -> (f32)
// CHECK:     memref.store %[[SUM]], %[[ACC]][%[[T]], %[[E]]]
// OFF-LABEL: func @router
// OFF-NOT: scf.if
func.func @router(%x: memref<?x64xf32>, %w: memref<8x64xf32>, %t: index) -> memref<?x8xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %c64 = arith.constant 64 : index
  %zero = arith.constant 0.0 : f32
  %acc = memref.alloc(%t) : memref<?x8xf32>
  scf.parallel (%i, %j) = (%c0, %c0) to (%t, %c8) step (%c1, %c1) {
    memref.store %zero, %acc[%i, %j] : memref<?x8xf32>
    %init = memref.load %acc[%i, %j] : memref<?x8xf32>
    %sum = scf.for %k = %c0 to %c64 step %c1 iter_args(%c = %init) -> (f32) {
      %a = memref.load %x[%i, %k] : memref<?x64xf32>
      %b = memref.load %w[%j, %k] : memref<8x64xf32>
      %p = arith.mulf %a, %b : f32
      %s = arith.addf %c, %p : f32
      scf.yield %s : f32
    }
    memref.store %sum, %acc[%i, %j] : memref<?x8xf32>
    scf.reduce
  }
  return %acc : memref<?x8xf32>
}

// -----

// Left alone: every load depends on both dimensions (nothing to share), a
// one-dimensional loop, and a reduction that stores.
// CHECK-LABEL: func @left_alone
// CHECK-NOT: scf.if
// CHECK: return
func.func @left_alone(%x: memref<?x8x64xf32>, %y: memref<?xf32>, %t: index) -> (memref<?x8xf32>, memref<?xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %c64 = arith.constant 64 : index
  %zero = arith.constant 0.0 : f32
  %acc = memref.alloc(%t) : memref<?x8xf32>
  scf.parallel (%i, %j) = (%c0, %c0) to (%t, %c8) step (%c1, %c1) {
    %sum = scf.for %k = %c0 to %c64 step %c1 iter_args(%c = %zero) -> (f32) {
      %a = memref.load %x[%i, %j, %k] : memref<?x8x64xf32>
      %s = arith.addf %c, %a : f32
      scf.yield %s : f32
    }
    memref.store %sum, %acc[%i, %j] : memref<?x8xf32>
    scf.reduce
  }
  %out = memref.alloc(%t) : memref<?xf32>
  scf.parallel (%i) = (%c0) to (%t) step (%c1) {
    %sum = scf.for %k = %c0 to %c64 step %c1 iter_args(%c = %zero) -> (f32) {
      %a = memref.load %y[%k] : memref<?xf32>
      %s = arith.addf %c, %a : f32
      scf.yield %s : f32
    }
    memref.store %sum, %out[%i] : memref<?xf32>
    scf.reduce
  }
  scf.parallel (%i, %j) = (%c0, %c0) to (%t, %c8) step (%c1, %c1) {
    %sum = scf.for %k = %c0 to %c64 step %c1 iter_args(%c = %zero) -> (f32) {
      %a = memref.load %y[%i] : memref<?xf32>
      %b = memref.load %y[%j] : memref<?xf32>
      %s = arith.addf %a, %b : f32
      memref.store %s, %out[%k] : memref<?xf32>
      scf.yield %s : f32
    }
    scf.reduce
  }
  return %acc, %out : memref<?x8xf32>, memref<?xf32>
}
