// RUN: moe-opt %s --split-input-file --moe-fuse-sibling-loops | FileCheck %s

// Independent loops of different iteration spaces, with an allocation and
// host arithmetic between them, become one loop over the larger count;
// each body runs under its own trip count, a 2-D loop's indices recovered
// from the linear one (the last dimension fastest). The allocation moves
// before the merged loop.
// CHECK-LABEL: func @independent
// CHECK-SAME: (%[[A:.*]]: memref<?x8xf32>, %[[N:.*]]: index, %[[M:.*]]: index)
// CHECK: %[[B:.*]] = memref.alloc(%[[M]]) : memref<?xi32>
// CHECK: %[[MAX:.*]] = arith.maxui %[[TOTALA:.*]], %[[TOTALB:.*]] : index
// CHECK: scf.parallel (%[[I:.*]]) = (%c0{{.*}}) to (%[[MAX]]) step (%c1{{.*}}) {
// CHECK:   %[[INA:.*]] = arith.cmpi ult, %[[I]], %[[TOTALA]] : index
// CHECK:   scf.if %[[INA]] {
// CHECK:     arith.remui %[[I]], %[[COLS:.*]] : index
// CHECK:     arith.divui %[[I]], %[[COLS]] : index
// CHECK:     memref.store %{{.*}}, %[[A]][%{{.*}}, %{{.*}}] : memref<?x8xf32>
// CHECK:   }
// CHECK:   %[[INB:.*]] = arith.cmpi ult, %[[I]], %[[TOTALB]] : index
// CHECK:   scf.if %[[INB]] {
// CHECK:     memref.store %{{.*}}, %[[B]][%{{.*}}] : memref<?xi32>
// CHECK:   }
// CHECK:   scf.reduce
// CHECK: }
// CHECK-NOT: scf.parallel
// CHECK: return %[[B]]
func.func @independent(%a: memref<?x8xf32>, %n: index, %m: index) -> memref<?xi32> {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %zero = arith.constant 0.0 : f32
  scf.parallel (%i, %j) = (%c0, %c0) to (%n, %c8) step (%c1, %c1) {
    memref.store %zero, %a[%i, %j] : memref<?x8xf32>
    scf.reduce
  }
  %b = memref.alloc(%m) : memref<?xi32>
  %one = arith.constant 1 : i32
  scf.parallel (%k) = (%c0) to (%m) step (%c1) {
    memref.store %one, %b[%k] : memref<?xi32>
    scf.reduce
  }
  return %b : memref<?xi32>
}

// -----

// Three loops (reading the same argument: reads never conflict): one
// merged loop with three guarded bodies.
// CHECK-LABEL: func @three
// CHECK: scf.parallel
// CHECK-COUNT-3: scf.if
// CHECK-NOT: scf.parallel
func.func @three(%x: memref<?xf32>, %n: index, %m: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %zero = memref.load %x[%c0] : memref<?xf32>
  %a = memref.alloc(%n) : memref<?xf32>
  %b = memref.alloc(%m) : memref<?xf32>
  %c = memref.alloc() : memref<4xf32>
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    memref.store %zero, %a[%i] : memref<?xf32>
    scf.reduce
  }
  scf.parallel (%i) = (%c0) to (%m) step (%c1) {
    memref.store %zero, %b[%i] : memref<?xf32>
    scf.reduce
  }
  scf.parallel (%i) = (%c0) to (%c4) step (%c1) {
    %v = memref.load %x[%i] : memref<?xf32>
    memref.store %v, %c[%i] : memref<4xf32>
    scf.reduce
  }
  return
}

// -----

// The caller's buffers may alias: loops writing two arguments stay apart,
// and so do loops writing a buffer that control flow inside the loop
// yields, or one that an op other than an allocation returns (a select
// between two buffers).
// CHECK-LABEL: func @arguments
// CHECK: scf.parallel
// CHECK-NOT: scf.if
// CHECK: scf.parallel
// CHECK-NOT: scf.if
// CHECK: scf.parallel
// CHECK-NEXT: scf.if %{{.*}} -> (memref<8xf32>)
// CHECK: scf.parallel
// CHECK-NOT: scf.if
// CHECK: arith.select
// CHECK: scf.parallel
// CHECK-NOT: scf.if
// CHECK: return
func.func @arguments(%a: memref<8xf32>, %b: memref<8xf32>, %go: i1) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %zero = arith.constant 0.0 : f32
  scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
    memref.store %zero, %a[%i] : memref<8xf32>
    scf.reduce
  }
  scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
    memref.store %zero, %b[%i] : memref<8xf32>
    scf.reduce
  }
  %c = memref.alloc() : memref<8xf32>
  scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
    %which = scf.if %go -> memref<8xf32> {
      scf.yield %a : memref<8xf32>
    } else {
      scf.yield %c : memref<8xf32>
    }
    memref.store %zero, %which[%i] : memref<8xf32>
    scf.reduce
  }
  %d = memref.alloc() : memref<8xf32>
  scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
    memref.store %zero, %d[%i] : memref<8xf32>
    scf.reduce
  }
  %e = arith.select %go, %d, %c : memref<8xf32>
  scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
    memref.store %zero, %e[%i] : memref<8xf32>
    scf.reduce
  }
  return
}

