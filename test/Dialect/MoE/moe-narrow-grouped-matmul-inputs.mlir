// RUN: moe-opt %s --split-input-file --moe-narrow-grouped-matmul-inputs | FileCheck %s
// RUN: moe-opt %s --split-input-file --moe-narrow-grouped-matmul-inputs="min-rows=64" | FileCheck %s --check-prefix=FROM64
// RUN: not moe-opt %s --moe-narrow-grouped-matmul-inputs="min-rows=-1" 2>&1 | FileCheck %s --check-prefix=BAD

// BAD: moe-narrow-grouped-matmul-inputs: min-rows must be at least 0, got -1

// Token rows that two bf16 gate/up projections gather and a router reads:
// one rounding before the first projection, which both read; the router
// keeps the f32 rows.
// CHECK-LABEL: func @gate_up
// CHECK-SAME: (%[[X:[^:]*]]: tensor<?x16xf32>
// CHECK: %[[X16:.*]] = arith.truncf %[[X]] : tensor<?x16xf32> to tensor<?x16xbf16>
// CHECK-NEXT: moe.grouped_matmul block_rows(4) ins(%[[X16]], %{{.*}}, %{{.*}} : tensor<?x16xbf16>, tensor<2x8x16xbf16>, tensor<?xi32>) paired
// CHECK: moe.grouped_matmul block_rows(4) ins(%[[X16]], %{{.*}}, %{{.*}} : tensor<?x16xbf16>, tensor<2x8x16xbf16>, tensor<?xi32>) row_sources
// CHECK: linalg.matmul ins(%[[X]], %{{.*}} : tensor<?x16xf32>, tensor<16x4xf32>)
// CHECK-NOT: arith.truncf

// From 64 rows (a dynamic count): the rounding writes a buffer under an
// scf.if on the rows' count, which yields it unwritten below; each reader
// chooses the same way between the rounded rows and the f32 ones, both
// updating its accumulator.
// FROM64-LABEL: func @gate_up
// FROM64-SAME: (%[[X:[^:]*]]: tensor<?x16xf32>
// FROM64: %[[ACC:.*]] = linalg.fill
// FROM64: %[[ROWS:.*]] = tensor.dim %[[X]], %c0
// FROM64: %[[MANY:.*]] = arith.cmpi uge, %[[ROWS]], %c64
// FROM64: %[[BUF:.*]] = tensor.empty(%{{.*}}) : tensor<?x16xbf16>
// FROM64: %[[X16:.*]] = scf.if %[[MANY]] -> (tensor<?x16xbf16>) {
// FROM64-NEXT: %[[R:.*]] = linalg.generic {{.*}} ins(%[[X]] : tensor<?x16xf32>) outs(%[[BUF]] : tensor<?x16xbf16>)
// FROM64: arith.truncf %{{.*}} : f32 to bf16
// FROM64: scf.yield %[[R]]
// FROM64: } else {
// FROM64-NEXT: scf.yield %[[BUF]]
// FROM64: %[[H:.*]] = scf.if %[[MANY]] -> (tensor<?x8xf32>) {
// FROM64-NEXT: moe.grouped_matmul block_rows(4) ins(%[[X16]], {{.*}} outs(%[[ACC]] : tensor<?x8xf32>)
// FROM64: } else {
// FROM64-NEXT: moe.grouped_matmul block_rows(4) ins(%[[X]], {{.*}} outs(%[[ACC]] : tensor<?x8xf32>)
// FROM64: scf.if %[[MANY]] -> (tensor<?x8xf32>) {
// FROM64-NEXT: moe.grouped_matmul block_rows(4) ins(%[[X16]],
// FROM64: } else {
// FROM64-NEXT: moe.grouped_matmul block_rows(4) ins(%[[X]],
// FROM64: linalg.matmul ins(%[[X]], %{{.*}} : tensor<?x16xf32>, tensor<16x4xf32>)
func.func @gate_up(%x: tensor<?x16xf32>, %wg: tensor<2x8x16xbf16>,
                   %wu: tensor<2x8x16xbf16>, %src: tensor<?xi32>,
                   %blocks: tensor<?xi32>, %router: tensor<16x4xf32>)
    -> (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x4xf32>) {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : f32
  %rows = tensor.dim %src, %c0 : tensor<?xi32>
  %e = tensor.empty(%rows) : tensor<?x8xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<?x8xf32>) -> tensor<?x8xf32>
  %h = moe.grouped_matmul block_rows(4)
      ins(%x, %wg, %blocks : tensor<?x16xf32>, tensor<2x8x16xbf16>, tensor<?xi32>)
      paired(%wu : tensor<2x8x16xbf16>)
      row_sources(%src : tensor<?xi32>)
      outs(%acc : tensor<?x8xf32>) epilogue {
  ^bb0(%g: f32, %u: f32, %old: f32):
    %y = arith.mulf %g, %u : f32
    moe.yield %y : f32
  } -> tensor<?x8xf32>
  %h2 = moe.grouped_matmul block_rows(4)
      ins(%x, %wg, %blocks : tensor<?x16xf32>, tensor<2x8x16xbf16>, tensor<?xi32>)
      row_sources(%src : tensor<?xi32>)
      outs(%acc : tensor<?x8xf32>) -> tensor<?x8xf32>
  %t = tensor.dim %x, %c0 : tensor<?x16xf32>
  %e2 = tensor.empty(%t) : tensor<?x4xf32>
  %l = linalg.matmul ins(%x, %router : tensor<?x16xf32>, tensor<16x4xf32>)
      outs(%e2 : tensor<?x4xf32>) -> tensor<?x4xf32>
  return %h, %h2, %l : tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x4xf32>
}

