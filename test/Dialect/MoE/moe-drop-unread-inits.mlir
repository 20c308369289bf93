// RUN: moe-opt %s --split-input-file --moe-drop-unread-inits | FileCheck %s

// The gate/up projection's zeroed hidden rows: its epilogue ignores the
// old value and the down projection reads the hidden rows in place over
// the same plan (prefixes of the same block ids and sizes), so no zero is
// ever read: the fill goes, the gate/up writes into the empty tensor.
// CHECK-LABEL: func.func @gate_up_down
// CHECK: %[[E:.*]] = tensor.empty() : tensor<128x16xbf16>
// CHECK-NOT: linalg.fill ins(%{{.*}} : bf16)
// CHECK: %[[H:.*]] = moe.grouped_matmul {{.*}} outs(%[[E]] : tensor<128x16xbf16>)
// CHECK: linalg.fill ins(%{{.*}} : f32)
// CHECK: moe.grouped_matmul block_rows(64) ins(%[[H]],
func.func @gate_up_down(%x: tensor<8x32xf32>, %wg: tensor<4x16x32xbf16>,
                        %wu: tensor<4x16x32xbf16>, %wd: tensor<4x32x16xbf16>,
                        %ids: tensor<3xi32>, %sizes: tensor<3xi32>,
                        %src: tensor<128xi32>) -> tensor<128x32xf32> {
  %zb = arith.constant 0.0 : bf16
  %zf = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<128x16xbf16>
  %z = linalg.fill ins(%zb : bf16) outs(%e : tensor<128x16xbf16>) -> tensor<128x16xbf16>
  %ids1 = tensor.extract_slice %ids[0] [2] [1] : tensor<3xi32> to tensor<2xi32>
  %sizes1 = tensor.extract_slice %sizes[0] [2] [1] : tensor<3xi32> to tensor<2xi32>
  %h = moe.grouped_matmul block_rows(64)
      ins(%x, %wg, %ids1 : tensor<8x32xf32>, tensor<4x16x32xbf16>, tensor<2xi32>)
      paired(%wu : tensor<4x16x32xbf16>) block_sizes(%sizes1 : tensor<2xi32>)
      row_sources(%src : tensor<128xi32>) outs(%z : tensor<128x16xbf16>) epilogue {
  ^bb0(%g: f32, %u: f32, %old: f32):
    %p = arith.mulf %g, %u : f32
    moe.yield %p : f32
  } -> tensor<128x16xbf16>
  %ids2 = tensor.extract_slice %ids[0] [2] [1] : tensor<3xi32> to tensor<2xi32>
  %sizes2 = tensor.extract_slice %sizes[0] [2] [1] : tensor<3xi32> to tensor<2xi32>
  %ea = tensor.empty() : tensor<128x32xf32>
  %acc = linalg.fill ins(%zf : f32) outs(%ea : tensor<128x32xf32>) -> tensor<128x32xf32>
  %y = moe.grouped_matmul block_rows(64)
      ins(%h, %wd, %ids2 : tensor<128x16xbf16>, tensor<4x32x16xbf16>, tensor<2xi32>)
      block_sizes(%sizes2 : tensor<2xi32>) outs(%acc : tensor<128x32xf32>) -> tensor<128x32xf32>
  return %y : tensor<128x32xf32>
}

// -----

