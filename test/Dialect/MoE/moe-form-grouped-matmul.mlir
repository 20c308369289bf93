// RUN: moe-opt %s --moe-form-grouped-matmul=block-rows=4 | FileCheck %s
// RUN: moe-opt %s --moe-form-grouped-matmul="block-rows=4 fuse-combine=0" \
// RUN:   | FileCheck %s --check-prefix=UNFUSED
// RUN: moe-opt %s --moe-form-grouped-matmul="block-rows=4 fuse-activation=0" \
// RUN:   | FileCheck %s --check-prefix=NOACT
// RUN: moe-opt %s --moe-form-grouped-matmul="block-rows=4 bound-rows=1" \
// RUN:   | FileCheck %s --check-prefix=BOUND
// RUN: moe-opt %s --moe-form-grouped-matmul="block-rows=4 atomic-combine=1" \
// RUN:   | FileCheck %s --check-prefix=ATOMIC
// RUN: not moe-opt %s --moe-form-grouped-matmul=block-rows=0 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: not moe-opt %s --moe-form-grouped-matmul="fuse-combine=0 atomic-combine=1" 2>&1 | FileCheck %s --check-prefix=BADATOMIC

// BAD: moe-form-grouped-matmul: block-rows must be at least 1, got 0
// BADATOMIC: moe-form-grouped-matmul: atomic-combine needs fuse-combine

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
// CHECK: %[[B:.*]] = affine.apply #{{.*}}(%[[R]])
// CHECK: %[[MY_BLOCKS:.*]] = tensor.extract_slice %[[BLOCKS]][0] [%[[B]]] [1]
// CHECK: %[[MY_SIZES:.*]] = tensor.extract_slice %[[SIZES]][0] [%[[B]]] [1]
// CHECK: %[[ALLOC:.*]] = bufferization.alloc_tensor(%[[R]]) : tensor<?x32xf32>
// CHECK: %[[ZERO:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%[[ALLOC]]
// CHECK: %[[ACC:.*]] = moe.grouped_matmul block_rows(4) ins(%[[X]], %{{.*}}, %[[MY_BLOCKS]] : tensor<?x16xf32>, tensor<8x32x16xf32>, tensor<?xi32>) block_sizes(%[[MY_SIZES]] : tensor<?xi32>) row_sources(%[[MY_SOURCES]] : tensor<?xi32>) outs(%[[ZERO]] : tensor<?x32xf32>)
// CHECK-NOT: linalg.generic
// CHECK: return %[[ACC]]
// bound-rows: the matmul covers the plan's row bound (the row sources'
// length), whose blocks past offsets[E] hold no expert; nothing reads the
// offsets.
// BOUND-LABEL: func @aligned
// BOUND: %[[OFF:.*]], %[[BLOCKS:.*]], %[[SIZES:.*]], %[[SOURCES:.*]], %{{.*}} = moe.routing_plan
// BOUND-NOT: tensor.extract %[[OFF]]
// BOUND: %[[R:.*]] = tensor.dim %[[SOURCES]], %c0
// BOUND: %[[B:.*]] = affine.apply #{{.*}}(%[[R]])
// BOUND: %[[MY_BLOCKS:.*]] = tensor.extract_slice %[[BLOCKS]][0] [%[[B]]] [1]
// BOUND: %[[ALLOC:.*]] = bufferization.alloc_tensor(%[[R]]) : tensor<?x32xf32>
// BOUND: moe.grouped_matmul block_rows(4) ins(%{{.*}}, %{{.*}}, %[[MY_BLOCKS]] :
// BOUND-LABEL: func @bias_bf16
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
// CHECK: %[[ROWS:.*]] = affine.min #{{.*}}(%[[N]],
// CHECK: %[[TARGETS:.*]] = tensor.extract_slice %[[SOURCES]][0] [%[[ROWS]]] [1]
// Each row's scale: its token's slot among the row map's K entries (a
// gather, parallel over the rows: an element-wise linalg.generic of
// ROWS elements).
// CHECK: %[[EMPTY:.*]] = tensor.empty(%[[ROWS]]) : tensor<?xf32>
// CHECK: %[[SCALES:.*]] = linalg.generic {{{.*}}iterator_types = ["parallel"]} outs(%[[EMPTY]] : tensor<?xf32>)
// CHECK:   %[[R:.*]] = linalg.index 0
// CHECK:   tensor.extract %[[TARGETS]][%[[R]]]
// CHECK:   scf.if
// CHECK:     scf.for
// CHECK:       tensor.extract %[[MAP]]
// CHECK:       tensor.extract %[[WEIGHTS]]
// CHECK:   linalg.yield
// CHECK: %[[T:.*]] = tensor.dim %[[WEIGHTS]], %c0
// CHECK: %[[ACC:.*]] = bufferization.alloc_tensor(%[[T]]) : tensor<?x16xf32>
// CHECK: %[[ZERO:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%[[ACC]]
// CHECK: %[[Y:.*]] = moe.grouped_matmul block_rows(4) ins(%[[ACT]], {{.*}}) block_sizes({{.*}}) scatter(%[[TARGETS]], %[[SCALES]] : tensor<?xi32>, tensor<?xf32>) outs(%[[ZERO]] : tensor<?x16xf32>)
// CHECK-NOT: moe.combine
// CHECK: return %[[Y]]
// With atomic-combine the scattering matmul's adds are atomic.
// ATOMIC-LABEL: func @layer
// ATOMIC: %[[Y:.*]] = moe.grouped_matmul block_rows(4) {{.*}} scatter({{.*}}) atomic outs(
// ATOMIC-NOT: moe.combine
// ATOMIC: return %[[Y]]
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

