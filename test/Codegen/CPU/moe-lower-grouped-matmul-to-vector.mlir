// RUN: moe-opt %s --split-input-file --verify-diagnostics --moe-lower-grouped-matmul-to-vector="tile-rows=4 tile-cols=4" | FileCheck %s
// RUN: moe-opt %s --split-input-file --verify-diagnostics --moe-lower-grouped-matmul-to-vector | FileCheck %s --check-prefix=DEFAULT
// RUN: moe-opt %s --split-input-file --verify-diagnostics --moe-lower-grouped-matmul-to-vector="vector-width=8 tile-rows=2 tile-cols=3" | FileCheck %s --check-prefix=SMALL
// RUN: moe-opt %s --split-input-file --verify-diagnostics --moe-lower-grouped-matmul-to-vector="panel-rows=4" | FileCheck %s --check-prefix=PANEL
// RUN: not moe-opt %s --moe-lower-grouped-matmul-to-vector="tile-rows=0" 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: not moe-opt %s --moe-lower-grouped-matmul-to-vector="panel-rows=0" 2>&1 | FileCheck %s --check-prefix=BAD-PANEL

// BAD: moe-lower-grouped-matmul-to-vector: vector-width, tile-rows and tile-cols must be at least 1 and tile-rows * tile-cols at most 64, got 16, 0, 8
// BAD-PANEL: moe-lower-grouped-matmul-to-vector: panel-rows must be in [1, 32], got 0

// Per owned row block: 4x4 register tiles of 16-lane f32 accumulators over
// the depth (contiguous in-bounds reads of input rows and bf16 weight rows,
// converted, fused multiply-adds), then a padded remainder step (K = 20 is
// not a multiple of 16), lane sums added into init; remainder rows (6 % 4)
// and columns (10 % 4) use 1-row and 1-column tiles.
// CHECK-LABEL: func @kernel
// CHECK: scf.for %[[B:.*]] = %c0{{.*}} to %{{.*}} step %c1
// CHECK:   %[[ID:.*]] = memref.load %{{.*}}[%[[B]]] : memref<?xi32>
// CHECK:   scf.if
// CHECK:     scf.for %[[N:.*]] = %c0{{.*}} to %{{.*}} step %{{.*}}
// CHECK:       scf.for %[[M:.*]] = %c0{{.*}} to %{{.*}} step %{{.*}}
// CHECK:         %[[ACC:.*]]:16 = scf.for %{{.*}} = %c0 to %{{.*}} step %{{.*}} iter_args
// CHECK-COUNT-4:   vector.transfer_read %{{.*}} {in_bounds = [true]} : memref<?x20xf32>, vector<16xf32>
// CHECK-COUNT-4:   vector.transfer_read %{{.*}} {in_bounds = [true]} : memref<3x10x20xbf16>, vector<16xbf16>
// CHECK-COUNT-16:  vector.fma
// CHECK:         vector.transfer_read %{{.*}}[%{{.*}}, %{{.*}}], %{{.*}} : memref<?x20xf32>, vector<16xf32>
// The 4 sums of each tile row by pairwise halving, in output order, added
// to the 4 outputs at once:
// CHECK:         vector.shuffle %{{.*}}, %{{.*}} [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23] : vector<16xf32>, vector<16xf32>
// CHECK:         vector.shuffle %{{.*}}, %{{.*}} [8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31] : vector<16xf32>, vector<16xf32>
// CHECK:         vector.shuffle %{{.*}}, %{{.*}} [0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27]
// CHECK:         vector.shuffle %{{.*}}, %{{.*}} [0, 1, 4, 5, 8, 9, 12, 13] : vector<16xf32>, vector<16xf32>
// CHECK:         vector.shuffle %{{.*}}, %{{.*}} [0, 2, 4, 6] : vector<8xf32>, vector<8xf32>
// CHECK:         %[[SUMS:.*]] = arith.addf %{{.*}}, %{{.*}} : vector<4xf32>
// CHECK:         %[[ORDERED:.*]] = vector.shuffle %[[SUMS]], %[[SUMS]] [0, 2, 1, 3] : vector<4xf32>, vector<4xf32>
// CHECK:         %[[OLD:.*]] = vector.transfer_read %{{.*}} {in_bounds = [true]} : memref<?x10xf32>, vector<4xf32>
// CHECK:         %[[NEW:.*]] = arith.addf %[[OLD]], %[[ORDERED]] : vector<4xf32>
// CHECK:         vector.transfer_write %[[NEW]], %{{.*}} {in_bounds = [true]} : vector<4xf32>, memref<?x10xf32>
// One-column tiles sum their lanes with a reduction:
// CHECK:         vector.reduction <add>, %{{.*}} fastmath<reassoc> : vector<16xf32> into f32
// CHECK:         memref.store
// CHECK:       scf.for %{{.*}} = %{{.*}} to %c6{{.*}} step %{{.*}}
// CHECK:     scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}}
// CHECK-NOT: moe.grouped_matmul

