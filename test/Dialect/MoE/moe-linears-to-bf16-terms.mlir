// RUN: moe-opt %s --split-input-file --moe-linears-to-bf16-terms="align=64" | FileCheck %s
// RUN: moe-opt %s --split-input-file --moe-linears-to-bf16-terms="min-rows=512 min-columns=32 align=64" | FileCheck %s --check-prefix=FROM512
// RUN: not moe-opt %s --split-input-file --moe-linears-to-bf16-terms="min-rows=-1" 2>&1 | FileCheck %s --check-prefix=BADROWS
// RUN: not moe-opt %s --split-input-file --moe-linears-to-bf16-terms="min-columns=0" 2>&1 | FileCheck %s --check-prefix=BADCOLUMNS
// RUN: not moe-opt %s --split-input-file --moe-linears-to-bf16-terms="align=0" 2>&1 | FileCheck %s --check-prefix=BADALIGN

// BADROWS: moe-linears-to-bf16-terms: min-rows must be at least 0, got -1
// BADCOLUMNS: moe-linears-to-bf16-terms: min-columns must be at least 1, got 0
// BADALIGN: moe-linears-to-bf16-terms: align must be at least 1, got 0

#lhs = affine_map<(m, n, k) -> (m, k)>
#rhs = affine_map<(m, n, k) -> (n, k)>
#out = affine_map<(m, n, k) -> (m, n)>

// The router's logits: f32 rows, bf16 weights, a zero-filled init. The
// rows dispatched to one expert (every id 0), the weight as [1, N, K], the
// products exact (the tiles split the rows into bf16 terms); the tokens'
// sums are the first T rows, the result itself (no fill, no add).
// CHECK-LABEL: func.func @router(
// CHECK-SAME:      %[[X:.*]]: tensor<?x64xf32>, %[[W:.*]]: tensor<32x64xbf16>
// CHECK-NOT:     linalg.fill ins(%{{.*}} : f32)
// CHECK:         %[[IDS:.*]] = linalg.fill ins(%{{.*}} : i32) outs(%{{.*}} : tensor<?x1xi32>)
// CHECK:         %[[D:.*]], %[[OFF:.*]], %{{.*}} = moe.dispatch %[[X]], %[[IDS]] align 64 : tensor<?x64xf32>, tensor<?x1xi32> -> tensor<?x64xf32>
// CHECK:         %[[W1:.*]] = tensor.expand_shape %[[W]] {{\[\[}}0, 1], [2]] output_shape [1, 32, 64]
// CHECK:         %[[P:.*]] = moe.expert_matmul %[[D]], %[[W1]] offsets(%[[OFF]] : tensor<2xi64>) exact_products : tensor<?x64xf32>, tensor<1x32x64xbf16> -> tensor<?x32xf32>
// CHECK:         %[[T:.*]] = tensor.dim %[[X]]
// CHECK:         %[[S:.*]] = tensor.extract_slice %[[P]][0, 0] [%[[T]], 32] [1, 1]
// CHECK-NOT:     linalg.generic
// CHECK-NOT:     linalg.matmul
// CHECK:         return %[[S]]
// From 512 rows: the exact grouped products or the linear as it was,
// chosen on T.
// FROM512-LABEL: func.func @router(
// FROM512:         %[[DEST:.*]] = tensor.empty(%{{.*}}) : tensor<?x32xf32>
// FROM512:         %[[T:.*]] = tensor.dim
// FROM512:         %[[ENOUGH:.*]] = arith.cmpi uge, %[[T]], %c512
// FROM512:         %[[R:.*]] = scf.if %[[ENOUGH]] -> (tensor<?x32xf32>) {
// FROM512:           moe.expert_matmul {{.*}} exact_products
// FROM512:           %[[S:.*]] = tensor.extract_slice
// FROM512:           scf.yield %[[S]]
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

// An init that is not a fill: the sums are added to it, in place.
// CHECK-LABEL: func.func @accumulate(
// CHECK-SAME:      %{{.*}}: tensor<8x64xf32>, %{{.*}}: tensor<32x64xbf16>, %[[ACC:.*]]: tensor<8x32xf32>
// CHECK:         %[[P:.*]] = moe.expert_matmul {{.*}} exact_products
// CHECK:         %[[S:.*]] = tensor.extract_slice %[[P]][0, 0] [8, 32] [1, 1] : tensor<?x32xf32> to tensor<8x32xf32>
// CHECK:         linalg.generic {{.*}} ins(%[[S]] : tensor<8x32xf32>) outs(%[[ACC]] : tensor<8x32xf32>)
// CHECK:         ^bb0(%[[SUM:.*]]: f32, %[[OLD:.*]]: f32):
// CHECK:           arith.addf %[[OLD]], %[[SUM]] : f32
// Static rows below min-rows: left alone.
// FROM512-LABEL: func.func @accumulate(
// FROM512-NOT:     moe.expert_matmul
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

// f16 and bf16 rows: dispatched as they are (the tiles split f16 into two
// terms; bf16 is one).
// CHECK-LABEL: func.func @narrow_rows(
// CHECK-SAME:      %[[X16:.*]]: tensor<?x64xf16>, %[[XB:.*]]: tensor<?x64xbf16>
// CHECK:         moe.dispatch %[[X16]], %{{.*}} align 64 : tensor<?x64xf16>
// CHECK:         moe.expert_matmul {{.*}} exact_products : tensor<?x64xf16>, tensor<1x32x64xbf16> -> tensor<?x32xf32>
// CHECK:         moe.dispatch %[[XB]], %{{.*}} align 64 : tensor<?x64xbf16>
// CHECK:         moe.expert_matmul {{.*}} exact_products : tensor<?x64xbf16>, tensor<1x32x64xbf16> -> tensor<?x32xf32>
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
// CHECK-NOT:     moe.expert_matmul
// CHECK-COUNT-4: linalg.matmul
// CHECK-NOT:     moe.expert_matmul
// CHECK:         return
// FROM512-LABEL: func.func @narrow_router(
// FROM512-NOT:     moe.expert_matmul
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

// A fill of another value: added to the sums, into the fill's destination.
// CHECK-LABEL: func.func @filled(
// CHECK:         %[[DEST:.*]] = tensor.empty(%{{.*}}) : tensor<?x32xf32>
// CHECK:         %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK:         %[[S:.*]] = tensor.extract_slice
// CHECK:         %[[R:.*]] = linalg.generic {{.*}} ins(%[[S]] : tensor<?x32xf32>) outs(%[[DEST]] : tensor<?x32xf32>)
// CHECK:         ^bb0(%[[SUM:.*]]: f32, %{{.*}}: f32):
// CHECK:           arith.addf %[[ONE]], %[[SUM]] : f32
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
