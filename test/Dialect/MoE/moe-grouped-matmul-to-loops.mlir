// RUN: moe-opt %s --split-input-file --verify-diagnostics --moe-grouped-matmul-to-loops | FileCheck %s

// The scalar implementation of TilingInterface inside loops over the
// iteration domain (row blocks x N x K), clamped to the buffers' sizes: per
// point, the block's expert is read, blocks of no expert are skipped, and
// the block's rows accumulate input * weight in f32.
// CHECK-LABEL: func @to_loops
// CHECK: memref.dim %{{.*}}, %{{.*}} : memref<?xi32>
// CHECK: arith.minui
// CHECK: scf.for %[[B:.*]] = %{{.*}} to %{{.*}} step
// CHECK:   scf.for %[[N:.*]] = %{{.*}} to %{{.*}} step
// CHECK:     scf.for %[[K:.*]] = %{{.*}} to %{{.*}} step
// CHECK:       %[[ID:.*]] = memref.load %{{.*}}[%[[B]]] : memref<?xi32>
// CHECK:       %[[EXPERT:.*]] = arith.index_cast %[[ID]]
// CHECK:       %[[E:.*]] = arith.constant 3 : index
// CHECK:       arith.cmpi sge, %[[EXPERT]], %{{.*}}
// CHECK:       arith.cmpi slt, %[[EXPERT]], %[[E]]
// CHECK:       scf.if
// CHECK:         memref.load %{{.*}}[%[[EXPERT]], %[[N]], %[[K]]] : memref<3x8x16xbf16>
// CHECK:         arith.extf
// CHECK:         %[[BM:.*]] = arith.constant 2 : index
// CHECK:         scf.for %[[I:.*]] = %{{.*}} to %[[BM]] step
// CHECK:           memref.load %{{.*}} : memref<?x16xf32>
// CHECK:           arith.mulf
// CHECK:           arith.addf
// CHECK:           memref.store
// CHECK-NOT: moe.grouped_matmul
func.func @to_loops(%rows: memref<?x16xf32>, %w: memref<3x8x16xbf16>,
                    %blocks: memref<?xi32>, %acc: memref<?x8xf32>) {
  moe.grouped_matmul block_rows(2)
      ins(%rows, %w, %blocks : memref<?x16xf32>, memref<3x8x16xbf16>, memref<?xi32>)
      outs(%acc : memref<?x8xf32>)
  return
}

// -----

// With block sizes, the rows of a block end at its size clamped to [0, BM].
// CHECK-LABEL: func @filled_rows
// CHECK: scf.if
// CHECK:   %[[SIZE:.*]] = memref.load %{{.*}} : memref<?xi32>
// CHECK:   %[[CAST:.*]] = arith.index_cast %[[SIZE]]
// CHECK:   %[[LOW:.*]] = arith.maxsi %[[CAST]], %{{.*}}
// CHECK:   %[[ROWS:.*]] = arith.minsi %[[LOW]], %{{.*}}
// CHECK:   scf.for %{{.*}} = %{{.*}} to %[[ROWS]] step
func.func @filled_rows(%rows: memref<?x16xf32>, %w: memref<3x8x16xf32>,
                       %blocks: memref<?xi32>, %sizes: memref<?xi32>, %acc: memref<?x8xf32>) {
  moe.grouped_matmul block_rows(2)
      ins(%rows, %w, %blocks : memref<?x16xf32>, memref<3x8x16xf32>, memref<?xi32>)
      block_sizes(%sizes : memref<?xi32>)
      outs(%acc : memref<?x8xf32>)
  return
}

// -----

func.func @tensors(%rows: tensor<4x16xf32>, %w: tensor<1x8x16xf32>,
                   %blocks: tensor<2xi32>, %acc: tensor<4x8xf32>) -> tensor<4x8xf32> {
  // expected-error @+1 {{moe-grouped-matmul-to-loops: expects the memref form (run after bufferization)}}
  %r = moe.grouped_matmul block_rows(2)
      ins(%rows, %w, %blocks : tensor<4x16xf32>, tensor<1x8x16xf32>, tensor<2xi32>)
      outs(%acc : tensor<4x8xf32>) -> tensor<4x8xf32>
  return %r : tensor<4x8xf32>
}