// The default register tile is 2 rows x 8 columns.
// DEFAULT-LABEL: func @kernel
// DEFAULT: %{{.*}}:16 = scf.for %{{.*}} iter_args
// DEFAULT-COUNT-2: vector.transfer_read %{{.*}} {in_bounds = [true]} : memref<?x20xf32>, vector<16xf32>
// DEFAULT-COUNT-8: vector.transfer_read %{{.*}} {in_bounds = [true]} : memref<3x10x20xbf16>, vector<16xbf16>
// DEFAULT-COUNT-16: vector.fma

// SMALL-LABEL: func @kernel
// SMALL: %{{.*}}:6 = scf.for %{{.*}} = %c0 to %{{.*}} step %{{.*}} iter_args
// SMALL-COUNT-6: vector.fma %{{.*}} : vector<8xf32>
func.func @kernel(%rows: memref<?x20xf32>, %w: memref<3x10x20xbf16>,
                  %blocks: memref<?xi32>, %acc: memref<?x10xf32>) {
  moe.grouped_matmul block_rows(6)
      ins(%rows, %w, %blocks : memref<?x20xf32>, memref<3x10x20xbf16>, memref<?xi32>)
      outs(%acc : memref<?x10xf32>)
  return
}

// -----

// With block sizes, a block computes only its filled rows: the row loops
// end at the block's size clamped to [0, BM].
// CHECK-LABEL: func @filled_rows
// CHECK:   scf.if
// CHECK:   %[[SIZE:.*]] = memref.load %{{.*}}[%{{.*}}] : memref<?xi32>
// CHECK:   %[[CAST:.*]] = arith.index_cast %[[SIZE]]
// CHECK:   %[[LOW:.*]] = arith.maxsi %[[CAST]], %{{.*}}
// CHECK:   %[[ROWS:.*]] = arith.minsi %[[LOW]], %c6{{.*}}
// CHECK:   %[[REM:.*]] = arith.remui %[[ROWS]], %c4{{.*}}
// CHECK:   %[[MAIN:.*]] = arith.subi %[[ROWS]], %[[REM]]
// CHECK:       scf.for %{{.*}} = %c0{{.*}} to %[[MAIN]] step
// CHECK:       scf.for %{{.*}} = %[[MAIN]] to %[[ROWS]] step
func.func @filled_rows(%rows: memref<?x16xf32>, %w: memref<3x8x16xf32>,
                       %blocks: memref<?xi32>, %sizes: memref<?xi32>, %acc: memref<?x8xf32>) {
  moe.grouped_matmul block_rows(6)
      ins(%rows, %w, %blocks : memref<?x16xf32>, memref<3x8x16xf32>, memref<?xi32>)
      block_sizes(%sizes : memref<?xi32>)
      outs(%acc : memref<?x8xf32>)
  return
}

// -----

