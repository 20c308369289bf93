// RUN: moe-opt %s --split-input-file --moe-hoist-loop-accumulators | FileCheck %s

// The router's matmul as loops: the output element is loaded once before
// the reduction loop, carried through it and stored once after it; the
// arithmetic is unchanged. The loop runs 64 iterations: no guard.
// CHECK-LABEL: func @router
// CHECK: scf.parallel (%[[T:.*]], %[[E:.*]]) =
// CHECK-NOT: scf.if
// CHECK:   %[[INIT:.*]] = memref.load %[[ACC:.*]][%[[T]], %[[E]]] : memref<?x8xf32>
// CHECK:   %[[SUM:.*]] = scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} iter_args(%[[C:.*]] = %[[INIT]]) -> (f32) {
// CHECK:     %[[X:.*]] = memref.load %{{.*}} : memref<?x64xf32>
// CHECK:     %[[W:.*]] = memref.load %{{.*}} : memref<8x64xf32>
// CHECK-NOT: memref.load
// CHECK:     %[[P:.*]] = arith.mulf %[[X]], %[[W]] : f32
// CHECK:     %[[N:.*]] = arith.addf %[[C]], %[[P]] : f32
// CHECK-NOT: memref.store
// CHECK:     scf.yield %[[N]] : f32
// CHECK:   memref.store %[[SUM]], %[[ACC]][%[[T]], %[[E]]] : memref<?x8xf32>
func.func @router(%x: memref<?x64xf32>, %w: memref<8x64xf32>, %t: index) -> memref<?x8xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %c64 = arith.constant 64 : index
  %acc = memref.alloc(%t) : memref<?x8xf32>
  scf.parallel (%i, %j) = (%c0, %c0) to (%t, %c8) step (%c1, %c1) {
    scf.for %k = %c0 to %c64 step %c1 {
      %a = memref.load %x[%i, %k] : memref<?x64xf32>
      %b = memref.load %w[%j, %k] : memref<8x64xf32>
      %c = memref.load %acc[%i, %j] : memref<?x8xf32>
      %p = arith.mulf %a, %b : f32
      %s = arith.addf %c, %p : f32
      memref.store %s, %acc[%i, %j] : memref<?x8xf32>
    }
    scf.reduce
  }
  return %acc : memref<?x8xf32>
}

// -----

// Two sums in one loop, one through a view of its allocation: both
// carried. The loop may run no iteration (%n may be 0), so the loads
// before it and the stores after it are guarded: a loop without
// iterations touches nothing.
// CHECK-LABEL: func @two_sums
// CHECK-SAME: (%[[X:.*]]: memref<?xf32>, %[[N:.*]]: index)
// CHECK: %[[ACC:.*]] = memref.alloc()
// CHECK: %[[MAX:.*]] = memref.alloc()
// CHECK: %[[VIEW:.*]] = memref.subview %[[MAX]]
// CHECK: %[[RUNS:.*]] = arith.cmpi slt, %c0, %[[N]]
// CHECK: %[[INIT_ACC:.*]] = scf.if %[[RUNS]] -> (f32) {
// CHECK:   memref.load %[[ACC]][%c0]
// CHECK: } else {
// CHECK:   ub.poison
// CHECK: %[[RUNS2:.*]] = arith.cmpi slt, %c0, %[[N]]
// CHECK: %[[INIT_MAX:.*]] = scf.if %[[RUNS2]] -> (f32) {
// CHECK:   memref.load %[[VIEW]][%c1]
// CHECK: %[[R:.*]]:2 = scf.for {{.*}} iter_args(%[[S:.*]] = %[[INIT_ACC]], %[[M:.*]] = %[[INIT_MAX]]) -> (f32, f32)
// CHECK-NOT: memref.store
// CHECK:   arith.addf %[[S]]
// CHECK:   arith.maximumf %[[M]]
// CHECK:   scf.yield
// CHECK: scf.if %[[RUNS2]] {
// CHECK-NEXT: memref.store %[[R]]#1, %[[VIEW]][%c1]
// CHECK: scf.if %[[RUNS]] {
// CHECK-NEXT: memref.store %[[R]]#0, %[[ACC]][%c0]
func.func @two_sums(%x: memref<?xf32>, %n: index) -> (memref<4xf32>, memref<4xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %acc = memref.alloc() : memref<4xf32>
  %max = memref.alloc() : memref<4xf32>
  %view = memref.subview %max[2] [2] [1] : memref<4xf32> to memref<2xf32, strided<[1], offset: 2>>
  scf.for %k = %c0 to %n step %c1 {
    %a = memref.load %x[%k] : memref<?xf32>
    %s = memref.load %acc[%c0] : memref<4xf32>
    %s2 = arith.addf %s, %a : f32
    memref.store %s2, %acc[%c0] : memref<4xf32>
    %m = memref.load %view[%c1] : memref<2xf32, strided<[1], offset: 2>>
    %m2 = arith.maximumf %m, %a : f32
    memref.store %m2, %view[%c1] : memref<2xf32, strided<[1], offset: 2>>
  }
  return %acc, %max : memref<4xf32>, memref<4xf32>
}

