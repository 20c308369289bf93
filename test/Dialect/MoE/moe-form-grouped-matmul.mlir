// RUN: moe-opt %s --moe-form-grouped-matmul=block-rows=4 | FileCheck %s
// RUN: moe-opt %s --moe-form-grouped-matmul="block-rows=4 fuse-combine=0" \
// RUN:   | FileCheck %s --check-prefix=UNFUSED
// RUN: not moe-opt %s --moe-form-grouped-matmul=block-rows=0 2>&1 | FileCheck %s --check-prefix=BAD

// BAD: moe-form-grouped-matmul: block-rows must be at least 1, got 0

// Rows of a dispatch padded to blocks of 8 are whole blocks of 4: the expert
// matmul becomes a grouped matmul into a zero-filled f32 accumulator of
// offsets[E] rows, reading the expert and the filled rows of each of its
// offsets[E] / 4 blocks from the routing plan of the dispatch's ids. Its rows
// are the dispatch's own gathered rows, so it reads the dispatch's input
// instead, row r from token row_sources[r], and the dispatch goes away.
// CHECK-LABEL: func @aligned
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<?x16xf32>, %[[IDS:[a-z0-9]+]]: tensor<?x2xi32>
// CHECK-NOT: moe.dispatch
// CHECK: %[[OFF:.*]], %[[BLOCKS:.*]], %[[SIZES:.*]], %[[SOURCES:.*]], %{{.*}} = moe.routing_plan %[[IDS]] block_rows(4) align(8) : tensor<?x2xi32> -> tensor<9xi64>, tensor<?xi32>, tensor<?xi32>, tensor<?xi32>, tensor<?x2xi32>
// CHECK-NOT: moe.dispatch
// CHECK: %[[USED:.*]] = tensor.extract %[[OFF]][%c8]
// CHECK: %[[R:.*]] = arith.index_cast %[[USED]]
// CHECK: %[[MY_SOURCES:.*]] = tensor.extract_slice %[[SOURCES]][0] [%[[R]]] [1]
// CHECK: %[[B:.*]] = arith.divui %[[R]], %c4
// CHECK: %[[MY_BLOCKS:.*]] = tensor.extract_slice %[[BLOCKS]][0] [%[[B]]] [1]
// CHECK: %[[MY_SIZES:.*]] = tensor.extract_slice %[[SIZES]][0] [%[[B]]] [1]
// CHECK: %[[ALLOC:.*]] = bufferization.alloc_tensor(%[[R]]) : tensor<?x32xf32>
// CHECK: %[[ZERO:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%[[ALLOC]]
// CHECK: %[[ACC:.*]] = moe.grouped_matmul block_rows(4) ins(%[[X]], %{{.*}}, %[[MY_BLOCKS]] : tensor<?x16xf32>, tensor<8x32x16xf32>, tensor<?xi32>) block_sizes(%[[MY_SIZES]] : tensor<?xi32>) row_sources(%[[MY_SOURCES]] : tensor<?xi32>) outs(%[[ZERO]] : tensor<?x32xf32>)
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

