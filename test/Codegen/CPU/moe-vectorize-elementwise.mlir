// RUN: moe-opt %s --split-input-file --moe-vectorize-elementwise | FileCheck %s
// RUN: moe-opt %s --split-input-file --moe-vectorize-elementwise=vector-width=8 | FileCheck %s --check-prefix=NARROW
// RUN: not moe-opt %s --moe-vectorize-elementwise=vector-width=0 2>&1 | FileCheck %s --check-prefix=BAD

// BAD: moe-vectorize-elementwise: vector-width must be at least 1, got 0

// SwiGLU on rows of 37 columns, bf16 out: an scf.parallel over the rows;
// per row, two whole vectors of 16 in bounds, then the remainder (5 lanes)
// as one padded read and masked write. The body runs on vectors, its
// constant broadcast; the exponential is upstream's polynomial (fma, no
// math.exp left), the scalar exponential outside the generic is untouched.
// CHECK-LABEL: func @swiglu
// CHECK-SAME: (%[[G:.*]]: memref<?x37xf32>, %[[U:.*]]: memref<?x37xf32>, %[[OUT:.*]]: memref<?x37xbf16>, %[[S:.*]]: f32)
// CHECK: scf.parallel (%[[ROW:.*]]) =
// CHECK:   scf.for %[[I:.*]] = %{{.*}} to %{{.*}} step %c16
// CHECK:     %[[A:.*]] = vector.transfer_read %[[G]][%[[ROW]], %[[I]]], %{{.*}} {in_bounds = [true]} : memref<?x37xf32>, vector<16xf32>
// CHECK:     %[[B:.*]] = vector.transfer_read %[[U]][%[[ROW]], %[[I]]], %{{.*}} {in_bounds = [true]} : memref<?x37xf32>, vector<16xf32>
// CHECK:     arith.negf %[[A]] : vector<16xf32>
// CHECK-NOT: math.exp
// CHECK:     math.fma
// CHECK:     vector.broadcast %{{.*}} : f32 to vector<16xf32>
// CHECK:     arith.truncf %{{.*}} : vector<16xf32> to vector<16xbf16>
// CHECK:     vector.transfer_write %{{.*}}, %[[OUT]][%[[ROW]], %[[I]]] {in_bounds = [true]} : vector<16xbf16>, memref<?x37xbf16>
// CHECK:   scf.if
// CHECK:     vector.transfer_read %[[G]][%[[ROW]], %{{.*}}], %{{.*}} : memref<?x37xf32>, vector<16xf32>
// CHECK:     vector.transfer_write %{{.*}}, %[[OUT]][%[[ROW]], %{{.*}}] : vector<16xbf16>, memref<?x37xbf16>
// CHECK: math.exp %[[S]] : f32
// NARROW-LABEL: func @swiglu
// NARROW: scf.for {{.*}} step %c8
// NARROW:   vector.transfer_read {{.*}} : memref<?x37xf32>, vector<8xf32>
#map = affine_map<(d0, d1) -> (d0, d1)>
func.func @swiglu(%g: memref<?x37xf32>, %u: memref<?x37xf32>,
                  %out: memref<?x37xbf16>, %s: f32) -> f32 {
  %one = arith.constant 1.0 : f32
  linalg.generic {indexing_maps = [#map, #map, #map],
                  iterator_types = ["parallel", "parallel"]}
      ins(%g, %u : memref<?x37xf32>, memref<?x37xf32>)
      outs(%out : memref<?x37xbf16>) {
  ^bb0(%a: f32, %b: f32, %o: bf16):
    %n = arith.negf %a : f32
    %e = math.exp %n : f32
    %d = arith.addf %e, %one : f32
    %r = arith.divf %one, %d : f32
    %x = arith.mulf %a, %r : f32
    %y = arith.mulf %x, %b : f32
    %t = arith.truncf %y : f32 to bf16
    linalg.yield %t : bf16
  }
  %v = math.exp %s : f32
  return %v : f32
}

// -----

// One dimension: no parallel loop; an output read in the body is read as a
// vector too (an accumulation into it).
// CHECK-LABEL: func @residual_add
// CHECK-NOT: scf.parallel
// CHECK: scf.for
// CHECK:   %[[X:.*]] = vector.transfer_read %arg0
// CHECK:   %[[Y:.*]] = vector.transfer_read %arg1
// CHECK:   %[[SUM:.*]] = arith.addf %[[X]], %[[Y]] : vector<16xf32>
// CHECK:   vector.transfer_write %[[SUM]], %arg1
#map1 = affine_map<(d0) -> (d0)>
func.func @residual_add(%x: memref<?xf32>, %acc: memref<?xf32>) {
  linalg.generic {indexing_maps = [#map1, #map1], iterator_types = ["parallel"]}
      ins(%x : memref<?xf32>) outs(%acc : memref<?xf32>) {
  ^bb0(%a: f32, %b: f32):
    %s = arith.addf %a, %b : f32
    linalg.yield %s : f32
  }
  return
}

// -----

// Not element-wise: a transposed map, a reduction, a body reading indices,
// and tensors, stay as they are.
// CHECK-LABEL: func @left_alone
// CHECK-COUNT-4: linalg.generic
// CHECK-NOT: vector.transfer_read
#id = affine_map<(d0, d1) -> (d0, d1)>
#tr = affine_map<(d0, d1) -> (d1, d0)>
#row = affine_map<(d0, d1) -> (d0)>
func.func @left_alone(%a: memref<8x8xf32>, %b: memref<8x8xf32>, %r: memref<8xf32>,
                      %t: tensor<8x8xf32>) -> tensor<8x8xf32> {
  linalg.generic {indexing_maps = [#tr, #id], iterator_types = ["parallel", "parallel"]}
      ins(%a : memref<8x8xf32>) outs(%b : memref<8x8xf32>) {
  ^bb0(%x: f32, %y: f32):
    linalg.yield %x : f32
  }
  linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "reduction"]}
      ins(%a : memref<8x8xf32>) outs(%r : memref<8xf32>) {
  ^bb0(%x: f32, %y: f32):
    %s = arith.addf %x, %y : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [#id], iterator_types = ["parallel", "parallel"]}
      outs(%b : memref<8x8xf32>) {
  ^bb0(%y: f32):
    %i = linalg.index 0 : index
    %c = arith.index_cast %i : index to i32
    %f = arith.sitofp %c : i32 to f32
    linalg.yield %f : f32
  }
  %e = tensor.empty() : tensor<8x8xf32>
  %n = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%t : tensor<8x8xf32>) outs(%e : tensor<8x8xf32>) {
  ^bb0(%x: f32, %y: f32):
    %s = arith.negf %x : f32
    linalg.yield %s : f32
  } -> tensor<8x8xf32>
  return %n : tensor<8x8xf32>
}
