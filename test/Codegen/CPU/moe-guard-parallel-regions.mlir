// RUN: moe-opt %s --split-input-file --moe-guard-parallel-regions | FileCheck %s
// RUN: moe-opt %s --split-input-file --moe-guard-parallel-regions="min-iterations=64" | FileCheck %s --check-prefix=MIN64
// RUN: not moe-opt %s --moe-guard-parallel-regions="min-iterations=0" 2>&1 | FileCheck %s --check-prefix=BAD

// BAD: moe-guard-parallel-regions: min-iterations must be at least 1, got 0

// A worksharing loop over (i, j) runs on the team only when its
// ceil((ub - lb) / step) trip counts multiply to at least 2.
// CHECK-LABEL: func @loop
// CHECK-SAME: (%[[N:[a-z0-9]+]]: index, %[[M:[a-z0-9]+]]: index,
// CHECK: %[[ZERO:.*]] = arith.constant 0 : index
// CHECK: %[[SPAN0:.*]] = arith.subi %[[N]], %c0
// CHECK: %[[POS0:.*]] = arith.maxsi %[[SPAN0]], %[[ZERO]]
// CHECK: %[[TRIPS0:.*]] = arith.ceildivsi %[[POS0]], %c1
// CHECK: %[[SPAN1:.*]] = arith.subi %[[M]], %c0
// CHECK: %[[POS1:.*]] = arith.maxsi %[[SPAN1]], %[[ZERO]]
// CHECK: %[[TRIPS1:.*]] = arith.ceildivsi %[[POS1]], %c4
// CHECK: %[[ALL:.*]] = arith.muli %[[TRIPS0]], %[[TRIPS1]]
// CHECK: %[[ENOUGH:.*]] = arith.cmpi sge, %[[ALL]], %c2{{.*}}
// CHECK: omp.parallel if(%[[ENOUGH]])
// MIN64-LABEL: func @loop
// MIN64: arith.cmpi sge, %{{.*}}, %c64
func.func @loop(%n: index, %m: index, %buffer: memref<?x?xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %zero = arith.constant 0.0 : f32
  omp.parallel {
    omp.wsloop {
      omp.loop_nest (%i, %j) : index = (%c0, %c0) to (%n, %m) step (%c1, %c4) {
        memref.store %zero, %buffer[%i, %j] : memref<?x?xf32>
        omp.yield
      }
    }
    omp.terminator
  }
  return
}

// -----

// An existing clause is kept (and-ed); regions of another form are left
// alone.
// CHECK-LABEL: func @other_forms
// CHECK: %[[ENOUGH:.*]] = arith.cmpi sge
// CHECK: %[[BOTH:.*]] = arith.andi %{{.*}}, %[[ENOUGH]]
// CHECK: omp.parallel if(%[[BOTH]])
// CHECK: omp.parallel {
// CHECK-NOT: if(
func.func @other_forms(%n: index, %flag: i1, %buffer: memref<?xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %zero = arith.constant 0.0 : f32
  omp.parallel if(%flag) {
    omp.wsloop {
      omp.loop_nest (%i) : index = (%c0) to (%n) step (%c1) {
        memref.store %zero, %buffer[%i] : memref<?xf32>
        omp.yield
      }
    }
    omp.terminator
  }
  omp.parallel {
    memref.store %zero, %buffer[%c0] : memref<?xf32>
    omp.terminator
  }
  return
}
