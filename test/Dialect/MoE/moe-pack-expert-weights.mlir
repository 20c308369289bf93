// RUN: moe-opt %s --split-input-file --moe-pack-expert-weights="panel-cols=16" | FileCheck %s
// RUN: moe-opt %s --split-input-file --moe-export-entries --moe-pack-expert-weights="panel-cols=16" | FileCheck %s --check-prefix=AFTER
// RUN: moe-opt %s --split-input-file --moe-pack-expert-weights="panel-cols=16" --moe-export-entries | FileCheck %s --check-prefix=BEFORE
// RUN: moe-opt %s --split-input-file --moe-pack-expert-weights="panel-cols=16 bf16-pairs=1" | FileCheck %s --check-prefix=PAIRS
// RUN: not moe-opt %s --moe-pack-expert-weights="panel-cols=0" 2>&1 | FileCheck %s --check-prefix=BAD

// BAD: moe-pack-expert-weights: panel-cols must be at least 1, got 0

// A weight read only by a grouped matmul becomes [E, ceil(N / P), K, P]
// (N = 37 columns: 3 panels of 16, the last zero-padded), packed by a new
// public function from the checkpoint layout into the caller's buffer.
// CHECK-LABEL: func.func @forward(
// CHECK-SAME: %[[X:.*]]: tensor<8x16xf32>,
// CHECK-SAME: %[[W:.*]]: tensor<2x3x16x16xbf16> {moe.packing = {function = @forward__pack1, shape = array<i64: 2, 37, 16>}, moe.weight = "experts.{e}.w1"}
// CHECK: moe.grouped_matmul block_rows(4) ins(%[[X]], %[[W]], %{{.*}} : tensor<8x16xf32>, tensor<2x3x16x16xbf16>, tensor<2xi32>)
// CHECK-LABEL: func.func @forward__pack1(
// CHECK-SAME: %[[SRC:.*]]: tensor<2x37x16xbf16> {bufferization.writable = false}, %[[DST:.*]]: memref<2x3x16x16xbf16>) attributes {llvm.emit_c_interface}
// CHECK: %[[ZERO:.*]] = arith.constant 0.000000e+00 : bf16
// CHECK: %[[INIT:.*]] = bufferization.to_tensor %[[DST]] restrict writable
// CHECK: %[[PACKED:.*]] = linalg.pack %[[SRC]] padding_value(%[[ZERO]] : bf16) inner_dims_pos = [1] inner_tiles = [16] into %[[INIT]] : tensor<2x37x16xbf16> -> tensor<2x3x16x16xbf16>
// CHECK: bufferization.materialize_in_destination %[[PACKED]] in restrict writable %[[DST]]
// CHECK: return

// With bf16-pairs, the bf16 weight is packed in pairs of K as well,
// [E, ceil(N / P), ceil(K / 2), P, 2], and the matmul's f32 rows are
// rounded to bf16 once before it.
// PAIRS-LABEL: func.func @forward(
// PAIRS-SAME: %[[X:.*]]: tensor<8x16xf32>,
// PAIRS-SAME: %[[W:.*]]: tensor<2x3x8x16x2xbf16> {moe.packing = {function = @forward__pack1, shape = array<i64: 2, 37, 16>}
// PAIRS: %[[ROWS:.*]] = arith.truncf %[[X]] : tensor<8x16xf32> to tensor<8x16xbf16>
// PAIRS: moe.grouped_matmul block_rows(4) ins(%[[ROWS]], %[[W]], %{{.*}} : tensor<8x16xbf16>, tensor<2x3x8x16x2xbf16>, tensor<2xi32>)
// PAIRS-LABEL: func.func @forward__pack1(
// PAIRS: linalg.pack %{{.*}} padding_value(%{{.*}} : bf16) inner_dims_pos = [1, 2] inner_tiles = [16, 2] into %{{.*}} : tensor<2x37x16xbf16> -> tensor<2x3x8x16x2xbf16>

// With the manifest written first, the pass amends it: the packed shape
// and the packing function with the checkpoint shape it reads.
// AFTER-LABEL: func.func @forward(
// AFTER-SAME: tensor<2x3x16x16xbf16>
// AFTER-NOT: moe.packing
// AFTER: moe_module_manifest
// AFTER-SAME: \22name\22:\22experts.{e}.w1\22,\22packing\22:{\22shape\22:[2,37,16],\22symbol\22:\22_mlir_ciface_forward__pack1\22},\22shape\22:[2,3,16,16]
// AFTER-NOT: forward__pack1\22,\22results

