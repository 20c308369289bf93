// RUN: moe-opt %s --split-input-file --moe-map-to-gpu --verify-diagnostics | FileCheck %s

// A result that views the first rows of a device buffer (a router's logits,
// the first T rows of its grouped matmul's output) is copied to the host
// through a reinterpret_cast of the view to an identity layout, which
// gpu.memcpy takes (a memref.cast to one would fold away).
// CHECK-LABEL: func.func @first_rows
// CHECK: %[[VIEW:.*]] = memref.subview %{{.*}}[0, 0] [%[[T:.*]], 4] [1, 1] : memref<8x4xf32> to memref<?x4xf32, strided<[4, 1]>>
// CHECK: %[[FLAT:.*]] = memref.reinterpret_cast %[[VIEW]] to offset: [0], sizes: [%[[T]], 4], strides: [4, 1] : memref<?x4xf32, strided<[4, 1]>> to memref<?x4xf32>
// CHECK: %[[HOST:.*]] = memref.alloc(%{{.*}}) : memref<?x4xf32>
// CHECK: gpu.memcpy async [%{{.*}}] %[[HOST]], %[[FLAT]] : memref<?x4xf32>, memref<?x4xf32>
func.func @first_rows(%x: memref<8x4xf32>, %t: index) -> memref<?x4xf32, strided<[4, 1]>> {
  %v = memref.subview %x[0, 0] [%t, 4] [1, 1] : memref<8x4xf32> to memref<?x4xf32, strided<[4, 1]>>
  return %v : memref<?x4xf32, strided<[4, 1]>>
}

// -----

// Any other view (columns of a wider buffer) is not one block: a clear
// error, not a copy the GPU lowering cannot translate.
func.func @columns(%x: memref<8x8xf32>) -> memref<8x4xf32, strided<[8, 1]>> {
  %v = memref.subview %x[0, 0] [8, 4] [1, 1] : memref<8x8xf32> to memref<8x4xf32, strided<[8, 1]>>
  // expected-error @below {{moe-map-to-gpu: result #0 views its buffer other than by its first rows in row-major order, which the copy to the host cannot take}}
  return %v : memref<8x4xf32, strided<[8, 1]>>
}