// -----

// A packed weight ([E, NP, K, P]) is read at [expert, n / P, k, n mod P];
// the column loop is clamped to the NP * P columns it holds.
// CHECK-LABEL: func @packed
// CHECK: %[[NP:.*]] = memref.dim %{{.*}}, %c1{{.*}} : memref<3x2x16x4xbf16>
// CHECK: arith.muli %[[NP]], %c4
// CHECK: scf.for %[[B:.*]] = %{{.*}} to %{{.*}} step
// CHECK:   scf.for %[[N:.*]] = %{{.*}} to %{{.*}} step
// CHECK:     scf.for %[[K:.*]] = %{{.*}} to %{{.*}} step
// CHECK:       scf.if
// CHECK:         %[[P:.*]] = arith.divui %[[N]], %c4
// CHECK:         %[[J:.*]] = arith.remui %[[N]], %c4
// CHECK:         memref.load %{{.*}}[%{{.*}}, %[[P]], %[[K]], %[[J]]] : memref<3x2x16x4xbf16>
func.func @packed(%rows: memref<?x16xf32>, %w: memref<3x2x16x4xbf16>,
                  %blocks: memref<?xi32>, %acc: memref<?x7xf32>) {
  moe.grouped_matmul block_rows(2)
      ins(%rows, %w, %blocks : memref<?x16xf32>, memref<3x2x16x4xbf16>, memref<?xi32>)
      outs(%acc : memref<?x7xf32>)
  return
}

// -----

// Packed in pairs of K ([E, NP, KP, P, 2]) is read at [expert, n / P, k / 2,
// n mod P, k mod 2]; the depth loop is clamped to the 2 * KP inputs it holds.
// CHECK-LABEL: func @pairs
// CHECK: %[[KP:.*]] = memref.dim %{{.*}}, %c2{{.*}} : memref<3x2x8x4x2xbf16>
// CHECK: arith.muli %[[KP]], %c2
// CHECK: scf.for %[[B:.*]] = %{{.*}} to %{{.*}} step
// CHECK:   scf.for %[[N:.*]] = %{{.*}} to %{{.*}} step
// CHECK:     scf.for %[[K:.*]] = %{{.*}} to %{{.*}} step
// CHECK:       scf.if
// CHECK:         %[[P:.*]] = arith.divui %[[N]], %c4
// CHECK:         %[[J:.*]] = arith.remui %[[N]], %c4
// CHECK:         %[[Q:.*]] = arith.divui %[[K]], %c2
// CHECK:         %[[I:.*]] = arith.remui %[[K]], %c2
// CHECK:         memref.load %{{.*}}[%{{.*}}, %[[P]], %[[Q]], %[[J]], %[[I]]] : memref<3x2x8x4x2xbf16>
func.func @pairs(%rows: memref<?x15xf32>, %w: memref<3x2x8x4x2xbf16>,
                 %blocks: memref<?xi32>, %acc: memref<?x7xf32>) {
  moe.grouped_matmul block_rows(2)
      ins(%rows, %w, %blocks : memref<?x15xf32>, memref<3x2x8x4x2xbf16>, memref<?xi32>)
      outs(%acc : memref<?x7xf32>)
  return
}

// -----

