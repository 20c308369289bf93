// RUN: moe-opt %s --convert-moe-to-linalg --canonicalize --cse --split-input-file | FileCheck %s

// Softmax top-k: scores as linalg over [T,E], then per token (an scf.forall
// writing the token's [1, K] rows) one pass over the experts carrying the K
// best (score, expert) pairs sorted (expert -1: empty); an expert that ranks
// before the K-th enters (scf.if) and bubbles into place with selects; then
// the K choices are written, and a renormalize + scale loop.
// CHECK-LABEL: func @gate_softmax
// CHECK-SAME: (%[[L:.*]]: tensor<?x6xf32>)
// CHECK-NOT: moe.
// CHECK: %[[MAX:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "reduction"]{{.*}} ins(%[[L]] : tensor<?x6xf32>)
// CHECK: arith.maximumf
// CHECK: %[[EXP:.*]] = linalg.generic
// CHECK: math.exp
// CHECK: %[[SUM:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "reduction"]{{.*}} ins(%[[EXP]] : tensor<?x6xf32>)
// CHECK: %[[P:.*]] = linalg.generic
// CHECK: arith.divf
// CHECK: %[[TOP:.*]]:2 = scf.forall (%[[T:[a-z0-9_]+]]) in (%{{.*}}) shared_outs(%[[G:.*]] = %{{.*}}, %[[I:.*]] = %{{.*}}) -> (tensor<?x2xf32>, tensor<?x2xi32>)
// CHECK: %[[GROW:.*]] = tensor.extract_slice %[[G]][%[[T]], 0] [1, 2] [1, 1]
// CHECK: %[[IROW:.*]] = tensor.extract_slice %[[I]][%[[T]], 0] [1, 2] [1, 1]
// CHECK: %[[BEST:.*]]:4 = scf.for %[[E:[a-z0-9_]+]] = %{{.*}} to %c6 step {{.*}} iter_args(%{{.*}} = %cst{{.*}}, %{{.*}} = %cst{{.*}}, %{{.*}} = %c-1, %{{.*}} = %c-1) -> (f32, f32, index, index)
// CHECK: tensor.extract %[[P]][%[[T]], %[[E]]]
// CHECK: arith.cmpf uno
// CHECK: %{{.*}}:4 = scf.if %{{.*}} -> (f32, f32, index, index)
// CHECK: arith.select
// CHECK: tensor.insert %{{.*}} into %[[GROW]][%c0, %c0] : tensor<1x2xf32>
// CHECK: tensor.insert %{{.*}} into %[[IROW]][%c0, %c0] : tensor<1x2xi32>
// CHECK: %[[GROWS:.*]] = tensor.insert %{{.*}}[%c0, %c1] : tensor<1x2xf32>
// CHECK: %[[IROWS:.*]] = tensor.insert %{{.*}}[%c0, %c1] : tensor<1x2xi32>
// CHECK: tensor.parallel_insert_slice %[[GROWS]] into %[[G]][%[[T]], 0] [1, 2] [1, 1]
// CHECK: tensor.parallel_insert_slice %[[IROWS]] into %[[I]][%[[T]], 0] [1, 2] [1, 1]
// CHECK: arith.divf
// CHECK: arith.mulf %{{.*}}, %cst
func.func @gate_softmax(%logits: tensor<?x6xf32>) -> (tensor<?x2xf32>, tensor<?x2xi32>) {
  %w, %ids = moe.gate %logits routing <softmax, top_k = 2, renormalize, scale = 2.0>
      : tensor<?x6xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return %w, %ids : tensor<?x2xf32>, tensor<?x2xi32>
}

// -----

// Above K = 16 the K best are found by K arg-max passes over the experts,
// each picking the best expert that ranks after the previous pick.
// CHECK-LABEL: func @gate_large_k
// CHECK: scf.forall
// CHECK: %[[PICKED:.*]]:4 = scf.for %[[K:[a-z0-9_]+]] = %{{.*}} to %c17 step {{.*}} iter_args
// CHECK: scf.for %{{.*}} = %{{.*}} to %c20 step
// CHECK: arith.cmpf uno
// CHECK: tensor.insert %{{.*}}[%c0, %[[K]]] : tensor<1x17xf32>
// CHECK: tensor.insert %{{.*}}[%c0, %[[K]]] : tensor<1x17xi32>
// CHECK: tensor.parallel_insert_slice %[[PICKED]]#2
func.func @gate_large_k(%logits: tensor<?x20xf32>) -> (tensor<?x17xf32>, tensor<?x17xi32>) {
  %w, %ids = moe.gate %logits routing <softmax, top_k = 17>
      : tensor<?x20xf32> -> tensor<?x17xf32>, tensor<?x17xi32>
  return %w, %ids : tensor<?x17xf32>, tensor<?x17xi32>
}

// -----

// Without renormalization or scaling there is no post-selection loop.
// CHECK-LABEL: func @gate_plain_top1
// CHECK: scf.forall
// CHECK: tensor.insert {{.*}} : tensor<1x1xi32>
// CHECK-NOT: arith.divf
// CHECK: return
func.func @gate_plain_top1(%logits: tensor<4x3xf32>) -> (tensor<4x1xf32>, tensor<4x1xi32>) {
  %w, %ids = moe.gate %logits routing <softmax, top_k = 1>
      : tensor<4x3xf32> -> tensor<4x1xf32>, tensor<4x1xi32>
  return %w, %ids : tensor<4x1xf32>, tensor<4x1xi32>
}

