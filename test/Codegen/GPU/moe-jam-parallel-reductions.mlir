// RUN: moe-opt %s --split-input-file --moe-jam-parallel-reductions="factor=2 min-trips=64" --cse | FileCheck %s
// RUN: moe-opt %s --split-input-file --moe-jam-parallel-reductions="factor=1" | FileCheck %s --check-prefix=OFF

// The router's matmul (as moe-hoist-loop-accumulators leaves it, its
// output zeroed first): from 64 tokens on, the loop runs over the 2 x 2
// tiles (its bounds the tiles' counts) and iteration (t, e) runs tile
// (t, e) in one reduction loop carrying 4 sums, each summed in its own
// order, the zero stored before it forwarded as its start; lanes past T
// compute token T - 1's values and write nothing. Below 64 tokens the loop
// keeps its bounds and each iteration runs its own body. (CSE merges the
// lanes' shared index computations and loads.)
// CHECK-LABEL: func @router
// CHECK-SAME: (%[[X:.*]]: memref<?x64xf32>, %[[W:.*]]: memref<8x64xf32>, %[[N:.*]]: index)
// CHECK: %[[ACC:.*]] = memref.alloc
// CHECK: %[[COUNT_T:.*]] = arith.maxsi
// CHECK: %[[TILES_T:.*]] = arith.ceildivui %[[COUNT_T]], %c2
// CHECK: %[[COUNT_E:.*]] = arith.maxsi
// CHECK: %[[TILES_E:.*]] = arith.ceildivui %[[COUNT_E]], %c2
// CHECK: %[[WIDE:.*]] = arith.cmpi sge, %[[COUNT_T]], %c64
// CHECK: %[[END_T:.*]] = arith.addi %c0, %[[TILES_T]]
// CHECK: %[[UB_T:.*]] = arith.select %[[WIDE]], %[[END_T]], %[[N]]
// CHECK: %[[END_E:.*]] = arith.addi %c0, %[[TILES_E]]
// CHECK: %[[UB_E:.*]] = arith.select %[[WIDE]], %[[END_E]], %c8
// CHECK: scf.parallel (%[[T:.*]], %[[E:.*]]) = (%c0, %c0) to (%[[UB_T]], %[[UB_E]])
// CHECK:   scf.if %[[WIDE]] {
// CHECK-NOT:   scf.if
// CHECK:       %[[TT:.*]] = arith.subi %[[T]], %c0
// CHECK:       %[[TE:.*]] = arith.subi %[[E]], %c0
// CHECK:       %[[T0_2:.*]] = arith.muli %[[TT]], %c2
// CHECK:       %[[T0_1:.*]] = arith.addi %[[T0_2]], %c0
// CHECK:       %[[T0:.*]] = arith.addi %c0, %[[T0_1]]
// CHECK:       %[[T0_IN:.*]] = arith.cmpi slt, %[[T0]], %[[N]]
// CHECK:       %[[LAST_T:.*]] = arith.subi %[[N]], %c1
// CHECK:       %[[T0C:.*]] = arith.minsi %[[T0]], %[[LAST_T]]
// CHECK:       %[[E0_2:.*]] = arith.muli %[[TE]], %c2
// CHECK:       %[[E0_1:.*]] = arith.addi %[[E0_2]], %c0
// CHECK:       %[[E0:.*]] = arith.addi %c0, %[[E0_1]]
// CHECK:       %[[E0_IN:.*]] = arith.cmpi slt, %[[E0]], %c8
// CHECK:       %[[V00:.*]] = arith.andi %[[T0_IN]], %[[E0_IN]]
// CHECK:       %[[LAST_E:.*]] = arith.subi %c8, %c1
// CHECK:       %[[E0C:.*]] = arith.minsi %[[E0]], %[[LAST_E]]
// CHECK:       %[[E1_1:.*]] = arith.addi %[[E0_2]], %c1
// CHECK:       %[[E1:.*]] = arith.addi %c0, %[[E1_1]]
// CHECK:       %[[E1_IN:.*]] = arith.cmpi slt, %[[E1]], %c8
// CHECK:       %[[V01:.*]] = arith.andi %[[T0_IN]], %[[E1_IN]]
// CHECK:       %[[E1C:.*]] = arith.minsi %[[E1]], %[[LAST_E]]
// CHECK:       %[[T1_1:.*]] = arith.addi %[[T0_2]], %c1
// CHECK:       %[[T1:.*]] = arith.addi %c0, %[[T1_1]]
// CHECK:       %[[T1_IN:.*]] = arith.cmpi slt, %[[T1]], %[[N]]
// CHECK:       %[[T1C:.*]] = arith.minsi %[[T1]], %[[LAST_T]]
// CHECK:       %[[V10:.*]] = arith.andi %[[T1_IN]], %[[E0_IN]]
// CHECK:       %[[V11:.*]] = arith.andi %[[T1_IN]], %[[E1_IN]]
// CHECK:       scf.if %[[V00]] {
// CHECK-NEXT:    memref.store %[[ZERO:.*]], %[[ACC]][%[[T0C]], %[[E0C]]]
// CHECK:       scf.if %[[V01]] {
// CHECK-NEXT:    memref.store %[[ZERO]], %[[ACC]][%[[T0C]], %[[E1C]]]
// CHECK:       scf.if %[[V10]] {
// CHECK-NEXT:    memref.store %[[ZERO]], %[[ACC]][%[[T1C]], %[[E0C]]]
// CHECK:       scf.if %[[V11]] {
// CHECK-NEXT:    memref.store %[[ZERO]], %[[ACC]][%[[T1C]], %[[E1C]]]
// CHECK-NOT:   memref.load %[[ACC]]
// CHECK:       %[[SUMS:.*]]:4 = scf.for %[[K:.*]] = %c0 to %c64 step %c1 iter_args(%[[S0:.*]] = %[[ZERO]], %[[S1:.*]] = %[[ZERO]], %[[S2:.*]] = %[[ZERO]], %[[S3:.*]] = %[[ZERO]]) -> (f32, f32, f32, f32) {
// CHECK-NEXT:    %[[A0:.*]] = memref.load %[[X]][%[[T0C]], %[[K]]]
// CHECK-NEXT:    %[[B0:.*]] = memref.load %[[W]][%[[E0C]], %[[K]]]
// CHECK-NEXT:    %[[P00:.*]] = arith.mulf %[[A0]], %[[B0]]
// CHECK-NEXT:    %[[N00:.*]] = arith.addf %[[S0]], %[[P00]]
// CHECK-NEXT:    %[[B1:.*]] = memref.load %[[W]][%[[E1C]], %[[K]]]
// CHECK-NEXT:    %[[P01:.*]] = arith.mulf %[[A0]], %[[B1]]
// CHECK-NEXT:    %[[N01:.*]] = arith.addf %[[S1]], %[[P01]]
// CHECK-NEXT:    %[[A1:.*]] = memref.load %[[X]][%[[T1C]], %[[K]]]
// CHECK-NEXT:    %[[P10:.*]] = arith.mulf %[[A1]], %[[B0]]
// CHECK-NEXT:    %[[N10:.*]] = arith.addf %[[S2]], %[[P10]]
// CHECK-NEXT:    %[[P11:.*]] = arith.mulf %[[A1]], %[[B1]]
// CHECK-NEXT:    %[[N11:.*]] = arith.addf %[[S3]], %[[P11]]
// CHECK-NEXT:    scf.yield %[[N00]], %[[N01]], %[[N10]], %[[N11]]
// CHECK:       scf.if %[[V00]] {
// CHECK-NEXT:    memref.store %[[SUMS]]#0, %[[ACC]][%[[T0C]], %[[E0C]]]
// CHECK:       scf.if %[[V01]] {
// CHECK-NEXT:    memref.store %[[SUMS]]#1, %[[ACC]][%[[T0C]], %[[E1C]]]
// CHECK:       scf.if %[[V10]] {
// CHECK-NEXT:    memref.store %[[SUMS]]#2, %[[ACC]][%[[T1C]], %[[E0C]]]
// CHECK:       scf.if %[[V11]] {
// CHECK-NEXT:    memref.store %[[SUMS]]#3, %[[ACC]][%[[T1C]], %[[E1C]]]
// CHECK:   } else {
// CHECK:     memref.store %[[ZERO]], %[[ACC]][%[[T]], %[[E]]]
// CHECK:     %[[INIT:.*]] = memref.load %[[ACC]][%[[T]], %[[E]]]
// CHECK:     %[[SUM:.*]] = scf.for {{.*}} iter_args(%{{.*}} = %[[INIT]]) -> (f32)
// CHECK:     memref.store %[[SUM]], %[[ACC]][%[[T]], %[[E]]]
// OFF-LABEL: func @router
// OFF-NOT: scf.if
// OFF: return
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