// Written afterwards, the manifest records the same, and the packing
// function is no entry point.
// BEFORE: moe_module_manifest
// BEFORE-SAME: \22packing\22:{\22shape\22:[2,37,16],\22symbol\22:\22_mlir_ciface_forward__pack1\22},\22shape\22:[2,3,16,16]
// BEFORE-NOT: \22name\22:\22forward__pack1\22
func.func @forward(%x: tensor<8x16xf32>,
                   %w: tensor<2x37x16xbf16> {moe.weight = "experts.{e}.w1"},
                   %b: tensor<2xi32> {moe.weight = "blocks"}) -> tensor<8x37xf32> {
  %zero = arith.constant 0.0 : f32
  %empty = tensor.empty() : tensor<8x37xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%empty : tensor<8x37xf32>) -> tensor<8x37xf32>
  %r = moe.grouped_matmul block_rows(4)
      ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x37x16xbf16>, tensor<2xi32>)
      outs(%acc : tensor<8x37xf32>) -> tensor<8x37xf32>
  return %r : tensor<8x37xf32>
}

// -----

// Left alone: a weight with another use, and an argument that is no
// weight.
// CHECK-LABEL: func.func @other_uses(
// CHECK-SAME: tensor<2x8x16xf32> {moe.weight = "w.{e}"}, %{{.*}}: tensor<2x8x16xf32>
// CHECK-NOT: moe.packing
// CHECK-NOT: func.func @other_uses__pack
func.func @other_uses(%x: tensor<8x16xf32>,
                      %w: tensor<2x8x16xf32> {moe.weight = "w.{e}"},
                      %v: tensor<2x8x16xf32>, %b: tensor<2xi32>,
                      %acc: tensor<8x8xf32>) -> (tensor<8x8xf32>, tensor<8x8xf32>, tensor<2x8x16xf32>) {
  %r = moe.grouped_matmul block_rows(4)
      ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x8x16xf32>, tensor<2xi32>)
      outs(%acc : tensor<8x8xf32>) -> tensor<8x8xf32>
  %s = moe.grouped_matmul block_rows(4)
      ins(%x, %v, %b : tensor<8x16xf32>, tensor<2x8x16xf32>, tensor<2xi32>)
      outs(%acc : tensor<8x8xf32>) -> tensor<8x8xf32>
  return %r, %s, %w : tensor<8x8xf32>, tensor<8x8xf32>, tensor<2x8x16xf32>
}

// -----

// A paired weight is packed with its partner (both weights of a grouped
// matmul have one type): w1 and w3 are. Where the partner cannot be packed
// (w5 is also read by a linalg op), neither weight of that matmul is.
// w1 and w3 are packed alike: one packing function serves both (the
// runtime shares a packed buffer only between arguments that also bind
// the same tensor).
// CHECK-LABEL: func.func @paired(
// CHECK-SAME: tensor<2x3x16x16xf32> {moe.packing = {function = @paired__pack1, shape = array<i64: 2, 37, 16>}, moe.weight = "experts.{e}.w1"}
// CHECK-SAME: tensor<2x3x16x16xf32> {moe.packing = {function = @paired__pack1, shape = array<i64: 2, 37, 16>}, moe.weight = "experts.{e}.w3"}
// CHECK-SAME: %{{.*}}: tensor<2x37x16xf32> {moe.weight = "experts.{e}.w4"}
// CHECK-SAME: %{{.*}}: tensor<2x37x16xf32> {moe.weight = "experts.{e}.w5"}
// CHECK: moe.grouped_matmul {{.*}} tensor<2x3x16x16xf32>, tensor<2xi32>) paired(%{{.*}} : tensor<2x3x16x16xf32>)
// CHECK: moe.grouped_matmul {{.*}} tensor<2x37x16xf32>, tensor<2xi32>) paired(%{{.*}} : tensor<2x37x16xf32>)
// CHECK-LABEL: func.func @paired__pack1(
// CHECK-NOT: func.func @paired__pack
func.func @paired(%x: tensor<8x16xf32>,
                  %w1: tensor<2x37x16xf32> {moe.weight = "experts.{e}.w1"},
                  %w3: tensor<2x37x16xf32> {moe.weight = "experts.{e}.w3"},
                  %w4: tensor<2x37x16xf32> {moe.weight = "experts.{e}.w4"},
                  %w5: tensor<2x37x16xf32> {moe.weight = "experts.{e}.w5"},
                  %b: tensor<2xi32>, %acc: tensor<8x37xf32>)
    -> (tensor<8x37xf32>, tensor<8x37xf32>, tensor<2x37x16xf32>) {
  %r = moe.grouped_matmul block_rows(4)
      ins(%x, %w1, %b : tensor<8x16xf32>, tensor<2x37x16xf32>, tensor<2xi32>)
      paired(%w3 : tensor<2x37x16xf32>)
      outs(%acc : tensor<8x37xf32>) epilogue {
  ^bb0(%g: f32, %u: f32, %o: f32):
    %y = arith.mulf %g, %u : f32
    moe.yield %y : f32
  } -> tensor<8x37xf32>
  %s = moe.grouped_matmul block_rows(4)
      ins(%x, %w4, %b : tensor<8x16xf32>, tensor<2x37x16xf32>, tensor<2xi32>)
      paired(%w5 : tensor<2x37x16xf32>)
      outs(%acc : tensor<8x37xf32>) epilogue {
  ^bb0(%g: f32, %u: f32, %o: f32):
    %y = arith.mulf %g, %u : f32
    moe.yield %y : f32
  } -> tensor<8x37xf32>
  %e = tensor.empty() : tensor<2x37x16xf32>
  %c = linalg.copy ins(%w5 : tensor<2x37x16xf32>) outs(%e : tensor<2x37x16xf32>) -> tensor<2x37x16xf32>
  return %r, %s, %c : tensor<8x37xf32>, tensor<8x37xf32>, tensor<2x37x16xf32>
}

