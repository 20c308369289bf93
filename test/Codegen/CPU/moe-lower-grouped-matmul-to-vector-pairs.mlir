// RUN: moe-opt %s --split-input-file --moe-lower-grouped-matmul-to-vector="bf16-dot=1" | FileCheck %s --check-prefix=DOT
// RUN: moe-opt %s --split-input-file --moe-lower-grouped-matmul-to-vector | FileCheck %s --check-prefix=FMA
// RUN: not moe-opt %s --moe-lower-grouped-matmul-to-vector="bf16-dot=1 vector-width=12" 2>&1 | FileCheck %s --check-prefix=BAD

// BAD: moe-lower-grouped-matmul-to-vector: bf16-dot needs a vector-width of 4, 8 or 16, got 12

// bf16 weights packed in pairs of K (K = 15: 7 whole pairs, then the last
// input paired with a zero). The panel's pairs are read as one run of 2P
// bf16 per step, each row's input pair broadcast as one i32.
// DOT-LABEL: func @pairs
// DOT: %[[W:.*]] = memref.collapse_shape %{{.*}} {{\[}}[0], [1], [2], [3, 4]] : memref<3x2x8x32x2xbf16> into memref<3x2x8x64xbf16>
// DOT: scf.for
// DOT: %[[WV:.*]] = vector.transfer_read %[[W]][%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}], %{{.*}} {in_bounds = [true]} : memref<3x2x8x64xbf16>, vector<32xbf16>
// DOT: %[[X:.*]] = vector.load %{{.*}}[%{{.*}}, %{{.*}}] : memref<?x15xbf16>, vector<2xbf16>
// DOT: %[[XI:.*]] = vector.bitcast %[[X]] : vector<2xbf16> to vector<1xi32>
// DOT: %[[XS:.*]] = vector.extract %[[XI]][0] : i32 from vector<1xi32>
// DOT: %[[XB:.*]] = vector.broadcast %[[XS]] : i32 to vector<16xi32>
// DOT: %[[XP:.*]] = vector.bitcast %[[XB]] : vector<16xi32> to vector<32xbf16>
// DOT: x86vector.avx512.dot %{{.*}}, %[[XP]], %[[WV]] : vector<32xbf16> -> vector<16xf32>
// The odd K's last input, with a zero.
// DOT: scf.if
// DOT: %[[LAST:.*]] = memref.load %{{.*}}[%{{.*}}, %{{.*}}] : memref<?x15xbf16>
// DOT: vector.insert %[[LAST]], %{{.*}} [0] : bf16 into vector<2xbf16>
// DOT: x86vector.avx512.dot
// DOT: vector.transfer_write

// Without the instruction: each half of a pair widened by a shift or a mask,
// two FMAs.
// FMA-LABEL: func @pairs
// FMA-NOT: x86vector
// FMA: arith.shli %{{.*}}, %{{.*}} : vector<16xi32>
// FMA: arith.andi %{{.*}}, %{{.*}} : vector<16xi32>
// FMA: arith.bitcast %{{.*}} : vector<16xi32> to vector<16xf32>
// FMA: vector.fma
// FMA: vector.fma
// FMA-NOT: x86vector
func.func @pairs(%rows: memref<?x15xbf16>, %w: memref<3x2x8x32x2xbf16>,
                 %blocks: memref<?xi32>, %acc: memref<?x40xf32>) {
  moe.grouped_matmul block_rows(4)
      ins(%rows, %w, %blocks : memref<?x15xbf16>, memref<3x2x8x32x2xbf16>, memref<?xi32>)
      outs(%acc : memref<?x40xf32>)
  return
}

// -----

// f32 rows are rounded to bf16 pairs in the loop.
// DOT-LABEL: func @f32_rows
// DOT: %[[X:.*]] = vector.load %{{.*}}[%{{.*}}, %{{.*}}] : memref<?x16xf32>, vector<2xf32>
// DOT: arith.truncf %[[X]] : vector<2xf32> to vector<2xbf16>
// DOT: x86vector.avx512.dot
func.func @f32_rows(%rows: memref<?x16xf32>, %w: memref<3x1x8x32x2xbf16>,
                    %blocks: memref<?xi32>, %acc: memref<?x32xf32>) {
  moe.grouped_matmul block_rows(4)
      ins(%rows, %w, %blocks : memref<?x16xf32>, memref<3x1x8x32x2xbf16>, memref<?xi32>)
      outs(%acc : memref<?x32xf32>)
  return
}

// -----

// Panels of 6 columns split into vectors of 2 lanes, which vdpbf16ps does
// not have: the FMA form even with bf16-dot.
// DOT-LABEL: func @odd_panel
// DOT-NOT: x86vector
// DOT: vector.fma %{{.*}} : vector<2xf32>
// DOT-NOT: x86vector
func.func @odd_panel(%rows: memref<?x16xbf16>, %w: memref<3x2x8x6x2xbf16>,
                     %blocks: memref<?xi32>, %acc: memref<?x12xf32>) {
  moe.grouped_matmul block_rows(4)
      ins(%rows, %w, %blocks : memref<?x16xbf16>, memref<3x2x8x6x2xbf16>, memref<?xi32>)
      outs(%acc : memref<?x12xf32>)
  return
}
