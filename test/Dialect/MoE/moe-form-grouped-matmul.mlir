// RUN: moe-opt %s --moe-form-grouped-matmul=block-rows=4 | FileCheck %s
// RUN: not moe-opt %s --moe-form-grouped-matmul=block-rows=0 2>&1 | FileCheck %s --check-prefix=BAD

// BAD: moe-form-grouped-matmul: block-rows must be at least 1, got 0

// Rows of a dispatch padded to blocks of 8 are whole blocks of 4: the expert
// matmul becomes a grouped matmul into a zero-filled f32 accumulator, with
// the expert of each block counted from the offsets. Its rows are the
// dispatch's own gathered rows, so it reads the dispatch's input instead,
// row r from token row_sources[r]: the inverse of the row map (-1 for
// padding), built in the same pass over the row map as the filled rows of
// each block.
// CHECK-LABEL: func @aligned
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<?x16xf32>
// CHECK: %[[ROWS:.*]], %[[OFF:.*]], %[[MAP:.*]] = moe.dispatch %[[X]], %{{.*}} align 8
// CHECK: %[[R:.*]] = tensor.dim %[[ROWS]], %c0
// CHECK: %[[B:.*]] = arith.divui %[[R]], %c4
// CHECK: %[[BLOCKS:.*]] = tensor.generate %[[B]]
// CHECK:   scf.for
// CHECK:     tensor.extract %[[OFF]]
// CHECK:     arith.cmpi sle
// CHECK: %[[EMPTY:.*]] = tensor.empty(%[[B]]) : tensor<?xi32>
// CHECK: %[[SIZES0:.*]] = linalg.fill ins(%{{.*}} : i32) outs(%[[EMPTY]]
// CHECK: %[[EMPTY2:.*]] = tensor.empty(%[[R]]) : tensor<?xi32>
// CHECK: %[[SOURCES0:.*]] = linalg.fill ins(%c-1{{.*}} : i32) outs(%[[EMPTY2]]
// CHECK: %[[COUNTS:.*]]:2 = scf.for {{.*}} iter_args(%{{.*}} = %[[SIZES0]], %{{.*}} = %[[SOURCES0]])
// CHECK:   scf.for
// CHECK:     tensor.extract %[[MAP]]
// CHECK:     tensor.insert
// CHECK:     tensor.insert
// CHECK: %[[ALLOC:.*]] = bufferization.alloc_tensor(%[[R]]) : tensor<?x32xf32>
// CHECK: %[[ZERO:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%[[ALLOC]]
// CHECK: %[[ACC:.*]] = moe.grouped_matmul block_rows(4) ins(%[[X]], %{{.*}}, %[[BLOCKS]] : tensor<?x16xf32>, tensor<8x32x16xf32>, tensor<?xi32>) block_sizes(%[[COUNTS]]#0 : tensor<?xi32>) row_sources(%[[COUNTS]]#1 : tensor<?xi32>) outs(%[[ZERO]] : tensor<?x32xf32>)
// CHECK-NOT: linalg.generic
// CHECK: return %[[ACC]]
func.func @aligned(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>,
                   %w: tensor<8x32x16xf32>) -> tensor<?x32xf32> {
  %rows, %off, %map = moe.dispatch %x, %ids align 8
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<?x16xf32>, tensor<9xi64>, tensor<?x2xi32>
  %h = moe.expert_matmul %rows, %w offsets(%off : tensor<9xi64>)
      : tensor<?x16xf32>, tensor<8x32x16xf32> -> tensor<?x32xf32>
  return %h : tensor<?x32xf32>
}

// A bias and a bf16 result: an epilogue adds the bias of each row's expert
// (none for blocks of no expert) and converts.
// CHECK-LABEL: func @bias_bf16
// CHECK: %[[ACC:.*]] = moe.grouped_matmul block_rows(4)
// CHECK: linalg.generic {{.*}} ins(%[[ACC]] : tensor<?x32xf32>) outs(%{{.*}} : tensor<?x32xbf16>)
// CHECK:   linalg.index 0
// CHECK:   arith.divui
// CHECK:   tensor.extract
// CHECK:   arith.select
// CHECK:   arith.truncf
func.func @bias_bf16(%x: tensor<?x16xbf16>, %ids: tensor<?x2xi32>,
                     %w: tensor<8x32x16xbf16>, %bias: tensor<8x32xbf16>) -> tensor<?x32xbf16> {
  %rows, %off, %map = moe.dispatch %x, %ids align 4
      : tensor<?x16xbf16>, tensor<?x2xi32> -> tensor<?x16xbf16>, tensor<9xi64>, tensor<?x2xi32>
  %h = moe.expert_matmul %rows, %w offsets(%off : tensor<9xi64>) bias(%bias : tensor<8x32xbf16>)
      : tensor<?x16xbf16>, tensor<8x32x16xbf16> -> tensor<?x32xbf16>
  return %h : tensor<?x32xbf16>
}

// A projection of other rows (the down projection of activated rows) reads
// them as they are: no row sources.
// CHECK-LABEL: func @second_projection
// CHECK: %[[UP:.*]] = moe.grouped_matmul {{.*}} row_sources
// CHECK: %[[ACT:.*]] = arith.addf %[[UP]], %[[UP]]
// CHECK: moe.grouped_matmul block_rows(4) ins(%[[ACT]], %{{.*}}, %{{.*}} : tensor<?x32xf32>, tensor<8x16x32xf32>, tensor<?xi32>) block_sizes(%{{.*}} : tensor<?xi32>) outs(
func.func @second_projection(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>,
                             %w: tensor<8x32x16xf32>, %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  %rows, %off, %map = moe.dispatch %x, %ids align 8
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<?x16xf32>, tensor<9xi64>, tensor<?x2xi32>
  %h = moe.expert_matmul %rows, %w offsets(%off : tensor<9xi64>)
      : tensor<?x16xf32>, tensor<8x32x16xf32> -> tensor<?x32xf32>
  %a = arith.addf %h, %h : tensor<?x32xf32>
  %d = moe.expert_matmul %a, %w2 offsets(%off : tensor<9xi64>)
      : tensor<?x32xf32>, tensor<8x16x32xf32> -> tensor<?x16xf32>
  return %d : tensor<?x16xf32>
}

// Offsets without the alignment guarantee stay for the reference lowering.
// CHECK-LABEL: func @unaligned
// CHECK-NOT: moe.grouped_matmul
// CHECK: moe.expert_matmul
// CHECK: moe.expert_matmul
func.func @unaligned(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>,
                     %w: tensor<8x32x16xf32>, %off2: tensor<9xi64>)
    -> (tensor<?x32xf32>, tensor<?x32xf32>) {
  %rows, %off, %map = moe.dispatch %x, %ids align 2
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<?x16xf32>, tensor<9xi64>, tensor<?x2xi32>
  %h = moe.expert_matmul %rows, %w offsets(%off : tensor<9xi64>)
      : tensor<?x16xf32>, tensor<8x32x16xf32> -> tensor<?x32xf32>
  %g = moe.expert_matmul %rows, %w offsets(%off2 : tensor<9xi64>)
      : tensor<?x16xf32>, tensor<8x32x16xf32> -> tensor<?x32xf32>
  return %h, %g : tensor<?x32xf32>, tensor<?x32xf32>
}
