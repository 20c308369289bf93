// RUN: moe-opt %s --split-input-file --moe-split-parallel-reductions="lanes=16 min-trips-per-lane=4" | FileCheck %s
// RUN: moe-opt %s --split-input-file --moe-split-parallel-reductions="lanes=16 min-trips-per-lane=4 max-iterations=100" | FileCheck %s --check-prefix=CHOICE
// RUN: moe-opt %s --split-input-file --moe-split-parallel-reductions="lanes=1" | FileCheck %s --check-prefix=OFF
// RUN: not moe-opt %s --moe-split-parallel-reductions="lanes=12" 2>&1 | FileCheck %s --check-prefix=BAD-LANES
// RUN: not moe-opt %s --moe-split-parallel-reductions="max-iterations=-1" 2>&1 | FileCheck %s --check-prefix=BAD-ITERATIONS

// The router's matmul (a logit per token and expert, summed over 64
// depths, as moe-hoist-loop-accumulators leaves it): the sum over 64
// depths is split over 16 lanes (64 / 4 trips per lane), lane l summing
// depths l, l + 16, ... from -0.0; an scf.parallel over the lanes combines
// their sums (scf.reduce), and the loop's initial value is added to the
// total. With max-iterations, an scf.if on the iteration count (T x 8)
// runs the split loop below 100 iterations and the loop as it was above.
// CHECK-LABEL: func @router
// CHECK-SAME: (%[[X:.*]]: memref<?x64xf32>, %[[W:.*]]: memref<8x64xf32>, %[[OUT:.*]]: memref<?x8xf32>)
// CHECK: scf.parallel (%[[T:.*]], %[[E:.*]]) =
// CHECK:   %[[INIT:.*]] = memref.load %[[OUT]][%[[T]], %[[E]]]
// CHECK:   %[[NEG_ZERO:.*]] = arith.constant -0.000000e+00 : f32
// CHECK:   %[[LANES:.*]] = arith.constant 16 : index
// CHECK:   %[[PARTS:.*]] = scf.parallel (%[[LANE:.*]]) = (%{{.*}}) to (%[[LANES]]) step (%{{.*}}) init (%[[NEG_ZERO]]) -> f32 {
// CHECK:     %[[OFFSET:.*]] = arith.muli %[[LANE]], %c1
// CHECK:     %[[FIRST:.*]] = arith.addi %c0, %[[OFFSET]]
// CHECK:     %[[STRIDE:.*]] = arith.muli %c1, %[[LANES]]
// CHECK:     %[[PART:.*]] = scf.for %[[K:.*]] = %[[FIRST]] to %c64 step %[[STRIDE]] iter_args(%[[A:.*]] = %[[NEG_ZERO]]) -> (f32) {
// CHECK:       memref.load %[[X]][%[[T]], %[[K]]]
// CHECK:       memref.load %[[W]][%[[E]], %[[K]]]
// CHECK:       %[[P:.*]] = arith.mulf
// CHECK:       %[[S:.*]] = arith.addf %[[A]], %[[P]] : f32
// CHECK:       scf.yield %[[S]]
// CHECK:     scf.reduce(%[[PART]] : f32) {
// CHECK:     ^bb0(%[[L:.*]]: f32, %[[R:.*]]: f32):
// CHECK:       %[[C:.*]] = arith.addf %[[L]], %[[R]] : f32
// CHECK:       scf.reduce.return %[[C]]
// CHECK:   %[[SUM:.*]] = arith.addf %[[INIT]], %[[PARTS]] : f32
// CHECK:   memref.store %[[SUM]], %[[OUT]][%[[T]], %[[E]]]

// CHOICE-LABEL: func @router
// CHOICE: %[[T_COUNT:.*]] = arith.ceildivui
// CHOICE: %[[E_COUNT:.*]] = arith.ceildivui
// CHOICE: %[[PRODUCT:.*]] = arith.muli
// CHOICE: %[[COUNT:.*]] = arith.muli %[[PRODUCT]], %[[E_COUNT]]
// CHOICE: %[[FEW:.*]] = arith.cmpi ult, %[[COUNT]], %c100
// CHOICE: scf.if %[[FEW]] {
// CHOICE:   scf.parallel
// CHOICE:     scf.parallel (%{{.*}}) = (%{{.*}}) to (%c16{{.*}}) step (%{{.*}}) init
// CHOICE: } else {
// CHOICE:   scf.parallel
// CHOICE-NOT: scf.parallel
// CHOICE:     scf.for %{{.*}} = %c0 to %c64 step %c1 iter_args
// CHOICE: return

// OFF-LABEL: func @router
// OFF-NOT: scf.if
// OFF: scf.parallel
// OFF-NOT: scf.parallel
// OFF: return