// Packed weights ([E, NP, K, P] = 3 experts, 2 panels of 32 columns, K =
// 20; N = 37): per panel, register tiles of 4 rows x 32 columns, i.e. 4 x 2
// accumulators of 16 lanes; each reduction step reads one contiguous
// 32-column row of the panel (one in-bounds read of 32 bf16 as 16 words:
// shifted up, the even columns' f32, masked, the odd columns') and
// broadcasts one input element per row into the FMAs. The accumulators,
// interleaved back into column order, are added to the outputs with
// masked vector updates (columns past 37).
// Left-over rows (< 4) run as tiles of 2 and 1 rows, taken by the bits of
// their count; those split K over 2 and 4 accumulator sets.
// PANEL-LABEL: func @packed
// PANEL: scf.for %[[B:.*]] = %c0{{.*}} to %{{.*}} step %c1
// PANEL:   memref.load %{{.*}}[%[[B]]] : memref<?xi32>
// PANEL:   scf.if
// PANEL:     %[[PANELS:.*]] = arith.ceildivui %{{.*}}, %c32
// PANEL:     scf.for %[[P:.*]] = %c0{{.*}} to %[[PANELS]] step %c1
// PANEL:       scf.for %[[M:.*]] = %c0{{.*}} to %{{.*}} step %c4
// PANEL:         %[[SUMS:.*]]:8 = scf.for %[[K:.*]] = %c0{{.*}} to %{{.*}} step %c1{{.*}} iter_args
// PANEL:           %[[PAIR:.*]] = vector.transfer_read %{{.*}}[%{{.*}}, %[[P]], %[[K]], %{{.*}}], %{{.*}} {in_bounds = [true]} : memref<3x2x20x32xbf16>, vector<32xbf16>
// PANEL:           %[[WORDS:.*]] = vector.bitcast %[[PAIR]] : vector<32xbf16> to vector<16xi32>
// PANEL:           %[[LOW:.*]] = arith.shli %[[WORDS]], %{{.*}} : vector<16xi32>
// PANEL:           %[[EVEN:.*]] = vector.bitcast %[[LOW]] : vector<16xi32> to vector<16xf32>
// PANEL:           %[[HIGH:.*]] = arith.andi %[[WORDS]], %{{.*}} : vector<16xi32>
// PANEL:           %[[ODD:.*]] = vector.bitcast %[[HIGH]] : vector<16xi32> to vector<16xf32>
// PANEL-NOT:       vector.transfer_read {{.*}}xbf16>
// PANEL:           memref.load %{{.*}}[%{{.*}}, %[[K]]] : memref<?x20xf32>
// PANEL:           %[[X:.*]] = vector.broadcast %{{.*}} : f32 to vector<16xf32>
// PANEL:           vector.fma %[[X]], %[[EVEN]], %{{.*}} : vector<16xf32>
// PANEL:           vector.fma %[[X]], %[[ODD]], %{{.*}} : vector<16xf32>
// PANEL-NOT:     vector.reduction
// PANEL:         vector.shuffle %[[SUMS]]#0, %[[SUMS]]#1 [0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23]
// PANEL:         vector.shuffle %[[SUMS]]#0, %[[SUMS]]#1 [8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31]
// PANEL:         %[[OLD:.*]] = vector.transfer_read %{{.*}}, %{{.*}} : memref<?x37xf32>, vector<16xf32>
// PANEL:         %[[NEW:.*]] = arith.addf %[[OLD]], %{{.*}} : vector<16xf32>
// PANEL:         vector.transfer_write %[[NEW]], %{{.*}} : vector<16xf32>, memref<?x37xf32>
// PANEL:       arith.andi %{{.*}}, %c2
// PANEL:       scf.if
// PANEL:         %{{.*}}:8 = scf.for %{{.*}} step %c2{{.*}} iter_args
// PANEL:       arith.andi %{{.*}}, %c1
// PANEL:       scf.if
// PANEL:         %{{.*}}:8 = scf.for %{{.*}} step %c4{{.*}} iter_args
// PANEL-NOT: moe.grouped_matmul
func.func @packed(%rows: memref<?x20xf32>, %w: memref<3x2x20x32xbf16>,
                  %blocks: memref<?xi32>, %acc: memref<?x37xf32>) {
  moe.grouped_matmul block_rows(6)
      ins(%rows, %w, %blocks : memref<?x20xf32>, memref<3x2x20x32xbf16>, memref<?xi32>)
      outs(%acc : memref<?x37xf32>)
  return
}

