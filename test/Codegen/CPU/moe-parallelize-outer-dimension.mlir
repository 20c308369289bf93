// RUN: moe-opt %s --split-input-file --moe-parallelize-outer-dimension | FileCheck %s

// An outermost loop over two dimensions keeps the first one parallel; the
// second becomes an scf.for around the body.
// CHECK-LABEL: func @two_dimensions
// CHECK-SAME: (%[[A:.*]]: memref<?x?xf32>, %[[M:.*]]: index, %[[N:.*]]: index)
// CHECK:      scf.parallel (%[[I:.*]]) = (%c0) to (%[[M]]) step (%c1) {
// CHECK-NEXT:   scf.for %[[J:.*]] = %c0 to %[[N]] step %c1 {
// CHECK-NEXT:     memref.store %{{.*}}, %[[A]][%[[I]], %[[J]]]
// CHECK-NOT:  scf.parallel
func.func @two_dimensions(%a: memref<?x?xf32>, %m: index, %n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %zero = arith.constant 0.0 : f32
  scf.parallel (%i, %j) = (%c0, %c0) to (%m, %n) step (%c1, %c1) {
    memref.store %zero, %a[%i, %j] : memref<?x?xf32>
  }
  return
}

// -----

// A loop nested in a parallel loop or a forall becomes sequential; a
// one-dimensional outermost loop and the forall stay as they are.
// CHECK-LABEL: func @nested
// CHECK:      scf.forall (%[[B:.*]]) in (%{{.*}}) {
// CHECK-NEXT:   scf.for %{{.*}} = %c0 to %{{.*}} step %c1 {
// CHECK-NEXT:     scf.for %{{.*}} = %c0 to %{{.*}} step %c1 {
// CHECK:      scf.parallel (%{{.*}}) = (%c0) to (%{{.*}}) step (%c1) {
// CHECK-NEXT:   scf.for %{{.*}} = %c0 to %{{.*}} step %c1 {
// CHECK-NEXT:     memref.store
func.func @nested(%a: memref<?x?xf32>, %m: index, %n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %zero = arith.constant 0.0 : f32
  scf.forall (%b) in (%m) {
    scf.parallel (%i, %j) = (%c0, %c0) to (%m, %n) step (%c1, %c1) {
      memref.store %zero, %a[%i, %j] : memref<?x?xf32>
    }
  }
  scf.parallel (%i) = (%c0) to (%m) step (%c1) {
    scf.parallel (%j) = (%c0) to (%n) step (%c1) {
      memref.store %zero, %a[%i, %j] : memref<?x?xf32>
    }
  }
  return
}

// -----

// Loops with reductions are left alone.
// CHECK-LABEL: func @reduction
// CHECK: scf.parallel (%{{.*}}, %{{.*}}) = {{.*}} init
// CHECK: scf.reduce
func.func @reduction(%a: memref<?x?xf32>, %m: index, %n: index) -> f32 {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %zero = arith.constant 0.0 : f32
  %sum = scf.parallel (%i, %j) = (%c0, %c0) to (%m, %n) step (%c1, %c1) init (%zero) -> f32 {
    %v = memref.load %a[%i, %j] : memref<?x?xf32>
    scf.reduce(%v : f32) {
    ^bb0(%x: f32, %y: f32):
      %s = arith.addf %x, %y : f32
      scf.reduce.return %s : f32
    }
  }
  return %sum : f32
}
