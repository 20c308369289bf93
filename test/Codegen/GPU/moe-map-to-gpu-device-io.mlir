// RUN: moe-opt %s --split-input-file --moe-map-to-gpu="device-io" | FileCheck %s

// With device-io the caller's buffers are device memory: no copy in, the
// result is the device buffer the kernel wrote (not freed: the caller
// takes it), and the one host wait is the call's last operation (which a
// runtime leaves to the caller's stream). The function is marked.
// CHECK-LABEL: func @elementwise
// CHECK-SAME: (%[[X:.*]]: memref<?x8xf32>, %[[W:.*]]: memref<8xf32>) -> memref<?x8xf32>
// CHECK-SAME: moe.device_io
// CHECK-NOT: gpu.memcpy
// CHECK: %[[START:.*]] = gpu.wait async
// CHECK: %[[Y:.*]], %[[A:.*]] = gpu.alloc async [%[[START]]] (%{{.*}}) : memref<?x8xf32>
// CHECK: %[[K:.*]] = gpu.launch async [%[[A]]]
// CHECK:   memref.load %[[X]]
// CHECK:   memref.load %[[W]]
// CHECK:   memref.store %{{.*}}, %[[Y]]
// CHECK: gpu.wait [%[[K]]]
// CHECK-NOT: gpu.memcpy
// CHECK-NOT: gpu.dealloc
// CHECK: return %[[Y]]
func.func @elementwise(%x: memref<?x8xf32>,
                       %w: memref<8xf32> {moe.weight = "w"}) -> memref<?x8xf32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %t = memref.dim %x, %c0 : memref<?x8xf32>
  %y = memref.alloc(%t) : memref<?x8xf32>
  scf.parallel (%i, %j) = (%c0, %c0) to (%t, %c8) step (%c1, %c1) {
    %a = memref.load %x[%i, %j] : memref<?x8xf32>
    %b = memref.load %w[%j] : memref<8xf32>
    %s = arith.mulf %a, %b : f32
    memref.store %s, %y[%i, %j] : memref<?x8xf32>
    scf.reduce
  }
  return %y : memref<?x8xf32>
}

// -----

// Control flow that only launches chains on the call's stream: allowed.
// CHECK-LABEL: func @only_launches
// CHECK: scf.if
// CHECK:   gpu.launch async
// CHECK: }
// CHECK: gpu.wait [%{{.*}}]
// CHECK-NOT: gpu.wait
// CHECK: return
func.func @only_launches(%x: memref<8xf32>, %go: i1) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %one = arith.constant 1.0 : f32
  scf.if %go {
    scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
      memref.store %one, %x[%i] : memref<8xf32>
      scf.reduce
    }
  }
  return
}