// Two writers, one per branch of an scf.if (the gate/up on bf16 or on f32
// rows), both of the fill; the if's result is read by the down projection
// and by tensor.dim: the fill goes.
// CHECK-LABEL: func.func @through_if
// CHECK: %[[E:.*]] = tensor.empty() : tensor<128x16xbf16>
// CHECK-NOT: linalg.fill
// CHECK: scf.if
// CHECK: outs(%[[E]] : tensor<128x16xbf16>)
// CHECK: } else {
// CHECK: outs(%[[E]] : tensor<128x16xbf16>)
func.func @through_if(%c: i1, %x: tensor<8x32xf32>, %xb: tensor<8x32xbf16>,
                      %wg: tensor<4x16x32xbf16>, %wd: tensor<4x32x16xbf16>,
                      %ids: tensor<2xi32>, %src: tensor<128xi32>,
                      %acc: tensor<128x32xf32>)
    -> (tensor<128x32xf32>, index) {
  %zb = arith.constant 0.0 : bf16
  %c0 = arith.constant 0 : index
  %e = tensor.empty() : tensor<128x16xbf16>
  %z = linalg.fill ins(%zb : bf16) outs(%e : tensor<128x16xbf16>) -> tensor<128x16xbf16>
  %h = scf.if %c -> (tensor<128x16xbf16>) {
    %a = moe.grouped_matmul block_rows(64)
        ins(%xb, %wg, %ids : tensor<8x32xbf16>, tensor<4x16x32xbf16>, tensor<2xi32>)
        row_sources(%src : tensor<128xi32>) outs(%z : tensor<128x16xbf16>) epilogue {
    ^bb0(%s: f32, %old: f32):
      moe.yield %s : f32
    } -> tensor<128x16xbf16>
    scf.yield %a : tensor<128x16xbf16>
  } else {
    %b = moe.grouped_matmul block_rows(64)
        ins(%x, %wg, %ids : tensor<8x32xf32>, tensor<4x16x32xbf16>, tensor<2xi32>)
        row_sources(%src : tensor<128xi32>) outs(%z : tensor<128x16xbf16>) epilogue {
    ^bb0(%s: f32, %old: f32):
      moe.yield %s : f32
    } -> tensor<128x16xbf16>
    scf.yield %b : tensor<128x16xbf16>
  }
  %rows = tensor.dim %h, %c0 : tensor<128x16xbf16>
  %y = moe.grouped_matmul block_rows(64)
      ins(%h, %wd, %ids : tensor<128x16xbf16>, tensor<4x32x16xbf16>, tensor<2xi32>)
      outs(%acc : tensor<128x32xf32>) -> tensor<128x32xf32>
  return %y, %rows : tensor<128x32xf32>, index
}

// -----

// The down projection adds its sums to a zero fill and only the combine of
// the plan's row map reads its rows: it writes its sums instead (an
// epilogue yielding each sum) and the fill goes. The hidden rows' fill
// goes too (the down projection reads them over the same plan).
// CHECK-LABEL: func.func @down_combine
// CHECK-NOT: linalg.fill
// CHECK: %[[MAP:[a-z_0-9]+]] = moe.routing_plan
// CHECK: %[[E:.*]] = tensor.empty() : tensor<256x32xf32>
// CHECK: %[[Y:.*]] = moe.grouped_matmul block_rows(64) ins(%{{.*}} : tensor<256x16xbf16>, tensor<4x32x16xbf16>, tensor<4xi32>) block_sizes(%{{.*}} : tensor<4xi32>) outs(%[[E]] : tensor<256x32xf32>) epilogue {
// CHECK-NEXT: ^bb0(%[[S:.*]]: f32, %{{.*}}: f32):
// CHECK-NEXT: moe.yield %[[S]] : f32
// CHECK: moe.combine %[[Y]], %{{.*}}, %[[MAP]] :
func.func @down_combine(%x: tensor<8x32xf32>, %wg: tensor<4x16x32xbf16>,
                        %wd: tensor<4x32x16xbf16>, %ids: tensor<8x2xi32>,
                        %w: tensor<8x2xf32>) -> tensor<8x32xf32> {
  %zb = arith.constant 0.0 : bf16
  %zf = arith.constant 0.0 : f32
  %offsets, %blocks, %sizes, %sources, %map = moe.routing_plan %ids block_rows(64) align(64)
      : tensor<8x2xi32> -> tensor<5xi64>, tensor<4xi32>, tensor<4xi32>, tensor<256xi32>, tensor<8x2xi32>
  %eh = tensor.empty() : tensor<256x16xbf16>
  %zh = linalg.fill ins(%zb : bf16) outs(%eh : tensor<256x16xbf16>) -> tensor<256x16xbf16>
  %h = moe.grouped_matmul block_rows(64)
      ins(%x, %wg, %blocks : tensor<8x32xf32>, tensor<4x16x32xbf16>, tensor<4xi32>)
      block_sizes(%sizes : tensor<4xi32>) row_sources(%sources : tensor<256xi32>)
      outs(%zh : tensor<256x16xbf16>) epilogue {
  ^bb0(%s: f32, %old: f32):
    moe.yield %s : f32
  } -> tensor<256x16xbf16>
  %e = tensor.empty() : tensor<256x32xf32>
  %z = linalg.fill ins(%zf : f32) outs(%e : tensor<256x32xf32>) -> tensor<256x32xf32>
  %y = moe.grouped_matmul block_rows(64)
      ins(%h, %wd, %blocks : tensor<256x16xbf16>, tensor<4x32x16xbf16>, tensor<4xi32>)
      block_sizes(%sizes : tensor<4xi32>) outs(%z : tensor<256x32xf32>) -> tensor<256x32xf32>
  %out = moe.combine %y, %w, %map : tensor<256x32xf32>, tensor<8x2xf32>, tensor<8x2xi32> -> tensor<8x32xf32>
  return %out : tensor<8x32xf32>
}

