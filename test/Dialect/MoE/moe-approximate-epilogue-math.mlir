// RUN: moe-opt %s --split-input-file --moe-approximate-epilogue-math | FileCheck %s

// SwiGLU's exp and division may be approximate; negation, additions and
// products are left as they are, and so is the same function outside the
// epilogue (the routing's scores choose experts).
// CHECK-LABEL: func @swiglu
// CHECK-NOT: fastmath
// CHECK: moe.grouped_matmul
// CHECK-NOT: fastmath
// CHECK:   math.exp %{{[^ ]+}} fastmath<afn> : f32
// CHECK-NOT: fastmath
// CHECK:   arith.divf %{{[^ ]+}}, %{{[^ ]+}} fastmath<afn> : f32
// CHECK-NOT: fastmath
// CHECK: return
func.func @swiglu(%x: tensor<8x16xf32>, %wg: tensor<2x8x16xbf16>,
                  %wu: tensor<2x8x16xbf16>, %blocks: tensor<2xi32>,
                  %acc: tensor<8x8xf32>, %s: f32) -> (tensor<8x8xf32>, f32) {
  %outside = math.exp %s : f32
  %h = moe.grouped_matmul block_rows(4)
      ins(%x, %wg, %blocks : tensor<8x16xf32>, tensor<2x8x16xbf16>, tensor<2xi32>)
      paired(%wu : tensor<2x8x16xbf16>)
      outs(%acc : tensor<8x8xf32>) epilogue {
  ^bb0(%g: f32, %u: f32, %old: f32):
    %one = arith.constant 1.0 : f32
    %neg = arith.negf %g : f32
    %exp = math.exp %neg : f32
    %den = arith.addf %one, %exp : f32
    %silu = arith.divf %g, %den : f32
    %y = arith.mulf %silu, %u : f32
    moe.yield %y : f32
  } -> tensor<8x8xf32>
  return %h, %outside : tensor<8x8xf32>, f32
}

// -----

// Flags already set are kept; functions whose fast forms lose more than a
// few ulps (log, sin, ...) or have none (erf) are left exact.
// CHECK-LABEL: func @flags_kept
// CHECK: math.exp2 %{{[^ ]+}} fastmath<nnan,afn> : f32
// CHECK: math.erf %{{[^ ]+}} fastmath<nnan> : f32
// CHECK: math.log %{{[^ ]+}} : f32
// CHECK: math.sin %{{[^ ]+}} : f32
func.func @flags_kept(%x: tensor<8x16xf32>, %w: tensor<2x8x16xbf16>,
                      %blocks: tensor<2xi32>,
                      %acc: tensor<8x8xf32>) -> tensor<8x8xf32> {
  %h = moe.grouped_matmul block_rows(4)
      ins(%x, %w, %blocks : tensor<8x16xf32>, tensor<2x8x16xbf16>, tensor<2xi32>)
      outs(%acc : tensor<8x8xf32>) epilogue {
  ^bb0(%v: f32, %old: f32):
    %e = math.exp2 %v fastmath<nnan> : f32
    %erf = math.erf %e fastmath<nnan> : f32
    %l = math.log %erf : f32
    %y = math.sin %l : f32
    moe.yield %y : f32
  } -> tensor<8x8xf32>
  return %h : tensor<8x8xf32>
}

// -----

// Grouped matmuls on buffers too (the pass runs at any point); one without
// an epilogue is unchanged.
// CHECK-LABEL: func @buffers
// CHECK: math.exp %{{[^ ]+}} fastmath<afn> : f32
// CHECK: moe.grouped_matmul
// CHECK-NOT: fastmath
// CHECK: return
func.func @buffers(%x: memref<8x16xf32>, %w: memref<2x8x16xbf16>,
                   %blocks: memref<2xi32>, %h: memref<8x8xf32>,
                   %y: memref<8x8xf32>) {
  moe.grouped_matmul block_rows(4)
      ins(%x, %w, %blocks : memref<8x16xf32>, memref<2x8x16xbf16>, memref<2xi32>)
      outs(%h : memref<8x8xf32>) epilogue {
  ^bb0(%v: f32, %old: f32):
    %e = math.exp %v : f32
    moe.yield %e : f32
  }
  moe.grouped_matmul block_rows(4)
      ins(%x, %w, %blocks : memref<8x16xf32>, memref<2x8x16xbf16>, memref<2xi32>)
      outs(%y : memref<8x8xf32>)
  return
}