// -----

// f16 rows are rounded through f32, as the tiles convert them. A static
// count decides at once: 128 rows are rounded under min-rows=64 too, 8 are
// not.
// CHECK-LABEL: func @static_rows
// CHECK: %[[WIDE:.*]] = arith.extf %{{.*}} : tensor<128x16xf16> to tensor<128x16xf32>
// CHECK: %[[X16:.*]] = arith.truncf %[[WIDE]] : tensor<128x16xf32> to tensor<128x16xbf16>
// CHECK: moe.grouped_matmul block_rows(4) ins(%[[X16]],
// CHECK: %[[F16:.*]] = arith.truncf %{{.*}} : tensor<8x16xf32> to tensor<8x16xbf16>
// CHECK: moe.grouped_matmul block_rows(4) ins(%[[F16]],
// FROM64-LABEL: func @static_rows
// FROM64-NOT: scf.if
// FROM64: arith.extf %{{.*}} : tensor<128x16xf16> to tensor<128x16xf32>
// FROM64: arith.truncf %{{.*}} : tensor<128x16xf32> to tensor<128x16xbf16>
// FROM64-NOT: arith.truncf
// FROM64: moe.grouped_matmul block_rows(4) ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<8x16xf32>,
func.func @static_rows(%x: tensor<128x16xf16>, %few: tensor<8x16xf32>,
                       %w: tensor<2x8x16xbf16>, %src: tensor<8xi32>,
                       %blocks: tensor<2xi32>, %acc: tensor<8x8xf32>)
    -> (tensor<8x8xf32>, tensor<8x8xf32>) {
  %a = moe.grouped_matmul block_rows(4)
      ins(%x, %w, %blocks : tensor<128x16xf16>, tensor<2x8x16xbf16>, tensor<2xi32>)
      row_sources(%src : tensor<8xi32>)
      outs(%acc : tensor<8x8xf32>) -> tensor<8x8xf32>
  %b = moe.grouped_matmul block_rows(4)
      ins(%few, %w, %blocks : tensor<8x16xf32>, tensor<2x8x16xbf16>, tensor<2xi32>)
      outs(%acc : tensor<8x8xf32>) -> tensor<8x8xf32>
  return %a, %b : tensor<8x8xf32>, tensor<8x8xf32>
}

// -----

// Left alone: f32 and f16 weights (multiplied in f32 or f16), block-scaled
// FP8 weights, rows already in bf16, exact products (whose rows no lowering
// rounds), and the memref form.
// CHECK-LABEL: func @kept
// CHECK-NOT: arith.truncf
// CHECK-NOT: bf16>, tensor<2x8x16xf32>
// CHECK: return
// FROM64-LABEL: func @kept
// FROM64-NOT: scf.if
// FROM64: return
func.func @kept(%x: tensor<8x16xf32>, %x16: tensor<8x16xbf16>,
                %wf: tensor<2x8x16xf32>, %wh: tensor<2x8x16xf16>,
                %w8: tensor<2x8x16xf8E4M3FN>, %s8: tensor<2x1x1xf32>,
                %wb: tensor<2x8x16xbf16>, %blocks: tensor<2xi32>,
                %acc: tensor<8x8xf32>, %mx: memref<8x16xf32>,
                %mw: memref<2x8x16xbf16>, %mb: memref<2xi32>,
                %macc: memref<8x8xf32>)
    -> (tensor<8x8xf32>, tensor<8x8xf32>, tensor<8x8xf32>, tensor<8x8xf32>,
        tensor<8x8xf32>) {
  %a = moe.grouped_matmul block_rows(4)
      ins(%x, %wf, %blocks : tensor<8x16xf32>, tensor<2x8x16xf32>, tensor<2xi32>)
      outs(%acc : tensor<8x8xf32>) -> tensor<8x8xf32>
  %b = moe.grouped_matmul block_rows(4)
      ins(%x, %wh, %blocks : tensor<8x16xf32>, tensor<2x8x16xf16>, tensor<2xi32>)
      outs(%acc : tensor<8x8xf32>) -> tensor<8x8xf32>
  %c = moe.grouped_matmul block_rows(4)
      ins(%x, %w8, %blocks : tensor<8x16xf32>, tensor<2x8x16xf8E4M3FN>, tensor<2xi32>)
      scale(%s8 : tensor<2x1x1xf32>) block [128, 128]
      outs(%acc : tensor<8x8xf32>) -> tensor<8x8xf32>
  %d = moe.grouped_matmul block_rows(4)
      ins(%x16, %wb, %blocks : tensor<8x16xbf16>, tensor<2x8x16xbf16>, tensor<2xi32>)
      outs(%acc : tensor<8x8xf32>) -> tensor<8x8xf32>
  %e = moe.grouped_matmul block_rows(4)
      ins(%x, %wb, %blocks : tensor<8x16xf32>, tensor<2x8x16xbf16>, tensor<2xi32>)
      exact_products
      outs(%acc : tensor<8x8xf32>) -> tensor<8x8xf32>
  moe.grouped_matmul block_rows(4)
      ins(%mx, %mw, %mb : memref<8x16xf32>, memref<2x8x16xbf16>, memref<2xi32>)
      outs(%macc : memref<8x8xf32>)
  return %a, %b, %c, %d, %e : tensor<8x8xf32>, tensor<8x8xf32>, tensor<8x8xf32>, tensor<8x8xf32>,
                              tensor<8x8xf32>
}
