// RUN: moe-opt %s --split-input-file --moe-lower-grouped-matmul-to-vector | FileCheck %s

// Block-scaled FP8 weights in panels of 32 columns (blocks of 64 columns x
// 16 depth): each step loads the scale of its panel's column block and its
// depth block, decodes each vector of 16 e4m3 bytes once (sign-extended,
// shifted into an f32's exponent and mantissa, times 2^120, times the
// scale; NaN kept) and feeds the tile's rows.
// CHECK-LABEL: func @block_scaled
// CHECK: scf.for %[[K:[a-z0-9]+]] = %c0 to %{{.*}} step %{{.*}} iter_args(
// CHECK:   %[[NB:.*]] = arith.divui %{{.*}}, %c2{{.*}} : index
// CHECK:   %[[KB:.*]] = arith.divui %[[K]], %c16{{.*}} : index
// CHECK:   %[[S:.*]] = memref.load %{{.*}}[%{{.*}}, %[[NB]], %[[KB]]] : memref<2x2x3xf32>
// CHECK:   %[[SV:.*]] = vector.broadcast %[[S]] : f32 to vector<16xf32>
// CHECK:   %[[B:.*]] = vector.transfer_read %{{.*}}[%{{.*}}, %{{.*}}, %[[K]], %{{.*}}], %{{.*}} {in_bounds = [true]} : memref<2x4x40x32xf8E4M3FN>, vector<16xf8E4M3FN>
// CHECK:   %[[I8:.*]] = arith.bitcast %[[B]] : vector<16xf8E4M3FN> to vector<16xi8>
// CHECK:   %[[I32:.*]] = arith.extsi %[[I8]] : vector<16xi8> to vector<16xi32>
// CHECK:   %[[SH:.*]] = arith.shli %[[I32]], %{{.*}} : vector<16xi32>
// CHECK:   %[[WORD:.*]] = arith.andi %[[SH]], %{{.*}} : vector<16xi32>
// CHECK:   %[[F:.*]] = arith.bitcast %[[WORD]] : vector<16xi32> to vector<16xf32>
// CHECK:   %[[EXACT:.*]] = arith.mulf %[[F]], %{{.*}} : vector<16xf32>
// CHECK:   %[[SCALED:.*]] = arith.mulf %[[EXACT]], %[[SV]] : vector<16xf32>
// CHECK:   %[[NAN:.*]] = arith.cmpi eq
// CHECK:   %[[W:.*]] = arith.select %[[NAN]], %{{.*}}, %[[SCALED]] : vector<16xi1>, vector<16xf32>
// CHECK:   vector.fma %{{.*}}, %[[W]], %{{.*}} : vector<16xf32>
func.func @block_scaled(%rows: memref<?x40xf32>, %w: memref<2x4x40x32xf8E4M3FN>,
                        %s: memref<2x2x3xf32>, %blocks: memref<?xi32>,
                        %acc: memref<?x128xf32>) {
  moe.grouped_matmul block_rows(4)
      ins(%rows, %w, %blocks : memref<?x40xf32>, memref<2x4x40x32xf8E4M3FN>, memref<?xi32>)
      scale(%s : memref<2x2x3xf32>) block [64, 16]
      outs(%acc : memref<?x128xf32>)
  return
}

// -----

// In the checkpoint layout they have no vector kernel: the op is left for
// moe-grouped-matmul-to-loops.
// CHECK-LABEL: func @block_scaled_unpacked
// CHECK: moe.grouped_matmul {{.*}} scale(
func.func @block_scaled_unpacked(%rows: memref<?x40xf32>, %w: memref<2x128x40xf8E4M3FN>,
                                 %s: memref<2x2x3xf32>, %blocks: memref<?xi32>,
                                 %acc: memref<?x128xf32>) {
  moe.grouped_matmul block_rows(4)
      ins(%rows, %w, %blocks : memref<?x40xf32>, memref<2x128x40xf8E4M3FN>, memref<?xi32>)
      scale(%s : memref<2x2x3xf32>) block [64, 16]
      outs(%acc : memref<?x128xf32>)
  return
}