// -----

// Pairs of an odd K (15 = 7 pairs and a padded one), the rows already bf16:
// no rounding; f32 weights stay in panels of K.
// PAIRS-LABEL: func.func @odd_depth(
// PAIRS-SAME: tensor<2x1x8x16x2xbf16>
// PAIRS-SAME: tensor<2x1x15x16xf32>
// PAIRS-NOT: arith.truncf
// PAIRS: moe.grouped_matmul block_rows(4) ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<8x15xbf16>, tensor<2x1x8x16x2xbf16>, tensor<2xi32>)
// PAIRS: moe.grouped_matmul block_rows(4) ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<8x15xf32>, tensor<2x1x15x16xf32>, tensor<2xi32>)
// PAIRS-LABEL: func.func @odd_depth__pack1(
// PAIRS: inner_dims_pos = [1, 2] inner_tiles = [16, 2] into %{{.*}} : tensor<2x9x15xbf16> -> tensor<2x1x8x16x2xbf16>
// PAIRS-LABEL: func.func @odd_depth__pack2(
// PAIRS: inner_dims_pos = [1] inner_tiles = [16] into %{{.*}} : tensor<2x9x15xf32> -> tensor<2x1x15x16xf32>
func.func @odd_depth(%x: tensor<8x15xbf16>,
                     %w: tensor<2x9x15xbf16> {moe.weight = "w.{e}"},
                     %v: tensor<2x9x15xf32> {moe.weight = "v.{e}"},
                     %xf: tensor<8x15xf32>, %b: tensor<2xi32>,
                     %acc: tensor<8x9xf32>) -> (tensor<8x9xf32>, tensor<8x9xf32>) {
  %r = moe.grouped_matmul block_rows(4)
      ins(%x, %w, %b : tensor<8x15xbf16>, tensor<2x9x15xbf16>, tensor<2xi32>)
      outs(%acc : tensor<8x9xf32>) -> tensor<8x9xf32>
  %s = moe.grouped_matmul block_rows(4)
      ins(%xf, %v, %b : tensor<8x15xf32>, tensor<2x9x15xf32>, tensor<2xi32>)
      outs(%acc : tensor<8x9xf32>) -> tensor<8x9xf32>
  return %r, %s : tensor<8x9xf32>, tensor<8x9xf32>
}

// -----

// Exact products (a router on the experts' path): bf16 weights in panels
// of K, not in pairs, and the f32 rows not rounded (the pairs' kernels
// would round them; the f32 kernel widens the weights).
// PAIRS-LABEL: func.func @exact(
// PAIRS-SAME: tensor<1x2x16x16xbf16>
// PAIRS-NOT: arith.truncf
// PAIRS: moe.grouped_matmul block_rows(4) ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<8x16xf32>, tensor<1x2x16x16xbf16>, tensor<2xi32>) exact_products
// PAIRS-LABEL: func.func @exact__pack1(
// PAIRS: inner_dims_pos = [1] inner_tiles = [16] into %{{.*}} : tensor<1x32x16xbf16> -> tensor<1x2x16x16xbf16>
func.func @exact(%x: tensor<8x16xf32>,
                 %w: tensor<1x32x16xbf16> {moe.weight = "router.{e}"},
                 %b: tensor<2xi32>, %acc: tensor<8x32xf32>) -> tensor<8x32xf32> {
  %r = moe.grouped_matmul block_rows(4)
      ins(%x, %w, %b : tensor<8x16xf32>, tensor<1x32x16xbf16>, tensor<2xi32>)
      exact_products
      outs(%acc : tensor<8x32xf32>) -> tensor<8x32xf32>
  return %r : tensor<8x32xf32>
}

// -----