// -----

// Gathered rows (row_sources): each register tile row reads its source row
// of the input (loaded and clamped once per tile, before the reduction
// loop), and a row without a source adds zeros (select at the write-back).
// PANEL-LABEL: func @packed_gathered
// PANEL:       scf.for %{{.*}} step %c4
// PANEL-COUNT-4: memref.load %{{.*}}[%{{.*}}] : memref<?xi32>
// PANEL:         %[[SRC:.*]] = arith.select
// PANEL:         %{{.*}}:8 = scf.for %[[K:.*]] = %c0{{.*}} to %{{.*}} step %c1{{.*}} iter_args
// PANEL:           memref.load %{{.*}}[%{{.*}}, %[[K]]] : memref<5x20xf32>
// PANEL:         %[[KEEP:.*]] = arith.select %{{.*}}, %{{.*}}, %{{.*}} : vector<16xf32>
// PANEL:         arith.addf %{{.*}}, %[[KEEP]] : vector<16xf32>
// DEFAULT-LABEL: func @packed_gathered
// DEFAULT-LABEL: func @dot_gathered
// DEFAULT: memref.load %{{.*}}[%{{.*}}] : memref<?xi32>
// DEFAULT: scf.for {{.*}} iter_args
// DEFAULT:   vector.transfer_read %{{.*}} {in_bounds = [true]} : memref<5x20xf32>, vector<16xf32>
// DEFAULT: arith.select %{{.*}}, %{{.*}}, %{{.*}} : vector<8xf32>
func.func @packed_gathered(%x: memref<5x20xf32>, %w: memref<3x2x20x32xbf16>,
                           %blocks: memref<?xi32>, %sources: memref<?xi32>,
                           %acc: memref<?x37xf32>) {
  moe.grouped_matmul block_rows(8)
      ins(%x, %w, %blocks : memref<5x20xf32>, memref<3x2x20x32xbf16>, memref<?xi32>)
      row_sources(%sources : memref<?xi32>)
      outs(%acc : memref<?x37xf32>)
  return
}

func.func @dot_gathered(%x: memref<5x20xf32>, %w: memref<3x10x20xf32>,
                        %blocks: memref<?xi32>, %sources: memref<?xi32>,
                        %acc: memref<?x10xf32>) {
  moe.grouped_matmul block_rows(8)
      ins(%x, %w, %blocks : memref<5x20xf32>, memref<3x10x20xf32>, memref<?xi32>)
      row_sources(%sources : memref<?xi32>)
      outs(%acc : memref<?x10xf32>)
  return
}

// -----

// Scattered rows: each row's sums, times its scale, are added to its target
// row, inside an scf.if on whether the target is inside the output.
// PANEL-LABEL: func @packed_scattering
// PANEL: memref.load %{{.*}}[%{{.*}}] : memref<?xi32>
// PANEL: %[[SCALE:.*]] = memref.load %{{.*}}[%{{.*}}] : memref<?xf32>
// PANEL: scf.if
// PANEL:   %[[SPLAT:.*]] = vector.broadcast %[[SCALE]] : f32 to vector<16xf32>
// PANEL:   %[[SCALED:.*]] = arith.mulf %[[SPLAT]], %{{.*}} : vector<16xf32>
// PANEL:   arith.addf %{{.*}}, %[[SCALED]] : vector<16xf32>
// PANEL:   vector.transfer_write
// DEFAULT-LABEL: func @packed_scattering
// DEFAULT-LABEL: func @dot_scattering
// DEFAULT: %[[SCALE:.*]] = memref.load %{{.*}}[%{{.*}}] : memref<?xf32>
// DEFAULT: scf.if
// DEFAULT:   vector.broadcast %[[SCALE]] : f32 to vector<8xf32>
// DEFAULT:   arith.mulf
// DEFAULT:   vector.transfer_write
func.func @packed_scattering(%x: memref<?x20xf32>, %w: memref<3x2x20x32xf32>,
                             %blocks: memref<?xi32>, %targets: memref<?xi32>,
                             %scales: memref<?xf32>, %acc: memref<?x37xf32>) {
  moe.grouped_matmul block_rows(8)
      ins(%x, %w, %blocks : memref<?x20xf32>, memref<3x2x20x32xf32>, memref<?xi32>)
      scatter(%targets, %scales : memref<?xi32>, memref<?xf32>)
      outs(%acc : memref<?x37xf32>)
  return
}