// -----

// Left alone: the loop also reads another element of the buffer (it would
// see a stale value), or touches it through a view (elements are not told
// apart across views).
// CHECK-LABEL: func @other_element
// CHECK-NOT: iter_args
// CHECK: return
func.func @other_element(%x: memref<?xf32>, %n: index) -> memref<4xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %acc = memref.alloc() : memref<4xf32>
  scf.for %k = %c0 to %n step %c1 {
    %a = memref.load %acc[%c1] : memref<4xf32>
    %s = memref.load %acc[%c0] : memref<4xf32>
    %s2 = arith.addf %s, %a : f32
    memref.store %s2, %acc[%c0] : memref<4xf32>
  }
  %view = memref.subview %acc[2] [2] [1] : memref<4xf32> to memref<2xf32, strided<[1], offset: 2>>
  scf.for %k = %c0 to %n step %c1 {
    %s = memref.load %acc[%c0] : memref<4xf32>
    %a = memref.load %view[%c1] : memref<2xf32, strided<[1], offset: 2>>
    %s2 = arith.addf %s, %a : f32
    memref.store %s2, %acc[%c0] : memref<4xf32>
  }
  return %acc : memref<4xf32>
}

// -----

// Left alone: the sum is the caller's buffer and the loop reads another
// argument, which may be the same memory.
// CHECK-LABEL: func @arguments_may_alias
// CHECK-NOT: iter_args
// CHECK: return
func.func @arguments_may_alias(%x: memref<?xf32>, %acc: memref<4xf32>, %n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  scf.for %k = %c0 to %n step %c1 {
    %a = memref.load %x[%k] : memref<?xf32>
    %s = memref.load %acc[%c0] : memref<4xf32>
    %s2 = arith.addf %s, %a : f32
    memref.store %s2, %acc[%c0] : memref<4xf32>
  }
  return
}

// -----

// Left alone: an op whose effects are unknown (a call), an index that
// varies in the loop, a store only in a nested region, and a load/store
// pair beside another store of the buffer in a nested region.
// CHECK-LABEL: func @not_invariant
// CHECK-NOT: iter_args
// CHECK: return
func.func private @opaque()
func.func @not_invariant(%x: memref<?xf32>, %n: index, %flag: i1) -> memref<?xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %acc = memref.alloc(%n) : memref<?xf32>
  scf.for %k = %c0 to %n step %c1 {
    %s = memref.load %acc[%c0] : memref<?xf32>
    func.call @opaque() : () -> ()
    memref.store %s, %acc[%c0] : memref<?xf32>
  }
  scf.for %k = %c0 to %n step %c1 {
    %s = memref.load %acc[%k] : memref<?xf32>
    %a = memref.load %x[%k] : memref<?xf32>
    %s2 = arith.addf %s, %a : f32
    memref.store %s2, %acc[%k] : memref<?xf32>
  }
  scf.for %k = %c0 to %n step %c1 {
    %s = memref.load %acc[%c1] : memref<?xf32>
    scf.if %flag {
      memref.store %s, %acc[%c1] : memref<?xf32>
    }
  }
  scf.for %k = %c0 to %n step %c1 {
    %s = memref.load %acc[%c1] : memref<?xf32>
    %a = memref.load %x[%k] : memref<?xf32>
    %s2 = arith.addf %s, %a : f32
    scf.if %flag {
      memref.store %a, %acc[%c1] : memref<?xf32>
    }
    memref.store %s2, %acc[%c1] : memref<?xf32>
  }
  return %acc : memref<?xf32>
}