// BAD-LANES: moe-split-parallel-reductions: lanes must be a power of two
// BAD-ITERATIONS: moe-split-parallel-reductions: max-iterations must be at least 0
func.func @router(%x: memref<?x64xf32>, %w: memref<8x64xf32>,
                  %out: memref<?x8xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %c64 = arith.constant 64 : index
  %t = memref.dim %x, %c0 : memref<?x64xf32>
  scf.parallel (%i, %e) = (%c0, %c0) to (%t, %c8) step (%c1, %c1) {
    %init = memref.load %out[%i, %e] : memref<?x8xf32>
    %sum = scf.for %k = %c0 to %c64 step %c1 iter_args(%a = %init) -> (f32) {
      %xv = memref.load %x[%i, %k] : memref<?x64xf32>
      %wv = memref.load %w[%e, %k] : memref<8x64xf32>
      %p = arith.mulf %xv, %wv : f32
      %s = arith.addf %a, %p : f32
      scf.yield %s : f32
    }
    memref.store %sum, %out[%i, %e] : memref<?x8xf32>
    scf.reduce
  }
  return
}

// -----

// Several sums in one loop (a register tile, as moe-jam-parallel-reductions
// leaves it), inside an scf.if: one scf.reduce region per sum; a maximum
// (arith.maximumf, from -inf) and an integer sum (arith.addi, from 0)
// combine as they are. A loop of 20 trips gives 20 / 4 = 5 lanes: the
// largest power of two below is 4.
// CHECK-LABEL: func @tile_in_if
// CHECK: scf.if
// CHECK:   %[[NEG_INF:.*]] = arith.constant 0xFF800000 : f32
// CHECK:   %[[ZERO:.*]] = arith.constant 0 : i32
// CHECK:   %[[PARTS:.*]]:2 = scf.parallel (%{{.*}}) = (%{{.*}}) to (%c4{{.*}}) step (%{{.*}}) init (%[[NEG_INF]], %[[ZERO]]) -> (f32, i32) {
// CHECK:     scf.for {{.*}} iter_args(%{{.*}} = %[[NEG_INF]], %{{.*}} = %[[ZERO]]) -> (f32, i32)
// CHECK:     scf.reduce(%{{.*}}, %{{.*}} : f32, i32) {
// CHECK:       arith.maximumf
// CHECK:     }, {
// CHECK:       arith.addi
// CHECK:   arith.maximumf %{{.*}}, %[[PARTS]]#0
// CHECK:   arith.addi %{{.*}}, %[[PARTS]]#1
func.func @tile_in_if(%x: memref<?x20xf32>, %y: memref<?x20xi32>,
                      %m: memref<?xf32>, %n: memref<?xi32>, %go: i1) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c20 = arith.constant 20 : index
  %t = memref.dim %x, %c0 : memref<?x20xf32>
  %lowest = arith.constant 0xFF800000 : f32
  %zero = arith.constant 0 : i32
  scf.parallel (%i) = (%c0) to (%t) step (%c1) {
    scf.if %go {
      %r:2 = scf.for %k = %c0 to %c20 step %c1
          iter_args(%a = %lowest, %b = %zero) -> (f32, i32) {
        %xv = memref.load %x[%i, %k] : memref<?x20xf32>
        %yv = memref.load %y[%i, %k] : memref<?x20xi32>
        %mx = arith.maximumf %xv, %a : f32
        %s = arith.addi %b, %yv : i32
        scf.yield %mx, %s : f32, i32
      }
      memref.store %r#0, %m[%i] : memref<?xf32>
      memref.store %r#1, %n[%i] : memref<?xi32>
    }
    scf.reduce
  }
  return
}

// -----