// Gathered rows: the blocks are clamped to the rows of row_sources, and row
// r reads input row row_sources[r], clamped into the input; a source
// outside [0, S) reads zeros.
// CHECK-LABEL: func @gathered
// CHECK: memref.dim %{{.*}}, %c0{{.*}} : memref<?xi32>
// CHECK: scf.for
// CHECK:   scf.for
// CHECK:     scf.for %[[K:.*]] = %{{.*}} to %{{.*}} step
// CHECK:       scf.if
// CHECK:         scf.for %[[I:.*]] = %{{.*}} to %{{.*}} step
// CHECK:           %[[ROW:.*]] = arith.addi %{{.*}}, %[[I]]
// CHECK:           %[[SRC:.*]] = memref.load %{{.*}}[%[[ROW]]] : memref<?xi32>
// CHECK:           %[[S:.*]] = arith.index_cast %[[SRC]]
// CHECK:           %[[ROWS:.*]] = memref.dim %{{.*}}, %c0{{.*}} : memref<5x16xf32>
// CHECK:           arith.cmpi sge, %[[S]]
// CHECK:           arith.cmpi slt, %[[S]], %[[ROWS]]
// CHECK:           %[[VALID:.*]] = arith.andi
// CHECK:           %[[SAFE:.*]] = arith.select %[[VALID]], %[[S]]
// CHECK:           %[[X:.*]] = memref.load %{{.*}}[%[[SAFE]], %[[K]]] : memref<5x16xf32>
// CHECK:           arith.select %[[VALID]], %[[X]]
func.func @gathered(%x: memref<5x16xf32>, %w: memref<3x8x16xf32>, %blocks: memref<?xi32>,
                    %sources: memref<?xi32>, %acc: memref<?x8xf32>) {
  moe.grouped_matmul block_rows(2)
      ins(%x, %w, %blocks : memref<5x16xf32>, memref<3x8x16xf32>, memref<?xi32>)
      row_sources(%sources : memref<?xi32>)
      outs(%acc : memref<?x8xf32>)
  return
}

// -----

// Scattered rows: each product, times the row's scale, is added to the
// row's target row of init, only when the target is inside init; the
// blocks are bounded by the scatter tables, not by init's rows.
// CHECK-LABEL: func @scattering
// CHECK-SAME: (%{{.*}}: memref<?x4xf32>, %{{.*}}: memref<2x3x4xf32>, %{{.*}}: memref<?xi32>, %[[TARGETS:.*]]: memref<?xi32>, %[[SCALES:.*]]: memref<?xf32>, %[[OUT:.*]]: memref<?x3xf32>)
// CHECK: memref.dim %[[TARGETS]]
// CHECK: memref.dim %[[SCALES]]
// CHECK: scf.for
// CHECK:   scf.for
// CHECK:     scf.for
// CHECK:       scf.if
// CHECK:         scf.for
// CHECK:           %[[P:.*]] = arith.mulf
// CHECK:           %[[T:.*]] = memref.load %[[TARGETS]]
// CHECK:           %[[T_INDEX:.*]] = arith.index_cast %[[T]]
// CHECK:           %[[S:.*]] = memref.load %[[SCALES]]
// CHECK:           %[[T_ROWS:.*]] = memref.dim %[[OUT]], %c0
// CHECK:           %[[INSIDE:.*]] = arith.andi
// CHECK:           %[[ROW:.*]] = arith.select %[[INSIDE]], %[[T_INDEX]], %c0
// CHECK:           scf.if %[[INSIDE]] {
// CHECK:             %[[TERM:.*]] = arith.mulf %[[S]], %[[P]]
// CHECK:             %[[OLD:.*]] = memref.load %[[OUT]][%[[ROW]], %{{.*}}]
// CHECK:             %[[NEW:.*]] = arith.addf %[[OLD]], %[[TERM]]
// CHECK:             memref.store %[[NEW]], %[[OUT]][%[[ROW]], %{{.*}}]
func.func @scattering(%x: memref<?x4xf32>, %w: memref<2x3x4xf32>,
                      %blocks: memref<?xi32>, %targets: memref<?xi32>,
                      %scales: memref<?xf32>, %out: memref<?x3xf32>) {
  moe.grouped_matmul block_rows(2)
      ins(%x, %w, %blocks : memref<?x4xf32>, memref<2x3x4xf32>, memref<?xi32>)
      scatter(%targets, %scales : memref<?xi32>, memref<?xf32>)
      outs(%out : memref<?x3xf32>)
  return
}

// -----