// Block-scaled FP8 weights: panels of gcd(16, BN) columns (BN = 12: 4);
// the scale stays as bound. With bf16-pairs, in pairs of K (BK even), the
// input rounded to bf16 like a bf16 weight's; with an odd BK, single K.
// CHECK-LABEL: func.func @block_scaled(
// CHECK-SAME: %{{.*}}: tensor<2x5x16x4xf8E4M3FN> {moe.packing = {function = @block_scaled__pack1, shape = array<i64: 2, 20, 16>}
// CHECK-SAME: %{{.*}}: tensor<2x2x2xf32> {moe.weight = "s.{e}"}
// CHECK: moe.grouped_matmul block_rows(4) ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<8x16xf32>, tensor<2x5x16x4xf8E4M3FN>, tensor<2xi32>) scale(%{{.*}} : tensor<2x2x2xf32>) block [12, 8]
// CHECK-LABEL: func.func @block_scaled__pack1(
// CHECK: linalg.pack %{{.*}} padding_value(%{{.*}} : f8E4M3FN) inner_dims_pos = [1] inner_tiles = [4] into %{{.*}} : tensor<2x20x16xf8E4M3FN> -> tensor<2x5x16x4xf8E4M3FN>
// PAIRS-LABEL: func.func @block_scaled(
// PAIRS-SAME: tensor<2x5x8x4x2xf8E4M3FN> {moe.packing = {function = @block_scaled__pack1, shape = array<i64: 2, 20, 16>}
// PAIRS: %[[X:.*]] = arith.truncf %{{.*}} : tensor<8x16xf32> to tensor<8x16xbf16>
// PAIRS: moe.grouped_matmul block_rows(4) ins(%[[X]], %{{.*}}, %{{.*}} : tensor<8x16xbf16>, tensor<2x5x8x4x2xf8E4M3FN>, tensor<2xi32>) scale(%{{.*}} : tensor<2x2x2xf32>) block [12, 8]
// PAIRS-LABEL: func.func @block_scaled__pack1(
// PAIRS: linalg.pack %{{.*}} padding_value(%{{.*}} : f8E4M3FN) inner_dims_pos = [1, 2] inner_tiles = [4, 2] into %{{.*}} : tensor<2x20x16xf8E4M3FN> -> tensor<2x5x8x4x2xf8E4M3FN>
func.func @block_scaled(%x: tensor<8x16xf32>,
                        %w: tensor<2x20x16xf8E4M3FN> {moe.weight = "w.{e}"},
                        %s: tensor<2x2x2xf32> {moe.weight = "s.{e}"},
                        %b: tensor<2xi32>, %acc: tensor<8x20xf32>) -> tensor<8x20xf32> {
  %r = moe.grouped_matmul block_rows(4)
      ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x20x16xf8E4M3FN>, tensor<2xi32>)
      scale(%s : tensor<2x2x2xf32>) block [12, 8]
      outs(%acc : tensor<8x20xf32>) -> tensor<8x20xf32>
  return %r : tensor<8x20xf32>
}

// -----

// PAIRS-LABEL: func.func @block_scaled_odd_depth(
// PAIRS-SAME: tensor<2x5x16x4xf8E4M3FN>
func.func @block_scaled_odd_depth(%x: tensor<8x16xf32>,
                        %w: tensor<2x20x16xf8E4M3FN> {moe.weight = "w.{e}"},
                        %s: tensor<2x2x4xf32> {moe.weight = "s.{e}"},
                        %b: tensor<2xi32>, %acc: tensor<8x20xf32>) -> tensor<8x20xf32> {
  %r = moe.grouped_matmul block_rows(4)
      ins(%x, %w, %b : tensor<8x16xf32>, tensor<2x20x16xf8E4M3FN>, tensor<2xi32>)
      scale(%s : tensor<2x2x4xf32>) block [12, 5]
      outs(%acc : tensor<8x20xf32>) -> tensor<8x20xf32>
  return %r : tensor<8x20xf32>
}

// -----

// One expert's [N, K] weights expanded to [1, N, K] (an FP8 shared expert
// from moe-decompose): packed from the [N, K] checkpoint tensor, the
// expansion dropped; its scale keeps its own.
// CHECK-LABEL: func.func @unit_expert(
// CHECK-SAME: %[[W:[a-z0-9]+]]: tensor<1x1x16x8xf8E4M3FN> {moe.packing = {function = @unit_expert__pack1, shape = array<i64: 8, 16>}, moe.weight = "shared.w"}
// CHECK-NOT: tensor.expand_shape %[[W]]
// CHECK: %[[S:.*]] = tensor.expand_shape %{{.*}} {{\[\[}}0, 1], [2]] output_shape [1, 1, 2]
// CHECK: moe.grouped_matmul block_rows(4) ins(%{{.*}}, %[[W]], %{{.*}} : tensor<?x16xf32>, tensor<1x1x16x8xf8E4M3FN>, tensor<?xi32>) scale(%[[S]] : tensor<1x1x2xf32>)
// CHECK-LABEL: func.func @unit_expert__pack1(
// CHECK-SAME: %[[SRC:.*]]: tensor<8x16xf8E4M3FN>
// CHECK: %[[E:.*]] = tensor.expand_shape %[[SRC]] {{\[\[}}0, 1], [2]] output_shape [1, 8, 16]
// CHECK: linalg.pack %[[E]] {{.*}} inner_dims_pos = [1] inner_tiles = [8] {{.*}} : tensor<1x8x16xf8E4M3FN> -> tensor<1x1x16x8xf8E4M3FN>
func.func @unit_expert(%x: tensor<?x16xf32>,
    %w: tensor<8x16xf8E4M3FN> {moe.weight = "shared.w"},
    %s: tensor<1x2xf32> {moe.weight = "shared.s"},
    %b: tensor<?xi32>, %acc: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %e = tensor.expand_shape %w [[0, 1], [2]] output_shape [1, 8, 16] : tensor<8x16xf8E4M3FN> into tensor<1x8x16xf8E4M3FN>
  %es = tensor.expand_shape %s [[0, 1], [2]] output_shape [1, 1, 2] : tensor<1x2xf32> into tensor<1x1x2xf32>
  %r = moe.grouped_matmul block_rows(4) ins(%x, %e, %b : tensor<?x16xf32>, tensor<1x8x16xf8E4M3FN>, tensor<?xi32>)
      scale(%es : tensor<1x1x2xf32>) block [8, 8]
      outs(%acc : tensor<?x8xf32>) -> tensor<?x8xf32>
  return %r : tensor<?x8xf32>
}

