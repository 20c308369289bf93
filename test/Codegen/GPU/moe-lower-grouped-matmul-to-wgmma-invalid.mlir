// RUN: moe-opt %s --split-input-file --moe-lower-grouped-matmul-to-wgmma --verify-diagnostics

func.func @host(%x: memref<64x64xf32>, %w: memref<2x32x64xbf16>,
                %experts: memref<1xi32>, %y: memref<64x32xf32>) {
  // expected-error @below {{moe-lower-grouped-matmul-to-wgmma: expects the op in a gpu.launch}}
  moe.grouped_matmul block_rows(64)
      ins(%x, %w, %experts : memref<64x64xf32>, memref<2x32x64xbf16>, memref<1xi32>)
      outs(%y : memref<64x32xf32>)
  return
}

// -----

func.func @tensors(%x: tensor<64x64xf32>, %w: tensor<2x32x64xbf16>,
                   %experts: tensor<1xi32>, %y: tensor<64x32xf32>) -> tensor<64x32xf32> {
  // expected-error @below {{moe-lower-grouped-matmul-to-wgmma: expects the memref form (run after bufferization)}}
  %r = moe.grouped_matmul block_rows(64)
      ins(%x, %w, %experts : tensor<64x64xf32>, tensor<2x32x64xbf16>, tensor<1xi32>)
      outs(%y : tensor<64x32xf32>) -> tensor<64x32xf32>
  return %r : tensor<64x32xf32>
}
