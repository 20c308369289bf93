// RUN: moe-opt %s --moe-strided-copies-to-linalg | FileCheck %s

// A copy out of a strided subview becomes linalg.copy (lowered to loops, no
// memrefCopy runtime call); a contiguous copy stays a memref.copy (memcpy).
// CHECK-LABEL: func @copies
// CHECK: linalg.copy ins(%{{.*}} : memref<?x20xf32, strided<[33, 1], offset: ?>>) outs(%{{.*}} : memref<?x20xf32>)
// CHECK: memref.copy %{{.*}}, %{{.*}} : memref<?x20xf32> to memref<?x20xf32>
func.func @copies(%a: memref<?x33xf32>, %b: memref<?x20xf32>, %c: memref<?x20xf32>, %n: index, %o: index) {
  %s = memref.subview %a[%o, 0] [%n, 20] [1, 1] : memref<?x33xf32> to memref<?x20xf32, strided<[33, 1], offset: ?>>
  memref.copy %s, %b : memref<?x20xf32, strided<[33, 1], offset: ?>> to memref<?x20xf32>
  memref.copy %b, %c : memref<?x20xf32> to memref<?x20xf32>
  return
}