// -----

// Two sums per iteration, a lower bound of 2 and a third dimension: the
// jammed loop carries 2 x 4 sums (lane by lane), and the third dimension's
// index is used as it is.
// CHECK-LABEL: func @two_sums_3d
// CHECK: %[[WIDE3:.*]] = arith.cmpi sge, %{{.*}}, %c64
// CHECK: %[[END3:.*]] = arith.addi %c2, %{{.*}}
// CHECK: %[[UB3:.*]] = arith.select %[[WIDE3]], %[[END3]], %[[T3:[a-z0-9_]+]]
// CHECK: scf.parallel (%[[I3:.*]], %{{.*}}, %[[Z:.*]]) = (%c2, %c0, %c0) to (%[[UB3]],
// CHECK: arith.subi %[[I3]], %c2
// CHECK: arith.cmpi slt, %{{.*}}, %[[T3]]
// CHECK: %[[SUMS:.*]]:8 = scf.for {{.*}} iter_args(%[[S0:[a-z0-9_]+]] = %{{[a-z0-9_]+}}, %[[M0:[a-z0-9_]+]] = %{{[a-z0-9_]+}}, {{.*}} -> (f32, f32, f32, f32, f32, f32, f32, f32)
// CHECK-NEXT: memref.load %{{.*}}[%{{.*}}, %[[Z]], %{{.*}}]
// CHECK-NEXT: memref.load
// CHECK-NEXT: %[[P:.*]] = arith.mulf
// CHECK-NEXT: %[[S:.*]] = arith.addf %[[S0]], %[[P]]
// CHECK-NEXT: %[[M:.*]] = arith.maximumf %[[M0]], %[[P]]
// CHECK: scf.yield %[[S]], %[[M]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} :
// CHECK: memref.store %[[SUMS]]#0, %[[SUM:.*]][%{{.*}}, %{{.*}}, %[[Z]]]
// CHECK: memref.store %[[SUMS]]#1, %[[MAX:.*]][%{{.*}}, %{{.*}}, %[[Z]]]
// CHECK: memref.store %[[SUMS]]#2, %[[SUM]][
// CHECK: memref.store %[[SUMS]]#3, %[[MAX]][
func.func @two_sums_3d(%x: memref<?x2x64xf32>, %w: memref<8x64xf32>, %t: index) -> (memref<?x8x2xf32>, memref<?x8x2xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c8 = arith.constant 8 : index
  %c64 = arith.constant 64 : index
  %zero = arith.constant 0.0 : f32
  %sum = memref.alloc(%t) : memref<?x8x2xf32>
  %max = memref.alloc(%t) : memref<?x8x2xf32>
  scf.parallel (%i, %j, %z) = (%c2, %c0, %c0) to (%t, %c8, %c2) step (%c1, %c1, %c1) {
    %r:2 = scf.for %k = %c0 to %c64 step %c1 iter_args(%s = %zero, %m = %zero) -> (f32, f32) {
      %a = memref.load %x[%i, %z, %k] : memref<?x2x64xf32>
      %b = memref.load %w[%j, %k] : memref<8x64xf32>
      %p = arith.mulf %a, %b : f32
      %s2 = arith.addf %s, %p : f32
      %m2 = arith.maximumf %m, %p : f32
      scf.yield %s2, %m2 : f32, f32
    }
    memref.store %r#0, %sum[%i, %j, %z] : memref<?x8x2xf32>
    memref.store %r#1, %max[%i, %j, %z] : memref<?x8x2xf32>
    scf.reduce
  }
  return %sum, %max : memref<?x8x2xf32>, memref<?x8x2xf32>
}