// -----

// Weight views: the gate and up halves of a fused [E, H, 2I] tensor (bound
// twice), each sliced and transposed to [E, I, H], and a [E*I, H] tensor
// expanded to [E, I, H] then transposed to [E, H, I]. The packing functions
// replay the views on the checkpoint tensor; the entry reads the packed
// arguments and keeps no view.
// CHECK-LABEL: func.func @views(
// CHECK-SAME: %{{.*}}: tensor<2x1x16x16xf32> {moe.packing = {function = @views__pack1, shape = array<i64: 2, 16, 24>}, moe.weight = "gate_up"}
// CHECK-SAME: %{{.*}}: tensor<2x1x16x16xf32> {moe.packing = {function = @views__pack2, shape = array<i64: 2, 16, 24>}, moe.weight = "gate_up"}
// CHECK-SAME: %{{.*}}: tensor<2x1x12x16xbf16> {moe.packing = {function = @views__pack3, shape = array<i64: 24, 16>}, moe.weight = "w2"}
// CHECK-NOT: tensor.extract_slice
// CHECK-NOT: linalg.transpose
// CHECK-NOT: tensor.expand_shape
// CHECK: moe.grouped_matmul
// CHECK-LABEL: func.func @views__pack1(
// CHECK-SAME: %[[SRC:.*]]: tensor<2x16x24xf32> {bufferization.writable = false}
// CHECK: %[[HALF:.*]] = tensor.extract_slice %[[SRC]][0, 0, 0] [2, 16, 12] [1, 1, 2]
// CHECK: %[[EMPTY:.*]] = tensor.empty() : tensor<2x12x16xf32>
// CHECK: %[[T:.*]] = linalg.transpose ins(%[[HALF]] : tensor<2x16x12xf32>) outs(%[[EMPTY]] : tensor<2x12x16xf32>) permutation = [0, 2, 1]
// CHECK: linalg.pack %[[T]]
// CHECK-LABEL: func.func @views__pack2(
// CHECK: tensor.extract_slice %{{.*}}[0, 0, 1] [2, 16, 12] [1, 1, 2]
// CHECK-LABEL: func.func @views__pack3(
// CHECK: %[[E:.*]] = tensor.expand_shape %{{.*}} {{\[}}[0, 1], [2]] output_shape [2, 12, 16] : tensor<24x16xbf16> into tensor<2x12x16xbf16>
// CHECK: %[[T3:.*]] = linalg.transpose ins(%[[E]] : tensor<2x12x16xbf16>) outs(%{{.*}} : tensor<2x16x12xbf16>) permutation = [0, 2, 1]
// CHECK: linalg.pack %[[T3]] {{.*}} : tensor<2x16x12xbf16> -> tensor<2x1x12x16xbf16>
func.func @views(%x: tensor<8x16xf32>,
                 %gu0: tensor<2x16x24xf32> {moe.weight = "gate_up"},
                 %gu1: tensor<2x16x24xf32> {moe.weight = "gate_up"},
                 %w2: tensor<24x16xbf16> {moe.weight = "w2"},
                 %h: tensor<8x12xf32>,
                 %b: tensor<2xi32>, %acc: tensor<8x12xf32>,
                 %acc2: tensor<8x16xf32>) -> (tensor<8x12xf32>, tensor<8x16xf32>) {
  %gs = tensor.extract_slice %gu0[0, 0, 0] [2, 16, 12] [1, 1, 2] : tensor<2x16x24xf32> to tensor<2x16x12xf32>
  %ge = tensor.empty() : tensor<2x12x16xf32>
  %g = linalg.transpose ins(%gs : tensor<2x16x12xf32>) outs(%ge : tensor<2x12x16xf32>) permutation = [0, 2, 1]
  %us = tensor.extract_slice %gu1[0, 0, 1] [2, 16, 12] [1, 1, 2] : tensor<2x16x24xf32> to tensor<2x16x12xf32>
  %ue = tensor.empty() : tensor<2x12x16xf32>
  %u = linalg.transpose ins(%us : tensor<2x16x12xf32>) outs(%ue : tensor<2x12x16xf32>) permutation = [0, 2, 1]
  %r = moe.grouped_matmul block_rows(4)
      ins(%x, %g, %b : tensor<8x16xf32>, tensor<2x12x16xf32>, tensor<2xi32>)
      paired(%u : tensor<2x12x16xf32>)
      outs(%acc : tensor<8x12xf32>) epilogue {
  ^bb0(%gv: f32, %uv: f32, %o: f32):
    %y = arith.mulf %gv, %uv : f32
    moe.yield %y : f32
  } -> tensor<8x12xf32>
  %de = tensor.expand_shape %w2 [[0, 1], [2]] output_shape [2, 12, 16] : tensor<24x16xbf16> into tensor<2x12x16xbf16>
  %dt = tensor.empty() : tensor<2x16x12xbf16>
  %d = linalg.transpose ins(%de : tensor<2x12x16xbf16>) outs(%dt : tensor<2x16x12xbf16>) permutation = [0, 2, 1]
  %s = moe.grouped_matmul block_rows(4)
      ins(%h, %d, %b : tensor<8x12xf32>, tensor<2x16x12xbf16>, tensor<2xi32>)
      outs(%acc2 : tensor<8x16xf32>) -> tensor<8x16xf32>
  return %r, %s : tensor<8x12xf32>, tensor<8x16xf32>
}