// -----

// DeepSeek-V3 style: sigmoid scores, selection bias, group scores (sum of the
// two largest per group), kept groups as i1, selection restricted to them.
// CHECK-LABEL: func @gate_grouped
// CHECK-SAME: (%[[L:.*]]: tensor<?x8xf32>, %[[B:.*]]: tensor<8xf32>)
// CHECK: %[[S:.*]] = linalg.generic
// CHECK: math.exp
// CHECK: %[[SEL:.*]] = linalg.generic
// CHECK: tensor.extract %[[B]]
// CHECK: %[[GS:.*]] = linalg.generic {{.*}} outs(%{{.*}} : tensor<?x4xf32>)
// CHECK: scf.for {{.*}} to %c2
// CHECK: arith.maximumf
// CHECK: arith.minimumf
// CHECK: %[[KEPT:.*]] = linalg.generic {{.*}} outs(%{{.*}} : tensor<?x4xi1>)
// CHECK: scf.for {{.*}} to %c4
// CHECK: arith.cmpi slt, %{{.*}}, %c2
// CHECK: scf.forall (%[[T:[a-z0-9_]+]]) in
// CHECK: scf.for %[[E:[a-z0-9_]+]] = %{{.*}} to %c8
// CHECK: tensor.extract %[[SEL]][%[[T]], %[[E]]]
// CHECK: %[[G:.*]] = arith.divui %[[E]], %c2
// CHECK: tensor.extract %[[KEPT]][%[[T]], %[[G]]]
// Combine weights are the unbiased scores.
// CHECK: tensor.extract %[[S]][%[[T]],
func.func @gate_grouped(%logits: tensor<?x8xf32>, %bias: tensor<8xf32>) -> (tensor<?x2xf32>, tensor<?x2xi32>) {
  %w, %ids = moe.gate %logits bias(%bias : tensor<8xf32>)
      routing <sigmoid, top_k = 2, renormalize, selection_bias, groups = 4, topk_groups = 2, group_score = sum_top2>
      : tensor<?x8xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return %w, %ids : tensor<?x2xf32>, tensor<?x2xi32>
}

// -----

// DeepSeek-V2 group_limited_greedy: the group score is the group's max.
// CHECK-LABEL: func @gate_group_max
// CHECK: linalg.generic {{.*}} outs(%{{.*}} : tensor<?x2xf32>)
// CHECK: arith.maximumf
// CHECK-NOT: arith.addf
// CHECK: linalg.yield
func.func @gate_group_max(%logits: tensor<?x6xf32>) -> (tensor<?x2xf32>, tensor<?x2xi32>) {
  %w, %ids = moe.gate %logits routing <softmax, top_k = 2, groups = 2, topk_groups = 1, group_score = max>
      : tensor<?x6xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return %w, %ids : tensor<?x2xf32>, tensor<?x2xi32>
}

// -----

