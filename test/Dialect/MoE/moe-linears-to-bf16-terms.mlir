// RUN: moe-opt %s --split-input-file --moe-linears-to-bf16-terms="block-rows=64" | FileCheck %s
// RUN: moe-opt %s --split-input-file --moe-linears-to-bf16-terms="min-rows=512 min-columns=32 block-rows=64" | FileCheck %s --check-prefix=FROM512
// RUN: not moe-opt %s --split-input-file --moe-linears-to-bf16-terms="min-rows=-1" 2>&1 | FileCheck %s --check-prefix=BADROWS
// RUN: not moe-opt %s --split-input-file --moe-linears-to-bf16-terms="min-columns=0" 2>&1 | FileCheck %s --check-prefix=BADCOLUMNS
// RUN: not moe-opt %s --split-input-file --moe-linears-to-bf16-terms="block-rows=0" 2>&1 | FileCheck %s --check-prefix=BADBLOCKS

// BADROWS: moe-linears-to-bf16-terms: min-rows must be at least 0, got -1
// BADCOLUMNS: moe-linears-to-bf16-terms: min-columns must be at least 1, got 0
// BADBLOCKS: moe-linears-to-bf16-terms: block-rows must be at least 1, got 0

#lhs = affine_map<(m, n, k) -> (m, k)>
#rhs = affine_map<(m, n, k) -> (n, k)>
#out = affine_map<(m, n, k) -> (m, n)>