// Top-1 (a row map of one entry per token): with atomic-combine the
// scattering matmul is unique instead of atomic (no two rows share a
// token); without it, as any other.
// ATOMIC-LABEL: func @layer_top1
// ATOMIC: %[[Y:.*]] = moe.grouped_matmul block_rows(4) {{.*}} scatter({{.*}}) unique outs(
// ATOMIC: return %[[Y]]
// CHECK-LABEL: func @layer_top1
// CHECK: moe.grouped_matmul block_rows(4) {{.*}} scatter({{.*}} : tensor<?xi32>, tensor<?xf32>) outs(
func.func @layer_top1(%x: tensor<?x16xf32>, %ids: tensor<?x1xi32>,
                      %weights: tensor<?x1xf32>, %w: tensor<8x32x16xf32>,
                      %w2: tensor<8x16x32xf32>) -> tensor<?x16xf32> {
  %rows, %off, %map = moe.dispatch %x, %ids align 8
      : tensor<?x16xf32>, tensor<?x1xi32> -> tensor<?x16xf32>, tensor<9xi64>, tensor<?x1xi32>
  %h = moe.expert_matmul %rows, %w offsets(%off : tensor<9xi64>)
      : tensor<?x16xf32>, tensor<8x32x16xf32> -> tensor<?x32xf32>
  %d = moe.expert_matmul %h, %w2 offsets(%off : tensor<9xi64>)
      : tensor<?x32xf32>, tensor<8x16x32xf32> -> tensor<?x16xf32>
  %y = moe.combine %d, %weights, %map
      : tensor<?x16xf32>, tensor<?x1xf32>, tensor<?x1xi32> -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// A combine onto an init (a shared expert's output) scatters its rows onto
// that init (widened to f32 when it is not), not onto zeros.
// CHECK-LABEL: func @layer_onto_init
// CHECK-SAME: %[[INIT:[a-z0-9]+]]: tensor<?x16xf32>, %[[INIT16:[a-z0-9]+]]: tensor<?x16xbf16>
// CHECK-SAME: %[[INITDYN:[a-z0-9]+]]: tensor<?x?xf32>
// CHECK: %[[Y:.*]] = moe.grouped_matmul block_rows(4) {{.*}} scatter({{.*}}) outs(%[[INIT]] : tensor<?x16xf32>)
// CHECK: %[[WIDE:.*]] = linalg.generic {{.*}} ins(%[[INIT16]] : tensor<?x16xbf16>) outs(%{{.*}} : tensor<?x16xf32>)
// CHECK: arith.extf
// CHECK: %[[Z:.*]] = moe.grouped_matmul block_rows(4) {{.*}} scatter({{.*}}) outs(%[[WIDE]] : tensor<?x16xf32>)
// CHECK: arith.truncf
// An init of dynamic columns is cast to the weights' N (the tiling reads
// the columns from the accumulator's type).
// CHECK: %[[CAST:.*]] = tensor.cast %[[INITDYN]] : tensor<?x?xf32> to tensor<?x16xf32>
// CHECK: moe.grouped_matmul block_rows(4) {{.*}} scatter({{.*}}) outs(%[[CAST]] : tensor<?x16xf32>)
// CHECK: return %[[Y]],
// UNFUSED-LABEL: func @layer_onto_init
// UNFUSED: moe.combine %{{.*}}, %{{.*}}, %{{.*}} init(%{{.*}} : tensor<?x16xf32>)
func.func @layer_onto_init(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>,
                           %weights: tensor<?x2xf32>, %w: tensor<8x32x16xf32>,
                           %w2: tensor<8x16x32xf32>, %init: tensor<?x16xf32>,
                           %init16: tensor<?x16xbf16>, %x16: tensor<?x16xbf16>,
                           %wsq: tensor<8x16x16xf32>, %initdyn: tensor<?x?xf32>)
    -> (tensor<?x16xf32>, tensor<?x16xbf16>, tensor<?x16xf32>) {
  %rows, %off, %map = moe.dispatch %x, %ids align 8
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<?x16xf32>, tensor<9xi64>, tensor<?x2xi32>
  %g = moe.expert_matmul %rows, %w offsets(%off : tensor<9xi64>)
      : tensor<?x16xf32>, tensor<8x32x16xf32> -> tensor<?x32xf32>
  %d = moe.expert_matmul %g, %w2 offsets(%off : tensor<9xi64>)
      : tensor<?x32xf32>, tensor<8x16x32xf32> -> tensor<?x16xf32>
  %y = moe.combine %d, %weights, %map init(%init : tensor<?x16xf32>)
      : tensor<?x16xf32>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x16xf32>
  %rows16, %off16, %map16 = moe.dispatch %x16, %ids align 8
      : tensor<?x16xbf16>, tensor<?x2xi32> -> tensor<?x16xbf16>, tensor<9xi64>, tensor<?x2xi32>
  %d16 = moe.expert_matmul %rows16, %wsq offsets(%off16 : tensor<9xi64>)
      : tensor<?x16xbf16>, tensor<8x16x16xf32> -> tensor<?x16xbf16>
  %z = moe.combine %d16, %weights, %map16 init(%init16 : tensor<?x16xbf16>)
      : tensor<?x16xbf16>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x16xbf16>
  %rows3, %off3, %map3 = moe.dispatch %x, %ids align 8
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<?x16xf32>, tensor<9xi64>, tensor<?x2xi32>
  %d3 = moe.expert_matmul %rows3, %wsq offsets(%off3 : tensor<9xi64>)
      : tensor<?x16xf32>, tensor<8x16x16xf32> -> tensor<?x16xf32>
  %v = moe.combine %d3, %weights, %map3 init(%initdyn : tensor<?x?xf32>)
      : tensor<?x16xf32>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x16xf32>
  return %y, %z, %v : tensor<?x16xf32>, tensor<?x16xbf16>, tensor<?x16xf32>
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

// Block-scaled (FP8) weights: the grouped matmul takes the scales and the
// block (here with the combine fused into its write-back).
// CHECK-LABEL: func @block_scaled
// CHECK-SAME: %[[W:[a-z0-9]+]]: tensor<8x32x16xf8E4M3FN>, %[[S:[a-z0-9]+]]: tensor<8x1x1xf32>
// CHECK: moe.grouped_matmul block_rows(4) ins(%{{.*}}, %[[W]], %{{.*}} : tensor<?x16xf32>, tensor<8x32x16xf8E4M3FN>, tensor<?xi32>) {{.*}} scatter({{.*}}) scale(%[[S]] : tensor<8x1x1xf32>) block [128, 128] outs(
// CHECK-NOT: moe.expert_matmul
// CHECK-NOT: moe.combine
func.func @block_scaled(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>,
                        %w: tensor<8x32x16xf8E4M3FN>, %s: tensor<8x1x1xf32>,
                        %cw: tensor<?x2xf32>) -> tensor<?x32xf32> {
  %rows, %off, %map = moe.dispatch %x, %ids align 8
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<?x16xf32>, tensor<9xi64>, tensor<?x2xi32>
  %h = moe.expert_matmul %rows, %w offsets(%off : tensor<9xi64>)
      scale(%s : tensor<8x1x1xf32>) block [128, 128]
      : tensor<?x16xf32>, tensor<8x32x16xf8E4M3FN> -> tensor<?x32xf32>
  %y = moe.combine %h, %cw, %map
      : tensor<?x32xf32>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

// Scaled gate and up projections fuse with their activation: the up
// projection's scale is the paired scale.
// CHECK-LABEL: func @block_scaled_gated
// CHECK-SAME: %[[WG:[a-z0-9]+]]: tensor<4x32x16xf8E4M3FN>, %[[WU:[a-z0-9]+]]: tensor<4x32x16xf8E4M3FN>, %[[SG:[a-z0-9]+]]: tensor<4x2x1xf32>, %[[SU:[a-z0-9]+]]: tensor<4x2x1xf32>
// CHECK: moe.grouped_matmul {{.*}} paired(%[[WU]] : tensor<4x32x16xf8E4M3FN>) {{.*}} scale(%[[SG]] : tensor<4x2x1xf32>) paired_scale(%[[SU]] : tensor<4x2x1xf32>) block [16, 16] outs({{.*}}) epilogue {
// CHECK-NOT: moe.expert_matmul
func.func @block_scaled_gated(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>,
    %wg: tensor<4x32x16xf8E4M3FN>, %wu: tensor<4x32x16xf8E4M3FN>,
    %sg: tensor<4x2x1xf32>, %su: tensor<4x2x1xf32>) -> tensor<?x32xf32> {
  %rows, %off, %map = moe.dispatch %x, %ids align 4
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<?x16xf32>, tensor<5xi64>, tensor<?x2xi32>
  %g = moe.expert_matmul %rows, %wg offsets(%off : tensor<5xi64>)
      scale(%sg : tensor<4x2x1xf32>) block [16, 16]
      : tensor<?x16xf32>, tensor<4x32x16xf8E4M3FN> -> tensor<?x32xf32>
  %u = moe.expert_matmul %rows, %wu offsets(%off : tensor<5xi64>)
      scale(%su : tensor<4x2x1xf32>) block [16, 16]
      : tensor<?x16xf32>, tensor<4x32x16xf8E4M3FN> -> tensor<?x32xf32>
  %c0 = arith.constant 0 : index
  %n = tensor.dim %g, %c0 : tensor<?x32xf32>
  %e = tensor.empty(%n) : tensor<?x32xf32>
  %h = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>,
                                        affine_map<(d0, d1) -> (d0, d1)>,
                                        affine_map<(d0, d1) -> (d0, d1)>],
                       iterator_types = ["parallel", "parallel"]}
      ins(%g, %u : tensor<?x32xf32>, tensor<?x32xf32>) outs(%e : tensor<?x32xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %y = arith.mulf %a, %b : f32
    linalg.yield %y : f32
  } -> tensor<?x32xf32>
  return %h : tensor<?x32xf32>
}

// The gate and up projections of the same rows and the element-wise SwiGLU
// on them become one grouped matmul: the up weight is its paired weight,
// the generic's body its epilogue (constants from outside the body cloned
// in), and the hidden rows are written once. Readers of a projection's
// shape read the fused result's.
// CHECK-LABEL: func @gated
// CHECK-SAME: (%[[X:[a-z0-9]+]]: tensor<?x16xf32>, %{{.*}}: tensor<?x2xi32>, %[[WG:[a-z0-9]+]]: tensor<8x32x16xf32>, %[[WU:[a-z0-9]+]]: tensor<8x32x16xf32>)
// CHECK: %[[H:.*]] = moe.grouped_matmul block_rows(4) ins(%[[X]], %[[WG]], %{{.*}} : tensor<?x16xf32>, tensor<8x32x16xf32>, tensor<?xi32>) paired(%[[WU]] : tensor<8x32x16xf32>) block_sizes(%{{.*}}) row_sources(%{{.*}}) outs(%{{.*}} : tensor<?x32xf32>) epilogue {
// CHECK-NEXT: ^bb0(%[[G:.*]]: f32, %[[U:.*]]: f32, %{{.*}}: f32):
// CHECK-NEXT:   %[[ONE:.*]] = arith.constant 1.000000e+00 : f32
// CHECK-NEXT:   %[[NEG:.*]] = arith.negf %[[G]] : f32
// CHECK-NEXT:   %[[EXP:.*]] = math.exp %[[NEG]] : f32
// CHECK-NEXT:   %[[DEN:.*]] = arith.addf %[[EXP]], %[[ONE]] : f32
// CHECK-NEXT:   %[[SIG:.*]] = arith.divf %[[ONE]], %[[DEN]] : f32
// CHECK-NEXT:   %[[SILU:.*]] = arith.mulf %[[G]], %[[SIG]] : f32
// CHECK-NEXT:   %[[Y:.*]] = arith.mulf %[[SILU]], %[[U]] : f32
// CHECK-NEXT:   moe.yield %[[Y]] : f32
// CHECK-NEXT: } -> tensor<?x32xf32>
// CHECK-NOT: moe.expert_matmul
// CHECK-NOT: linalg.generic
// CHECK: %[[N:.*]] = tensor.dim %[[H]], %c0
// CHECK: return %[[H]], %[[N]]
// NOACT-LABEL: func @gated
// NOACT: moe.grouped_matmul {{.*}} outs(%{{.*}} : tensor<?x32xf32>) -> tensor<?x32xf32>
// NOACT: moe.grouped_matmul {{.*}} outs(%{{.*}} : tensor<?x32xf32>) -> tensor<?x32xf32>
// NOACT: linalg.generic
#id = affine_map<(d0, d1) -> (d0, d1)>
func.func @gated(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>,
                 %wg: tensor<8x32x16xf32>, %wu: tensor<8x32x16xf32>)
    -> (tensor<?x32xf32>, index) {
  %c0 = arith.constant 0 : index
  %one = arith.constant 1.0 : f32
  %rows, %off, %map = moe.dispatch %x, %ids align 8
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<?x16xf32>, tensor<9xi64>, tensor<?x2xi32>
  %g = moe.expert_matmul %rows, %wg offsets(%off : tensor<9xi64>)
      : tensor<?x16xf32>, tensor<8x32x16xf32> -> tensor<?x32xf32>
  %u = moe.expert_matmul %rows, %wu offsets(%off : tensor<9xi64>)
      : tensor<?x16xf32>, tensor<8x32x16xf32> -> tensor<?x32xf32>
  %n = tensor.dim %g, %c0 : tensor<?x32xf32>
  %e = tensor.empty(%n) : tensor<?x32xf32>
  %h = linalg.generic {indexing_maps = [#id, #id, #id],
                       iterator_types = ["parallel", "parallel"]}
      ins(%g, %u : tensor<?x32xf32>, tensor<?x32xf32>) outs(%e : tensor<?x32xf32>) {
  ^bb0(%a: f32, %b: f32, %o: f32):
    %neg = arith.negf %a : f32
    %exp = math.exp %neg : f32
    %den = arith.addf %exp, %one : f32
    %sig = arith.divf %one, %den : f32
    %silu = arith.mulf %a, %sig : f32
    %y = arith.mulf %silu, %b : f32
    linalg.yield %y : f32
  } -> tensor<?x32xf32>
  return %h, %n : tensor<?x32xf32>, index
}

// bf16 rows: each sum is rounded to bf16 as the projection would have
// returned it, the body runs on bf16, and its value is widened to f32; the
// f32 hidden rows are then converted to the generic's bf16. One weight
// (act(up), ungated) works the same way.
// CHECK-LABEL: func @ungated_bf16
// CHECK: %[[H:.*]] = moe.grouped_matmul block_rows(4) ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<?x16xbf16>, tensor<8x32x16xbf16>, tensor<?xi32>) block_sizes(%{{.*}}) row_sources(%{{.*}}) outs(%{{.*}} : tensor<?x32xf32>) epilogue {
// CHECK-NEXT: ^bb0(%[[S:.*]]: f32, %{{.*}}: f32):
// CHECK-NEXT:   %[[ZERO:.*]] = arith.constant 0.000000e+00 : bf16
// CHECK-NEXT:   %[[B:.*]] = arith.truncf %[[S]] : f32 to bf16
// CHECK-NEXT:   %[[R:.*]] = arith.maximumf %[[B]], %[[ZERO]] : bf16
// CHECK-NEXT:   %[[W:.*]] = arith.extf %[[R]] : bf16 to f32
// CHECK-NEXT:   moe.yield %[[W]] : f32
// CHECK: linalg.generic {{.*}} ins(%[[H]] : tensor<?x32xf32>) outs(%{{.*}} : tensor<?x32xbf16>)
// CHECK:   arith.truncf
func.func @ungated_bf16(%x: tensor<?x16xbf16>, %ids: tensor<?x2xi32>,
                        %wu: tensor<8x32x16xbf16>) -> tensor<?x32xbf16> {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : bf16
  %rows, %off, %map = moe.dispatch %x, %ids align 8
      : tensor<?x16xbf16>, tensor<?x2xi32> -> tensor<?x16xbf16>, tensor<9xi64>, tensor<?x2xi32>
  %u = moe.expert_matmul %rows, %wu offsets(%off : tensor<9xi64>)
      : tensor<?x16xbf16>, tensor<8x32x16xbf16> -> tensor<?x32xbf16>
  %n = tensor.dim %u, %c0 : tensor<?x32xbf16>
  %e = tensor.empty(%n) : tensor<?x32xbf16>
  %h = linalg.generic {indexing_maps = [#id, #id],
                       iterator_types = ["parallel", "parallel"]}
      ins(%u : tensor<?x32xbf16>) outs(%e : tensor<?x32xbf16>) {
  ^bb0(%a: bf16, %o: bf16):
    %r = arith.maximumf %a, %zero : bf16
    linalg.yield %r : bf16
  } -> tensor<?x32xbf16>
  return %h : tensor<?x32xbf16>
}

// Not fused: a projection with a bias (its epilogue adds it), one read by
// another op, and a generic that reads its output.
// CHECK-LABEL: func @not_fusable
// CHECK-NOT: epilogue
// CHECK: return
func.func @not_fusable(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>,
                       %w: tensor<8x32x16xf32>, %bias: tensor<8x32xf32>,
                       %acc: tensor<?x32xf32>)
    -> (tensor<?x32xf32>, tensor<?x32xf32>, tensor<?x32xf32>) {
  %rows, %off, %map = moe.dispatch %x, %ids align 8
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<?x16xf32>, tensor<9xi64>, tensor<?x2xi32>
  %b = moe.expert_matmul %rows, %w offsets(%off : tensor<9xi64>) bias(%bias : tensor<8x32xf32>)
      : tensor<?x16xf32>, tensor<8x32x16xf32> -> tensor<?x32xf32>
  %h1 = linalg.generic {indexing_maps = [#id, #id],
                        iterator_types = ["parallel", "parallel"]}
      ins(%b : tensor<?x32xf32>) outs(%acc : tensor<?x32xf32>) {
  ^bb0(%a: f32, %o: f32):
    %y = arith.negf %a : f32
    linalg.yield %y : f32
  } -> tensor<?x32xf32>
  %u = moe.expert_matmul %rows, %w offsets(%off : tensor<9xi64>)
      : tensor<?x16xf32>, tensor<8x32x16xf32> -> tensor<?x32xf32>
  %h2 = linalg.generic {indexing_maps = [#id, #id],
                        iterator_types = ["parallel", "parallel"]}
      ins(%u : tensor<?x32xf32>) outs(%acc : tensor<?x32xf32>) {
  ^bb0(%a: f32, %o: f32):
    %y = arith.negf %a : f32
    linalg.yield %y : f32
  } -> tensor<?x32xf32>
  %v = moe.expert_matmul %rows, %w offsets(%off : tensor<9xi64>)
      : tensor<?x16xf32>, tensor<8x32x16xf32> -> tensor<?x32xf32>
  %h3 = linalg.generic {indexing_maps = [#id, #id],
                        iterator_types = ["parallel", "parallel"]}
      ins(%v : tensor<?x32xf32>) outs(%acc : tensor<?x32xf32>) {
  ^bb0(%a: f32, %o: f32):
    %y = arith.addf %a, %o : f32
    linalg.yield %y : f32
  } -> tensor<?x32xf32>
  return %h1, %h2, %u : tensor<?x32xf32>, tensor<?x32xf32>, tensor<?x32xf32>
}

// Exact products stay exact on the grouped matmul; of a gate/up pair the
// fused matmul is exact when either projection is (they share the rows'
// loads).
// CHECK-LABEL: func @exact
// CHECK: moe.grouped_matmul block_rows(4) {{.*}} exact_products outs(%{{.*}} : tensor<?x32xf32>) -> tensor<?x32xf32>
// CHECK: moe.grouped_matmul block_rows(4) {{.*}} paired({{.*}}) {{.*}} exact_products outs(%{{.*}} : tensor<?x32xf32>) epilogue
func.func @exact(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>,
                 %wg: tensor<8x32x16xbf16>, %wu: tensor<8x32x16xbf16>)
    -> (tensor<?x32xf32>, tensor<?x32xf32>) {
  %c0 = arith.constant 0 : index
  %rows, %off, %map = moe.dispatch %x, %ids align 8
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<?x16xf32>, tensor<9xi64>, tensor<?x2xi32>
  %a = moe.expert_matmul %rows, %wg offsets(%off : tensor<9xi64>) exact_products
      : tensor<?x16xf32>, tensor<8x32x16xbf16> -> tensor<?x32xf32>
  %g = moe.expert_matmul %rows, %wg offsets(%off : tensor<9xi64>)
      : tensor<?x16xf32>, tensor<8x32x16xbf16> -> tensor<?x32xf32>
  %u = moe.expert_matmul %rows, %wu offsets(%off : tensor<9xi64>) exact_products
      : tensor<?x16xf32>, tensor<8x32x16xbf16> -> tensor<?x32xf32>
  %n = tensor.dim %g, %c0 : tensor<?x32xf32>
  %e = tensor.empty(%n) : tensor<?x32xf32>
  %h = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>],
                       iterator_types = ["parallel", "parallel"]}
      ins(%g, %u : tensor<?x32xf32>, tensor<?x32xf32>) outs(%e : tensor<?x32xf32>) {
  ^bb0(%p: f32, %q: f32, %o: f32):
    %y = arith.mulf %p, %q : f32
    linalg.yield %y : f32
  } -> tensor<?x32xf32>
  return %a, %h : tensor<?x32xf32>, tensor<?x32xf32>
}