// Grouped dispatch: count per expert (per chunk of 64 tokens, the chunks
// in parallel, then summed, the experts in parallel), the aligned prefix
// sum (each expert's padded count, then a scan in log2(E + 1) parallel
// steps over two buffers), then per taken assignment
// a row (the row map, -1 when not taken) and the token of that row (a
// table of offsets[E] entries, -1 for padding rows); an scf.forall over the
// rows copies each from its token's input row, or zero-fills it.
// CHECK-LABEL: func @dispatch_grouped
// CHECK-SAME: (%[[X:.*]]: tensor<?x16xf32>, %[[IDS:.*]]: tensor<?x2xi32>)
// CHECK: %[[T:.*]] = tensor.dim %[[IDS]], %c0
// CHECK: %[[CHUNKS:.*]] = arith.ceildivui %[[T]], %c64
// CHECK: %[[PER_CHUNK:.*]] = scf.forall (%[[C:.*]]) in (%[[CHUNKS]]) shared_outs(%[[CC:.*]] = %{{.*}}) -> (tensor<?x4xi32>)
// CHECK:   %[[MINE:.*]] = tensor.extract_slice %[[CC]][%[[C]], 0] [1, 4] [1, 1]
// CHECK:   scf.for {{.*}} iter_args(%{{.*}} = %[[MINE]])
// CHECK:     tensor.extract %[[IDS]]
// CHECK:     scf.if
// CHECK:       tensor.insert {{.*}} : tensor<1x4xi32>
// CHECK:   tensor.parallel_insert_slice %{{.*}} into %[[CC]][%[[C]], 0] [1, 4] [1, 1]
// CHECK: %[[COUNTS:.*]] = linalg.generic {{.*}} iterator_types = ["parallel"]} outs(%{{.*}} : tensor<4xi32>)
// CHECK:   scf.for
// CHECK:     tensor.extract %[[PER_CHUNK]]
// CHECK: %[[PADDED:.*]] = linalg.generic {{.*}} iterator_types = ["parallel"]} outs(%{{.*}} : tensor<5xi64>)
// CHECK:   tensor.extract %[[COUNTS]]
// CHECK:   arith.ceildivui %{{.*}}, %c8
// CHECK:   arith.muli %{{.*}}, %c8
// CHECK: %[[SCAN1:.*]] = linalg.generic {{.*}} outs(%[[SPARE:.*]] : tensor<5xi64>)
// CHECK:   tensor.extract %[[PADDED]]
// CHECK: %[[SCAN2:.*]] = linalg.generic {{.*}} outs(%[[PADDED]] : tensor<5xi64>)
// CHECK:   tensor.extract %[[SCAN1]]
// CHECK: %[[OFF:.*]] = linalg.generic {{.*}} outs(%[[SCAN1]] : tensor<5xi64>)
// CHECK:   tensor.extract %[[SCAN2]]
// CHECK: %[[N:.*]] = tensor.extract %[[OFF]][%c4]
// CHECK: %[[NI:.*]] = arith.index_cast %[[N]]
// CHECK: %[[EMPTY:.*]] = tensor.empty(%[[NI]]) : tensor<?xi32>
// CHECK: %[[NONE:.*]] = linalg.fill ins(%c-1_i32 : i32) outs(%[[EMPTY]]
// CHECK: %[[PLACED:.*]]:3 = scf.for {{.*}} iter_args(%{{.*}} = %[[NONE]]
// CHECK: arith.select %{{.*}}, %{{.*}}, %c-1
// CHECK: scf.if
// CHECK: tensor.insert %{{.*}} : tensor<?xi32>
// CHECK: %[[ROWS:.*]] = scf.forall (%[[R:.*]]) in (%[[NI]]) shared_outs(%[[OUT:.*]] = %{{.*}}) -> (tensor<?x16xf32>)
// CHECK:   %[[DST:.*]] = tensor.extract_slice %[[OUT]][%[[R]], 0] [1, 16] [1, 1]
// CHECK:   %[[TOKEN:.*]] = tensor.extract %[[PLACED]]#0[%[[R]]]
// CHECK:   %[[TI:.*]] = arith.index_cast %[[TOKEN]]
// CHECK:   %[[FILLED:.*]] = arith.cmpi sge, %[[TI]], %c0
// CHECK:   %[[ROW:.*]] = scf.if %[[FILLED]]
// CHECK:     %[[SRC:.*]] = tensor.extract_slice %[[X]][%[[TI]], 0] [1, 16] [1, 1]
// CHECK:     linalg.copy ins(%[[SRC]] {{.*}} outs(%[[DST]]
// CHECK:   else
// CHECK:     linalg.fill {{.*}} outs(%[[DST]]
// CHECK:   tensor.parallel_insert_slice %[[ROW]] into %[[OUT]][%[[R]], 0] [1, 16] [1, 1]
// CHECK: return %[[ROWS]], %[[OFF]], %[[PLACED]]#1
func.func @dispatch_grouped(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>)
    -> (tensor<?x16xf32>, tensor<5xi64>, tensor<?x2xi32>) {
  %rows, %off, %map = moe.dispatch %x, %ids align 8
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<?x16xf32>, tensor<5xi64>, tensor<?x2xi32>
  return %rows, %off, %map : tensor<?x16xf32>, tensor<5xi64>, tensor<?x2xi32>
}

// -----

// Capacity layout: slot = the expert's count so far, placed only if < C;
// the row map holds e*C + slot and the flattened [E*C] slots their token
// (sequential, scalar); an scf.forall over the slots then copies each row
// from its token or zero-fills it, and the [E*C, H] rows are [E, C, H].
// CHECK-LABEL: func @dispatch_capacity
// CHECK-SAME: (%[[X:.*]]: tensor<?x16xf32>, %{{.*}}: tensor<?x2xi32>, %[[C:[a-z0-9_]+]]: index)
// CHECK: %[[SLOTS:.*]] = arith.muli %[[C]], %c4
// CHECK: %[[EMPTY:.*]] = tensor.empty(%[[SLOTS]]) : tensor<?xi32>
// CHECK: %[[NONE:.*]] = linalg.fill ins(%c-1_i32 : i32) outs(%[[EMPTY]]
// CHECK: %[[PLACED:.*]]:3 = scf.for {{.*}} iter_args(%{{.*}} = %[[NONE]]
// CHECK:   arith.muli %{{.*}}, %[[C]]
// CHECK:   arith.cmpi slt, %{{.*}}, %[[C]]
// CHECK:   scf.if
// CHECK:     tensor.insert %{{.*}} : tensor<?xi32>
// CHECK: %[[ROWS:.*]] = scf.forall (%[[R:.*]]) in (%[[SLOTS]])
// CHECK:   tensor.extract %[[PLACED]]#0[%[[R]]]
// CHECK:   scf.if
// CHECK:     tensor.extract_slice %[[X]]
// CHECK:     linalg.copy
// CHECK:   else
// CHECK:     linalg.fill
// CHECK: %[[SHAPED:.*]] = tensor.expand_shape %[[ROWS]] {{\[\[}}0, 1], [2]] output_shape [4, %[[C]], 16] : tensor<?x16xf32> into tensor<4x?x16xf32>
// CHECK: return %[[SHAPED]], %[[PLACED]]#2, %[[PLACED]]#1
func.func @dispatch_capacity(%x: tensor<?x16xf32>, %ids: tensor<?x2xi32>, %c: index)
    -> (tensor<4x?x16xf32>, tensor<4xi64>, tensor<?x2xi32>) {
  %rows, %counts, %map = moe.dispatch %x, %ids capacity(%c)
      : tensor<?x16xf32>, tensor<?x2xi32> -> tensor<4x?x16xf32>, tensor<4xi64>, tensor<?x2xi32>
  return %rows, %counts, %map : tensor<4x?x16xf32>, tensor<4xi64>, tensor<?x2xi32>
}