// -----

// The same with a dynamic token count, as the pipelines build it: the
// accumulator is an alloc_tensor of the hidden rows, and the down
// projection's block count is floor(min(hidden rows, R) / 64). Value bounds
// follow the plan's sizes (R = 64 * B), the allocation's and the hidden
// rows' (those of the plan); the minimum is compared case by case.
// CHECK-LABEL: func.func @down_combine_dynamic
// CHECK-NOT: linalg.fill
// CHECK: %[[MAP:[a-z_0-9]+]] = moe.routing_plan
// CHECK: %[[A:.*]] = bufferization.alloc_tensor(%{{.*}}) : tensor<?x32xf32>
// CHECK: %[[Y:.*]] = moe.grouped_matmul {{.*}} outs(%[[A]] : tensor<?x32xf32>) epilogue {
// CHECK: moe.combine %[[Y]], %{{.*}}, %[[MAP]] :
#count = affine_map<(d0) -> (d0 floordiv 64)>
#least = affine_map<(d0, d1) -> (d0, d1)>
func.func @down_combine_dynamic(%x: tensor<?x32xf32>, %wg: tensor<4x16x32xbf16>,
                                %wd: tensor<4x32x16xbf16>, %ids: tensor<?x2xi32>,
                                %w: tensor<?x2xf32>) -> tensor<?x32xf32> {
  %c0 = arith.constant 0 : index
  %zb = arith.constant 0.0 : bf16
  %zf = arith.constant 0.0 : f32
  %offsets, %blocks, %sizes, %sources, %map = moe.routing_plan %ids block_rows(64) align(64)
      : tensor<?x2xi32> -> tensor<5xi64>, tensor<?xi32>, tensor<?xi32>, tensor<?xi32>, tensor<?x2xi32>
  %r = tensor.dim %sources, %c0 : tensor<?xi32>
  %b = affine.apply #count(%r)
  %blocks1 = tensor.extract_slice %blocks[0] [%b] [1] : tensor<?xi32> to tensor<?xi32>
  %sizes1 = tensor.extract_slice %sizes[0] [%b] [1] : tensor<?xi32> to tensor<?xi32>
  %eh = tensor.empty(%r) : tensor<?x16xbf16>
  %zh = linalg.fill ins(%zb : bf16) outs(%eh : tensor<?x16xbf16>) -> tensor<?x16xbf16>
  %h = moe.grouped_matmul block_rows(64)
      ins(%x, %wg, %blocks1 : tensor<?x32xf32>, tensor<4x16x32xbf16>, tensor<?xi32>)
      block_sizes(%sizes1 : tensor<?xi32>) row_sources(%sources : tensor<?xi32>)
      outs(%zh : tensor<?x16xbf16>) epilogue {
  ^bb0(%s: f32, %old: f32):
    moe.yield %s : f32
  } -> tensor<?x16xbf16>
  %hr = tensor.dim %h, %c0 : tensor<?x16xbf16>
  %rows = affine.min #least(%hr, %r)
  %b2 = affine.apply #count(%rows)
  %blocks2 = tensor.extract_slice %blocks[0] [%b2] [1] : tensor<?xi32> to tensor<?xi32>
  %sizes2 = tensor.extract_slice %sizes[0] [%b2] [1] : tensor<?xi32> to tensor<?xi32>
  %a = bufferization.alloc_tensor(%hr) : tensor<?x32xf32>
  %z = linalg.fill ins(%zf : f32) outs(%a : tensor<?x32xf32>) -> tensor<?x32xf32>
  %y = moe.grouped_matmul block_rows(64)
      ins(%h, %wd, %blocks2 : tensor<?x16xbf16>, tensor<4x32x16xbf16>, tensor<?xi32>)
      block_sizes(%sizes2 : tensor<?xi32>) outs(%z : tensor<?x32xf32>) -> tensor<?x32xf32>
  %out = moe.combine %y, %w, %map : tensor<?x32xf32>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x32xf32>
  return %out : tensor<?x32xf32>
}