// -----

// Left alone: a step of 2; an op with a region in the body; a loop inside
// another parallel loop; a reduction with unsigned bounds; a load of the
// buffer the body writes that no earlier store forwards (a lane past the
// end would read what the last lane stored).
// CHECK-LABEL: func @not_jammed
// CHECK-NOT: arith.cmpi sge
// CHECK: return
func.func @not_jammed(%x: memref<?x64xf32>, %w: memref<8x64xf32>, %t: index, %flag: i1) -> memref<?x8xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c8 = arith.constant 8 : index
  %c64 = arith.constant 64 : index
  %zero = arith.constant 0.0 : f32
  %acc = memref.alloc(%t) : memref<?x8xf32>
  scf.parallel (%i, %j) = (%c0, %c0) to (%t, %c8) step (%c2, %c1) {
    %sum = scf.for %k = %c0 to %c64 step %c1 iter_args(%c = %zero) -> (f32) {
      %a = memref.load %x[%i, %k] : memref<?x64xf32>
      %b = memref.load %w[%j, %k] : memref<8x64xf32>
      %s = arith.addf %a, %b : f32
      scf.yield %s : f32
    }
    memref.store %sum, %acc[%i, %j] : memref<?x8xf32>
    scf.reduce
  }
  scf.parallel (%i, %j) = (%c0, %c0) to (%t, %c8) step (%c1, %c1) {
    %sum = scf.for %k = %c0 to %c64 step %c1 iter_args(%c = %zero) -> (f32) {
      %a = memref.load %x[%i, %k] : memref<?x64xf32>
      %b = memref.load %w[%j, %k] : memref<8x64xf32>
      %s = arith.addf %a, %b : f32
      scf.yield %s : f32
    }
    scf.if %flag {
      memref.store %sum, %acc[%i, %j] : memref<?x8xf32>
    }
    scf.reduce
  }
  scf.parallel (%o) = (%c0) to (%c2) step (%c1) {
    scf.parallel (%i, %j) = (%c0, %c0) to (%t, %c8) step (%c1, %c1) {
      %sum = scf.for %k = %c0 to %c64 step %c1 iter_args(%c = %zero) -> (f32) {
        %a = memref.load %x[%i, %k] : memref<?x64xf32>
        %b = memref.load %w[%j, %k] : memref<8x64xf32>
        %s = arith.addf %a, %b : f32
        scf.yield %s : f32
      }
      memref.store %sum, %acc[%i, %j] : memref<?x8xf32>
      scf.reduce
    }
    scf.reduce
  }
  scf.parallel (%i, %j) = (%c0, %c0) to (%t, %c8) step (%c1, %c1) {
    %sum = scf.for unsigned %k = %c0 to %c64 step %c1 iter_args(%c = %zero) -> (f32) {
      %a = memref.load %x[%i, %k] : memref<?x64xf32>
      %b = memref.load %w[%j, %k] : memref<8x64xf32>
      %s = arith.addf %a, %b : f32
      scf.yield %s : f32
    }
    memref.store %sum, %acc[%i, %j] : memref<?x8xf32>
    scf.reduce
  }
  scf.parallel (%i, %j) = (%c0, %c0) to (%t, %c8) step (%c1, %c1) {
    %old = memref.load %acc[%i, %j] : memref<?x8xf32>
    %sum = scf.for %k = %c0 to %c64 step %c1 iter_args(%c = %old) -> (f32) {
      %a = memref.load %x[%i, %k] : memref<?x64xf32>
      %b = memref.load %w[%j, %k] : memref<8x64xf32>
      %s = arith.addf %a, %b : f32
      scf.yield %s : f32
    }
    memref.store %sum, %acc[%i, %j] : memref<?x8xf32>
    scf.reduce
  }
  return %acc : memref<?x8xf32>
}