// Atomic scattered adds: each term is added by one atomic read-modify-write.
// CHECK-LABEL: func @atomic_scattering
// CHECK:           memref.load %{{.*}} : memref<?xf32>
// CHECK:           scf.if %{{.*}} {
// CHECK:             %[[TERM:.*]] = arith.mulf
// CHECK-NOT:         memref.load %{{.*}} : memref<?x3xf32>
// CHECK:             memref.atomic_rmw addf %[[TERM]], %{{.*}}[%{{.*}}, %{{.*}}] : (f32, memref<?x3xf32>) -> f32
// CHECK-NOT:         memref.store
func.func @atomic_scattering(%x: memref<?x4xf32>, %w: memref<2x3x4xf32>,
                             %blocks: memref<?xi32>, %targets: memref<?xi32>,
                             %scales: memref<?xf32>, %out: memref<?x3xf32>) {
  moe.grouped_matmul block_rows(2)
      ins(%x, %w, %blocks : memref<?x4xf32>, memref<2x3x4xf32>, memref<?xi32>)
      scatter(%targets, %scales : memref<?xi32>, memref<?xf32>) atomic
      outs(%out : memref<?x3xf32>)
  return
}

// -----

// With an epilogue the domain is (row blocks, N): per point, each filled row
// sums input * weight and input * paired weight over K in one loop (K
// clamped to the input's and both weights'), then the epilogue of the two
// sums and the old element is stored in place.
// CHECK-LABEL: func @epilogue
// CHECK: scf.for %[[B:.*]] = %{{.*}} to %{{.*}} step
// CHECK:   scf.for %[[N:.*]] = %{{.*}} to %{{.*}} step
// CHECK-NOT: scf.for
// CHECK:     scf.if
// CHECK:       %[[KX:.*]] = memref.dim %{{.*}}, %c1{{.*}} : memref<?x16xf32>
// CHECK:       arith.minui %[[KX]]
// CHECK:       %[[DEPTH:.*]] = arith.minui
// CHECK:       scf.for %[[I:.*]] = %{{.*}} to %{{.*}} step
// CHECK:         %[[ROW:.*]] = arith.addi %{{.*}}, %[[I]]
// CHECK:         %[[SUMS:.*]]:2 = scf.for %[[K:.*]] = %{{.*}} to %[[DEPTH]] step %{{.*}} iter_args(%[[G:.*]] = %{{.*}}, %[[U:.*]] = %{{.*}}) -> (f32, f32)
// CHECK:           memref.load %{{.*}}[%{{.*}}, %[[N]], %[[K]]] : memref<2x8x16xf32>
// CHECK:           memref.load %{{.*}}[%{{.*}}, %[[N]], %[[K]]] : memref<2x8x16xf32>
// CHECK:           scf.yield
// CHECK:         %[[OLD:.*]] = memref.load %[[OUT:.*]][%[[ROW]], %[[N]]]
// CHECK:         %[[P:.*]] = arith.mulf %[[SUMS]]#0, %[[SUMS]]#1 : f32
// CHECK:         %[[Y:.*]] = arith.addf %[[P]], %[[OLD]] : f32
// CHECK:         memref.store %[[Y]], %[[OUT]][%[[ROW]], %[[N]]]
func.func @epilogue(%rows: memref<?x16xf32>, %wg: memref<2x8x16xf32>,
                    %wu: memref<2x8x16xf32>, %blocks: memref<?xi32>,
                    %acc: memref<?x8xf32>) {
  moe.grouped_matmul block_rows(4)
      ins(%rows, %wg, %blocks : memref<?x16xf32>, memref<2x8x16xf32>, memref<?xi32>)
      paired(%wu : memref<2x8x16xf32>)
      outs(%acc : memref<?x8xf32>) epilogue {
  ^bb0(%g: f32, %u: f32, %o: f32):
    %p = arith.mulf %g, %u : f32
    %y = arith.addf %p, %o : f32
    moe.yield %y : f32
  }
  return
}

// -----