// -----

// Hidden rows from elsewhere (an argument of unknown rows): the down
// projection's floor(min(rows, R) / 64) blocks may be fewer than the
// plan's, whose row map the combine reads; the fill stays.
// CHECK-LABEL: func.func @down_combine_short_rows
// CHECK: linalg.fill
// CHECK: moe.grouped_matmul block_rows(64) ins(%{{.*}}) block_sizes(%{{.*}}) outs(%{{.*}}) -> tensor<?x32xf32>
#count = affine_map<(d0) -> (d0 floordiv 64)>
#least = affine_map<(d0, d1) -> (d0, d1)>
func.func @down_combine_short_rows(%h: tensor<?x16xbf16>, %wd: tensor<4x32x16xbf16>,
                                   %ids: tensor<?x2xi32>,
                                   %w: tensor<?x2xf32>) -> tensor<?x32xf32> {
  %c0 = arith.constant 0 : index
  %zf = arith.constant 0.0 : f32
  %offsets, %blocks, %sizes, %sources, %map = moe.routing_plan %ids block_rows(64) align(64)
      : tensor<?x2xi32> -> tensor<5xi64>, tensor<?xi32>, tensor<?xi32>, tensor<?xi32>, tensor<?x2xi32>
  %r = tensor.dim %sources, %c0 : tensor<?xi32>
  %hr = tensor.dim %h, %c0 : tensor<?x16xbf16>
  %rows = affine.min #least(%hr, %r)
  %b2 = affine.apply #count(%rows)
  %blocks2 = tensor.extract_slice %blocks[0] [%b2] [1] : tensor<?xi32> to tensor<?xi32>
  %sizes2 = tensor.extract_slice %sizes[0] [%b2] [1] : tensor<?xi32> to tensor<?xi32>
  %a = bufferization.alloc_tensor(%hr) : tensor<?x32xf32>
  %z = linalg.fill ins(%zf : f32) outs(%a : tensor<?x32xf32>) -> tensor<?x32xf32>
  %y = moe.grouped_matmul block_rows(64)
      ins(%h, %wd, %blocks2 : tensor<?x16xbf16>, tensor<4x32x16xbf16>, tensor<?xi32>)
      block_sizes(%sizes2 : tensor<?xi32>) outs(%z : tensor<?x32xf32>) -> tensor<?x32xf32>
  %out = moe.combine %y, %w, %map : tensor<?x32xf32>, tensor<?x2xf32>, tensor<?x2xi32> -> tensor<?x32xf32>
  return %out : tensor<?x32xf32>
}

// -----