// Loops that stay as they are: a dynamic trip count, a store in the
// reduction loop, a sum that is used twice, a combination that is not
// associative (subf), too few trips for two lanes of 4, a loop without
// iteration arguments, a reduction inside a nested parallel loop, an i32
// induction variable, an unsigned comparison (from -8, no iterations), an
// integer sum with an overflow flag and a maxnumf under nnan (which
// regrouping could make poison).
// CHECK-LABEL: func @unsplit
// CHECK-NOT: init (
// CHECK: return
func.func @unsplit(%x: memref<?x64xf32>, %out: memref<?xf32>, %n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c7 = arith.constant 7 : index
  %c64 = arith.constant 64 : index
  %zero = arith.constant 0.0 : f32
  %t = memref.dim %x, %c0 : memref<?x64xf32>
  scf.parallel (%i) = (%c0) to (%t) step (%c1) {
    %dynamic = scf.for %k = %c0 to %n step %c1 iter_args(%a = %zero) -> (f32) {
      %v = memref.load %x[%i, %k] : memref<?x64xf32>
      %s = arith.addf %a, %v : f32
      scf.yield %s : f32
    }
    %stores = scf.for %k = %c0 to %c64 step %c1 iter_args(%a = %dynamic) -> (f32) {
      %v = memref.load %x[%i, %k] : memref<?x64xf32>
      memref.store %v, %out[%i] : memref<?xf32>
      %s = arith.addf %a, %v : f32
      scf.yield %s : f32
    }
    %twice = scf.for %k = %c0 to %c64 step %c1 iter_args(%a = %stores) -> (f32) {
      %v = memref.load %x[%i, %k] : memref<?x64xf32>
      %s = arith.addf %a, %v : f32
      %u = arith.mulf %a, %v : f32
      %w = arith.addf %s, %u : f32
      scf.yield %w : f32
    }
    %difference = scf.for %k = %c0 to %c64 step %c1 iter_args(%a = %twice) -> (f32) {
      %v = memref.load %x[%i, %k] : memref<?x64xf32>
      %s = arith.subf %a, %v : f32
      scf.yield %s : f32
    }
    %short = scf.for %k = %c0 to %c7 step %c1 iter_args(%a = %difference) -> (f32) {
      %v = memref.load %x[%i, %k] : memref<?x64xf32>
      %s = arith.addf %a, %v : f32
      scf.yield %s : f32
    }
    scf.for %k = %c0 to %c64 step %c1 {
      %v = memref.load %x[%i, %k] : memref<?x64xf32>
      memref.store %v, %out[%i] : memref<?xf32>
    }
    scf.parallel (%j) = (%c0) to (%c7) step (%c1) {
      %nested = scf.for %k = %c0 to %c64 step %c1 iter_args(%a = %zero) -> (f32) {
        %v = memref.load %x[%j, %k] : memref<?x64xf32>
        %s = arith.addf %a, %v : f32
        scf.yield %s : f32
      }
      memref.store %nested, %out[%j] : memref<?xf32>
      scf.reduce
    }
    %c0_i32 = arith.constant 0 : i32
    %c1_i32 = arith.constant 1 : i32
    %c64_i32 = arith.constant 64 : i32
    %narrow = scf.for %k = %c0_i32 to %c64_i32 step %c1_i32 iter_args(%a = %short) -> (f32) : i32 {
      %kk = arith.index_cast %k : i32 to index
      %v = memref.load %x[%i, %kk] : memref<?x64xf32>
      %s = arith.addf %a, %v : f32
      scf.yield %s : f32
    }
    %cm8 = arith.constant -8 : index
    %unsigned = scf.for unsigned %k = %cm8 to %c64 step %c1 iter_args(%a = %narrow) -> (f32) {
      %v = memref.load %x[%i, %k] : memref<?x64xf32>
      %s = arith.addf %a, %v : f32
      scf.yield %s : f32
    }
    %zero_i32 = arith.constant 0 : i32
    %flagged = scf.for %k = %c0 to %c64 step %c1 iter_args(%a = %zero_i32) -> (i32) {
      %v = memref.load %x[%i, %k] : memref<?x64xf32>
      %w = arith.fptosi %v : f32 to i32
      %s = arith.addi %a, %w overflow<nsw> : i32
      scf.yield %s : i32
    }
    %nnan = scf.for %k = %c0 to %c64 step %c1 iter_args(%a = %unsigned) -> (f32) {
      %v = memref.load %x[%i, %k] : memref<?x64xf32>
      %s = arith.maxnumf %a, %v fastmath<nnan> : f32
      scf.yield %s : f32
    }
    %f = arith.sitofp %flagged : i32 to f32
    %both = arith.addf %nnan, %f : f32
    memref.store %both, %out[%i] : memref<?xf32>
    scf.reduce
  }
  return
}

// -----

// A parallel loop whose iterations allocate a buffer of their own stays as
// it is (a block of threads per iteration would need the buffer shared).
// CHECK-LABEL: func @private_buffer
// CHECK-NOT: init (
// CHECK: return
func.func @private_buffer(%x: memref<?x64xf32>, %out: memref<?xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %zero = arith.constant 0.0 : f32
  %t = memref.dim %x, %c0 : memref<?x64xf32>
  scf.parallel (%i) = (%c0) to (%t) step (%c1) {
    %scratch = memref.alloca() : memref<1xf32>
    %sum = scf.for %k = %c0 to %c64 step %c1 iter_args(%a = %zero) -> (f32) {
      %v = memref.load %x[%i, %k] : memref<?x64xf32>
      %s = arith.addf %a, %v : f32
      scf.yield %s : f32
    }
    memref.store %sum, %scratch[%c0] : memref<1xf32>
    %back = memref.load %scratch[%c0] : memref<1xf32>
    memref.store %back, %out[%i] : memref<?xf32>
    scf.reduce
  }
  return
}
