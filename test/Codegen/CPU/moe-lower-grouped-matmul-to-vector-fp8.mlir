// RUN: moe-opt %s --split-input-file --moe-lower-grouped-matmul-to-vector | FileCheck %s
// RUN: moe-opt %s --split-input-file --moe-lower-grouped-matmul-to-vector="bf16-dot=1" | FileCheck %s --check-prefix=DOT

// Block-scaled FP8 weights in panels of 32 columns (blocks of 64 columns x
// 16 depth): each step loads the scale of its panel's column block and its
// depth block, widens each vector of 16 e4m3 bytes once (arith.extf, for
// moe-expand-float8), multiplies it by the scale and feeds the tile's rows.
// CHECK-LABEL: func @block_scaled
// CHECK: scf.for %[[K:[a-z0-9]+]] = %c0 to %{{.*}} step %{{.*}} iter_args(
// CHECK:   %[[NB:.*]] = arith.divui %{{.*}}, %c2{{.*}} : index
// CHECK:   %[[KB:.*]] = arith.divui %[[K]], %c16{{.*}} : index
// CHECK:   %[[S:.*]] = memref.load %{{.*}}[%{{.*}}, %[[NB]], %[[KB]]] : memref<2x2x3xf32>
// CHECK:   %[[SV:.*]] = vector.broadcast %[[S]] : f32 to vector<16xf32>
// CHECK:   %[[B:.*]] = vector.transfer_read %{{.*}}[%{{.*}}, %{{.*}}, %[[K]], %{{.*}}], %{{.*}} {in_bounds = [true]} : memref<2x4x40x32xf8E4M3FN>, vector<16xf8E4M3FN>
// CHECK:   %[[V:.*]] = arith.extf %[[B]] : vector<16xf8E4M3FN> to vector<16xf32>
// CHECK:   %[[W:.*]] = arith.mulf %[[V]], %[[SV]] : vector<16xf32>
// CHECK:   vector.fma %{{.*}}, %[[W]], %{{.*}} : vector<16xf32>
// With vdpbf16ps, a row block of more than one tile's rows multiplies its
// expert's panels staged as bf16 pairs of the exact e4m3 values
// (unscaled), staged when the previous block was another expert's: the
// f32 bits' high halves, depth 2q in the low half of word q, 2q + 1 in its
// high half, an odd K's last value with a zero. Its tiles multiply the
// staged pairs by dot products per depth block, then add each block's sums
// times the block's scale. Fewer rows (decode) take the in-register decode.
// DOT-LABEL: func @block_scaled
// DOT: %[[STAGE:.*]] = memref.alloc(%{{.*}}, %{{.*}}) : memref<?x?x32xi32>
// DOT: %[[STAGED:.*]] = memref.alloc() : memref<1xindex>
// DOT: memref.store %c-1{{.*}}, %[[STAGED]]
// DOT: %[[MANY:.*]] = arith.cmpi ugt, %{{.*}}, %c8{{.*}} : index
// DOT: scf.if %[[MANY]] {
// DOT:   %[[WAS:.*]] = memref.load %[[STAGED]]
// DOT:   %[[OTHER:.*]] = arith.cmpi ne, %[[WAS]], %{{.*}} : index
// DOT:   scf.if %[[OTHER]] {
// DOT:   scf.for %[[P:.*]] =
// DOT:   scf.for %[[Q:.*]] =
// DOT:     arith.extf %{{.*}} : vector<16xf8E4M3FN> to vector<16xf32>
// DOT:     %[[EVEN:.*]] = arith.shrui %{{.*}}, %{{.*}} : vector<16xi32>
// DOT:     %[[WORD:.*]] = arith.ori %{{.*}}, %[[EVEN]] : vector<16xi32>
// DOT:     vector.transfer_write %[[WORD]], %[[STAGE]][%[[P]], %[[Q]], %{{.*}}] {in_bounds = [true]} : vector<16xi32>, memref<?x?x32xi32>
// DOT:   scf.if
// DOT:     vector.transfer_write %{{.*}}, %[[STAGE]]
// DOT:   memref.store %{{.*}}, %[[STAGED]]
// DOT:   scf.for %[[BLK:[a-z0-9]+]] = %c0 to %{{.*}} step %c1{{.*}} iter_args(
// DOT:     scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} iter_args(
// DOT:       %[[W:.*]] = vector.transfer_read %[[STAGE]]
// DOT:       vector.bitcast %[[W]] : vector<16xi32> to vector<32xbf16>
// DOT:       x86vector.avx512.dot
// DOT:     %[[S:.*]] = memref.load %{{.*}}[%{{.*}}, %{{.*}}, %[[BLK]]] : memref<2x2x3xf32>
// DOT:     %[[SV:.*]] = vector.broadcast %[[S]] : f32 to vector<16xf32>
// DOT:     vector.fma %{{.*}}, %[[SV]], %{{.*}} : vector<16xf32>
// DOT: } else {
// DOT:   arith.extf %{{.*}} : vector<16xf8E4M3FN> to vector<16xf32>
// DOT:   vector.fma
// DOT: memref.dealloc %[[STAGE]] : memref<?x?x32xi32>
// DOT: memref.dealloc %[[STAGED]] : memref<1xindex>
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
