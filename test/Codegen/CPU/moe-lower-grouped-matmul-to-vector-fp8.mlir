// RUN: moe-opt %s --split-input-file --moe-lower-grouped-matmul-to-vector | FileCheck %s
// RUN: moe-opt %s --split-input-file --moe-lower-grouped-matmul-to-vector="bf16-dot=1" | FileCheck %s --check-prefix=DOT
// RUN: moe-opt %s --split-input-file --moe-lower-grouped-matmul-to-vector="bf16-dot=1 fp8-byte-lookup=1" | FileCheck %s --check-prefix=LOOKUP

// Block-scaled FP8 weights in panels of 32 columns (blocks of 64 columns x
// 16 depth): each step loads the scale of its panel's column block and its
// depth block, widens each vector of 16 e4m3 bytes once (arith.extf, for
// moe-expand-float8), multiplies it by the scale and feeds the tile's rows.
// CHECK-LABEL: func @block_scaled
// CHECK: scf.for %[[K:[a-z0-9]+]] = %c0 to %{{.*}} step %{{.*}} iter_args(
// CHECK:   %[[KB:.*]] = arith.divui %[[K]], %c16{{.*}} : index
// CHECK:   %[[NB:.*]] = arith.divui %{{.*}}, %c2{{.*}} : index
// CHECK:   %[[S:.*]] = memref.load %{{.*}}[%{{.*}}, %[[NB]], %[[KB]]] : memref<2x2x3xf32>
// CHECK:   %[[SV:.*]] = vector.broadcast %[[S]] : f32 to vector<16xf32>
// CHECK:   %[[B:.*]] = vector.transfer_read %{{.*}}[%{{.*}}, %{{.*}}, %[[K]], %{{.*}}], %{{.*}} {in_bounds = [true]} : memref<2x4x40x32xf8E4M3FN>, vector<16xf8E4M3FN>
// CHECK:   %[[V:.*]] = arith.extf %[[B]] : vector<16xf8E4M3FN> to vector<16xf32>
// CHECK:   %[[W:.*]] = arith.mulf %[[V]], %[[SV]] : vector<16xf32>
// CHECK:   vector.fma %{{.*}}, %[[W]], %{{.*}} : vector<16xf32>
// bf16-dot changes nothing for panels of single K: f32 FMAs.
// DOT-LABEL: func @block_scaled
// DOT-NOT: memref.alloc
// DOT: arith.extf %{{.*}} : vector<16xf8E4M3FN> to vector<16xf32>
// DOT: vector.fma
// DOT-NOT: x86vector
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

// -----

