// RUN: moe-opt %s --split-input-file --moe-lower-transposed-matmul-to-vector="block-rows=4 tile-n=8 tile-rows=2 tile-cols=4" | FileCheck %s
// RUN: moe-opt %s --split-input-file --moe-lower-transposed-matmul-to-vector | FileCheck %s --check-prefix=DEFAULT
// RUN: not moe-opt %s --moe-lower-transposed-matmul-to-vector="tile-n=0" 2>&1 | FileCheck %s --check-prefix=BADTILE
// RUN: not moe-opt %s --moe-lower-transposed-matmul-to-vector="tile-cols=65" 2>&1 | FileCheck %s --check-prefix=BADKERNEL

// BADTILE: moe-lower-transposed-matmul-to-vector: block-rows and tile-n must be at least 1, got 16, 0
// BADKERNEL: moe-lower-transposed-matmul-to-vector: vector-width, tile-rows and tile-cols must be at least 1 and tile-rows * tile-cols at most 64, got 16, 2, 65

// C += A * B^T with B in the checkpoint layout [N, K] (a router): an
// scf.forall over tiles of 8 columns x 4 rows, columns first, both clamped
// to the buffers; inside, 2x4 register tiles of 16-lane accumulators over K (bf16
// weights widened), a padded remainder step (K = 20), lane sums added into C.
// CHECK-LABEL: func @router
// CHECK-SAME: (%[[X:.*]]: memref<?x20xf32>, %[[W:.*]]: memref<10x20xbf16>, %[[C:.*]]: memref<?x10xf32>)
// CHECK: %[[XROWS:.*]] = memref.dim %[[X]], %c0
// CHECK: %[[CROWS:.*]] = memref.dim %[[C]], %c0
// CHECK: %[[ROWS:.*]] = arith.minui %[[XROWS]], %[[CROWS]]
// CHECK: scf.forall (%[[N:.*]], %[[M:.*]]) = (0, 0) to (%{{.*}}, %[[ROWS]]) step (%c8, %c4)
// CHECK:   %[[NEND:.*]] = arith.addi %[[N]], %c8
// CHECK:   arith.minui %[[NEND]]
// CHECK:   %[[LEFT:.*]] = arith.subi %[[ROWS]], %[[M]]
// CHECK:   arith.minui %c4, %[[LEFT]]
// CHECK:   scf.for %{{.*}} = %[[N]] to
// CHECK:     scf.for
// CHECK:       %{{.*}}:8 = scf.for {{.*}} iter_args
// CHECK-COUNT-2: vector.transfer_read %[[X]]{{.*}} {in_bounds = [true]} : memref<?x20xf32>, vector<16xf32>
// CHECK-COUNT-4: vector.transfer_read %[[W]]{{.*}} {in_bounds = [true]} : memref<10x20xbf16>, vector<16xbf16>
// CHECK-COUNT-8: vector.fma
// CHECK:       vector.transfer_read %[[X]][%{{.*}}, %{{.*}}], %{{.*}} : memref<?x20xf32>, vector<16xf32>
// CHECK:       vector.reduction <add>, %{{.*}} fastmath<reassoc> : vector<16xf32> into f32
// CHECK:       memref.load %[[C]]
// CHECK:       memref.store %{{.*}}, %[[C]]
// CHECK-NOT: linalg.matmul
func.func @router(%x: memref<?x20xf32>, %w: memref<10x20xbf16>, %out: memref<?x10xf32>) {
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
      ins(%x, %w : memref<?x20xf32>, memref<10x20xbf16>) outs(%out : memref<?x10xf32>)
  return
}

// -----

// The default tiles: 64 columns x 16 rows, 2x8 register tiles.
// DEFAULT-LABEL: func @shared_expert
// DEFAULT: scf.forall {{.*}} step (%c64{{.*}}, %c16{{.*}})
// DEFAULT: %{{.*}}:16 = scf.for {{.*}} iter_args
// DEFAULT-COUNT-16: vector.fma
func.func @shared_expert(%x: memref<?x64xf32>, %w: memref<96x64xf32>, %out: memref<?x96xf32>) {
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
      ins(%x, %w : memref<?x64xf32>, memref<96x64xf32>) outs(%out : memref<?x96xf32>)
  return
}

// -----

// The capacity layout's batched form: the batch is one more, outermost,
// forall dimension; each iteration works on rank-reduced views of A[b] and
// C[b] and reads the weights of expert b.
// CHECK-LABEL: func @capacity
// CHECK-SAME: (%[[X:.*]]: memref<4x?x20xf32>, %[[W:.*]]: memref<4x10x20xf16>, %[[C:.*]]: memref<4x?x10xf32>)
// CHECK: scf.forall (%[[B:.*]], %{{.*}}, %{{.*}}) = (0, 0, 0) to (%{{.*}}, %{{.*}}, %{{.*}}) step (%c1{{.*}}, %c8, %c4)
// CHECK:   %[[A:.*]] = memref.subview %[[X]][%[[B]], 0, 0] [1, %{{.*}}, 20] [1, 1, 1] : memref<4x?x20xf32> to memref<?x20xf32, strided<[20, 1], offset: ?>>
// CHECK:   %[[OUT:.*]] = memref.subview %[[C]][%[[B]], 0, 0] [1, %{{.*}}, 10] [1, 1, 1]
// CHECK:   vector.transfer_read %[[A]]
// CHECK:   vector.transfer_read %[[W]][%[[B]], %{{.*}}, %{{.*}}]
// CHECK:   vector.fma
// CHECK:   vector.transfer_write %{{.*}}, %[[OUT]]
// CHECK-NOT: linalg.batch_matmul
func.func @capacity(%x: memref<4x?x20xf32>, %w: memref<4x10x20xf16>, %out: memref<4x?x10xf32>) {
  linalg.batch_matmul indexing_maps = [affine_map<(b, m, n, k) -> (b, m, k)>, affine_map<(b, m, n, k) -> (b, n, k)>, affine_map<(b, m, n, k) -> (b, m, n)>]
      ins(%x, %w : memref<4x?x20xf32>, memref<4x10x20xf16>) outs(%out : memref<4x?x10xf32>)
  return
}

// -----

// Matmuls the kernel does not take are left alone: B as [K, N], tensors,
// an f16 left operand, a strided innermost dimension.
// CHECK-LABEL: func @left_alone
// CHECK-COUNT-4: linalg.matmul
// CHECK-NOT: vector.fma
func.func @left_alone(%x: memref<?x16xf32>, %wkn: memref<16x8xf32>, %out: memref<?x8xf32>,
                      %tx: tensor<?x16xf32>, %tw: tensor<8x16xf32>, %tout: tensor<?x8xf32>,
                      %hx: memref<?x16xf16>, %w: memref<8x16xf32>,
                      %sw: memref<8x16xf32, strided<[32, 2]>>) -> tensor<?x8xf32> {
  linalg.matmul ins(%x, %wkn : memref<?x16xf32>, memref<16x8xf32>) outs(%out : memref<?x8xf32>)
  %r = linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
      ins(%tx, %tw : tensor<?x16xf32>, tensor<8x16xf32>) outs(%tout : tensor<?x8xf32>) -> tensor<?x8xf32>
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
      ins(%hx, %w : memref<?x16xf16>, memref<8x16xf32>) outs(%out : memref<?x8xf32>)
  linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>]
      ins(%x, %sw : memref<?x16xf32>, memref<8x16xf32, strided<[32, 2]>>) outs(%out : memref<?x8xf32>)
  return %r : tensor<?x8xf32>
}