// A shared expert's down projection: one expert, one choice per token,
// every token routed to it (ids a fill of 0), so token t's sum is row t;
// the routed combine adds to its first T rows (`init`), which it computes.
// It writes its sums instead, and the fill goes. With ids of 1 (outside
// the one expert: no row filled), or rows sliced from an offset, the fill
// stays.
// CHECK-LABEL: func.func @shared_expert
// CHECK: %[[E:.*]] = tensor.empty() : tensor<64x32xf32>
// CHECK-NOT: linalg.fill ins(%{{.*}} : f32)
// CHECK: %[[S:.*]] = moe.grouped_matmul {{.*}} outs(%[[E]] : tensor<64x32xf32>) epilogue {
// CHECK: %[[FIRST:.*]] = tensor.extract_slice %[[S]][0, 0] [8, 32] [1, 1]
// CHECK: moe.combine {{.*}} init(%[[FIRST]] : tensor<8x32xf32>)
// CHECK-LABEL: func.func @shared_expert_kept
// CHECK-COUNT-2: linalg.fill ins(%{{.*}} : f32)
func.func @shared_expert(%h: tensor<64x16xbf16>, %wd: tensor<1x32x16xbf16>,
                         %routed: tensor<256x32xf32>, %w: tensor<8x2xf32>,
                         %map: tensor<8x2xi32>) -> tensor<8x32xf32> {
  %c0 = arith.constant 0 : i32
  %zf = arith.constant 0.0 : f32
  %ei = tensor.empty() : tensor<8x1xi32>
  %ids = linalg.fill ins(%c0 : i32) outs(%ei : tensor<8x1xi32>) -> tensor<8x1xi32>
  %offsets, %blocks, %sizes, %sources, %rows = moe.routing_plan %ids block_rows(64) align(64)
      : tensor<8x1xi32> -> tensor<2xi64>, tensor<1xi32>, tensor<1xi32>, tensor<64xi32>, tensor<8x1xi32>
  %e = tensor.empty() : tensor<64x32xf32>
  %z = linalg.fill ins(%zf : f32) outs(%e : tensor<64x32xf32>) -> tensor<64x32xf32>
  %s = moe.grouped_matmul block_rows(64)
      ins(%h, %wd, %blocks : tensor<64x16xbf16>, tensor<1x32x16xbf16>, tensor<1xi32>)
      block_sizes(%sizes : tensor<1xi32>) outs(%z : tensor<64x32xf32>) -> tensor<64x32xf32>
  %first = tensor.extract_slice %s[0, 0] [8, 32] [1, 1] : tensor<64x32xf32> to tensor<8x32xf32>
  %out = moe.combine %routed, %w, %map init(%first : tensor<8x32xf32>)
      : tensor<256x32xf32>, tensor<8x2xf32>, tensor<8x2xi32> -> tensor<8x32xf32>
  return %out : tensor<8x32xf32>
}

func.func @shared_expert_kept(%h: tensor<64x16xbf16>, %wd: tensor<1x32x16xbf16>,
                              %routed: tensor<256x32xf32>, %w: tensor<8x2xf32>,
                              %map: tensor<8x2xi32>) -> (tensor<8x32xf32>, tensor<8x32xf32>) {
  %c0 = arith.constant 0 : i32
  %c1 = arith.constant 1 : i32
  %zf = arith.constant 0.0 : f32
  %ei = tensor.empty() : tensor<8x1xi32>
  %ones = linalg.fill ins(%c1 : i32) outs(%ei : tensor<8x1xi32>) -> tensor<8x1xi32>
  %o1, %b1, %s1, %r1, %m1 = moe.routing_plan %ones block_rows(64) align(64)
      : tensor<8x1xi32> -> tensor<2xi64>, tensor<1xi32>, tensor<1xi32>, tensor<64xi32>, tensor<8x1xi32>
  %e1 = tensor.empty() : tensor<64x32xf32>
  %z1 = linalg.fill ins(%zf : f32) outs(%e1 : tensor<64x32xf32>) -> tensor<64x32xf32>
  %y1 = moe.grouped_matmul block_rows(64)
      ins(%h, %wd, %b1 : tensor<64x16xbf16>, tensor<1x32x16xbf16>, tensor<1xi32>)
      block_sizes(%s1 : tensor<1xi32>) outs(%z1 : tensor<64x32xf32>) -> tensor<64x32xf32>
  %first1 = tensor.extract_slice %y1[0, 0] [8, 32] [1, 1] : tensor<64x32xf32> to tensor<8x32xf32>
  %out1 = moe.combine %routed, %w, %map init(%first1 : tensor<8x32xf32>)
      : tensor<256x32xf32>, tensor<8x2xf32>, tensor<8x2xi32> -> tensor<8x32xf32>
  %zeros = linalg.fill ins(%c0 : i32) outs(%ei : tensor<8x1xi32>) -> tensor<8x1xi32>
  %o2, %b2, %s2, %r2, %m2 = moe.routing_plan %zeros block_rows(64) align(64)
      : tensor<8x1xi32> -> tensor<2xi64>, tensor<1xi32>, tensor<1xi32>, tensor<64xi32>, tensor<8x1xi32>
  %e2 = tensor.empty() : tensor<64x32xf32>
  %z2 = linalg.fill ins(%zf : f32) outs(%e2 : tensor<64x32xf32>) -> tensor<64x32xf32>
  %y2 = moe.grouped_matmul block_rows(64)
      ins(%h, %wd, %b2 : tensor<64x16xbf16>, tensor<1x32x16xbf16>, tensor<1xi32>)
      block_sizes(%s2 : tensor<1xi32>) outs(%z2 : tensor<64x32xf32>) -> tensor<64x32xf32>
  %later = tensor.extract_slice %y2[8, 0] [8, 32] [1, 1] : tensor<64x32xf32> to tensor<8x32xf32>
  %out2 = moe.combine %routed, %w, %map init(%later : tensor<8x32xf32>)
      : tensor<256x32xf32>, tensor<8x2xf32>, tensor<8x2xi32> -> tensor<8x32xf32>
  return %out1, %out2 : tensor<8x32xf32>, tensor<8x32xf32>
}