// The router's logits: f32 rows, bf16 weights, a zero-filled init. A
// dense grouped matmul (no routing plan) on one expert, the weight as
// [1, N, K], the products exact (the tiles split the rows into bf16
// terms), into the linear's own init: its result is the linear's.
// CHECK-LABEL: func.func @router(
// CHECK-SAME:      %[[X:.*]]: tensor<?x64xf32>, %[[W:.*]]: tensor<32x64xbf16>
// CHECK:         %[[F:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<?x32xf32>)
// CHECK-NOT:     moe.dispatch
// CHECK:         %[[W1:.*]] = tensor.expand_shape %[[W]] {{\[\[}}0, 1], [2]] output_shape [1, 32, 64]
// CHECK:         %[[P:.*]] = moe.grouped_matmul block_rows(64) ins(%[[X]], %[[W1]] : tensor<?x64xf32>, tensor<1x32x64xbf16>) exact_products outs(%[[F]] : tensor<?x32xf32>) -> tensor<?x32xf32>
// CHECK-NOT:     linalg.generic
// CHECK-NOT:     linalg.matmul
// CHECK:         return %[[P]]
// From 512 rows: the exact grouped products or the linear as it was,
// chosen on T, each on a fill of its own.
// FROM512-LABEL: func.func @router(
// FROM512:         %[[DEST:.*]] = tensor.empty(%{{.*}}) : tensor<?x32xf32>
// FROM512:         %[[T:.*]] = tensor.dim
// FROM512:         %[[ENOUGH:.*]] = arith.cmpi uge, %[[T]], %c512
// FROM512:         %[[R:.*]] = scf.if %[[ENOUGH]] -> (tensor<?x32xf32>) {
// FROM512:           %[[F1:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%[[DEST]] : tensor<?x32xf32>)
// FROM512:           %[[G:.*]] = moe.grouped_matmul {{.*}} exact_products outs(%[[F1]] : tensor<?x32xf32>)
// FROM512:           scf.yield %[[G]]
// FROM512:         } else {
// FROM512:           %[[F:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%[[DEST]] : tensor<?x32xf32>)
// FROM512:           %[[M:.*]] = linalg.matmul {{.*}} outs(%[[F]] : tensor<?x32xf32>)
// FROM512:           scf.yield %[[M]]
// FROM512:         return %[[R]]
func.func @router(%x: tensor<?x64xf32>, %w: tensor<32x64xbf16>) -> tensor<?x32xf32> {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %x, %c0 : tensor<?x64xf32>
  %e = tensor.empty(%t) : tensor<?x32xf32>
  %zero = arith.constant 0.0 : f32
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<?x32xf32>) -> tensor<?x32xf32>
  %y = linalg.matmul indexing_maps = [#lhs, #rhs, #out]
      ins(%x, %w : tensor<?x64xf32>, tensor<32x64xbf16>)
      outs(%f : tensor<?x32xf32>) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

// -----

#lhs = affine_map<(m, n, k) -> (m, k)>
#rhs = affine_map<(m, n, k) -> (n, k)>
#out = affine_map<(m, n, k) -> (m, n)>

// An init that is not a fill: the sums are added to it (the grouped
// matmul accumulates into its init).
// CHECK-LABEL: func.func @accumulate(
// CHECK-SAME:      %{{.*}}: tensor<8x64xf32>, %{{.*}}: tensor<32x64xbf16>, %[[ACC:.*]]: tensor<8x32xf32>
// CHECK:         %[[P:.*]] = moe.grouped_matmul {{.*}} exact_products outs(%[[ACC]] : tensor<8x32xf32>) -> tensor<8x32xf32>
// CHECK-NOT:     linalg.generic
// CHECK:         return %[[P]]
// Static rows below min-rows: left alone.
// FROM512-LABEL: func.func @accumulate(
// FROM512-NOT:     moe.grouped_matmul
// FROM512:         linalg.matmul
func.func @accumulate(%x: tensor<8x64xf32>, %w: tensor<32x64xbf16>, %acc: tensor<8x32xf32>) -> tensor<8x32xf32> {
  %y = linalg.matmul indexing_maps = [#lhs, #rhs, #out]
      ins(%x, %w : tensor<8x64xf32>, tensor<32x64xbf16>)
      outs(%acc : tensor<8x32xf32>) -> tensor<8x32xf32>
  return %y : tensor<8x32xf32>
}

// -----

#lhs = affine_map<(m, n, k) -> (m, k)>
#rhs = affine_map<(m, n, k) -> (n, k)>
#out = affine_map<(m, n, k) -> (m, n)>

// f16 and bf16 rows: taken as they are (the tiles split f16 into two
// terms; bf16 is one).
// CHECK-LABEL: func.func @narrow_rows(
// CHECK-SAME:      %[[X16:.*]]: tensor<?x64xf16>, %[[XB:.*]]: tensor<?x64xbf16>
// CHECK:         moe.grouped_matmul block_rows(64) ins(%[[X16]], %{{.*}} : tensor<?x64xf16>, tensor<1x32x64xbf16>) exact_products
// CHECK:         moe.grouped_matmul block_rows(64) ins(%[[XB]], %{{.*}} : tensor<?x64xbf16>, tensor<1x32x64xbf16>) exact_products
// CHECK-NOT:     linalg.generic
// CHECK:         return
func.func @narrow_rows(%x16: tensor<?x64xf16>, %xb: tensor<?x64xbf16>, %w: tensor<32x64xbf16>) -> (tensor<?x32xf32>, tensor<?x32xf32>) {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %x16, %c0 : tensor<?x64xf16>
  %e = tensor.empty(%t) : tensor<?x32xf32>
  %zero = arith.constant 0.0 : f32
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<?x32xf32>) -> tensor<?x32xf32>
  %y16 = linalg.matmul indexing_maps = [#lhs, #rhs, #out]
      ins(%x16, %w : tensor<?x64xf16>, tensor<32x64xbf16>)
      outs(%f : tensor<?x32xf32>) -> tensor<?x32xf32>
  %tb = tensor.dim %xb, %c0 : tensor<?x64xbf16>
  %eb = tensor.empty(%tb) : tensor<?x32xf32>
  %fb = linalg.fill ins(%zero : f32) outs(%eb : tensor<?x32xf32>) -> tensor<?x32xf32>
  %yb = linalg.matmul indexing_maps = [#lhs, #rhs, #out]
      ins(%xb, %w : tensor<?x64xbf16>, tensor<32x64xbf16>)
      outs(%fb : tensor<?x32xf32>) -> tensor<?x32xf32>
  return %y16, %yb : tensor<?x32xf32>, tensor<?x32xf32>
}

// -----

#lhs = affine_map<(m, n, k) -> (m, k)>
#rhs = affine_map<(m, n, k) -> (n, k)>
#out = affine_map<(m, n, k) -> (m, n)>

// Left alone: f32 and f16 weights (not exact in bf16), a bf16 result, a
// matmul of untransposed weights, and (FROM512) fewer columns than
// min-columns.
// CHECK-LABEL: func.func @left_alone(
// CHECK-NOT:     moe.grouped_matmul
// CHECK-COUNT-4: linalg.matmul
// CHECK-NOT:     moe.grouped_matmul
// CHECK:         return
// FROM512-LABEL: func.func @narrow_router(
// FROM512-NOT:     moe.grouped_matmul
// FROM512:         linalg.matmul
func.func @left_alone(%x: tensor<?x64xf32>, %w32: tensor<32x64xf32>, %w16: tensor<32x64xf16>,
                      %wb: tensor<32x64xbf16>, %wt: tensor<64x32xbf16>,
                      %acc: tensor<?x32xf32>, %accb: tensor<?x32xbf16>)
    -> (tensor<?x32xf32>, tensor<?x32xf32>, tensor<?x32xbf16>, tensor<?x32xf32>) {
  %a = linalg.matmul indexing_maps = [#lhs, #rhs, #out]
      ins(%x, %w32 : tensor<?x64xf32>, tensor<32x64xf32>)
      outs(%acc : tensor<?x32xf32>) -> tensor<?x32xf32>
  %b = linalg.matmul indexing_maps = [#lhs, #rhs, #out]
      ins(%x, %w16 : tensor<?x64xf32>, tensor<32x64xf16>)
      outs(%acc : tensor<?x32xf32>) -> tensor<?x32xf32>
  %c = linalg.matmul indexing_maps = [#lhs, #rhs, #out]
      ins(%x, %wb : tensor<?x64xf32>, tensor<32x64xbf16>)
      outs(%accb : tensor<?x32xbf16>) -> tensor<?x32xbf16>
  %d = linalg.matmul ins(%x, %wt : tensor<?x64xf32>, tensor<64x32xbf16>)
      outs(%acc : tensor<?x32xf32>) -> tensor<?x32xf32>
  return %a, %b, %c, %d : tensor<?x32xf32>, tensor<?x32xf32>, tensor<?x32xbf16>, tensor<?x32xf32>
}

func.func @narrow_router(%x: tensor<?x64xf32>, %w: tensor<8x64xbf16>, %acc: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %y = linalg.matmul indexing_maps = [#lhs, #rhs, #out]
      ins(%x, %w : tensor<?x64xf32>, tensor<8x64xbf16>)
      outs(%acc : tensor<?x8xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

#lhs = affine_map<(m, n, k) -> (m, k)>
#rhs = affine_map<(m, n, k) -> (n, k)>
#out = affine_map<(m, n, k) -> (m, n)>

// A fill of another value: the sums are added to it.
// CHECK-LABEL: func.func @filled(
// CHECK:         %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK:         %[[F:.*]] = linalg.fill ins(%[[ONE]] : f32)
// CHECK:         %[[R:.*]] = moe.grouped_matmul {{.*}} exact_products outs(%[[F]] : tensor<?x32xf32>)
// CHECK-NOT:     linalg.generic
// CHECK:         return %[[R]]
func.func @filled(%x: tensor<?x64xf32>, %w: tensor<32x64xbf16>) -> tensor<?x32xf32> {
  %c0 = arith.constant 0 : index
  %t = tensor.dim %x, %c0 : tensor<?x64xf32>
  %e = tensor.empty(%t) : tensor<?x32xf32>
  %one = arith.constant 1.0 : f32
  %f = linalg.fill ins(%one : f32) outs(%e : tensor<?x32xf32>) -> tensor<?x32xf32>
  %y = linalg.matmul indexing_maps = [#lhs, #rhs, #out]
      ins(%x, %w : tensor<?x64xf32>, tensor<32x64xbf16>)
      outs(%f : tensor<?x32xf32>) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}