// -----

// f32 grouped matmul: per expert, the clamped row range and a matmul written
// straight into that slice of the result.
// CHECK-LABEL: func @matmul_f32
// CHECK-SAME: (%[[R:.*]]: tensor<?x16xf32>, %[[W:.*]]: tensor<4x8x16xf32>, %[[OFF:.*]]: tensor<5xi64>)
// CHECK: scf.for %[[E:[a-z0-9_]+]] = %{{.*}} to %c4 {{.*}} iter_args(%[[ACC:.*]] =
// CHECK: arith.maxsi
// CHECK: arith.minsi
// CHECK: %[[ROWS:.*]] = tensor.extract_slice %[[R]][%[[START:.*]], 0] [%[[COUNT:.*]], 16] [1, 1]
// CHECK: %[[OUT:.*]] = tensor.extract_slice %[[ACC]][%[[START]], 0] [%[[COUNT]], 8] [1, 1]
// CHECK: %[[WE:.*]] = tensor.extract_slice %[[W]][%[[E]], 0, 0] [1, 8, 16] [1, 1, 1] : tensor<4x8x16xf32> to tensor<8x16xf32>
// CHECK: %[[Z:.*]] = linalg.fill {{.*}} outs(%[[OUT]]
// CHECK: %[[P:.*]] = linalg.matmul {{.*}} ins(%[[ROWS]], %[[WE]] : tensor<?x16xf32>, tensor<8x16xf32>) outs(%[[Z]] : tensor<?x8xf32>)
// CHECK: tensor.insert_slice %[[P]] into %[[ACC]][%[[START]], 0] [%[[COUNT]], 8]
func.func @matmul_f32(%rows: tensor<?x16xf32>, %w: tensor<4x8x16xf32>, %off: tensor<5xi64>) -> tensor<?x8xf32> {
  %h = moe.expert_matmul %rows, %w offsets(%off : tensor<5xi64>)
      : tensor<?x16xf32>, tensor<4x8x16xf32> -> tensor<?x8xf32>
  return %h : tensor<?x8xf32>
}

// -----

// bf16 rows: f32 accumulation, then bias and truncation into the slice.
// CHECK-LABEL: func @matmul_bf16_bias
// CHECK: scf.for
// CHECK: %[[ACC:.*]] = tensor.empty(%{{.*}}) : tensor<?x8xf32>
// CHECK: %[[P:.*]] = linalg.matmul {{.*}} outs(%{{.*}} : tensor<?x8xf32>)
// CHECK: %[[BIAS:.*]] = tensor.extract_slice %{{.*}} : tensor<4x8xf32> to tensor<8xf32>
// CHECK: linalg.generic {{.*}} ins(%[[P]], %[[BIAS]] : tensor<?x8xf32>, tensor<8xf32>) outs(%{{.*}} : tensor<?x8xbf16>)
// CHECK: arith.addf
// CHECK: arith.truncf {{.*}} : f32 to bf16
func.func @matmul_bf16_bias(%rows: tensor<?x16xbf16>, %w: tensor<4x8x16xbf16>, %off: tensor<5xi64>, %b: tensor<4x8xf32>) -> tensor<?x8xbf16> {
  %h = moe.expert_matmul %rows, %w offsets(%off : tensor<5xi64>) bias(%b : tensor<4x8xf32>)
      : tensor<?x16xbf16>, tensor<4x8x16xbf16> -> tensor<?x8xbf16>
  return %h : tensor<?x8xbf16>
}

// -----

// Capacity slots: one linalg.batch_matmul with a transposed-B map,
// [E,C,K] x [E,N,K]^T, into a zero-filled f32 accumulator.
// CHECK-LABEL: func @matmul_capacity
// CHECK: %[[ZERO:.*]] = linalg.fill {{.*}} -> tensor<4x3x8xf32>
// CHECK: linalg.batch_matmul indexing_maps = [#{{.*}}, #{{.*}}, #{{.*}}] ins(%{{.*}}, %{{.*}} : tensor<4x3x16xf32>, tensor<4x8x16xbf16>) outs(%[[ZERO]] : tensor<4x3x8xf32>)
func.func @matmul_capacity(%slots: tensor<4x3x16xf32>, %w: tensor<4x8x16xbf16>) -> tensor<4x3x8xf32> {
  %h = moe.expert_matmul %slots, %w : tensor<4x3x16xf32>, tensor<4x8x16xbf16> -> tensor<4x3x8xf32>
  return %h : tensor<4x3x8xf32>
}