// An epilogue writing bf16 rows: the old element widened to f32 for the
// epilogue, its value rounded to bf16 when stored.
// CHECK-LABEL: func @epilogue_bf16_rows
// CHECK:         %[[OLD:.*]] = memref.load %[[OUT:.*]][%[[ROW:.*]], %[[N:.*]]] : memref<?x8xbf16>
// CHECK:         %[[WIDE:.*]] = arith.extf %[[OLD]] : bf16 to f32
// CHECK:         %[[Y:.*]] = arith.addf %{{.*}}, %[[WIDE]] : f32
// CHECK:         %[[NARROW:.*]] = arith.truncf %[[Y]] : f32 to bf16
// CHECK:         memref.store %[[NARROW]], %[[OUT]][%[[ROW]], %[[N]]] : memref<?x8xbf16>
func.func @epilogue_bf16_rows(%rows: memref<?x16xf32>, %w: memref<2x8x16xbf16>,
                              %blocks: memref<?xi32>, %acc: memref<?x8xbf16>) {
  moe.grouped_matmul block_rows(4)
      ins(%rows, %w, %blocks : memref<?x16xf32>, memref<2x8x16xbf16>, memref<?xi32>)
      outs(%acc : memref<?x8xbf16>) epilogue {
  ^bb0(%s: f32, %o: f32):
    %y = arith.addf %s, %o : f32
    moe.yield %y : f32
  }
  return
}

// -----

// Block-scaled FP8 weights: each weight is widened and multiplied by the
// scale of its block, scale[e, n / 16, k / 8].
// CHECK-LABEL: func @block_scaled
// CHECK:   scf.for %[[B:.*]] = %{{.*}} to %{{.*}} step
// CHECK:     scf.for %[[N:.*]] = %{{.*}} to %{{.*}} step
// CHECK:       scf.for %[[K:.*]] = %{{.*}} to %{{.*}} step
// CHECK:         %[[W8:.*]] = memref.load %{{.*}}[%[[E:.*]], %[[N]], %[[K]]] : memref<2x32x24xf8E4M3FN>
// CHECK:         %[[W:.*]] = arith.extf %[[W8]] : f8E4M3FN to f32
// CHECK:         %[[NB:.*]] = arith.divui %[[N]], %c16
// CHECK:         %[[KB:.*]] = arith.divui %[[K]], %c8
// CHECK:         %[[S:.*]] = memref.load %{{.*}}[%[[E]], %[[NB]], %[[KB]]] : memref<2x2x3xf32>
// CHECK:         %[[SW:.*]] = arith.mulf %[[W]], %[[S]] : f32
// CHECK:         arith.mulf %{{.*}}, %[[SW]] : f32
func.func @block_scaled(%rows: memref<8x24xf32>, %w: memref<2x32x24xf8E4M3FN>,
                        %s: memref<2x2x3xf32>, %blocks: memref<2xi32>,
                        %acc: memref<8x32xf32>) {
  moe.grouped_matmul block_rows(4)
      ins(%rows, %w, %blocks : memref<8x24xf32>, memref<2x32x24xf8E4M3FN>, memref<2xi32>)
      scale(%s : memref<2x2x3xf32>) block [16, 8]
      outs(%acc : memref<8x32xf32>)
  return
}

// -----