// -----

// A loop reading what the one before wrote (through a view), or writing
// what it read, keeps its place.
// CHECK-LABEL: func @dependent
// CHECK: scf.parallel
// CHECK-NOT: scf.if
// CHECK: scf.parallel
// CHECK-NOT: scf.if
// CHECK: scf.parallel
// CHECK-NOT: scf.if
func.func @dependent(%a: memref<16xf32>, %b: memref<8xf32>, %n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %zero = arith.constant 0.0 : f32
  %view = memref.subview %a[0] [8] [1] : memref<16xf32> to memref<8xf32, strided<[1]>>
  scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
    memref.store %zero, %view[%i] : memref<8xf32, strided<[1]>>
    scf.reduce
  }
  // Reads %a (read after write).
  scf.parallel (%i) = (%c0) to (%n) step (%c1) {
    %v = memref.load %a[%i] : memref<16xf32>
    memref.store %v, %b[%c0] : memref<8xf32>
    scf.reduce
  }
  // Writes %a, which the loop before read (write after read).
  scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
    memref.store %zero, %a[%i] : memref<16xf32>
    scf.reduce
  }
  return
}

// -----

// Sequential code between two loops (a store on the host side), a loop
// with a reduction and a loop nested in another stay as they are.
// CHECK-LABEL: func @barriers
// CHECK: scf.parallel
// CHECK-NOT: scf.if
// CHECK: memref.store
// CHECK: scf.parallel
// CHECK-NOT: scf.if
// CHECK: scf.parallel {{.*}} -> f32
// CHECK: scf.parallel
// CHECK: scf.parallel
// CHECK-NOT: scf.if
func.func @barriers(%a: memref<8xf32>, %b: memref<8xf32>, %c: memref<8xf32>, %d: memref<8xf32>) -> f32 {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %zero = arith.constant 0.0 : f32
  scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
    memref.store %zero, %a[%i] : memref<8xf32>
    scf.reduce
  }
  memref.store %zero, %d[%c0] : memref<8xf32>
  scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
    memref.store %zero, %b[%i] : memref<8xf32>
    scf.reduce
  }
  %sum = scf.parallel (%i) = (%c0) to (%c8) step (%c1) init (%zero) -> f32 {
    %v = memref.load %c[%i] : memref<8xf32>
    scf.reduce(%v : f32) {
    ^bb0(%l: f32, %r: f32):
      %s = arith.addf %l, %r : f32
      scf.reduce.return %s : f32
    }
  }
  scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
    scf.parallel (%j) = (%c0) to (%c8) step (%c1) {
      memref.store %zero, %c[%j] : memref<8xf32>
      scf.reduce
    }
    scf.parallel (%j) = (%c0) to (%c8) step (%c1) {
      memref.store %zero, %d[%j] : memref<8xf32>
      scf.reduce
    }
    scf.reduce
  }
  return %sum : f32
}

// -----

// Loops under host control flow merge within their region.
// CHECK-LABEL: func @in_region
// CHECK: scf.if
// CHECK:   scf.parallel
// CHECK-COUNT-2: scf.if
// CHECK-NOT: scf.parallel
func.func @in_region(%go: i1) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %c8 = arith.constant 8 : index
  %zero = arith.constant 0.0 : f32
  %a = memref.alloc() : memref<8xf32>
  %b = memref.alloc() : memref<4xf32>
  scf.if %go {
    scf.parallel (%i) = (%c0) to (%c8) step (%c1) {
      memref.store %zero, %a[%i] : memref<8xf32>
      scf.reduce
    }
    scf.parallel (%i) = (%c0) to (%c4) step (%c1) {
      memref.store %zero, %b[%i] : memref<4xf32>
      scf.reduce
    }
  }
  return
}