// -----

// Block-scaled FP8 weights (blocks of 16 x 16): each expert's weight is
// dequantized to f32, w * scale[n floordiv 16, k floordiv 16], then
// multiplied as an f32 one; an expert without rows is skipped.
// CHECK-DAG: #[[$BLOCK:.*]] = affine_map<(d0, d1) -> (d0 floordiv 16, d1 floordiv 16)>
// CHECK-DAG: #[[$BLOCK3:.*]] = affine_map<(d0, d1, d2) -> (d0, d1 floordiv 16, d2 floordiv 16)>
// CHECK-LABEL: func @matmul_fp8
// CHECK-SAME: (%[[R:.*]]: tensor<?x40xf32>, %[[W:.*]]: tensor<4x24x40xf8E4M3FN>, %[[S:.*]]: tensor<4x2x3xf32>, %{{.*}}: tensor<5xi64>)
// CHECK: scf.for %[[E:[a-z0-9_]+]] =
// CHECK: %[[COUNT:.*]] = arith.subi
// CHECK: %[[USED:.*]] = arith.cmpi sgt, %[[COUNT]], %c0
// CHECK: scf.if %[[USED]]
// CHECK: %[[WE:.*]] = tensor.extract_slice %[[W]][%[[E]], 0, 0] [1, 24, 40] [1, 1, 1] : tensor<4x24x40xf8E4M3FN> to tensor<24x40xf8E4M3FN>
// CHECK: %[[SE:.*]] = tensor.extract_slice %[[S]][%[[E]], 0, 0] [1, 2, 3] [1, 1, 1] : tensor<4x2x3xf32> to tensor<2x3xf32>
// CHECK: %[[DQ:.*]] = linalg.generic {indexing_maps = [#{{.*}}, #[[$BLOCK]], #{{.*}}], {{.*}}} ins(%[[WE]], %[[SE]] : tensor<24x40xf8E4M3FN>, tensor<2x3xf32>) outs(%{{.*}} : tensor<24x40xf32>)
// CHECK:   arith.extf %{{.*}} : f8E4M3FN to f32
// CHECK:   arith.mulf
// CHECK: linalg.matmul {{.*}} ins(%{{.*}}, %[[DQ]] : tensor<?x40xf32>, tensor<24x40xf32>)
// CHECK: } else {
// CHECK-NEXT: scf.yield
func.func @matmul_fp8(%rows: tensor<?x40xf32>, %w: tensor<4x24x40xf8E4M3FN>,
    %s: tensor<4x2x3xf32>, %off: tensor<5xi64>) -> tensor<?x24xf32> {
  %h = moe.expert_matmul %rows, %w offsets(%off : tensor<5xi64>)
      scale(%s : tensor<4x2x3xf32>) block [16, 16]
      : tensor<?x40xf32>, tensor<4x24x40xf8E4M3FN> -> tensor<?x24xf32>
  return %h : tensor<?x24xf32>
}

// CHECK-LABEL: func @matmul_fp8_capacity
// CHECK: %[[DQ:.*]] = linalg.generic {indexing_maps = [#{{.*}}, #[[$BLOCK3]], #{{.*}}], {{.*}}} ins(%{{.*}}, %{{.*}} : tensor<4x24x40xf8E4M3FN>, tensor<4x2x3xf32>) outs(%{{.*}} : tensor<4x24x40xf32>)
// CHECK: linalg.batch_matmul {{.*}} ins(%{{.*}}, %[[DQ]] : tensor<4x3x40xf32>, tensor<4x24x40xf32>)
func.func @matmul_fp8_capacity(%slots: tensor<4x3x40xf32>, %w: tensor<4x24x40xf8E4M3FN>,
    %s: tensor<4x2x3xf32>) -> tensor<4x3x24xf32> {
  %h = moe.expert_matmul %slots, %w scale(%s : tensor<4x2x3xf32>) block [16, 16]
      : tensor<4x3x40xf32>, tensor<4x24x40xf8E4M3FN> -> tensor<4x3x24xf32>
  return %h : tensor<4x3x24xf32>
}

// -----