// -----

// The views of moe-dense-to-moe: an upcycled [I, H] tensor broadcast to two
// experts, and a split one gathered by a constant neuron table (-1: no
// neuron), whose body reads another constant from above. The packing
// functions clone the table, the constant and fresh destinations.
// CHECK-LABEL: func.func @dense_to_moe_views(
// CHECK-SAME: %{{.*}}: tensor<2x1x16x16xf32> {moe.packing = {function = @dense_to_moe_views__pack1, shape = array<i64: 12, 16>}, moe.weight = "up"}
// CHECK-SAME: %{{.*}}: tensor<2x1x16x16xf32> {moe.packing = {function = @dense_to_moe_views__pack2, shape = array<i64: 12, 16>}, moe.weight = "gate"}
// CHECK-NOT: linalg.broadcast
// CHECK-NOT: linalg.generic
// CHECK-NOT: arith.constant dense
// CHECK: moe.grouped_matmul
// CHECK-LABEL: func.func @dense_to_moe_views__pack1(
// CHECK-SAME: %[[SRC:.*]]: tensor<12x16xf32> {bufferization.writable = false}
// CHECK: %[[EMPTY:.*]] = tensor.empty() : tensor<2x12x16xf32>
// CHECK: %[[B:.*]] = linalg.broadcast ins(%[[SRC]] : tensor<12x16xf32>) outs(%[[EMPTY]] : tensor<2x12x16xf32>) dimensions = [0]
// CHECK: linalg.pack %[[B]]
// CHECK-LABEL: func.func @dense_to_moe_views__pack2(
// CHECK-SAME: %[[SRC:.*]]: tensor<12x16xf32> {bufferization.writable = false}
// CHECK-DAG: %[[TABLE:.*]] = arith.constant dense<{{\[\[}}3, 0, 7, -1], [1, 2, 11, 5]]> : tensor<2x4xi64>
// CHECK-DAG: %[[ZERO:.*]] = arith.constant 0 : i64
// CHECK-DAG: %[[EMPTY:.*]] = tensor.empty() : tensor<2x4x16xf32>
// CHECK: %[[G:.*]] = linalg.generic {{.*}} ins(%[[TABLE]] : tensor<2x4xi64>) outs(%[[EMPTY]] : tensor<2x4x16xf32>)
// CHECK: arith.cmpi sge, %{{.*}}, %[[ZERO]]
// CHECK: tensor.extract %[[SRC]]
// CHECK: linalg.pack %[[G]]
#gather_table = affine_map<(e, i, h) -> (e, i)>
#gather_out = affine_map<(e, i, h) -> (e, i, h)>
func.func @dense_to_moe_views(%x: tensor<8x16xf32>,
                              %up: tensor<12x16xf32> {moe.weight = "up"},
                              %gate: tensor<12x16xf32> {moe.weight = "gate"},
                              %b: tensor<2xi32>, %acc: tensor<8x12xf32>,
                              %acc2: tensor<8x4xf32>)
    -> (tensor<8x12xf32>, tensor<8x4xf32>) {
  %ue = tensor.empty() : tensor<2x12x16xf32>
  %u = linalg.broadcast ins(%up : tensor<12x16xf32>) outs(%ue : tensor<2x12x16xf32>) dimensions = [0]
  %r = moe.grouped_matmul block_rows(4)
      ins(%x, %u, %b : tensor<8x16xf32>, tensor<2x12x16xf32>, tensor<2xi32>)
      outs(%acc : tensor<8x12xf32>) -> tensor<8x12xf32>
  %table = arith.constant dense<[[3, 0, 7, -1], [1, 2, 11, 5]]> : tensor<2x4xi64>
  %zero = arith.constant 0 : i64
  %fzero = arith.constant 0.0 : f32
  %ge = tensor.empty() : tensor<2x4x16xf32>
  %g = linalg.generic {indexing_maps = [#gather_table, #gather_out],
                       iterator_types = ["parallel", "parallel", "parallel"]}
      ins(%table : tensor<2x4xi64>) outs(%ge : tensor<2x4x16xf32>) {
  ^bb0(%n: i64, %o: f32):
    %present = arith.cmpi sge, %n, %zero : i64
    %safe = arith.select %present, %n, %zero : i64
    %row = arith.index_cast %safe : i64 to index
    %h = linalg.index 2 : index
    %v = tensor.extract %gate[%row, %h] : tensor<12x16xf32>
    %w = arith.select %present, %v, %fzero : f32
    linalg.yield %w : f32
  } -> tensor<2x4x16xf32>
  %s = moe.grouped_matmul block_rows(4)
      ins(%x, %g, %b : tensor<8x16xf32>, tensor<2x4x16xf32>, tensor<2xi32>)
      outs(%acc2 : tensor<8x4xf32>) -> tensor<8x4xf32>
  return %r, %s : tensor<8x12xf32>, tensor<8x4xf32>
}

// -----

// A view with another use, or a slice of a dynamic size, is no view the
// packing function can replay: the argument stays as bound.
// CHECK-LABEL: func.func @view_other_use(
// CHECK-SAME: %{{.*}}: tensor<2x16x24xf32> {moe.weight = "gate_up"}
// CHECK-NOT: moe.packing
// CHECK: linalg.transpose
func.func @view_other_use(%x: tensor<8x16xf32>,
                          %gu: tensor<2x16x24xf32> {moe.weight = "gate_up"},
                          %b: tensor<2xi32>, %acc: tensor<8x12xf32>)
    -> (tensor<8x12xf32>, tensor<2x16x12xf32>) {
  %gs = tensor.extract_slice %gu[0, 0, 0] [2, 16, 12] [1, 1, 1] : tensor<2x16x24xf32> to tensor<2x16x12xf32>
  %ge = tensor.empty() : tensor<2x12x16xf32>
  %g = linalg.transpose ins(%gs : tensor<2x16x12xf32>) outs(%ge : tensor<2x12x16xf32>) permutation = [0, 2, 1]
  %r = moe.grouped_matmul block_rows(4)
      ins(%x, %g, %b : tensor<8x16xf32>, tensor<2x12x16xf32>, tensor<2xi32>)
      outs(%acc : tensor<8x12xf32>) -> tensor<8x12xf32>
  return %r, %gs : tensor<8x12xf32>, tensor<2x16x12xf32>
}

// -----

// Arguments bound to one tensor and packed alike (tied layers) name one
// packing function, so that the runtime packs the tensor once.
// CHECK-LABEL: func.func @tied(
// CHECK-SAME: %arg1: tensor<2x1x16x16xf32> {moe.packing = {function = @tied__pack1, shape = array<i64: 2, 16, 16>}, moe.weight = "w.{e}"}
// CHECK-SAME: %arg2: tensor<2x1x16x16xf32> {moe.packing = {function = @tied__pack1, shape = array<i64: 2, 16, 16>}, moe.weight = "w.{e}"}
// CHECK-LABEL: func.func @tied__pack1(
// CHECK-NOT: func.func @tied__pack2
func.func @tied(%x: tensor<8x16xf32>,
                %w1: tensor<2x16x16xf32> {moe.weight = "w.{e}"},
                %w2: tensor<2x16x16xf32> {moe.weight = "w.{e}"},
                %b: tensor<2xi32>, %acc: tensor<8x16xf32>) -> tensor<8x16xf32> {
  %r = moe.grouped_matmul block_rows(4)
      ins(%x, %w1, %b : tensor<8x16xf32>, tensor<2x16x16xf32>, tensor<2xi32>)
      outs(%acc : tensor<8x16xf32>) -> tensor<8x16xf32>
  %s = moe.grouped_matmul block_rows(4)
      ins(%r, %w2, %b : tensor<8x16xf32>, tensor<2x16x16xf32>, tensor<2xi32>)
      outs(%acc : tensor<8x16xf32>) -> tensor<8x16xf32>
  return %s : tensor<8x16xf32>
}

// -----

// MXFP4 weights: e2m1 pairs (i8 [E, N, ceil(K/2)]) pack in panels of 16
// columns of byte pairs, in pairs of K already; their per-column scales
// (BN = 1) pack in the same panels, [E, NP, KB, P], each read through its
// view (the gate rows of a fused tensor) in its packing function. The
// input is rounded to bf16 for the pair kernels.
// CHECK-LABEL: func.func @mxfp4(
// CHECK-SAME: %{{.*}}: tensor<2x2x10x16xi8> {moe.packing = {function = @mxfp4__pack1, shape = array<i64: 2, 40, 10>}
// CHECK-SAME: %{{.*}}: tensor<2x2x1x16xf32> {moe.packing = {function = @mxfp4__pack2, shape = array<i64: 2, 40, 1>}
// CHECK: %[[X:.*]] = arith.truncf %{{.*}} : tensor<8x20xf32> to tensor<8x20xbf16>
// CHECK: moe.grouped_matmul block_rows(4) ins(%[[X]], %{{.*}}, %{{.*}} : tensor<8x20xbf16>, tensor<2x2x10x16xi8>, tensor<2xi32>) scale(%{{.*}} : tensor<2x2x1x16xf32>) block [1, 32]
// CHECK-LABEL: func.func @mxfp4__pack1(
// CHECK: tensor.extract_slice %{{.*}}[0, 0, 0] [2, 20, 10] [1, 2, 1] : tensor<2x40x10xi8> to tensor<2x20x10xi8>
// CHECK: linalg.pack %{{.*}} padding_value(%{{.*}} : i8) inner_dims_pos = [1] inner_tiles = [16] into %{{.*}} : tensor<2x20x10xi8> -> tensor<2x2x10x16xi8>
// CHECK-LABEL: func.func @mxfp4__pack2(
// CHECK: tensor.extract_slice %{{.*}}[0, 0, 0] [2, 20, 1] [1, 2, 1] : tensor<2x40x1xf32> to tensor<2x20x1xf32>
// CHECK: linalg.pack %{{.*}} padding_value(%{{.*}} : f32) inner_dims_pos = [1] inner_tiles = [16] into %{{.*}} : tensor<2x20x1xf32> -> tensor<2x2x1x16xf32>
func.func @mxfp4(%x: tensor<8x20xf32>,
                 %w: tensor<2x40x10xi8> {moe.weight = "gate_up_blocks"},
                 %s: tensor<2x40x1xf32> {moe.weight = "gate_up_scales", moe.weight_format = "e8m0"},
                 %b: tensor<2xi32>, %acc: tensor<8x20xf32>) -> tensor<8x20xf32> {
  %wv = tensor.extract_slice %w[0, 0, 0] [2, 20, 10] [1, 2, 1] : tensor<2x40x10xi8> to tensor<2x20x10xi8>
  %sv = tensor.extract_slice %s[0, 0, 0] [2, 20, 1] [1, 2, 1] : tensor<2x40x1xf32> to tensor<2x20x1xf32>
  %r = moe.grouped_matmul block_rows(4)
      ins(%x, %wv, %b : tensor<8x20xf32>, tensor<2x20x10xi8>, tensor<2xi32>)
      scale(%sv : tensor<2x20x1xf32>) block [1, 32]
      outs(%acc : tensor<8x20xf32>) -> tensor<8x20xf32>
  return %r : tensor<8x20xf32>
}

// -----

// Per-column scales that are not an argument (computed in the entry)
// cannot be packed: neither are the weights they scale.
// CHECK-LABEL: func.func @mxfp4_computed_scales(
// CHECK-SAME: %{{.*}}: tensor<2x20x10xi8> {moe.weight = "w"}
// CHECK: moe.grouped_matmul block_rows(4) ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<8x20xf32>, tensor<2x20x10xi8>, tensor<2xi32>) scale(%{{.*}} : tensor<2x20x1xf32>) block [1, 32]
// CHECK-NOT: func.func @mxfp4_computed_scales__pack
func.func @mxfp4_computed_scales(%x: tensor<8x20xf32>,
                 %w: tensor<2x20x10xi8> {moe.weight = "w"},
                 %s: tensor<2x20x1xf32> {moe.weight = "s", moe.weight_format = "e8m0"},
                 %b: tensor<2xi32>, %acc: tensor<8x20xf32>) -> tensor<8x20xf32> {
  %twice = arith.addf %s, %s : tensor<2x20x1xf32>
  %r = moe.grouped_matmul block_rows(4)
      ins(%x, %w, %b : tensor<8x20xf32>, tensor<2x20x10xi8>, tensor<2xi32>)
      scale(%twice : tensor<2x20x1xf32>) block [1, 32]
      outs(%acc : tensor<8x20xf32>) -> tensor<8x20xf32>
  return %r : tensor<8x20xf32>
}