// MXFP4 weights: byte k / 2 of e2m1 pairs, its nibble k mod 2 decoded to
// f32, times the column's scale of its depth block; unpacked, and packed
// in panels of 8 with the scales packed alike (scale[e, n / 8, k / 32,
// n mod 8]).
// CHECK-LABEL: func @mxfp4
// CHECK:         %[[BYTE:.*]] = memref.load %{{.*}}[%{{.*}}, %{{.*}}, %{{.*}}] : memref<2x32x10xi8>
// CHECK:         arith.extui %[[BYTE]] : i8 to i32
// CHECK:         arith.shrui
// CHECK:         arith.mulf %{{.*}}, %{{.*}} : f32
// CHECK:         memref.load %{{.*}}[%{{.*}}, %{{.*}}, %{{.*}}] : memref<2x32x1xf32>
// CHECK:         memref.load %{{.*}}[%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}] : memref<2x4x10x8xi8>
// CHECK:         memref.load %{{.*}}[%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}] : memref<2x4x1x8xf32>
func.func @mxfp4(%rows: memref<8x20xf32>, %w: memref<2x32x10xi8>,
                 %s: memref<2x32x1xf32>, %pw: memref<2x4x10x8xi8>,
                 %ps: memref<2x4x1x8xf32>, %blocks: memref<2xi32>,
                 %acc: memref<8x32xf32>) {
  moe.grouped_matmul block_rows(4)
      ins(%rows, %w, %blocks : memref<8x20xf32>, memref<2x32x10xi8>, memref<2xi32>)
      scale(%s : memref<2x32x1xf32>) block [1, 32]
      outs(%acc : memref<8x32xf32>)
  moe.grouped_matmul block_rows(4)
      ins(%rows, %pw, %blocks : memref<8x20xf32>, memref<2x4x10x8xi8>, memref<2xi32>)
      scale(%ps : memref<2x4x1x8xf32>) block [1, 32]
      outs(%acc : memref<8x32xf32>)
  return
}

// -----

// Dense (no block ids): the row blocks round up (the last one partly
// filled), every block is the one expert's (no id read; owned: true),
// and each block's rows stop at the rows input and init hold.
// CHECK-LABEL: func @dense
// CHECK:       %[[ROWS:.*]] = memref.dim %{{.*}}, %{{.*}} : memref<?x32xf32>
// CHECK:       arith.ceildivui %[[ROWS]], %{{.*}} : index
// CHECK:       scf.for %[[B:.*]] = %{{.*}} to %{{.*}} step
// CHECK-NOT:     memref.load %{{.*}} : memref<?xi32>
// CHECK:         scf.if %true
// CHECK:         %[[RS:.*]] = arith.minui %{{.*}}, %{{.*}} : index
// CHECK:         %[[FIRST:.*]] = arith.muli %[[B]], %{{.*}} : index
// CHECK:         %[[PAST:.*]] = arith.maxui %[[RS]], %[[FIRST]]
// CHECK:         %[[LEFT:.*]] = arith.subi %[[PAST]], %[[FIRST]]
// CHECK:         %[[FILLED:.*]] = arith.minui %[[LEFT]], %{{.*}} : index
// CHECK:         scf.for %{{.*}} = %{{.*}} to %[[FILLED]] step
func.func @dense(%x: memref<?x16xf32>, %w: memref<1x32x16xbf16>, %acc: memref<?x32xf32>) {
  moe.grouped_matmul block_rows(4)
      ins(%x, %w : memref<?x16xf32>, memref<1x32x16xbf16>)
      outs(%acc : memref<?x32xf32>)
  return
}

// -----

// A dense tile of at most BM rows (its rows an affine.min, as tiling makes
// them) is one block, known statically: the loop over blocks runs once.
// CHECK-LABEL: func @dense_tile
// CHECK:       scf.for %{{.*}} = %{{.*}} to %c1{{.*}} step
// CHECK:         scf.for %{{.*}} = %{{.*}} to %{{.*}} step
func.func @dense_tile(%x: memref<?x16xf32>, %w: memref<1x32x16xbf16>, %acc: memref<?x32xf32>, %first: index) {
  %c0 = arith.constant 0 : index
  %total = memref.dim %acc, %c0 : memref<?x32xf32>
  %rows = affine.min affine_map<(d0)[s0] -> (4, s0 - d0)>(%first)[%total]
  %xs = memref.subview %x[%first, 0] [%rows, 16] [1, 1] : memref<?x16xf32> to memref<?x16xf32, strided<[16, 1], offset: ?>>
  %ys = memref.subview %acc[%first, 0] [%rows, 32] [1, 1] : memref<?x32xf32> to memref<?x32xf32, strided<[32, 1], offset: ?>>
  moe.grouped_matmul block_rows(4)
      ins(%xs, %w : memref<?x16xf32, strided<[16, 1], offset: ?>>, memref<1x32x16xbf16>)
      outs(%ys : memref<?x32xf32, strided<[32, 1], offset: ?>>)
  return
}