// MXFP4 weights (e2m1 pairs: K = 39 in 20 bytes, per-column scales of [1,
// 32] blocks): each expert's weight is decoded to f32 [N, K], byte k
// floordiv 2, its nibble k mod 2 (linalg.index) as the value, times the
// scale of its column and depth block; in the capacity layout all experts
// at once.
// CHECK-DAG: #[[$PAIRS:.*]] = affine_map<(d0, d1) -> (d0, d1 floordiv 2)>
// CHECK-DAG: #[[$COLUMN:.*]] = affine_map<(d0, d1) -> (d0, d1 floordiv 32)>
// CHECK-DAG: #[[$PAIRS3:.*]] = affine_map<(d0, d1, d2) -> (d0, d1, d2 floordiv 2)>
// CHECK-LABEL: func @matmul_mxfp4
// CHECK: %[[DQ:.*]] = linalg.generic {indexing_maps = [#[[$PAIRS]], #[[$COLUMN]], #{{.*}}], {{.*}}} ins(%{{.*}}, %{{.*}} : tensor<24x20xi8>, tensor<24x2xf32>) outs(%{{.*}} : tensor<24x39xf32>)
// CHECK:   linalg.index 1
// CHECK:   arith.extui %{{.*}} : i8 to i32
// CHECK:   arith.shrui
// CHECK:   arith.mulf
// CHECK:   arith.mulf
// CHECK: linalg.matmul {{.*}} ins(%{{.*}}, %[[DQ]] : tensor<?x39xf32>, tensor<24x39xf32>)
func.func @matmul_mxfp4(%rows: tensor<?x39xf32>, %w: tensor<4x24x20xi8>,
    %s: tensor<4x24x2xf32>, %off: tensor<5xi64>) -> tensor<?x24xf32> {
  %h = moe.expert_matmul %rows, %w offsets(%off : tensor<5xi64>)
      scale(%s : tensor<4x24x2xf32>) block [1, 32]
      : tensor<?x39xf32>, tensor<4x24x20xi8> -> tensor<?x24xf32>
  return %h : tensor<?x24xf32>
}

// CHECK-LABEL: func @matmul_mxfp4_capacity
// CHECK: %[[DQ:.*]] = linalg.generic {indexing_maps = [#[[$PAIRS3]], #{{.*}}, #{{.*}}], {{.*}}} ins(%{{.*}}, %{{.*}} : tensor<4x24x20xi8>, tensor<4x24x2xf32>) outs(%{{.*}} : tensor<4x24x39xf32>)
// CHECK: linalg.batch_matmul {{.*}} ins(%{{.*}}, %[[DQ]] : tensor<4x3x39xf32>, tensor<4x24x39xf32>)
func.func @matmul_mxfp4_capacity(%slots: tensor<4x3x39xf32>, %w: tensor<4x24x20xi8>,
    %s: tensor<4x24x2xf32>) -> tensor<4x3x24xf32> {
  %h = moe.expert_matmul %slots, %w scale(%s : tensor<4x24x2xf32>) block [1, 32]
      : tensor<4x3x39xf32>, tensor<4x24x20xi8> -> tensor<4x3x24xf32>
  return %h : tensor<4x3x24xf32>
}

// -----

// Combine: per token (scf.forall) an f32 row accumulated over its K row-map
// entries in order, whole rows at a time; only taken entries inside the
// buffer are read; a bf16 output is converted at the end.
// CHECK-LABEL: func @combine_grouped
// CHECK-SAME: (%[[R:.*]]: tensor<?x16xbf16>, %[[W:.*]]: tensor<?x2xf32>, %[[M:.*]]: tensor<?x2xi32>)
// CHECK: scf.forall (%[[T:.*]]) in (%{{.*}}) shared_outs(%[[OUT:.*]] = %{{.*}}) -> (tensor<?x16xbf16>)
// CHECK:   %[[DST:.*]] = tensor.extract_slice %[[OUT]][%[[T]], 0] [1, 16] [1, 1]
// CHECK:   %[[ZERO:.*]] = linalg.fill {{.*}} -> tensor<1x16xf32>
// CHECK:   %[[SUM:.*]] = scf.for %[[K:[a-z0-9_]+]] = %{{.*}} to %c2 {{.*}} iter_args(%[[ACC:.*]] = %[[ZERO]])
// CHECK:     tensor.extract %[[M]][%[[T]], %[[K]]]
// CHECK:     scf.if
// CHECK:       %[[SRC:.*]] = tensor.extract_slice %[[R]][%{{.*}}, 0] [1, 16] [1, 1]
// CHECK:       %[[WK:.*]] = tensor.extract %[[W]][%[[T]], %[[K]]]
// CHECK:       linalg.generic {{.*}} ins(%[[SRC]] : tensor<1x16xbf16>) outs(%[[ACC]] : tensor<1x16xf32>)
// CHECK:         %[[V:.*]] = arith.extf %{{.*}} : bf16 to f32
// CHECK:         %[[P:.*]] = arith.mulf %[[WK]], %[[V]]
// CHECK:         arith.addf %{{.*}}, %[[P]]
// CHECK:     else
// CHECK:       scf.yield %[[ACC]]
// CHECK:   %[[ROW:.*]] = linalg.generic {{.*}} ins(%[[SUM]] : tensor<1x16xf32>) outs(%[[DST]] : tensor<1x16xbf16>)
// CHECK:     arith.truncf {{.*}} : f32 to bf16
// CHECK:   tensor.parallel_insert_slice %[[ROW]] into %[[OUT]][%[[T]], 0] [1, 16] [1, 1]
func.func @combine_grouped(%rows: tensor<?x16xbf16>, %w: tensor<?x2xf32>, %map: tensor<?x2xi32>) -> tensor<?x16xbf16> {
  %y = moe.combine %rows, %w, %map : tensor<?x16xbf16>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x16xbf16>
  return %y : tensor<?x16xbf16>
}

// -----