func.func @dot_scattering(%x: memref<?x20xf32>, %w: memref<3x10x20xf32>,
                          %blocks: memref<?xi32>, %targets: memref<?xi32>,
                          %scales: memref<?xf32>, %acc: memref<?x10xf32>) {
  moe.grouped_matmul block_rows(8)
      ins(%x, %w, %blocks : memref<?x20xf32>, memref<3x10x20xf32>, memref<?xi32>)
      scatter(%targets, %scales : memref<?xi32>, memref<?xf32>)
      outs(%acc : memref<?x10xf32>)
  return
}

// -----

// With a paired weight, each broadcast input element feeds the panels of
// both weights: panel-rows=4 becomes tiles of 2 rows x 2 weights x 2
// vectors, the same 8 accumulators. The epilogue (SwiGLU) then runs on the
// finished sums in registers, its exp approximated by a polynomial, and
// writes each output once without reading it (the epilogue does not use
// the old element).
// PANEL-LABEL: func @packed_epilogue
// PANEL:       scf.for %{{.*}} step %c2
// PANEL:         %{{.*}}:8 = scf.for %[[K:.*]] = %c0{{.*}} to %{{.*}} step %c1{{.*}} iter_args
// PANEL-COUNT-4:   vector.transfer_read %{{.*}}[%{{.*}}, %{{.*}}, %[[K]], %{{.*}}], %{{.*}} {in_bounds = [true]} : memref<3x2x20x32xf32>, vector<16xf32>
// PANEL-COUNT-8:   vector.fma
// PANEL:           scf.yield
// PANEL-NOT:     math.exp
// PANEL-NOT:     vector.transfer_read %{{.*}} : memref<?x37xf32>
// PANEL:         arith.divf %{{.*}} : vector<16xf32>
// PANEL:         %[[Y:.*]] = arith.mulf %{{.*}}, %{{.*}} : vector<16xf32>
// PANEL:         vector.transfer_write %[[Y]], %{{.*}} : vector<16xf32>, memref<?x37xf32>
// Unpacked weights: the dot kernel's tile has half the columns per weight
// (8 -> 4), both weights' lane sums come out as vector<4>, the epilogue
// runs on them; here it reads the old element and adds to it.
// DEFAULT-LABEL: func @packed_epilogue
// DEFAULT-LABEL: func @dot_epilogue
// DEFAULT:   %{{.*}}:16 = scf.for
// DEFAULT:   %[[OLD:.*]] = vector.transfer_read %{{.*}} : memref<?x10xf32>, vector<4xf32>
// DEFAULT:   %[[P:.*]] = arith.mulf %{{.*}}, %{{.*}} : vector<4xf32>
// DEFAULT:   %[[Y:.*]] = arith.addf %[[P]], %[[OLD]] : vector<4xf32>
// DEFAULT:   vector.transfer_write %[[Y]], %{{.*}} : vector<4xf32>, memref<?x10xf32>
func.func @packed_epilogue(%x: memref<?x20xf32>, %wg: memref<3x2x20x32xf32>,
                           %wu: memref<3x2x20x32xf32>, %blocks: memref<?xi32>,
                           %acc: memref<?x37xf32>) {
  moe.grouped_matmul block_rows(8)
      ins(%x, %wg, %blocks : memref<?x20xf32>, memref<3x2x20x32xf32>, memref<?xi32>)
      paired(%wu : memref<3x2x20x32xf32>)
      outs(%acc : memref<?x37xf32>) epilogue {
  ^bb0(%g: f32, %u: f32, %o: f32):
    %one = arith.constant 1.0 : f32
    %neg = arith.negf %g : f32
    %exp = math.exp %neg : f32
    %den = arith.addf %one, %exp : f32
    %silu = arith.divf %g, %den : f32
    %y = arith.mulf %silu, %u : f32
    moe.yield %y : f32
  }
  return
}