// -----

// Fills that stay. An epilogue that reads the old value; a writer that
// adds to `init` (no epilogue) whose rows a slice also reads; a reader that
// gathers its rows (row_sources); a reader over other block sizes; a
// reader of another kind (the result returned); a writer that adds to a
// fill of 1 read by a combine; a combine of another plan's row map.
// CHECK-LABEL: func.func @kept
// CHECK-COUNT-7: linalg.fill
// CHECK-NOT: linalg.fill
func.func @kept(%x: tensor<8x32xf32>, %wg: tensor<4x16x32xbf16>,
                %wd: tensor<4x32x16xbf16>, %ids: tensor<2xi32>,
                %sizes: tensor<2xi32>, %other: tensor<2xi32>,
                %src: tensor<128xi32>, %acc: tensor<128x32xf32>,
                %out: tensor<128x32xf32>, %h256: tensor<256x16xf32>)
    -> (tensor<128x32xf32>, tensor<128x32xf32>, tensor<128x32xf32>,
        tensor<128x32xf32>, tensor<128x16xf32>, tensor<8x32xf32>,
        tensor<8x32xf32>) {
  %zf = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<128x16xf32>
  %z1 = linalg.fill ins(%zf : f32) outs(%e : tensor<128x16xf32>) -> tensor<128x16xf32>
  %reads_old = moe.grouped_matmul block_rows(64)
      ins(%x, %wg, %ids : tensor<8x32xf32>, tensor<4x16x32xbf16>, tensor<2xi32>)
      row_sources(%src : tensor<128xi32>) outs(%z1 : tensor<128x16xf32>) epilogue {
  ^bb0(%s: f32, %old: f32):
    %r = arith.addf %s, %old : f32
    moe.yield %r : f32
  } -> tensor<128x16xf32>
  %y1 = moe.grouped_matmul block_rows(64)
      ins(%reads_old, %wd, %ids : tensor<128x16xf32>, tensor<4x32x16xbf16>, tensor<2xi32>)
      outs(%acc : tensor<128x32xf32>) -> tensor<128x32xf32>
  %z2 = linalg.fill ins(%zf : f32) outs(%e : tensor<128x16xf32>) -> tensor<128x16xf32>
  %adds = moe.grouped_matmul block_rows(64)
      ins(%x, %wg, %ids : tensor<8x32xf32>, tensor<4x16x32xbf16>, tensor<2xi32>)
      row_sources(%src : tensor<128xi32>) outs(%z2 : tensor<128x16xf32>) -> tensor<128x16xf32>
  %y2 = moe.grouped_matmul block_rows(64)
      ins(%adds, %wd, %ids : tensor<128x16xf32>, tensor<4x32x16xbf16>, tensor<2xi32>)
      outs(%acc : tensor<128x32xf32>) -> tensor<128x32xf32>
  %sliced = tensor.extract_slice %adds[0, 0] [8, 16] [1, 1] : tensor<128x16xf32> to tensor<8x16xf32>
  %z3 = linalg.fill ins(%zf : f32) outs(%e : tensor<128x16xf32>) -> tensor<128x16xf32>
  %h3 = moe.grouped_matmul block_rows(64)
      ins(%x, %wg, %ids : tensor<8x32xf32>, tensor<4x16x32xbf16>, tensor<2xi32>)
      row_sources(%src : tensor<128xi32>) outs(%z3 : tensor<128x16xf32>) epilogue {
  ^bb0(%s: f32, %old: f32):
    moe.yield %s : f32
  } -> tensor<128x16xf32>
  %y3 = moe.grouped_matmul block_rows(64)
      ins(%h3, %wd, %ids : tensor<128x16xf32>, tensor<4x32x16xbf16>, tensor<2xi32>)
      row_sources(%src : tensor<128xi32>) outs(%acc : tensor<128x32xf32>) -> tensor<128x32xf32>
  %z4 = linalg.fill ins(%zf : f32) outs(%e : tensor<128x16xf32>) -> tensor<128x16xf32>
  %h4 = moe.grouped_matmul block_rows(64)
      ins(%x, %wg, %ids : tensor<8x32xf32>, tensor<4x16x32xbf16>, tensor<2xi32>)
      block_sizes(%sizes : tensor<2xi32>)
      row_sources(%src : tensor<128xi32>) outs(%z4 : tensor<128x16xf32>) epilogue {
  ^bb0(%s: f32, %old: f32):
    moe.yield %s : f32
  } -> tensor<128x16xf32>
  %y4 = moe.grouped_matmul block_rows(64)
      ins(%h4, %wd, %ids : tensor<128x16xf32>, tensor<4x32x16xbf16>, tensor<2xi32>)
      block_sizes(%other : tensor<2xi32>) outs(%acc : tensor<128x32xf32>) -> tensor<128x32xf32>
  %z5 = linalg.fill ins(%zf : f32) outs(%e : tensor<128x16xf32>) -> tensor<128x16xf32>
  %h5 = moe.grouped_matmul block_rows(64)
      ins(%x, %wg, %ids : tensor<8x32xf32>, tensor<4x16x32xbf16>, tensor<2xi32>)
      row_sources(%src : tensor<128xi32>) outs(%z5 : tensor<128x16xf32>) epilogue {
  ^bb0(%s: f32, %old: f32):
    moe.yield %s : f32
  } -> tensor<128x16xf32>
  %one = arith.constant 1.0 : f32
  %ids8 = arith.constant dense<0> : tensor<8x2xi32>
  %wts = arith.constant dense<1.0> : tensor<8x2xf32>
  %o1, %b1, %s1, %r1, %m1 = moe.routing_plan %ids8 block_rows(64) align(64)
      : tensor<8x2xi32> -> tensor<5xi64>, tensor<4xi32>, tensor<4xi32>, tensor<256xi32>, tensor<8x2xi32>
  %o2, %b2, %s2, %r2, %m2 = moe.routing_plan %ids8 block_rows(64) align(64)
      : tensor<8x2xi32> -> tensor<5xi64>, tensor<4xi32>, tensor<4xi32>, tensor<256xi32>, tensor<8x2xi32>
  %ea = tensor.empty() : tensor<256x32xf32>
  %z6 = linalg.fill ins(%one : f32) outs(%ea : tensor<256x32xf32>) -> tensor<256x32xf32>
  %y6 = moe.grouped_matmul block_rows(64)
      ins(%h256, %wd, %b1 : tensor<256x16xf32>, tensor<4x32x16xbf16>, tensor<4xi32>)
      block_sizes(%s1 : tensor<4xi32>) outs(%z6 : tensor<256x32xf32>) -> tensor<256x32xf32>
  %c6 = moe.combine %y6, %wts, %m1 : tensor<256x32xf32>, tensor<8x2xf32>, tensor<8x2xi32> -> tensor<8x32xf32>
  %z7 = linalg.fill ins(%zf : f32) outs(%ea : tensor<256x32xf32>) -> tensor<256x32xf32>
  %y7 = moe.grouped_matmul block_rows(64)
      ins(%h256, %wd, %b1 : tensor<256x16xf32>, tensor<4x32x16xbf16>, tensor<4xi32>)
      block_sizes(%s1 : tensor<4xi32>) outs(%z7 : tensor<256x32xf32>) -> tensor<256x32xf32>
  %c7 = moe.combine %y7, %wts, %m2 : tensor<256x32xf32>, tensor<8x2xf32>, tensor<8x2xi32> -> tensor<8x32xf32>
  return %y1, %y2, %y3, %y4, %h5, %c6, %c7 : tensor<128x32xf32>, tensor<128x32xf32>,
      tensor<128x32xf32>, tensor<128x32xf32>, tensor<128x16xf32>,
      tensor<8x32xf32>, tensor<8x32xf32>
}