// Capacity buffer: the flat slot e*C + s is split back into (e, s); an f32
// output accumulates in place.
// CHECK-LABEL: func @combine_capacity
// CHECK: %[[DST:.*]] = tensor.extract_slice %{{.*}}[%{{.*}}, 0] [1, 16] [1, 1] : tensor<?x16xf32> to tensor<1x16xf32>
// CHECK: linalg.fill {{.*}} outs(%[[DST]]
// CHECK: %[[E:.*]] = arith.divui %{{.*}}, %c3
// CHECK: %[[S:.*]] = arith.remui %{{.*}}, %c3
// CHECK: tensor.extract_slice %{{.*}}[%[[E]], %[[S]], 0] [1, 1, 16] [1, 1, 1] : tensor<4x3x16xf32> to tensor<1x16xf32>
func.func @combine_capacity(%rows: tensor<4x3x16xf32>, %w: tensor<?x2xf32>, %map: tensor<?x2xi32>) -> tensor<?x16xf32> {
  %y = moe.combine %rows, %w, %map : tensor<4x3x16xf32>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Onto an init: each token's f32 sum plus its row of `init` (a bf16 init
// widened), rounded once; an f32 result accumulates in its own row (not in
// init's), then adds the init's row in place.
// CHECK-LABEL: func @combine_init
// CHECK-SAME: (%[[R:.*]]: tensor<?x16xbf16>, %[[W:.*]]: tensor<?x2xf32>, %[[M:.*]]: tensor<?x2xi32>, %[[I:.*]]: tensor<?x16xbf16>, %[[I32:.*]]: tensor<?x16xf32>)
// CHECK: scf.forall (%[[T:.*]]) in (%{{.*}}) shared_outs(%[[OUT:.*]] = %{{.*}}) -> (tensor<?x16xbf16>)
// CHECK:   %[[DST:.*]] = tensor.extract_slice %[[OUT]][%[[T]], 0] [1, 16] [1, 1]
// CHECK:   %[[ZERO:.*]] = linalg.fill {{.*}} -> tensor<1x16xf32>
// CHECK:   %[[SUM:.*]] = scf.for {{.*}} iter_args(%{{.*}} = %[[ZERO]])
// CHECK:   %[[IROW:.*]] = tensor.extract_slice %[[I]][%[[T]], 0] [1, 16] [1, 1] : tensor<?x16xbf16> to tensor<1x16xbf16>
// CHECK:   linalg.generic {{.*}} ins(%[[SUM]], %[[IROW]] : tensor<1x16xf32>, tensor<1x16xbf16>) outs(%[[DST]] : tensor<1x16xbf16>)
// CHECK-NEXT: ^bb0(%[[S:.*]]: f32, %[[IV:.*]]: bf16, %{{.*}}: bf16):
// CHECK-NEXT:   %[[IF:.*]] = arith.extf %[[IV]] : bf16 to f32
// CHECK-NEXT:   %[[ADD:.*]] = arith.addf %[[IF]], %[[S]]
// CHECK-NEXT:   arith.truncf %[[ADD]] : f32 to bf16
// CHECK: scf.forall (%[[T2:.*]]) in (%{{.*}}) shared_outs(%[[OUT2:.*]] = %{{.*}}) -> (tensor<?x16xf32>)
// CHECK:   %[[DST2:.*]] = tensor.extract_slice %[[OUT2]][%[[T2]], 0] [1, 16] [1, 1]
// CHECK:   %[[ZERO2:.*]] = linalg.fill {{.*}} outs(%[[DST2]]
// CHECK:   %[[SUM2:.*]] = scf.for {{.*}} iter_args(%{{.*}} = %[[ZERO2]])
// CHECK:   %[[IROW2:.*]] = tensor.extract_slice %[[I32]][%[[T2]], 0] [1, 16] [1, 1]
// CHECK:   linalg.generic {{.*}} ins(%[[SUM2]], %[[IROW2]] : tensor<1x16xf32>, tensor<1x16xf32>) outs(%[[DST2]] : tensor<1x16xf32>)
// CHECK:     arith.addf
func.func @combine_init(%rows: tensor<?x16xbf16>, %w: tensor<?x2xf32>, %map: tensor<?x2xi32>,
                        %init: tensor<?x16xbf16>, %init32: tensor<?x16xf32>)
    -> (tensor<?x16xbf16>, tensor<?x16xf32>) {
  %y = moe.combine %rows, %w, %map init(%init : tensor<?x16xbf16>)
      : tensor<?x16xbf16>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x16xbf16>
  %rows32 = arith.extf %rows : tensor<?x16xbf16> to tensor<?x16xf32>
  %z = moe.combine %rows32, %w, %map init(%init32 : tensor<?x16xf32>)
      : tensor<?x16xf32>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x16xf32>
  return %y, %z : tensor<?x16xbf16>, tensor<?x16xf32>
}

// -----

// A result of dynamic H over rows of static H: the rows' slices and the
// token's row take the rows' H, and the result is cast to the op's type.
// CHECK-LABEL: func @combine_dynamic_result_h
// CHECK-SAME: %[[I:[a-z0-9]+]]: tensor<?x?xf32>
// CHECK: %[[Y:.*]] = scf.forall {{.*}} -> (tensor<?x16xf32>)
// CHECK:   tensor.extract_slice %{{.*}}[%{{.*}}, 0] [1, 16] [1, 1] : tensor<?x16xf32> to tensor<1x16xf32>
// CHECK:   tensor.extract_slice %[[I]][%{{.*}}, 0] [1, 16] [1, 1] : tensor<?x?xf32> to tensor<1x16xf32>
// CHECK: tensor.cast %[[Y]] : tensor<?x16xf32> to tensor<?x?xf32>
func.func @combine_dynamic_result_h(%rows: tensor<?x16xf32>, %w: tensor<?x2xf32>,
                                    %map: tensor<?x2xi32>, %init: tensor<?x?xf32>)
    -> tensor<?x?xf32> {
  %y = moe.combine %rows, %w, %map init(%init : tensor<?x?xf32>)
      : tensor<?x16xf32>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x?xf32>
  return %y : tensor<?x?xf32>
}

// -----

// A whole layer is decomposed and lowered in one go.
// CHECK-LABEL: func @layer
// CHECK-NOT: moe.
// CHECK: linalg.matmul
// CHECK: return
func.func @layer(%x: tensor<?x16xf32>, %wg: tensor<4x16xf32>, %w1: tensor<4x8x16xf32>,
                 %w3: tensor<4x8x16xf32>, %w2: tensor<4x16x8xf32>) -> tensor<?x16xf32> {
  %y = moe.layer %x : tensor<?x16xf32>
      routing <softmax, top_k = 2, renormalize>
      router(%wg : tensor<4x16xf32>)
      experts(gate %w1 : tensor<4x8x16xf32>, up %w3 : tensor<4x8x16xf32>,
              down %w2 : tensor<4x16x8xf32>) activation silu
      -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Unweighted routing: the scores select the experts, and every kept choice
// is combined with weight `scale` (3.0): the weights loop selects that
// constant or 0 and reads no score.
// CHECK-LABEL: func @gate_unweighted
// CHECK-DAG: %[[SCALE:.*]] = arith.constant 3.000000e+00 : f32
// CHECK-DAG: %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK: scf.forall
// CHECK: %[[W:[a-z0-9_]+]] = scf.for %{{.*}} iter_args(%{{.*}} = %{{.*}}#0)
// CHECK-NOT: arith.divf
// CHECK-NOT: arith.mulf
// CHECK: arith.select %{{.*}}, %[[SCALE]], %[[ZERO]] : f32
// CHECK: arith.select %{{.*}}, %[[SCALE]], %[[ZERO]] : f32
// CHECK: return %[[W]]
func.func @gate_unweighted(%logits: tensor<?x6xf32>) -> (tensor<?x2xf32>, tensor<?x2xi32>) {
  %w, %ids = moe.gate %logits routing <softmax, top_k = 2, scale = 3.0, unweighted>
      : tensor<?x6xf32> -> tensor<?x2xf32>, tensor<?x2xi32>
  return %w, %ids : tensor<?x2xf32>, tensor<?x2xi32>
}

// -----

// The plan of one expert that every token picks (ids a fill of zeros, the
// shared expert's dispatch) is element-wise: no counting sort, no loop
// over the tokens; a plan of other ids sorts.
// CHECK-LABEL: func @plan_every_token
// CHECK-NOT: scf.for
// CHECK-NOT: scf.forall
// CHECK-COUNT-5: linalg.generic {{.*}}iterator_types = ["parallel"{{.*}}]
// CHECK-NOT: scf.for
// CHECK: return
// CHECK-LABEL: func @plan_sorted
// CHECK: scf.for
func.func @plan_every_token(%x: tensor<?x8xf32>)
    -> (tensor<2xi64>, tensor<?xi32>, tensor<?xi32>, tensor<?xi32>, tensor<?x1xi32>) {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0 : i32
  %t = tensor.dim %x, %c0 : tensor<?x8xf32>
  %empty = tensor.empty(%t) : tensor<?x1xi32>
  %ids = linalg.fill ins(%zero : i32) outs(%empty : tensor<?x1xi32>) -> tensor<?x1xi32>
  %o, %b, %s, %r, %m = moe.routing_plan %ids block_rows(4) align(4)
      : tensor<?x1xi32> -> tensor<2xi64>, tensor<?xi32>, tensor<?xi32>,
        tensor<?xi32>, tensor<?x1xi32>
  return %o, %b, %s, %r, %m
      : tensor<2xi64>, tensor<?xi32>, tensor<?xi32>, tensor<?xi32>, tensor<?x1xi32>
}

func.func @plan_sorted(%ids: tensor<?x1xi32>)
    -> (tensor<2xi64>, tensor<?xi32>, tensor<?xi32>, tensor<?xi32>, tensor<?x1xi32>) {
  %o, %b, %s, %r, %m = moe.routing_plan %ids block_rows(4) align(4)
      : tensor<?x1xi32> -> tensor<2xi64>, tensor<?xi32>, tensor<?xi32>,
        tensor<?xi32>, tensor<?x1xi32>
  return %o, %b, %s, %r, %m
      : tensor<2xi64>, tensor<?xi32>, tensor<?xi32>, tensor<?xi32>, tensor<?x1xi32>
}