// FP8 in pairs of K (blocks of 64 columns x 16 depth: 8 pairs), widened:
// a row block of more than one tile's rows multiplies its expert's panels
// staged as bf16 pairs of the exact e4m3 values (unscaled: each f32's
// high half, pairs as packed), staged when the previous block was another
// expert's. Its tiles multiply the staged pairs by dot products per depth
// block, then add each block's sums times the block's scale. Fewer rows
// (decode) decode the same way in registers.
// DOT-LABEL: func @block_scaled_pairs
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
// DOT:     %[[B:.*]] = vector.transfer_read %{{.*}}[%{{.*}}, %[[P]], %[[Q]], %c0{{.*}}], %{{.*}} {in_bounds = [true]} : memref<2x4x20x64xf8E4M3FN>, vector<32xf8E4M3FN>
// DOT:     %[[F:.*]] = arith.extf %[[B]] : vector<32xf8E4M3FN> to vector<32xf32>
// DOT:     %[[I:.*]] = arith.bitcast %[[F]] : vector<32xf32> to vector<32xi32>
// DOT:     %[[H:.*]] = arith.shrui %[[I]], %{{.*}} : vector<32xi32>
// DOT:     %[[T:.*]] = arith.trunci %[[H]] : vector<32xi32> to vector<32xi16>
// DOT:     %[[V:.*]] = arith.bitcast %[[T]] : vector<32xi16> to vector<32xbf16>
// DOT:     %[[W:.*]] = vector.bitcast %[[V]] : vector<32xbf16> to vector<16xi32>
// DOT:     vector.transfer_write %[[W]], %[[STAGE]][%[[P]], %[[Q]], %c0{{.*}}] {in_bounds = [true]} : vector<16xi32>, memref<?x?x32xi32>
// DOT:   memref.store %{{.*}}, %[[STAGED]]
// DOT:   scf.for %[[BLK:[a-z0-9]+]] = %c0 to %{{.*}} step %c1{{.*}} iter_args(
// DOT:     scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} iter_args(
// DOT:       %[[SW:.*]] = vector.transfer_read %[[STAGE]]
// DOT:       vector.bitcast %[[SW]] : vector<16xi32> to vector<32xbf16>
// DOT:       x86vector.avx512.dot
// DOT:     %[[S:.*]] = memref.load %{{.*}}[%{{.*}}, %{{.*}}, %[[BLK]]] : memref<2x2x3xf32>
// DOT:     %[[SV:.*]] = vector.broadcast %[[S]] : f32 to vector<16xf32>
// DOT:     vector.fma %{{.*}}, %[[SV]], %{{.*}} : vector<16xf32>
// DOT: } else {
// DOT:   arith.extf %{{.*}} : vector<32xf8E4M3FN> to vector<32xf32>
// DOT:   x86vector.avx512.dot
// DOT: memref.dealloc %[[STAGE]] : memref<?x?x32xi32>
// DOT: memref.dealloc %[[STAGED]] : memref<1xindex>
// With byte lookups, every tile decodes in registers (nothing staged): a
// row of 64 bytes (32 columns x 2 depths) is two vpermi2b lookups of the
// bf16 bytes of each 7-bit magnitude (the sign or-ed into the high byte)
// and two in-lane unpacks into two vectors of 16 pairs, the columns of the
// 128-bit lanes in the order the unpacks leave them; the finished sums are
// put back in column order by two shuffles per pair of accumulators.
// LOOKUP-LABEL: func @block_scaled_pairs
// LOOKUP-NOT: memref.alloc
// LOOKUP: %[[SUMS:.*]]:16 = scf.for %[[BLK:[a-z0-9]+]] = %c0 to %{{.*}} step %c1{{.*}} iter_args(
// LOOKUP:   scf.for %[[Q:.*]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args(
// LOOKUP:     %[[B:.*]] = vector.transfer_read %{{.*}}[%{{.*}}, %{{.*}}, %[[Q]], %c0{{.*}}], %{{.*}} {in_bounds = [true]} : memref<2x4x20x64xf8E4M3FN>, vector<64xf8E4M3FN>
// LOOKUP:     %[[BYTES:.*]] = vector.bitcast %[[B]] : vector<64xf8E4M3FN> to vector<64xi8>
// LOOKUP:     %[[MAG:.*]] = arith.andi %[[BYTES]], %{{.*}} : vector<64xi8>
// LOOKUP:     %[[SIGN:.*]] = arith.andi %[[BYTES]], %{{.*}} : vector<64xi8>
// LOOKUP:     %[[HI0:.*]] = arith.constant dense<[0, 59, 59, 59, 60, 60, 60, 60, 60, {{.*}}]> : vector<64xi8>
// LOOKUP:     %[[HI1:.*]] = arith.constant dense<[64, {{.*}}, 67, 127]> : vector<64xi8>
// LOOKUP:     %[[HM:.*]] = llvm.call_intrinsic "llvm.x86.avx512.vpermi2var.qi.512"(%[[HI0]], %[[MAG]], %[[HI1]]) : (vector<64xi8>, vector<64xi8>, vector<64xi8>) -> vector<64xi8>
// LOOKUP:     %[[HIGH:.*]] = arith.ori %[[HM]], %[[SIGN]] : vector<64xi8>
// LOOKUP:     %[[LOW:.*]] = llvm.call_intrinsic "llvm.x86.avx512.vpermi2var.qi.512"(%{{.*}}, %[[MAG]], %{{.*}})
// LOOKUP:     %[[U0:.*]] = vector.shuffle %[[LOW]], %[[HIGH]] [0, 64, 1, 65, 2, 66, 3, 67, 4, 68, 5, 69, 6, 70, 7, 71, 16, 80, {{.*}}, 55, 119] : vector<64xi8>, vector<64xi8>
// LOOKUP:     %[[W0:.*]] = vector.bitcast %[[U0]] : vector<64xi8> to vector<32xbf16>
// LOOKUP:     %[[U1:.*]] = vector.shuffle %[[LOW]], %[[HIGH]] [8, 72, 9, 73, {{.*}}, 63, 127] : vector<64xi8>, vector<64xi8>
// LOOKUP:     %[[W1:.*]] = vector.bitcast %[[U1]] : vector<64xi8> to vector<32xbf16>
// LOOKUP:     x86vector.avx512.dot %{{.*}}, %{{.*}}, %[[W0]] : vector<32xbf16> -> vector<16xf32>
// LOOKUP:     x86vector.avx512.dot %{{.*}}, %{{.*}}, %[[W1]] : vector<32xbf16> -> vector<16xf32>
// LOOKUP:   %[[S:.*]] = memref.load %{{.*}}[%{{.*}}, %{{.*}}, %[[BLK]]] : memref<2x2x3xf32>
// LOOKUP:   vector.fma
// LOOKUP: vector.shuffle %[[SUMS]]#0, %[[SUMS]]#1 [0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23] : vector<16xf32>, vector<16xf32>
// LOOKUP: vector.shuffle %[[SUMS]]#0, %[[SUMS]]#1 [8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31] : vector<16xf32>, vector<16xf32>
// LOOKUP-NOT: memref.dealloc
func.func @block_scaled_pairs(%rows: memref<?x40xbf16>, %w: memref<2x4x20x32x2xf8E4M3FN>,
                              %s: memref<2x2x3xf32>, %blocks: memref<?xi32>,
                              %acc: memref<?x128xf32>) {
  moe.grouped_matmul block_rows(4)
      ins(%rows, %w, %blocks : memref<?x40xbf16>, memref<2x4x20x32x2xf8E4M3FN>, memref<?xi32>)
      scale(%s : memref<2x2x3xf32>) block [64, 16]
      outs(%acc : memref<?x128xf32>)
  return
}
