// RUN: moe-opt %s --split-input-file --moe-map-to-gpu="routing-block-size=64 multiprocessors=4" | FileCheck %s
// RUN: moe-opt %s --split-input-file --moe-map-to-gpu="routing-block-size=64" | FileCheck %s --check-prefix=ONEBLOCK

// The routing kernel's first loop (the tokens' routing) runs over
// min(ceil(T / 64), 4) blocks, a thread's iterations a grid's stride
// apart; each block then counts itself in a zeroed word (every thread
// fencing its writes first), and the last block counted runs the rest
// (the plan, reading every token's result) after a fence of its own.
// Without a count of multiprocessors it is one block, as before.
// CHECK-LABEL: func @route_then_plan
// CHECK: %[[T:.*]] = memref.dim
// CHECK: %[[FILL:.*]] = arith.ceildivui %{{.*}}, %c64
// CHECK: %[[SOME:.*]] = arith.maxui %c1{{.*}}, %[[FILL]]
// CHECK: %[[BLOCKS:.*]] = arith.minui %[[SOME]], %c4
// CHECK: %[[COUNTER:.*]], %{{.*}} = gpu.alloc async {{.*}} () : memref<1xi32>
// CHECK: %[[ZEROED:.*]] = gpu.memset async [%{{.*}}] %[[COUNTER]], %c0_i32
// CHECK: %[[DONE:.*]] = gpu.launch async [%[[ZEROED]]] blocks(%[[BX:.*]], %{{.*}}, %{{.*}}) in (%[[GX:.*]] = %[[BLOCKS]], {{.*}} threads(%[[TX:.*]], %{{.*}}, %{{.*}}) in ({{.*}} = %c64
// CHECK-SAME: workgroup(%[[FLAG:.*]] : memref<1xi32, #gpu.address_space<workgroup>>)
// CHECK:   %[[FIRST:.*]] = arith.muli %[[BX]], %c64
// CHECK:   %[[MINE:.*]] = arith.addi %[[FIRST]], %[[TX]]
// CHECK:   %[[SPAN:.*]] = arith.muli %{{.*}}, %c64
// CHECK:   scf.for %{{.*}} = %[[MINE]] to %{{.*}} step %[[SPAN]]
// CHECK:   nvvm.memory.barrier <gpu>
// CHECK:   gpu.barrier
// CHECK:   scf.if
// CHECK:     %[[BEFORE:.*]] = memref.atomic_rmw addi %c1_i32, %[[COUNTER]]
// CHECK:     arith.cmpi eq, %[[BEFORE]]
// CHECK:     memref.store %{{.*}}, %[[FLAG]]
// CHECK:   gpu.barrier
// CHECK:   %[[LAST:.*]] = memref.load %[[FLAG]]
// CHECK:   %[[ISLAST:.*]] = arith.cmpi ne, %[[LAST]]
// CHECK:   scf.if %[[ISLAST]] {
// CHECK-NEXT: nvvm.memory.barrier <gpu>
// CHECK:     scf.for
// CHECK:       memref.load
// CHECK: gpu.dealloc async [%[[DONE]]] %[[COUNTER]]
// ONEBLOCK-LABEL: func @route_then_plan
// ONEBLOCK-NOT: atomic_rmw
// ONEBLOCK: gpu.launch async {{.*}} blocks({{.*}}) in ({{.*}} = %c1
// ONEBLOCK-NOT: atomic_rmw
// ONEBLOCK: return
func.func @route_then_plan(%x: memref<?xf32>, %routed: memref<?xf32>,
                           %total: memref<1xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %zero = arith.constant 0.0 : f32
  %t = memref.dim %x, %c0 : memref<?xf32>
  scf.parallel (%i) = (%c0) to (%t) step (%c1) {
    %v = memref.load %x[%i] : memref<?xf32>
    %e = math.exp %v : f32
    memref.store %e, %routed[%i] : memref<?xf32>
    scf.reduce
  }
  %sum = scf.for %i = %c0 to %t step %c1 iter_args(%acc = %zero) -> f32 {
    %v = memref.load %routed[%i] : memref<?xf32>
    %n = arith.addf %acc, %v : f32
    scf.yield %n : f32
  }
  memref.store %sum, %total[%c0] : memref<1xf32>
  return
}

// -----

// A routing kernel that starts with a write other than a parallel loop,
// or is one loop alone, keeps its one block.
// CHECK-LABEL: func @store_first
// CHECK-NOT: atomic_rmw
// CHECK: gpu.launch async {{.*}} blocks({{.*}}) in ({{.*}} = %c1
// CHECK-NOT: atomic_rmw
// CHECK-LABEL: func @loop_alone
// CHECK-NOT: atomic_rmw
// CHECK: gpu.launch async {{.*}} blocks({{.*}}) in ({{.*}} = %c1
// CHECK-NOT: atomic_rmw
// CHECK: return
func.func @store_first(%x: memref<?xf32>, %routed: memref<?xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %zero = arith.constant 0.0 : f32
  %t = memref.dim %x, %c0 : memref<?xf32>
  memref.store %zero, %routed[%c0] : memref<?xf32>
  scf.parallel (%i) = (%c1) to (%t) step (%c1) {
    %v = memref.load %x[%i] : memref<?xf32>
    memref.store %v, %routed[%i] : memref<?xf32>
    scf.reduce
  }
  return
}

func.func @loop_alone(%x: memref<?xf32>, %routed: memref<?xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %t = memref.dim %x, %c0 : memref<?xf32>
  scf.parallel (%i) = (%c0) to (%t) step (%c1) {
    %v = memref.load %x[%i] : memref<?xf32>
    memref.store %v, %routed[%i] : memref<?xf32>
    scf.reduce
  }
  return
}
