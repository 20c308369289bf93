// RUN: moe-opt %s --split-input-file --moe-narrow-epilogue-outputs | FileCheck %s

// SwiGLU rows that only a bf16 down projection reads: the epilogue writes
// them in bf16 (a fill of the rounded zero), and the down projection reads
// the bf16 rows (a tensor.dim of them reads their sizes only).
// CHECK-LABEL: func @swiglu_then_down
// CHECK-DAG: %[[ZERO:.*]] = arith.constant 0.000000e+00 : bf16
// CHECK-DAG: %[[EMPTY:.*]] = tensor.empty(%{{.*}}) : tensor<?x8xbf16>
// CHECK: %[[INIT:.*]] = linalg.fill ins(%[[ZERO]] : bf16) outs(%[[EMPTY]] : tensor<?x8xbf16>) -> tensor<?x8xbf16>
// CHECK: %[[H:.*]] = moe.grouped_matmul block_rows(4) {{.*}} outs(%[[INIT]] : tensor<?x8xbf16>) epilogue {
// CHECK: } -> tensor<?x8xbf16>
// CHECK: moe.grouped_matmul block_rows(4) ins(%[[H]], %{{.*}}, %{{.*}} : tensor<?x8xbf16>, tensor<2x16x8xbf16>, tensor<?xi32>) outs(%{{.*}} : tensor<?x16xf32>) -> tensor<?x16xf32>
func.func @swiglu_then_down(%x: tensor<?x16xf32>, %wg: tensor<2x8x16xbf16>,
                            %wu: tensor<2x8x16xbf16>, %wd: tensor<2x16x8xbf16>,
                            %blocks: tensor<?xi32>) -> tensor<?x16xf32> {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : f32
  %rows = tensor.dim %x, %c0 : tensor<?x16xf32>
  %e = tensor.empty(%rows) : tensor<?x8xf32>
  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<?x8xf32>) -> tensor<?x8xf32>
  %h = moe.grouped_matmul block_rows(4)
      ins(%x, %wg, %blocks : tensor<?x16xf32>, tensor<2x8x16xbf16>, tensor<?xi32>)
      paired(%wu : tensor<2x8x16xbf16>)
      outs(%acc : tensor<?x8xf32>) epilogue {
  ^bb0(%g: f32, %u: f32, %old: f32):
    %one = arith.constant 1.0 : f32
    %neg = arith.negf %g : f32
    %exp = math.exp %neg : f32
    %den = arith.addf %one, %exp : f32
    %silu = arith.divf %g, %den : f32
    %y = arith.mulf %silu, %u : f32
    moe.yield %y : f32
  } -> tensor<?x8xf32>
  %hrows = tensor.dim %h, %c0 : tensor<?x8xf32>
  %e2 = tensor.empty(%hrows) : tensor<?x16xf32>
  %acc2 = linalg.fill ins(%zero : f32) outs(%e2 : tensor<?x16xf32>) -> tensor<?x16xf32>
  %y = moe.grouped_matmul block_rows(4)
      ins(%h, %wd, %blocks : tensor<?x8xf32>, tensor<2x16x8xbf16>, tensor<?xi32>)
      outs(%acc2 : tensor<?x16xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// An init that is not a fill of a constant is rounded by arith.truncf.
// CHECK-LABEL: func @init_rounded
// CHECK-SAME: (%{{.*}}: tensor<8x16xf32>, %{{.*}}: tensor<2x8x16xbf16>, %[[WD:.*]]: tensor<2x16x8xbf16>, %{{.*}}: tensor<2xi32>, %[[ACC:.*]]: tensor<8x8xf32>, %{{.*}}: tensor<8x16xf32>)
// CHECK: %[[INIT:.*]] = arith.truncf %[[ACC]] : tensor<8x8xf32> to tensor<8x8xbf16>
// CHECK: %[[H:.*]] = moe.grouped_matmul {{.*}} outs(%[[INIT]] : tensor<8x8xbf16>) epilogue
// CHECK: moe.grouped_matmul block_rows(4) ins(%[[H]], %[[WD]], %{{.*}} : tensor<8x8xbf16>,
func.func @init_rounded(%x: tensor<8x16xf32>, %w: tensor<2x8x16xbf16>,
                        %wd: tensor<2x16x8xbf16>, %blocks: tensor<2xi32>,
                        %acc: tensor<8x8xf32>, %acc2: tensor<8x16xf32>) -> tensor<8x16xf32> {
  %h = moe.grouped_matmul block_rows(4)
      ins(%x, %w, %blocks : tensor<8x16xf32>, tensor<2x8x16xbf16>, tensor<2xi32>)
      outs(%acc : tensor<8x8xf32>) epilogue {
  ^bb0(%s: f32, %old: f32):
    %zero = arith.constant 0.0 : f32
    %y = arith.maximumf %s, %zero : f32
    moe.yield %y : f32
  } -> tensor<8x8xf32>
  %y = moe.grouped_matmul block_rows(4)
      ins(%h, %wd, %blocks : tensor<8x8xf32>, tensor<2x16x8xbf16>, tensor<2xi32>)
      outs(%acc2 : tensor<8x16xf32>) -> tensor<8x16xf32>
  return %y : tensor<8x16xf32>
}

// -----

// Left in f32: an epilogue that reads the old element (its rounding would
// change the values), rows also returned, rows read by f32 or f16 weights,
// and rows read as another matmul's init.
// CHECK-LABEL: func @kept
// CHECK-NOT: bf16>) epilogue
// CHECK-NOT: arith.truncf
// CHECK: return
func.func @kept(%x: tensor<8x16xf32>, %w: tensor<2x8x16xbf16>,
                %wd: tensor<2x16x8xbf16>, %wf: tensor<2x16x8xf32>,
                %wh: tensor<2x16x8xf16>, %blocks: tensor<2xi32>,
                %acc: tensor<8x8xf32>, %acc2: tensor<8x16xf32>)
    -> (tensor<8x16xf32>, tensor<8x8xf32>, tensor<8x16xf32>, tensor<8x16xf32>, tensor<8x8xf32>) {
  %accumulating = moe.grouped_matmul block_rows(4)
      ins(%x, %w, %blocks : tensor<8x16xf32>, tensor<2x8x16xbf16>, tensor<2xi32>)
      outs(%acc : tensor<8x8xf32>) epilogue {
  ^bb0(%s: f32, %old: f32):
    %y = arith.addf %s, %old : f32
    moe.yield %y : f32
  } -> tensor<8x8xf32>
  %y0 = moe.grouped_matmul block_rows(4)
      ins(%accumulating, %wd, %blocks : tensor<8x8xf32>, tensor<2x16x8xbf16>, tensor<2xi32>)
      outs(%acc2 : tensor<8x16xf32>) -> tensor<8x16xf32>
  %returned = moe.grouped_matmul block_rows(4)
      ins(%x, %w, %blocks : tensor<8x16xf32>, tensor<2x8x16xbf16>, tensor<2xi32>)
      outs(%acc : tensor<8x8xf32>) epilogue {
  ^bb0(%s: f32, %old: f32):
    moe.yield %s : f32
  } -> tensor<8x8xf32>
  %y1 = moe.grouped_matmul block_rows(4)
      ins(%returned, %wd, %blocks : tensor<8x8xf32>, tensor<2x16x8xbf16>, tensor<2xi32>)
      outs(%acc2 : tensor<8x16xf32>) -> tensor<8x16xf32>
  %wide = moe.grouped_matmul block_rows(4)
      ins(%x, %w, %blocks : tensor<8x16xf32>, tensor<2x8x16xbf16>, tensor<2xi32>)
      outs(%acc : tensor<8x8xf32>) epilogue {
  ^bb0(%s: f32, %old: f32):
    moe.yield %s : f32
  } -> tensor<8x8xf32>
  %y2 = moe.grouped_matmul block_rows(4)
      ins(%wide, %wf, %blocks : tensor<8x8xf32>, tensor<2x16x8xf32>, tensor<2xi32>)
      outs(%acc2 : tensor<8x16xf32>) -> tensor<8x16xf32>
  %y3 = moe.grouped_matmul block_rows(4)
      ins(%wide, %wh, %blocks : tensor<8x8xf32>, tensor<2x16x8xf16>, tensor<2xi32>)
      outs(%acc2 : tensor<8x16xf32>) -> tensor<8x16xf32>
  %as_init = moe.grouped_matmul block_rows(4)
      ins(%x, %w, %blocks : tensor<8x16xf32>, tensor<2x8x16xbf16>, tensor<2xi32>)
      outs(%acc : tensor<8x8xf32>) epilogue {
  ^bb0(%s: f32, %old: f32):
    moe.yield %s : f32
  } -> tensor<8x8xf32>
  %y4 = moe.grouped_matmul block_rows(4)
      ins(%x, %w, %blocks : tensor<8x16xf32>, tensor<2x8x16xbf16>, tensor<2xi32>)
      outs(%as_init : tensor<8x8xf32>) -> tensor<8x8xf32>
  return %y0, %returned, %y2, %y3, %y4 : tensor<8x16xf32>, tensor<8x8xf32>, tensor<8x16xf32>, tensor<8x16xf32>, tensor<8x8xf32>
}

// -----

// Rows that an exact-products matmul reads stay f32: it may not round them.
// CHECK-LABEL: func @exact_reader
// CHECK-NOT: bf16>) epilogue
// CHECK-NOT: arith.truncf
// CHECK: moe.grouped_matmul block_rows(4) ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<8x8xf32>, tensor<2x16x8xbf16>, tensor<2xi32>) exact_products
func.func @exact_reader(%x: tensor<8x16xf32>, %w: tensor<2x8x16xbf16>,
                        %wd: tensor<2x16x8xbf16>, %blocks: tensor<2xi32>,
                        %acc: tensor<8x8xf32>, %acc2: tensor<8x16xf32>)
    -> tensor<8x16xf32> {
  %h = moe.grouped_matmul block_rows(4)
      ins(%x, %w, %blocks : tensor<8x16xf32>, tensor<2x8x16xbf16>, tensor<2xi32>)
      outs(%acc : tensor<8x8xf32>) epilogue {
  ^bb0(%s: f32, %old: f32):
    %y = math.exp %s : f32
    moe.yield %y : f32
  } -> tensor<8x8xf32>
  %y = moe.grouped_matmul block_rows(4)
      ins(%h, %wd, %blocks : tensor<8x8xf32>, tensor<2x16x8xbf16>, tensor<2xi32>)
      exact_products
      outs(%acc2 : tensor<8x16xf32>) -> tensor<8x16xf32>
  return %y : tensor<8x16xf32>
}
