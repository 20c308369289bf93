// RUN: moe-opt %s --split-input-file --moe-lower-grouped-matmul-to-vector | FileCheck %s
// RUN: moe-opt %s --split-input-file --moe-lower-grouped-matmul-to-vector="bf16-dot=1 fp8-byte-lookup=1" | FileCheck %s --check-prefix=DOT

// MXFP4 weights: e2m1 pairs packed in panels of 16 columns ([E, NP, KP,
// P] bytes, a byte per column and pair of K) with per-column scales packed
// alike ([E, NP, KB, P]). Each pair step reads 16 bytes, widens them to
// 32-bit lanes and decodes both nibbles by integer arithmetic and a
// select (no f32 subnormal; the even K's bf16 the low half of each lane,
// the odd K's the high half); each depth block's sums are then added times the
// vector of its 16 columns' scales. Without vdpbf16ps the pairs multiply
// as two f32 FMAs; with it, as one dot product. With table lookups
// (fp8-byte-lookup: AVX512_VBMI, so AVX512_BW) each 32-bit lane is the
// byte or'ed with itself shifted by 12, looked up in a word table of the
// 16 bf16 values (vpermw): no multiply.
// CHECK-LABEL: func @mxfp4
// CHECK: scf.for
// CHECK: %[[B:.*]] = vector.transfer_read %{{.*}}[%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}], %{{.*}} {in_bounds = [true]} : memref<2x2x10x16xi8>, vector<16xi8>
// CHECK: %[[W:.*]] = arith.extui %[[B]] : vector<16xi8> to vector<16xi32>
// CHECK: arith.select %{{.*}}, %{{.*}}, %{{.*}} : vector<16xi1>, vector<16xf32>
// CHECK: arith.shrui %[[W]], %{{.*}} : vector<16xi32>
// CHECK: arith.ori %{{.*}}, %{{.*}} : vector<16xi32>
// CHECK: vector.fma
// CHECK-NOT: x86vector.avx512.dot
// CHECK: %[[S:.*]] = vector.transfer_read %{{.*}}[%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}], %{{.*}} {in_bounds = [true]} : memref<2x2x1x16xf32>, vector<16xf32>
// CHECK: vector.fma %{{.*}}, %[[S]], %{{.*}} : vector<16xf32>
// DOT-LABEL: func @mxfp4
// DOT: %[[W:.*]] = arith.extui %{{.*}} : vector<16xi8> to vector<16xi32>
// DOT: %[[SHIFTED:.*]] = arith.shli %[[W]], %{{.*}} : vector<16xi32>
// DOT: %[[CODES:.*]] = arith.ori %[[W]], %[[SHIFTED]] : vector<16xi32>
// DOT: %[[IDX:.*]] = vector.bitcast %[[CODES]] : vector<16xi32> to vector<32xi16>
// DOT: llvm.call_intrinsic "llvm.x86.avx512.permvar.hi.512"(%{{.*}}, %[[IDX]]) : (vector<32xi16>, vector<32xi16>) -> vector<32xi16>
// DOT-NOT: arith.select {{.*}} : vector<16xi1>, vector<16xf32>
// DOT: x86vector.avx512.dot
func.func @mxfp4(%rows: memref<?x20xbf16>, %w: memref<2x2x10x16xi8>,
                 %s: memref<2x2x1x16xf32>, %blocks: memref<?xi32>,
                 %acc: memref<?x32xf32>) {
  moe.grouped_matmul block_rows(4)
      ins(%rows, %w, %blocks : memref<?x20xbf16>, memref<2x2x10x16xi8>, memref<?xi32>)
      scale(%s : memref<2x2x1x16xf32>) block [1, 32]
      outs(%acc : memref<?x32xf32>)
  return
}

// -----

// In the checkpoint layout ([E, N, KP] bytes) they have no vector kernel:
// the op is left for moe-grouped-matmul-to-loops.
// CHECK-LABEL: func @mxfp4_unpacked
// CHECK: moe.grouped_matmul {{.*}} scale(
func.func @mxfp4_unpacked(%rows: memref<?x20xf32>, %w: memref<2x32x10xi8>,
                          %s: memref<2x32x1xf32>, %blocks: memref<?xi32>,
                          %acc: memref<?x32xf32>) {
  moe.grouped_matmul block_rows(4)
      ins(%rows, %w, %blocks : memref<?x20xf32>, memref<2x32x10xi8>, memref<?xi32>)
      scale(%s : memref<2x32x1xf32>) block [1, 32]
      outs(%acc : memref<?x32xf32>)
  return
}