func.func @dot_epilogue(%x: memref<?x20xf32>, %wg: memref<3x10x20xf32>,
                        %wu: memref<3x10x20xf32>, %blocks: memref<?xi32>,
                        %acc: memref<?x10xf32>) {
  moe.grouped_matmul block_rows(8)
      ins(%x, %wg, %blocks : memref<?x20xf32>, memref<3x10x20xf32>, memref<?xi32>)
      paired(%wu : memref<3x10x20xf32>)
      outs(%acc : memref<?x10xf32>) epilogue {
  ^bb0(%g: f32, %u: f32, %o: f32):
    %p = arith.mulf %g, %u : f32
    %y = arith.addf %p, %o : f32
    moe.yield %y : f32
  }
  return
}

// -----

func.func @tensors(%rows: tensor<4x16xf32>, %w: tensor<1x8x16xf32>,
                   %blocks: tensor<2xi32>, %acc: tensor<4x8xf32>) -> tensor<4x8xf32> {
  // expected-error @+1 {{moe-lower-grouped-matmul-to-vector: expects the memref form (run after bufferization)}}
  %r = moe.grouped_matmul block_rows(2)
      ins(%rows, %w, %blocks : tensor<4x16xf32>, tensor<1x8x16xf32>, tensor<2xi32>)
      outs(%acc : tensor<4x8xf32>) -> tensor<4x8xf32>
  return %r : tensor<4x8xf32>
}

// -----

// An epilogue writing bf16 rows: each vector of values is rounded to bf16
// as it is stored (the old element, unused here, is not read).
// CHECK-LABEL: func @bf16_rows
// CHECK-NOT: moe.grouped_matmul
// CHECK: %[[R:.*]] = arith.truncf %{{.*}} : vector<{{[0-9]+}}xf32> to vector<{{[0-9]+}}xbf16>
// CHECK: vector.transfer_write %[[R]], %{{.*}} : vector<{{[0-9]+}}xbf16>, memref<8x8xbf16>
func.func @bf16_rows(%x: memref<8x16xf32>, %w: memref<2x8x16xbf16>,
                          %blocks: memref<2xi32>, %y: memref<8x8xbf16>) {
  moe.grouped_matmul block_rows(4)
      ins(%x, %w, %blocks : memref<8x16xf32>, memref<2x8x16xbf16>, memref<2xi32>)
      outs(%y : memref<8x8xbf16>) epilogue {
  ^bb0(%s: f32, %old: f32):
    moe.yield %s : f32
  }
  return
}

// -----

// Dense (no block ids): ceil(R / BM) row blocks of the one expert (no id
// read), each block's rows the rows left from its first, at most BM.
// CHECK-LABEL: func @dense
// CHECK:       %[[R:.*]] = memref.dim %{{.*}}, %{{.*}} : memref<?x10xf32>
// CHECK:       arith.ceildivui %[[R]], %{{.*}} : index
// CHECK:       scf.for %[[B:.*]] = %{{.*}} to %{{.*}} step
// CHECK-NOT:     memref.load %{{.*}} : memref<?xi32>
// CHECK:         scf.if %true
// CHECK:           %[[RS:.*]] = arith.minui %{{.*}}, %{{.*}} : index
// CHECK:           %[[FIRST:.*]] = arith.muli %[[B]], %{{.*}} : index
// CHECK:           %[[PAST:.*]] = arith.maxui %[[RS]], %[[FIRST]]
// CHECK:           %[[LEFT:.*]] = arith.subi %[[PAST]], %[[FIRST]]
// CHECK:           arith.minui %[[LEFT]], %{{.*}} : index
// CHECK:           vector.fma
func.func @dense(%x: memref<?x20xf32>, %w: memref<1x10x20xbf16>, %acc: memref<?x10xf32>) {
  moe.grouped_matmul block_rows(4)
      ins(%x, %w : memref<?x20xf32>, memref<1x10x20xbf16>) exact_products
      outs(%acc : memref<?x10xf32>)
  return
}