// A whole layer: gate and up projections, the down projection and the
// combine share one plan, and with no reader of its rows left the dispatch
// goes away. The combine is fused into the down projection: a scattering
// grouped matmul adds each activated row, times its combine weight (from the
// row map), to row row_sources[r] (its token) of the [T, 16] result.
// CHECK-LABEL: func @layer
// CHECK-SAME: %[[IDS:[a-z0-9]+]]: tensor<?x2xi32>, %[[WEIGHTS:[a-z0-9]+]]: tensor<?x2xf32>
// CHECK-NOT: moe.dispatch
// CHECK: %[[OFF:.*]], %{{.*}}, %{{.*}}, %[[SOURCES:.*]], %[[MAP:.*]] = moe.routing_plan %[[IDS]] block_rows(4) align(8)
// CHECK-NOT: moe.routing_plan
// CHECK: %[[GATE:.*]] = moe.grouped_matmul {{.*}} row_sources
// CHECK: %[[UP:.*]] = moe.grouped_matmul {{.*}} row_sources
// CHECK: %[[ACT:.*]] = arith.mulf %[[GATE]], %[[UP]]
// CHECK: %[[N:.*]] = tensor.dim %[[ACT]], %c0
// CHECK: %[[ROWS:.*]] = arith.minui %[[N]],
// CHECK: %[[TARGETS:.*]] = tensor.extract_slice %[[SOURCES]][0] [%[[ROWS]]] [1]
// CHECK: %[[SCALES:.*]] = scf.for {{.*}} -> (tensor<?xf32>)
// CHECK:   scf.for
// CHECK:     tensor.extract %[[MAP]]
// CHECK:     scf.if
// CHECK:       tensor.extract %[[WEIGHTS]]
// CHECK: %[[T:.*]] = tensor.dim %[[WEIGHTS]], %c0
// CHECK: %[[ACC:.*]] = bufferization.alloc_tensor(%[[T]]) : tensor<?x16xf32>
// CHECK: %[[ZERO:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%[[ACC]]
// CHECK: %[[Y:.*]] = moe.grouped_matmul block_rows(4) ins(%[[ACT]], {{.*}}) block_sizes({{.*}}) scatter(%[[TARGETS]], %[[SCALES]] : tensor<?xi32>, tensor<?xf32>) outs(%[[ZERO]] : tensor<?x16xf32>)
// CHECK-NOT: moe.combine
// CHECK: return %[[Y]]
// Without fuse-combine, the down projection writes its rows and the combine
// reads them through the plan's row map.
// UNFUSED-LABEL: func @layer
// UNFUSED-SAME: %[[IDS:[a-z0-9]+]]: tensor<?x2xi32>
// UNFUSED-NOT: moe.dispatch
// UNFUSED: %[[OFF:.*]], %{{.*}}, %{{.*}}, %{{.*}}, %[[MAP:.*]] = moe.routing_plan %[[IDS]] block_rows(4) align(8)
// UNFUSED: %[[DOWN:.*]] = moe.grouped_matmul block_rows(4) ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<?x32xf32>, tensor<8x16x32xf32>, tensor<?xi32>) block_sizes({{.*}}) outs(
// UNFUSED: moe.combine %[[DOWN]], %{{.*}}, %[[MAP]]
func.func @layer(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>,
                 %weights: tensor<?x2xf32>, %w: tensor<8x32x16xf32>,
                 %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  %rows, %off, %map = moe.dispatch %x, %ids align 8
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<?x16xf32>, tensor<9xi64>, tensor<?x2xi32>
  %g = moe.expert_matmul %rows, %w offsets(%off : tensor<9xi64>)
      : tensor<?x16xf32>, tensor<8x32x16xf32> -> tensor<?x32xf32>
  %u = moe.expert_matmul %rows, %w offsets(%off : tensor<9xi64>)
      : tensor<?x16xf32>, tensor<8x32x16xf32> -> tensor<?x32xf32>
  %a = arith.mulf %g, %u : tensor<?x32xf32>
  %d = moe.expert_matmul %a, %w2 offsets(%off : tensor<9xi64>)
      : tensor<?x32xf32>, tensor<8x16x32xf32> -> tensor<?x16xf32>
  %y = moe.combine %d, %weights, %map
      : tensor<?x16xf32>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// Offsets of a routing plan in blocks of 4 are used as they are; a plan in
// blocks of another size is not this pass's layout.
// CHECK-LABEL: func @from_plan
// CHECK: %[[OFF:.*]], %[[BLOCKS:.*]], %[[SIZES:.*]], %{{.*}}, %{{.*}} = moe.routing_plan %{{.*}} block_rows(4) align(4)
// CHECK: moe.grouped_matmul block_rows(4)
// CHECK: moe.routing_plan %{{.*}} block_rows(2) align(4)
// CHECK: moe.expert_matmul
func.func @from_plan(%rows: tensor<?x16xf32>, %ids: tensor<?x2xi32>,
                     %w: tensor<8x32x16xf32>)
    -> (tensor<?x32xf32>, tensor<?x32xf32>) {
  %off, %blocks, %sizes, %sources, %map =
      moe.routing_plan %ids block_rows(4) align(4)
      : tensor<?x2xi32> -> tensor<9xi64>, tensor<?xi32>, tensor<?xi32>,
        tensor<?xi32>, tensor<?x2xi32>
  %h = moe.expert_matmul %rows, %w offsets(%off : tensor<9xi64>)
      : tensor<?x16xf32>, tensor<8x32x16xf32> -> tensor<?x32xf32>
  %off2, %blocks2, %sizes2, %sources2, %map2 =
      moe.routing_plan %ids block_rows(2) align(4)
      : tensor<?x2xi32> -> tensor<9xi64>, tensor<?xi32>, tensor<?xi32>,
        tensor<?xi32>, tensor<?x2xi32>
  %g = moe.expert_matmul %rows, %w offsets(%off2 : tensor<9xi64>)
      : tensor<?x16xf32>, tensor<8x32x16xf32> -> tensor<?x32xf32>
  return %h, %g : tensor<?x32xf32>, tensor<?x32xf32>
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
