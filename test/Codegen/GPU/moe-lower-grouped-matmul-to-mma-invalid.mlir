// RUN: moe-opt %s --split-input-file --moe-lower-grouped-matmul-to-mma --verify-diagnostics

// Warps compute a tile: the op must run in blocks of whole warps along x.
func.func @not_in_warp(%x: memref<16x8xf32>, %w: memref<2x8x8xbf16>,
                       %experts: memref<1xi32>, %y: memref<16x8xf32>) {
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 48 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c64, %sy = %c1, %sz = %c1) {
    // expected-error @below {{moe-lower-grouped-matmul-to-mma: expects the op in a gpu.launch of blocks of whole warps (32 x 1 x 1 threads as moe-map-to-gpu launches tiles, or a multiple of 32 along x)}}
    moe.grouped_matmul block_rows(16)
        ins(%x, %w, %experts : memref<16x8xf32>, memref<2x8x8xbf16>, memref<1xi32>)
        outs(%y : memref<16x8xf32>)
    gpu.terminator
  }
  return
}

// -----

func.func @host(%x: memref<16x8xf32>, %w: memref<2x8x8xbf16>,
                %experts: memref<1xi32>, %y: memref<16x8xf32>) {
  // expected-error @below {{moe-lower-grouped-matmul-to-mma: expects the op in a gpu.launch}}
  moe.grouped_matmul block_rows(16)
      ins(%x, %w, %experts : memref<16x8xf32>, memref<2x8x8xbf16>, memref<1xi32>)
      outs(%y : memref<16x8xf32>)
  return
}

// -----

func.func @tensors(%x: tensor<16x8xf32>, %w: tensor<2x8x8xbf16>,
                   %experts: tensor<1xi32>, %y: tensor<16x8xf32>) -> tensor<16x8xf32> {
  // expected-error @below {{moe-lower-grouped-matmul-to-mma: expects the memref form (run after bufferization)}}
  %r = moe.grouped_matmul block_rows(16)
      ins(%x, %w, %experts : tensor<16x8xf32>, tensor<2x8x8xbf16>, tensor<1xi32>)
      outs(%y : tensor<16x8xf32>) -> tensor<16x8xf32>
  return %r : tensor<16x8xf32>
}
